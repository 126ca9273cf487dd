// SPDX-License-Identifier: MIT
// A job queue: a producer enqueues jobs (one delayed), two workers wait for them, run them under a
// lease kept alive while they run, complete them, and fail one that then retries once and succeeds.
// Usage: patterns_job_queue [redis://host:port | unix:///path]
#include "client/client.hpp"
#include "client/url.hpp"
#include "patterns/job_queue.hpp"
#include "patterns/script.hpp"

#include <chrono>
#include <cstdio>
#include <string>

using namespace redring;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  // A fresh queue name per run, so that an earlier run's jobs are not in the way.
  const std::string name = "emails-" + patterns::random_hex(4);
  patterns::job_queue queue(redis, name, {.lease = 5s, .max_attempts = 3, .retry_delay = 100ms});
  constexpr int jobs = 4;
  int done = 0, failed_once = 0, errors = 0, running = 2;

  // A worker waits up to 500 ms at a time for a job (woken at once by an enqueue, or when a delayed
  // job falls due), until every job is done. The loop stops when both workers have returned: none
  // may still be waiting when the client goes.
  auto worker = [&](int id) -> client::detached {
    while (done < jobs && errors == 0) {
      auto j = co_await queue.reserve(500ms);
      if (!j) {
        std::fprintf(stderr, "worker %d: %s\n", id, j.error().what().c_str());
        ++errors;
        break;
      }
      if (!*j) continue;  // nothing came within the wait
      const patterns::job& job = **j;
      // The job "fails" on its first attempt if it asks to: it is retried after retry_delay.
      if (job.payload.ends_with("(flaky)") && job.attempt == 1) {
        auto f = co_await queue.fail(job);
        std::printf("worker %d: %s failed on attempt 1: %s\n", id, job.payload.c_str(),
                    f && *f == patterns::failed_job::retried ? "retried later" : "?");
        ++failed_once;
        continue;
      }
      // A real job might outlast its lease: keep it alive while it runs (renewed every lease/3).
      patterns::job_lease kept = queue.keep_alive(job);
      co_await patterns::sleep_for(loop, 10ms);  // the work
      kept.stop();  // before complete: a renewal racing it would find the job gone
      if (kept.lost()) std::printf("worker %d: %s lost its lease while running\n", id, job.payload.c_str());
      auto ok = co_await queue.complete(job);
      std::printf("worker %d: %s done on attempt %lld%s\n", id, job.payload.c_str(), static_cast<long long>(job.attempt),
                  ok && *ok ? "" : " (but the lease was lost: it runs again)");
      if (ok && *ok) ++done;
    }
    if (--running == 0) loop.stop();
  };
  auto producer = [&]() -> client::detached {
    for (const char* p : {"welcome alice", "welcome bob", "invoice carol (flaky)"}) {
      if (auto id = co_await queue.enqueue(p); !id) ++errors;
    }
    if (auto id = co_await queue.enqueue("reminder dave", 300ms); !id) ++errors;  // delayed
  };
  worker(1);
  worker(2);
  producer();
  loop.run();
  auto counts = [&]() -> client::detached {
    if (auto c = co_await queue.counts()) {
      std::printf("left: %lld waiting, %lld delayed, %lld active, %lld dead\n", static_cast<long long>(c->waiting),
                  static_cast<long long>(c->delayed), static_cast<long long>(c->active), static_cast<long long>(c->dead));
    }
    for (const char* part : {"seq", "wait", "delayed", "active", "data", "attempts", "dead", "notify"}) {
      (void)co_await redis.del(queue.key(part));
    }
    loop.stop();
  };
  counts();
  loop.run();
  return done == jobs && failed_once == 1 && errors == 0 ? 0 : 1;
}
