// SPDX-License-Identifier: MIT
// Pub/sub over a Redis Cluster: sharded channels on the primary of each channel's hash slot,
// following reshardings and failovers; classic channels and patterns on one node.
// Specification: https://redis.io/docs/latest/develop/interact/pubsub/#sharded-pubsub and the
// cluster spec's "Redirection and resharding".
#pragma once

#include "client/connection.hpp"
#include "client/options.hpp"
#include "client/slot_map.hpp"
#include "client/subscriber.hpp"
#include "net/loop.hpp"
#include "resp/value.hpp"

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace redring::client {

/// A subscriber for a Redis Cluster. Sharded channels (SSUBSCRIBE, Redis 7) live on the node that
/// serves their hash slot and are published there (SPUBLISH): each goes to a `subscriber` of the
/// slot's primary, opened on demand, one per node. Classic channels and patterns (SUBSCRIBE,
/// PSUBSCRIBE) reach every node of a cluster, so they go to one node's subscriber, moved to another
/// node when that one's connection is down and the topology offers another.
///
/// Topology: `CLUSTER SHARDS` (falling back to `CLUSTER SLOTS` before Redis 7) from the seed
/// (`opts.host:port` or `opts.unix_path`), later from a node of the last topology, at most one fetch
/// per `opts.cluster.min_refresh_gap`: at start, every `opts.cluster.refresh_interval`, when a node
/// refuses a sharded channel with a redirection (MOVED, ASK, TRYAGAIN, CLUSTERDOWN), when a node ends
/// one itself because its slot left (`pubsub_kind::slot_moved`: a resharding, or a failover that made
/// the node a replica), and while a node's connection is down. After each fetch every sharded channel
/// whose slot changed owner is unsubscribed from the old node and subscribed on the new one; a node
/// left holding nothing is closed. Messages published while a channel moves are lost, as pub/sub
/// defines (use a stream where every message must arrive).
///
/// Events: those of each node's `subscriber` (see `pubsub_event`), passed to one handler, in each
/// node's order (no order between nodes). A move shows as a `sunsubscribe` (or `slot_moved`) from the
/// old node and an `ssubscribe` from the new one; a refusal that is a redirection is followed, not
/// delivered; any other refusal (an ACL: NOPERM) is delivered and the name dropped.
///
/// RESP3 only, like `subscriber`. `opts.cluster.enabled` need not be set; the seed's credentials,
/// TLS, timeouts, reconnect policy and health check apply to every node. Loop thread only. Destroy it
/// before its loop.
class cluster_subscriber {
 public:
  /// Receives every event (see `pubsub_event` for the views' lifetime). It may call the
  /// (un)subscription methods and `close()`, but not destroy the cluster subscriber.
  using handler_fn = subscriber::handler_fn;

  /// A cluster subscriber whose seed and node settings are `opts`. Not started: call `start()`.
  cluster_subscriber(net::loop& loop, const options& opts);
  ~cluster_subscriber();
  cluster_subscriber(const cluster_subscriber&) = delete;
  cluster_subscriber& operator=(const cluster_subscriber&) = delete;

  /// Where events go: `fn(context, event)`. Events with no handler are dropped.
  void set_handler(handler_fn fn, void* context) noexcept {
    handler_ = fn;
    context_ = context;
  }
  /// Where events go: `f(event)`, `f` a callable object that outlives the cluster subscriber.
  template <class F>
  void set_handler(F& f) noexcept {
    set_handler([](void* c, const pubsub_event& e) { (*static_cast<F*>(c))(e); }, &f);
  }

  /// Fetches the topology, then subscribes to what was asked for so far. Idempotent.
  void start();
  /// Closes every connection for good; nothing more is delivered. From the handler too.
  void close();

  /// Subscribes to the sharded `channels` (SSUBSCRIBE), each on its slot's primary.
  void ssubscribe(std::span<const std::string_view> channels);
  /// The same, for a braced list.
  void ssubscribe(std::initializer_list<std::string_view> channels) { ssubscribe(std::span(channels.begin(), channels.size())); }
  /// Ends the subscriptions to the sharded `channels`; names not subscribed are ignored.
  void sunsubscribe(std::span<const std::string_view> channels);
  /// The same, for a braced list.
  void sunsubscribe(std::initializer_list<std::string_view> channels) { sunsubscribe(std::span(channels.begin(), channels.size())); }
  /// Subscribes to classic `channels` (SUBSCRIBE) on the classic node.
  void subscribe(std::span<const std::string_view> channels);
  /// The same, for a braced list.
  void subscribe(std::initializer_list<std::string_view> channels) { subscribe(std::span(channels.begin(), channels.size())); }
  /// Ends classic channel subscriptions.
  void unsubscribe(std::span<const std::string_view> channels);
  /// The same, for a braced list.
  void unsubscribe(std::initializer_list<std::string_view> channels) { unsubscribe(std::span(channels.begin(), channels.size())); }
  /// Subscribes to glob-style `patterns` (PSUBSCRIBE) on the classic node.
  void psubscribe(std::span<const std::string_view> patterns);
  /// The same, for a braced list.
  void psubscribe(std::initializer_list<std::string_view> patterns) { psubscribe(std::span(patterns.begin(), patterns.size())); }
  /// Ends pattern subscriptions.
  void punsubscribe(std::span<const std::string_view> patterns);
  /// The same, for a braced list.
  void punsubscribe(std::initializer_list<std::string_view> patterns) { punsubscribe(std::span(patterns.begin(), patterns.size())); }

  /// The sharded channels asked for (and not refused).
  [[nodiscard]] const std::set<std::string, std::less<>>& shard_channels() const noexcept { return shard_channels_; }
  /// The classic channels asked for.
  [[nodiscard]] const std::set<std::string, std::less<>>& channels() const noexcept { return channels_; }
  /// The patterns asked for.
  [[nodiscard]] const std::set<std::string, std::less<>>& patterns() const noexcept { return patterns_; }
  /// "host:port" of the node a sharded channel is subscribed on (or being subscribed), "" while it
  /// waits for a topology that names its slot's primary. The view lives until the next topology.
  [[nodiscard]] std::string_view node_of(std::string_view shard_channel) const;
  /// "host:port" of the node holding the classic channels and patterns ("" before the first topology).
  [[nodiscard]] const std::string& classic_node() const noexcept { return classic_node_; }
  /// "host:port" of every node with an open subscriber.
  [[nodiscard]] std::vector<std::string> nodes() const;
  /// The subscriber of node `address` ("host:port"), or null.
  [[nodiscard]] subscriber* node_subscriber(std::string_view address) noexcept;
  /// True once a topology is known.
  [[nodiscard]] bool ready() const noexcept { return has_map_; }
  /// Messages received so far (message, smessage, pmessage).
  [[nodiscard]] std::uint64_t messages() const noexcept { return messages_; }
  /// Sharded channels moved from one node to another so far.
  [[nodiscard]] std::uint64_t moves() const noexcept { return moves_; }
  /// Topology fetches so far.
  [[nodiscard]] std::uint64_t refreshes() const noexcept { return refreshes_; }
  /// Why the last topology fetch failed, the last refusal a node reported, or why a node's
  /// subscriber failed (a RESP2-only server) ("" if none of these happened).
  [[nodiscard]] const std::string& last_error() const noexcept { return last_error_; }

 private:
  struct node_entry {
    cluster_subscriber* owner = nullptr;
    std::string address;  // "host:port"
    std::unique_ptr<subscriber> sub;
  };
  struct topology_request;
  struct owned_timer : net::timer {
    cluster_subscriber* owner = nullptr;
  };

  node_entry& node_at(const cluster_node& n);
  // The primary address for a sharded channel's slot in the last topology, or null.
  const cluster_node* owner_of(std::string_view channel) const noexcept;
  void place(const std::string& channel);
  void place_all();
  void place_classic();
  void close_idle_nodes();
  void request_refresh();
  void fetch();
  void fetched(std::error_code ec);
  void tick();
  static void on_event(void* entry, const pubsub_event& e);
  void event(node_entry& from, const pubsub_event& e);
  void deliver(const pubsub_event& e);

  net::loop& loop_;
  options opts_;  // the node settings (cluster and sentinel off)
  handler_fn handler_ = nullptr;
  void* context_ = nullptr;
  bool started_ = false;
  bool closed_ = false;

  std::set<std::string, std::less<>> shard_channels_;
  std::set<std::string, std::less<>> channels_;
  std::set<std::string, std::less<>> patterns_;
  // Where a sharded channel was subscribed; unsettled once that node refused it with a redirection
  // or ended it (slot moved): placed again by the next topology.
  struct placement {
    std::string node;  // "host:port"
    bool settled = true;
  };
  std::map<std::string, placement, std::less<>> placed_;
  std::map<std::string, std::unique_ptr<node_entry>, std::less<>> nodes_;
  std::string classic_node_;

  slot_map map_;
  bool has_map_ = false;
  bool use_shards_ = true;  // CLUSTER SHARDS, else CLUSTER SLOTS (before Redis 7)
  connection::pointer topology_conn_;
  std::string topology_target_;  // whom topology_conn_ talks to ("host:port", or the seed)
  std::size_t next_target_ = 0;  // rotates over the last topology's nodes when a fetch fails
  std::string redirected_host_;  // the node a MOVED named (port 0: none): asked next, it knows its own slots
  std::uint16_t redirected_port_ = 0;
  std::unique_ptr<topology_request> topology_request_;
  bool fetching_ = false;
  bool rotate_ = false;  // the last fetch failed: the next asks another node
  bool refresh_wanted_ = false;
  net::clock::time_point last_fetch_{};
  owned_timer refresh_timer_;
  owned_timer tick_timer_;

  std::uint64_t messages_ = 0;
  std::uint64_t moves_ = 0;
  std::uint64_t refreshes_ = 0;
  std::string last_error_;
};

}  // namespace redring::client
