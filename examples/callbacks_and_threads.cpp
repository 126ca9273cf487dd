// SPDX-License-Identifier: MIT
// Callbacks, submitted from another thread; the loop runs on this one.
#include "client/client.hpp"

#include <atomic>
#include <cstdio>
#include <thread>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  if (argc > 1 && client::parse_url(argv[1], opts)) return 2;
  net::loop loop;
  client::client redis(loop, opts);
  std::atomic<int> done{0};
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      // Arguments are copied while encoding: temporaries are fine here.
      redis.command_callback<std::int64_t>(
          [&](resp::result<std::int64_t> r) {
            if (!r) std::fprintf(stderr, "INCR: %s\n", r.error().what().c_str());
            if (++done == 100) loop.stop();
          },
          "INCR", std::string("counter"));
    }
  });
  loop.run();  // callbacks run here, on the loop thread
  producer.join();
  std::printf("%d replies\n", done.load());
  return 0;
}
