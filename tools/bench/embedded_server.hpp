// SPDX-License-Identifier: MIT
// A private redis-server for redring-bench (and redring-fuzz): started from PATH on a Unix socket in
// a temp dir, stopped and cleaned up by the destructor.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace redring::bench {

/// A redis-server child process. `start` returns an error message (which may span lines), or ""
/// when it answers.
class embedded_server {
 public:
  embedded_server() = default;
  ~embedded_server() { stop(); }
  embedded_server(const embedded_server&) = delete;
  embedded_server& operator=(const embedded_server&) = delete;

  /// Starts the server and waits (up to 10 s) for its socket. The child gets its own process
  /// group, so a Ctrl-C meant for us does not stop it before we report. When the server exits at
  /// start or never opens its socket, the message ends with the last lines of its log: `stop`
  /// removes the temp dir and the log in it.
  [[nodiscard]] std::string start(const std::vector<std::string>& extra_args = {});
  /// Stops it (SIGTERM, then SIGKILL after 5 s) and removes the temp dir. Idempotent.
  void stop() noexcept;
  [[nodiscard]] const std::string& socket_path() const noexcept { return socket_; }
  /// Its temp dir (its log, and a cluster node's nodes.conf).
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

 private:
  std::string dir_, socket_;
  pid_t pid_ = -1;
};

}  // namespace redring::bench
