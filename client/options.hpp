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

/// Where a cluster client sends read-only commands (those COMMAND flags `readonly`).
enum class read_from : std::uint8_t {
  primary,         ///< Always the slot's primary (the default: reads see every acknowledged write).
  prefer_replica,  ///< A replica of the slot's shard when one is connected, else the primary.
  any,             ///< Any node of the shard, primary included, spread round-robin.
};

/// Redis Cluster mode: the client routes each command to the node serving its keys' hash slot.
/// The configured server (`host:port` or `unix_path`) is the seed the topology is learned from.
struct cluster_options {
  bool enabled = false;                  ///< Route by hash slot (URL option `cluster=yes`).
  std::uint8_t max_redirects = 16;       ///< MOVED/ASK/TRYAGAIN/CLUSTERDOWN per command; then that error reply is the result.
  milliseconds retry_delay{10};          ///< First wait after TRYAGAIN/CLUSTERDOWN/an unserved slot; doubles per retry.
  milliseconds max_retry_delay{500};     ///< Cap of that doubling wait.
  milliseconds refresh_interval{30000};  ///< Periodic topology refresh (0: only on MOVED and node failures).
  milliseconds min_refresh_gap{100};     ///< At most one topology refresh per this interval.
  read_from reads = read_from::primary;  ///< Replica reads (URL option `read_from=primary|prefer_replica|any`).
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
  bool read_only = false;           ///< READONLY after the handshake (cluster replica reads; set by the cluster client).

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

  // --- Cluster ---
  cluster_options cluster;                   ///< Redis Cluster routing (off by default).
};

}  // namespace redring::client
