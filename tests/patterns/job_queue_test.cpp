// SPDX-License-Identifier: MIT
// The job queue against a real redis-server: order, every job processed exactly once by concurrent
// workers, leases taken back and stale workers refused, retries with backoff and the dead list,
// workers that wait for an enqueue or a delayed job, and errors as values when Redis is gone.
#include "patterns/job_queue.hpp"

#include "client/detached.hpp"
#include "client/hash_slot.hpp"
#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::options_for;
using test::run_task;

class JobQueue : public ::testing::Test, protected test::pattern_world {
 protected:

  // Milliseconds from the server's now until `id` falls due in the delayed set.
  std::int64_t due_in_ms(job_queue& q, const std::string& id) {
    const auto time = admin.call({"TIME"});
    const std::int64_t now = std::stoll(time.elements.at(0).text) * 1000 + std::stoll(time.elements.at(1).text) / 1000;
    const auto score = admin.call({"ZSCORE", q.key("delayed"), id});
    return static_cast<std::int64_t>(std::stod(score.text)) - now;
  }
  // Makes every delayed job due now (instead of waiting out a long backoff).
  void fast_forward(job_queue& q) {
    for (const auto& m : admin.call({"ZRANGE", q.key("delayed"), "0", "-1"}).elements) {
      (void)admin.call({"ZADD", q.key("delayed"), "0", m.text});
    }
  }
};

TEST_F(JobQueue, JobsAreReservedOldestFirstAndCompletedForGood) {
  job_queue q(c, "orders");
  std::vector<std::string> ids;
  for (const char* p : {"a", "b", "c"}) {
    auto id = run_task(loop, q.enqueue(p));
    ASSERT_TRUE(id) << id.error().what();
    ids.push_back(*id);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "2", "3"}));
  std::vector<job> jobs;
  for (int i = 0; i < 3; ++i) {
    auto j = run_task(loop, q.reserve());
    ASSERT_TRUE(j && *j);
    jobs.push_back(**j);
  }
  EXPECT_EQ(jobs[0].payload, "a");
  EXPECT_EQ(jobs[1].payload, "b");
  EXPECT_EQ(jobs[2].payload, "c");
  EXPECT_EQ(jobs[0].id, "1");
  EXPECT_EQ(jobs[0].attempt, 1);
  auto none = run_task(loop, q.reserve());
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  auto counts = run_task(loop, q.counts());
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->active, 3);
  EXPECT_EQ(counts->waiting, 0);
  for (const job& j : jobs) {
    auto done = run_task(loop, q.complete(j));
    ASSERT_TRUE(done && *done);
  }
  auto again = run_task(loop, q.complete(jobs[0]));  // completed already
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  counts = run_task(loop, q.counts());
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->active + counts->waiting + counts->delayed + counts->dead, 0);
  EXPECT_EQ(admin.call({"HLEN", q.key("data")}).integer, 0);      // nothing left behind
  EXPECT_EQ(admin.call({"HLEN", q.key("attempts")}).integer, 0);
}

// 8 workers, each on a connection of its own, race for 400 jobs: every job is processed exactly
// once, and nothing is left in the queue.
TEST_F(JobQueue, ConcurrentWorkersProcessEveryJobExactlyOnce) {
  constexpr int jobs = 400, workers = 8;
  job_queue producer(c, "work");
  for (int i = 0; i < jobs; ++i) ASSERT_TRUE(run_task(loop, producer.enqueue("job " + std::to_string(i))));
  std::vector<std::unique_ptr<client::client>> clients;
  std::vector<std::unique_ptr<job_queue>> queues;
  for (int w = 0; w < workers; ++w) {
    clients.push_back(c.open_session());
    queues.push_back(std::make_unique<job_queue>(*clients.back(), "work"));
  }
  std::map<std::string, int> processed;
  int finished = 0, failures = 0;
  auto worker = [&](int w) -> client::detached {
    auto& q = *queues[static_cast<std::size_t>(w)];
    for (;;) {
      auto j = co_await q.reserve();
      if (!j) {
        ++failures;
        break;
      }
      if (!*j) break;  // the queue is empty: every job was handed out
      ++processed[(*j)->payload];
      auto done = co_await q.complete(**j);
      if (!done || !*done) ++failures;
    }
    ++finished;
  };
  for (int w = 0; w < workers; ++w) worker(w);
  ASSERT_TRUE(test::run_until(loop, [&] { return finished == workers; }, 30s));
  EXPECT_EQ(failures, 0);
  ASSERT_EQ(processed.size(), static_cast<std::size_t>(jobs));
  for (const auto& [payload, times] : processed) EXPECT_EQ(times, 1) << payload;
  auto counts = run_task(loop, producer.counts());
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->active + counts->waiting + counts->delayed + counts->dead, 0);
}

TEST_F(JobQueue, ALeaseThatRunsOutIsTakenBackAndItsWorkerRefused) {
  job_queue q(c, "leases", {.lease = 100ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("p")));
  auto first = run_task(loop, q.reserve());
  ASSERT_TRUE(first && *first);
  auto extended = run_task(loop, q.extend(**first));  // still held: extends
  ASSERT_TRUE(extended);
  EXPECT_TRUE(*extended);
  test::pause(loop, 250ms);  // the worker "stalls" past its lease
  auto second = run_task(loop, q.reserve());
  ASSERT_TRUE(second && *second);
  EXPECT_EQ((*second)->id, (*first)->id);
  EXPECT_EQ((*second)->attempt, 2);
  EXPECT_EQ((*second)->payload, "p");
  // The stalled worker comes back: its reservation is gone.
  auto stale_complete = run_task(loop, q.complete(**first));
  ASSERT_TRUE(stale_complete);
  EXPECT_FALSE(*stale_complete);
  auto stale_fail = run_task(loop, q.fail(**first));
  ASSERT_TRUE(stale_fail);
  EXPECT_EQ(*stale_fail, failed_job::lease_lost);
  auto stale_extend = run_task(loop, q.extend(**first));
  ASSERT_TRUE(stale_extend);
  EXPECT_FALSE(*stale_extend);
  auto done = run_task(loop, q.complete(**second));
  ASSERT_TRUE(done);
  EXPECT_TRUE(*done);
}

// keep_alive: a job running for many leases stays its worker's (no other worker can take it back),
// and once the renewals stop it is taken back within about one lease.
TEST_F(JobQueue, KeepAliveHoldsALongJobUntilStopped) {
  job_queue q(c, "kept", {.lease = 400ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("long")));
  auto got = run_task(loop, q.reserve());
  ASSERT_TRUE(got && *got);
  const job j = **got;
  EXPECT_LE(j.leased_at, net::clock::now());
  EXPECT_GT(j.leased_at, net::clock::now() - 5s);
  bool lost_called = false;
  job_lease kept = q.keep_alive(j, [&] { lost_called = true; });
  EXPECT_EQ(kept.valid_until(), j.leased_at + 400ms);
  test::run_for(loop, 1700ms);  // more than four leases
  auto other = run_task(loop, q.reserve());
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->has_value()) << "taken back while kept alive";
  EXPECT_FALSE(kept.lost());
  EXPECT_GE(kept.renewals(), 4u);
  EXPECT_GT(kept.valid_until(), net::clock::now());
  kept.stop();
  const std::uint64_t renewals = kept.renewals();
  test::run_for(loop, 900ms);  // the lease runs out: no renewal since the stop
  EXPECT_EQ(kept.renewals(), renewals);
  auto again = run_task(loop, q.reserve());
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->id, j.id);
  EXPECT_EQ((*again)->attempt, 2);
  EXPECT_FALSE(lost_called);  // stopped, not lost
  auto stale = run_task(loop, q.complete(j));
  ASSERT_TRUE(stale);
  EXPECT_FALSE(*stale);
}

// A handle stopped before `complete` (the documented order) reports nothing; destroying it stops
// the renewals too.
TEST_F(JobQueue, KeepAliveStoppedBeforeCompleteIsNotLost) {
  job_queue q(c, "kept-done", {.lease = 300ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("a")));
  auto got = run_task(loop, q.reserve());
  ASSERT_TRUE(got && *got);
  bool lost_called = false;
  {
    job_lease kept = q.keep_alive(**got, [&] { lost_called = true; });
    ASSERT_TRUE(test::run_until(loop, [&] { return kept.renewals() >= 1; }, 2s));
    kept.stop();
    auto done = run_task(loop, q.complete(**got));
    ASSERT_TRUE(done && *done);
    test::run_for(loop, 100ms);
    EXPECT_FALSE(kept.lost());
  }
  test::run_for(loop, 50ms);
  EXPECT_FALSE(lost_called);
}

// The job taken from its worker behind its back (here: removed from the active set): the next
// renewal finds it gone, `lost()` turns true and `on_lost` runs once.
TEST_F(JobQueue, KeepAliveReportsAJobNoLongerItsWorkers) {
  job_queue q(c, "kept-lost", {.lease = 90ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("a")));
  auto got = run_task(loop, q.reserve());
  ASSERT_TRUE(got && *got);
  int lost_calls = 0;
  job_lease kept = q.keep_alive(**got, [&] { ++lost_calls; });
  test::run_for(loop, 40ms);
  ASSERT_EQ(admin.call({"ZREM", q.key("active"), (*got)->id}).integer, 1);
  ASSERT_TRUE(test::run_until(loop, [&] { return kept.lost(); }, 2s));
  test::run_for(loop, 100ms);
  EXPECT_EQ(lost_calls, 1);
}

// A server that stops answering: renewals time out, and once the lease can no longer be known to
// run (valid_until passed) the job is reported lost, whatever the server does later.
TEST_F(JobQueue, KeepAliveWithoutRepliesIsLostAtValidUntil) {
  job_queue q(c, "kept-stalled", {.lease = 200ms, .timeout = 50ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("a")));
  auto got = run_task(loop, q.reserve());
  ASSERT_TRUE(got && *got);
  bool lost_called = false;
  job_lease kept = q.keep_alive(**got, [&] { lost_called = true; });
  ASSERT_TRUE(test::run_until(loop, [&] { return kept.renewals() >= 1; }, 2s));
  const auto valid_until = kept.valid_until();
  ASSERT_EQ(::kill(server.pid(), SIGSTOP), 0);
  ASSERT_TRUE(test::run_until(loop, [&] { return lost_called; }, 3s));
  const auto noticed = net::clock::now();
  ::kill(server.pid(), SIGCONT);
  EXPECT_TRUE(kept.lost());
  EXPECT_GE(noticed, valid_until);
  EXPECT_LT(noticed, valid_until + 1s);  // not long after: the pause and the timeout end there
}

// The client closed under a kept lease: no renewal can follow, so the lease is reported lost (a
// review proved it ended silently while another worker took the job back).
TEST_F(JobQueue, KeepAliveReportsALeaseLostToTheClientClosing) {
  job_queue q(c, "kept-close", {.lease = 200ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("a")));
  auto got = run_task(loop, q.reserve());
  ASSERT_TRUE(got && *got);
  int lost_calls = 0;
  job_lease kept = q.keep_alive(**got, [&] { ++lost_calls; });
  c.close();
  ASSERT_TRUE(test::run_until(loop, [&] { return lost_calls == 1; }, 2s));
  EXPECT_TRUE(kept.lost());
  test::run_for(loop, 100ms);
  EXPECT_EQ(lost_calls, 1);
}

// keep_alive on a job whose lease already ran out: on_lost runs on a later turn, once the caller
// holds the handle (a review proved it ran inside keep_alive).
TEST_F(JobQueue, KeepAliveNeverCallsOnLostBeforeReturning) {
  job_queue q(c, "kept-late", {.lease = 50ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("a")));
  auto got = run_task(loop, q.reserve());
  ASSERT_TRUE(got && *got);
  test::run_for(loop, 100ms);
  bool returned = false, called_before_return = false, called = false;
  job_lease kept = q.keep_alive(**got, [&] {
    called = true;
    called_before_return = !returned;
  });
  returned = true;
  ASSERT_TRUE(test::run_until(loop, [&] { return called; }, 2s));
  EXPECT_FALSE(called_before_return);
  EXPECT_TRUE(kept.lost());
}

// Leases destroyed inside their own on_lost, moved and destroyed while a renewal is in flight, and
// moved over (ASan in CI): on_lost runs once, nothing is touched after it is gone.
TEST_F(JobQueue, KeepAliveHandlesMayBeDestroyedOrMovedAnyTime) {
  job_queue q(c, "kept-asan", {.lease = 90ms});
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(run_task(loop, q.enqueue("a")));
  auto a = run_task(loop, q.reserve());
  auto b = run_task(loop, q.reserve());
  ASSERT_TRUE(a && *a && b && *b);
  std::optional<job_lease> la, lb;
  int calls = 0;
  la.emplace(q.keep_alive(**a, [&] {
    ++calls;
    la.reset();
  }));
  lb.emplace(q.keep_alive(**b));
  ASSERT_EQ(admin.call({"ZREM", q.key("active"), (*a)->id}).integer, 1);
  ASSERT_TRUE(test::run_until(loop, [&] { return calls == 1; }, 3s));
  const auto r0 = lb->renewals();
  ASSERT_TRUE(test::run_until(loop, [&] { return lb->renewals() > r0; }, 3s));
  test::run_for(loop, 25ms);
  job_lease moved = std::move(*lb);
  lb.reset();
  moved = job_lease(q.keep_alive(**b));
  test::run_for(loop, 100ms);
  EXPECT_EQ(calls, 1);
}

TEST_F(JobQueue, AJobAbandonedOnItsLastAttemptGoesToTheDeadList) {
  job_queue q(c, "abandoned", {.lease = 50ms, .max_attempts = 1});
  ASSERT_TRUE(run_task(loop, q.enqueue("p")));
  auto j = run_task(loop, q.reserve());
  ASSERT_TRUE(j && *j);
  test::pause(loop, 150ms);
  auto none = run_task(loop, q.reserve());  // takes it back: dead, not run again
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  auto counts = run_task(loop, q.counts());
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->dead, 1);
  EXPECT_EQ(counts->active, 0);
  EXPECT_EQ(admin.call({"HGET", q.key("data"), (*j)->id}).text, "p");  // kept for inspection
}

TEST_F(JobQueue, FailedJobsRetryWithDoublingCappedDelaysThenDie) {
  job_queue q(c, "retries", {.max_attempts = 3, .retry_delay = 10s, .max_retry_delay = 15s});
  ASSERT_TRUE(run_task(loop, q.enqueue("p")));
  std::string id;
  const std::int64_t expected_delay[] = {10000, 15000};  // 10 s, then 20 s capped at 15 s
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto j = run_task(loop, q.reserve());
    ASSERT_TRUE(j && *j) << "attempt " << attempt;
    EXPECT_EQ((*j)->attempt, attempt);
    id = (*j)->id;
    auto outcome = run_task(loop, q.fail(**j));
    ASSERT_TRUE(outcome);
    if (attempt < 3) {
      EXPECT_EQ(*outcome, failed_job::retried);
      const std::int64_t due = due_in_ms(q, id);
      EXPECT_LE(due, expected_delay[attempt - 1]);
      EXPECT_GT(due, expected_delay[attempt - 1] - 5000);  // 5 s of slack for a slow machine
      auto early = run_task(loop, q.reserve());  // not before it falls due
      ASSERT_TRUE(early);
      EXPECT_FALSE(early->has_value());
      fast_forward(q);
    } else {
      EXPECT_EQ(*outcome, failed_job::dead);
    }
  }
  auto counts = run_task(loop, q.counts());
  ASSERT_TRUE(counts);
  EXPECT_EQ(counts->dead, 1);
  EXPECT_EQ(counts->delayed + counts->waiting + counts->active, 0);
  EXPECT_EQ(admin.call({"LRANGE", q.key("dead"), "0", "-1"}).elements.at(0).text, id);
}

TEST_F(JobQueue, AWaitingWorkerIsWokenByAnEnqueueFromAnotherClient) {
  job_queue q(c, "wake");
  std::optional<resp::result<std::optional<job>>> got;
  auto worker = [&]() -> client::detached { got.emplace(co_await q.reserve(30s)); };
  worker();
  test::run_for(loop, 100ms);  // the worker is blocked in BLPOP by now
  EXPECT_FALSE(got.has_value());
  auto other = c.open_session();
  job_queue producer(*other, "wake");
  ASSERT_TRUE(run_task(loop, producer.enqueue("hello")));
  // Woken by the enqueue, long before its 30 s wait ends.
  ASSERT_TRUE(test::run_until(loop, [&] { return got.has_value(); }, 10s));
  ASSERT_TRUE(*got) << got->error().what();
  const std::optional<job>& woken = **got;
  ASSERT_TRUE(woken.has_value());
  EXPECT_EQ(woken->payload, "hello");
}

TEST_F(JobQueue, AWaitingWorkerGetsADelayedJobWhenItFallsDue) {
  job_queue q(c, "later");
  ASSERT_TRUE(run_task(loop, q.enqueue("soon", 300ms)));
  auto early = run_task(loop, q.reserve());
  ASSERT_TRUE(early);
  EXPECT_FALSE(early->has_value());
  // The wait is 30 s; the job falls due after 300 ms, and the worker wakes for it.
  auto j = run_task(loop, q.reserve(30s), 10s);
  ASSERT_TRUE(j) << j.error().what();
  ASSERT_TRUE(j->has_value());
  EXPECT_EQ((*j)->payload, "soon");
}

// A retry scheduled while a worker waits: the waiting worker chose its BLPOP timeout before the
// job existed, so the retry must wake it (a 30 s wait, the retry due after 200 ms).
TEST_F(JobQueue, ARetryWakesAWaitingWorker) {
  job_queue first(c, "retry-wake", {.retry_delay = 200ms});
  ASSERT_TRUE(run_task(loop, first.enqueue("p")));
  auto j = run_task(loop, first.reserve());
  ASSERT_TRUE(j && *j);
  auto other = c.open_session();
  job_queue second(*other, "retry-wake");
  std::optional<resp::result<std::optional<job>>> got;
  auto waiter = [&]() -> client::detached { got.emplace(co_await second.reserve(30s)); };
  waiter();
  test::run_for(loop, 150ms);  // blocked in BLPOP by now
  ASSERT_FALSE(got.has_value());
  ASSERT_EQ(*run_task(loop, first.fail(**j)), failed_job::retried);
  ASSERT_TRUE(test::run_until(loop, [&] { return got.has_value(); }, 10s));
  ASSERT_TRUE(*got) << got->error().what();
  const std::optional<job>& retried = **got;
  ASSERT_TRUE(retried.has_value());
  EXPECT_EQ(retried->attempt, 2);
}

// Two jobs ready behind the one token the notify list holds (what two enqueues racing two waiters
// leave): the first worker woken passes the wake-up on, so both get a job long before their wait ends.
TEST_F(JobQueue, TwoReadyJobsBehindOneTokenWakeTwoWaiters) {
  constexpr int waiters = 2;
  std::vector<std::unique_ptr<client::client>> sessions;
  std::vector<std::unique_ptr<job_queue>> queues;
  std::vector<std::optional<resp::result<std::optional<job>>>> got(waiters);
  for (int w = 0; w < waiters; ++w) {
    sessions.push_back(c.open_session());
    queues.push_back(std::make_unique<job_queue>(*sessions.back(), "burst"));
  }
  auto waiter = [&](int w) -> client::detached { got[static_cast<std::size_t>(w)].emplace(co_await queues[static_cast<std::size_t>(w)]->reserve(30s)); };
  for (int w = 0; w < waiters; ++w) waiter(w);
  test::run_for(loop, 150ms);  // both blocked in BLPOP
  job_queue q(c, "burst");
  // Two ready jobs and a single token, as the enqueue script leaves them.
  (void)admin.call({"HSET", q.key("data"), "1", "j1", "2", "j2"});
  (void)admin.call({"LPUSH", q.key("wait"), "1", "2"});
  (void)admin.call({"LPUSH", q.key("notify"), "1"});
  ASSERT_TRUE(test::run_until(loop, [&] { return got[0].has_value() && got[1].has_value(); }, 10s));
  std::set<std::string> payloads;
  for (const auto& g : got) {
    ASSERT_TRUE(*g) << g->error().what();
    ASSERT_TRUE(g->value_or(std::nullopt).has_value());
    payloads.insert((**g)->payload);
  }
  EXPECT_EQ(payloads, (std::set<std::string>{"j1", "j2"}));
}

TEST_F(JobQueue, JobsTakenBackRunFirstExpiredFirst) {
  job_queue q(c, "takeback", {.lease = 100ms});
  for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(run_task(loop, q.enqueue(p)));
  for (const char* p : {"a", "b", "c"}) {
    auto j = run_task(loop, q.reserve());
    ASSERT_TRUE(j && *j);
    EXPECT_EQ((*j)->payload, p);
    test::pause(loop, 5ms);  // distinct lease ends
  }
  test::pause(loop, 250ms);
  for (const char* p : {"a", "b", "c"}) {
    auto j = run_task(loop, q.reserve());
    ASSERT_TRUE(j && *j);
    EXPECT_EQ((*j)->payload, p);
    EXPECT_EQ((*j)->attempt, 2);
  }
}

TEST_F(JobQueue, SettingsThatCannotWorkAreRefused) {
  EXPECT_THROW(job_queue(c, ""), std::invalid_argument);  // "{}" is no hash tag: keys in many slots
  EXPECT_THROW(job_queue(c, "q", {.prefix = "{}"}), std::invalid_argument);
  EXPECT_THROW(job_queue(c, "q", {.lease = 0ms}), std::invalid_argument);
  EXPECT_THROW(job_queue(c, "q", {.max_attempts = 0}), std::invalid_argument);
  EXPECT_NO_THROW(job_queue(c, "q", {.prefix = "app{1}"}));  // braces, but one slot still
}

TEST_F(JobQueue, AWaitWithNothingComingEndsEmpty) {
  job_queue q(c, "quiet");
  const auto start = std::chrono::steady_clock::now();
  auto j = run_task(loop, q.reserve(200ms));
  ASSERT_TRUE(j) << j.error().what();
  EXPECT_FALSE(j->has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
}

TEST_F(JobQueue, EveryKeyOfAQueueIsInOneSlot) {
  job_queue q(c, "tagged");
  const auto slot = client::hash_slot(q.key("wait"));
  for (const char* part : {"delayed", "active", "data", "attempts", "dead", "seq", "notify"}) {
    EXPECT_EQ(client::hash_slot(q.key(part)), slot) << part;
  }
  EXPECT_EQ(q.key("wait"), "queue:{tagged}:wait");
}

TEST_F(JobQueue, RedisGoneIsAnErrorValue) {
  job_queue q(c, "down", {.timeout = 300ms});
  ASSERT_TRUE(run_task(loop, q.enqueue("p")));
  ::kill(server.pid(), SIGKILL);
  auto enqueued = run_task(loop, q.enqueue("q"));
  EXPECT_FALSE(enqueued);
  auto reserved = run_task(loop, q.reserve(500ms));
  EXPECT_FALSE(reserved);
  auto counts = run_task(loop, q.counts());
  EXPECT_FALSE(counts);
}

}  // namespace
}  // namespace redring::patterns
