// SPDX-License-Identifier: MIT
#include "client/sync_client.hpp"

#include <future>

namespace redring::client {

sync_client::sync_client(options opts)
    : has_command_timeout_(opts.command_timeout.count() > 0), state_(std::make_shared<shared_state>()) {
  // The loop is made on its own thread: io_uring's SINGLE_ISSUER ties a ring to the thread that
  // created it. If that fails (io_uring disabled, say), the exception crosses back to this thread:
  // escaping the loop thread's function, it would call std::terminate.
  std::promise<void> ready;
  std::future<void> started = ready.get_future();
  // The thread holds the state, never `this`: a sync_client destroyed on the thread goes first.
  thread_ = std::thread([state = state_, &ready, o = std::move(opts)]() mutable {
    try {
      state->loop = std::make_unique<net::loop>();
      state->async = std::make_unique<client>(*state->loop, std::move(o));
    } catch (...) {
      state->async.reset();
      state->loop.reset();
      ready.set_exception(std::current_exception());
      return;
    }
    state->async->start();
    ready.set_value();
    state->loop->run();
    // A stop() from another thread may still be writing the loop's eventfd: wait until it returns.
    { const std::lock_guard wait_for_stop(state->stopping); }
    state->async->close();  // complete what is left before the loop goes
    // A call posted just before stop() may not have run yet: run it now, against the closed client
    // (it completes with shutting_down), not from ~loop's last turns after the client is gone.
    state->loop->poll();
    state->async.reset();
    state->loop.reset();
  });
  try {
    started.get();
  } catch (...) {
    thread_.join();
    throw;
  }
  loop_ = state_->loop.get();
  client_ = state_->async.get();
}

sync_client::~sync_client() {
  {
    const std::lock_guard lock(state_->stopping);
    loop_->stop();
  }
  if (thread_.get_id() == std::this_thread::get_id()) {
    // Destroyed by a callback on the loop thread, which cannot join itself: when the callback
    // returns, the thread ends its turn, sees the stop, and frees what it shares with us.
    thread_.detach();
    return;
  }
  thread_.join();
}

}  // namespace redring::client
