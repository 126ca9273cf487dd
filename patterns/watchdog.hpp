// SPDX-License-Identifier: MIT
// The pause between a watchdog's renewals (a lock's lease, a job's lease), cut short when the
// lease is released or its handle destroyed while the watchdog sleeps. Internal to patterns/.
#pragma once

#include "net/loop.hpp"

#include <chrono>
#include <coroutine>

namespace redring::patterns::detail {

/// One watchdog's pause and stop flag. Loop thread only.
class watchdog_pause {
 public:
  /// The loop whose timers pace the pauses. Call before the first `pause`.
  void attach(net::loop& loop) noexcept { loop_ = &loop; }
  /// True once `stop()` was called.
  [[nodiscard]] bool stopped() const noexcept { return stopped_; }
  /// Stops the watchdog: a pause under way ends at once (the watchdog resumes and sees
  /// `stopped()`), and later pauses do not wait.
  void stop() noexcept {
    stopped_ = true;
    if (wake_.armed()) {
      loop_->cancel(wake_);
      wake_.handle.resume();
    }
  }
  /// An awaitable pause of `d`, or none once stopped.
  [[nodiscard]] auto pause(std::chrono::milliseconds d) noexcept { return awaiter{*this, d}; }

 private:
  struct wake_timer : net::timer {
    std::coroutine_handle<> handle;
  };
  struct awaiter {
    watchdog_pause& p;
    std::chrono::milliseconds d;
    bool await_ready() const noexcept { return p.stopped_; }
    void await_suspend(std::coroutine_handle<> h) {
      p.wake_.handle = h;
      p.wake_.fn = [](net::timer* t) { static_cast<wake_timer*>(t)->handle.resume(); };
      p.loop_->arm(p.wake_, net::deadline_after(p.loop_->now(), d));
    }
    void await_resume() const noexcept {}
  };

  net::loop* loop_ = nullptr;
  bool stopped_ = false;
  wake_timer wake_;
};

}  // namespace redring::patterns::detail
