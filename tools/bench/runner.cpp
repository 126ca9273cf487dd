// SPDX-License-Identifier: MIT
#include "tools/bench/runner.hpp"

#include "client/client.hpp"
#include "client/detached.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <random>

#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

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
  bool take() {
    if (failed.load(std::memory_order_relaxed) || (stop != nullptr && stop->load(std::memory_order_relaxed))) return false;
    if (timed) return clock::now() < end;
    return remaining.fetch_sub(1, std::memory_order_relaxed) > 0;
  }
};

struct worker;

// One request slot of a connection's window; resubmits itself from its completion.
struct operation : client::request {
  worker* w = nullptr;
  client::client* c = nullptr;
  bool is_set = false;
  bool null_reply = false;
  std::string error;  // the error reply's code word, if any
  clock::time_point started;
  char key[96];
  std::size_t key_size = 0;
};

struct worker {
  const bench_options* o = nullptr;
  budget* b = nullptr;
  std::string value;
  std::uint64_t rng = 0x9E3779B97F4A7C15ull, sequence = 0, mix = 0;
  clock::time_point record_from{};
  command_stats get, set;
  int active = 0;
  int cpu = -1;
  std::string fatal;

  std::mt19937_64 gauss_rng{42};

  std::uint64_t next_key() {
    const std::uint64_t span = o->key_maximum - o->key_minimum + 1;
    if (o->pattern == key_pattern::sequential) return o->key_minimum + (sequence++ % span);
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

  void start(operation& op) {
    if (!b->take()) {
      --active;
      return;
    }
    op.is_set = (mix++ % (o->set_ratio + o->get_ratio)) < o->set_ratio;
    std::memcpy(op.key, o->key_prefix.data(), o->key_prefix.size());
    char* e = std::to_chars(op.key + o->key_prefix.size(), op.key + sizeof op.key, next_key()).ptr;
    op.key_size = static_cast<std::size_t>(e - op.key);
    op.null_reply = false;
    op.error.clear();
    op.started = clock::now();
    op.c->submit(op);
  }

  void finish(operation& op, std::error_code ec) {
    const auto now = clock::now();
    if (now >= record_from) {
      command_stats& s = op.is_set ? set : get;
      s.latency.record(static_cast<std::uint64_t>((now - op.started).count()));
      ++s.completed;
      if (ec || !op.error.empty()) {
        ++s.errors;
        ++s.errors_by_kind[ec ? ec.message() : op.error];
      } else if (!op.is_set) {
        ++(op.null_reply ? s.misses : s.hits);
      }
    }
    if (ec && (ec == client::errc::connection_lost || ec == client::errc::shutting_down ||
               ec == client::errc::auth_failed || ec == client::errc::protocol_error)) {
      if (fatal.empty()) fatal = ec.message() + ": " + op.c->conn().last_error();
      b->failed = true;
    }
    start(op);
  }
};

void run_worker(worker& w, const client::options& target, std::size_t clients, std::size_t pipeline) {
  if (w.cpu >= 0) {  // --cpu: pin before the ring exists, so its kernel work stays local
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w.cpu, &set);
    ::sched_setaffinity(0, sizeof set, &set);
  }
  net::loop loop;
  std::vector<std::unique_ptr<client::client>> conns;
  for (std::size_t i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<client::client>(loop, target));
    conns.back()->start();
  }
  std::vector<operation> ops(clients * pipeline);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    operation& op = ops[i];
    op.w = &w;
    op.c = conns[i / pipeline].get();
    op.encode = [](client::request& r, resp::writer& out) {
      auto& self = static_cast<operation&>(r);
      const std::string_view key(self.key, self.key_size);
      if (self.is_set) {
        out.command("SET", key, std::string_view(self.w->value));
      } else {
        out.command("GET", key);
      }
    };
    op.on_node = [](client::request& r, const resp::node& n) {
      auto& self = static_cast<operation&>(r);
      if (n.depth != 0) return;
      if (n.data_type == resp::type::null) self.null_reply = true;
      if (resp::is_error(n.data_type)) self.error = std::string(resp::error_code_word(n.value));
    };
    op.on_done = [](client::request& r, std::error_code ec) {
      auto& self = static_cast<operation&>(r);
      self.w->finish(self, ec);
    };
    op.borrows_arguments = true;
  }
  w.active = static_cast<int>(ops.size());
  for (auto& op : ops) w.start(op);
  while (w.active > 0) loop.run_once(std::chrono::milliseconds(100));
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

run_result run(const bench_options& o, const client::options& target, const std::atomic<bool>* stop) {
  budget b;
  b.stop = stop;
  const auto threads = static_cast<std::size_t>(o.threads);
  std::vector<worker> workers(threads);
  const std::string value(o.data_size, 'x');
  for (std::size_t t = 0; t < threads; ++t) {
    workers[t].o = &o;
    workers[t].b = &b;
    workers[t].value = value;
    workers[t].rng ^= (t + 1) * 0x2545F4914F6CDD1Dull;
    workers[t].sequence = t * 7919;
    workers[t].gauss_rng.seed(t + 1);
    if (!o.cpus.empty()) workers[t].cpu = o.cpus[t % o.cpus.size()];
  }
  // Warm-up phase: the same workload, for a fixed time, not recorded.
  if (o.warmup.count() > 0) {
    b.timed = true;
    b.end = clock::now() + o.warmup;
    for (auto& w : workers) w.record_from = clock::time_point::max();
    std::vector<std::thread> pool;
    for (auto& w : workers) pool.emplace_back([&] { run_worker(w, target, static_cast<std::size_t>(o.clients), static_cast<std::size_t>(o.pipeline)); });
    for (auto& t : pool) t.join();
  }
  b.timed = o.test_time.count() > 0;
  b.remaining = static_cast<std::int64_t>(o.requests);
  const auto start = clock::now();
  b.end = start + o.test_time;
  for (auto& w : workers) {
    w.record_from = start;
    w.get = {};
    w.set = {};
  }
  const double cpu0 = cpu_seconds();
  std::vector<std::thread> pool;
  for (auto& w : workers) pool.emplace_back([&] { run_worker(w, target, static_cast<std::size_t>(o.clients), static_cast<std::size_t>(o.pipeline)); });
  for (auto& t : pool) t.join();
  run_result r;
  r.client_cpu_seconds = cpu_seconds() - cpu0;
  r.seconds = std::chrono::duration<double>(clock::now() - start).count();
  for (auto& w : workers) {
    r.get.merge(w.get);
    r.set.merge(w.set);
    if (r.fatal.empty()) r.fatal = w.fatal;
  }
  if (r.fatal.empty() && stop != nullptr && stop->load()) r.fatal = "interrupted";
  return r;
}

}  // namespace redring::bench
