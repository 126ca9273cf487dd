// SPDX-License-Identifier: MIT
#include "tests/support/fake_server.hpp"

#include "resp/reader.hpp"
#include "resp/value.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <map>
#include <stdexcept>

namespace redring::test {

fake_server::fake_server(script s, bool tcp) : script_(std::move(s)) {
  char tmpl[] = "/tmp/redring-fake-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  path_ = dir_ + "/fake.sock";
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 16) != 0) {
    throw std::runtime_error("fake server cannot listen");
  }
  if (tcp) {
    tcp_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof in;
    if (::bind(tcp_fd_, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0 || ::listen(tcp_fd_, 16) != 0 ||
        ::getsockname(tcp_fd_, reinterpret_cast<sockaddr*>(&in), &len) != 0) {
      throw std::runtime_error("fake server cannot listen on TCP");
    }
    port_ = ntohs(in.sin_port);
  }
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] { run(); });
}

fake_server::~fake_server() {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(listen_fd_);
  if (tcp_fd_ >= 0) ::close(tcp_fd_);
  ::close(stop_fd_);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void fake_server::run() {
  struct client {
    int number;
    resp::reader reader;
    resp::value_builder builder;
    std::string buffer;
    std::size_t pos = 0;
  };
  std::map<int, client> clients;
  for (;;) {
    // The listeners first (a negative fd, no TCP listener, is ignored by poll), then the clients.
    std::vector<pollfd> fds = {{stop_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}, {tcp_fd_, POLLIN, 0}};
    for (auto& [fd, c] : clients) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), 1000) < 0) continue;
    if (fds[0].revents != 0) break;
    for (std::size_t i = 1; i <= 2; ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) clients[fd].number = accepted_++;
    }
    for (std::size_t i = 3; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      client& c = clients[fd];
      char buf[65536];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      bool close_it = n <= 0;
      if (n > 0) c.buffer.append(buf, static_cast<std::size_t>(n));
      std::array<resp::node, 32> nodes;
      while (!close_it) {
        const auto r = c.reader.read(std::string_view(c.buffer).substr(c.pos), nodes);
        for (std::size_t k = 0; k < r.nodes && !close_it; ++k) {
          if (!c.builder.add(nodes[k])) continue;
          const resp::value v = c.builder.take();
          std::vector<std::string> command;
          for (const auto& e : v.elements) command.push_back(e.text);
          ++commands_;
          const fake_reply reply = script_(command, c.number);
          std::size_t off = 0;
          while (off < reply.bytes.size()) {
            const ssize_t w = ::send(fd, reply.bytes.data() + off, reply.bytes.size() - off, MSG_NOSIGNAL);
            if (w <= 0) break;
            off += static_cast<std::size_t>(w);
          }
          if (reply.close) close_it = true;
        }
        c.pos += r.consumed;
        if (r.state != resp::status::ok) break;
      }
      if (close_it) {
        ::close(fd);
        clients.erase(fd);
      }
    }
  }
  for (auto& [fd, c] : clients) ::close(fd);
}

fake_reply handshake_reply(const std::vector<std::string>& command) {
  if (command.empty()) return {};
  if (command[0] == "HELLO") return {"%1\r\n$5\r\nproto\r\n:3\r\n"};
  if (command[0] == "AUTH" || command[0] == "SELECT" || command[0] == "CLIENT") return {"+OK\r\n"};
  return {};
}

}  // namespace redring::test
