// SPDX-License-Identifier: MIT
#include "client/cluster.hpp"

#include "client/destruction_watch.hpp"
#include "client/error.hpp"
#include "client/hash_slot.hpp"
#include "resp/reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <unordered_map>

namespace redring::client {
namespace {

bool iequals(std::string_view a, std::string_view upper) noexcept {
  return a.size() == upper.size() && std::equal(a.begin(), a.end(), upper.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == y;
         });
}

template <class Int>
bool parse_int(std::string_view text, Int& out) {
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && p == text.data() + text.size();
}

// Splits the commands a writer holds back into their arguments. The bytes are our own encoding
// (arrays of bulk strings); a payload the writer referenced instead of copying is an iovec of its own,
// between the buffer bytes holding its `$len\r\n` and its `\r\n`.
class command_splitter {
 public:
  explicit command_splitter(std::span<const iovec> iov) : iov_(iov) {}

  /// Appends the next command's arguments to `out`. False at the end, or on bytes of another shape.
  bool next(std::vector<std::string_view>& out) {
    std::uint64_t count = 0;
    if (!header('*', count)) return false;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint64_t length = 0;
      if (!header('$', length)) return false;
      std::string_view payload;
      if (!take(length, payload)) return false;
      out.push_back(payload);
    }
    return true;
  }
  [[nodiscard]] bool at_end() {
    skip_empty();
    return segment_ == iov_.size();
  }

 private:
  std::string_view current() const {
    const iovec& v = iov_[segment_];
    return {static_cast<const char*>(v.iov_base) + offset_, v.iov_len - offset_};
  }
  void skip_empty() {
    while (segment_ < iov_.size() && offset_ == iov_[segment_].iov_len) ++segment_, offset_ = 0;
  }
  bool header(char type, std::uint64_t& n) {
    skip_empty();
    if (segment_ == iov_.size()) return false;
    const std::string_view v = current();
    const auto cr = v.find("\r\n");
    if (v[0] != type || cr == std::string_view::npos || !parse_int(v.substr(1, cr - 1), n)) return false;
    offset_ += cr + 2;
    return true;
  }
  bool take(std::uint64_t length, std::string_view& payload) {
    if (segment_ < iov_.size() && offset_ < iov_[segment_].iov_len) {
      const std::string_view v = current();  // copied inline
      if (v.size() < length + 2 || v.substr(length, 2) != "\r\n") return false;
      payload = v.substr(0, length);
      offset_ += length + 2;
      return true;
    }
    // Referenced: the next iovec is the payload, and the one after starts with its CRLF.
    ++segment_, offset_ = 0;
    if (segment_ + 1 >= iov_.size() || iov_[segment_].iov_len != length) return false;
    payload = current();
    ++segment_, offset_ = 0;
    if (iov_[segment_].iov_len < 2 || std::memcmp(iov_[segment_].iov_base, "\r\n", 2) != 0) return false;
    offset_ = 2;
    return true;
  }

  std::span<const iovec> iov_;
  std::size_t segment_ = 0, offset_ = 0;
};

// The fast path of `command_splitter`: one command from contiguous bytes (nothing referenced), with
// lengths read digit by digit (they are ours: well formed). Advances `at`. False on another shape.
bool split_contiguous(const char*& at, const char* end, std::vector<std::string_view>& out) {
  const char* p = at;
  auto length = [&p, end](char type, std::size_t& n) {
    if (p >= end || *p != type) return false;
    n = 0;
    for (++p; p < end && *p >= '0' && *p <= '9'; ++p) n = n * 10 + static_cast<std::size_t>(*p - '0');
    if (end - p < 2 || p[0] != '\r') return false;
    p += 2;
    return true;
  };
  std::size_t count = 0;
  if (!length('*', count)) return false;
  for (std::size_t i = 0; i < count; ++i) {
    std::size_t n = 0;
    if (!length('$', n) || static_cast<std::size_t>(end - p) < n + 2) return false;
    out.emplace_back(p, n);
    p += n + 2;
  }
  at = p;
  return true;
}

// Feeds RESP bytes we wrote ourselves to a request, node by node. `lim`: the limits the replies
// were read under (protocol_limits), so that whatever a connection accepted replays whole.
void replay(request& r, std::string_view bytes, const resp::limits& lim) {
  resp::reader reader(lim);
  std::array<resp::node, 64> nodes;
  while (!bytes.empty()) {
    const resp::read_result res = reader.read(bytes, nodes);
    for (std::size_t i = 0; i < res.nodes; ++i) r.on_node(r, nodes[i]);
    bytes.remove_prefix(res.consumed);
    if (res.state != resp::status::ok) break;  // cannot happen: the bytes are whole replies
  }
}


// Keyless commands that act on one node's data or scripts: a cluster client sends them to every
// primary, so that e.g. a script loaded once can run under EVALSHA wherever its keys live.
bool is_broadcast(std::span<const std::string_view> args) {
  if (iequals(args[0], "FLUSHALL") || iequals(args[0], "FLUSHDB")) return true;
  if (args.size() < 2) return false;
  if (iequals(args[0], "SCRIPT")) return iequals(args[1], "LOAD") || iequals(args[1], "FLUSH");
  if (iequals(args[0], "FUNCTION")) {
    return iequals(args[1], "LOAD") || iequals(args[1], "DELETE") || iequals(args[1], "FLUSH") ||
           iequals(args[1], "RESTORE");
  }
  return false;
}

struct asking_request : request {
  static void done(request& r, std::error_code) { delete static_cast<asking_request*>(&r); }
  asking_request() {
    encode = [](request&, resp::writer& w) { w.command("ASKING"); };
    on_node = [](request&, const resp::node&) {};
    on_done = &done;
  }
};

// An ASKING taken back unsent belongs to the command after it, which is routed again on its own:
// sent elsewhere, it would let that node serve the next command of its connection.
bool is_asking(const request& r) noexcept { return r.on_done == &asking_request::done; }

}  // namespace

// --- Nodes ---

struct cluster_router::node {
  cluster_router* router = nullptr;
  std::string name, host;
  std::uint16_t port = 0;
  bool primary = false, healthy = true, in_topology = false;
  std::uint64_t sent = 0;
  options opts;
  connection::pointer conn;
  std::vector<connection::pointer> blocking;

  connection& main() {
    if (!conn) {
      conn = open();
      router->sync_fast_targets();  // a primary's first connection: the inline path may use it now
    }
    return *conn;
  }
  // Out of the routing's way: the first command to a node, and blocking commands.
  [[gnu::noinline]] connection& connection_for(const request& r) { return r.blocking ? blocking_connection() : main(); }
  // Blocking commands get connections of their own, as on a single server.
  // The rules of `client::blocking_connection`: idle(), not queued() == 0, since a blocking command
  // that timed out is still blocked on the server and its connection cannot serve another yet.
  connection& blocking_connection() {
    // Reaped first, as client::blocking_connection does: closed ones, and those a timed-out
    // blocking command left blocked on the server (nothing waits there, yet it is not idle).
    std::erase_if(blocking, [](const connection::pointer& c) { return c->spent_for_blocking(); });
    for (auto& c : blocking) {
      if (c->mux().idle() && c->state() != connection_state::closed) return *c;
    }
    return *blocking.emplace_back(open(/*for_blocking=*/true));
  }
  static bool is_down(const connection& c) noexcept {
    return c.state() == connection_state::backoff || c.state() == connection_state::closed;
  }
  // The main connection exists and is down (waiting to reconnect, or closed).
  [[nodiscard]] bool down() const noexcept { return conn && is_down(*conn); }
  // No connection of this node is up or on its way up.
  [[nodiscard]] bool all_down() const noexcept {
    return (!conn || is_down(*conn)) &&
           std::all_of(blocking.begin(), blocking.end(), [](const connection::pointer& c) { return is_down(*c); });
  }
  // The requests queued unsent on every connection of this node that is down.
  void take_unsent(std::vector<request*>& out) {
    const auto keep = [&out](request& r) { out.push_back(&r); };
    if (conn && is_down(*conn)) conn->take_unsent(keep);
    for (auto& c : blocking) {
      if (is_down(*c)) c->take_unsent(keep);
    }
  }
  connection::pointer open(bool for_blocking = false) {
    options o = opts;
    // No health check on a blocking connection: a blocking command keeps it silent by design, and a
    // PING behind it cannot be answered in time (its timeout would drop the connection and the command).
    if (for_blocking) o.health_check_interval = std::chrono::milliseconds(0);
    auto c = connection::create(router->loop_, o);
    c->set_redirect_handler({&cluster_router::on_redirect, this, &cluster_router::on_moved_in_batch});
    c->on_state_change(&cluster_router::on_node_state, this);
    if (router->push_.on_node != nullptr) c->set_push_handler(router->push_);
    c->start();
    return c;
  }
  // Closes its connections; false as soon as a completion destroyed the router, and this node with
  // it (see cluster_router::close).
  bool close(detail::destruction_watch& watch) {
    if (conn) conn->close();
    if (watch.gone()) return false;
    for (std::size_t i = 0; i < blocking.size(); ++i) {
      blocking[i]->close();
      if (watch.gone()) return false;
    }
    return true;
  }
  void close() {
    if (conn) conn->close();
    for (auto& c : blocking) c->close();
  }
};

// --- Requests the router makes ---

// A command split in parts (per slot, per pipeline command, per primary), merged when all are done.
struct cluster_router::fanout {
  enum class merge : std::uint8_t {
    mget,      // values placed back in the keys' order
    sum,       // DEL, UNLINK, EXISTS, TOUCH: integers added
    first,     // MSET, broadcasts: the first error, else the first reply
    in_order,  // a pipeline: every reply, in order
  };
  struct part : request {
    fanout* owner = nullptr;
    std::string wire;    // the part's command
    std::string target;  // a node when addressed (broadcasts)
    resp::value_builder builder;
    resp::value reply;
    std::vector<std::uint32_t> positions;  // mget: where each value goes
  };

  fanout(cluster_router& owner, request& whole, merge how, std::size_t parts_count)
      : router(owner), parent(whole), kind(how), parts(std::make_unique<part[]>(parts_count)), count(parts_count),
        pending(parts_count + 1), limits(owner.opts_.protocol_limits) {
    for (std::size_t i = 0; i < parts_count; ++i) {
      part& q = parts[i];
      q.owner = this;
      q.timeout = whole.timeout;
      q.idempotent = whole.idempotent;
      q.encode = [](request& r, resp::writer& w) { w.raw(static_cast<part&>(r).wire); };
      q.on_node = [](request& r, const resp::node& n) {
        auto& self = static_cast<part&>(r);
        if (self.builder.add(n)) self.reply = self.builder.take();
      };
      q.on_done = [](request& r, std::error_code ec) { static_cast<part&>(r).owner->part_done(ec); };
    }
  }

  void part_done(std::error_code ec) {
    if (ec && !failure) failure = ec;
    if (--pending == 0) finish();
  }

  // Routes every part. A part may complete at once (an error before sending): `pending` counts one
  // more until the loop is over, so the fanout outlives it.
  void start() {
    for (std::size_t i = 0; i < count; ++i) {
      if (!parts[i].target.empty()) parts[i].node = parts[i].target;
      router.route(parts[i]);
    }
    part_done({});
  }

  // Merges the replies into bytes, replays them to the parent, and completes it.
  void finish() {
    request& p = parent;
    std::error_code ec = failure;
    std::string bytes;
    if (!ec) ec = merged(bytes);
    const resp::limits lim = limits;
    delete this;
    if (!ec) replay(p, bytes, lim);
    p.on_done(p, ec);
  }

  std::error_code merged(std::string& bytes) const {
    resp::writer w(0);
    const part* error = nullptr;
    for (std::size_t i = 0; i < count && error == nullptr; ++i) {
      if (parts[i].reply.is_error()) error = &parts[i];
    }
    if (kind == merge::in_order) {
      for (std::size_t i = 0; i < count; ++i) resp::write(w, parts[i].reply);
    } else if (error != nullptr) {
      resp::write(w, error->reply);
    } else if (kind == merge::first) {
      resp::write(w, parts[0].reply);
    } else if (kind == merge::sum) {
      std::int64_t sum = 0;
      for (std::size_t i = 0; i < count; ++i) {
        if (parts[i].reply.data_type != resp::type::integer) return errc::protocol_error;
        sum += parts[i].reply.integer;
      }
      w.integer(sum);
    } else {  // mget
      std::vector<const resp::value*> values(keys, nullptr);
      for (std::size_t i = 0; i < count; ++i) {
        const part& q = parts[i];
        if (q.reply.elements.size() != q.positions.size()) return errc::protocol_error;
        for (std::size_t j = 0; j < q.positions.size(); ++j) values[q.positions[j]] = &q.reply.elements[j];
      }
      w.aggregate_header(resp::type::array, keys);
      for (const resp::value* v : values) resp::write(w, *v);
    }
    bytes.assign(w.data());
    return {};
  }

  cluster_router& router;
  request& parent;
  merge kind;
  std::unique_ptr<part[]> parts;
  std::size_t count, pending;
  std::size_t keys = 0;
  std::error_code failure;
  resp::limits limits;  // the router's protocol_limits, for the replay (the router may be gone by then)
};

// A transaction (a batch from MULTI to EXEC) sent whole to its slot's node, its replies kept until
// EXEC answers. When the node refused it (EXECABORT) only because its slot has moved (a queued
// command answered MOVED) or is being migrated and the key already lives on the importing node
// (ASK), nothing ran: it is sent again, whole, to the node named, after ASKING for an ASK (the flag
// lasts through MULTI: Redis clears it only outside a transaction). Any other refusal, an error or
// the last redirection allowed, and the caller gets the replies as the server sent them.
struct cluster_router::transaction_attempt : request {
  transaction_attempt(cluster_router& owner, request& whole, cluster_router::node& first)
      : router(owner), parent(whole), at_host(first.host), limits(owner.opts_.protocol_limits) {
    replies = whole.replies;
    timeout = whole.timeout;
    borrows_arguments = whole.borrows_arguments;
    encode = [](request& r, resp::writer& w) {
      auto& self = static_cast<transaction_attempt&>(r);
      self.parent.encode(self.parent, w);  // the same bytes each time (request's contract)
    };
    on_node = [](request& r, const resp::node& n) {
      auto& self = static_cast<transaction_attempt&>(r);
      if (self.builder.add(n)) self.keep(self.builder.take());
    };
    on_done = [](request& r, std::error_code ec) { static_cast<transaction_attempt&>(r).done(ec); };
  }

  static bool is_redirect(const resp::value& v) {
    return v.is_error() && (v.text.starts_with("MOVED ") || v.text.starts_with("ASK "));
  }

  void keep(resp::value v) {
    const bool last = kept.size() + 1 == parent.replies;  // EXEC's
    if (!last && v.is_error()) {
      if (!is_redirect(v) || (!redirect.empty() && v.text != redirect)) refused = true;
      else redirect = v.text;
    }
    kept.push_back(std::move(v));
  }

  void done(std::error_code ec) {
    if (!ec && !router.closed_ && !refused && !redirect.empty() && kept.size() == parent.replies &&
        kept.back().is_error() && kept.back().text.starts_with("EXECABORT") &&
        parent.redirects < router.opts_.cluster.max_redirects) {
      std::uint16_t slot = 0;
      if (cluster_router::node* to = router.moved_to(at_host, redirect, slot)) {
        ++parent.redirects;
        const bool ask = redirect.starts_with("ASK ");
        kept.clear();
        redirect.clear();
        at_host = to->host;
        // A MOVED was learnt as it arrived (on_moved_in_batch); an ASK changes no map.
        if (ask) router.send_asking(*to, *this);
        else router.send(*to, *this, {});
        return;
      }
    }
    request& p = parent;
    resp::writer w(0);
    for (const resp::value& v : kept) resp::write(w, v);
    const std::string bytes(w.data());
    const resp::limits lim = limits;
    delete this;
    replay(p, bytes, lim);
    p.on_done(p, ec);
  }

  cluster_router& router;
  request& parent;
  // The host of the node it was sent to last (an empty host in a redirection means this one). A
  // name, not the node: a refresh may forget the node while this waits unsent in its queue.
  std::string at_host;
  resp::value_builder builder;
  std::vector<resp::value> kept;
  std::string redirect;  // the MOVED or ASK every refused command was answered
  bool refused = false;  // a command was refused for another reason: the caller's to see
  resp::limits limits;   // as fanout's
};

// COMMAND and CLUSTER SHARDS / SLOTS.
struct cluster_router::bootstrap_request : request {
  cluster_router* router = nullptr;
  std::vector<std::string> args;
  resp::value_builder builder;
  resp::value reply;
  bool in_flight = false;
  void (cluster_router::*then)(bootstrap_request&, std::error_code) = nullptr;

  bootstrap_request(cluster_router* owner, void (cluster_router::*next)(bootstrap_request&, std::error_code))
      : router(owner), then(next) {
    encode = [](request& r, resp::writer& w) {
      const auto& self = static_cast<bootstrap_request&>(r);
      std::vector<std::string_view> views(self.args.begin(), self.args.end());
      w.command(std::span<const std::string_view>(views));
    };
    on_node = [](request& r, const resp::node& n) {
      auto& self = static_cast<bootstrap_request&>(r);
      if (self.builder.add(n)) self.reply = self.builder.take();
    };
    on_done = [](request& r, std::error_code ec) {
      auto& self = static_cast<bootstrap_request&>(r);
      self.in_flight = false;
      (self.router->*self.then)(self, ec);
    };
  }
  void send(connection& c, std::vector<std::string> a, std::chrono::milliseconds t) {
    args = std::move(a);
    timeout = t;
    carried_deadline = {};  // a fetch taken off a node that went down is a new fetch when sent again
    reply = {};
    builder.reset();
    in_flight = true;
    c.submit(*this);
  }
};

// --- Life ---

cluster_router::cluster_router(net::loop& loop, const options& opts) : loop_(loop), opts_(opts), scratch_(0) {
  opts_.cluster.enabled = false;  // node connections are plain connections
  opts_.sentinel = {};           // the cluster says where its nodes are
  shard_.fill(no_shard);
  block_shard_.fill(no_shard);
  replica_reads_ = opts_.cluster.reads != read_from::primary;
  delay_timer_.owner = refresh_timer_.owner = this;
  delay_timer_.fn = &on_delay_timer;
  refresh_timer_.fn = &on_refresh_timer;
  topology_request_ = std::make_unique<bootstrap_request>(this, &cluster_router::topology_received);
  commands_request_ = std::make_unique<bootstrap_request>(this, &cluster_router::commands_received);
}

cluster_router::~cluster_router() {
  detail::destruction_watch::destroyed(close_in_progress_);  // a close() up the stack must stop
  // Every node closed before any member goes, even when close() ran before: a close() cut short
  // by a completion that destroyed the client left nodes open, and their commands' completions
  // (the bootstrap request's among them) must run while what they touch is alive.
  close();
  // Always, even when close() ran before: a completion that closed the router mid-way (a caller's
  // callback inside apply or a retry) may have been followed by code that armed a timer again, and
  // an armed timer must not outlive its router.
  loop_.cancel(delay_timer_);
  loop_.cancel(refresh_timer_);
}

void cluster_router::start() {
  if (started_ || closed_) return;
  started_ = true;
  fetch_commands();
  start_refresh();
}

void cluster_router::fetch_commands() {
  if (closed_ || has_commands_ || commands_request_->in_flight) return;
  commands_request_->send(seed().main(), {"COMMAND"}, std::chrono::milliseconds(-1));
}

void cluster_router::close() {
  closed_ = true;
  fast_ = false;
  loop_.cancel(delay_timer_);
  loop_.cancel(refresh_timer_);
  // Each step completes commands, and a completion may destroy the client and this router with it:
  // after each, stop if it did (as client::close).
  detail::destruction_watch watch(close_in_progress_);
  fail_waiting(errc::shutting_down);
  if (watch.gone()) return;
  auto later = std::move(delayed_);
  delayed_.clear();
  for (const delayed& d : later) {
    d.r->on_done(*d.r, errc::shutting_down);
    if (watch.gone()) return;
  }
  for (auto& [name, n] : nodes_) {  // a closed router adds no node
    if (!n->close(watch)) return;
  }
  if (seed_ && !seed_->close(watch)) return;
}

cluster_router::node& cluster_router::seed() {
  if (!seed_) {
    seed_ = std::make_unique<node>();
    seed_->router = this;
    seed_->opts = opts_;
    seed_->host = opts_.unix_path.empty() ? opts_.host : std::string();
    seed_->port = opts_.port;
    seed_->name = opts_.unix_path.empty() ? endpoint(opts_.host, opts_.port) : "unix:" + opts_.unix_path;
    seed_->opts.read_only = opts_.cluster.reads != read_from::primary;
  }
  return *seed_;
}

cluster_router::node& cluster_router::node_named(std::string_view host, std::uint16_t port) {
  std::string name = endpoint(host, port);
  auto it = nodes_.find(name);
  if (it != nodes_.end()) return *it->second;
  auto n = std::make_unique<node>();
  n->router = this;
  n->host = host;
  n->port = port;
  n->name = name;
  n->opts = opts_;
  n->opts.unix_path.clear();
  n->opts.host = n->host;
  n->opts.port = port;
  n->opts.read_only = opts_.cluster.reads != read_from::primary;
  return *nodes_.emplace(std::move(name), std::move(n)).first->second;
}

void cluster_router::set_push_handler(push_handler h) {
  push_ = h;
  auto set = [h](node& n) {
    if (n.conn) n.conn->set_push_handler(h);
    for (auto& c : n.blocking) c->set_push_handler(h);
  };
  for (auto& [name, n] : nodes_) set(*n);
  if (seed_) set(*seed_);
}

std::uint64_t cluster_router::connection_losses() const noexcept {
  std::uint64_t n = retired_losses_;
  for (const auto& entry : nodes_) {
    if (entry.second->conn) n += entry.second->conn->losses();
  }
  if (seed_ && seed_->conn) n += seed_->conn->losses();
  return n;
}

std::vector<std::string> cluster_router::nodes(bool primaries_only) const {
  std::vector<std::string> out;
  for (const auto& [name, n] : nodes_) {
    if (n->in_topology && (n->primary || !primaries_only)) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<cluster_node_load> cluster_router::load() const {
  std::vector<cluster_node_load> out;
  for (const auto& [name, n] : nodes_) out.push_back({name, n->primary && n->in_topology, n->sent});
  if (seed_ && seed_->sent != 0) out.push_back({seed_->name, false, seed_->sent});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.node < b.node; });
  return out;
}

std::string cluster_router::last_error() const {
  if (!topology_why_.empty()) return topology_why_;
  for (const auto& [name, n] : nodes_) {
    if (n->conn && !n->conn->last_error().empty()) return name + ": " + n->conn->last_error();
  }
  if (seed_ && seed_->conn && !seed_->conn->last_error().empty()) return seed_->name + ": " + seed_->conn->last_error();
  return {};
}

// --- Routing ---

void cluster_router::submit_slow(request& r) {
  if (!ready_ || closed_) [[unlikely]] {
    submit_early(r);
    return;
  }
  route(r);
}

void cluster_router::submit_early(request& r) {
  if (closed_) {
    r.on_done(r, errc::shutting_down);
    return;
  }
  if (topology_error_) {
    request_refresh();  // perhaps it is a cluster now; rate-limited
    r.on_done(r, topology_error_);
    return;
  }
  if (waiting_.size() >= opts_.offline_queue_limit) {
    r.on_done(r, errc::offline_queue_full);
    return;
  }
  const auto timeout = timeout_of(r, opts_.command_timeout);
  waiting_.push_back({timeout.count() > 0 ? net::deadline_after(loop_.now(), timeout) : net::clock::time_point::max(), &r});
  if (timeout.count() > 0) arm_delay_timer();
  start();
}

const command_keys::command* cluster_router::lookup(std::span<const std::string_view> args, std::int8_t& single_key) {
  // Most programs use a handful of commands: their entries are remembered by exact spelling.
  single_key = -1;
  name_key k;
  if (!pack(args[0], k)) return commands_.lookup(args);
  name_cache_entry& e = cache_slot(k);
  if (e.command != nullptr && e.key == k) {
    single_key = e.single_key;
    return e.command;
  }
  const command_keys::command* c = commands_.lookup(args);
  if (c != nullptr && !c->has_subcommands) {
    e.key = k;
    e.command = c;
    e.single_key = static_cast<std::int8_t>(command_keys::single_key_index(*c));
    e.readonly = c->readonly;
    single_key = e.single_key;
  }
  return c;
}

const command_keys::command* cluster_router::lookup(std::span<const std::string_view> args) {
  std::int8_t single = -1;
  return lookup(args, single);
}

inline void cluster_router::send(node& n, request& r, std::string_view encoded) {
  ++n.sent;
  connection* c = n.conn.get();
  if (r.blocking || c == nullptr) [[unlikely]] c = &n.connection_for(r);
  if (encoded.empty()) c->submit(r);  // re-encoded (large payloads are referenced, not copied)
  else c->submit(r, encoded);
}

// A one-key command whose key the request names (`request::key`) or that is in the name cache, when
// `route_fast` declined it: a read for a replica, the first command to a node, a blocking command.
// Routed by its key and encoded once, by the node's connection. False when it does not apply.
inline bool cluster_router::route_known(request& r) {
  if (r.replies != 1 || !r.node.empty()) return false;
  std::string_view key = r.key;
  bool readonly = false;
  if ((key.data() == nullptr || replica_reads_) && !single_key_of(r, key, readonly)) return false;
  const std::uint16_t slot = hash_slot(key);
  node* n = readonly && replica_reads_ ? pick(slot, true) : primary_of(slot);
  if (n == nullptr) return false;
  send(*n, r, {});
  return true;
}

void cluster_router::route(request& r) {
  // Closed by a completion on the way here (a caller's callback while the waiting requests, the
  // stranded ones or a fanout's parts are routed): routing now would open connections to nodes
  // that nothing will close.
  if (closed_) [[unlikely]] {
    r.on_done(r, errc::shutting_down);
    return;
  }
  if (!route_known(r)) [[unlikely]] route_encoded(r);
}

void cluster_router::route_encoded(request& r) {
  if (!r.node.empty()) {
    // Addressed to a node: "host:port".
    const auto colon = r.node.rfind(':');
    std::uint16_t port = 0;
    if (colon == std::string_view::npos || !parse_int(r.node.substr(colon + 1), port)) {
      deliver_error(r, "ERR redring: bad node address (want host:port)");
      return;
    }
    send(node_named(r.node.substr(0, colon), port), r, {});
    return;
  }
  scratch_.clear();
  scratch_.set_reference_threshold(r.borrows_arguments ? resp::default_reference_threshold : 0);
  r.encode(r, scratch_);
  if (r.replies != 1) {
    route_batch(r);
    return;
  }
  args_.clear();
  const std::string_view bytes = scratch_.data();  // empty when a payload is referenced
  const char* at = bytes.data();
  const bool parsed = bytes.empty() ? command_splitter(scratch_.iovecs()).next(args_)
                                    : split_contiguous(at, bytes.data() + bytes.size(), args_);
  if (!parsed || args_.empty()) {
    send(*any_primary(), r, bytes);  // not an array of bulk strings: let a server judge it
    return;
  }
  std::int8_t single = -1;
  const command_keys::command* c = lookup(args_, single);
  if (single > 0 && static_cast<std::size_t>(single) < args_.size()) {
    // One key at a fixed position (GET, SET, INCR, HSET ...): no key-spec walk.
    node* n = pick(hash_slot(args_[static_cast<std::size_t>(single)]), c->readonly);
    if (n != nullptr) {
      send(*n, r, bytes);
      return;
    }
  }
  key_indexes_.clear();
  if (c == nullptr || command_keys::find(*c, args_, key_indexes_) != command_keys::outcome::found ||
      key_indexes_.empty()) {
    if (c != nullptr && is_broadcast(args_)) {
      broadcast(r);
      return;
    }
    send(*any_primary(), r, scratch_.data());  // keyless (or unknown: the server will say)
    return;
  }
  const std::uint16_t slot = hash_slot(args_[key_indexes_[0]]);
  for (std::size_t i = 1; i < key_indexes_.size(); ++i) {
    if (hash_slot(args_[key_indexes_[i]]) != slot) {
      if (!split(r)) r.on_done(r, errc::cross_slot);
      return;
    }
  }
  node* n = pick(slot, c->readonly);
  if (n == nullptr) {  // no node serves the slot (yet): wait for the topology to change
    if (r.redirects >= opts_.cluster.max_redirects) {
      r.on_done(r, errc::slot_unserved);
      return;
    }
    ++r.redirects;
    request_refresh();
    retry_later(r);
    return;
  }
  send(*n, r, scratch_.data());
}

void cluster_router::index_block(std::size_t block) noexcept {
  const std::uint16_t* first = shard_.data() + block * slots_per_block;
  const bool uniform = std::all_of(first, first + slots_per_block, [first](std::uint16_t s) { return s == *first; });
  block_shard_[block] = uniform ? *first : mixed_block;
}

void cluster_router::sync_fast_targets() {
  fast_targets_.assign(shard_primary_.size(), {});
  for (std::size_t i = 0; i < shard_primary_.size(); ++i) {
    node* p = shard_primary_[i];
    if (p != nullptr && p->conn) fast_targets_[i] = {p->conn.get(), &p->sent};
  }
}

cluster_router::node* cluster_router::any_primary() {
  if (primaries_.empty()) return &seed();
  return primaries_[next_primary_++ % primaries_.size()];
}

cluster_router::node* cluster_router::pick(std::uint16_t slot, bool readonly) {
  node* primary = primary_of(slot);
  if (primary == nullptr || !readonly || opts_.cluster.reads == read_from::primary) return primary;
  const std::vector<node*>& shard = shard_nodes_[shard_[slot]];
  const std::size_t first = opts_.cluster.reads == read_from::prefer_replica ? 1 : 0;
  if (shard.size() <= first) return primary;
  const std::size_t choices = shard.size() - first;
  for (std::size_t k = 0; k < choices; ++k) {
    node* n = shard[first + next_replica_++ % choices];
    if (n->healthy && !n->down()) return n;
  }
  return primary;
}

// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH across slots: one part per slot, merged in the keys' order.
bool cluster_router::split(request& r) {
  const std::string_view name = args_[0];
  const bool mset = iequals(name, "MSET");
  fanout::merge kind;
  if (iequals(name, "MGET")) kind = fanout::merge::mget;
  else if (mset) kind = fanout::merge::first;
  else if (iequals(name, "DEL") || iequals(name, "UNLINK") || iequals(name, "EXISTS") || iequals(name, "TOUCH"))
    kind = fanout::merge::sum;
  else return false;
  // MSET's key specification names a key every other argument: with an odd count, the last key has
  // no value. Such a command is the server's to refuse (wrong number of arguments), not ours to split.
  if (mset && !std::all_of(key_indexes_.begin(), key_indexes_.end(), [this](std::size_t k) { return k + 1 < args_.size(); })) {
    send(*any_primary(), r, scratch_.data());
    return true;
  }
  // Group the keys by slot, in the order each slot first appears.
  std::unordered_map<std::uint16_t, std::size_t> group_of;
  std::vector<std::vector<std::uint32_t>> groups;  // key ordinals per group
  for (std::size_t k = 0; k < key_indexes_.size(); ++k) {
    const auto [it, added] = group_of.try_emplace(hash_slot(args_[key_indexes_[k]]), groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(static_cast<std::uint32_t>(k));
  }
  auto* f = new fanout(*this, r, kind, groups.size());
  f->keys = key_indexes_.size();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    resp::writer w(0);
    w.aggregate_header(resp::type::array, 1 + groups[g].size() * (mset ? 2 : 1));
    w.bulk(name);
    for (const std::uint32_t k : groups[g]) {
      w.bulk(args_[key_indexes_[k]]);
      if (mset) w.bulk(args_[key_indexes_[k] + 1]);
    }
    f->parts[g].wire.assign(w.data());
    f->parts[g].positions = std::move(groups[g]);
  }
  ++stats_.splits;
  f->start();  // after every part is built: routing them reuses the scratch that args_ views
  return true;
}

void cluster_router::broadcast(request& r) {
  if (primaries_.empty()) {
    send(*any_primary(), r, scratch_.data());
    return;
  }
  resp::writer w(0);
  w.command(std::span<const std::string_view>(args_));
  const std::string wire(w.data());
  auto* f = new fanout(*this, r, fanout::merge::first, primaries_.size());
  for (std::size_t i = 0; i < primaries_.size(); ++i) {
    f->parts[i].wire = wire;
    f->parts[i].target = primaries_[i]->name;
  }
  f->start();
}

// A pipeline (split per command, replies in order) or a transaction (one slot, one node).
void cluster_router::route_batch(request& r) {
  args_.clear();
  std::vector<std::pair<std::size_t, std::size_t>> commands;  // [first arg, arg count)
  command_splitter splitter(scratch_.iovecs());
  while (!splitter.at_end()) {
    const std::size_t first = args_.size();
    if (!splitter.next(args_) || args_.size() == first) {
      send(*any_primary(), r, scratch_.data());  // not ours to reason about
      return;
    }
    commands.emplace_back(first, args_.size() - first);
  }
  if (commands.size() != r.replies || commands.empty()) {
    send(*any_primary(), r, scratch_.data());
    return;
  }
  const auto command_args = [this](const std::pair<std::size_t, std::size_t>& c) {
    return std::span<const std::string_view>(args_.data() + c.first, c.second);
  };
  // A MULTI anywhere (not only first) makes the batch a transaction, or holds one: split per command,
  // MULTI and EXEC would go to different nodes and leave a shared connection inside MULTI.
  const bool transaction = std::any_of(commands.begin(), commands.end(),
                                       [this](const auto& c) { return iequals(args_[c.first], "MULTI"); });
  if (transaction) {
    // Every key of the batch must be in one slot; it then goes whole to that slot's primary.
    int slot = -1;
    for (const auto& c : commands) {
      const auto args = command_args(c);
      const command_keys::command* entry = lookup(args);
      key_indexes_.clear();
      if (entry == nullptr || command_keys::find(*entry, args, key_indexes_) != command_keys::outcome::found) continue;
      for (const std::size_t k : key_indexes_) {
        const int s = hash_slot(args[k]);
        if (slot >= 0 && s != slot) {
          r.on_done(r, errc::cross_slot);
          return;
        }
        slot = s;
      }
    }
    node* n = slot < 0 ? any_primary() : primary_of(static_cast<std::uint16_t>(slot));
    if (n == nullptr) n = any_primary();
    // Resent on MOVED/ASK only when that cannot run anything twice or lose a WATCH: one MULTI (the
    // first command) and one EXEC (the last), so nothing before it ran; and not on a session
    // (reconnect off, see client::open_session), whose WATCHes live on this node's connection:
    // the refusal is then the caller's to see.
    const auto named = [&](std::string_view name) {
      return std::count_if(commands.begin(), commands.end(),
                           [&](const auto& c) { return iequals(args_[c.first], name); });
    };
    if (slot >= 0 && opts_.reconnect.enabled && commands.size() >= 2 &&
        iequals(args_[commands.front().first], "MULTI") && iequals(args_[commands.back().first], "EXEC") &&
        named("MULTI") == 1 && named("EXEC") == 1) {
      send(*n, *new transaction_attempt(*this, r, *n), scratch_.data());  // may follow MOVED and ASK
      return;
    }
    send(*n, r, scratch_.data());
    return;
  }
  auto* f = new fanout(*this, r, fanout::merge::in_order, commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    resp::writer w(0);
    w.command(command_args(commands[i]));
    f->parts[i].wire.assign(w.data());
  }
  ++stats_.splits;
  f->start();
}

// --- Redirections and retries ---

void cluster_router::on_redirect(void* context, request& r, std::string_view error) {
  auto& from = *static_cast<node*>(context);
  from.router->redirected(from, r, error);
}

// A transaction's queued command answered MOVED: the transaction fails with EXECABORT (its reply),
// but the slot's new owner is learnt and the topology fetched, so the next attempt goes there.
void cluster_router::on_moved_in_batch(void* context, std::string_view error) {
  auto& from = *static_cast<node*>(context);
  cluster_router& self = *from.router;
  if (self.closed_) return;
  std::uint16_t slot = 0;
  if (node* to = self.moved_to(from.host, error, slot)) {
    ++self.stats_.moved;
    self.assign_slot(slot, *to);
  }
  self.request_refresh();
}

// The node a "MOVED <slot> <host>:<port>" or "ASK ..." names, and its slot; null if malformed.
cluster_router::node* cluster_router::moved_to(std::string_view from_host, std::string_view error, std::uint16_t& slot) {
  cluster_redirection r;
  if (!parse_cluster_redirection(error, r)) return nullptr;
  slot = r.slot;
  // An empty host means the host of the node that answered.
  const std::string_view host = r.host.empty() ? std::string_view(from_host.empty() ? opts_.host : from_host) : r.host;
  return &node_named(host, r.port);
}

// Until the refresh says more: the slot goes to `to`'s shard (a new one if `to` leads none).
void cluster_router::assign_slot(std::uint16_t slot, node& to) {
  auto at = std::find(shard_primary_.begin(), shard_primary_.end(), &to);
  if (at == shard_primary_.end()) {
    shard_nodes_.push_back({&to});
    at = shard_primary_.insert(shard_primary_.end(), &to);
  }
  shard_[slot] = static_cast<std::uint16_t>(at - shard_primary_.begin());
  index_block(slot / slots_per_block);
  sync_fast_targets();
}

void cluster_router::deliver_error(request& r, std::string_view text) {
  resp::node n;
  n.data_type = resp::type::simple_error;
  n.ends_reply = true;
  n.value = text;
  r.on_node(r, n);
  r.on_done(r, {});
}

void cluster_router::redirected(node& from, request& r, std::string_view error) {
  if (closed_) {
    r.on_done(r, errc::shutting_down);
    return;
  }
  if (r.redirects >= opts_.cluster.max_redirects) {
    deliver_error(r, error);  // the server's own words are the clearest error
    return;
  }
  ++r.redirects;
  const bool moved = error.starts_with("MOVED "), ask = error.starts_with("ASK ");
  if (moved || ask) {
    // "MOVED <slot> <host>:<port>"; an empty host means the host of the node that answered.
    std::uint16_t slot = 0;
    node* target = moved_to(from.host, error, slot);
    if (target == nullptr) {
      deliver_error(r, error);
      return;
    }
    node& to = *target;
    if (moved) {
      ++stats_.moved;
      assign_slot(slot, to);
      request_refresh();
      send(to, r, {});
    } else {
      send_asking(to, r);
    }
    return;
  }
  if (error.starts_with("CLUSTERDOWN")) request_refresh();
  retry_later(r);
}

// ASKING applies to the next command on the same connection (cluster spec, "ASK redirection").
void cluster_router::send_asking(node& to, request& r) {
  ++stats_.ask;
  ++to.sent;
  connection& c = r.blocking ? to.blocking_connection() : to.main();
  c.submit(*new asking_request);
  c.submit(r);
}

void cluster_router::retry_later(request& r) {
  ++stats_.retries;
  const auto base = std::max<std::int64_t>(1, opts_.cluster.retry_delay.count());
  const int shift = std::min<int>(r.redirects, 20);
  const auto doubled = base > (INT64_MAX >> shift) ? INT64_MAX : base << shift;  // saturates
  const auto delay = std::min<std::int64_t>(std::max<std::int64_t>(base, opts_.cluster.max_retry_delay.count()), doubled);
  delayed_.push_back({net::deadline_after(loop_.now(), std::chrono::milliseconds(delay)), &r});
  arm_delay_timer();
}

void cluster_router::arm_delay_timer() {
  if (closed_) return;
  auto next = net::clock::time_point::max();
  for (const delayed& d : delayed_) next = std::min(next, d.due);
  for (const delayed& d : waiting_) next = std::min(next, d.due);
  if (next == net::clock::time_point::max()) return;
  if (!delay_timer_.armed() || next < delay_timer_.deadline) loop_.arm(delay_timer_, next);
}

void cluster_router::on_delay_timer(net::timer* t) {
  auto& self = *static_cast<owned_timer*>(t)->owner;
  const auto now = self.loop_.now();
  std::vector<delayed> due;
  auto keep = std::stable_partition(self.delayed_.begin(), self.delayed_.end(), [now](const delayed& d) { return d.due > now; });
  due.assign(keep, self.delayed_.end());
  self.delayed_.erase(keep, self.delayed_.end());
  std::vector<delayed> expired;
  auto waiting = std::stable_partition(self.waiting_.begin(), self.waiting_.end(), [now](const delayed& d) { return d.due > now; });
  expired.assign(waiting, self.waiting_.end());
  self.waiting_.erase(waiting, self.waiting_.end());
  for (const delayed& d : expired) d.r->on_done(*d.r, errc::timeout);
  for (const delayed& d : due) {
    if (self.closed_) d.r->on_done(*d.r, errc::shutting_down);
    else self.route(*d.r);
  }
  if (!self.closed_) self.arm_delay_timer();
}

void cluster_router::fail_waiting(std::error_code ec) {
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (const delayed& d : waiting) d.r->on_done(*d.r, ec);
}

// --- Topology ---

void cluster_router::on_node_state(void* context, connection_state s) {
  auto& n = *static_cast<node*>(context);
  if (s == connection_state::backoff) n.router->request_refresh();
}

void cluster_router::request_refresh() {
  if (closed_ || !started_ || topology_request_->in_flight) return;
  const auto due = last_refresh_ + opts_.cluster.min_refresh_gap;
  if (loop_.now() < due) {
    arm_refresh(due);
    return;
  }
  start_refresh();
}

void cluster_router::arm_refresh(net::clock::time_point due, bool replace) {
  if (closed_) return;  // a completion may have closed the router on the way here
  if (replace || !refresh_timer_.armed() || refresh_timer_.deadline > due) loop_.arm(refresh_timer_, due);
}

void cluster_router::on_refresh_timer(net::timer* t) {
  cluster_router& self = *static_cast<owned_timer*>(t)->owner;
  self.fetch_commands();  // if COMMAND failed (a refused handshake), ask again
  if (!self.closed_) self.request_refresh();
}

void cluster_router::start_refresh() {
  if (closed_ || topology_request_->in_flight) return;
  loop_.cancel(refresh_timer_);
  // Ask a node that is up, primaries first. When none is, one not known to be down: the seed, or a
  // node of the topology never connected to (a replica: it knows the topology as well as its
  // primary, and asking a dead primary would only wait for its connect to fail, every time).
  const auto up = [](const node& n) { return n.conn && n.conn->state() == connection_state::ready; };
  node* from = nullptr;
  for (auto it = primaries_.begin(); from == nullptr && it != primaries_.end(); ++it) {
    if (up(**it)) from = *it;
  }
  for (auto it = nodes_.begin(); from == nullptr && it != nodes_.end(); ++it) {
    if (up(*it->second)) from = it->second.get();
  }
  if (from == nullptr && !seed().down()) from = &seed();
  for (auto it = nodes_.begin(); from == nullptr && it != nodes_.end(); ++it) {
    if (it->second->in_topology && !it->second->down()) from = it->second.get();
  }
  if (from == nullptr) from = primaries_.empty() ? &seed() : any_primary();
  last_refresh_ = loop_.now();
  refresh_host_ = from->host.empty() ? opts_.host : from->host;
  refresh_node_ = from->name;
  ++stats_.refreshes;
  std::vector<std::string> args = {"CLUSTER", use_shards_ ? "SHARDS" : "SLOTS"};
  topology_request_->send(from->main(), std::move(args), std::max(opts_.connect_timeout, std::chrono::milliseconds(100)));
}

void cluster_router::topology_received(bootstrap_request& b, std::error_code ec) {
  if (closed_) return;
  if (!ec && b.reply.is_error()) {
    const std::string& text = b.reply.text;
    if (use_shards_ && (text.find("nknown subcommand") != std::string::npos || text.find("SHARDS") != std::string::npos)) {
      use_shards_ = false;  // before Redis 7: CLUSTER SLOTS
      start_refresh();
      return;
    }
    topology_failed(text);
    ec = errc::cluster_topology;
  }
  if (!ec) {
    auto map = use_shards_ ? slot_map::from_shards(b.reply, opts_.tls.enabled) : slot_map::from_slots(b.reply);
    if (map) {
      apply(std::move(*map));
      return;
    }
    topology_failed(map.error().message);
  }
  // No topology this time: try again (rate-limited).
  if (ec == errc::auth_failed || ec == errc::handshake_failed) handshake_refused(ec);
  arm_refresh(last_refresh_ + std::max(opts_.cluster.min_refresh_gap, std::chrono::milliseconds(10)));
}

// The node asked answered, with an error or with a reply of another shape. Before the first topology
// the commands waiting for it fail (waiting would not help: the node answered) and later ones fail
// fast until a topology is readable; after it, the topology in use stays. Either way it is asked again.
void cluster_router::topology_failed(std::string_view why) {
  topology_why_ = "CLUSTER ";
  topology_why_ += use_shards_ ? "SHARDS" : "SLOTS";
  topology_why_ += " from " + refresh_node_ + ": ";
  topology_why_ += why;
  if (ready_) return;
  topology_error_ = errc::cluster_topology;
  fail_waiting(errc::cluster_topology);
}

// The seed (or the node asked for the topology) refused the handshake: a wrong password, an ACL
// denial, a database other than 0 (SELECT is refused in cluster mode). Before the first topology,
// what waits fails with that reason and later commands fail fast with it (as a single-server client
// does), while the timers ask again at a gentle pace: the connection retries at its longest backoff.
void cluster_router::handshake_refused(std::error_code ec) {
  if (ready_) return;
  topology_error_ = ec;
  fail_waiting(ec);
}

void cluster_router::commands_received(bootstrap_request& b, std::error_code ec) {
  if (closed_) return;
  if (ec) {
    // The seed is not up yet (the request waits for it), or it refused the handshake. A refused
    // connection fails what is submitted to it at once, so sending again from here would recurse
    // without end: ask again from the refresh timer, and meanwhile fail what waits with the refusal.
    if (ec == errc::auth_failed || ec == errc::handshake_failed) handshake_refused(ec);
    arm_refresh(net::deadline_after(loop_.now(), std::max(opts_.cluster.min_refresh_gap, std::chrono::milliseconds(10))));
    return;
  }
  if (auto table = command_keys::from_reply(b.reply)) commands_ = std::move(*table);
  // Without a table every command goes to some primary and follows MOVED: slower, still correct.
  has_commands_ = true;
  b.reply = {};
  become_ready();
}

void cluster_router::apply(slot_map map) {
  map_ = std::move(map);
  has_map_ = true;
  topology_error_ = {};
  topology_why_.clear();
  for (auto& [name, n] : nodes_) n->in_topology = n->primary = false;
  shard_nodes_.clear();
  shard_primary_.clear();
  primaries_.clear();
  shard_.fill(no_shard);
  const auto shards = map_.shards();
  for (std::size_t i = 0; i < shards.size(); ++i) {
    std::vector<node*> members;
    for (const cluster_node& cn : shards[i].nodes) {
      // An empty endpoint means "the host you asked" (a node that never learned its own address).
      node& n = node_named(cn.host.empty() || cn.host == "?" ? std::string_view(refresh_host_) : std::string_view(cn.host), cn.port);
      n.in_topology = true;
      n.primary = cn.primary;
      n.healthy = cn.healthy;
      members.push_back(&n);
    }
    node* primary = !members.empty() && members.front()->primary ? members.front() : nullptr;
    if (primary != nullptr) primaries_.push_back(primary);
    shard_primary_.push_back(primary);
    for (const auto& [first, last] : shards[i].ranges) {
      for (std::size_t s = first; s <= last && s < slot_count; ++s) shard_[s] = static_cast<std::uint16_t>(i);
    }
    shard_nodes_.push_back(std::move(members));
  }
  for (std::size_t b = 0; b < block_shard_.size(); ++b) index_block(b);
  sync_fast_targets();
  become_ready();
  if (closed_) return;  // by a caller's completion among the waiting requests
  // Forget nodes that left the topology and whose every connection is down (a dead primary after its
  // failover, a node a redirection named that never answered): what waits on them unsent is routed
  // again. A node still connecting or in its handshake stays: it may yet answer what it holds (and
  // closing it would fail that with shutting_down); if it fails, the next refresh forgets it.
  // Taken out of the map first and closed after: a completion run by a close may route, and routing
  // may add nodes to the map.
  std::vector<std::unique_ptr<node>> gone;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (!it->second->in_topology && it->second->all_down()) {
      if (it->second->conn) retired_losses_ += it->second->conn->losses();  // connection_losses stays monotonic
      gone.push_back(std::move(it->second));
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<request*> stranded;
  for (auto& n : gone) n->take_unsent(stranded);
  for (auto& n : gone) n->close();
  reroute_stranded(std::move(stranded));
  if (closed_) return;
  // While a primary is down, look again soon: its replica's promotion changes the topology.
  const bool primary_down = std::any_of(primaries_.begin(), primaries_.end(), [](node* p) { return p->down() || !p->healthy; });
  const auto next = primary_down ? std::max(opts_.cluster.min_refresh_gap, std::chrono::milliseconds(50))
                                 : opts_.cluster.refresh_interval;
  if (next.count() > 0) arm_refresh(net::deadline_after(loop_.now(), next), /*replace=*/true);
}

void cluster_router::become_ready() {
  if (ready_ || !has_map_ || !has_commands_) return;
  ready_ = true;
  fast_ = !closed_;
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (const delayed& d : waiting) route(*d.r);
}

// Commands queued on a connection that is down were never sent: route them again by the new topology
// (blocking commands too, from the node's blocking connections).
void cluster_router::reroute_stranded(std::vector<request*> stranded) {
  for (auto& [name, n] : nodes_) n->take_unsent(stranded);
  stats_.rerouted += stranded.size();
  for (request* r : stranded) {
    if (r == topology_request_.get() || r == commands_request_.get()) {
      // The router's own requests: no longer in flight; asked again by the timers.
      static_cast<bootstrap_request*>(r)->in_flight = false;
      continue;
    }
    if (is_asking(*r)) {
      r->on_done(*r, errc::shutting_down);  // deletes it
      continue;
    }
    route(*r);
  }
}

}  // namespace redring::client
