// SPDX-License-Identifier: MIT
#include "client/client.hpp"

namespace redring::client {

namespace detail {
void submit(client& c, request& r) { c.submit(r); }
}  // namespace detail

client::client(net::loop& loop, options opts)
    : loop_(loop), opts_(std::move(opts)), conn_(std::make_unique<connection>(loop_, opts_)) {}

client::~client() = default;

void client::start() {
  if (!loop_.in_loop_thread()) {
    // Hop to the loop thread; a one-off allocation at start is fine.
    struct hop : net::task {
      client* self;
    };
    auto* h = new hop;
    h->self = this;
    h->fn = [](net::task* t) {
      auto* me = static_cast<hop*>(t);
      me->self->start();
      delete me;
    };
    loop_.post(*h);
    return;
  }
  if (started_) return;
  started_ = true;
  conn_->start();
}

void client::close() { conn_->close(); }

void client::submit(request& r) {
  if (!loop_.in_loop_thread()) {
    r.hop_target = this;
    r.hop.fn = [](net::task* t) {
      // The task is the `hop` member of a request: step back to the request.
      auto* req = reinterpret_cast<request*>(reinterpret_cast<char*>(t) - offsetof(request, hop));
      static_cast<client*>(req->hop_target)->submit(*req);
    };
    loop_.post(r.hop);
    return;
  }
  if (!started_) start();
  conn_->submit(r);
}

}  // namespace redring::client
