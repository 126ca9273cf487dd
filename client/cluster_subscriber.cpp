// SPDX-License-Identifier: MIT
#include "client/cluster_subscriber.hpp"

#include "client/hash_slot.hpp"
#include "client/request.hpp"
#include "resp/writer.hpp"

#include <algorithm>
#include <chrono>

namespace redring::client {

namespace {

using namespace std::chrono_literals;

// How often the nodes' connections are looked at: one that is down asks for a topology (a failover
// moves its slots), as does a sharded channel waiting for its slot's owner.
constexpr auto tick_interval = 500ms;

std::string address_of(const cluster_node& n) { return endpoint(n.host, n.port); }

}  // namespace

// CLUSTER SHARDS (or SLOTS) on the topology connection; its reply built whole (a few KiB).
struct cluster_subscriber::topology_request : request {
  cluster_subscriber* owner = nullptr;
  bool shards = true;
  resp::value_builder builder;
  resp::value reply;

  explicit topology_request(cluster_subscriber* o) : owner(o) {
    encode = [](request& r, resp::writer& w) {
      w.command("CLUSTER", static_cast<topology_request&>(r).shards ? "SHARDS" : "SLOTS");
    };
    on_node = [](request& r, const resp::node& n) {
      auto& self = static_cast<topology_request&>(r);
      if (self.builder.add(n)) self.reply = self.builder.take();
    };
    on_done = [](request& r, std::error_code ec) { static_cast<topology_request&>(r).owner->fetched(ec); };
  }
};

cluster_subscriber::cluster_subscriber(net::loop& loop, const options& opts)
    : loop_(loop), opts_(opts), topology_request_(std::make_unique<topology_request>(this)) {
  opts_.cluster.enabled = false;  // each node's subscriber talks to that node only
  opts_.sentinel = {};
  refresh_timer_.owner = this;
  refresh_timer_.fn = [](net::timer* t) {
    cluster_subscriber& s = *static_cast<owned_timer*>(t)->owner;
    if (s.refresh_wanted_) s.fetch();
  };
  tick_timer_.owner = this;
  tick_timer_.fn = [](net::timer* t) { static_cast<owned_timer*>(t)->owner->tick(); };
}

cluster_subscriber::~cluster_subscriber() {
  closed_ = true;  // a fetch completed by the connection's release below returns at once
  loop_.cancel(refresh_timer_);
  loop_.cancel(tick_timer_);
  topology_conn_.reset();
  nodes_.clear();
}

void cluster_subscriber::start() {
  if (started_ || closed_) return;
  started_ = true;
  fetch();
  loop_.arm(tick_timer_, net::deadline_after(loop_.now(), tick_interval));
}

void cluster_subscriber::close() {
  if (closed_) return;
  closed_ = true;
  loop_.cancel(refresh_timer_);
  loop_.cancel(tick_timer_);
  for (auto& [address, n] : nodes_) n->sub->close();  // safe from a node's handler (subscriber::close)
  if (topology_conn_) topology_conn_->close();
}

// --- What is asked for ---

void cluster_subscriber::ssubscribe(std::span<const std::string_view> channels) {
  for (const std::string_view name : channels) {
    if (shard_channels_.find(name) != shard_channels_.end()) continue;
    const std::string& channel = *shard_channels_.emplace(name).first;
    if (has_map_ && !closed_) place(channel);
  }
}

void cluster_subscriber::sunsubscribe(std::span<const std::string_view> channels) {
  // Copied first: `channels` may view the very entries erased (a caller passing shard_channels()).
  std::vector<std::string> names(channels.begin(), channels.end());
  for (const std::string& name : names) {
    const auto it = shard_channels_.find(name);
    if (it == shard_channels_.end()) continue;
    shard_channels_.erase(it);
    if (const auto p = placed_.find(name); p != placed_.end()) {
      if (const auto n = nodes_.find(p->second.node); n != nodes_.end()) n->second->sub->sunsubscribe({std::string_view(name)});
      placed_.erase(p);
    }
  }
}

void cluster_subscriber::subscribe(std::span<const std::string_view> channels) {
  for (const std::string_view name : channels) channels_.emplace(name);
  if (const auto n = nodes_.find(classic_node_); n != nodes_.end()) n->second->sub->subscribe(channels);
  if (has_map_ && classic_node_.empty()) place_classic();
}

void cluster_subscriber::unsubscribe(std::span<const std::string_view> channels) {
  if (const auto n = nodes_.find(classic_node_); n != nodes_.end()) n->second->sub->unsubscribe(channels);
  std::vector<std::string> names(channels.begin(), channels.end());
  for (const std::string& name : names) channels_.erase(name);
}

void cluster_subscriber::psubscribe(std::span<const std::string_view> patterns) {
  for (const std::string_view name : patterns) patterns_.emplace(name);
  if (const auto n = nodes_.find(classic_node_); n != nodes_.end()) n->second->sub->psubscribe(patterns);
  if (has_map_ && classic_node_.empty()) place_classic();
}

void cluster_subscriber::punsubscribe(std::span<const std::string_view> patterns) {
  if (const auto n = nodes_.find(classic_node_); n != nodes_.end()) n->second->sub->punsubscribe(patterns);
  std::vector<std::string> names(patterns.begin(), patterns.end());
  for (const std::string& name : names) patterns_.erase(name);
}

// --- Where it goes ---

std::string_view cluster_subscriber::node_of(std::string_view shard_channel) const {
  const auto it = placed_.find(shard_channel);
  return it == placed_.end() || !it->second.settled ? std::string_view() : std::string_view(it->second.node);
}

std::vector<std::string> cluster_subscriber::nodes() const {
  std::vector<std::string> out;
  for (const auto& [address, n] : nodes_) out.push_back(address);
  return out;
}

subscriber* cluster_subscriber::node_subscriber(std::string_view address) noexcept {
  const auto it = nodes_.find(address);
  return it == nodes_.end() ? nullptr : it->second->sub.get();
}

const cluster_node* cluster_subscriber::owner_of(std::string_view channel) const noexcept {
  // Sharded channels hash like keys, hash tags included (Redis 7: keyHashSlot on the channel).
  const cluster_node* p = map_.primary_of(hash_slot(channel));
  return p != nullptr && p->port != 0 ? p : nullptr;
}

cluster_subscriber::node_entry& cluster_subscriber::node_at(const cluster_node& n) {
  std::string address = address_of(n);
  if (const auto it = nodes_.find(address); it != nodes_.end()) return *it->second;
  auto e = std::make_unique<node_entry>();
  e->owner = this;
  e->address = address;
  options o = opts_;
  o.unix_path.clear();
  o.host = n.host;
  o.port = n.port;
  e->sub = std::make_unique<subscriber>(loop_, o);
  e->sub->set_handler(&cluster_subscriber::on_event, e.get());
  if (started_ && !closed_) e->sub->start();
  return *nodes_.emplace(std::move(address), std::move(e)).first->second;
}

// Subscribes `channel` on its slot's primary, leaving the node it was on if that is another.
void cluster_subscriber::place(const std::string& channel) {
  const cluster_node* primary = owner_of(channel);
  const auto it = placed_.find(channel);
  if (it != placed_.end()) {
    const auto old = nodes_.find(it->second.node);
    if (primary != nullptr && it->second.node == address_of(*primary)) {
      // In place; asked again if the node's set lost it (a redirection refused it there).
      if (old != nodes_.end()) old->second->sub->ssubscribe({std::string_view(channel)});
      it->second.settled = true;
      return;
    }
    if (old != nodes_.end()) old->second->sub->sunsubscribe({std::string_view(channel)});
    placed_.erase(it);
    if (primary != nullptr) ++moves_;
  }
  if (primary == nullptr) return;  // no node serves its slot now: a later topology will
  node_entry& e = node_at(*primary);
  e.sub->ssubscribe({std::string_view(channel)});
  placed_.emplace(channel, placement{e.address, true});
}

void cluster_subscriber::place_all() {
  for (const std::string& channel : shard_channels_) place(channel);
  // Channels no longer asked for cannot be placed; nothing else is.
}

// Classic channels and patterns stay on their node while it is in the topology and its connection
// is not down; otherwise they go to another primary.
void cluster_subscriber::place_classic() {
  if (channels_.empty() && patterns_.empty()) {
    classic_node_.clear();  // its node is closed if it holds nothing else
    return;
  }
  auto listed = [&](std::string_view address) {
    for (const cluster_shard& s : map_.shards()) {
      for (const cluster_node& n : s.nodes) {
        if (n.healthy && address_of(n) == address) return true;
      }
    }
    return false;
  };
  std::vector<std::string_view> channels(channels_.begin(), channels_.end());
  std::vector<std::string_view> patterns(patterns_.begin(), patterns_.end());
  const auto current = nodes_.find(classic_node_);
  if (current != nodes_.end() && listed(classic_node_) && current->second->sub->conn().state() != connection_state::backoff) {
    current->second->sub->subscribe(channels);  // sends only what its sets lack (a redirection refused it)
    current->second->sub->psubscribe(patterns);
    return;
  }
  // Another primary: one whose subscriber is up, else one not tried yet (or still connecting),
  // else one that is down too (the next topology moves them on again), the node left last of all
  // (a review proved that falling back to "the first primary" kept them on the node being left).
  const cluster_node* choice = nullptr;
  int best = 4;
  for (const cluster_shard& s : map_.shards()) {
    if (s.nodes.empty() || !s.nodes.front().primary || !s.nodes.front().healthy || s.nodes.front().port == 0) continue;
    const cluster_node& n = s.nodes.front();
    const std::string address = address_of(n);
    const auto e = nodes_.find(address);
    const int rank = address == classic_node_                                                  ? 3
                     : e == nodes_.end()                                                       ? 1
                     : e->second->sub->conn().state() == connection_state::ready               ? 0
                     : e->second->sub->conn().state() == connection_state::backoff ? 2
                                                                                               : 1;
    if (rank < best) {
      best = rank;
      choice = &n;
    }
  }
  if (choice == nullptr || address_of(*choice) == classic_node_) return;
  if (current != nodes_.end()) {
    current->second->sub->unsubscribe(channels);
    current->second->sub->punsubscribe(patterns);
  }
  node_entry& e = node_at(*choice);
  classic_node_ = e.address;
  e.sub->subscribe(channels);
  e.sub->psubscribe(patterns);
}

// A node holding nothing (its channels moved, or were unsubscribed) is closed.
void cluster_subscriber::close_idle_nodes() {
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    const bool holds = it->first == classic_node_ ||
                       std::any_of(placed_.begin(), placed_.end(), [&](const auto& p) { return p.second.node == it->first; });
    it = holds ? std::next(it) : nodes_.erase(it);
  }
}

// --- Topology ---

void cluster_subscriber::request_refresh() {
  refresh_wanted_ = true;
  if (closed_ || !started_ || fetching_) return;  // fetched() asks again when one is running
  loop_.arm(refresh_timer_, std::max(loop_.now(), last_fetch_ + opts_.cluster.min_refresh_gap));
}

// Asks the node the topology connection talks to; after a redirection, the node it named; after a
// failed fetch, the next node of the last topology (the seed last).
void cluster_subscriber::fetch() {
  if (closed_ || fetching_) return;
  if (rotate_) {
    topology_conn_.reset();
    rotate_ = false;
  }
  if (!topology_conn_) {
    std::vector<const cluster_node*> candidates;
    for (const cluster_shard& s : map_.shards()) {
      for (const cluster_node& n : s.nodes) {
        if (n.port != 0) candidates.push_back(&n);
      }
    }
    options o = opts_;
    o.health_check_interval = 0ms;
    const std::size_t pick = next_target_++ % (candidates.size() + 1);
    if (redirected_port_ != 0) {
      o.unix_path.clear();
      o.host = redirected_host_;
      o.port = redirected_port_;
      topology_target_ = endpoint(o.host, o.port);
    } else if (pick < candidates.size()) {
      o.unix_path.clear();
      o.host = candidates[pick]->host;
      o.port = candidates[pick]->port;
      topology_target_ = address_of(*candidates[pick]);
    } else {
      topology_target_ = o.unix_path.empty() ? o.host + ':' + std::to_string(o.port) : "unix:" + o.unix_path;
    }
    redirected_port_ = 0;
    topology_conn_ = connection::create(loop_, o);
    topology_conn_->start();
  }
  fetching_ = true;
  refresh_wanted_ = false;
  last_fetch_ = loop_.now();
  ++refreshes_;
  topology_request_->shards = use_shards_;
  topology_request_->builder.reset();
  topology_request_->reply = {};
  topology_request_->timeout = std::max(opts_.connect_timeout, std::chrono::milliseconds(500));
  topology_conn_->submit(*topology_request_);
}

void cluster_subscriber::fetched(std::error_code ec) {
  fetching_ = false;
  if (closed_) return;
  const char* what = use_shards_ ? "CLUSTER SHARDS" : "CLUSTER SLOTS";
  std::string why;
  if (ec) {
    why = ec.message();
  } else if (topology_request_->reply.is_error()) {
    const std::string& text = topology_request_->reply.text;
    if (use_shards_ && (text.find("nknown subcommand") != std::string::npos || text.find("SHARDS") != std::string::npos)) {
      use_shards_ = false;  // before Redis 7 (which has no sharded pub/sub either, but classic works)
      request_refresh();
      return;
    }
    why = text;
  } else {
    auto map = use_shards_ ? slot_map::from_shards(topology_request_->reply, opts_.tls.enabled)
                           : slot_map::from_slots(topology_request_->reply);
    if (map) {
      map_ = std::move(*map);
      has_map_ = true;
      place_all();
      place_classic();
      close_idle_nodes();
      if (refresh_wanted_) request_refresh();
      return;
    }
    why = map.error().message;
  }
  last_error_ = std::string(what) + " from " + topology_target_ + ": " + why;
  // Another node next time: this one is down, or not (yet) a cluster node. The connection is
  // released by the next fetch, not inside its own request's completion.
  rotate_ = true;
  request_refresh();
}

void cluster_subscriber::tick() {
  if (closed_) return;
  bool wanted = has_map_ && opts_.cluster.refresh_interval.count() > 0 &&
                loop_.now() - last_fetch_ >= opts_.cluster.refresh_interval;
  for (const auto& [address, n] : nodes_) {
    if (n->sub->failed()) {  // RESP2 only: it will not connect again, and a topology will not help
      last_error_ = address + ": " + n->sub->last_error();
      continue;
    }
    if (n->sub->conn().state() != connection_state::ready) wanted = true;  // down: a failover moves its slots
  }
  for (const auto& [channel, where] : placed_) {
    if (!where.settled) wanted = true;
  }
  if (classic_node_.empty() && (!channels_.empty() || !patterns_.empty())) wanted = true;  // no primary had them
  if (has_map_ && placed_.size() < shard_channels_.size()) wanted = true;  // a slot no node serves
  if (!has_map_) wanted = true;
  if (wanted) request_refresh();
  loop_.arm(tick_timer_, net::deadline_after(loop_.now(), tick_interval));
}

// --- Events ---

void cluster_subscriber::on_event(void* entry, const pubsub_event& e) {
  auto& n = *static_cast<node_entry*>(entry);
  n.owner->event(n, e);
}

// Refusals and slot moves are sorted out here; everything else is passed on as it came.
void cluster_subscriber::event(node_entry& from, const pubsub_event& e) {
  if (e.kind == pubsub_kind::slot_moved) {
    const auto p = placed_.find(e.channel);
    if (p == placed_.end() || p->second.node != from.address) return;  // stale: the channel has moved on already
    p->second.settled = false;  // placed again after the next topology
    request_refresh();
  } else if (e.kind == pubsub_kind::refused) {
    last_error_.assign(e.payload);
    if (is_cluster_redirect(e.payload)) {
      // The name belongs elsewhere or nowhere yet: the node dropped it from its set, and the next
      // topology places it again (`place`, `place_classic` add what a node's sets lack). Not delivered.
      if (const auto p = placed_.find(e.channel); p != placed_.end() && p->second.node == from.address) p->second.settled = false;
      // The node asked for the topology may hold a stale view (a review proved one asked for ever):
      // the next fetch asks the node the MOVED names, which knows its own slots, else another.
      if (cluster_redirection r; parse_cluster_redirection(e.payload, r) && !r.ask && !r.host.empty()) {
        redirected_host_.assign(r.host);
        redirected_port_ = r.port;
      }
      rotate_ = true;
      request_refresh();
      return;
    }
    // Refused for good (an ACL: NOPERM): dropped from the set whose node's set lost it.
    bool dropped = false;
    if (const auto p = placed_.find(e.channel); p != placed_.end() && p->second.node == from.address &&
                                                 from.sub->shard_channels().find(e.channel) == from.sub->shard_channels().end()) {
      shard_channels_.erase(shard_channels_.find(e.channel));
      placed_.erase(p);
      dropped = true;
    } else if (from.address == classic_node_) {
      auto forget = [&](auto& mine, const auto& theirs) {
        const auto it = mine.find(e.channel);
        if (it == mine.end() || theirs.find(e.channel) != theirs.end()) return;
        mine.erase(it);
        dropped = true;
      };
      forget(channels_, from.sub->channels());
      forget(patterns_, from.sub->patterns());
    }
    if (!dropped) return;  // a name that left this node since: its new node answers for it
  }
  deliver(e);
}

void cluster_subscriber::deliver(const pubsub_event& e) {
  if (closed_) return;
  if (e.kind == pubsub_kind::message || e.kind == pubsub_kind::smessage || e.kind == pubsub_kind::pmessage) ++messages_;
  if (handler_ != nullptr) handler_(context_, e);
}

}  // namespace redring::client
