// SPDX-License-Identifier: MIT
// A relay in front of a real redis-server that makes the server run another client's command
// between two pipelined ones, as it does on its own when a pipeline reaches it in two reads.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace redring::test {

/// A Unix-socket relay to a real redis-server, in a thread: bytes pass unchanged both ways (one
/// client connection). Once, it forwards the client's bytes up to `marker` (say a PTTL pipelined
/// after a read), waits for the server's reply to them, runs `between` (another client's write on
/// the real server), then forwards the rest. This is what the server does on its own when the
/// pipeline reaches it in two reads (two TCP segments, or a query past 16 KiB): other clients'
/// commands run in between. Its socket is `path()`, beside the server's.
class split_relay {
 public:
  split_relay(std::string server_path, std::string marker, std::function<void()> between)
      : server_path_(std::move(server_path)), marker_(std::move(marker)), between_(std::move(between)) {
    path_ = server_path_ + ".relay";
    ::unlink(path_.c_str());
    listen_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_, 4) != 0) throw std::runtime_error("relay");
    thread_ = std::thread([this] { run(); });
  }
  ~split_relay() {
    stop_ = true;
    thread_.join();
    ::close(listen_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  bool split() const { return split_; }

 private:
  static void send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  void run() {
    int client = -1, server = -1;
    while (!stop_) {
      if (client < 0) {
        pollfd l{listen_, POLLIN, 0};
        if (::poll(&l, 1, 50) <= 0) continue;
        client = ::accept(listen_, nullptr, nullptr);
        server = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, server_path_.c_str(), sizeof a.sun_path - 1);
        if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) break;  // the test fails on its own
        continue;
      }
      pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
      if (::poll(fds, 2, 50) <= 0) continue;
      char buf[65536];
      if (fds[1].revents & (POLLIN | POLLHUP)) {
        const ssize_t n = ::recv(server, buf, sizeof buf, 0);
        if (n <= 0) break;
        send_all(client, buf, static_cast<std::size_t>(n));
      }
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        const ssize_t n = ::recv(client, buf, sizeof buf, 0);
        if (n <= 0) break;
        const std::string_view data(buf, static_cast<std::size_t>(n));
        const auto at = split_ ? std::string_view::npos : data.find(marker_);
        if (at == std::string_view::npos || at == 0) {
          send_all(server, data.data(), data.size());
          continue;
        }
        split_ = true;
        send_all(server, data.data(), at);  // the read alone
        pollfd s{server, POLLIN, 0};
        ::poll(&s, 1, 2000);                // its reply is out: the read ran
        const ssize_t r = ::recv(server, buf + n, sizeof buf - static_cast<std::size_t>(n), 0);
        if (r > 0) send_all(client, buf + n, static_cast<std::size_t>(r));
        between_();                         // another client's write, between the two commands
        send_all(server, data.data() + at, data.size() - at);  // then the PTTL
      }
    }
    if (client >= 0) ::close(client);
    if (server >= 0) ::close(server);
  }

  std::string server_path_, marker_, path_;
  std::function<void()> between_;
  int listen_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> split_{false};
};

}  // namespace redring::test
