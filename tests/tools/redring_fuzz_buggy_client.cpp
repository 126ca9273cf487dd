// SPDX-License-Identifier: MIT
// A deliberately buggy RESP client for redring-fuzz's client-mode tests: it sends PING three times
// over the Unix socket in argv[1] and reads each reply; a double reply makes it abort (a "crash"),
// `#t` makes it wait forever (a "hang"); anything else, or a closed connection, ends it with 0.
#include "resp/reader.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, argv[1], sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 3;
  redring::resp::reader reader;
  std::string buffer;
  std::size_t pos = 0;
  for (int i = 0; i < 3; ++i) {
    static constexpr std::string_view ping = "*1\r\n$4\r\nPING\r\n";
    if (::send(fd, ping.data(), ping.size(), MSG_NOSIGNAL) < 0) return 0;
    // Read one whole reply; note the type of its first node.
    bool done = false, first = true;
    redring::resp::type head = redring::resp::type::null;
    while (!done) {
      redring::resp::node n;
      const auto r = reader.next(std::string_view(buffer).substr(pos), n);
      pos += r.consumed;
      if (r.state == redring::resp::status::error) return 0;  // a clear error: fine
      if (r.nodes == 1) {
        if (first) head = n.data_type;
        first = false;
        done = n.ends_reply;
        continue;
      }
      char chunk[4096];
      const ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
      if (got <= 0) return 0;
      buffer.append(chunk, static_cast<std::size_t>(got));
    }
    if (head == redring::resp::type::double_number) std::abort();  // the planted crash
    if (head == redring::resp::type::boolean) {
      for (;;) ::pause();  // the planted hang
    }
  }
  return 0;
}
