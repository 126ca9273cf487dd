// SPDX-License-Identifier: MIT
// Redis Cluster routing inside the client: each request goes to the node serving its keys' hash slot,
// over node-addressed connections created on demand. Specification:
// https://redis.io/docs/reference/cluster-spec/ ("Redirection and resharding", "Multi-keys operations").
#pragma once

#include "client/command_keys.hpp"
#include "client/connection.hpp"
#include "client/hash_slot.hpp"
#include "client/options.hpp"
#include "client/request.hpp"
#include "client/slot_map.hpp"
#include "net/loop.hpp"
#include "resp/value.hpp"
#include "resp/writer.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace redring::client {

/// What a cluster client did besides sending commands (loop thread; for tests and reports).
struct cluster_statistics {
  std::uint64_t moved = 0;      ///< MOVED redirections followed
  std::uint64_t ask = 0;        ///< ASK redirections followed (ASKING + resend)
  std::uint64_t retries = 0;    ///< TRYAGAIN/CLUSTERDOWN/unserved-slot waits
  std::uint64_t refreshes = 0;  ///< topology fetches (CLUSTER SHARDS / SLOTS)
  std::uint64_t splits = 0;     ///< commands split by slot (cross-slot MGET ..., pipelines)
  std::uint64_t rerouted = 0;   ///< unsent commands moved off a node that went down
};

/// Commands sent to one node.
struct cluster_node_load {
  std::string node;        ///< "host:port" (or the seed's "unix:path")
  bool primary = false;    ///< a primary in the last topology
  std::uint64_t sent = 0;  ///< requests handed to its connections
};

/// Routes a client's requests over a Redis Cluster. Owned by `client` when `options::cluster.enabled`;
/// loop thread only.
///
/// Routing: a request is encoded once into a scratch writer; its keys are found with the server's
/// own key specifications (`command_keys`, from `COMMAND` at start) and hashed to a slot; the bytes go
/// to the connection of the node serving that slot. Keyless commands go to a primary, round-robin;
/// FLUSHALL, FLUSHDB, SCRIPT LOAD/FLUSH and FUNCTION LOAD/DELETE/FLUSH/RESTORE go to every primary (the
/// first error, else the first reply, is the result). MGET, MSET, DEL, UNLINK, EXISTS and TOUCH whose
/// keys span slots are split per slot and their replies merged; any other command spanning slots
/// fails with `errc::cross_slot` before being sent. A pipeline is split per command and its replies
/// come back in the caller's order; a transaction must keep its keys in one slot.
///
/// Redirections: MOVED updates the slot's owner, resends, and asks for a topology refresh; ASK sends
/// `ASKING` and the command to the target without changing the map; TRYAGAIN, CLUSTERDOWN and a slot
/// no node serves wait (doubling from `retry_delay` to `max_retry_delay`) and route again. After
/// `max_redirects` of these, a redirection's error reply is the command's result as the server sent
/// it, and a slot that no node serves is `errc::slot_unserved`.
///
/// Topology: `CLUSTER SHARDS` (falling back to `CLUSTER SLOTS`) from a ready node, one fetch at a
/// time, at most one per `min_refresh_gap`: at start, on MOVED, on CLUSTERDOWN, when a node's
/// connection drops, and every `refresh_interval`. While a primary is unreachable the topology is
/// fetched again until it changes (a failover), and the commands queued on a node that is down are
/// routed again after each fetch, so they follow the promoted replica; they keep the deadline they
/// were first given (`request::carried_deadline`). The topology is asked of a node that is up, else
/// of one not known to be down (the seed, a replica), a dead primary last. Blocking commands get
/// connections of each node's own, with a single server's rules (no health check; reused only when
/// idle), and follow a failover like the others.
///
/// A node's handshake refused (wrong password, ACL, `database` other than 0): before the first
/// topology, commands fail with that reason (`auth_failed`, `handshake_failed`) and the seed is
/// asked again every `min_refresh_gap`. `close()` may be called from a completion: nothing is
/// routed after it, and no timer outlives the router.
class cluster_router {
 public:
  /// A router on `loop` for `opts` (`opts.host:port` or `opts.unix_path` is the seed; `opts.cluster`
  /// its settings). Connects nothing until `start()` or the first request.
  cluster_router(net::loop& loop, const options& opts);
  ~cluster_router();
  cluster_router(const cluster_router&) = delete;
  cluster_router& operator=(const cluster_router&) = delete;

  /// Connects to the seed and learns the commands and the topology. Idempotent.
  void start();
  /// Routes `r` (see the class comment). Before the topology is known, requests wait (bounded by
  /// `offline_queue_limit`, each by its timeout). Inline for the common case: a one-key command whose
  /// key the request names (`request::key`), or whose name is in the cache of one-key commands
  /// (`request::argument`), for a primary whose connection exists. Every command passes here, and
  /// issue 6 bounds routing's cost at 1.2x a single node's.
  void submit(request& r) {
    if (route_fast(r)) [[likely]] return;
    submit_slow(r);
  }
  /// Completes every waiting request with `shutting_down` and closes every connection.
  void close();

  /// True once the commands and a topology are known.
  [[nodiscard]] bool ready() const noexcept { return ready_; }
  /// The last topology, or null before the first.
  [[nodiscard]] const slot_map* topology() const noexcept { return has_map_ ? &map_ : nullptr; }
  /// "host:port" of every node in the last topology (primaries only if `primaries_only`).
  [[nodiscard]] std::vector<std::string> nodes(bool primaries_only) const;
  /// Requests sent to each node so far.
  [[nodiscard]] std::vector<cluster_node_load> load() const;
  /// Redirections, retries, refreshes, splits.
  [[nodiscard]] const cluster_statistics& statistics() const noexcept { return stats_; }
  /// Why the last topology reply could not be used, else why a node connection last failed ("" if
  /// neither happened).
  [[nodiscard]] std::string last_error() const;
  /// Where RESP3 pushes of every node connection go: the connections of blocking commands and those
  /// opened later included.
  void set_push_handler(push_handler h);
  /// Asks for a topology refresh now (still at most one per `min_refresh_gap`).
  void refresh() { request_refresh(); }
  /// Losses of the nodes' command connections so far (`connection::losses`, summed, those of nodes
  /// forgotten included): unchanged between two looks, no node connection was lost in between.
  /// O(nodes).
  [[nodiscard]] std::uint64_t connection_losses() const noexcept;

 private:
  struct node;
  struct fanout;
  struct transaction_attempt;
  struct bootstrap_request;
  struct delayed {
    net::clock::time_point due;
    request* r;
  };
  struct owned_timer : net::timer {
    cluster_router* owner = nullptr;
  };
  // A command name of up to 16 bytes, exactly, in two words (compared without memcmp).
  struct name_key {
    std::uint64_t w0 = 0, w1 = 0;
    std::size_t size = 0;
    friend bool operator==(const name_key&, const name_key&) = default;
  };
  struct name_cache_entry {
    name_key key;
    const command_keys::command* command = nullptr;
    std::int8_t single_key = -1;  // the key's index when the command has exactly one, at a fixed place
    bool readonly = false;        // command->readonly, here to spare a load
  };

  // What the inline path needs of a shard's primary: its connection (null until the first command
  // opened it) and its request counter. Rebuilt from `shard_primary_` whenever that or a primary's
  // connection changes (`sync_fast_targets`).
  struct fast_target {
    connection* conn = nullptr;
    std::uint64_t* sent = nullptr;
  };

  // The common case of `submit`, with no side effect when it declines (false): a ready router, a
  // single command, not blocking, not addressed to a node, whose only key the request names
  // (`request::key`) or which is a one-key command in the name cache, not a read that replicas may
  // serve, for a slot whose primary is connected.
  [[gnu::always_inline]] bool route_fast(request& r) {
    if (!fast_ || r.replies != 1 || r.blocking || !r.node.empty()) return false;
    // The key as two scalars: a request usually names its key just before this (the awaitable's
    // constructor), and a 16-byte load of the two 8-byte stores it made cannot be forwarded from the
    // store buffer (a stall of a dozen cycles per command, seen as auto-pipelined commands costing
    // more CPU than their instructions said).
    const char* key_data = r.key.data();
    std::size_t key_size = r.key.size();
    if (key_data == nullptr || replica_reads_) [[unlikely]] {
      std::string_view found;
      bool readonly = false;
      if (!single_key_of(r, found, readonly) || (readonly && replica_reads_)) return false;
      key_data = found.data();
      key_size = found.size();
    }
    const std::uint16_t shard = shard_of(hash_slot(std::string_view(key_data, key_size)));
    if (shard >= fast_targets_.size()) return false;  // unserved (no_shard)
    const fast_target& t = fast_targets_[shard];
    if (t.conn == nullptr) return false;
    ++*t.sent;
    t.conn->submit(r);
    return true;
  }
  // The key of a request that names its arguments (`request::argument`) and whose command is a
  // one-key command in the name cache, and whether the command only reads; false otherwise.
  [[gnu::always_inline]] bool single_key_of(const request& r, std::string_view& key, bool& readonly) {
    std::string_view name;
    if (r.argument == nullptr || !r.argument(r, 0, name)) return false;
    name_key k;
    if (!pack(name, k)) return false;
    const name_cache_entry& e = cache_slot(k);
    readonly = e.readonly;
    return e.single_key > 0 && e.key == k && r.argument(r, static_cast<std::size_t>(e.single_key), key);
  }
  void submit_slow(request& r);
  void sync_fast_targets();

  node& node_named(std::string_view host, std::uint16_t port);
  node& seed();
  node* pick(std::uint16_t slot, bool readonly);
  node* primary_of(std::uint16_t slot) const noexcept {
    return shard_[slot] == no_shard ? nullptr : shard_primary_[shard_[slot]];
  }
  node* any_primary();
  void submit_early(request& r);
  bool route_known(request& r);
  void route(request& r);
  void route_encoded(request& r);
  void route_batch(request& r);
  bool split(request& r);
  void broadcast(request& r);
  void send(node& n, request& r, std::string_view encoded);
  // An ASK redirection's resend: ASKING, then `r`, on one connection of `to`.
  void send_asking(node& to, request& r);
  const command_keys::command* lookup(std::span<const std::string_view> args);
  const command_keys::command* lookup(std::span<const std::string_view> args, std::int8_t& single_key);
  // A command name as a name_key; false if it is empty or longer than 16 bytes. Overlapping loads
  // read every byte of the name and no byte outside it; with the size known, the two words determine
  // the name.
  [[gnu::always_inline]] static bool pack(std::string_view name, name_key& k) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(name.data());
    const std::size_t n = name.size();
    k.size = n;
    if (n >= 8) {
      if (n > 16) return false;
      std::memcpy(&k.w0, p, 8);
      std::memcpy(&k.w1, p + n - 8, 8);
    } else if (n >= 4) {
      std::uint32_t a = 0, b = 0;
      std::memcpy(&a, p, 4);
      std::memcpy(&b, p + n - 4, 4);
      k.w0 = a | std::uint64_t{b} << 32;
      k.w1 = 0;
    } else {
      if (n == 0) return false;
      k.w0 = p[0] | std::uint64_t{p[n / 2]} << 8 | std::uint64_t{p[n - 1]} << 16;
      k.w1 = 0;
    }
    return true;
  }
  name_cache_entry& cache_slot(const name_key& k) noexcept {
    // Fibonacci hashing of the first word: the top bits pick the entry.
    return name_cache_[((k.w0 + k.size) * 0x9E3779B97F4A7C15ULL) >> (64 - name_cache_bits)];
  }
  void fail_waiting(std::error_code ec);
  void retry_later(request& r);
  void arm_delay_timer();
  void request_refresh();
  void start_refresh();
  // Arms the refresh timer for `due` if it is not armed earlier (always if `replace`); not once closed.
  void arm_refresh(net::clock::time_point due, bool replace = false);
  void fetch_commands();
  void handshake_refused(std::error_code ec);
  void topology_received(bootstrap_request& b, std::error_code ec);
  void commands_received(bootstrap_request& b, std::error_code ec);
  void apply(slot_map map);
  void become_ready();
  void reroute_stranded(std::vector<request*> stranded);
  void topology_failed(std::string_view why);
  void redirected(node& from, request& r, std::string_view error);
  static void deliver_error(request& r, std::string_view text);

  static void on_redirect(void* context, request& r, std::string_view error);
  static void on_moved_in_batch(void* context, std::string_view error);
  // `from_host`: the host of the node that answered (empty: the seed's, a Unix socket).
  node* moved_to(std::string_view from_host, std::string_view error, std::uint16_t& slot);
  void assign_slot(std::uint16_t slot, node& to);
  static void on_node_state(void* context, connection_state s);
  std::uint64_t retired_losses_ = 0;  // connection_losses of the nodes forgotten
  static void on_delay_timer(net::timer* t);
  static void on_refresh_timer(net::timer* t);

  net::loop& loop_;
  options opts_;  // the seed's; node connections copy it with their own address
  bool started_ = false, closed_ = false, ready_ = false, has_map_ = false, has_commands_ = false;
  bool fast_ = false;          // ready_ && !closed_: the inline path may route
  bool* close_in_progress_ = nullptr;  // set while close() runs: the destructor marks it (see close)
  bool replica_reads_ = false;  // opts_.cluster.reads != read_from::primary
  std::error_code topology_error_;  // set when the seed says it is not a cluster

  std::unordered_map<std::string, std::unique_ptr<node>> nodes_;  // "host:port"
  std::unique_ptr<node> seed_;
  slot_map map_;
  // slot -> index in shard_nodes_ (no_shard: unserved). 16-bit entries: 32 KiB (8-byte node pointers
  // per slot, 128 KiB, cost a cache miss per command).
  static constexpr std::uint16_t no_shard = 0xFFFF;
  std::array<std::uint16_t, slot_count> shard_{};
  // The same per block of 64 slots when all 64 share a shard (or are all unserved), else
  // `mixed_block`: 512 bytes that stay in L1. Keys spread over every slot made `shard_` miss the L1
  // cache (perf: 60% of the inline route's samples on that load in redring-bench --cluster); a
  // cluster's slot ranges rarely split a block (Redis' own 3-shard layout splits 2 of 256).
  static constexpr std::size_t slots_per_block = 64;
  static constexpr std::uint16_t mixed_block = 0xFFFE;
  std::array<std::uint16_t, slot_count / slots_per_block> block_shard_{};
  [[nodiscard]] std::uint16_t shard_of(std::uint16_t slot) const noexcept {
    const std::uint16_t b = block_shard_[slot / slots_per_block];
    return b != mixed_block ? b : shard_[slot];
  }
  void index_block(std::size_t block) noexcept;
  std::vector<std::vector<node*>> shard_nodes_;    // per shard: the primary, then its replicas
  std::vector<node*> shard_primary_;               // per shard: its primary (null if it has none)
  std::vector<fast_target> fast_targets_;          // per shard: its primary's connection, for route_fast
  std::vector<node*> primaries_;
  std::size_t next_primary_ = 0, next_replica_ = 0;
  command_keys commands_;
  static constexpr int name_cache_bits = 5;
  std::array<name_cache_entry, std::size_t{1} << name_cache_bits> name_cache_{};

  // Routing scratch, reused: no allocation per command in steady state.
  resp::writer scratch_;
  std::vector<std::string_view> args_;
  std::vector<std::size_t> key_indexes_;

  std::vector<delayed> waiting_;  // before the first topology (due = the request's deadline)
  std::vector<delayed> delayed_;  // waiting to route again (TRYAGAIN, CLUSTERDOWN, unserved slot)
  owned_timer delay_timer_, refresh_timer_;
  std::unique_ptr<bootstrap_request> topology_request_, commands_request_;
  bool use_shards_ = true;
  std::string refresh_host_;  // the host of the node the last topology came from
  std::string refresh_node_;  // its name, for errors
  std::string topology_why_;  // why the last topology reply was not used ("" once one was)
  net::clock::time_point last_refresh_{};
  push_handler push_;
  cluster_statistics stats_;
};

}  // namespace redring::client
