// SPDX-License-Identifier: MIT
// Client configuration: where the server is, how to greet it, and the client-side limits.
#pragma once

#include "resp/limits.hpp"

#include <chrono>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>

namespace spdlog {
class logger;
}

namespace redring::client {

using std::chrono::milliseconds;

/// Reconnection after a dropped connection: exponential backoff with full jitter, capped.
struct reconnect_options {
  bool enabled = true;
  milliseconds initial_delay{50};   ///< Wait before the first retry.
  milliseconds max_delay{5000};     ///< Cap of the doubling delay.
  double jitter = 0.5;              ///< Fraction of the delay drawn at random (0: none, 1: full jitter).
};

/// Everything a client needs to know. Build it by hand or with `parse_url`.
struct options {
  // --- Where ---
  std::string host = "127.0.0.1";   ///< Host name or numeric address (ignored when `unix_path` is set).
  std::uint16_t port = 6379;
  std::string unix_path;            ///< A Unix socket path; takes precedence over host/port.

  // --- Handshake ---
  std::string user;                 ///< ACL user ("" = default user).
  std::optional<std::string> password;  ///< AUTH password, if any. Never logged.
  int database = 0;                 ///< SELECT after connecting, if not 0.
  std::string client_name;          ///< CLIENT SETNAME / HELLO SETNAME, if not empty.
  int protocol = 3;                 ///< 3: HELLO 3, falling back to RESP2 when the server lacks HELLO. 2: RESP2.
  bool set_lib_info = true;         ///< CLIENT SETINFO lib-name/lib-ver (ignored if the server lacks it).

  // --- Time ---
  milliseconds connect_timeout{2000};
  milliseconds command_timeout{0};  ///< Default per-command timeout (0: none).
  milliseconds health_check_interval{0};  ///< PING a connection idle this long; no reply within it drops the connection (0: never).
  reconnect_options reconnect;

  // --- Logging ---
  /// Where connects, disconnects, reconnects and protocol errors are logged (never per command;
  /// passwords never). Null: no logging.
  std::shared_ptr<spdlog::logger> logger;

  // --- Limits ---
  std::size_t pool_size = 1;                 ///< Connections for ordinary commands, used round-robin.
  std::size_t offline_queue_limit = 100000;  ///< Commands kept while disconnected; beyond, they fail fast.
  std::size_t read_buffer_bytes = 64 * 1024; ///< Initial receive buffer per connection.
  /// Receive with multishot recv into the loop's provided buffer ring where the kernel has both
  /// (Linux 6.0+); otherwise, or when false, plain recv into the connection's own buffer.
  bool use_buffer_ring = true;
  resp::limits protocol_limits;              ///< Bounds on replies (hostile servers).
};

}  // namespace redring::client
