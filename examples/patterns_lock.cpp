// SPDX-License-Identifier: MIT
// A job guarded by the distributed lock: acquire with a deadline, a watchdog that keeps the lock
// while the job runs, a fencing token checked by the storage, and release.
// Usage: patterns_lock [redis://host:port | unix:///path]
#include "client/client.hpp"
#include "client/url.hpp"
#include "patterns/lock.hpp"

#include <chrono>
#include <cstdio>
#include <string>

using namespace redring;
using namespace std::chrono_literals;

namespace {

// The storage the lock protects. It remembers the largest fencing token it saw and refuses writes
// with a smaller one: a holder paused past its TTL (GC, swap, a stopped VM) cannot overwrite the
// work of the holder that came after it.
struct fenced_storage {
  std::int64_t highest = 0;
  std::string value;
  bool write(std::int64_t fence, std::string v) {
    if (fence < highest) return false;
    highest = fence;
    value = std::move(v);
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  patterns::lock locks(redis, {.ttl = 300ms, .wait = 2s});
  fenced_storage storage;
  int status = 1;

  auto job = [&]() -> client::detached {
    auto held = co_await locks.acquire("nightly-report");
    if (!held) {
      std::fprintf(stderr, "not acquired: %s\n", held.error().what().c_str());
      loop.stop();
      co_return;
    }
    std::printf("acquired, fencing token %lld\n", static_cast<long long>(held->fencing_token()));
    bool lost = false;
    locks.start_watchdog(*held, [&lost] { lost = true; });
    // The job runs for three TTLs; the watchdog extends the lock meanwhile.
    for (int step = 0; step < 3 && !lost; ++step) co_await patterns::sleep_for(loop, 300ms);
    if (!lost && storage.write(held->fencing_token(), "report")) std::printf("report written\n");
    // A late write from an older holder is refused by the storage.
    std::printf("stale write %s\n", storage.write(held->fencing_token() - 1, "stale") ? "accepted (bug)" : "refused");
    const auto released = co_await locks.release(*held);
    std::printf("released: %s\n", released && *released ? "yes" : "no (it had been lost)");
    status = !lost && released && *released ? 0 : 1;
    loop.stop();
  };
  job();
  loop.run();
  return status;
}
