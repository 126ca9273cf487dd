// SPDX-License-Identifier: MIT
// Embedding: the host program owns an epoll loop; redring's loop is driven by its notify fd.
#include "client/client.hpp"
#include "client/detached.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  if (argc > 1 && client::parse_url(argv[1], opts)) return 2;
  net::loop_options lo;
  lo.notify_fd = true;  // readable when the ring has completions
  net::loop loop(lo);
  client::client redis(loop, opts);
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, loop.notify_fd(), &ev);
  bool finished = false;
  auto work = [&]() -> client::detached {
    for (int i = 0; i < 3; ++i) {  // each PING issued from the last one's completion
      const auto pong = co_await redis.ping();
      std::printf("PING -> %s\n", pong ? pong->c_str() : pong.error().what().c_str());
    }
    finished = true;
  };
  work();
  for (int turns = 0; !finished && turns < 1000; ++turns) {
    loop.poll();  // non-blocking: submit queued work, handle completions, run due timers
    // Sleep until the ring has completions, or until the loop's next timer, or not at all when the
    // turn left work for the next one (a command issued from a completion).
    const auto wait = loop.poll_timeout();
    const int ms = wait == std::chrono::milliseconds::max() ? -1 : static_cast<int>(std::min<long long>(wait.count(), 60'000));
    epoll_event got{};
    if (::epoll_wait(ep, &got, 1, ms) == 1) {  // the host's own wait
      std::uint64_t n;
      [[maybe_unused]] auto r = ::read(loop.notify_fd(), &n, sizeof n);
    }
  }
  ::close(ep);
  return finished ? 0 : 1;
}
