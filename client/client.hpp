// SPDX-License-Identifier: MIT
// The client: commands as C++20 coroutines or callbacks, multiplexed and auto-pipelined over a
// connection on an io_uring loop. Typed helpers for the common commands; `command<T>(...)` for all.
#pragma once

#include "client/connection.hpp"
#include "client/error.hpp"
#include "client/options.hpp"
#include "client/pipeline.hpp"
#include "client/reply.hpp"
#include "client/request.hpp"
#include "net/loop.hpp"
#include "resp/writer.hpp"

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace redring::client {

class client;

namespace detail {

// How an awaitable keeps an argument until it is encoded: text as a view, numbers by value, ranges
// by reference. All of them live until the co_await completes.
template <class T>
using stored_argument_t =
    std::conditional_t<std::convertible_to<const T&, std::string_view> && !std::is_array_v<T>, std::string_view,
                       std::conditional_t<std::is_array_v<T>, std::string_view,
                                          std::conditional_t<resp::range_argument<T>, const T&, T>>>;

void submit(client& c, request& r);

// True for commands that may block the connection: BLPOP & co., WAIT, XREAD(GROUP) ... BLOCK.
bool is_blocking_command(std::string_view name) noexcept;
bool is_block_option(std::string_view arg) noexcept;

bool is_stream_read(std::string_view name) noexcept;  // XREAD, XREADGROUP: blocking with BLOCK

template <class First, class... Rest>
bool blocks(const First& first, const Rest&... rest) {
  if constexpr (std::convertible_to<const First&, std::string_view>) {
    const std::string_view name(first);
    if (is_blocking_command(name)) return true;
    if (is_stream_read(name)) {
      bool block = false;
      auto check = [&block](const auto& a) {
        if constexpr (std::convertible_to<const decltype(a)&, std::string_view>) {
          block = block || is_block_option(std::string_view(a));
        }
      };
      (check(rest), ...);
      return block;
    }
  }
  return false;
}

inline bool blocks() { return false; }

}  // namespace detail

/// What `co_await client.command<T>(...)` waits on. Holds the request, its arguments and the reply
/// sink in the coroutine frame: submitting allocates nothing. Await it at once: the arguments it
/// borrows must outlive the co_await. The coroutine resumes on the loop thread.
template <class T, class... Args>
class [[nodiscard]] command_awaitable : private request {
 public:
  explicit command_awaitable(client& c, const Args&... args) : client_(c), args_(args...) {
    request::encode = &encode_command;
    request::on_node = &node_received;
    request::on_done = &done;
    request::borrows_arguments = true;
    request::blocking = detail::blocks(args...);
  }
  command_awaitable(command_awaitable&&) noexcept = default;  // before submission only
  command_awaitable& operator=(command_awaitable&&) = delete;

  /// A per-command timeout instead of the client's default (negative: none).
  [[nodiscard]] command_awaitable with_timeout(std::chrono::milliseconds t) && {
    request::timeout = t;
    return std::move(*this);
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    detail::submit(client_, *this);
  }
  /// The reply converted to T, the server's error reply, or why there was no reply.
  result<T> await_resume() {
    if (failure_) return resp::error{failure_, {}};
    return sink_.take();
  }

 private:
  static void encode_command(request& r, resp::writer& w) {
    auto& self = static_cast<command_awaitable&>(r);
    std::apply([&w](const auto&... a) { w.command(a...); }, self.args_);
  }
  static void node_received(request& r, const resp::node& n) { static_cast<command_awaitable&>(r).sink_.on_node(n); }
  static void done(request& r, std::error_code ec) {
    auto& self = static_cast<command_awaitable&>(r);
    self.failure_ = ec;
    self.handle_.resume();
  }

  client& client_;
  std::tuple<detail::stored_argument_t<Args>...> args_;
  reply_sink<T> sink_;
  std::error_code failure_;
  std::coroutine_handle<> handle_;
};

/// What `co_await client.execute(pipeline_or_transaction)` waits on: one request for the batch.
class [[nodiscard]] batch_awaitable : private request {
 public:
  batch_awaitable(client& c, std::string_view bytes, std::size_t commands, bool transaction);
  batch_awaitable(batch_awaitable&&) noexcept = default;
  bool await_ready() const noexcept { return commands_ == 0; }
  void await_suspend(std::coroutine_handle<> h);
  /// One value per command, in order; see `pipeline` and `transaction` for the errors.
  result<std::vector<resp::value>> await_resume();

 private:
  static void encode_batch(request& r, resp::writer& w);
  static void node_received(request& r, const resp::node& n);
  static void done(request& r, std::error_code ec);

  client& client_;
  std::string_view bytes_;
  std::size_t commands_;
  bool transaction_;
  std::size_t replies_seen_ = 0;
  resp::value_builder builder_;
  std::vector<resp::value> values_;
  std::optional<resp::value> exec_;
  std::error_code failure_;
  std::coroutine_handle<> handle_;
};

/// Options of SET.
struct set_options {
  std::optional<std::chrono::milliseconds> expire;  ///< PX
  bool only_if_absent = false;                      ///< NX
  bool only_if_present = false;                     ///< XX
  bool keep_ttl = false;                            ///< KEEPTTL
};

/// A Redis client on one loop. Every method may be called from any thread; completions run on the
/// loop thread. One connection per client for now (pool size 1).
class client {
 public:
  /// A client for `opts`; call `start()` (or just submit: the first command starts it).
  client(net::loop& loop, options opts);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Starts connecting. Commands submitted before the handshake ends wait (bounded).
  void start();
  /// Completes every queued command with `shutting_down` and closes. Loop thread.
  void close();

  // --- Any command ---

  /// `co_await c.command<T>("HSET", key, field, value)`: the reply as T (resp::value by default).
  template <class T = resp::value, resp::argument... Args>
  [[nodiscard]] command_awaitable<T, Args...> command(const Args&... args) {
    return command_awaitable<T, Args...>(*this, args...);
  }

  /// Sends a command and calls `callback(result<T>)` on the loop thread. Arguments are copied
  /// while encoding, so they need not outlive the call.
  template <class T = resp::value, class F, resp::argument... Args>
  void command_callback(F&& callback, const Args&... args);

  /// Submits a raw request (see request.hpp). Thread-safe.
  void submit(request& r);

  /// Sends the pipeline's commands in one write: `co_await c.execute(p)`. `p` must outlive the co_await.
  [[nodiscard]] batch_awaitable execute(const pipeline& p) { return {*this, p.bytes(), p.size(), false}; }
  /// Runs the transaction as MULTI ... EXEC: `co_await c.execute(t)`. `t` must outlive the co_await.
  [[nodiscard]] batch_awaitable execute(const transaction& t) { return {*this, t.bytes(), t.size(), true}; }

  /// A new client on the same loop with the same options and a connection of its own: for WATCH
  /// (whose effect is per connection) and anything else that must not share a connection.
  [[nodiscard]] std::unique_ptr<client> open_session() const { return std::make_unique<client>(loop_, opts_); }

  // --- Typed helpers ---

  /// GET key: the value, or nullopt.
  auto get(std::string_view key) { return command<std::optional<std::string>>("GET", key); }
  /// SET key value: true if set (false when NX/XX prevented it).
  auto set(std::string_view key, std::string_view value) { return command<std::optional<std::string>>("SET", key, value); }
  /// SET key value PX ms.
  auto set(std::string_view key, std::string_view value, std::chrono::milliseconds ttl) {
    return command<std::optional<std::string>>("SET", key, value, "PX", static_cast<std::int64_t>(ttl.count()));
  }
  /// SET key value NX [PX ms]: nullopt when the key existed.
  auto set_nx(std::string_view key, std::string_view value) { return command<std::optional<std::string>>("SET", key, value, "NX"); }
  /// GETDEL key.
  auto getdel(std::string_view key) { return command<std::optional<std::string>>("GETDEL", key); }
  /// MGET keys...: values in order, nullopt for missing keys.
  template <resp::argument Keys>
  auto mget(const Keys& keys) { return command<std::vector<std::optional<std::string>>>("MGET", keys); }
  /// INCR key.
  auto incr(std::string_view key) { return command<std::int64_t>("INCR", key); }
  /// INCRBY key n.
  auto incrby(std::string_view key, std::int64_t n) { return command<std::int64_t>("INCRBY", key, n); }
  /// DECR key.
  auto decr(std::string_view key) { return command<std::int64_t>("DECR", key); }
  /// DEL keys...: how many were removed.
  template <resp::argument... Keys>
  auto del(const Keys&... keys) { return command<std::int64_t>("DEL", keys...); }
  /// UNLINK keys...
  template <resp::argument... Keys>
  auto unlink(const Keys&... keys) { return command<std::int64_t>("UNLINK", keys...); }
  /// EXISTS keys...: how many exist.
  template <resp::argument... Keys>
  auto exists(const Keys&... keys) { return command<std::int64_t>("EXISTS", keys...); }
  /// PEXPIRE key ms: true if the timeout was set.
  auto pexpire(std::string_view key, std::chrono::milliseconds ttl) {
    return command<bool>("PEXPIRE", key, static_cast<std::int64_t>(ttl.count()));
  }
  /// EXPIRE key s.
  auto expire(std::string_view key, std::chrono::seconds ttl) {
    return command<bool>("EXPIRE", key, static_cast<std::int64_t>(ttl.count()));
  }
  /// TTL key (seconds; -1 no expiry, -2 no key).
  auto ttl(std::string_view key) { return command<std::int64_t>("TTL", key); }
  /// PTTL key (milliseconds).
  auto pttl(std::string_view key) { return command<std::int64_t>("PTTL", key); }
  /// TYPE key.
  auto type(std::string_view key) { return command<std::string>("TYPE", key); }
  /// HSET key field value.
  auto hset(std::string_view key, std::string_view field, std::string_view value) {
    return command<std::int64_t>("HSET", key, field, value);
  }
  /// HGET key field.
  auto hget(std::string_view key, std::string_view field) { return command<std::optional<std::string>>("HGET", key, field); }
  /// HGETALL key as field -> value.
  auto hgetall(std::string_view key) { return command<std::vector<std::pair<std::string, std::string>>>("HGETALL", key); }
  /// LPUSH key value.
  auto lpush(std::string_view key, std::string_view value) { return command<std::int64_t>("LPUSH", key, value); }
  /// RPUSH key value.
  auto rpush(std::string_view key, std::string_view value) { return command<std::int64_t>("RPUSH", key, value); }
  /// LRANGE key start stop.
  auto lrange(std::string_view key, std::int64_t start, std::int64_t stop) {
    return command<std::vector<std::string>>("LRANGE", key, start, stop);
  }
  /// SADD key member.
  auto sadd(std::string_view key, std::string_view member) { return command<std::int64_t>("SADD", key, member); }
  /// SMEMBERS key.
  auto smembers(std::string_view key) { return command<std::vector<std::string>>("SMEMBERS", key); }
  /// ZADD key score member.
  auto zadd(std::string_view key, double score, std::string_view member) { return command<std::int64_t>("ZADD", key, score, member); }
  /// ZSCORE key member.
  auto zscore(std::string_view key, std::string_view member) { return command<std::optional<double>>("ZSCORE", key, member); }
  /// ZINCRBY key increment member: the new score.
  auto zincrby(std::string_view key, double by, std::string_view member) { return command<double>("ZINCRBY", key, by, member); }
  /// ZCARD key.
  auto zcard(std::string_view key) { return command<std::int64_t>("ZCARD", key); }
  /// PUBLISH channel message: receivers.
  auto publish(std::string_view channel, std::string_view message) { return command<std::int64_t>("PUBLISH", channel, message); }
  /// PING.
  auto ping() { return command<std::string>("PING"); }
  /// EVALSHA sha numkeys keys... args...: the raw reply.
  template <resp::argument Keys, resp::argument Args>
  auto evalsha(std::string_view sha, const Keys& keys, const Args& args) {
    return command<resp::value>("EVALSHA", sha, static_cast<std::int64_t>(std::ranges::size(keys)), keys, args);
  }
  /// EVAL script numkeys keys... args...
  template <resp::argument Keys, resp::argument Args>
  auto eval(std::string_view script, const Keys& keys, const Args& args) {
    return command<resp::value>("EVAL", script, static_cast<std::int64_t>(std::ranges::size(keys)), keys, args);
  }
  /// SCRIPT LOAD script: the sha1.
  auto script_load(std::string_view script) { return command<std::string>("SCRIPT", "LOAD", script); }

  // --- State ---

  /// The loop this client runs on.
  [[nodiscard]] net::loop& loop() noexcept { return loop_; }
  /// The connection (state, last error, protocol).
  [[nodiscard]] connection& conn() noexcept { return *conn_; }
  /// Where RESP3 pushes go (pub/sub messages, invalidations). Loop thread.
  void set_push_handler(push_handler h) { conn_->set_push_handler(h); }

 private:
  template <class T, class F>
  struct callback_request;

  connection& blocking_connection();

  net::loop& loop_;
  options opts_;
  std::unique_ptr<connection> conn_;
  // Blocking commands each get a connection of their own, so they never stall other callers;
  // idle ones are reused.
  std::vector<std::unique_ptr<connection>> blocking_;
  bool started_ = false;
};

template <class T, class F>
struct client::callback_request : request {
  F callback;
  reply_sink<T> sink;
  std::string wire;  // pre-encoded command when submitted from another thread

  explicit callback_request(F&& f) : callback(std::move(f)) {
    on_node = [](request& r, const resp::node& n) { static_cast<callback_request&>(r).sink.on_node(n); };
    on_done = [](request& r, std::error_code ec) {
      auto* self = static_cast<callback_request*>(&r);
      if (ec) {
        self->callback(result<T>(resp::error{ec, {}}));
      } else {
        self->callback(self->sink.take());
      }
      delete self;
    };
  }
};

template <class T, class F, resp::argument... Args>
void client::command_callback(F&& callback, const Args&... args) {
  using req_t = callback_request<T, std::decay_t<F>>;
  auto* r = new req_t(std::forward<F>(callback));
  // Encode now, into the request: the arguments need not outlive this call, and the command
  // bytes are copied once more into the connection's writer on the loop thread.
  resp::writer w(0);
  w.command(args...);
  r->wire.assign(w.data());
  r->encode = [](request& base, resp::writer& out) { out.raw(static_cast<req_t&>(base).wire); };
  submit(*r);
}

}  // namespace redring::client
