// SPDX-License-Identifier: MIT
#include "tools/bench/runner.hpp"

#include "client/client.hpp"
#include "client/detached.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <system_error>
#include <thread>
#include <utility>

namespace redring::bench {
namespace {

using clock = std::chrono::steady_clock;

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Shared by the threads: how many requests may still start, and when to stop.
struct budget {
  std::atomic<std::int64_t> remaining{0};
  bool timed = false;
  clock::time_point end{};
  const std::atomic<bool>* stop = nullptr;
  std::atomic<bool> failed{false};
  // May a request start at `at` (now, or its scheduled time in an open loop)?
  // Interrupted (Ctrl-C, SIGTERM) or failed: no request may start.
  [[nodiscard]] bool halted() const {
    return failed.load(std::memory_order_relaxed) || (stop != nullptr && stop->load(std::memory_order_relaxed));
  }
  bool take(clock::time_point at) {
    if (halted()) return false;
    if (timed) return at < end;
    return remaining.fetch_sub(1, std::memory_order_relaxed) > 0;
  }
};

struct worker;
struct slot;

// Fires when an open-loop request is due.
struct due_timer : net::timer {
  slot* owner = nullptr;
};

// One request in flight: a raw request of a connection's window, or a virtual client's (--auto).
struct slot : client::request {
  worker* w = nullptr;
  client::client* c = nullptr;
  std::size_t spec = 0;
  bool null_reply = false;
  std::string error;  // the error reply's code word, if any
  clock::time_point started;
  char key[kMaxKeyPrefix + 24];  // prefix + a 64-bit number (parse_options bounds the prefix)
  std::vector<std::string_view> argv;  // sized once for the longest template
  std::size_t argc = 0;
  due_timer timer;
  std::coroutine_handle<> sleeper;  // --auto with --rate: the virtual client waiting for its due time
  bool abandoned = false;           // the run stopped while it waited for its due time
};

struct worker {
  const bench_options* o = nullptr;
  const std::vector<command_spec>* specs = nullptr;
  budget* b = nullptr;
  live_figures* live = nullptr;
  std::size_t index = 0, workers = 1;
  net::loop* loop = nullptr;
  std::string value;
  std::uint64_t rng = 0x9E3779B97F4A7C15ull, sequence = 0;
  std::mt19937_64 gauss_rng{42};
  std::optional<command_mix> mix;
  std::optional<schedule> open_loop;
  clock::time_point record_from{};
  clock::time_point next_publish{};
  std::vector<command_stats> stats;
  std::vector<std::uint64_t> per_second;
  std::vector<client::cluster_node_load> nodes;  // --cluster: requests per node
  std::uint64_t recorded = 0;
  int active = 0;
  int cpu = -1;
  std::string fatal;

  std::uint64_t next_key() {
    const std::uint64_t span = o->key_maximum - o->key_minimum + 1;
    // span is 0 when the range is all 2^64 keys (it wrapped): every key, no modulo.
    if (o->pattern == key_pattern::sequential) return o->key_minimum + (span == 0 ? sequence++ : sequence++ % span);
    if (o->pattern == key_pattern::gaussian) {
      // Around the middle of the range, 99.7 % within it (stddev = span / 6); the tails are clamped.
      const double mid = static_cast<double>(o->key_minimum) + static_cast<double>(span - 1) / 2;
      std::normal_distribution<double> d(mid, std::max(1.0, static_cast<double>(span) / 6));
      const double k = std::clamp(d(gauss_rng), static_cast<double>(o->key_minimum), static_cast<double>(o->key_maximum));
      return static_cast<std::uint64_t>(k);
    }
    rng ^= rng << 13;  // xorshift64
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return o->key_minimum + (span == 0 ? rng : rng % span);
  }

  // Picks the next command of the mix and fills the slot's arguments.
  void fill(slot& s) {
    s.spec = mix->next();
    const command_spec& spec = (*specs)[s.spec];
    std::memcpy(s.key, o->key_prefix.data(), o->key_prefix.size());
    char* e = std::to_chars(s.key + o->key_prefix.size(), s.key + sizeof s.key, next_key()).ptr;
    const std::string_view key(s.key, static_cast<std::size_t>(e - s.key));
    s.argc = spec.parts.size();
    for (std::size_t i = 0; i < s.argc; ++i) {
      const command_spec::part& p = spec.parts[i];
      s.argv[i] = p.kind == command_spec::part_kind::key ? key
                  : p.kind == command_spec::part_kind::data ? std::string_view(value)
                                                            : std::string_view(p.text);
    }
    // request::key (slot::key is the buffer the key text lives in)
    static_cast<client::request&>(s).key = spec.routes_by_key ? key : std::string_view();
    s.null_reply = false;
    s.error.clear();
  }

  // The slot's next request: false when the budget is spent. Otherwise the command is filled in and
  // `s.started` is now (closed loop) or the request's scheduled time (open loop), which may lie ahead.
  // Timestamps are the loop's time, read once per turn right after its wait (when the replies
  // arrived): no clock read per request, at the resolution of one turn's dispatch.
  bool begin(slot& s) {
    s.started = open_loop ? open_loop->next() : loop->now();
    if (!b->take(s.started)) return false;
    fill(s);
    return true;
  }

  // Raw mode: the next request of this slot, now or at its scheduled time.
  void start(slot& s) {
    if (!begin(s)) {
      --active;
      return;
    }
    if (open_loop && s.started > clock::now()) {
      loop->arm(s.timer, s.started);
      return;
    }
    s.c->submit(s);
  }

  void record(slot& s, std::error_code ec) {
    // A timeout too: a stalled server ends the run (each request would wait its 10 s out, for
    // days at the default -n), it does not hang it.
    if (ec && (ec == client::errc::connection_lost || ec == client::errc::shutting_down ||
               ec == client::errc::auth_failed || ec == client::errc::protocol_error ||
               ec == client::errc::timeout)) {
      if (fatal.empty()) fatal = ec.message() + ": " + s.c->last_error();
      b->failed = true;
    }
    const auto now = loop->now();
    if (now < record_from) return;
    command_stats& st = stats[s.spec];
    st.latency.record(static_cast<std::uint64_t>(std::max<clock::duration::rep>(0, (now - s.started).count())));
    ++st.completed;
    ++recorded;
    if (ec || !s.error.empty()) {
      ++st.errors;
      ++st.errors_by_kind[ec ? ec.message() : s.error];
    } else {
      ++(s.null_reply ? st.misses : st.hits);
    }
    const auto second = static_cast<std::size_t>((now - record_from) / std::chrono::seconds(1));
    if (second >= per_second.size()) per_second.resize(second + 1);
    ++per_second[second];
    if (live != nullptr && now >= next_publish) publish(now);
  }

  void publish(clock::time_point now) {
    histogram all;
    for (const auto& st : stats) all.merge(st.latency);
    live->publish(index, workers, recorded, all);
    next_publish = now + std::chrono::milliseconds(500);
  }
};

// --auto with --rate: a virtual client sleeps until its request is due.
struct sleep_until {
  slot& s;
  bool await_ready() const noexcept { return s.started <= clock::now(); }
  void await_suspend(std::coroutine_handle<> h) {
    s.sleeper = h;
    s.w->loop->arm(s.timer, s.started);
  }
  void await_resume() const noexcept {}
};

// --auto: one virtual client, awaiting one command at a time on the thread's shared client.
client::detached virtual_client(worker& w, client::client& c, slot& s) {
  while (w.begin(s)) {
    if (w.open_loop) co_await sleep_until{s};
    if (s.abandoned) break;
    // Named like the raw requests' (request::key): the built-in SET and GET route by their key (a
    // null key names none). keyed() builds the awaitable in place; routed_by() would move it.
    auto r = co_await c.keyed<std::optional<resp::ignore_t>>(static_cast<const client::request&>(s).key,
                                                              std::span<const std::string_view>(s.argv.data(), s.argc));
    std::error_code ec;
    if (r) {
      s.null_reply = !r->has_value();
    } else if (r.error().code == resp::errc::server_error) {
      s.error = std::string(r.error().code_word());
    } else {
      ec = r.error().code;
    }
    w.record(s, ec);
  }
  --w.active;
}

void on_due(net::timer* t) {
  slot& s = *static_cast<due_timer*>(t)->owner;
  if (s.sleeper) {
    std::exchange(s.sleeper, {}).resume();
  } else {
    s.c->submit(s);
  }
}

void merge_loads(std::vector<client::cluster_node_load>& into, const std::vector<client::cluster_node_load>& more) {
  for (const auto& l : more) {
    auto it = std::find_if(into.begin(), into.end(), [&](const auto& x) { return x.node == l.node; });
    if (it == into.end()) {
      into.push_back(l);
    } else {
      it->sent += l.sent;
      it->primary = it->primary || l.primary;
    }
  }
}

void run_worker(worker& w, const client::options& target, std::size_t clients, std::size_t pipeline) {
  if (w.cpu >= 0) {  // --cpu: pin before the ring exists, so its kernel work stays local
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w.cpu, &set);
    ::sched_setaffinity(0, sizeof set, &set);
  }
  w.mix.emplace(*w.specs);
  w.stats.assign(w.specs->size(), command_stats{});
  w.per_second.clear();
  w.recorded = 0;
  // A thread's exception would end the process: a loop that cannot be made fails the run instead
  // (the worker's figures, empty, are merged as any other's).
  std::unique_ptr<net::loop> owned;
  try {
    owned = std::make_unique<net::loop>();
  } catch (const std::system_error& e) {
    w.fatal = e.what();
    w.nodes.clear();
    return;
  }
  net::loop& loop = *owned;
  w.loop = &loop;
  std::size_t longest = 0;
  for (const auto& spec : *w.specs) longest = std::max(longest, spec.parts.size());

  // --auto: one client (a pool of `clients` connections) shared by every virtual client of the
  // thread; otherwise one client (connection) per window.
  std::vector<std::unique_ptr<client::client>> conns;
  client::options opts = target;
  if (w.o->auto_pipeline) opts.pool_size = clients;
  for (std::size_t i = 0; i < (w.o->auto_pipeline ? 1 : clients); ++i) {
    conns.push_back(std::make_unique<client::client>(loop, opts));
    conns.back()->start();
  }
  std::vector<slot> slots(clients * pipeline);
  for (std::size_t i = 0; i < slots.size(); ++i) {
    slot& s = slots[i];
    s.w = &w;
    s.c = conns[w.o->auto_pipeline ? 0 : i / pipeline].get();
    s.argv.resize(longest);
    s.timer.owner = &s;
    s.timer.fn = &on_due;
    s.encode = [](client::request& r, resp::writer& out) {
      auto& self = static_cast<slot&>(r);
      out.command(std::span<const std::string_view>(self.argv.data(), self.argc));
    };
    s.argument = [](const client::request& r, std::size_t index, std::string_view& out) {
      const auto& self = static_cast<const slot&>(r);
      if (index >= self.argc) return false;
      out = self.argv[index];
      return true;
    };
    s.on_node = [](client::request& r, const resp::node& n) {
      auto& self = static_cast<slot&>(r);
      if (n.depth != 0) return;
      if (n.data_type == resp::type::null) self.null_reply = true;
      if (resp::is_error(n.data_type)) self.error = std::string(resp::error_code_word(n.value));
    };
    s.on_done = [](client::request& r, std::error_code ec) {
      auto& self = static_cast<slot&>(r);
      self.w->record(self, ec);
      self.w->start(self);
    };
    s.borrows_arguments = true;
  }
  w.active = static_cast<int>(slots.size());
  for (auto& s : slots) {
    if (w.o->auto_pipeline) {
      virtual_client(w, *s.c, s);
    } else {
      w.start(s);
    }
  }
  while (w.active > 0) {
    loop.run_once(std::chrono::milliseconds(100));
    // Halted: an open loop's slots waiting for their scheduled time (far ahead at a low --rate)
    // give up now, not when it comes; Ctrl-C once waited for it.
    if (!w.b->halted()) continue;
    for (slot& s : slots) {
      if (!s.timer.armed()) continue;
      loop.cancel(s.timer);
      s.abandoned = true;
      if (s.sleeper) std::exchange(s.sleeper, {}).resume();  // its virtual client ends (--active)
      else --w.active;
    }
  }
  if (w.live != nullptr) w.publish(clock::now());
  w.nodes.clear();
  for (auto& c : conns) {
    if (c->cluster() != nullptr) merge_loads(w.nodes, c->cluster()->load());
  }
  for (auto& c : conns) c->close();
  conns.clear();
  loop.run_once(std::chrono::milliseconds(0));
}

}  // namespace

void command_stats::merge(const command_stats& o) {
  latency.merge(o.latency);
  completed += o.completed;
  errors += o.errors;
  hits += o.hits;
  misses += o.misses;
  for (const auto& [k, v] : o.errors_by_kind) errors_by_kind[k] += v;
}

std::uint64_t run_result::completed() const noexcept {
  std::uint64_t n = 0;
  for (const auto& c : commands) n += c.stats.completed;
  return n;
}

command_stats run_result::total() const {
  command_stats all;
  for (const auto& c : commands) all.merge(c.stats);
  return all;
}

const command_result* run_result::find(std::string_view name) const noexcept {
  for (const auto& c : commands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

void live_figures::publish(std::size_t i, std::size_t n, std::uint64_t completed, const histogram& latency) {
  const std::lock_guard lock(m_);
  if (workers_.size() < n) workers_.resize(n);
  workers_[i].completed = completed;
  workers_[i].latency = latency;
}

live_figures::snapshot live_figures::read() const {
  snapshot all;
  const std::lock_guard lock(m_);
  for (const auto& w : workers_) {
    all.completed += w.completed;
    all.latency.merge(w.latency);
  }
  return all;
}

run_result run(const bench_options& o, const client::options& target, const std::atomic<bool>* stop, live_figures* live) {
  budget b;
  b.stop = stop;
  const std::vector<command_spec> specs = o.workload();
  const auto threads = static_cast<std::size_t>(o.threads);
  std::vector<worker> workers(threads);
  const std::string value(o.data_size, 'x');
  for (std::size_t t = 0; t < threads; ++t) {
    worker& w = workers[t];
    w.o = &o;
    w.specs = &specs;
    w.b = &b;
    w.index = t;
    w.workers = threads;
    w.value = value;
    w.rng ^= (t + 1) * 0x2545F4914F6CDD1Dull;
    w.sequence = t * 7919;
    w.gauss_rng.seed(t + 1);
    if (!o.cpus.empty()) w.cpu = o.cpus[t % o.cpus.size()];
  }
  auto run_phase = [&](clock::time_point start, clock::time_point record_from) {
    for (auto& w : workers) {
      w.record_from = record_from;
      w.next_publish = start;
      w.live = record_from == clock::time_point::max() ? nullptr : live;
      if (o.rate > 0) {
        w.open_loop.emplace(start, o.rate / static_cast<double>(threads));
      } else {
        w.open_loop.reset();
      }
    }
    std::vector<std::thread> pool;
    for (auto& w : workers) {
      pool.emplace_back([&] { run_worker(w, target, static_cast<std::size_t>(o.clients), static_cast<std::size_t>(o.pipeline)); });
    }
    for (auto& t : pool) t.join();
  };
  // Warm-up phase: the same workload, for a fixed time, not recorded.
  if (o.warmup.count() > 0) {
    b.timed = true;
    const auto start = clock::now();
    b.end = start + o.warmup;
    run_phase(start, clock::time_point::max());
  }
  b.timed = o.test_time.count() > 0;
  b.remaining = static_cast<std::int64_t>(o.requests);
  const auto start = clock::now();
  b.end = start + o.test_time;
  const double cpu0 = cpu_seconds();
  run_phase(start, start);
  run_result r;
  r.client_cpu_seconds = cpu_seconds() - cpu0;
  r.seconds = std::chrono::duration<double>(clock::now() - start).count();
  for (std::size_t i = 0; i < specs.size(); ++i) {
    command_result* row = nullptr;
    for (auto& c : r.commands) {
      if (c.name == specs[i].name) row = &c;
    }
    if (row == nullptr) {
      r.commands.push_back({specs[i].name, specs[i].reports_hits(), {}});
      row = &r.commands.back();
    }
    for (const auto& w : workers) row->stats.merge(w.stats[i]);
  }
  for (const auto& w : workers) {
    if (r.per_second.size() < w.per_second.size()) r.per_second.resize(w.per_second.size());
    for (std::size_t s = 0; s < w.per_second.size(); ++s) r.per_second[s] += w.per_second[s];
    if (r.fatal.empty()) r.fatal = w.fatal;
    merge_loads(r.nodes, w.nodes);
  }
  std::sort(r.nodes.begin(), r.nodes.end(), [](const auto& x, const auto& y) { return x.node < y.node; });
  if (r.fatal.empty() && stop != nullptr && stop->load()) r.fatal = "interrupted";
  return r;
}

}  // namespace redring::bench
