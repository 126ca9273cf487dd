// SPDX-License-Identifier: MIT
#include "client/subscriber.hpp"

#include "resp/writer.hpp"

#include <vector>

namespace redring::client {

namespace {

constexpr std::string_view command_name(int k) noexcept {
  constexpr std::string_view names[] = {"SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE"};
  return names[k];
}

// A push element that holds text: a blob string (not streamed: Redis never streams one) or a
// simple string.
bool is_text(const resp::node& n) noexcept {
  return (n.data_type == resp::type::blob_string && !n.streamed) || n.data_type == resp::type::simple_string;
}

}  // namespace

subscriber::subscriber(net::loop& loop, const options& opts) : loop_(loop), conn_(connection::create(loop, opts)) {
  command_.owner = this;
  command_.replies = 0;  // the server answers (UN)SUBSCRIBE with pushes, not replies (RESP3)
  command_.encode = [](request& r, resp::writer& w) {
    subscriber& s = *static_cast<command_request&>(r).owner;
    w.aggregate_header(resp::type::array, 1 + s.sending_names_.size());
    w.bulk(command_name(static_cast<int>(s.sending_)));
    for (const std::string_view name : s.sending_names_) w.bulk(name);
  };
  command_.on_node = [](request&, const resp::node&) {};
  command_.on_done = [](request&, std::error_code) {};
  close_timer_.owner = this;
  close_timer_.fn = &subscriber::on_close_timer;
  conn_->on_state_change(&subscriber::on_state, this);
  conn_->set_push_handler({&subscriber::on_push, this});
  if (opts.protocol != 3) {
    failed_ = true;
    error_ = "pub/sub needs RESP3 (options::protocol 3, Redis 6 or later)";
  }
}

subscriber::~subscriber() {
  loop_.cancel(close_timer_);
  conn_->on_state_change(nullptr, nullptr);
  conn_->set_push_handler({});
}

void subscriber::start() {
  if (failed_) return;  // RESP2: nothing to connect for
  conn_->start();
}

void subscriber::close() {
  closed_ = true;
  if (dispatching_) {  // inside the connection's dispatch of a push: close once it has returned
    loop_.arm(close_timer_, loop_.now());
    return;
  }
  loop_.cancel(close_timer_);
  conn_->close();
}

void subscriber::change(kind k, std::span<const std::string_view> names) {
  const bool channels = k == kind::subscribe || k == kind::unsubscribe;
  auto& set = channels ? channels_ : patterns_;
  auto& dropped = channels ? dropped_channels_ : dropped_patterns_;
  const bool connected = conn_->state() == connection_state::ready;
  std::vector<std::string_view> changed;
  for (const std::string_view name : names) {
    if (k == kind::subscribe || k == kind::psubscribe) {
      if (set.emplace(name).second) changed.push_back(name);
      if (const auto it = dropped.find(name); it != dropped.end()) dropped.erase(it);
    } else if (const auto it = set.find(name); it != set.end()) {
      set.erase(it);
      changed.push_back(name);
      if (!connected) dropped.emplace(name);
    }
  }
  send(k, changed);
}

void subscriber::send(kind k, std::span<const std::string_view> names) {
  // Not connected: the sets are sent whole once it is (send_all), nothing is queued meanwhile.
  if (names.empty() || failed_ || closed_ || conn_->state() != connection_state::ready) return;
  sending_ = k;
  sending_names_ = names;
  conn_->submit(command_);  // encoded during the call (no reply to wait for: it completes at once)
  sending_names_ = {};
}

void subscriber::send_all() {
  std::vector<std::string_view> names(channels_.begin(), channels_.end());
  send(kind::subscribe, names);
  names.assign(patterns_.begin(), patterns_.end());
  send(kind::psubscribe, names);
  names.assign(dropped_channels_.begin(), dropped_channels_.end());
  send(kind::unsubscribe, names);
  names.assign(dropped_patterns_.begin(), dropped_patterns_.end());
  send(kind::punsubscribe, names);
  dropped_channels_.clear();
  dropped_patterns_.clear();
}

void subscriber::on_state(void* self, connection_state s) {
  auto& sub = *static_cast<subscriber*>(self);
  sub.confirmed_ = 0;  // not connected, or a new connection: nothing subscribed on the server yet
  sub.reading_ = false;
  if (s != connection_state::ready) return;
  if (sub.conn_->protocol() != 3) {
    // The server refused HELLO 3: its messages would be arrays, indistinguishable from the replies
    // of the health check's PING. Stop instead of misrouting them.
    sub.failed_ = true;
    sub.error_ = "pub/sub needs RESP3: the server answered HELLO 3 with an error (Redis 6 or later speaks it)";
    sub.loop_.arm(sub.close_timer_, sub.loop_.now());
    return;
  }
  sub.send_all();
}

void subscriber::on_close_timer(net::timer* t) { static_cast<close_timer*>(t)->owner->conn_->close(); }

void subscriber::on_push(void* self, const resp::node& n) { static_cast<subscriber*>(self)->push_node(n); }

// A pub/sub push (RESP3 `>`), element by element: [kind, channel, payload] for message,
// [pmessage, pattern, channel, payload], and [kind, channel or pattern, count] for the
// confirmations (redis.io/docs/latest/develop/interact/pubsub). Anything else (another push kind,
// a malformed one) is skipped whole, never delivered in part.
void subscriber::push_node(const resp::node& n) {
  if (n.depth == 0) {
    // A top-level attribute's children are skipped with it: the value it annotates comes next,
    // at depth 0 again.
    reading_ = n.data_type == resp::type::push;
    element_ = 0;
    push_ = push_kind::none;
    return;
  }
  if (!reading_ || n.depth != 1 || n.data_type == resp::type::attribute) return;  // an element's annotation
  const std::uint32_t index = element_++;
  if (index == 0) {
    const std::string_view word = is_text(n) ? n.value : std::string_view();
    push_ = word == "message"        ? push_kind::message
            : word == "pmessage"     ? push_kind::pmessage
            : word == "subscribe"    ? push_kind::subscribe
            : word == "psubscribe"   ? push_kind::psubscribe
            : word == "unsubscribe"  ? push_kind::unsubscribe
            : word == "punsubscribe" ? push_kind::punsubscribe
                                     : push_kind::none;
    reading_ = push_ != push_kind::none;
    return;
  }
  if (index == 1) {
    // An unsubscribe with nothing subscribed names no channel: null.
    if (is_text(n)) {
      first_.assign(n.value);
    } else if (n.data_type == resp::type::null && push_ != push_kind::message && push_ != push_kind::pmessage) {
      first_.clear();
    } else {
      reading_ = false;
    }
    return;
  }
  reading_ = false;  // unless the pmessage goes on
  switch (push_) {
    case push_kind::message:
      if (index == 2 && is_text(n)) {
        deliver({.kind = pubsub_kind::message, .channel = first_, .payload = n.value});
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
        confirmed_ = n.integer;
        const auto k = push_ == push_kind::subscribe     ? pubsub_kind::subscribe
                       : push_ == push_kind::psubscribe  ? pubsub_kind::psubscribe
                       : push_ == push_kind::unsubscribe ? pubsub_kind::unsubscribe
                                                         : pubsub_kind::punsubscribe;
        deliver({.kind = k, .channel = first_, .count = n.integer});
      }
      return;
  }
}

void subscriber::deliver(const pubsub_event& e) {
  if (closed_) return;
  if (e.kind == pubsub_kind::message || e.kind == pubsub_kind::pmessage) ++messages_;
  if (handler_ == nullptr) return;
  dispatching_ = true;
  handler_(context_, e);
  dispatching_ = false;
}

}  // namespace redring::client
