// SPDX-License-Identifier: MIT
#include "client/sync_client.hpp"

#include <future>

namespace redring::client {

sync_client::sync_client(options opts) {
  // The loop is made on its own thread: io_uring's SINGLE_ISSUER ties a ring to the thread that
  // created it.
  std::promise<void> ready;
  thread_ = std::thread([this, &ready, o = std::move(opts)]() mutable {
    loop_ = std::make_unique<net::loop>();
    client_ = std::make_unique<client>(*loop_, std::move(o));
    client_->start();
    ready.set_value();
    loop_->run();
    client_->close();  // complete what is left before the loop goes
    client_.reset();
    loop_.reset();
  });
  ready.get_future().wait();
}

sync_client::~sync_client() {
  loop_->stop();
  thread_.join();
}

}  // namespace redring::client
