// SPDX-License-Identifier: MIT
// A blocking facade for simple programs: a client whose loop runs on a background thread.
#pragma once

#include "client/client.hpp"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace redring::client {

/// A blocking client: each call sends its command and waits for the reply. Thread-safe: calls from
/// many threads are multiplexed (and pipelined) over the client's connections (`options::pool_size`,
/// 1 by default; a blocking command gets one of its own). Errors are values, as in the async API:
/// calls throw nothing; only the constructor can, when there can be no loop.
///
/// A call waits at most `options::command_timeout`; when that is 0 (the default), an ordinary
/// command waits at most `default_call_timeout`, so a server that cannot be reached, or stops
/// answering, is its `errc::timeout`, not a thread blocked for ever. A blocking command (BLPOP,
/// XREAD ... BLOCK) gets no deadline of its own, from its block time or otherwise: with
/// `command_timeout` 0 it waits for its reply however long that takes (`BLPOP k 5` against a server
/// that stopped answering blocks the calling thread for ever), and with `command_timeout` set it
/// fails with `errc::timeout` after that long, even when it asked the server to block for longer.
/// Set `command_timeout` above the longest block time you use. A call from the loop's own thread
/// (a callback or coroutine of `async()`) would wait for the loop it blocks: it fails at once with
/// `std::errc::resource_deadlock_would_occur`.
class sync_client {
 public:
  /// Starts a loop thread and connects to the server of `opts` (a server that cannot be reached is
  /// a call's error value, not the constructor's). Throws what `net::loop`'s constructor throws
  /// (std::system_error: io_uring unavailable), with the loop thread joined.
  explicit sync_client(options opts);
  /// Completes every pending call with `shutting_down` and joins the loop thread. From a callback
  /// or coroutine of `async()` (on the loop thread itself), the thread is left to finish that turn,
  /// complete what is pending and free the loop and the client on its own: it may still run when
  /// the destructor returns, so let it finish (a moment) before the process exits.
  ~sync_client();
  sync_client(const sync_client&) = delete;
  sync_client& operator=(const sync_client&) = delete;

  /// How long a call waits when `options::command_timeout` is 0 (not a blocking command, which then
  /// has no deadline).
  static constexpr std::chrono::milliseconds default_call_timeout{5000};

  /// Sends a command and waits for its reply, converted to T.
  template <class T = resp::value, resp::argument... Args>
  result<T> command(const Args&... args) {
    if (loop_->in_loop_thread()) [[unlikely]] {
      return resp::error{std::make_error_code(std::errc::resource_deadlock_would_occur),
                         "a blocking call on the loop's own thread would wait for itself: use async() there"};
    }
    call<T> c;
    resp::writer w(0);
    w.command(args...);
    c.wire.assign(w.data());
    detail::mark(c, detail::classify(args...));
    if (!c.blocking && !has_command_timeout_) c.timeout = default_call_timeout;
    c.encode = [](request& r, resp::writer& out) { out.raw(static_cast<call<T>&>(r).wire); };
    c.on_node = [](request& r, const resp::node& n) { static_cast<call<T>&>(r).sink.on_node(n); };
    c.on_done = [](request& r, std::error_code ec) {
      auto& self = static_cast<call<T>&>(r);
      std::lock_guard lock(self.mutex);
      self.failure = ec;
      self.finished = true;
      self.cv.notify_one();
    };
    client_->submit(c);
    std::unique_lock lock(c.mutex);
    c.cv.wait(lock, [&] { return c.finished; });
    if (c.failure) return resp::error{c.failure, {}};
    return c.sink.take();
  }

  /// GET key.
  result<std::optional<std::string>> get(std::string_view key) { return command<std::optional<std::string>>("GET", key); }
  /// SET key value.
  result<std::optional<std::string>> set(std::string_view key, std::string_view value) {
    return command<std::optional<std::string>>("SET", key, value);
  }
  /// The async client underneath. Its `command`, `command_callback`, `submit`, `execute` and `start`
  /// may be called from any thread; its other calls (`close`, `set_push_handler`, `open_session`,
  /// `cluster()` ...) only on the loop thread, which is this sync_client's background thread (from a
  /// callback or a coroutine running there).
  [[nodiscard]] client& async() noexcept { return *client_; }

 private:
  template <class T>
  struct call : request {
    std::string wire;
    reply_sink<T> sink;
    std::error_code failure;
    bool finished = false;
    std::mutex mutex;
    std::condition_variable cv;
  };

  // What the loop thread owns: the loop, the client, and the lock that keeps them alive until a
  // stop() from another thread has returned (stop() writes the loop's eventfd after the flag the
  // loop thread may already have seen). Shared with the thread, so that a sync_client destroyed on
  // that thread (from a callback of `async()`) can leave it to finish and free them.
  struct shared_state {
    std::unique_ptr<net::loop> loop;
    std::unique_ptr<redring::client::client> async;
    std::mutex stopping;
  };

  bool has_command_timeout_ = false;  // options::command_timeout > 0: the client applies it
  std::shared_ptr<shared_state> state_;
  net::loop* loop_ = nullptr;  // state_'s, for the calls
  client* client_ = nullptr;
  std::thread thread_;
};

}  // namespace redring::client
