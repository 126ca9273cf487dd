// SPDX-License-Identifier: MIT
// fuzz_multiplexer: the client's sans-I/O multiplexer (client/multiplexer.hpp) against a hostile
// server. A FuzzedDataProvider script interleaves what a connection does: requests of one to three
// replies (with or without a deadline, idempotent or not, handshake requests sent first), sends cut
// short, reply bytes fed by copy (`feed`), in place from a buffer freed as soon as the call returns
// (`feed_in_place`) or through `read_space`/`commit_read`, time passing (`expire`), lost connections
// (`drop_sent`, `fail_all`), `take_unsent`, `drop_unsent_timeouts`, a cluster redirect handler that resends or fails, and
// callbacks that enqueue more requests (past the ring's capacity too) or, from a completion, reset
// the stream. The reply bytes are arbitrary.
//
// Invariants: every request completes exactly once and gets no node after that; one that completes
// without error saw exactly as many reply ends as it expects; errors are the ones that name their
// cause; a parse error is `errc::protocol_error`, after which the harness resets the stream as
// connection.cpp does; `queued()` always equals the requests not yet completed (none is lost); every
// view handed to a callback or the transport is readable (ASan); and `fail_all` at the end leaves
// the multiplexer idle and empty.
#include "fuzz_common.hpp"

#include "client/error.hpp"
#include "client/multiplexer.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace {

namespace client = redring::client;
namespace resp = redring::resp;
namespace net = redring::net;
using client::errc;
using client::multiplexer;
using client::request;
using namespace std::chrono_literals;

const auto never = net::clock::time_point::max();

struct harness;

struct fuzz_request : request {
  harness* h = nullptr;
  std::uint32_t expected = 1;  // replies that complete it
  std::uint32_t ends = 0;      // reply ends seen
  int done = 0;
  bool enqueue_on_node = false;  // its first node enqueues more requests
  std::string argument;          // what it sends (ECHO argument): small, or large enough to be referenced
};

struct harness {
  explicit harness(FuzzedDataProvider& provider, const resp::limits& lim, std::size_t read_buffer)
      : in(provider), m(lim, read_buffer), limits(lim) {}

  FuzzedDataProvider& in;
  multiplexer m;
  resp::limits limits;
  std::deque<std::unique_ptr<fuzz_request>> all;
  std::size_t open = 0;  // requests not completed
  int budget = 300;      // requests that callbacks may still create
  bool callbacks_enqueue = true;
  bool sending = false;
  bool resetting = false;  // a completion is resetting the stream
  net::clock::time_point now = net::clock::time_point{} + 1h;
  volatile unsigned char sink = 0;

  void touch(std::string_view bytes) {
    unsigned char x = 0;
    for (const char c : bytes) x = static_cast<unsigned char>(x ^ static_cast<unsigned char>(c));
    sink = static_cast<unsigned char>(sink + x);
  }
  void touch(std::span<const iovec> iov) {
    for (const iovec& v : iov) touch(std::string_view(static_cast<const char*>(v.iov_base), v.iov_len));
  }

  fuzz_request& make(std::uint32_t replies) {
    auto r = std::make_unique<fuzz_request>();
    r->h = this;
    r->expected = replies;
    r->replies = replies;
    r->argument.assign(in.ConsumeBool() ? 20000 : in.ConsumeIntegralInRange<std::size_t>(0, 40), 'a');
    r->borrows_arguments = in.ConsumeBool();  // the request outlives the harness's use of its bytes
    r->idempotent = in.ConsumeBool();
    r->enqueue_on_node = in.ConsumeIntegralInRange(0, 7) == 0;
    r->encode = [](request& base, resp::writer& w) {
      const auto& self = static_cast<const fuzz_request&>(base);
      for (std::uint32_t i = 0; i < self.expected; ++i) w.command("ECHO", std::string_view(self.argument));
    };
    r->on_node = [](request& base, const resp::node& n) {
      auto& self = static_cast<fuzz_request&>(base);
      FUZZ_CHECK(self.done == 0);
      FUZZ_CHECK(n.depth <= self.h->limits.max_depth);
      self.h->touch(n.value);
      if (n.ends_reply) {
        ++self.ends;
        FUZZ_CHECK(self.ends <= self.expected);
      }
      if (std::exchange(self.enqueue_on_node, false)) self.h->enqueue_more();
    };
    r->on_done = [](request& base, std::error_code ec) {
      auto& self = static_cast<fuzz_request&>(base);
      harness& h = *self.h;
      FUZZ_CHECK(++self.done == 1);
      FUZZ_CHECK(h.open > 0);
      --h.open;
      if (!ec) {
        FUZZ_CHECK(self.ends == self.expected);
      } else {
        FUZZ_CHECK(ec == errc::timeout || ec == errc::connection_lost || ec == errc::protocol_error ||
                   ec == errc::shutting_down || ec == errc::slot_unserved);
      }
      // A coroutine's next command, issued from the completion of the last one.
      if (h.callbacks_enqueue && h.budget > 0 && h.in.ConsumeIntegralInRange(0, 3) == 0) {
        --h.budget;
        h.submit(h.make(1));
      }
      // A completion may close the connection (the caller closes the client, or a cluster router
      // gives up on a node) in the middle of a parse, an expire or a take_unsent: one level deep.
      if (h.callbacks_enqueue && !h.resetting && h.in.ConsumeIntegralInRange(0, 15) == 0) {
        h.resetting = true;
        if (h.in.ConsumeBool()) {
          h.m.drop_sent(errc::connection_lost);
        } else {
          h.m.fail_all(errc::shutting_down);
        }
        h.sending = false;
        h.resetting = false;
      }
    };
    all.push_back(std::move(r));
    ++open;
    return *all.back();
  }

  void submit(fuzz_request& r, bool front = false) {
    const auto deadline = in.ConsumeBool() ? now + std::chrono::milliseconds(in.ConsumeIntegralInRange(0, 50)) : never;
    m.encode(r, deadline, front);
  }

  // What a callback may do: submit. Sometimes enough to grow the ring.
  void enqueue_more() {
    if (!callbacks_enqueue) return;
    const int n = in.ConsumeBool() ? 70 : in.ConsumeIntegralInRange(0, 3);
    for (int i = 0; i < n && budget > 0; ++i, --budget) submit(make(in.ConsumeIntegralInRange<std::uint32_t>(1, 3)));
  }

  // A cluster router: resend a redirected request here (bounded, as max_redirects does) or fail it.
  static void on_redirect(void* context, request& base, std::string_view error) {
    auto& h = *static_cast<harness*>(context);
    auto& r = static_cast<fuzz_request&>(base);
    FUZZ_CHECK(r.done == 0 && r.ends == 0 && r.expected == 1);
    FUZZ_CHECK(client::is_cluster_redirect(error));
    h.touch(error);
    if (++r.redirects < 4 && h.in.ConsumeBool()) {
      h.m.encode(r, never);
    } else {
      r.on_done(r, errc::slot_unserved);
    }
  }
  static void on_moved_in_batch(void* context, std::string_view error) {
    auto& h = *static_cast<harness*>(context);
    FUZZ_CHECK(error.starts_with("MOVED "));
    h.touch(error);
    h.enqueue_more();  // CLUSTER SLOTS, perhaps on this very connection
  }

  // The server's bytes, one of three ways. A parse error resets the stream, as the connection does.
  void receive(std::string_view bytes, int how) {
    std::error_code ec;
    if (how == 0) {
      ec = m.feed(bytes);
    } else if (how == 1) {
      // A kernel buffer: released when the call returns, so a view kept past it is a use after free.
      auto kernel_buffer = std::make_unique<char[]>(bytes.size());
      std::memcpy(kernel_buffer.get(), bytes.data(), bytes.size());
      ec = m.feed_in_place(std::string_view(kernel_buffer.get(), bytes.size()));
    } else {
      const std::span<char> space = m.read_space();
      FUZZ_CHECK(space.size() >= 4096);
      const std::size_t n = std::min(space.size(), bytes.size());
      std::memcpy(space.data(), bytes.data(), n);
      ec = m.commit_read(n);
    }
    if (ec) {
      FUZZ_CHECK(ec == errc::protocol_error);
      m.drop_sent(errc::protocol_error);
      sending = false;
    }
  }

  void check() const {
    FUZZ_CHECK(m.queued() == open);
    // Bytes waiting to be sent belong to a request waiting to send them: none is orphaned (its
    // reply would go to the next request).
    FUZZ_CHECK(m.sending() || !m.has_output(true) || m.unsent() > 0);
    FUZZ_CHECK(m.sending() || m.has_output(true) || m.unsent() == 0);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  static constexpr redring::resp::limits medium{1 << 20, 1 << 12, 32, 1 << 12};
  const redring::resp::limits choices[] = {fuzz::micro_limits, fuzz::tiny_limits, medium};
  const redring::resp::limits lim = choices[in.ConsumeIntegralInRange(0, 2)];
  harness h(in, lim, in.ConsumeIntegralInRange<std::size_t>(0, 16384));
  if (in.ConsumeBool()) {
    h.m.set_push_handler({[](void* context, const redring::resp::node& n) { static_cast<harness*>(context)->touch(n.value); }, &h});
  }
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange(0, 13)) {
      case 0:
      case 1: h.submit(h.make(in.ConsumeIntegralInRange<std::uint32_t>(1, 3))); break;
      case 2: h.submit(h.make(1), /*front=*/true); break;  // a handshake command after a reconnect
      case 3:
        if (!h.sending) {
          const auto out = h.m.take_output(in.ConsumeBool());
          h.touch(out);
          h.sending = !out.empty();
        }
        break;
      case 4:
        if (h.sending) {
          // Only the first iovecs' sizes matter: write all, or a prefix.
          const std::size_t n = in.ConsumeBool() ? SIZE_MAX / 2 : in.ConsumeIntegralInRange<std::size_t>(0, 30000);
          const auto rest = h.m.output_written(n);
          h.touch(rest);
          h.sending = !rest.empty();
          FUZZ_CHECK(h.sending == h.m.sending());
        }
        break;
      case 5:
      case 6:
      case 7: {
        const int how = in.ConsumeIntegralInRange(0, 2);
        const std::string bytes = in.ConsumeRandomLengthString(4096);
        if (!bytes.empty()) h.receive(bytes, how);
        break;
      }
      case 8: {
        h.now += std::chrono::milliseconds(in.ConsumeIntegralInRange(0, 30));
        const auto next = h.m.expire(h.now);
        FUZZ_CHECK(next > h.now || next == net::clock::time_point::min());  // min: a completion reset the stream
        break;
      }
      case 9:
        h.m.drop_sent(errc::connection_lost);
        h.sending = false;
        break;
      case 10:
        // Another connection takes the unsent requests (a cluster client moving them), or they fail.
        h.m.take_unsent([&h](request& r) {
          if (h.in.ConsumeBool()) h.m.encode(r, never);
          else r.on_done(r, errc::connection_lost);
        });
        break;
      case 12:
        // The connection closes for good; completions may still submit (and are failed in turn).
        h.m.fail_all(in.ConsumeBool() ? errc::shutting_down : errc::connection_lost);
        h.sending = false;
        FUZZ_CHECK(h.m.queued() == 0 && h.m.idle());
        break;
      case 13: {
        // A connection (re)connected, or at its offline limit: requests that timed out unsent go.
        const std::size_t live = h.m.queued();
        const bool dropped = h.m.drop_unsent_timeouts();
        FUZZ_CHECK(h.m.queued() == live);
        if (dropped) FUZZ_CHECK(h.m.unsent() == live && !h.m.sending());
        break;
      }
      case 11:
        if (in.ConsumeBool()) {
          h.m.set_redirect_handler({&harness::on_redirect, &h, &harness::on_moved_in_batch});
        } else {
          h.m.set_redirect_handler({});
        }
        break;
    }
    FUZZ_CHECK(h.sending == h.m.sending());
    h.check();
  }
  h.callbacks_enqueue = false;
  h.m.fail_all(errc::shutting_down);
  FUZZ_CHECK(h.m.queued() == 0 && h.m.idle() && !h.m.sending());
  FUZZ_CHECK(h.open == 0);
  for (const auto& r : h.all) FUZZ_CHECK(r->done == 1);
  return 0;
}
