// SPDX-License-Identifier: MIT
// The event loop: one io_uring per loop, one loop per thread. Completions are dispatched through a
// slot table (no allocation, no virtual call); timers live in a heap with one kernel timeout per
// loop turn; other threads post work through a lock-free queue with one wakeup.
#pragma once

#include <liburing.h>
#include <pthread.h>

#include "net/address.hpp"
#include "net/buffer_ring.hpp"

#include <atomic>
#include <memory>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace redring::net {

class resolver;

/// Called when an operation completes: `res` is the CQE result (bytes, or -errno), `flags` its flags
/// (IORING_CQE_F_MORE while a multishot operation stays armed, IORING_CQE_F_BUFFER ...).
using completion_fn = void (*)(void* context, int res, std::uint32_t flags);

/// Identifies an operation slot; goes into a submission's user_data. Stale after `loop::release`.
using op_token = std::uint64_t;

/// The clock of timers and deadlines.
using clock = std::chrono::steady_clock;

/// `now + d`, or `clock::time_point::max()` (never) when that is past the clock's range: a timeout
/// of years (`hours::max()`, a URL's `timeout=9223372036854775807`, a reconnect cap of
/// `milliseconds::max()`) must not overflow the nanosecond count (undefined behaviour; the deadline
/// would wrap into the past and fire at once). A negative `d` is due at once: `now`.
template <class Rep, class Period>
  requires std::is_integral_v<Rep> && std::ratio_greater_equal_v<Period, clock::period>
[[nodiscard]] constexpr clock::time_point deadline_after(clock::time_point now, std::chrono::duration<Rep, Period> d) noexcept {
  if (d.count() <= 0) return now;
  // Compared in d's unit with a 64-bit count, which cannot overflow (the room left is truncated
  // towards zero); in d's own representation a narrow one (int, short) would truncate the room.
  using wide = std::chrono::duration<std::intmax_t, Period>;
  const auto room = std::chrono::duration_cast<wide>(clock::time_point::max() - now);
  const auto count = static_cast<std::uintmax_t>(d.count());
  if (count >= static_cast<std::uintmax_t>(room.count())) return clock::time_point::max();
  return now + wide(static_cast<std::intmax_t>(count));
}

/// A timer armed on a loop. Intrusive: the owner keeps it alive while armed (`loop::cancel` first).
struct timer {
  clock::time_point deadline{};
  void (*fn)(timer*) = nullptr;      ///< Called on the loop thread when the deadline passes.
  std::size_t heap_index = npos;     ///< Position in the loop's heap; npos when not armed.
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  [[nodiscard]] bool armed() const noexcept { return heap_index != npos; }
};

/// Work posted to a loop from any thread. Intrusive: the poster keeps it alive until `fn` ran.
struct task {
  void (*fn)(task*) = nullptr;
  task* next = nullptr;
};

/// Runs at the end of a loop turn, before the turn's single submit (a connection flushes its writes
/// there). Intrusive; registered with `loop::at_end_of_turn`, once per turn.
struct turn_hook {
  void (*fn)(turn_hook*) = nullptr;
  turn_hook* next = nullptr;
  bool queued = false;
};

/// Loop settings.
struct loop_options {
  unsigned entries = 512;          ///< Submission queue size, 2 to 32768 (0: 512); the completion queue is twice that.
  unsigned buffer_count = 256;     ///< Provided receive buffers (shared by the loop's connections), 1 to 32768.
  std::size_t buffer_size = 16 * 1024;  ///< Bytes per provided receive buffer, 1 to 2^30.
  bool notify_fd = false;          ///< Provide `notify_fd()` for embedding in another event loop.
  lookup_fn lookup = &address::resolve;  ///< Host name lookups, run off the loop thread (`name_resolver`).
};

/// What the kernel offers, probed once per loop.
struct loop_features {
  bool defer_taskrun = false;      ///< IORING_SETUP_DEFER_TASKRUN (6.1)
  bool coop_taskrun = false;       ///< IORING_SETUP_COOP_TASKRUN (5.19)
  bool buffer_rings = false;       ///< provided buffer rings (5.19)
  bool recv_multishot = false;     ///< multishot recv (6.0)
  bool send_zc = false;            ///< IORING_OP_SEND_ZC (6.0)
  bool registered_ring_fd = false; ///< the ring fd registered (5.18): io_uring_enter skips an fd lookup
};

/// An io_uring event loop. Not thread-safe, except `post` and `stop`, which any thread may call.
class loop {
 public:
  /// Sets up the ring, falling back from DEFER_TASKRUN to COOP_TASKRUN to none. Throws
  /// std::system_error if io_uring is unavailable: its code is io_uring_setup's errno (EPERM when the
  /// kernel.io_uring_disabled sysctl or a seccomp profile, as in a container, forbids it) and its
  /// message says which cause that errno points to. Throws std::invalid_argument for options out of
  /// their documented ranges (a null `lookup`, no room for a connect and its timeout, 0-byte buffers).
  explicit loop(const loop_options& options = {});
  ~loop();
  loop(const loop&) = delete;
  loop& operator=(const loop&) = delete;

  // --- Operations ---

  /// Reserves a slot whose completions call `fn(context, ...)`. Returns its token for user_data.
  [[nodiscard]] op_token reserve(completion_fn fn, void* context);
  /// Frees a slot; completions still in flight for it are then dropped. The caller must keep the
  /// memory those operations use alive until they complete (cancel them and wait, see `cancel_op`).
  void release(op_token token) noexcept;
  /// A submission queue entry for this turn; never null (submits to make room when the queue is full).
  [[nodiscard]] io_uring_sqe* sqe();
  /// Makes room for `n` entries taken next with `sqe()`, so that no submit falls between them: a
  /// linked pair (IOSQE_IO_LINK, a connect and its timeout) cut by a submit loses its link.
  void make_room(unsigned n);
  /// Like `sqe()`, for an operation whose completion alone should not end this turn's wait: one that
  /// completes promptly and only hands back a resource (a small send). The turn then waits for one
  /// completion more, so "send a request, sleep until its reply" is one io_uring_enter, not two.
  [[nodiscard]] io_uring_sqe* quiet_sqe() {
    ++quiet_this_turn_;
    return sqe();
  }
  /// Queues a cancellation of every operation submitted with `token` (their completions arrive with -ECANCELED).
  void cancel_op(op_token token);

  // --- Timers ---

  /// Arms `t` to fire at `deadline` (re-arms it if armed).
  void arm(timer& t, clock::time_point deadline);
  /// Disarms `t`; no-op if not armed.
  void cancel(timer& t) noexcept;
  /// The time at the start of this loop turn (cheap; refreshed once per turn).
  [[nodiscard]] clock::time_point now() const noexcept { return now_; }

  // --- Turns ---

  /// Runs `hook` at the end of this turn, before the submit. No-op if already queued this turn.
  void at_end_of_turn(turn_hook& hook) noexcept {
    if (hook.queued) return;
    hook.queued = true;
    hook.next = hooks_;
    hooks_ = &hook;
  }
  /// One turn: runs posted work, expired timers and end-of-turn hooks, submits, then waits up to
  /// `max_wait` for at least one completion (0: do not wait) and dispatches every completion that
  /// arrived. Returns the number of completions, timers and tasks handled.
  ///
  /// The first thread to run a turn (`run`, `run_once`, `poll`) becomes the loop's thread for good,
  /// whatever the ring: a ring set up with SINGLE_ISSUER is enabled then (IORING_SETUP_R_DISABLED
  /// until that turn), so a loop may be built on one thread and run on another. A turn from any
  /// other thread afterwards throws std::system_error (EEXIST): with SINGLE_ISSUER the kernel would
  /// refuse every submission, and on any ring it would race the loop's thread. Not re-entrant: a
  /// turn started on the loop's thread from inside a turn (a completion, timer, task or hook calling
  /// `run_once` or `poll`) is a programming error that throws std::system_error (EDEADLK) instead of
  /// dispatching the outer turn's completions twice; from a completion, whose dispatch is noexcept,
  /// that ends the process (std::terminate).
  std::size_t run_once(std::chrono::milliseconds max_wait);
  /// `run_once` without waiting: for embedding in another loop. Call it when `notify_fd()` is
  /// readable, and again once `poll_timeout()` has passed.
  std::size_t poll() { return run_once(std::chrono::milliseconds(0)); }
  /// How long an embedding host may wait (for `notify_fd()`) before its next `poll()`: zero when the
  /// last turn left work for the next (a command issued from a completion is sent by the next
  /// turn's submit; a task posted; an operation queued and not yet submitted), else until the first
  /// timer (a command's timeout, a reconnect's backoff, a health check: timers run only in a turn),
  /// rounded up to a millisecond and at most INT_MAX ms (it fits epoll_wait's int), else
  /// `std::chrono::milliseconds::max()` (no limit: its -1).
  [[nodiscard]] std::chrono::milliseconds poll_timeout() const noexcept;
  /// Runs turns until `stop()`; returns at once if `stop()` was called since the last `run()` returned.
  void run();
  /// Makes `run()` return after its current turn, or the next `run()` at once if none runs: a stop
  /// that comes before the loop thread enters `run()` is not lost. Thread-safe; the loop must outlive
  /// the call (it sets the flag the loop thread may act on at once, then writes the loop's eventfd):
  /// a thread that destroys the loop once `run()` returns waits for the stopping thread's call to
  /// return first (see client::sync_client).
  void stop() noexcept;
  /// True if `stop()` was called and `run()` has not returned since.
  [[nodiscard]] bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

  // --- Other threads ---

  /// Queues `t` to run on the loop thread. Thread-safe; wakes the loop only if it sleeps.
  void post(task& t) noexcept;
  /// True on the loop's thread: the first to run a turn, and before that the one that constructed it
  /// (so build the loop on the thread that runs it, or do not submit from the building thread once
  /// another has started running it: until that thread's first turn, the builder's submits run inline).
  /// Inline: every submission asks (pthread_self reads a register; no hashing of thread ids).
  [[nodiscard]] bool in_loop_thread() const noexcept {
    return ::pthread_equal(thread_.load(std::memory_order_relaxed), ::pthread_self()) != 0;
  }

  /// An eventfd that becomes readable when the loop has completions to handle (with
  /// `loop_options::notify_fd`): watch it from epoll/libuv/asio and call `poll()`. -1 otherwise.
  [[nodiscard]] int notify_fd() const noexcept { return notify_fd_; }

  /// What the kernel supports.
  [[nodiscard]] const loop_features& features() const noexcept { return features_; }
  /// The loop's provided buffer ring for receives, registered on first use (`buffer_count` buffers
  /// of `buffer_size` bytes, shared by every connection of the loop); null where the kernel has no
  /// multishot receive or refuses the registration.
  [[nodiscard]] buffer_ring* receive_buffers();
  /// The loop's host name resolver (`loop_options::lookup` on worker threads, up to
  /// `resolver::max_workers` lookups at once, each worker started when a lookup finds none idle;
  /// results come back on this loop's thread). Lives as long as the loop.
  [[nodiscard]] resolver& name_resolver();
  /// The raw ring, for the buffer ring and tests.
  [[nodiscard]] io_uring& ring() noexcept { return ring_; }

 private:
  struct slot {
    completion_fn fn;
    void* context;
    std::uint32_t generation;
    std::uint32_t next_free;
  };

  void dispatch(const io_uring_cqe& cqe) noexcept;
  std::size_t run_timers();
  std::size_t run_posted();
  void run_hooks();
  void arm_wakeup();
  void claim();
  void enable();
  static void on_wakeup(void* self, int res, std::uint32_t flags);
  void heap_swap(std::size_t a, std::size_t b) noexcept;
  void heap_up(std::size_t i) noexcept;
  void heap_down(std::size_t i) noexcept;
  void heap_remove(std::size_t i) noexcept;

  io_uring ring_{};
  loop_features features_;
  loop_options options_;
  std::unique_ptr<buffer_ring> buffers_;
  std::unique_ptr<resolver> resolver_;
  bool buffers_tried_ = false;
  std::vector<slot> slots_;
  std::uint32_t free_head_ = UINT32_MAX;
  std::vector<timer*> timers_;  // min-heap on deadline
  unsigned quiet_this_turn_ = 0;  // quiet_sqe() calls since the last wait
  bool enabled_ = true;           // false until the first turn enables an R_DISABLED ring
  bool claimed_ = false;          // false until the first turn (or enable) sets thread_ for good
  bool in_turn_ = false;          // a run_once is running (see run_once: not re-entrant)
  clock::time_point now_ = clock::now();  // refreshed at each turn; valid before the first one too
  turn_hook* hooks_ = nullptr;
  std::atomic<task*> posted_{nullptr};
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  int notify_fd_ = -1;
  std::uint64_t wake_buf_ = 0;
  op_token wake_token_ = 0;
  std::atomic<pthread_t> thread_{};  // the loop's thread: compared with pthread_self, no hashing
};

}  // namespace redring::net
