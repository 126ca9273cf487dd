// SPDX-License-Identifier: MIT
// redring-fuzz's socket I/O: non-blocking sockets driven by poll with deadlines, so that every wait
// of the fuzzer is bounded (a hung target must never hang the fuzzer).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace redring::fuzz {

using clock = std::chrono::steady_clock;

/// Where a server is: a Unix socket path, or a host and port.
struct endpoint {
  std::string unix_path;  ///< takes precedence when not empty
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;

  /// "unix:/path" or "host:port".
  [[nodiscard]] std::string describe() const;
};

/// What an I/O call ended with.
enum class io_status : std::uint8_t { ok, eof, timeout, error };

/// One non-blocking stream socket. Move-only; closes on destruction.
class connection {
 public:
  connection() = default;
  explicit connection(int fd) noexcept : fd_(fd) {}
  ~connection() { close(); }
  connection(connection&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  connection& operator=(connection&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }

  /// Connects before `deadline`. On failure the result is closed and `err` holds the errno
  /// (ECONNREFUSED or ENOENT when nothing listens, ETIMEDOUT when the deadline passed).
  [[nodiscard]] static connection open(const endpoint& where, clock::time_point deadline, int& err);

  /// Sends all of `out`, appending whatever arrives meanwhile to `in` (so that neither side can block
  /// the other on a full buffer).
  io_status send(std::string_view out, std::string& in, clock::time_point deadline);
  /// Waits until bytes arrive (appended to `in`), the peer closes, or the deadline passes.
  io_status receive(std::string& in, clock::time_point deadline);

  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  void close() noexcept;

 private:
  int fd_ = -1;
};

/// True if every address `where` resolves to is loopback (127.0.0.0/8, ::1) or it is a Unix socket;
/// else false with `why`. A host name is replaced by the first address checked, so that no later
/// lookup can lead elsewhere.
[[nodiscard]] bool is_loopback(endpoint& where, std::string& why);

/// Milliseconds from now until `deadline`, at least 0, for poll().
[[nodiscard]] int poll_timeout(clock::time_point deadline) noexcept;

}  // namespace redring::fuzz
