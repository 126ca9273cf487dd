// SPDX-License-Identifier: MIT
#include "net/loop.hpp"

#include "net/resolver.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <thread>

namespace redring::net {
namespace {

// Kernel version as major * 1000 + minor, for features that the opcode probe cannot see (flags).
int kernel_version() noexcept {
  utsname u{};
  if (::uname(&u) != 0) return 0;
  int major = 0, minor = 0;
  if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return 0;
  return major * 1000 + minor;
}

// Why io_uring_setup refused, in words a user can act on: containers and hardened hosts turn
// io_uring off, and each cause has its own errno (io_uring_setup(2); kernel.io_uring_disabled, 6.6).
[[noreturn]] void throw_setup_error(int err) {
  const char* why = "";
  switch (err) {
    case EPERM:
    case EACCES:
      why = ": io_uring is disabled for this process (the kernel.io_uring_disabled sysctl, or a seccomp "
            "profile such as a container runtime's default)";
      break;
    case ENOSYS: why = ": this kernel has no io_uring (older than 5.1, or built without CONFIG_IO_URING)"; break;
    case ENOMEM:
      why = ": not enough locked memory for the ring (kernels before 5.12 charge it to RLIMIT_MEMLOCK: "
            "raise `ulimit -l`)";
      break;
    default: break;
  }
  throw std::system_error(err, std::system_category(), std::string("io_uring_setup failed") + why);
}

constexpr std::uint32_t slot_index(op_token t) noexcept { return static_cast<std::uint32_t>(t); }
constexpr std::uint32_t slot_generation(op_token t) noexcept { return static_cast<std::uint32_t>(t >> 32); }

}  // namespace

loop::loop(const loop_options& options) : options_(options), now_(clock::now()) {
  // Out of range, each would fail later and far from here: one entry cannot hold a connect and
  // its linked timeout (the timeout would be lost); the kernel takes at most 32768 entries and
  // provided buffers; a buffer's length is 32 bits in a submission (0 or 2^32: a 0-byte receive,
  // read as the peer closing); a null lookup is called for the first host name.
  const unsigned entries = options.entries == 0 ? 512 : options.entries;
  if (entries < 2 || entries > 32768) throw std::invalid_argument("redring::net::loop: entries must be 2 to 32768");
  if (options.buffer_count == 0 || options.buffer_count > 32768) {
    throw std::invalid_argument("redring::net::loop: buffer_count must be 1 to 32768");
  }
  if (options.buffer_size == 0 || options.buffer_size > (std::size_t{1} << 30)) {
    throw std::invalid_argument("redring::net::loop: buffer_size must be 1 to 2^30 bytes");
  }
  if (options.lookup == nullptr) throw std::invalid_argument("redring::net::loop: lookup must not be null");
  // Fall back step by step: DEFER_TASKRUN (6.1) runs completions only when we enter the ring, which
  // is what a one-thread loop wants; it cannot signal an eventfd for embedding, so notify_fd uses
  // COOP_TASKRUN (5.19); older kernels get neither.
  struct attempt {
    unsigned flags;
    bool defer, coop;
  };
  const attempt attempts[] = {
      // R_DISABLED (5.10): SINGLE_ISSUER binds the ring to the thread that enables it, the first to
      // run a turn (see enable), not to this one.
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_R_DISABLED, true,
       false},
      {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, false, true},
      {0, false, false},
  };
  int rc = -EINVAL;
  for (const attempt& a : attempts) {
    if (a.defer && options.notify_fd) continue;
    io_uring_params params{};
    params.flags = a.flags | IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 2;
    rc = io_uring_queue_init_params(entries, &ring_, &params);
    if (rc == 0) {
      features_.defer_taskrun = a.defer;
      features_.coop_taskrun = a.coop;
      break;
    }
  }
  if (rc != 0) throw_setup_error(-rc);

  enabled_ = !features_.defer_taskrun;

  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
    features_.send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) != 0;
    io_uring_free_probe(probe);
  }
  const int version = kernel_version();
  features_.buffer_rings = version >= 5019;
  features_.recv_multishot = version >= 6000;

  // Blocking: the ring's read waits on it (a poll inside io_uring). Some kernels hand a nonblocking
  // file's -EAGAIN back to the reader (liburing issue #364), and on_wakeup's re-arm would spin.
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    io_uring_queue_exit(&ring_);
    throw std::system_error(errno, std::system_category(), "eventfd");
  }
  if (options.notify_fd) {
    // Asked for, it must work: a host would otherwise watch an fd that never becomes readable.
    notify_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    const int registered = notify_fd_ < 0 ? -errno : io_uring_register_eventfd(&ring_, notify_fd_);
    if (registered < 0) {
      if (notify_fd_ >= 0) ::close(notify_fd_);
      ::close(wake_fd_);
      io_uring_queue_exit(&ring_);
      throw std::system_error(-registered, std::system_category(), "redring::net::loop: notify_fd");
    }
  }
  thread_.store(::pthread_self());
  wake_token_ = reserve(&loop::on_wakeup, this);
  arm_wakeup();
}

buffer_ring* loop::receive_buffers() {
  if (!buffers_tried_) {
    buffers_tried_ = true;
    if (features_.recv_multishot && features_.buffer_rings) {
      buffers_ = std::make_unique<buffer_ring>(ring_, 0, options_.buffer_count, options_.buffer_size);
      if (!buffers_->ok()) buffers_.reset();
    }
  }
  return buffers_.get();
}

loop::~loop() {
  // Cancel what is in flight and drain it, so the kernel writes into no memory after this.
  // A ring without SINGLE_ISSUER takes submissions from any thread, and nothing else runs the loop
  // while it is destroyed: this thread drains it even when another one claimed it.
  if (!features_.defer_taskrun) thread_.store(::pthread_self(), std::memory_order_relaxed);
  try {
    cancel_op(wake_token_);
    io_uring_sqe* s = sqe();
    io_uring_prep_cancel64(s, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(s, 0);
    for (int i = 0; i < 16 && run_once(std::chrono::milliseconds(1)) != 0; ++i) {
    }
  } catch (const std::system_error&) {
    // Destroyed on a thread other than the loop's: it cannot submit; the ring's exit below cancels
    // what is in flight.
  }
  // After the last turn: a lookup's results task still queued is never run, and the resolver's
  // destructor frees what it carries.
  resolver_.reset();
  buffers_.reset();
  // Off another thread the unregistration fails, and the kernel drops it when this one exits.
  if (features_.registered_ring_fd) io_uring_unregister_ring_fd(&ring_);
  io_uring_queue_exit(&ring_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (notify_fd_ >= 0) ::close(notify_fd_);
}

op_token loop::reserve(completion_fn fn, void* context) {
  std::uint32_t index;
  if (free_head_ != UINT32_MAX) {
    index = free_head_;
    free_head_ = slots_[index].next_free;
  } else {
    index = static_cast<std::uint32_t>(slots_.size());
    slots_.push_back(slot{nullptr, nullptr, 1, UINT32_MAX});
  }
  slot& s = slots_[index];
  s.fn = fn;
  s.context = context;
  return (static_cast<std::uint64_t>(s.generation) << 32) | index;
}

void loop::release(op_token token) noexcept {
  const std::uint32_t index = slot_index(token);
  if (index >= slots_.size() || slots_[index].generation != slot_generation(token)) return;
  slot& s = slots_[index];
  s.fn = nullptr;
  s.context = nullptr;
  if (++s.generation == 0) s.generation = 1;  // token 0 stays "no slot"
  s.next_free = free_head_;
  free_head_ = index;
}

io_uring_sqe* loop::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  while (s == nullptr) {  // the queue is full: hand it to the kernel and take a fresh entry
    if (!enabled_) enable();
    if (const int rc = io_uring_submit(&ring_); rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      // Not transient (a thread other than the SINGLE_ISSUER ring's): it would spin here forever.
      throw std::system_error(-rc, std::system_category(), "redring::net::loop: io_uring_submit");
    }
    s = io_uring_get_sqe(&ring_);
  }
  return s;
}

void loop::make_room(unsigned n) {
  if (io_uring_sq_space_left(&ring_) >= n) return;
  if (n > ring_.sq.ring_entries) {  // never room: the entries would go in separate submits
    throw std::invalid_argument("redring::net::loop: make_room asks for more entries than the ring has");
  }
  if (!enabled_) enable();
  // As in sqe(): submit until the entries taken so far are with the kernel.
  while (io_uring_sq_space_left(&ring_) < n) {
    if (const int rc = io_uring_submit(&ring_); rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      throw std::system_error(-rc, std::system_category(), "redring::net::loop: io_uring_submit");
    }
  }
}

// The first turn claims the loop for its thread, for good, whatever the ring: `in_loop_thread()`
// must then be true there and nowhere else, or a thread-safe submit (client::submit) from the
// thread that built the loop would run inline and race the loop's thread. Claimed once rather than
// at every turn, so the turn's only cost is the check below.
void loop::claim() {
  if (!enabled_) {
    enable();  // claims it too
    return;
  }
  claimed_ = true;
  thread_.store(::pthread_self(), std::memory_order_relaxed);
}

// The first turn's thread becomes the ring's only submitter (SINGLE_ISSUER, enabled here rather
// than at setup so that a loop built on one thread can run on another). Also reached from sqe() and
// make_room() when they must submit before the first turn: the kernel binds the ring to this
// thread then, so the loop is claimed here too, and a turn from another thread is refused.
void loop::enable() {
  enabled_ = true;
  claimed_ = true;
  thread_.store(::pthread_self(), std::memory_order_relaxed);
  // io_uring_enable_rings is declared by Debian 12's liburing 2.3 but missing from its library
  // (not in the version map): the register call itself.
  if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0) {
    throw std::system_error(errno, std::system_category(), "io_uring_register(ENABLE_RINGS)");
  }
  // The ring's fd registered with itself (5.18): each io_uring_enter then skips the fd table lookup
  // and reference count. The registration belongs to this thread, the ring's submitter for good.
  // Optional: without it the plain fd works the same.
  features_.registered_ring_fd = io_uring_register_ring_fd(&ring_) == 1;
}

void loop::cancel_op(op_token token) {
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel64(s, token, IORING_ASYNC_CANCEL_ALL);
  io_uring_sqe_set_data64(s, 0);
}

void loop::dispatch(const io_uring_cqe& cqe) noexcept {
  const op_token token = io_uring_cqe_get_data64(&cqe);
  if (token == 0) return;
  const std::uint32_t index = slot_index(token);
  if (index >= slots_.size()) return;
  const slot& s = slots_[index];
  if (s.generation != slot_generation(token) || s.fn == nullptr) return;  // released: stale
  s.fn(s.context, cqe.res, cqe.flags);
}

void loop::arm_wakeup() {
  io_uring_sqe* s = sqe();
  io_uring_prep_read(s, wake_fd_, &wake_buf_, sizeof wake_buf_, 0);
  io_uring_sqe_set_data64(s, wake_token_);
}

void loop::on_wakeup(void* self, int res, std::uint32_t) {
  auto* l = static_cast<loop*>(self);
  if (res == -ECANCELED) return;
  l->arm_wakeup();
}

// --- Timers: a binary min-heap of intrusive timers. ---

void loop::heap_swap(std::size_t a, std::size_t b) noexcept {
  std::swap(timers_[a], timers_[b]);
  timers_[a]->heap_index = a;
  timers_[b]->heap_index = b;
}

void loop::heap_up(std::size_t i) noexcept {
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (timers_[parent]->deadline <= timers_[i]->deadline) break;
    heap_swap(i, parent);
    i = parent;
  }
}

void loop::heap_down(std::size_t i) noexcept {
  for (;;) {
    const std::size_t l = 2 * i + 1, r = l + 1;
    std::size_t m = i;
    if (l < timers_.size() && timers_[l]->deadline < timers_[m]->deadline) m = l;
    if (r < timers_.size() && timers_[r]->deadline < timers_[m]->deadline) m = r;
    if (m == i) return;
    heap_swap(i, m);
    i = m;
  }
}

void loop::heap_remove(std::size_t i) noexcept {
  const std::size_t last = timers_.size() - 1;
  if (i != last) heap_swap(i, last);
  timers_.back()->heap_index = timer::npos;
  timers_.pop_back();
  if (i < timers_.size()) {
    heap_up(i);
    heap_down(i);
  }
}

void loop::arm(timer& t, clock::time_point deadline) {
  if (t.armed()) heap_remove(t.heap_index);
  t.deadline = deadline;
  t.heap_index = timers_.size();
  timers_.push_back(&t);
  heap_up(t.heap_index);
}

void loop::cancel(timer& t) noexcept {
  if (t.armed()) heap_remove(t.heap_index);
}

resolver& loop::name_resolver() {
  if (!resolver_) resolver_ = std::make_unique<resolver>(*this, options_.lookup);
  return *resolver_;
}

std::chrono::milliseconds loop::poll_timeout() const noexcept {
  // Hooks left by the last turn's completions (a connection's flush) run only in a turn: an
  // embedding host that slept until the ring had completions would never send what they queue.
  // So do submissions queued by them and not yet in the kernel (a re-armed wakeup read or recv):
  // until submitted, nothing they wait for can make notify_fd readable.
  if (hooks_ != nullptr || posted_.load(std::memory_order_acquire) != nullptr || io_uring_sq_ready(&ring_) != 0) {
    return std::chrono::milliseconds(0);
  }
  if (timers_.empty()) return std::chrono::milliseconds::max();
  const auto left = timers_.front()->deadline - clock::now();
  if (left <= clock::duration::zero()) return std::chrono::milliseconds(0);
  // Rounded up: a host that wakes a little before the deadline would find nothing to run and
  // spin through zero-length waits until it passes. At most INT_MAX ms (24.8 days), so that it
  // converts to epoll_wait's int: a far timer ("never", a saturated backoff) is no wrap-around.
  return std::min(std::chrono::ceil<std::chrono::milliseconds>(left), std::chrono::milliseconds(INT_MAX));
}

std::size_t loop::run_timers() {
  std::size_t n = 0;
  while (!timers_.empty() && timers_.front()->deadline <= now_) {
    timer* t = timers_.front();
    heap_remove(0);
    ++n;
    t->fn(t);
  }
  return n;
}

// --- Posted work: a Treiber stack drained whole and reversed into FIFO order. ---

void loop::post(task& t) noexcept {
  task* head = posted_.load(std::memory_order_relaxed);
  do {
    t.next = head;
  } while (!posted_.compare_exchange_weak(head, &t, std::memory_order_seq_cst, std::memory_order_relaxed));
  // Paired with run_once: it sets sleeping_ before it last looks at posted_, so either it sees this
  // task or we see it asleep and wake it. No syscall while the loop is awake.
  if (sleeping_.load(std::memory_order_seq_cst)) {
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto ignored = ::write(wake_fd_, &one, sizeof one);
  }
}

std::size_t loop::run_posted() {
  task* list = posted_.exchange(nullptr, std::memory_order_acquire);
  task* fifo = nullptr;
  while (list != nullptr) {
    task* next = list->next;
    list->next = fifo;
    fifo = list;
    list = next;
  }
  std::size_t n = 0;
  while (fifo != nullptr) {
    task* next = fifo->next;
    fifo->fn(fifo);  // may free fifo
    fifo = next;
    ++n;
  }
  return n;
}

void loop::run_hooks() {
  // Hooks may queue hooks (a flush that completes a request whose continuation writes again).
  while (hooks_ != nullptr) {
    turn_hook* list = hooks_;
    hooks_ = nullptr;
    while (list != nullptr) {
      turn_hook* next = list->next;
      list->queued = false;
      list->fn(list);
      list = next;
    }
  }
}

std::size_t loop::run_once(std::chrono::milliseconds max_wait) {
  if (!claimed_) [[unlikely]] {
    claim();
  } else if (!in_loop_thread()) [[unlikely]] {
    // SINGLE_ISSUER: the kernel refuses this thread's submissions (EEXIST; EBADF through the other
    // thread's registered ring fd). Every turn would fail the same way, spinning without ever
    // running an operation: say so instead. Refused on every ring, not only that one: elsewhere
    // the kernel takes the submissions, but this turn would race the loop's thread, which alone
    // in_loop_thread() names (a thread-safe submit runs inline only there).
    throw std::system_error(EEXIST, std::system_category(),
                            "redring::net::loop: a turn on a thread other than the loop's (the first to run it)");
  }
  // On the loop's thread only (after the check above: another thread must not touch in_turn_).
  if (in_turn_) [[unlikely]] {
    // The outer turn has peeked completions it has not yet marked seen: this turn would dispatch
    // them again and advance the queue's head twice, past its tail.
    throw std::system_error(EDEADLK, std::system_category(),
                            "redring::net::loop: run_once/poll called from inside a turn (a callback)");
  }
  struct turn_guard {
    bool& flag;
    explicit turn_guard(bool& f) : flag(f) { flag = true; }
    ~turn_guard() { flag = false; }
  } guard(in_turn_);
  // Embedded (notify_fd): between turns the loop sleeps in its host's wait, so post() must wake it.
  if (notify_fd_ >= 0) sleeping_.store(false, std::memory_order_relaxed);
  now_ = clock::now();
  std::size_t handled = run_posted() + run_timers();
  run_hooks();

  // In milliseconds first: a max_wait past the nanosecond clock's range (milliseconds::max()) waits
  // as long as the clock allows rather than overflowing the conversion.
  auto wait = max_wait >= std::chrono::duration_cast<std::chrono::milliseconds>(clock::duration::max())
                  ? clock::duration::max()
                  : std::chrono::duration_cast<clock::duration>(max_wait);
  if (!timers_.empty()) wait = std::min(wait, std::max(clock::duration::zero(), timers_.front()->deadline - now_));
  if (handled != 0) wait = clock::duration::zero();  // the work may have produced more work
  // Waiting for 1 + quiet completions (below) assumes the quiet operations complete inline; one that
  // does not (a send into a full socket buffer) would hold the wait past a completion that should
  // end it (another connection's reply, a post, a stop) until max_wait. Bounded to a millisecond:
  // longer than a local round trip, so "send, sleep until the reply" stays one io_uring_enter.
  if (quiet_this_turn_ != 0) wait = std::min<clock::duration>(wait, std::chrono::milliseconds(1));
  if (wait > clock::duration::zero()) {
    sleeping_.store(true, std::memory_order_seq_cst);
    if (posted_.load(std::memory_order_seq_cst) != nullptr) wait = clock::duration::zero();
  }
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
  __kernel_timespec ts{ns / 1000000000, ns % 1000000000};
  io_uring_cqe* first = nullptr;
  // One io_uring_enter per turn: submit everything, run deferred task work, wait with a timeout
  // passed by argument (no timeout SQE). -ETIME just means nothing arrived. The completion queue is
  // empty here (every turn drains it), so waiting for 1 + quiet completions waits for one that is
  // not a quiet operation's (or for the quiet ones and one more): a send that completes inline does
  // not end the wait for its reply.
  const unsigned wait_nr = 1 + quiet_this_turn_;
  quiet_this_turn_ = 0;
  io_uring_submit_and_wait_timeout(&ring_, &first, wait_nr, &ts, nullptr);
  sleeping_.store(false, std::memory_order_relaxed);

  now_ = clock::now();
  io_uring_cqe* batch[64];
  for (;;) {
    const unsigned n = io_uring_peek_batch_cqe(&ring_, batch, 64);
    if (n == 0) break;
    for (unsigned i = 0; i < n; ++i) dispatch(*batch[i]);
    io_uring_cq_advance(&ring_, n);
    handled += n;
  }
  if (notify_fd_ >= 0) {
    // Asleep until the host calls again; paired with post() as above: a task posted before this
    // store is seen here, and the host is woken to run it.
    sleeping_.store(true, std::memory_order_seq_cst);
    if (posted_.load(std::memory_order_seq_cst) != nullptr) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto ignored = ::write(wake_fd_, &one, sizeof one);
    }
  }
  return handled;
}

void loop::run() {
  // The loop's thread is the first to run a turn (run_once claims it), whatever the ring: not the
  // last to call run(), or a loop driven by run_once()/poll() kept its builder's thread.
  // A stop() before this call is kept (sync_client's destructor may stop the loop before its thread
  // enters run()); it is consumed when run() returns.
  while (!stop_.load(std::memory_order_relaxed)) run_once(std::chrono::milliseconds(1000));
  stop_.store(false, std::memory_order_relaxed);
}

void loop::stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(wake_fd_, &one, sizeof one);
}

}  // namespace redring::net
