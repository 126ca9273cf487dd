// SPDX-License-Identifier: MIT
// An explicit pipeline, a MULTI/EXEC transaction, and optimistic locking with WATCH on a session.
#include "client/client.hpp"
#include "client/detached.hpp"

#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  if (argc > 1 && client::parse_url(argv[1], opts)) return 2;
  net::loop loop;
  client::client redis(loop, opts);
  auto work = [&]() -> client::detached {
    client::pipeline p;  // arguments are copied in: the pipeline owns its bytes
    for (int i = 0; i < 3; ++i) p.add("RPUSH", "jobs", "job-" + std::to_string(i));
    p.add("LLEN", "jobs");
    if (const auto replies = co_await redis.execute(p)) {
      std::printf("pipeline: %zu replies, LLEN = %lld\n", replies->size(), static_cast<long long>(replies->back().integer));
    }
    client::transaction t;  // MULTI ... EXEC
    t.add("INCR", "tx:counter").add("EXPIRE", "tx:counter", 60);
    if (const auto r = co_await redis.execute(t)) std::printf("transaction: counter = %lld\n", static_cast<long long>(r->at(0).integer));

    // WATCH is per connection: run it on a session of its own, never on the shared connection.
    auto session = redis.open_session();
    (void)co_await session->command("WATCH", "balance");
    const auto balance = co_await session->command<std::optional<std::int64_t>>("GET", "balance");
    client::transaction update;
    update.add("SET", "balance", (balance && *balance ? **balance : 0) + 10);
    const auto r = co_await session->execute(update);
    if (!r && r.error().code == client::errc::transaction_aborted) std::printf("balance changed meanwhile: retry\n");
    else std::printf("balance updated\n");
    loop.stop();
  };
  work();
  loop.run();
  return 0;
}
