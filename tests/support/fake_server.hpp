// SPDX-License-Identifier: MIT
// Test support: a scripted RESP server on a Unix socket, for what a real server never does
// (malformed replies, connections cut mid-reply, no HELLO). Runs on its own thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace redring::test {

/// What the fake server does with one command.
struct fake_reply {
  std::string bytes;   ///< Sent as is (may be invalid RESP).
  bool close = false;  ///< Close the connection after sending `bytes`.
};

/// A server that answers each command with whatever `script(command, connection_number)` returns.
/// Connection numbers count from 0 in accept order.
class fake_server {
 public:
  using script = std::function<fake_reply(const std::vector<std::string>& command, int connection)>;
  /// On a Unix socket in a temp dir and, with `tcp`, also on 127.0.0.1 at a free port (`port()`).
  explicit fake_server(script s, bool tcp = false);
  ~fake_server();
  fake_server(const fake_server&) = delete;
  fake_server& operator=(const fake_server&) = delete;

  [[nodiscard]] const std::string& socket_path() const noexcept { return path_; }
  /// With `tcp`: the port on 127.0.0.1 (0 without).
  [[nodiscard]] int port() const noexcept { return port_; }
  /// Connections accepted so far.
  [[nodiscard]] int connections() const noexcept { return accepted_.load(); }
  /// Commands received so far (all connections).
  [[nodiscard]] int commands() const noexcept { return commands_.load(); }

 private:
  void run();
  script script_;
  std::string dir_, path_;
  int listen_fd_ = -1;
  int tcp_fd_ = -1;
  int port_ = 0;
  int stop_fd_ = -1;
  std::atomic<int> accepted_{0}, commands_{0};
  std::thread thread_;
};

/// The reply a well-behaved server gives to the handshake commands (HELLO 3 as a small map, OK to
/// the rest), or an empty optional-like reply with no bytes if `command` is not part of a handshake.
fake_reply handshake_reply(const std::vector<std::string>& command);

}  // namespace redring::test
