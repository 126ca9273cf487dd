// SPDX-License-Identifier: MIT
#include "client/client.hpp"
#include "client/destruction_watch.hpp"

#include <atomic>

namespace redring::client {

namespace detail {
bool submit_and_suspend(client& c, request& r) {
  r.in_submit = true;
  if (!c.submit_here(r)) return true;  // handed to the loop thread: touch nothing more
  if (r.completed_in_submit) return false;
  r.in_submit = false;
  return true;
}
}  // namespace detail

// A command posted from another thread reaches the client through this rather than through a
// pointer to it: the loop may run the task after the client is destroyed (its owner closed and
// dropped it on the loop thread after a worker's last send, before the loop's next turn), and the
// request must then complete with shutting_down, not call into freed memory. (A send that races the
// destruction itself reads the client: the caller must stop its senders first; see client.hpp.) One reference per task in the loop's
// queue plus the client's own; the last one frees it. `target` is read and cleared on the loop
// thread only (the client is destroyed there); `refs` is taken by any thread.
struct client::post_anchor {
  client* target;
  std::atomic<std::size_t> refs{1};

  post_anchor* take() noexcept {
    refs.fetch_add(1, std::memory_order_relaxed);
    return this;
  }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

client::anchor_ref::anchor_ref(client* c) : anchor(new post_anchor{c}) {}
client::anchor_ref::~anchor_ref() {
  anchor->target = nullptr;
  anchor->release();
}

client::client(net::loop& loop, options opts) : loop_(loop), opts_(std::move(opts)) {
  if (opts_.cluster.enabled) {
    cluster_ = std::make_unique<cluster_router>(loop_, opts_);
    return;
  }
  const std::size_t n = std::max<std::size_t>(1, opts_.pool_size);
  for (std::size_t i = 0; i < n; ++i) pool_.push_back(connection::create(loop_, opts_));
}

// Closed before any member goes: a completion that submits again (a blocking command, say) finds
// the client closed instead of a half-destroyed one.
client::~client() {
  detail::destruction_watch::destroyed(close_in_progress_);  // a close() up the stack must stop
  close();
}

void client::start() {
  if (!loop_.in_loop_thread()) {
    // Hop to the loop thread; a one-off allocation at start is fine.
    struct hop : net::task {
      post_anchor* anchor;
    };
    auto* h = new hop;
    h->anchor = anchor_.anchor->take();
    h->fn = [](net::task* t) {
      auto* me = static_cast<hop*>(t);
      if (client* c = me->anchor->target) c->start();
      me->anchor->release();
      delete me;
    };
    loop_.post(*h);
    return;
  }
  if (started_) return;
  started_ = true;
  if (cluster_) cluster_->start();
  for (auto& c : pool_) c->start();
}

void client::close() {
  closed_ = true;
  // Closing a connection completes its commands, and a completion may destroy this client (a
  // session's owner dropping it): after each, stop if it did, touching nothing of it.
  detail::destruction_watch watch(close_in_progress_);
  if (cluster_) {
    cluster_->close();
    if (watch.gone()) return;
  }
  // By index: nothing is added to a closed client, but nothing here relies on it.
  for (std::size_t i = 0; i < pool_.size(); ++i) {
    pool_[i]->close();
    if (watch.gone()) return;
  }
  for (std::size_t i = 0; i < blocking_.size(); ++i) {
    blocking_[i]->close();
    if (watch.gone()) return;
  }
}

void client::submit(request& r) { (void)submit_here(r); }

bool client::submit_here(request& r) {
  // A fresh submission: a deadline carried from an earlier life of this request object (taken
  // unsent off a connection, then completed without being sent again) does not apply.
  r.carried_deadline = {};
  if (!loop_.in_loop_thread()) {
    r.hop_target = anchor_.anchor->take();
    r.hop.fn = [](net::task* t) {
      // The task is the `hop` member of a request: step back to the request.
      auto* req = reinterpret_cast<request*>(reinterpret_cast<char*>(t) - offsetof(request, hop));
      auto* anchor = static_cast<post_anchor*>(req->hop_target);
      if (client* c = anchor->target) {
        c->submit(*req);
      } else {
        req->on_done(*req, errc::shutting_down);  // the client was destroyed before the loop got here
      }
      anchor->release();
    };
    r.in_submit = false;  // completed on the loop thread, later: the completion must resume (see request::in_submit)
    loop_.post(r.hop);
    return false;
  }
  if (!started_) start();
  if (r.blocking && r.unsupported) [[unlikely]] {  // see request::unsupported
    r.on_done(r, errc::unsupported_command);
    return true;
  }
  if (cluster_) {
    cluster_->submit(r);
    return true;
  }
  if (r.blocking) {
    if (closed_) {  // no new connection for a closed client
      r.on_done(r, errc::shutting_down);
      return true;
    }
    blocking_connection().submit(r);
    return true;
  }
  connection& c = *pool_[pool_.size() == 1 ? 0 : next_++ % pool_.size()];
  c.submit(r);
  return true;
}

}  // namespace redring::client

#include <algorithm>
#include <array>
#include <cctype>

namespace redring::client {

namespace {
bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == y;
         });
}
}  // namespace

namespace detail {

bool is_blocking_command(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 10> names = {"BLPOP",  "BRPOP",    "BLMOVE",   "BRPOPLPUSH", "BLMPOP",
                                                              "BZMPOP", "BZPOPMIN", "BZPOPMAX", "WAIT",       "WAITAOF"};
  return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return iequals(name, n); });
}
bool is_stream_read(std::string_view name) noexcept { return iequals(name, "XREAD") || iequals(name, "XREADGROUP"); }
bool is_block_option(std::string_view arg) noexcept { return iequals(arg, "BLOCK"); }

bool is_stream_breaking_command(std::string_view name) noexcept {
  static constexpr std::array<std::string_view, 7> names = {"SUBSCRIBE",   "PSUBSCRIBE",   "SSUBSCRIBE", "UNSUBSCRIBE",
                                                             "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR"};
  return std::any_of(names.begin(), names.end(), [&](std::string_view n) { return iequals(name, n); });
}
bool is_client_reply_off(std::string_view name, std::string_view sub, std::string_view option) noexcept {
  return iequals(name, "CLIENT") && iequals(sub, "REPLY") && (iequals(option, "OFF") || iequals(option, "SKIP"));
}

name_kind kind_of_name(std::string_view name) noexcept {
  if (is_blocking_command(name)) return name_kind::blocking;
  if (is_stream_read(name)) return name_kind::stream_read;
  if (is_stream_breaking_command(name)) return name_kind::unsupported;
  // MULTI alone would queue every other caller's commands into its transaction (+QUEUED for a
  // GET): see command_class::multi.
  if (iequals(name, "MULTI")) return name_kind::multi;
  if (iequals(name, "CLIENT")) return name_kind::client;
  return name_kind::shared;
}

command_class classify_words(const std::vector<std::string>& words) noexcept { return classify(words); }

bool ends_transaction(std::string_view name) noexcept { return iequals(name, "EXEC") || iequals(name, "DISCARD"); }

}  // namespace detail

bool scanner::retryable(const resp::error& e) noexcept {
  if (e.code == errc::connection_lost || e.code == errc::timeout || e.code == errc::offline_queue_full ||
      e.code == errc::protocol_error || e.code == errc::connect_failed || e.code == errc::cluster_topology ||
      e.code == errc::slot_unserved) {
    return true;
  }
  const std::string_view word = e.code_word();
  return word == "LOADING" || word == "BUSY" || word == "MASTERDOWN" || word == "TRYAGAIN" || word == "CLUSTERDOWN";
}

connection& client::blocking_connection() {
  // Reaped first: closed connections, and those whose blocking commands all timed out on the client
  // while the server still holds one blocked (nothing waits there, yet it is not idle): no later
  // command can use it, and each timed-out BLPOP left one behind for the client's life. Releasing
  // closes it, which ends the server's block.
  std::erase_if(blocking_, [](const connection::pointer& c) { return c->spent_for_blocking(); });
  for (auto& c : blocking_) {
    // idle(), not queued() == 0: a blocking command that timed out is still blocked on the server.
    if (c->mux().idle() && c->state() != connection_state::closed) return *c;
  }
  // No health check: a blocking command keeps its connection silent by design, and a PING queued
  // behind it cannot be answered in time (its timeout would drop the connection and the command).
  options o = opts_;
  o.health_check_interval = milliseconds(0);
  auto& c = blocking_.emplace_back(connection::create(loop_, o));
  c->start();
  return *c;
}

// --- Batches ---

batch_awaitable::batch_awaitable(client& c, std::string_view bytes, std::size_t commands, bool transaction,
                                 bool may_block, bool refused)
    : client_(c), bytes_(bytes), commands_(commands), transaction_(transaction) {
  request::blocking = may_block || refused;  // to a connection of its own, as its blocking command alone would go
  request::unsupported = refused;            // refused by client::submit
  request::encode = &encode_batch;
  request::on_node = &node_received;
  request::on_done = &done;
  request::replies = static_cast<std::uint32_t>(transaction ? commands + 2 : commands);
}

bool batch_awaitable::await_suspend(std::coroutine_handle<> h) {
  handle_ = h;
  return detail::submit_and_suspend(client_, *this);
}

void batch_awaitable::encode_batch(request& r, resp::writer& w) {
  auto& self = static_cast<batch_awaitable&>(r);
  if (self.transaction_) w.raw("*1\r\n$5\r\nMULTI\r\n");
  w.raw(self.bytes_);
  if (self.transaction_) w.raw("*1\r\n$4\r\nEXEC\r\n");
}

void batch_awaitable::node_received(request& r, const resp::node& n) {
  auto& self = static_cast<batch_awaitable&>(r);
  if (!self.builder_.add(n)) return;
  resp::value v = self.builder_.take();
  const std::size_t index = self.replies_seen_++;
  if (!self.transaction_) {
    self.values_.push_back(std::move(v));
  } else if (index == self.commands_ + 1) {
    self.exec_ = std::move(v);  // MULTI's +OK and the +QUEUED replies carry nothing
  }
}

void batch_awaitable::done(request& r, std::error_code ec) {
  auto& self = static_cast<batch_awaitable&>(r);
  self.failure_ = ec;
  if (!r.completes_in_submit()) self.handle_.resume();
}

result<std::vector<resp::value>> batch_awaitable::await_resume() {
  if (failure_) return resp::error{failure_, {}};
  if (!transaction_) return std::move(values_);
  if (!exec_) return std::vector<resp::value>{};
  if (exec_->is_error()) return resp::error{resp::errc::server_error, exec_->text};
  if (exec_->is_null()) return resp::error{errc::transaction_aborted, {}};
  return std::move(exec_->elements);
}

}  // namespace redring::client

namespace redring::client {

detail::option_words client::set_words(const set_options& o, bool get) noexcept {
  detail::option_words w;
  if (o.expire) {
    w.add("PX");
    w.add(static_cast<std::int64_t>(o.expire->count()));
  }
  if (o.only_if_absent) w.add("NX");
  if (o.only_if_present) w.add("XX");
  if (o.keep_ttl) w.add("KEEPTTL");
  if (get) w.add("GET");
  return w;
}

detail::option_words client::zrange_words(const zrange_options& o, bool scores) noexcept {
  detail::option_words w;
  if (o.by_score) w.add("BYSCORE");
  if (o.reverse) w.add("REV");
  if (o.limit) {
    w.add("LIMIT");
    w.add(o.limit->first);
    w.add(o.limit->second);
  }
  if (scores) w.add("WITHSCORES");
  return w;
}

}  // namespace redring::client
