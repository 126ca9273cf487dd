// SPDX-License-Identifier: MIT
// A reliable job queue: enqueue (now or delayed), reserve under a lease, complete, fail with retry
// and backoff, a dead list past the attempts allowed, and workers that wait without polling.
// Every step is one Lua script, atomic on the server; see docs/patterns.md.
#pragma once

#include "client/client.hpp"
#include "client/detached.hpp"
#include "patterns/task.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace redring::patterns {

/// Settings of a `job_queue`.
struct job_queue_options {
  /// Keys: prefix + "{" + name + "}:" + wait | delayed | active | data | attempts | dead | seq |
  /// notify. One {hash tag}: every key of a queue lives in one slot (a cluster runs it unchanged).
  std::string prefix = "queue:";
  /// How long a reserved job is its worker's: past it, unless completed, failed or extended, the
  /// next reserve takes it back (the worker is presumed dead) and it runs again, as another attempt.
  std::chrono::milliseconds lease{30000};
  /// Attempts (reservations) a job may have: a job that fails, or whose lease runs out, on its last
  /// attempt goes to the dead list instead of running again.
  std::int64_t max_attempts = 3;
  /// Delay before a failed job's next attempt: this after the first failure, doubling each time...
  std::chrono::milliseconds retry_delay{1000};
  /// ...up to this.
  std::chrono::milliseconds max_retry_delay{60000};
  /// Per command (0: the client's default; negative: none).
  std::chrono::milliseconds timeout{1000};
  /// Due delayed jobs and expired leases each moved by one reserve, at most (bounds a script's run
  /// time when many fall due at once; the next reserves move the rest).
  std::int64_t max_moves = 100;
};

/// A reserved job.
struct job {
  /// The job's id in its queue (a decimal counter: "1", "2", ...).
  std::string id;
  /// What was enqueued.
  std::string payload;
  /// Which attempt this is (1 for the first reservation). With `id`, it names this reservation:
  /// `complete`, `fail` and `extend` act only if the job is still reserved under it.
  std::int64_t attempt = 0;
  /// When the reserve that took it was sent (local steady clock). The server started the lease
  /// later, so it runs at least until `leased_at + options.lease` (less the clocks' drift).
  net::clock::time_point leased_at{};
};

/// A job's lease kept alive while its worker runs it (`job_queue::keep_alive`): renewed every
/// `options.lease / 3`, so a job may run longer than its lease, and is still taken back about one
/// lease after its worker dies. Move-only. `stop()`, or destroying it, ends the renewals (the
/// lease then runs out in at most `options.lease`): stop it before `complete` or `fail`, or a
/// renewal racing them finds the job gone and reports it lost.
class job_lease {
 public:
  job_lease(job_lease&&) noexcept = default;
  /// Stops the renewals of the lease assigned over.
  job_lease& operator=(job_lease&& other) noexcept;
  ~job_lease();

  /// Ends the renewals (idempotent); one in flight completes without effect on `lost()`.
  void stop() noexcept;
  /// True once a renewal found the job no longer reserved under this attempt (taken back, completed
  /// or failed elsewhere), none succeeded before `valid_until`, or the client closed (no renewal can
  /// follow): stop working on it, its work may run again elsewhere. `on_lost` then runs once, never
  /// inside `keep_alive` itself.
  [[nodiscard]] bool lost() const noexcept;
  /// Until when (local steady clock) the lease certainly runs, counting from the sending of the
  /// last successful renewal (or the reservation). Moves forward with every renewal.
  [[nodiscard]] net::clock::time_point valid_until() const noexcept;
  /// Renewals that succeeded so far.
  [[nodiscard]] std::uint64_t renewals() const noexcept;

 private:
  friend class job_queue;
  struct state;
  explicit job_lease(std::shared_ptr<state> s) : state_(std::move(s)) {}
  std::shared_ptr<state> state_;
};

/// What `fail` did.
enum class failed_job : std::uint8_t {
  retried,     ///< Scheduled to run again after the backoff delay.
  dead,        ///< It was the last attempt: moved to the dead list.
  lease_lost,  ///< Not this worker's any more (its lease ran out and the job was taken back): nothing done.
};

/// How many jobs are in each state (read atomically).
struct job_counts {
  std::int64_t waiting = 0;  ///< Ready, waiting for a worker.
  std::int64_t delayed = 0;  ///< Scheduled for later (enqueued with a delay, or failed and to be retried).
  std::int64_t active = 0;   ///< Reserved by a worker (leases running or expired but not yet taken back).
  std::int64_t dead = 0;     ///< Failed on their last attempt; their payloads are kept in the data hash.
};

/// A queue named `name` on a client. Each operation is one round trip (one script), except
/// `reserve` with a wait, which blocks on a list (BLPOP, on the client's connection for blocking
/// commands) while nothing is ready. Delivery is at least once: a job runs again if its worker
/// dies, stalls past its lease, or completes too late (after the job was taken back): make jobs
/// idempotent or check `attempt`. Loop thread only; the client must outlive the queue and every
/// operation in flight. String views passed in must outlive the co_await.
class job_queue {
 public:
  /// Throws std::invalid_argument for a lease under 1 ms, `max_attempts` under 1, or a name and
  /// prefix whose keys would not share a slot (an empty name; braces in the prefix that take over
  /// the hash tag).
  job_queue(client::client& c, std::string_view name, job_queue_options opts = {});

  /// Adds a job: ready now, or after `delay` (at most 10^13 ms). Returns its id.
  [[nodiscard]] task<resp::result<std::string>> enqueue(std::string_view payload, std::chrono::milliseconds delay = {});

  /// Reserves the oldest ready job under a lease of `options.lease`, or nullopt if none is ready.
  /// Moves due delayed jobs to the ready list, and takes back jobs whose lease ran out, first.
  [[nodiscard]] task<resp::result<std::optional<job>>> reserve();
  /// Like `reserve()`, waiting up to `wait` for a job to become ready (an enqueue or a retry wakes
  /// a waiting worker at once; a delayed job or an expiring lease is waited for until it falls due).
  /// Redis checks blocking timeouts on its server tick (`hz`, 10 by default): a wait may end, and a
  /// job falling due be seen, up to about 100 ms late.
  [[nodiscard]] task<resp::result<std::optional<job>>> reserve(std::chrono::milliseconds wait);

  /// Removes a reserved job for good: true, or false if the job was not reserved under `j.attempt`
  /// any more (taken back after its lease ran out: it runs again, or ran already).
  [[nodiscard]] task<resp::result<bool>> complete(const job& j);
  /// Gives a reserved job back as failed: retried after the backoff, or dead on its last attempt.
  [[nodiscard]] task<resp::result<failed_job>> fail(const job& j);
  /// Renews `j`'s lease for `options.lease` from now: true, or false if it was lost.
  [[nodiscard]] task<resp::result<bool>> extend(const job& j);
  /// Renews `j`'s lease every `options.lease / 3` until the returned handle is stopped or destroyed,
  /// or the lease is lost; then `on_lost` (if any) is called once, on the loop thread. A renewal
  /// that fails (no reply in time) is tried again at the next beat while the lease still runs. The
  /// client must outlive the renewals (stop them first); the queue need not.
  [[nodiscard]] job_lease keep_alive(const job& j, std::function<void()> on_lost = {});

  /// The counts of each state, read in one script.
  [[nodiscard]] task<resp::result<job_counts>> counts();

  /// The Redis key of one part of the queue ("wait", "dead", "data", ...).
  [[nodiscard]] std::string key(std::string_view part) const;

 private:
  // One reserve script run: the job, or nullopt and (in `next_due_ms`) how long until a delayed
  // job or an expiring lease may make one ready (-1: nothing scheduled).
  task<resp::result<std::optional<job>>> reserve_once(std::int64_t& next_due_ms);
  // The renewals behind a job_lease (see keep_alive); needs nothing of the queue.
  static client::detached keep_renewing(std::shared_ptr<job_lease::state> s, std::function<void()> on_lost);

  client::client& client_;
  job_queue_options opts_;
  std::string base_;  // prefix + "{" + name + "}:"
};

}  // namespace redring::patterns
