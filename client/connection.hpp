// SPDX-License-Identifier: MIT
// One connection to one server: a multiplexer bound to a socket on a loop, with the handshake,
// reconnection and timeouts. Addressed by node, so a cluster client holds one per node.
#pragma once

#include "client/error.hpp"
#include "client/multiplexer.hpp"
#include "client/options.hpp"
#include "net/address.hpp"
#include "net/loop.hpp"
#include "net/resolver.hpp"
#include "net/tls.hpp"

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace redring::client {

class sentinel_lookup;
class sentinel_watch;
struct sentinel_answer;

/// Where a connection is in its life.
enum class connection_state : std::uint8_t {
  idle,         ///< Not started.
  connecting,   ///< Resolving and connecting.
  handshaking,  ///< Connected; HELLO/AUTH/SELECT under way. User commands wait.
  ready,        ///< Commands flow.
  backoff,      ///< Lost; waiting to reconnect. Commands queue (bounded).
  closed,       ///< Closed for good (`close()`); commands fail with `shutting_down`.
};

/// A connection to one server. Loop thread only. Lifecycle:
/// 1. `start()` resolves and connects (with `connect_timeout`), then runs the handshake. A host name
///    is looked up by the loop's resolver, off the loop thread (getaddrinfo blocks), within
///    `connect_timeout`, and again before a reconnect once a connection to its addresses was up, or
///    each of them was tried (a DNS failover moves the name). A failed lookup keeps the addresses
///    of the last one that succeeded; with none, the connect fails and is retried with backoff.
///    In Sentinel mode (`options::sentinel`), the sentinels are asked first, before every connect,
///    and ROLE is checked in the handshake; a master connection leaves its server as soon as a
///    sentinel announces a failover (see client/sentinel.hpp).
/// 2. Commands submitted before `ready` wait in the multiplexer (at most `offline_queue_limit`).
/// 3. On any I/O error, EOF or protocol error: sent commands complete with `connection_lost` (or
///    `protocol_error`), in-flight operations are cancelled and drained (the kernel must be done with
///    our buffers), the socket closes, and a reconnect is scheduled with backoff and jitter.
/// 4. `close()` completes everything with `shutting_down`.
/// 5. A connection is never deleted while the kernel or its own callbacks may still use it: the
///    owner holds a `connection::pointer`, whose release closes it and lets it delete itself at the
///    end of a loop turn once its operations have drained (a completion may drop the last owner).
class connection {
 public:
  /// Deleter of `pointer`: closes and hands the connection over to the loop.
  struct releaser {
    void operator()(connection* c) const noexcept { c->release(); }
  };
  using pointer = std::unique_ptr<connection, releaser>;

  /// A new connection on `loop`. Destroy its owners before the loop.
  [[nodiscard]] static pointer create(net::loop& loop, const options& opts) { return pointer(new connection(loop, opts)); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Starts connecting. Idempotent.
  void start();
  /// Queues `r` (encoding it now). Completes it at once with an error if the connection is closed,
  /// the offline queue is full, or the server refused the handshake (credentials, SELECT ...).
  /// Inline for the common case (ready, no deadline, a reply to wait for): every command passes here.
  void submit(request& r) {
    if (state_ != connection_state::ready || refused_ || r.replies == 0 ||
        timeout_of(r, opts_.command_timeout).count() > 0) [[unlikely]] {
      submit(r, std::string_view());
      return;
    }
    mux_.encode(r, net::clock::time_point::max());
    loop_.at_end_of_turn(flush_hook_);
  }
  /// Like `submit(r)`, with `r`'s bytes already encoded (copied now).
  void submit(request& r, std::string_view encoded);
  /// Closes: every queued command completes with `shutting_down`; no reconnect.
  void close();
  /// Drops the connection as if it had failed, `why` becoming `last_error()`: sent commands
  /// complete with `connection_lost`, unsent ones wait, and it reconnects with backoff (if
  /// reconnecting is on). For an owner that finds the peer dead by its own means (the subscriber's
  /// health check). Not from inside this connection's callbacks (a request's or the push handler's).
  void drop(std::string why);

  [[nodiscard]] connection_state state() const noexcept { return state_; }
  /// For the owners of blocking connections: true if no blocking command can use this one again:
  /// closed, or a blocking command that timed out on the client still holds it blocked on the
  /// server (nothing waits here, yet it is not idle). Such a connection is released (closed).
  [[nodiscard]] bool spent_for_blocking() const noexcept {
    return state_ == connection_state::closed || (mux_.queued() == 0 && !mux_.idle());
  }
  /// Why the connection last failed (empty if it never did).
  [[nodiscard]] const std::string& last_error() const noexcept { return last_error_; }
  /// 3 or 2: the protocol agreed in the handshake.
  [[nodiscard]] int protocol() const noexcept { return protocol_; }
  /// How many times a connection was established.
  [[nodiscard]] std::uint64_t connects() const noexcept { return connects_; }
  /// How many times the connection stopped being ready (dropped, or closed). Each time, what the
  /// server kept for it (CLIENT TRACKING's tracked keys, subscriptions) was lost.
  [[nodiscard]] std::uint64_t losses() const noexcept { return losses_; }
  /// How many times the loop's provided buffers ran out under this connection's multishot receive
  /// (ENOBUFS: backpressure; the receive is armed again).
  [[nodiscard]] std::uint64_t buffer_shortages() const noexcept { return buffer_shortages_; }
  /// Where cluster redirections go (see `redirect_handler`).
  void set_redirect_handler(redirect_handler h) { mux_.set_redirect_handler(h); }
  /// Takes back the commands queued while not connected, for another connection (see
  /// `multiplexer::take_unsent`). Nothing while ready or while anything is sent. The connection's
  /// own health-check PING is not handed out (it would outlive this connection in another's queue):
  /// it completes here with connection_lost.
  template <class F>
  std::size_t take_unsent(F&& f) {
    if (state_ == connection_state::ready) return 0;
    return mux_.take_unsent([this, &f](request& r) {
      if (&r == &ping_) {
        ping_.carried_deadline = {};  // not submitted again: the next PING starts its own timeout
        r.on_done(r, errc::connection_lost);
      } else {
        f(r);
      }
    });
  }
  /// Where out-of-band replies (RESP3 pushes) go.
  void set_push_handler(push_handler h) { mux_.set_push_handler(h); }
  /// With TLS: true if the current connection's handshake resumed the previous one's session (the
  /// server's ticket, kept across reconnects: no certificate exchange).
  [[nodiscard]] bool tls_resumed() const noexcept { return tls_ && tls_->resumed(); }
  /// True if this connection receives with multishot recv into provided buffers.
  [[nodiscard]] bool uses_buffer_ring() const noexcept { return buffers_ != nullptr; }
  /// The multiplexer (for tests and statistics).
  [[nodiscard]] const multiplexer& mux() const noexcept { return mux_; }
  /// Called whenever the state changes (tests, logging).
  void on_state_change(void (*fn)(void*, connection_state), void* context) { state_fn_ = fn, state_ctx_ = context; }

 private:
  connection(net::loop& loop, const options& opts);
  ~connection();
  void release() noexcept;
  void delete_when_idle() noexcept;
  static void on_delete_hook(net::turn_hook* h);

  // A handshake command: remembers the error reply, if any, and calls back the connection.
  struct step : request {
    connection* owner = nullptr;
    std::string error;  // server error text, empty if OK
    std::string head;   // the reply's first element (ROLE's role), if it is an aggregate
    bool head_seen = false;
    std::vector<std::string> args;
    void (connection::*then)(step&, std::error_code) = nullptr;
  };

  void set_state(connection_state s);
  std::error_code resolve_locally();
  void begin_connect();
  void connect_to_server();
  static void on_sentinel_answer(void* self, std::error_code ec, const sentinel_answer& where, const std::string& why);
  void on_role(step& s, std::error_code ec);
  static void on_master_switch(void* self, const sentinel_answer& from, const sentinel_answer& to);
  void connect_next();
  static void on_lookup_done(void* self, std::error_code ec, std::vector<net::address>& addresses);
  static void on_lookup_timeout(net::timer* t);
  void lookup_failed(std::string why);
  void cancel_lookup() noexcept;
  void submit_recv();
  void flush();
  void send_pending();
  void fail(std::string why, std::error_code ec);
  void refuse(std::string why, std::error_code ec);
  bool settle_if_draining();
  void finish_close();
  void schedule_reconnect();
  void arm_deadline_timer();
  void send_step(step& s, std::vector<std::string> args, void (connection::*then)(step&, std::error_code));
  void on_hello(step& s, std::error_code ec);
  void on_resp2_auth(step& s, std::error_code ec);
  void on_setup(step& s, std::error_code ec);
  void begin_setup();
  void begin_resp2();
  bool is_auth_error(const std::string& text) const;

  void begin_handshake();
  void begin_tls();
  void advance_tls_handshake();
  void receive_tls();
  void flush_tls();
  void send_tls();
  [[nodiscard]] bool live() const noexcept {
    return !draining_ && (state_ == connection_state::connecting || state_ == connection_state::handshaking ||
                          state_ == connection_state::ready);
  }
  static void on_tls_timeout(net::timer* t);

  static void on_connect_done(void* self, int res, std::uint32_t flags);
  static void on_recv_done(void* self, int res, std::uint32_t flags);
  static void on_send_done(void* self, int res, std::uint32_t flags);
  static void on_flush_hook(net::turn_hook* h);
  static void on_deadline(net::timer* t);
  static void on_reconnect(net::timer* t);
  static void on_health_timer(net::timer* t);
  void become_ready();
  template <class... Args>
  void log(int level, const char* format, const Args&... args);

  net::loop& loop_;
  options opts_;
  multiplexer mux_;
  connection_state state_ = connection_state::idle;
  int fd_ = -1;
  int inflight_ops_ = 0;          // submitted operations whose final completion has not arrived
  bool recv_armed_ = false;
  bool draining_ = false;         // lost: waiting for inflight_ops_ to reach 0
  // The server refused the handshake (credentials: auth_failed; SELECT, READONLY, HELLO for another
  // reason: handshake_failed). Commands fail fast with it and reconnects wait the longest delay,
  // until a handshake succeeds: a refusal is not retried in a storm, nor waited out by the queue.
  std::error_code refused_;
  bool closed_by_drop_ = false;   // closed because the connection dropped with reconnecting off
  int protocol_ = 3;
  int setup_pending_ = 0;
  std::uint32_t attempt_ = 0;     // reconnect attempts since the connection was last ready
  std::uint64_t connects_ = 0;
  std::uint64_t losses_ = 0;
  std::uint64_t buffer_shortages_ = 0;
  std::string last_error_;
  std::error_code drop_reason_;

  net::op_token connect_op_ = 0, recv_op_ = 0, send_op_ = 0;
  net::buffer_ring* buffers_ = nullptr;  // the loop's provided buffers, when multishot recv is used
  std::vector<net::address> addresses_;
  net::resolver::query* lookup_ = nullptr;  // a host name lookup in flight
  bool host_is_name_ = false;               // looked up by the resolver (not numeric, not a path)
  bool ready_since_lookup_ = false;         // a connection to these addresses was up
  std::size_t attempts_since_lookup_ = 0;   // connects to these addresses
  std::size_t address_index_ = 0;
  net::address current_address_;
  __kernel_timespec connect_ts_{};
  msghdr msg_{};
  std::span<const iovec> send_iov_;
  struct owned_hook : net::turn_hook {
    connection* owner = nullptr;
  };
  struct owned_timer : net::timer {
    connection* owner = nullptr;
  };
  owned_hook flush_hook_, delete_hook_;
  bool released_ = false;
  owned_timer deadline_timer_, reconnect_timer_, health_timer_, lookup_timer_, tls_timer_;
  // TLS (opts_.tls.enabled): the context, loaded at the first connect and kept for the reconnects;
  // the session of the current socket; the ciphertext to send, which the send in flight points into
  // (what the session writes meanwhile waits in it); with plain recv, the buffer ciphertext arrives in.
  std::shared_ptr<net::tls_context> tls_context_;
  std::unique_ptr<net::tls_stream> tls_;
  net::tls_session tls_resume_;  // the newest session the server gave, for the next connect
  std::string tls_out_;
  std::size_t tls_out_sent_ = 0;
  bool tls_sending_ = false;
  std::unique_ptr<char[]> tls_in_;
  struct health_ping : request {
    connection* owner = nullptr;
    bool in_flight = false;
    bool failed = false;
  };
  health_ping ping_;
  net::clock::time_point last_read_{};
  std::minstd_rand rng_;

  std::unique_ptr<sentinel_lookup> sentinel_;  // Sentinel mode: where to connect, asked before each connect
  std::unique_ptr<sentinel_watch> watch_;      // Sentinel mode, master: failovers, while connected
  step hello_, auth_, setname_, select_, lib_name_, lib_ver_, readonly_, role_, tracking_;
  void (*state_fn_)(void*, connection_state) = nullptr;
  void* state_ctx_ = nullptr;
};

}  // namespace redring::client
