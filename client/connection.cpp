// SPDX-License-Identifier: MIT
#include "client/connection.hpp"

#include "client/error.hpp"
#include "client/sentinel.hpp"
#include "net/error.hpp"
#include "net/socket.hpp"
#include "resp/error.hpp"

#include <climits>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

namespace redring::client {
namespace {

constexpr const char* library_version = "0.1.0";
// Sends up to this size are "quiet" (net::loop::quiet_sqe): far below a Unix or TCP socket's send
// buffer (>= 208 KiB by default), so they complete inline.
constexpr std::size_t kQuietSendBytes = 64 * 1024;
// The most one send or receive asks for: a submission's length is 32 bits, and the kernel moves at
// most about 2 GiB per call anyway (MAX_RW_COUNT).
constexpr std::size_t kMaxOperationBytes = std::size_t{1} << 30;
// TLS: plaintext encrypted per send (a 64 MiB SET is not held twice, as plaintext and ciphertext),
// and the plain-recv ciphertext buffer (several 16 KiB records per receive).
constexpr std::size_t kTlsSendBudget = 256 * 1024;
constexpr std::size_t kTlsReceiveBytes = 64 * 1024;

}  // namespace

template <class... Args>
void connection::log(int level, const char* format, const Args&... args) {
  if (opts_.logger) opts_.logger->log(static_cast<spdlog::level::level_enum>(level), fmt::runtime(format), args...);
}

connection::connection(net::loop& loop, const options& opts)
    : loop_(loop), opts_(opts), mux_(opts.protocol_limits, opts.read_buffer_bytes), protocol_(opts.protocol),
      rng_(static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(this))) {
  connect_op_ = loop_.reserve(&connection::on_connect_done, this);
  recv_op_ = loop_.reserve(&connection::on_recv_done, this);
  send_op_ = loop_.reserve(&connection::on_send_done, this);
  flush_hook_.fn = &connection::on_flush_hook;
  flush_hook_.owner = this;
  delete_hook_.fn = &connection::on_delete_hook;
  delete_hook_.owner = this;
  deadline_timer_.fn = &connection::on_deadline;
  deadline_timer_.owner = this;
  reconnect_timer_.fn = &connection::on_reconnect;
  reconnect_timer_.owner = this;
  health_timer_.fn = &connection::on_health_timer;
  health_timer_.owner = this;
  lookup_timer_.fn = &connection::on_lookup_timeout;
  lookup_timer_.owner = this;
  tls_timer_.fn = &connection::on_tls_timeout;
  tls_timer_.owner = this;
  if (!opts_.sentinel.master_name.empty()) {
    // The sentinels say where the server is, before each connect (on_sentinel_answer).
    opts_.host.clear();
    opts_.unix_path.clear();
  } else {
    (void)resolve_locally();  // a Unix path or a numeric address; a name is looked up when connecting
  }
  host_is_name_ = opts_.unix_path.empty() && addresses_.empty();
  if (opts_.use_buffer_ring) {
    buffers_ = loop_.receive_buffers();
    if (buffers_ == nullptr) {
      log(SPDLOG_LEVEL_INFO, "redring: multishot receive unavailable (needs Linux 6.0 with provided buffer rings): using plain recv");
    }
  }
  ping_.owner = this;
  ping_.encode = [](request&, resp::writer& w) { w.command("PING"); };
  ping_.on_node = [](request& r, const resp::node& n) {
    if (n.depth == 0 && resp::is_error(n.data_type)) static_cast<health_ping&>(r).failed = true;
  };
  ping_.on_done = [](request& r, std::error_code ec) {
    auto& p = static_cast<health_ping&>(r);
    p.in_flight = false;
    // Only while ready: a PING left unsent by a drop expires during the backoff or the next
    // handshake, and says nothing of that connection.
    if (ec == errc::timeout && p.owner->state_ == connection_state::ready) {
      p.owner->fail("health check: no reply to PING within " + std::to_string(p.owner->opts_.health_check_interval.count()) + " ms",
                    errc::connection_lost);
    }
  };
}

void connection::release() noexcept {
  close();
  released_ = true;
  delete_when_idle();
}

// Deletion waits for the end of a turn (no callback of ours is on the stack then) and for the
// kernel to be done with our buffers (no operation in flight).
void connection::delete_when_idle() noexcept {
  if (released_ && inflight_ops_ == 0) loop_.at_end_of_turn(delete_hook_);
}

void connection::on_delete_hook(net::turn_hook* h) {
  auto* c = static_cast<owned_hook*>(h)->owner;
  if (c->inflight_ops_ != 0) return;  // a completion will ask again
  if (c->flush_hook_.queued) {        // still listed in this turn: delete on the next round
    c->loop_.at_end_of_turn(c->delete_hook_);
    return;
  }
  delete c;
}

connection::~connection() {
  watch_.reset();
  sentinel_.reset();
  cancel_lookup();
  if (fd_ >= 0) ::close(fd_);
  loop_.release(connect_op_);
  loop_.release(recv_op_);
  loop_.release(send_op_);
  loop_.cancel(deadline_timer_);
  loop_.cancel(reconnect_timer_);
  loop_.cancel(health_timer_);
  loop_.cancel(tls_timer_);
}

void connection::set_state(connection_state s) {
  if (state_ == connection_state::ready && s != connection_state::ready) ++losses_;
  state_ = s;
  if (state_fn_ != nullptr) state_fn_(state_ctx_, s);
}

void connection::start() {
  if (state_ != connection_state::idle) return;
  begin_connect();
}

// A Unix path or a numeric address, at once; a host name is left to the resolver (begin_connect).
std::error_code connection::resolve_locally() {
  addresses_.clear();
  net::address a;
  if (!opts_.unix_path.empty()) {
    const std::error_code ec = net::address::from_unix_path(opts_.unix_path, a);
    if (!ec) addresses_.push_back(a);
    return ec;
  }
  if (net::address::from_numeric(opts_.host, opts_.port, a)) addresses_.push_back(a);
  return {};
}

void connection::begin_connect() {
  set_state(connection_state::connecting);
  if (state_ != connection_state::connecting) return;  // the state callback closed it: no connect
  if (!opts_.sentinel.master_name.empty()) {
    // Asked again before every connect, as the Sentinel client spec says: after a failover the
    // old master may be back as a replica (or stay reachable on the wrong side of a partition).
    if (!sentinel_) sentinel_ = std::make_unique<sentinel_lookup>(loop_, opts_, &connection::on_sentinel_answer, this);
    sentinel_->start();
    return;
  }
  connect_to_server();
}

void connection::on_sentinel_answer(void* self, std::error_code ec, const sentinel_answer& where, const std::string& why) {
  auto* c = static_cast<connection*>(self);
  if (c->state_ != connection_state::connecting) return;
  if (ec) {
    if (c->opts_.sentinel.sentinels.empty()) {
      c->refuse(why, ec);  // nothing to ask: commands fail fast, not after their timeouts
      return;
    }
    c->fail(why, ec);  // retried with backoff, and the sentinels asked again
    return;
  }
  if (where.host != c->opts_.host || where.port != c->opts_.port) {
    c->opts_.host = where.host;
    c->opts_.port = where.port;
    (void)c->resolve_locally();
    c->host_is_name_ = c->addresses_.empty();  // a sentinel with announce-hostnames names hosts
    c->address_index_ = 0;
    c->attempts_since_lookup_ = 0;
    c->ready_since_lookup_ = false;
  }
  c->connect_to_server();
}

// The server's addresses (looked up if need be), then a connect.
void connection::connect_to_server() {
  std::error_code ec;
  if (addresses_.empty() && !host_is_name_) ec = resolve_locally();
  if (ec) {
    // The path itself is unusable (longer than a sockaddr_un holds): every retry would fail the
    // same way, so what waits fails now with the reason, and so does what comes later (refused_),
    // instead of waiting in the offline queue for a connection that cannot be.
    refuse("cannot connect to unix:" + opts_.unix_path + ": " + ec.message(), errc::connect_failed);
    return;
  }
  // A name is looked up first, and again once a connection to its addresses was up and dropped or
  // each was tried and none answered: a managed primary's endpoint is a DNS name that moves to the
  // new primary on failover, and reconnecting to the old address would reach a replica (READONLY)
  // or nothing, for ever. getaddrinfo may block for seconds, which would stall every connection of
  // the loop (and, in a cluster, the router): the resolver looks it up on its thread, and
  // on_lookup_done connects. The addresses known so far stay until a lookup gives new ones.
  if (host_is_name_ && (addresses_.empty() || ready_since_lookup_ || attempts_since_lookup_ >= addresses_.size())) {
    lookup_ = loop_.name_resolver().lookup(opts_.host, opts_.port, &connection::on_lookup_done, this);
    if (opts_.connect_timeout.count() > 0) {
      loop_.arm(lookup_timer_, net::deadline_after(loop_.now(), opts_.connect_timeout));
    }
    return;
  }
  connect_next();
}

void connection::on_lookup_done(void* self, std::error_code ec, std::vector<net::address>& addresses) {
  auto* c = static_cast<connection*>(self);
  c->lookup_ = nullptr;
  c->loop_.cancel(c->lookup_timer_);
  if (ec || addresses.empty()) {
    c->lookup_failed("cannot resolve " + c->opts_.host + ": " + (ec ? ec.message() : "no address"));
    return;
  }
  c->addresses_ = std::move(addresses);
  c->address_index_ = 0;
  c->attempts_since_lookup_ = 0;
  c->ready_since_lookup_ = false;
  c->connect_next();
}

// The lookup takes longer than connect_timeout (a DNS server that does not answer): given up as a
// connect that timed out. The worker finishes it in the background and its result is dropped.
void connection::on_lookup_timeout(net::timer* t) {
  auto* c = static_cast<owned_timer*>(t)->owner;
  c->cancel_lookup();
  c->lookup_failed("looking up " + c->opts_.host + " timed out");
}

// A lookup failed: with no address known the connect fails (and is tried again with backoff); with
// the addresses of an earlier lookup, those are tried again (DNS down says nothing of the server).
void connection::lookup_failed(std::string why) {
  if (addresses_.empty()) {
    fail(std::move(why), errc::connect_failed);
    return;
  }
  log(SPDLOG_LEVEL_WARN, "redring: {}; trying the addresses it had before", why);
  attempts_since_lookup_ = 0;
  ready_since_lookup_ = false;
  connect_next();
}

void connection::cancel_lookup() noexcept {
  loop_.cancel(lookup_timer_);
  if (lookup_ == nullptr) return;
  loop_.name_resolver().cancel(lookup_);
  lookup_ = nullptr;
}

void connection::connect_next() {
  std::error_code ec;
  // Each attempt takes the next address (IPv6 and IPv4 of one name, or several records).
  const net::address& target = addresses_[address_index_++ % addresses_.size()];
  ++attempts_since_lookup_;
  current_address_ = target;
  fd_ = net::open_stream_socket(target, {}, ec);
  if (fd_ < 0) {
    fail("cannot create a socket: " + ec.message(), errc::connect_failed);
    return;
  }
  loop_.make_room(2);  // the connect and its linked timeout, with no submit between them
  io_uring_sqe* s = loop_.sqe();
  io_uring_prep_connect(s, fd_, current_address_.get(), current_address_.length());
  io_uring_sqe_set_data64(s, connect_op_);
  ++inflight_ops_;
  if (opts_.connect_timeout.count() > 0) {
    // A linked timeout cancels the connect (-ECANCELED) if it has not completed in time.
    s->flags |= IOSQE_IO_LINK;
    const auto ms = opts_.connect_timeout.count();
    connect_ts_ = {ms / 1000, (ms % 1000) * 1000000};
    io_uring_sqe* t = loop_.sqe();
    io_uring_prep_link_timeout(t, &connect_ts_, 0);
    io_uring_sqe_set_data64(t, 0);
  }
}

void connection::on_connect_done(void* self, int res, std::uint32_t) {
  auto* c = static_cast<connection*>(self);
  --c->inflight_ops_;
  if (c->settle_if_draining()) return;
  if (res < 0) {
    const std::string where = c->current_address_.to_string();
    // The linked timeout cancels a connect waiting in the ring (-ECANCELED), and interrupts one a
    // kernel worker is blocked in (-EINTR: a Unix socket whose listener's backlog is full).
    const bool timed_out = res == -ECANCELED || (res == -EINTR && c->opts_.connect_timeout.count() > 0);
    c->fail(timed_out ? "connect to " + where + " timed out" : "cannot connect to " + where + ": " + std::strerror(-res),
            errc::connect_failed);
    return;
  }
  ++c->connects_;
  if (c->opts_.tls.enabled) {
    c->begin_tls();
  } else {
    c->begin_handshake();
  }
}

// The Redis handshake, once the stream is up (after TLS's, with TLS).
void connection::begin_handshake() {
  set_state(connection_state::handshaking);
  submit_recv();
  if (opts_.protocol == 3) {
    std::vector<std::string> args = {"HELLO", "3"};
    if (opts_.password) {
      args.insert(args.end(), {"AUTH", opts_.user.empty() ? "default" : opts_.user, *opts_.password});
    }
    if (!opts_.client_name.empty()) args.insert(args.end(), {"SETNAME", opts_.client_name});
    send_step(hello_, std::move(args), &connection::on_hello);
  } else {
    begin_resp2();
  }
}

// --- TLS ---
// The session moves no bytes itself (net::tls_stream): ciphertext arrives by the same receive as
// plaintext would (copied into the session, the kernel's buffer recycled at once), is decrypted into
// the multiplexer's receive buffer, and leaves from tls_out_ by the same send.

void connection::begin_tls() {
  if (!tls_context_) {
    std::string why;
    tls_context_ = net::tls_context::shared(opts_.tls, why);
    if (!tls_context_) {  // the files will not load better on a retry
      refuse("TLS: " + why, errc::tls_failed);
      return;
    }
  }
  tls_ = std::make_unique<net::tls_stream>(*tls_context_, opts_.unix_path.empty() ? opts_.host : std::string(), tls_resume_);
  // Each ticket once (RFC 8446 C.4): this connection's own tickets replace it. So a connection that
  // fails (an alert included) before its server sent one leaves nothing to resume.
  tls_resume_ = {};
  if (buffers_ == nullptr && !tls_in_) tls_in_ = std::make_unique<char[]>(kTlsReceiveBytes);
  if (opts_.connect_timeout.count() > 0) loop_.arm(tls_timer_, net::deadline_after(loop_.now(), opts_.connect_timeout));
  submit_recv();
  advance_tls_handshake();
}

void connection::advance_tls_handshake() {
  switch (tls_->handshake()) {
    case net::tls_stream::result::done:
      loop_.cancel(tls_timer_);
      if (auto fresh = tls_->take_new_session()) tls_resume_ = std::move(fresh);  // TLS 1.2's
      flush_tls();  // the client's last handshake message
      begin_handshake();
      return;
    case net::tls_stream::result::want_input:
      flush_tls();
      return;
    case net::tls_stream::result::closed:
      fail("the server closed the TLS session during the handshake", errc::connect_failed);
      return;
    default:
      // A certificate that fails verification or an alert (no common version, a client certificate
      // required): not better on an immediate retry.
      refuse("TLS handshake with " + current_address_.to_string() + " failed: " + tls_->error(), errc::tls_failed);
      return;
  }
}

void connection::on_tls_timeout(net::timer* t) {
  auto* c = static_cast<owned_timer*>(t)->owner;
  if (c->tls_ == nullptr || c->tls_->established() || !c->live()) return;
  c->fail("TLS handshake with " + c->current_address_.to_string() + " timed out", errc::connect_failed);
}

// Ciphertext arrived (tls_->received): the handshake goes on, or plaintext is decrypted and parsed
// until the session wants more. May fail the connection.
void connection::receive_tls() {
  if (!tls_->established()) {
    advance_tls_handshake();
    if (!live() || !tls_->established()) return;
  }
  for (;;) {
    std::size_t n = 0;
    const auto r = tls_->read(mux_.read_space(), n);
    if (r == net::tls_stream::result::ok) {
      if (mux_.commit_read(n)) {
        fail("protocol error: the server sent invalid RESP", errc::protocol_error);
        return;
      }
      if (!live()) return;  // a completion closed it
      continue;
    }
    if (r == net::tls_stream::result::want_input) {
      // A TLS 1.3 server's tickets arrive after the handshake: the newest is resumed on reconnect.
      if (tls_->has_new_session()) tls_resume_ = tls_->take_new_session();
      break;
    }
    if (r == net::tls_stream::result::error && state_ == connection_state::handshaking) {
      // In TLS 1.3 the server checks a client certificate after the client's handshake is done:
      // its refusal (an alert) arrives here, before HELLO's reply. Not better on a retry either.
      refuse("TLS session with " + current_address_.to_string() + " refused: " + tls_->error(), errc::tls_failed);
      return;
    }
    fail(r == net::tls_stream::result::closed ? std::string("the server closed the TLS session")
                                              : "TLS error: " + tls_->error(),
         errc::connection_lost);
    return;
  }
  flush_tls();  // the session may answer the server (a TLS 1.3 key update)
}

// Encrypts what is to send (the handshake's commands first, as flush() takes them), within
// kTlsSendBudget, and sends it with whatever the session wrote, unless a send is in flight (its
// completion comes back here).
void connection::flush_tls() {
  if (tls_sending_ || fd_ < 0 || !tls_ || !live()) return;
  if (tls_->established() && (state_ == connection_state::ready || state_ == connection_state::handshaking)) {
    const bool user = state_ == connection_state::ready;
    if (send_iov_.empty() && mux_.has_output(user)) send_iov_ = mux_.take_output(user);
    if (!send_iov_.empty()) {
      std::size_t asked = 0;
      for (const iovec& v : send_iov_) asked += v.iov_len;
      asked = std::min(asked, kTlsSendBudget);
      const std::size_t n = tls_->write(send_iov_, kTlsSendBudget);
      send_iov_ = mux_.output_written(n);
      if (n < asked) {
        fail("TLS error: " + tls_->error(), errc::connection_lost);
        return;
      }
    }
  }
  tls_out_.clear();
  tls_out_sent_ = 0;
  if (tls_->take_output(tls_out_) == 0) return;
  send_tls();
}

// Sends the rest of tls_out_.
void connection::send_tls() {
  const std::size_t left = tls_out_.size() - tls_out_sent_;
  io_uring_sqe* s = left <= kQuietSendBytes ? loop_.quiet_sqe() : loop_.sqe();
  io_uring_prep_send(s, fd_, tls_out_.data() + tls_out_sent_, std::min(left, kMaxOperationBytes), MSG_NOSIGNAL | MSG_WAITALL);
  io_uring_sqe_set_data64(s, send_op_);
  ++inflight_ops_;
  tls_sending_ = true;
}

void connection::begin_resp2() {
  protocol_ = 2;
  if (opts_.password) {
    std::vector<std::string> args = {"AUTH"};
    if (!opts_.user.empty()) args.push_back(opts_.user);
    args.push_back(*opts_.password);
    send_step(auth_, std::move(args), &connection::on_resp2_auth);
  } else {
    begin_setup();
  }
}

// --- Handshake ---

void connection::send_step(step& s, std::vector<std::string> args, void (connection::*then)(step&, std::error_code)) {
  s.owner = this;
  s.error.clear();
  s.head.clear();
  s.head_seen = false;
  s.args = std::move(args);
  s.then = then;
  s.replies = 1;
  s.encode = [](request& r, resp::writer& w) {
    const auto& step_args = static_cast<step&>(r).args;
    std::vector<std::string_view> views(step_args.begin(), step_args.end());
    w.command(std::span<const std::string_view>(views));
  };
  s.on_node = [](request& r, const resp::node& n) {
    auto& st = static_cast<step&>(r);
    if (n.depth == 0 && resp::is_error(n.data_type)) {
      st.error.assign(n.value);
    } else if (n.depth == 1 && !st.head_seen) {
      st.head_seen = true;
      st.head.assign(n.value);
    }
  };
  s.on_done = [](request& r, std::error_code ec) {
    auto& st = static_cast<step&>(r);
    if (ec == errc::timeout) {  // a server that accepts but never answers (stopped, overloaded)
      st.owner->fail("handshake timed out after " + std::to_string(st.owner->opts_.connect_timeout.count()) +
                         " ms (" + st.args[0] + ")",
                     errc::handshake_failed);
      return;
    }
    (st.owner->*st.then)(st, ec);
  };
  const auto deadline = opts_.connect_timeout.count() > 0 ? net::deadline_after(loop_.now(), opts_.connect_timeout)
                                                          : net::clock::time_point::max();
  mux_.encode(s, deadline, /*front=*/true);
  loop_.at_end_of_turn(flush_hook_);
  arm_deadline_timer();
}

bool connection::is_auth_error(const std::string& text) const {
  const std::string_view code = resp::error_code_word(text);
  return code == "WRONGPASS" || code == "NOAUTH" || code == "NOPERM" ||
         std::string_view(text).starts_with("ERR invalid password") ||
         std::string_view(text).starts_with("ERR AUTH");
}

void connection::on_hello(step& s, std::error_code ec) {
  if (ec) return;  // the connection is already failing
  if (s.error.empty()) {
    protocol_ = 3;
    begin_setup();
    return;
  }
  if (is_auth_error(s.error)) {
    refuse("authentication failed: " + s.error, errc::auth_failed);
    return;
  }
  // No HELLO (Redis < 6) or no RESP3 (NOPROTO): speak RESP2, authenticate with AUTH.
  if (!s.error.starts_with("ERR unknown command") && !s.error.starts_with("NOPROTO")) {
    refuse("HELLO failed: " + s.error, errc::handshake_failed);
    return;
  }
  begin_resp2();
}

void connection::on_resp2_auth(step& s, std::error_code ec) {
  if (ec) return;
  if (!s.error.empty()) {
    refuse("authentication failed: " + s.error, errc::auth_failed);
    return;
  }
  begin_setup();
}

// The server answered a handshake step with an error: retrying at once would get the same answer.
// Every queued command fails with the reason, later ones fail fast (submit), and the connection
// retries at the longest backoff delay until a handshake succeeds.
void connection::refuse(std::string why, std::error_code ec) {
  refused_ = ec;
  last_error_ = why;  // already when the commands complete: their callers may ask why
  mux_.fail_all(ec);
  fail(std::move(why), ec);
}

void connection::begin_setup() {
  setup_pending_ = 0;
  if (opts_.tracking.enabled && protocol_ != 3) {
    // Under RESP2 the invalidations would need a second connection (REDIRECT): not offered.
    refuse(opts_.protocol == 3 ? "client-side caching (options::tracking) needs RESP3: the server refused HELLO 3"
                               : "client-side caching (options::tracking) needs RESP3: options::protocol is 2",
           errc::handshake_failed);
    return;
  }
  if (opts_.tracking.enabled && opts_.tracking.optin && opts_.tracking.broadcast) {
    refuse("options::tracking: optin and broadcast exclude each other (Redis refuses CLIENT TRACKING ON BCAST OPTIN)",
           errc::handshake_failed);
    return;
  }
  if (protocol_ == 2 && !opts_.client_name.empty()) {
    ++setup_pending_;
    send_step(setname_, {"CLIENT", "SETNAME", opts_.client_name}, &connection::on_setup);
  }
  if (opts_.database != 0) {
    ++setup_pending_;
    send_step(select_, {"SELECT", std::to_string(opts_.database)}, &connection::on_setup);
  }
  if (opts_.read_only) {
    ++setup_pending_;
    send_step(readonly_, {"READONLY"}, &connection::on_setup);
  }
  if (!opts_.sentinel.master_name.empty()) {
    ++setup_pending_;
    send_step(role_, {"ROLE"}, &connection::on_role);
  }
  if (opts_.tracking.enabled) {
    std::vector<std::string> args = {"CLIENT", "TRACKING", "ON"};
    if (opts_.tracking.broadcast) {
      args.emplace_back("BCAST");
      for (const std::string& p : opts_.tracking.prefixes) {
        args.emplace_back("PREFIX");
        args.push_back(p);
      }
    }
    if (opts_.tracking.optin) args.emplace_back("OPTIN");
    if (opts_.tracking.noloop) args.emplace_back("NOLOOP");
    ++setup_pending_;
    send_step(tracking_, std::move(args), &connection::on_setup);
  }
  if (opts_.set_lib_info) {
    setup_pending_ += 2;
    send_step(lib_name_, {"CLIENT", "SETINFO", "LIB-NAME", "redring"}, &connection::on_setup);
    send_step(lib_ver_, {"CLIENT", "SETINFO", "LIB-VER", library_version}, &connection::on_setup);
  }
  if (setup_pending_ == 0) become_ready();
}

void connection::become_ready() {
  refused_ = {};
  // The backoff starts over only now: a server that accepts connections and drops them before the
  // handshake completes (or its TLS handshake) is not redialled at the first delay for ever.
  attempt_ = 0;
  // Commands that timed out while the connection was down were told so: they are not sent now.
  mux_.drop_unsent_timeouts();
  ready_since_lookup_ = true;
  set_state(connection_state::ready);
  log(SPDLOG_LEVEL_INFO, "redring: connected to {} (RESP{})",
      current_address_.to_string(), protocol_);
  loop_.at_end_of_turn(flush_hook_);
  last_read_ = loop_.now();
  if (opts_.health_check_interval.count() > 0) {
    loop_.arm(health_timer_, net::deadline_after(loop_.now(), opts_.health_check_interval));
  }
  if (sentinel_ && opts_.sentinel.role == sentinel_role::master) {
    if (!watch_) watch_ = std::make_unique<sentinel_watch>(loop_, opts_, &connection::on_master_switch, this);
    watch_->start(sentinel_->order());  // kept across reconnects
  }
}

// A sentinel announced a failover: a connection to anything but the new master leaves now, before
// more writes reach the old one (which Sentinel turns into a replica only later, see sentinel_watch).
void connection::on_master_switch(void* self, const sentinel_answer& from, const sentinel_answer& to) {
  auto* c = static_cast<connection*>(self);
  if (c->state_ != connection_state::ready && c->state_ != connection_state::handshaking) return;
  if (to.host == c->opts_.host && to.port == c->opts_.port) return;
  const std::string name = "'" + c->opts_.sentinel.master_name + "'";
  const std::string now = to.host + ":" + std::to_string(to.port);
  c->drop(from.host.empty() ? "sentinel: the master of " + name + " is now " + now
                            : "sentinel: " + name + " failed over from " + from.host + ":" + std::to_string(from.port) + " to " + now);
}

void connection::on_health_timer(net::timer* t) {
  auto* c = static_cast<owned_timer*>(t)->owner;
  if (c->state_ != connection_state::ready) return;  // re-armed when ready again
  const auto interval = c->opts_.health_check_interval;
  // Only an idle connection is probed: replies flowing prove it alive.
  if (!c->ping_.in_flight && c->loop_.now() - c->last_read_ >= interval) {
    c->ping_.in_flight = true;
    c->ping_.failed = false;
    c->ping_.timeout = interval;
    c->submit(c->ping_);
  }
  c->loop_.arm(c->health_timer_, net::deadline_after(c->loop_.now(), interval));
}

// Sentinel mode: the spec's last step. A sentinel's view may be stale (a failover under way, or the
// old master back before it is turned into a replica): a server of the other role is left, and the
// sentinels are asked again after the backoff delay.
void connection::on_role(step& s, std::error_code ec) {
  if (ec) return;
  const char* const expected = opts_.sentinel.role == sentinel_role::master ? "master" : "slave";
  if (!s.error.empty()) {
    // ROLE denied (an ACL without it): the sentinels' word is all there is.
    log(SPDLOG_LEVEL_WARN, "redring: cannot check the role of {}: {}", current_address_.to_string(), s.error);
  } else if (s.head != expected) {
    fail("sentinel: " + current_address_.to_string() + " is a " + (s.head.empty() ? "server of unknown role" : s.head) +
             ", not a " + expected + " of '" + opts_.sentinel.master_name + "'",
         errc::connect_failed);
    return;
  }
  if (--setup_pending_ == 0) become_ready();
}

void connection::on_setup(step& s, std::error_code ec) {
  if (ec) return;
  // CLIENT SETINFO is Redis 7.2+: older servers refuse it, and that is fine.
  if (!s.error.empty() && &s != &lib_name_ && &s != &lib_ver_) {
    refuse(s.args[0] + " failed: " + s.error, errc::handshake_failed);
    return;
  }
  if (--setup_pending_ == 0) become_ready();
}

// --- Commands ---

void connection::submit(request& r, std::string_view encoded) {
  if (state_ != connection_state::ready || refused_) [[unlikely]] {
    // A refusal first: a connection that closed because the server refused the handshake (no
    // reconnect) says so, not just that it closed.
    if (refused_) {
      r.on_done(r, refused_);
      return;
    }
    if (state_ == connection_state::closed) {
      // Closed by a drop with reconnecting off (a session: see client::open_session), or by close().
      r.on_done(r, closed_by_drop_ ? errc::connection_lost : errc::shutting_down);
      return;
    }
    // Commands that timed out in the queue leave it first (they must not run later, nor count).
    if (state_ != connection_state::ready && mux_.unsent() >= opts_.offline_queue_limit &&
        (!mux_.drop_unsent_timeouts() || mux_.unsent() >= opts_.offline_queue_limit)) {
      r.on_done(r, errc::offline_queue_full);
      return;
    }
  }
  const auto timeout = timeout_of(r, opts_.command_timeout);
  auto deadline = timeout.count() > 0 ? net::deadline_after(loop_.now(), timeout) : net::clock::time_point::max();
  if (r.carried_deadline != net::clock::time_point{}) [[unlikely]] {  // moved here unsent: same deadline
    deadline = r.carried_deadline;
    r.carried_deadline = {};
  }
  if (encoded.empty()) mux_.encode(r, deadline);
  else mux_.encode_as(r, deadline, encoded);
  if (state_ == connection_state::ready) loop_.at_end_of_turn(flush_hook_);
  if (r.replies == 0) {  // nothing to wait for (a command the server does not answer)
    r.on_done(r, {});
    return;
  }
  if (deadline != net::clock::time_point::max()) arm_deadline_timer();
}

void connection::arm_deadline_timer() {
  const auto next = mux_.next_deadline();
  if (next == net::clock::time_point::max()) return;
  if (!deadline_timer_.armed() || next < deadline_timer_.deadline) loop_.arm(deadline_timer_, next);
}

void connection::on_deadline(net::timer* t) {
  auto* c = static_cast<owned_timer*>(t)->owner;
  const auto next = c->mux_.expire(c->loop_.now());
  if (next != net::clock::time_point::max()) c->loop_.arm(c->deadline_timer_, next);
}

// --- I/O ---

void connection::submit_recv() {
  if (recv_armed_ || fd_ < 0 || draining_) return;
  io_uring_sqe* s = loop_.sqe();
  if (buffers_ != nullptr) {
    // One submission keeps receiving (IORING_CQE_F_MORE) into buffers the kernel picks.
    io_uring_prep_recv_multishot(s, fd_, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = buffers_->group();
  } else if (tls_) {
    io_uring_prep_recv(s, fd_, tls_in_.get(), kTlsReceiveBytes, 0);  // ciphertext, for the session
  } else {
    const std::span<char> space = mux_.read_space();
    // A submission's length is 32 bits: 4 GiB would be a 0-byte receive, read as the peer closing.
    io_uring_prep_recv(s, fd_, space.data(), std::min<std::size_t>(space.size(), kMaxOperationBytes), 0);
  }
  io_uring_sqe_set_data64(s, recv_op_);
  ++inflight_ops_;
  recv_armed_ = true;
}

void connection::on_recv_done(void* self, int res, std::uint32_t flags) {
  auto* c = static_cast<connection*>(self);
  const bool more = (flags & IORING_CQE_F_MORE) != 0;  // a multishot receive stays armed
  if (!more) {
    --c->inflight_ops_;
    c->recv_armed_ = false;
  }
  std::error_code ec;
  bool ciphertext = false;  // TLS: handed to the session, decrypted below
  if ((flags & IORING_CQE_F_BUFFER) != 0) {
    // Parse in the kernel's buffer, then give it back at once, whatever state we are in (a buffer
    // the kernel picked comes back even with no bytes: not recycled, the ring would lose it).
    const std::uint16_t id = net::buffer_ring::id_of(flags);
    if (res > 0 && !c->draining_) {
      c->last_read_ = c->loop_.now();
      const std::string_view bytes = c->buffers_->data(id, static_cast<std::size_t>(res));
      if (c->tls_) {
        c->tls_->received(bytes);
        ciphertext = true;
      } else {
        ec = c->mux_.feed_in_place(bytes);
      }
    }
    c->buffers_->recycle(id);
  } else if (res > 0 && !c->draining_) {
    c->last_read_ = c->loop_.now();
    if (c->tls_) {
      c->tls_->received(std::string_view(c->tls_in_.get(), static_cast<std::size_t>(res)));
      ciphertext = true;
    } else {
      ec = c->mux_.commit_read(static_cast<std::size_t>(res));
    }
  }
  if (c->settle_if_draining()) return;
  if (ciphertext) {
    c->receive_tls();
    if (!c->live()) return;  // failed (and draining, or closed already), or closed by a completion
  }
  if (ec) {
    c->fail("protocol error: the server sent invalid RESP", errc::protocol_error);
    return;
  }
  if (res == -ENOBUFS) {
    // Every provided buffer is in use (many connections at once): backpressure, not an error.
    // They were recycled as they were parsed, so receive again.
    ++c->buffer_shortages_;
    c->submit_recv();
    return;
  }
  if (res == 0 || (res < 0 && res != -ENOBUFS)) {
    c->fail(res == 0 ? "server closed the connection" : std::string("receive failed: ") + std::strerror(-res),
            errc::connection_lost);
    return;
  }
  if (!more) c->submit_recv();
  c->arm_deadline_timer();
}

void connection::on_flush_hook(net::turn_hook* h) { static_cast<owned_hook*>(h)->owner->flush(); }

void connection::flush() {
  if (tls_) {
    flush_tls();
    return;
  }
  if (draining_ || fd_ < 0 || mux_.sending()) return;
  const bool user = state_ == connection_state::ready;
  if (state_ != connection_state::ready && state_ != connection_state::handshaking) return;
  if (!mux_.has_output(user)) return;
  send_iov_ = mux_.take_output(user);
  send_pending();
}

// Sends `send_iov_` (at most IOV_MAX pieces; a short write continues from on_send_done).
void connection::send_pending() {
  msg_ = {};
  msg_.msg_iov = const_cast<iovec*>(send_iov_.data());
  msg_.msg_iovlen = std::min<std::size_t>(send_iov_.size(), IOV_MAX);
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < msg_.msg_iovlen; ++i) bytes += send_iov_[i].iov_len;
  // A send that fits the socket buffer completes inline: let it not end the turn's wait (the reply
  // will), so one request at a time costs one io_uring_enter. Bigger sends may wait for the peer to
  // read, and their completion may be needed to continue (an older kernel's short write).
  io_uring_sqe* s = bytes <= kQuietSendBytes ? loop_.quiet_sqe() : loop_.sqe();
  // MSG_WAITALL: the kernel (6.0+) retries a short send itself instead of completing early.
  // MSG_NOSIGNAL: no SIGPIPE on a closed peer. One piece (no referenced payload, the usual case)
  // goes as a plain send, which spares the kernel copying a msghdr and importing an iovec.
  if (msg_.msg_iovlen == 1) {
    // A submission's length is 32 bits (a 4 GiB piece would send 0 bytes, for ever): a bigger piece
    // goes in parts, as a short send would.
    io_uring_prep_send(s, fd_, send_iov_[0].iov_base, std::min<std::size_t>(send_iov_[0].iov_len, kMaxOperationBytes),
                       MSG_NOSIGNAL | MSG_WAITALL);
  } else {
    io_uring_prep_sendmsg(s, fd_, &msg_, MSG_NOSIGNAL | MSG_WAITALL);
  }
  io_uring_sqe_set_data64(s, send_op_);
  ++inflight_ops_;
}

void connection::on_send_done(void* self, int res, std::uint32_t) {
  auto* c = static_cast<connection*>(self);
  --c->inflight_ops_;
  c->tls_sending_ = false;
  if (c->settle_if_draining()) return;
  if (res < 0) {
    c->fail(std::string("send failed: ") + std::strerror(-res), errc::connection_lost);
    return;
  }
  if (c->tls_) {
    c->tls_out_sent_ += static_cast<std::size_t>(res);
    if (c->tls_out_sent_ < c->tls_out_.size()) {
      c->send_tls();  // short write
    } else {
      c->flush_tls();  // what was encrypted, or was written, meanwhile
    }
    return;
  }
  c->send_iov_ = c->mux_.output_written(static_cast<std::size_t>(res));
  if (!c->send_iov_.empty()) {  // short write: send the rest now
    c->send_pending();
    return;
  }
  if (c->mux_.has_output(c->state_ == connection_state::ready)) c->loop_.at_end_of_turn(c->flush_hook_);
}

// --- Faults ---

void connection::drop(std::string why) { fail(std::move(why), errc::connection_lost); }

void connection::fail(std::string why, std::error_code ec) {
  if (draining_ || state_ == connection_state::closed) return;
  last_error_ = std::move(why);
  drop_reason_ = ec;
  log(ec == errc::connect_failed ? SPDLOG_LEVEL_WARN : SPDLOG_LEVEL_ERROR, "redring: connection lost: {}", last_error_);
  loop_.cancel(health_timer_);
  loop_.cancel(tls_timer_);
  draining_ = true;
  set_state(connection_state::backoff);
  // Shut down before any command completes: a send still in the kernel may reference a command's
  // payload (16 KiB or more), which its caller frees once completed; after shutdown the kernel
  // fails that send (EPIPE) instead of reading the freed bytes. It also completes a pending recv.
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  // Sent commands will get no reply; unsent ones wait for the next connection.
  mux_.drop_sent(ec == errc::protocol_error ? std::error_code(errc::protocol_error)
                                            : std::error_code(errc::connection_lost));
  if (fd_ >= 0) {
    loop_.cancel_op(connect_op_);
    loop_.cancel_op(recv_op_);
    loop_.cancel_op(send_op_);
  }
  if (inflight_ops_ == 0) finish_close();
}

// Every completion while the connection is being torn down ends here: the last one closes it.
bool connection::settle_if_draining() {
  if (!draining_) return false;
  if (inflight_ops_ == 0) finish_close();
  return true;
}

void connection::finish_close() {
  delete_when_idle();
  draining_ = false;
  recv_armed_ = false;
  // The kernel is done with our buffers: the next connection starts a session of its own.
  tls_.reset();
  tls_out_.clear();
  tls_out_sent_ = 0;
  tls_sending_ = false;
  send_iov_ = {};
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (state_ != connection_state::closed) schedule_reconnect();
}

void connection::schedule_reconnect() {
  if (!opts_.reconnect.enabled) {
    // Closed first: a completion that submits again is then refused at once, instead of being
    // queued on a connection still in backoff that fail_all fails again, for ever.
    closed_by_drop_ = true;
    // Closed for good: nothing to look up or watch for any more (close() is not called for this).
    if (sentinel_) sentinel_->cancel();
    if (watch_) watch_->stop();
    set_state(connection_state::closed);
    mux_.fail_all(errc::connection_lost);
    return;
  }
  const auto initial = std::max<std::int64_t>(1, opts_.reconnect.initial_delay.count());
  const auto cap = std::max<std::int64_t>(initial, opts_.reconnect.max_delay.count());
  std::int64_t delay = refused_ ? cap : std::min<std::int64_t>(cap, initial << std::min<std::uint32_t>(attempt_, 30));
  ++attempt_;
  const double jitter = std::clamp(opts_.reconnect.jitter, 0.0, 1.0);
  const double draw = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  // At most 2^52 ms (142,000 years), exact as a double: a cap of milliseconds::max() (no cap) must
  // not convert back out of int64's range.
  delay = std::min<std::int64_t>(delay, std::int64_t{1} << 52);
  delay = static_cast<std::int64_t>(static_cast<double>(delay) * (1.0 - jitter * draw));
  set_state(connection_state::backoff);
  log(SPDLOG_LEVEL_INFO, "redring: reconnecting in {} ms (attempt {})", delay, attempt_);
  loop_.arm(reconnect_timer_, net::deadline_after(loop_.now(), std::chrono::milliseconds(delay)));
}

void connection::on_reconnect(net::timer* t) {
  auto* c = static_cast<owned_timer*>(t)->owner;
  if (c->state_ == connection_state::closed) return;
  c->begin_connect();
}

void connection::close() {
  if (state_ == connection_state::closed) return;
  if (sentinel_) sentinel_->cancel();
  if (watch_) watch_->stop();
  cancel_lookup();
  loop_.cancel(reconnect_timer_);
  loop_.cancel(deadline_timer_);
  loop_.cancel(health_timer_);
  loop_.cancel(tls_timer_);
  const bool was_open = fd_ >= 0 && !draining_;
  set_state(connection_state::closed);
  if (was_open) ::shutdown(fd_, SHUT_RDWR);  // first, as in fail(): no send reads a completed command's bytes
  mux_.fail_all(errc::shutting_down);
  if (was_open) {
    draining_ = true;
    loop_.cancel_op(connect_op_);
    loop_.cancel_op(recv_op_);
    loop_.cancel_op(send_op_);
    if (inflight_ops_ == 0) finish_close();
  }
}

}  // namespace redring::client
