// SPDX-License-Identifier: MIT
// Client configuration: where the server is, how to greet it, and the client-side limits.
#pragma once

#include "net/tls.hpp"
#include "resp/limits.hpp"

#include <chrono>
#include <memory>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace redring::client {

using std::chrono::milliseconds;

/// Reconnection after a dropped connection: exponential backoff with jitter, capped. Attempt n
/// (from 0) waits d * (1 - jitter * U), U uniform in [0, 1), where d = min(max_delay,
/// initial_delay * 2^n), or max_delay after a refused handshake. With the default jitter of 0.5 a
/// wait is between d/2 and d.
struct reconnect_options {
  bool enabled = true;
  milliseconds initial_delay{50};   ///< d of the first retry (at least 1 ms).
  milliseconds max_delay{5000};     ///< Cap of the doubling d.
  double jitter = 0.5;              ///< Largest fraction of d taken off at random, clamped to [0, 1] (0: exactly d; 1: full jitter, anywhere in [0, d]).
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
  /// Redirections and waits per command (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, a slot no node serves).
  /// Past it, a redirection's error reply is the command's result as the server sent it, and an
  /// unserved slot is `errc::slot_unserved`.
  std::uint8_t max_redirects = 16;
  milliseconds retry_delay{10};          ///< First wait after TRYAGAIN/CLUSTERDOWN/an unserved slot; doubles per retry.
  milliseconds max_retry_delay{500};     ///< Cap of that doubling wait.
  milliseconds refresh_interval{30000};  ///< Periodic topology refresh (0: only on MOVED and node failures).
  milliseconds min_refresh_gap{100};     ///< At most one topology refresh per this interval.
  read_from reads = read_from::primary;  ///< Replica reads (URL option `read_from=primary|prefer_replica|any`).
};

/// Client-side caching (https://redis.io/docs/latest/develop/reference/client-side-caching/):
/// `CLIENT TRACKING ON` at the end of every connection's handshake, so that the server pushes an
/// `invalidate` message naming each key this connection read once the key changes (or a null one
/// when the database is flushed). RESP3 only: the pushes arrive on the connection itself, in order
/// with its replies (a RESP2 connection is refused with `errc::handshake_failed`). `patterns::
/// local_cache` keeps values by these messages; `client::set_push_handler` receives them too.
struct tracking_options {
  bool enabled = false;               ///< Send CLIENT TRACKING ON (URL option `tracking=yes`, or `optin`).
  /// BCAST: invalidations for every key starting with one of `prefixes` (all keys if none), read by
  /// this connection or not, instead of for the keys it read. Costs the server no per-key memory.
  bool broadcast = false;
  std::vector<std::string> prefixes;  ///< PREFIX p ... (with `broadcast` only).
  /// NOLOOP: no invalidations for the writes of this connection itself. Off by default: a cache in
  /// front of a client that also writes must hear of its own writes.
  bool noloop = false;
  /// OPTIN (URL `tracking=optin`): the server tracks only the reads that follow `CLIENT CACHING yes`,
  /// which `patterns::local_cache` sends with each of its reads, instead of every read of the
  /// connection: the server's tracking table (`tracking-table-max-keys`) and the invalidations sent
  /// hold only what the cache keeps. Not with `broadcast` (Redis refuses both; so does the client).
  bool optin = false;
};

/// What a Sentinel client connects to: the master, or one of its replicas.
enum class sentinel_role : std::uint8_t {
  master,   ///< The master (the default); checked with ROLE after each connect.
  replica,  ///< A healthy replica, chosen at random among those the sentinel lists (reads only).
};

/// A sentinel's address.
struct sentinel_address {
  std::string host;            ///< Host name or numeric address.
  std::uint16_t port = 26379;  ///< Sentinel's default port.
};

/// Redis Sentinel: before every connect and reconnect, the client asks the sentinels where the
/// master `master_name` is (or a replica of it), connects there, and checks with ROLE that the server
/// has that role (else it reconnects with backoff and asks again). `host`, `port` and `unix_path`
/// are then ignored; everything else (credentials, database, TLS) applies to the server found. A
/// failover reaches the client as a dropped connection (Sentinel closes the clients of the servers
/// it reconfigures): commands sent by then complete with `connection_lost`, unsent ones wait for the
/// new master. Not with `cluster` (a cluster client ignores it). See client/sentinel.hpp.
struct sentinel_options {
  std::string master_name;                 ///< The name the sentinels monitor; non-empty turns Sentinel mode on.
  std::vector<sentinel_address> sentinels;  ///< Tried in order; the one that answers moves to the front.
  sentinel_role role = sentinel_role::master;
  std::string user;                        ///< The sentinels' ACL user ("" = default), not the servers'.
  std::optional<std::string> password;     ///< The sentinels' password (their `requirepass`), if any. Never logged.
  milliseconds timeout{500};               ///< Per sentinel: connect, handshake and answer (0: connect_timeout, or 500 ms if that is 0 too).
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
  /// TLS (`rediss://`): the TLS handshake runs after the TCP connect, within `connect_timeout`, and
  /// before HELLO. A failed certificate check or TLS alert is `errc::tls_failed` for every waiting
  /// command and is retried only at `reconnect.max_delay`, as a refused AUTH is.
  net::tls_options tls;

  // --- Time ---
  milliseconds connect_timeout{2000};
  /// Default per-command timeout (0: none); `with_timeout()` overrides it per command. Blocking
  /// commands (BLPOP, XREAD ... BLOCK) get no deadline of their own: with 0 they wait for their
  /// reply however long it takes, and a value set here bounds them too, even below their block time.
  /// Give them a timeout longer than the time they ask the server to block.
  milliseconds command_timeout{0};
  milliseconds health_check_interval{0};  ///< PING a connection idle this long; no reply within it drops the connection (0: never).
  reconnect_options reconnect;

  // --- Logging ---
  /// Where connects, disconnects, reconnects and protocol errors are logged (never per command;
  /// passwords never). Null: no logging.
  std::shared_ptr<spdlog::logger> logger;

  // --- Limits ---
  std::size_t pool_size = 1;                 ///< Connections for ordinary commands, used round-robin.
  std::size_t offline_queue_limit = 100000;  ///< Commands kept while disconnected; beyond, they fail fast.
  /// Initial receive buffer per connection (at least 8 KiB). It grows to hold a large reply
  /// element; once past 4x this size, it goes back to it after 256 reads in a row found it empty.
  std::size_t read_buffer_bytes = 64 * 1024;
  /// Receive with multishot recv into the loop's provided buffer ring (`net::loop_options::
  /// buffer_count` buffers of `buffer_size` bytes, shared by the loop's connections) where the kernel
  /// has both (Linux 6.0+): replies are parsed in the kernel's buffers, and only an element that
  /// spans buffers is copied into the receive buffer. Otherwise, or when false, plain recv into the
  /// connection's own receive buffer, where replies are parsed in place.
  bool use_buffer_ring = true;
  resp::limits protocol_limits;              ///< Bounds on replies (hostile servers).

  // --- Cluster ---
  cluster_options cluster;                   ///< Redis Cluster routing (off by default).

  // --- Sentinel ---
  sentinel_options sentinel;                 ///< Redis Sentinel discovery (off by default).

  // --- Client-side caching ---
  tracking_options tracking;                 ///< CLIENT TRACKING on every connection (off by default).
};

}  // namespace redring::client
