// SPDX-License-Identifier: MIT
// Test support: a private redis-server on a Unix socket in a temp dir, and a blocking RESP connection.
#pragma once

#include "resp/reader.hpp"
#include "resp/value.hpp"

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace redring::test {

/// Starts `redis-server` (from PATH) on a Unix socket in a fresh temp dir, with persistence off, and
/// waits until it answers PING. Stops it (SIGTERM, then SIGKILL) and removes the dir on destruction.
/// Throws std::runtime_error if it cannot start, its message ending with the last lines of the
/// server's log (kept, in its temp dir).
class redis_server {
 public:
  /// `extra_args` are appended to the command line, e.g. {"--enable-debug-command", "yes"}.
  /// `socket_path`, if given, is used instead of one in the temp dir (to restart on the same path).
  /// `config_text`, if given, is written to `redis.conf` in the temp dir and passed as the config
  /// file (a sentinel, `--sentinel` in `extra_args`, needs one it can rewrite).
  explicit redis_server(std::vector<std::string> extra_args = {}, std::string socket_path = {}, std::string config_text = {});
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  /// The Unix socket path.
  [[nodiscard]] const std::string& socket_path() const noexcept { return socket_; }
  /// The server's pid.
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// The temp dir (removed on destruction).
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

 private:
  std::string dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

/// A blocking connection to a Unix socket that sends raw bytes and reads whole replies.
class blocking_connection {
 public:
  /// Connects to `socket_path`; throws std::runtime_error on failure.
  explicit blocking_connection(const std::string& socket_path);
  ~blocking_connection();
  blocking_connection(const blocking_connection&) = delete;
  blocking_connection& operator=(const blocking_connection&) = delete;

  /// Sends `bytes` whole.
  void send(std::string_view bytes);
  /// Sends one command (array of bulk strings).
  void send_command(const std::vector<std::string_view>& args);
  /// Reads until `n` replies are complete; returns the raw bytes of exactly those replies.
  std::string read_raw_replies(std::size_t n);
  /// Sends a command and returns its decoded reply.
  resp::value call(const std::vector<std::string_view>& args);

 private:
  int fd_ = -1;
  std::string pending_;  // bytes received beyond the replies returned so far
};

}  // namespace redring::test

namespace redring::test {

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it, close).
int free_loopback_port();

}  // namespace redring::test
