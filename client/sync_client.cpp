// SPDX-License-Identifier: MIT
#include "client/sync_client.hpp"

#include <future>

namespace redring::client {

sync_client::sync_client(options opts) : has_command_timeout_(opts.command_timeout.count() > 0) {
  // The loop is made on its own thread: io_uring's SINGLE_ISSUER ties a ring to the thread that
  // created it. If that fails (io_uring disabled, say), the exception crosses back to this thread:
  // escaping the loop thread's function, it would call std::terminate.
  std::promise<void> ready;
  std::future<void> started = ready.get_future();
  thread_ = std::thread([this, &ready, o = std::move(opts)]() mutable {
    try {
      loop_ = std::make_unique<net::loop>();
      client_ = std::make_unique<client>(*loop_, std::move(o));
    } catch (...) {
      client_.reset();
      loop_.reset();
      ready.set_exception(std::current_exception());
      return;
    }
    client_->start();
    ready.set_value();
    loop_->run();
    client_->close();  // complete what is left before the loop goes
    // A call posted just before stop() may not have run yet: run it now, against the closed client
    // (it completes with shutting_down), not from ~loop's last turns after the client is gone.
    loop_->poll();
    client_.reset();
    loop_.reset();
  });
  try {
    started.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

sync_client::~sync_client() {
  loop_->stop();
  thread_.join();
}

}  // namespace redring::client
