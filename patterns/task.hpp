// SPDX-License-Identifier: MIT
// The coroutine plumbing the patterns share: `task<T>`, a lazy coroutine another coroutine awaits;
// `spawn`, to start one from plain code; `when_all`, to run several at once; and `sleep_for`, a
// timer on the client's loop.
#pragma once

#include "client/detached.hpp"
#include "net/loop.hpp"

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>
#include <vector>

namespace redring::patterns {

/// A coroutine that starts when awaited and resumes its awaiter when it ends (symmetric transfer:
/// no stack growth however long a chain of tasks). Await it once; destroying an unawaited task
/// frees it without running it. The value is moved out by `co_await`.
template <class T>
class [[nodiscard]] task {
 public:
  struct promise_type {
    std::optional<T> value;
    std::coroutine_handle<> awaiter;

    task get_return_object() noexcept { return task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
      struct resume_awaiter {
        bool await_ready() noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          auto next = h.promise().awaiter;
          return next ? next : std::noop_coroutine();
        }
        void await_resume() noexcept {}
      };
      return resume_awaiter{};
    }
    void return_value(T v) { value.emplace(std::move(v)); }
    // Errors are values in this library; an exception here is a bug.
    void unhandled_exception() noexcept { std::terminate(); }
  };

  task(task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  task& operator=(task&&) = delete;
  task(const task&) = delete;
  ~task() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle_.promise().awaiter = awaiter;
    return handle_;
  }
  T await_resume() { return std::move(*handle_.promise().value); }

 private:
  explicit task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

/// Runs `t` now (until its first suspension) and calls `done(T)` on the loop thread when it ends:
/// for callers that are not coroutines. `done` is moved into the coroutine frame.
template <class T, class F>
client::detached spawn(task<T> t, F done) {
  done(co_await std::move(t));
}

namespace detail {
// What a when_all waits on: how many of its tasks still run, and the coroutine the last to end
// resumes. Lives in the when_all's frame, which outlives the tasks (it waits for all of them).
struct join {
  std::size_t pending;
  std::coroutine_handle<> waiter;
  void one_ended() {
    if (--pending == 0 && waiter) waiter.resume();
  }
  bool await_ready() const noexcept { return pending == 0; }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiter = h; }
  void await_resume() const noexcept {}
};
}  // namespace detail

/// Runs every task at once (each until its first suspension, in order) and completes when all have
/// ended: their values in the same order. For fanning one operation out to several servers.
template <class T>
task<std::vector<T>> when_all(std::vector<task<T>> tasks) {
  std::vector<std::optional<T>> values(tasks.size());
  detail::join all{tasks.size(), {}};
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    spawn(std::move(tasks[i]), [&values, &all, i](T v) {
      values[i].emplace(std::move(v));
      all.one_ended();
    });
  }
  co_await all;
  std::vector<T> out;
  out.reserve(values.size());
  for (auto& v : values) out.push_back(std::move(*v));
  co_return out;
}

/// Runs `first`, then `second` (each until its first suspension: commands they send on one
/// connection leave in this order, in one write) and completes when both have ended: their values.
template <class A, class B>
task<std::pair<A, B>> when_all(task<A> first, task<B> second) {
  std::optional<A> a;
  std::optional<B> b;
  detail::join all{2, {}};
  spawn(std::move(first), [&a, &all](A v) {
    a.emplace(std::move(v));
    all.one_ended();
  });
  spawn(std::move(second), [&b, &all](B v) {
    b.emplace(std::move(v));
    all.one_ended();
  });
  co_await all;
  co_return std::pair<A, B>(std::move(*a), std::move(*b));
}

/// `co_await sleep_for(loop, d)`: resumes on the loop thread after `d`, measured from the start
/// of the current loop turn (`duration::max()`: never). The awaiting coroutine must keep `loop`
/// alive; destroying it while it sleeps (a task destroyed unfinished) disarms the timer.
class [[nodiscard]] sleep_for {
 public:
  sleep_for(net::loop& l, net::clock::duration d) : loop_(l), duration_(d) {}
  sleep_for(const sleep_for&) = delete;
  sleep_for& operator=(const sleep_for&) = delete;
  ~sleep_for() {
    if (timer_.armed()) loop_.cancel(timer_);  // the frame goes, the loop must not fire into it
  }
  bool await_ready() const noexcept { return duration_ <= net::clock::duration::zero(); }
  void await_suspend(std::coroutine_handle<> h) {
    timer_.handle = h;
    timer_.fn = [](net::timer* t) { static_cast<wake_timer*>(t)->handle.resume(); };
    loop_.arm(timer_, net::deadline_after(loop_.now(), duration_));  // duration::max(): never
  }
  void await_resume() const noexcept {}

 private:
  struct wake_timer : net::timer {
    std::coroutine_handle<> handle;
  };
  net::loop& loop_;
  net::clock::duration duration_;
  wake_timer timer_;
};

}  // namespace redring::patterns
