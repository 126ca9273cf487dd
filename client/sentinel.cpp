// SPDX-License-Identifier: MIT
#include "client/sentinel.hpp"

#include "client/error.hpp"
#include "resp/type.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace redring::client {
namespace {

// Replica entries of SENTINEL REPLICAS looked at; later ones are ignored.
constexpr std::size_t kMaxReplicas = 1024;
// The most sentinels a lookup keeps in its list (those configured and those learned).
constexpr std::size_t kMaxSentinels = 64;
// The longest string a sentinel's reply may hold (a host name is at most 255 bytes).
constexpr std::uint64_t kMaxSentinelString = 4096;

bool parse_port(std::string_view text, std::uint16_t& out) {
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
  if (ec != std::errc{} || end != text.data() + text.size() || p == 0 || p > 65535) return false;
  out = static_cast<std::uint16_t>(p);
  return true;
}

// GET-MASTER-ADDR-BY-NAME's [ip, port] into `out`; false if it is not that.
bool address_of(const std::vector<std::string>& fields, sentinel_answer& out) {
  if (fields.size() != 2 || fields[0].empty() || !parse_port(fields[1], out.port)) return false;
  out.host = fields[0];
  return true;
}

// A flag in Sentinel's comma-separated list ("slave,s_down,disconnected").
bool has_flag(std::string_view flags, std::string_view flag) {
  while (!flags.empty()) {
    const auto comma = flags.find(',');
    if (flags.substr(0, comma) == flag) return true;
    if (comma == std::string_view::npos) break;
    flags.remove_prefix(comma + 1);
  }
  return false;
}

// A sentinel is a Redis server of its own: its own credentials, database 0, no reconnect (the next
// sentinel is tried instead). TLS as the servers' (a deployment that encrypts one encrypts both).
options sentinel_connection_options(const options& server) {
  options o = server;
  o.unix_path.clear();
  o.user = server.sentinel.user;
  o.password = server.sentinel.password;
  o.database = 0;
  o.client_name.clear();
  o.set_lib_info = false;
  o.read_only = false;
  if (server.sentinel.timeout.count() > 0) o.connect_timeout = server.sentinel.timeout;
  o.command_timeout = milliseconds(0);
  o.health_check_interval = milliseconds(0);
  o.reconnect.enabled = false;
  o.pool_size = 1;
  o.offline_queue_limit = 4;
  o.read_buffer_bytes = 8 * 1024;
  o.use_buffer_ring = false;  // the loop's shared buffers are for the servers' replies
  // Small replies only (an address, a few replicas' fields): a hostile sentinel's 512 MiB string
  // or 2^29-element array is a protocol error, not memory held.
  o.protocol_limits.max_bulk_length = kMaxSentinelString;
  o.protocol_limits.max_line_length = kMaxSentinelString;
  o.protocol_limits.max_aggregate_size = 4096;
  o.protocol_limits.max_depth = 8;
  o.protocol_limits.max_held_attribute_bytes = kMaxSentinelString;
  o.cluster = {};
  o.sentinel = {};
  return o;
}

}  // namespace

sentinel_lookup::sentinel_lookup(net::loop& loop, const options& server, done_fn done, void* context)
    : loop_(loop), settings_(server.sentinel), sentinel_options_(sentinel_connection_options(server)), done_(done), context_(context),
      order_(server.sentinel.sentinels), rng_(static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(this))) {
  settle_timer_.fn = &sentinel_lookup::on_settle;
  settle_timer_.owner = this;
  query_.owner = this;
  query_.encode = [](request& r, resp::writer& w) {
    const auto& s = static_cast<query&>(r).owner->settings_;
    if (s.role == sentinel_role::master) {
      w.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.master_name);
    } else {
      w.command("SENTINEL", "REPLICAS", s.master_name);
    }
  };
  query_.on_node = [](request& r, const resp::node& n) { static_cast<query&>(r).owner->on_reply_node(n); };
  query_.on_done = [](request& r, std::error_code ec) {
    sentinel_lookup* self = static_cast<query&>(r).owner;
    if (!self->running_) return;  // cancelled: the connection's close completed it
    self->query_error_ = ec;
    // Settled on the next turn: the sentinel's connection is released there, not inside its own callback.
    if (--self->outstanding_ == 0) self->loop_.arm(self->settle_timer_, self->loop_.now());
  };
  peers_.owner = this;
  peers_.encode = [](request& r, resp::writer& w) {
    w.command("SENTINEL", "SENTINELS", static_cast<peers_query&>(r).owner->settings_.master_name);
  };
  peers_.on_node = [](request& r, const resp::node& n) { static_cast<peers_query&>(r).peers.add(n, kMaxSentinels); };
  peers_.on_done = [](request& r, std::error_code) {
    sentinel_lookup* self = static_cast<peers_query&>(r).owner;
    if (!self->running_) return;
    if (--self->outstanding_ == 0) self->loop_.arm(self->settle_timer_, self->loop_.now());
  };
}

void sentinel_lookup::entry_list::add(const resp::node& n, std::size_t max) {
  if (n.depth == 1) {
    if (++seen <= max) entries.emplace_back();
    key_next = true;
    return;
  }
  if (n.depth != 2 || entries.empty() || seen > max) return;
  if (key_next) {
    key.assign(n.value);
  } else {
    entry& e = entries.back();
    if (key == "ip") e.ip.assign(n.value);
    else if (key == "port") e.port.assign(n.value);
    else if (key == "flags") e.flags.assign(n.value);
    else if (key == "master-link-status") e.link.assign(n.value);
  }
  key_next = !key_next;
}

void sentinel_lookup::entry_list::clear() noexcept {
  std::vector<entry>().swap(entries);  // not held between lookups
  seen = 0;
  key.clear();
  key_next = true;
}

sentinel_lookup::~sentinel_lookup() { cancel(); }

void sentinel_lookup::start() {
  if (running_) return;
  running_ = true;
  reasons_.clear();
  if (order_.empty()) {
    finish(errc::connect_failed, {}, "no sentinel configured for '" + settings_.master_name + "'");
    return;
  }
  ask(0);
}

void sentinel_lookup::cancel() noexcept {
  running_ = false;
  loop_.cancel(settle_timer_);
  conn_.reset();  // completes the query (shutting_down), which running_ = false ignores
}

void sentinel_lookup::ask(std::size_t index) {
  index_ = index;
  query_error_ = {};
  reply_error_.clear();
  reply_null_ = false;
  reply_aggregate_ = false;
  master_fields_.clear();
  replicas_.clear();
  peers_.peers.clear();
  options o = sentinel_options_;
  o.host = order_[index].host;
  o.port = order_[index].port;
  conn_ = connection::create(loop_, o);
  conn_->start();
  // The whole question (connect, handshake, answer) within the timeout (0: connect_timeout, else
  // 500 ms): a sentinel that accepts and stays silent is skipped as one that refuses.
  const milliseconds limit = settings_.timeout.count() > 0 ? settings_.timeout : sentinel_options_.connect_timeout;
  query_.timeout = limit.count() > 0 ? limit : milliseconds(500);
  peers_.timeout = query_.timeout;
  outstanding_ = 2;
  conn_->submit(query_);
  conn_->submit(peers_);  // in the same write
}

void sentinel_lookup::on_reply_node(const resp::node& n) {
  if (n.depth == 0) {
    if (resp::is_error(n.data_type)) reply_error_.assign(n.value);
    else if (n.data_type == resp::type::null) reply_null_ = true;
    else if (resp::is_aggregate(n.data_type)) reply_aggregate_ = true;
    return;
  }
  if (settings_.role == sentinel_role::master) {
    if (n.depth == 1 && master_fields_.size() < 2) master_fields_.emplace_back(n.value);
    return;
  }
  replicas_.add(n, kMaxReplicas);
}

void sentinel_lookup::on_settle(net::timer* t) { static_cast<settle_timer*>(t)->owner->settle(); }

// Empty if the reply names a server (in `out`), else why not.
std::string sentinel_lookup::answer_from_reply(sentinel_answer& out) {
  if (!reply_error_.empty()) return reply_error_;
  const std::string master = "'" + settings_.master_name + "'";
  if (reply_null_) return "does not know master " + master;
  if (!reply_aggregate_) return "unexpected reply to SENTINEL";
  if (settings_.role == sentinel_role::master) {
    return address_of(master_fields_, out) ? std::string() : "unexpected reply to SENTINEL GET-MASTER-ADDR-BY-NAME";
  }
  std::vector<const entry_list::entry*> healthy;
  for (const entry_list::entry& e : replicas_.entries) {
    std::uint16_t port = 0;
    if (e.ip.empty() || !parse_port(e.port, port)) continue;
    if (has_flag(e.flags, "s_down") || has_flag(e.flags, "o_down") || has_flag(e.flags, "disconnected")) continue;
    if (!e.link.empty() && e.link != "ok") continue;  // still syncing from a new master, or cut off
    healthy.push_back(&e);
  }
  if (healthy.empty()) return "knows no healthy replica of " + master + " (" + std::to_string(replicas_.entries.size()) + " listed)";
  // At random: the clients of a service spread over its replicas.
  const entry_list::entry& pick = *healthy[std::uniform_int_distribution<std::size_t>(0, healthy.size() - 1)(rng_)];
  out.host = pick.ip;
  (void)parse_port(pick.port, out.port);
  return {};
}

void sentinel_lookup::settle() {
  if (!running_) return;
  const sentinel_address& asked = order_[index_];
  sentinel_answer answer;
  std::string why;
  if (query_error_) {
    why = conn_ && !conn_->last_error().empty() ? conn_->last_error() : query_error_.message();
  } else {
    why = answer_from_reply(answer);
  }
  conn_.reset();
  replicas_.clear();
  master_fields_.clear();
  if (why.empty()) {
    // The spec: the sentinel that answered is asked first next time.
    std::rotate(order_.begin(), order_.begin() + static_cast<std::ptrdiff_t>(index_),
                order_.begin() + static_cast<std::ptrdiff_t>(index_) + 1);
    for (const entry_list::entry& e : peers_.peers.entries) {
      sentinel_address peer{e.ip, 0};
      if (peer.host.empty() || !parse_port(e.port, peer.port) || order_.size() >= kMaxSentinels) continue;
      const bool known = std::any_of(order_.begin(), order_.end(), [&peer](const sentinel_address& a) {
        return a.host == peer.host && a.port == peer.port;
      });
      if (!known) order_.push_back(std::move(peer));
    }
    peers_.peers.clear();
    finish({}, answer, {});
    return;
  }
  if (!reasons_.empty()) reasons_ += "; ";
  reasons_ += "sentinel " + asked.host + ":" + std::to_string(asked.port) + ": " + why;
  if (index_ + 1 < order_.size()) {
    ask(index_ + 1);
    return;
  }
  finish(errc::connect_failed, {}, "no sentinel gave the " +
                                       std::string(settings_.role == sentinel_role::master ? "master" : "replica") +
                                       " of '" + settings_.master_name + "' (" + reasons_ + ")");
}

void sentinel_lookup::finish(std::error_code ec, const sentinel_answer& where, const std::string& why) {
  running_ = false;
  done_(context_, ec, where, why);
}

// --- sentinel_watch ---

namespace {
constexpr std::string_view kSwitchChannel = "+switch-master";
constexpr auto kWatchRetry = std::chrono::seconds(1);
constexpr auto kWatchHealth = std::chrono::seconds(1);
}  // namespace

sentinel_watch::sentinel_watch(net::loop& loop, const options& server, switch_fn on_switch, void* context)
    : loop_(loop), master_name_(server.sentinel.master_name), sentinel_options_(sentinel_connection_options(server)),
      on_switch_(on_switch), context_(context) {
  sentinel_options_.protocol = 3;  // the events arrive as pushes
  // A sentinel that freezes (stopped, cut off without a close) must not hold the watch: idle, the
  // connection PINGs (answered as a reply in RESP3, also while subscribed) and drops if no PONG
  // comes within the interval; the next sentinel is watched a second later.
  sentinel_options_.health_check_interval = kWatchHealth;
  retry_timer_.fn = &sentinel_watch::on_retry;
  retry_timer_.owner = this;
  subscribe_.owner = this;
  subscribe_.replies = 0;  // confirmed by a push, not a reply (RESP3)
  subscribe_.encode = [](request&, resp::writer& w) { w.command("SUBSCRIBE", kSwitchChannel); };
  subscribe_.on_node = [](request&, const resp::node&) {};
  subscribe_.on_done = [](request&, std::error_code) {};
  check_.owner = this;
  check_.encode = [](request& r, resp::writer& w) {
    w.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", static_cast<check_request&>(r).owner->master_name_);
  };
  check_.on_node = [](request& r, const resp::node& n) {
    auto& c = static_cast<check_request&>(r);
    if (n.depth == 1 && c.fields.size() < 2) c.fields.emplace_back(n.value);
  };
  check_.on_done = [](request& r, std::error_code ec) {
    auto& c = static_cast<check_request&>(r);
    sentinel_watch* w = c.owner;
    w->check_in_flight_ = false;
    sentinel_answer to;
    if (!ec && w->running_ && address_of(c.fields, to)) w->report({}, to);
  };
}

sentinel_watch::~sentinel_watch() { stop(); }

void sentinel_watch::start(const std::vector<sentinel_address>& order) {
  if (running_ || order.empty()) return;
  running_ = true;
  order_ = order;
  index_ = 0;
  open();
}

void sentinel_watch::stop() noexcept {
  running_ = false;
  subscribed_ = false;
  if (!conn_) return;
  conn_->on_state_change(nullptr, nullptr);
  conn_->set_push_handler({});
  if (reporting_) {
    // Inside this connection's dispatch (the owner stopped on our report): released on the next
    // turn (on_retry), not inside its own callback.
    loop_.arm(retry_timer_, loop_.now());
    return;
  }
  loop_.cancel(retry_timer_);
  conn_.reset();
}

void sentinel_watch::report(const sentinel_answer& from, const sentinel_answer& to) {
  reporting_ = true;
  on_switch_(context_, from, to);
  reporting_ = false;
}

void sentinel_watch::open() {
  options o = sentinel_options_;
  o.host = order_[index_].host;
  o.port = order_[index_].port;
  conn_ = connection::create(loop_, o);
  conn_->on_state_change(&sentinel_watch::on_state, this);
  conn_->set_push_handler({&sentinel_watch::on_push, this});
  conn_->start();
}

void sentinel_watch::on_state(void* self, connection_state s) {
  auto* w = static_cast<sentinel_watch*>(self);
  if (s == connection_state::ready) {
    if (w->conn_->protocol() == 3) {
      w->conn_->submit(w->subscribe_);
      return;
    }
    // RESP2: a subscription's messages would arrive as replies no request waits for.
  } else if (s != connection_state::closed) {
    return;
  }
  // Lost (reconnect is off), or of no use: the next sentinel, a second from now (the connection is
  // released there, not inside its own callback).
  w->subscribed_ = false;
  w->conn_->on_state_change(nullptr, nullptr);
  w->loop_.arm(w->retry_timer_, net::deadline_after(w->loop_.now(), kWatchRetry));
}

void sentinel_watch::on_retry(net::timer* t) {
  auto* w = static_cast<retry_timer*>(t)->owner;
  w->conn_->set_push_handler({});
  w->conn_.reset();
  if (!w->running_) return;  // stopped while reporting
  w->index_ = (w->index_ + 1) % w->order_.size();
  w->open();
}

// A push arrives node by node: ["subscribe", channel, count] once, then ["message", channel, payload].
void sentinel_watch::on_push(void* self, const resp::node& n) {
  auto* w = static_cast<sentinel_watch*>(self);
  if (n.depth == 0) w->push_.clear();
  if (n.depth == 1) w->push_.emplace_back(n.value);
  if (!n.ends_reply || w->push_.size() != 3 || w->push_[1] != kSwitchChannel) return;
  if (w->push_[0] == "subscribe") {
    w->subscribed_ = true;
    // A failover announced before the subscription would be missed: ask where the master is now.
    if (!w->check_in_flight_) {
      w->check_in_flight_ = true;
      w->check_.fields.clear();
      w->conn_->submit(w->check_);
    }
  }
  if (w->push_[0] == "message") w->on_event(w->push_[2]);
}

// "<name> <old ip> <old port> <new ip> <new port>"
void sentinel_watch::on_event(std::string_view payload) {
  std::vector<std::string_view> parts;
  while (!payload.empty()) {
    const auto space = payload.find(' ');
    parts.push_back(payload.substr(0, space));
    payload = space == std::string_view::npos ? std::string_view() : payload.substr(space + 1);
  }
  sentinel_answer from, to;
  if (parts.size() != 5 || parts[0] != master_name_ || !parse_port(parts[2], from.port) || !parse_port(parts[4], to.port)) {
    return;
  }
  from.host = parts[1];
  to.host = parts[3];
  report(from, to);
}

}  // namespace redring::client
