// SPDX-License-Identifier: MIT
#include "client/subscriber.hpp"

#include "client/hash_slot.hpp"
#include "resp/writer.hpp"

#include <algorithm>
#include <vector>

namespace redring::client {

namespace {

constexpr std::string_view command_name(int k) noexcept {
  constexpr std::string_view names[] = {"SUBSCRIBE",   "PSUBSCRIBE",   "SSUBSCRIBE", "UNSUBSCRIBE",
                                         "PUNSUBSCRIBE", "SUNSUBSCRIBE", "PING"};
  return names[k];
}

// A push element that holds text: a blob string (not streamed: Redis never streams one) or a
// simple string.
bool is_text(const resp::node& n) noexcept {
  return (n.data_type == resp::type::blob_string && !n.streamed) || n.data_type == resp::type::simple_string;
}

// The connection's own options: its health check is the subscriber's (a PING answered by a
// request would take a refusal's error reply for its own, see the class comment).
options without_health_check(options o) {
  o.health_check_interval = std::chrono::milliseconds(0);
  return o;
}

}  // namespace

subscriber::subscriber(net::loop& loop, const options& opts)
    : loop_(loop), conn_(connection::create(loop, without_health_check(opts))), health_interval_(opts.health_check_interval) {
  command_.owner = this;
  command_.replies = 0;  // the server answers (UN)SUBSCRIBE with pushes, not replies (RESP3)
  command_.encode = [](request& r, resp::writer& w) {
    subscriber& s = *static_cast<command_request&>(r).owner;
    if (s.sending_ == kind::ping) {
      w.command("PING");
      return;
    }
    w.command(command_name(static_cast<int>(s.sending_)), s.sending_name_);
  };
  command_.on_node = [](request&, const resp::node&) {};
  command_.on_done = [](request&, std::error_code) {};
  close_timer_.owner = this;
  close_timer_.fn = &subscriber::on_close_timer;
  health_timer_.owner = this;
  health_timer_.fn = &subscriber::on_health_timer;
  conn_->on_state_change(&subscriber::on_state, this);
  conn_->set_push_handler({&subscriber::on_push, this});
  if (opts.protocol != 3) {
    failed_ = true;
    error_ = "pub/sub needs RESP3 (options::protocol 3, Redis 6 or later)";
  }
}

subscriber::~subscriber() {
  loop_.cancel(close_timer_);
  loop_.cancel(health_timer_);
  conn_->on_state_change(nullptr, nullptr);
  conn_->set_push_handler({});
}

void subscriber::start() {
  if (failed_) return;  // RESP2: nothing to connect for
  conn_->start();
}

void subscriber::close() {
  closed_ = true;
  loop_.cancel(health_timer_);
  if (dispatching_) {  // inside the connection's dispatch of a push: close once it has returned
    loop_.arm(close_timer_, loop_.now());
    return;
  }
  loop_.cancel(close_timer_);
  conn_->close();
}

std::set<std::string, std::less<>>& subscriber::set_of(kind k) noexcept {
  switch (k) {
    case kind::subscribe:
    case kind::unsubscribe: return channels_;
    case kind::ssubscribe:
    case kind::sunsubscribe: return shard_channels_;
    default: return patterns_;
  }
}

std::set<std::string, std::less<>>& subscriber::dropped_of(kind k) noexcept {
  switch (k) {
    case kind::subscribe:
    case kind::unsubscribe: return dropped_channels_;
    case kind::ssubscribe:
    case kind::sunsubscribe: return dropped_shard_channels_;
    default: return dropped_patterns_;
  }
}

void subscriber::change(kind k, std::span<const std::string_view> names) {
  auto& set = set_of(k);
  auto& dropped = dropped_of(k);
  const bool adding = k == kind::subscribe || k == kind::psubscribe || k == kind::ssubscribe;
  const bool connected = conn_->state() == connection_state::ready;
  // Copied first: `names` may view the very set entries an unsubscribe erases (a caller passing
  // views of channels()).
  std::vector<std::string> changed;
  for (const std::string_view name : names) {
    const bool member = set.find(name) != set.end();
    if (member != adding && std::find(changed.begin(), changed.end(), name) == changed.end()) changed.emplace_back(name);
  }
  for (const std::string& name : changed) {
    if (adding) {
      set.emplace(name);
      if (const auto it = dropped.find(name); it != dropped.end()) dropped.erase(it);
    } else {
      set.erase(set.find(name));
      // Before the first connection nothing can be waiting unsent: nothing to undo later.
      if (!connected && ever_ready_) dropped.emplace(name);
    }
  }
  for (const std::string& name : changed) send(k, name);
}

// One name per command: a refusal (one error reply per command) then names exactly one name.
void subscriber::send(kind k, std::string_view name) {
  // Not connected: the sets are sent whole once it is (send_all), nothing is queued meanwhile.
  if (failed_ || closed_ || conn_->state() != connection_state::ready) return;
  sending_ = k;
  sending_name_ = name;
  if (k != kind::ping) unanswered_.push_back({k, std::string(name)});
  conn_->submit(command_);  // encoded during the call (no reply to wait for: it completes at once)
  sending_name_ = {};
}

void subscriber::send_all() {
  // Refusals arrive on later turns, so the sets do not change under these loops.
  for (const std::string& name : channels_) send(kind::subscribe, name);
  for (const std::string& name : patterns_) send(kind::psubscribe, name);
  for (const std::string& name : shard_channels_) send(kind::ssubscribe, name);
  for (const std::string& name : dropped_channels_) send(kind::unsubscribe, name);
  for (const std::string& name : dropped_patterns_) send(kind::punsubscribe, name);
  for (const std::string& name : dropped_shard_channels_) send(kind::sunsubscribe, name);
  dropped_channels_.clear();
  dropped_patterns_.clear();
  dropped_shard_channels_.clear();
}

void subscriber::on_state(void* self, connection_state s) {
  auto& sub = *static_cast<subscriber*>(self);
  sub.confirmed_ = 0;  // not connected, or a new connection: nothing subscribed on the server yet
  sub.shard_confirmed_ = 0;
  sub.reading_ = false;
  sub.unanswered_.clear();  // what the last connection sent is answered there or never
  sub.ping_outstanding_ = false;
  sub.loop_.cancel(sub.health_timer_);
  if (!sub.conn_->last_error().empty() && s == connection_state::backoff) sub.last_error_ = sub.conn_->last_error();
  if (s != connection_state::ready) return;
  if (sub.conn_->protocol() != 3) {
    // The server refused HELLO 3: its messages would be arrays, indistinguishable from replies.
    // Stop instead of misrouting them.
    sub.failed_ = true;
    sub.error_ = "pub/sub needs RESP3: the server answered HELLO 3 with an error (Redis 6 or later speaks it)";
    sub.loop_.arm(sub.close_timer_, sub.loop_.now());
    return;
  }
  sub.ever_ready_ = true;
  sub.send_all();
  if (sub.health_interval_.count() > 0 && !sub.closed_) {
    sub.heard_since_tick_ = false;
    sub.loop_.arm(sub.health_timer_, net::deadline_after(sub.loop_.now(), sub.health_interval_));
  }
}

void subscriber::on_close_timer(net::timer* t) { static_cast<owned_timer*>(t)->owner->conn_->close(); }

void subscriber::on_health_timer(net::timer* t) {
  subscriber& s = *static_cast<owned_timer*>(t)->owner;
  if (s.conn_->state() != connection_state::ready || s.closed_) return;
  if (s.ping_outstanding_) {
    // A whole interval without its PONG (or anything else): the peer is gone or stalled.
    s.conn_->drop("health check: no reply to PING within " + std::to_string(s.health_interval_.count()) + " ms");
    return;  // on_state re-arms once ready again
  }
  if (!s.heard_since_tick_) {  // only a silent connection is probed: pushes flowing prove it alive
    s.ping_outstanding_ = true;
    s.send(kind::ping, {});
  }
  s.heard_since_tick_ = false;
  s.loop_.arm(s.health_timer_, net::deadline_after(s.loop_.now(), s.health_interval_));
}

void subscriber::on_push(void* self, const resp::node& n) { static_cast<subscriber*>(self)->push_node(n); }

// What reaches the push handler on a subscribed RESP3 connection (no request ever waits for a
// reply here): pub/sub pushes, element by element — [kind, channel, payload] for message and
// smessage, [pmessage, pattern, channel, payload], [kind, channel or pattern, count] for the
// confirmations (redis.io/docs/latest/develop/interact/pubsub) — and plain replies: +PONG for the health check,
// an error for a refused command. Anything else (another push kind, a malformed one: a wrong
// element count or type) is skipped whole, never delivered in part.
void subscriber::push_node(const resp::node& n) {
  heard_since_tick_ = true;
  if (n.depth == 0) {
    // A top-level attribute's children are skipped with it: the value it annotates comes next,
    // at depth 0 again.
    reading_ = n.data_type == resp::type::push;
    push_size_ = n.size;
    element_ = 0;
    push_ = push_kind::none;
    if (resp::is_error(n.data_type)) refused_one(n.value);
    if (n.data_type == resp::type::simple_string && n.value == "PONG") ping_outstanding_ = false;
    return;
  }
  if (!reading_ || n.depth != 1 || n.data_type == resp::type::attribute) return;  // an element's annotation
  const std::uint32_t index = element_++;
  if (index == 0) {
    const std::string_view word = is_text(n) ? n.value : std::string_view();
    push_ = word == "message"        ? push_kind::message
            : word == "smessage"     ? push_kind::smessage
            : word == "pmessage"     ? push_kind::pmessage
            : word == "subscribe"    ? push_kind::subscribe
            : word == "psubscribe"   ? push_kind::psubscribe
            : word == "ssubscribe"   ? push_kind::ssubscribe
            : word == "unsubscribe"  ? push_kind::unsubscribe
            : word == "punsubscribe" ? push_kind::punsubscribe
            : word == "sunsubscribe" ? push_kind::sunsubscribe
                                     : push_kind::none;
    reading_ = push_ != push_kind::none && push_size_ == (push_ == push_kind::pmessage ? 4u : 3u);
    return;
  }
  if (index == 1) {
    // An unsubscribe with nothing subscribed names no channel: null.
    if (is_text(n)) {
      first_.assign(n.value);
    } else if (n.data_type == resp::type::null && push_ != push_kind::message && push_ != push_kind::smessage &&
               push_ != push_kind::pmessage) {
      first_.clear();
    } else {
      reading_ = false;
    }
    return;
  }
  reading_ = false;  // unless the pmessage goes on
  switch (push_) {
    case push_kind::message:
    case push_kind::smessage:
      if (index == 2 && is_text(n)) {
        const auto event = push_ == push_kind::message ? pubsub_kind::message : pubsub_kind::smessage;
        deliver({.kind = event, .channel = first_, .payload = n.value});
      }
      return;
    case push_kind::pmessage:
      if (index == 2 && is_text(n)) {
        second_.assign(n.value);
        reading_ = true;
      } else if (index == 3 && is_text(n)) {
        deliver({.kind = pubsub_kind::pmessage, .channel = second_, .pattern = first_, .payload = n.value});
      }
      return;
    case push_kind::none:
      return;
    default:  // a confirmation: its count
      if (index == 2 && n.data_type == resp::type::integer) {
        const auto k = push_ == push_kind::subscribe     ? kind::subscribe
                       : push_ == push_kind::psubscribe  ? kind::psubscribe
                       : push_ == push_kind::ssubscribe  ? kind::ssubscribe
                       : push_ == push_kind::unsubscribe ? kind::unsubscribe
                       : push_ == push_kind::sunsubscribe ? kind::sunsubscribe
                                                          : kind::punsubscribe;
        // Redis counts sharded channels apart from channels and patterns (pubsub.c).
        (k == kind::ssubscribe || k == kind::sunsubscribe ? shard_confirmed_ : confirmed_) = n.integer;
        if (k == kind::sunsubscribe && !confirmed_one(k, first_)) {
          // Asked by nobody: the node ended it because the channel's slot left it (Redis 7
          // cluster.c, clusterDelSlot -> removeChannelsInSlot). Sending it again here would be
          // refused with MOVED: it leaves the set.
          if (const auto it = shard_channels_.find(first_); it != shard_channels_.end()) {
            shard_channels_.erase(it);
            deliver({.kind = pubsub_kind::slot_moved, .channel = first_, .count = n.integer});
            return;
          }
        }
        if (k != kind::sunsubscribe) confirmed_one(k, first_);
        const auto event = k == kind::subscribe      ? pubsub_kind::subscribe
                           : k == kind::psubscribe   ? pubsub_kind::psubscribe
                           : k == kind::ssubscribe   ? pubsub_kind::ssubscribe
                           : k == kind::unsubscribe  ? pubsub_kind::unsubscribe
                           : k == kind::sunsubscribe ? pubsub_kind::sunsubscribe
                                                     : pubsub_kind::punsubscribe;
        deliver({.kind = event, .channel = first_, .count = n.integer});
      }
      return;
  }
}

// A confirmation answers the oldest unanswered command for that name (a name asked for twice, or
// sent again by a reconnect's send_all, is confirmed as often).
bool subscriber::confirmed_one(kind k, std::string_view name) {
  const auto it = std::find_if(unanswered_.begin(), unanswered_.end(),
                               [&](const pending_command& c) { return c.what == k && c.name == name; });
  if (it == unanswered_.end()) return false;
  unanswered_.erase(it);
  return true;
}

// An error reply answers the oldest unanswered command: a refused (P)SUBSCRIBE leaves the sets
// (sending it again after each reconnect would only be refused again).
//
// A redirection (MOVED or ASK, from a cluster node) names a slot: it answers the oldest sharded
// command of that slot instead. A node that loses a slot pushes its own sunsubscribe for each of its
// channels; one crossing our SUNSUBSCRIBE of that channel is taken for its answer, and the node's
// MOVED reply to our command comes after it: by position it would be blamed on the next command
// (a review proved it: a later SSUBSCRIBE refused, its name dropped while the server kept it).
void subscriber::refused_one(std::string_view error) {
  last_error_.assign(error);
  auto it = unanswered_.begin();
  cluster_redirection redirection;
  const int slot = parse_cluster_redirection(error, redirection) ? redirection.slot : -1;
  if (slot >= 0) {
    it = std::find_if(unanswered_.begin(), unanswered_.end(), [&](const pending_command& c) {
      return (c.what == kind::ssubscribe || c.what == kind::sunsubscribe) && hash_slot(c.name) == slot;
    });
  }
  if (it == unanswered_.end()) return;  // not ours to place (nothing sent waits for this answer)
  const pending_command c = std::move(*it);
  unanswered_.erase(it);
  if (c.what == kind::sunsubscribe && slot >= 0) return;  // the node serves it no more: as good as done
  if (c.what == kind::subscribe || c.what == kind::psubscribe || c.what == kind::ssubscribe) set_of(c.what).erase(c.name);
  deliver({.kind = pubsub_kind::refused, .channel = c.name, .payload = error});
}

void subscriber::deliver(const pubsub_event& e) {
  if (closed_) return;
  if (e.kind == pubsub_kind::message || e.kind == pubsub_kind::smessage || e.kind == pubsub_kind::pmessage) ++messages_;
  if (handler_ == nullptr) return;
  dispatching_ = true;
  handler_(context_, e);
  dispatching_ = false;
}

}  // namespace redring::client
