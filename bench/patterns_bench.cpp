// SPDX-License-Identifier: MIT
// The cost of one decision of each pattern against a private redis-server on a Unix socket: every
// limiter algorithm, an uncontended lock acquire + release, a cache hit and a cache miss, a job
// queue's whole cycle (enqueue, reserve, complete), a leaderboard submit, and client-side caching
// (local_cache hits and misses beside a plain GET of the same keys, a read hit of HGETALL beside a
// plain HGETALL, an mget of ten held keys beside MGET, an OPTIN miss). Per row:
// decisions/s, client CPU µs per decision (getrusage), and scripts per decision counted by the
// server (EVALSHA + EVAL calls in INFO commandstats: every command these patterns send is a script;
// each is a round trip, except a cache miss's stampede lock and second read, which leave together),
// beside every command the server ran per decision (the scripts' own calls included).
// Usage: patterns_bench [--decisions N] [--callers C] [--repeat R] [--cpu K]; see bench/README.md.
// Exits 1 if any decision was not "yes" (admitted, acquired, hit / loaded): the figures would lie.
#include "client/client.hpp"
#include "client/detached.hpp"
#include "patterns/cache.hpp"
#include "patterns/job_queue.hpp"
#include "patterns/leaderboard.hpp"
#include "patterns/local_cache.hpp"
#include "patterns/lock.hpp"
#include "patterns/rate_limiter.hpp"

#include "tests/patterns/commandstats.hpp"
#include "tests/support/redis_server.hpp"

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace redring;
using namespace std::chrono_literals;

namespace {

struct settings {
  std::uint64_t decisions = 20000;  // per measured run of a row
  std::size_t callers = 16;         // coroutines with one decision in flight each, on one connection
  int repeat = 3;                   // measured runs per row; medians are reported
  int cpu = -1;                     // pin the bench (not the server) to this CPU after the server started
};

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

// One decision of caller `caller`, the i-th overall: true if it was "yes" (admitted, acquired, hit).
using decide_fn = std::function<patterns::task<bool>(std::size_t caller, std::uint64_t i)>;

struct run_figures {
  double per_second = 0, cpu_us = 0, round_trips = 0, commands = 0, yes = 0;
};

// `n` decisions by `callers` coroutines over the loop; figures per decision.
run_figures run(net::loop& loop, test::blocking_connection& admin, const decide_fn& decide, std::uint64_t n,
                std::size_t callers) {
  std::uint64_t issued = 0, completed = 0, yes = 0;
  auto caller = [&](std::size_t id) -> client::detached {
    while (issued < n) {
      const std::uint64_t i = issued++;
      yes += co_await decide(id, i) ? 1 : 0;
      ++completed;
    }
  };
  const auto before = test::read_command_counts(admin);
  const auto wall0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  for (std::size_t id = 0; id < callers; ++id) caller(id);
  while (completed < n) loop.run_once(100ms);
  const double cpu = cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const auto after = test::read_command_counts(admin);
  const auto per = [n](double x) { return x / static_cast<double>(n); };
  return {static_cast<double>(n) / wall, per(cpu) * 1e6, per(static_cast<double>(after.scripts - before.scripts)),
          per(static_cast<double>(after.commands - before.commands)), per(static_cast<double>(yes))};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs and prints one row; false if a decision in it was not "yes" (an error, or a wrong setup).
bool row(const char* name, net::loop& loop, test::blocking_connection& admin, const decide_fn& decide, const settings& s) {
  // Warm-up: scripts loaded, and every cache key (1,000) stored before the hit row is measured.
  (void)run(loop, admin, decide, std::max<std::uint64_t>(s.decisions / 10, 2000), s.callers);
  std::vector<double> rate, cpu;
  run_figures last;
  for (int r = 0; r < s.repeat; ++r) {
    last = run(loop, admin, decide, s.decisions, s.callers);
    rate.push_back(last.per_second);
    cpu.push_back(last.cpu_us);
  }
  std::printf("%-26s %12.0f %12.2f %14.2f %14.2f %8.2f\n", name, median(rate), median(cpu), last.round_trips,
              last.commands, last.yes);
  std::fflush(stdout);
  return last.yes == 1.0;
}

bool parse(int argc, char** argv, settings& s) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const long long v = std::atoll(argv[++i]);
    if (v < (a == "--cpu" ? 0 : 1)) return false;
    if (a == "--decisions") s.decisions = static_cast<std::uint64_t>(v);
    else if (a == "--callers") s.callers = static_cast<std::size_t>(v);
    else if (a == "--repeat") s.repeat = static_cast<int>(v);
    else if (a == "--cpu") s.cpu = static_cast<int>(v);
    else return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  if (!parse(argc, argv, s)) {
    std::fprintf(stderr, "usage: patterns_bench [--decisions N] [--callers C] [--repeat R] [--cpu K]\n");
    return 2;
  }
  test::redis_server server;  // its own temp dir and Unix socket, persistence off
  if (s.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(s.cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "cannot pin to CPU %d: %s\n", s.cpu, std::strerror(errno));
      return 1;
    }
  }
  test::blocking_connection admin(server.socket_path());
  const std::string version = admin.call({"INFO", "server"}).text;
  const auto v = version.find("redis_version:");
  std::printf("patterns_bench: %llu decisions x %d runs per row (medians), %zu callers on one connection, "
              "redis-server %s at unix:%s\n\n",
              static_cast<unsigned long long>(s.decisions), s.repeat, s.callers,
              v == std::string::npos ? "?" : version.substr(v + 14, version.find('\r', v) - v - 14).c_str(),
              server.socket_path().c_str());
  std::printf("%-26s %12s %12s %14s %14s %8s\n", "decision", "decisions/s", "CPU us/dec", "scripts/dec",
              "server cmds/dec", "yes");

  net::loop loop;
  client::options opts;
  opts.unix_path = server.socket_path();
  client::client redis(loop, opts);
  bool ok = true;

  // Limiters: 1,000 names in turn, 1,000,000 per minute each, so every decision is admitted and the
  // state is real (the sliding log holds every admitted hit).
  std::vector<std::string> names;
  for (int i = 0; i < 1000; ++i) names.push_back("user:" + std::to_string(i));
  const std::pair<patterns::limiter_algorithm, const char*> algorithms[] = {
      {patterns::limiter_algorithm::fixed_window, "limiter fixed_window"},
      {patterns::limiter_algorithm::sliding_log, "limiter sliding_log"},
      {patterns::limiter_algorithm::sliding_window, "limiter sliding_window"},
      {patterns::limiter_algorithm::token_bucket, "limiter token_bucket"},
      {patterns::limiter_algorithm::gcra, "limiter gcra"}};
  for (const auto& [algorithm, name] : algorithms) {
    patterns::rate_limiter limiter(redis, {.algorithm = algorithm, .limit = 1'000'000, .period = 60s, .timeout = 5s});
    const decide_fn hit = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
      co_return (co_await limiter.hit(names[i % names.size()])).allowed;
    };
    ok = row(name, loop, admin, hit, s) && ok;
  }

  // Lock: each caller its own name (uncontended); one decision = acquire + release.
  patterns::lock locks(redis, {.ttl = 10s, .timeout = 5s});
  const decide_fn acquire_release = [&](std::size_t caller, std::uint64_t) -> patterns::task<bool> {
    auto held = co_await locks.acquire(names[caller]);
    if (!held) co_return false;
    co_return (co_await locks.release(*held)).value_or(false);
  };
  ok = row("lock acquire+release", loop, admin, acquire_release, s) && ok;

  // Cache: hits over 1,000 keys loaded once; misses of keys never seen (read, stampede lock, store,
  // unlock), with a loader that answers at once.
  patterns::cache cache(redis, {.ttl = 600s, .timeout = 5s});
  const patterns::loader load = []() -> patterns::task<patterns::load_result> {
    co_return patterns::load_result(std::optional<std::string>("a value of some thirty bytes.."));
  };
  const decide_fn hit = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    const auto r = co_await cache.get_or_load(names[i % names.size()], load);
    co_return r && r->source == patterns::cache_source::hit;
  };
  std::uint64_t fresh = 0;
  const decide_fn miss = [&](std::size_t, std::uint64_t) -> patterns::task<bool> {
    const std::string key = "new:" + std::to_string(fresh++);
    const auto r = co_await cache.get_or_load(key, load);
    co_return r && r->source == patterns::cache_source::loaded;
  };
  ok = row("cache hit", loop, admin, hit, s) && ok;
  ok = row("cache miss (load, store)", loop, admin, miss, s) && ok;

  // Client-side caching (local_cache over CLIENT TRACKING), against a plain GET of the same keys:
  // hits over 1,000 keys read once, and misses of keys never seen (GET + PTTL in one write).
  for (const auto& n : names) (void)admin.call({"SET", "lc:" + n, "a value of some thirty bytes.."});
  client::options tracked = opts;
  tracked.tracking.enabled = true;
  client::client tracking_client(loop, tracked);
  patterns::local_cache local(tracking_client, {.max_entries = 100'000});
  const decide_fn plain_get = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    const auto r = co_await redis.get("lc:" + names[i % names.size()]);
    co_return r && r->has_value();
  };
  const decide_fn local_hit = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    const auto r = co_await local.get("lc:" + names[i % names.size()]);
    co_return r && r->has_value();
  };
  std::uint64_t unseen = 0;
  const decide_fn local_miss = [&](std::size_t, std::uint64_t) -> patterns::task<bool> {
    const auto r = co_await local.get("lc:unseen:" + std::to_string(unseen++));
    co_return r && !r->has_value();
  };
  ok = row("GET (no local cache)", loop, admin, plain_get, s) && ok;
  ok = row("local_cache hit", loop, admin, local_hit, s) && ok;
  ok = row("local_cache miss (GET+PTTL)", loop, admin, local_miss, s) && ok;
  // Any read-only one-key command through the same cache: HGETALL of a hash of three fields.
  for (const auto& n : names) (void)admin.call({"HSET", "lh:" + n, "name", "ada", "lang", "c++", "visits", "12345"});
  const decide_fn plain_hgetall = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    const auto r = co_await redis.command<resp::value>("HGETALL", "lh:" + names[i % names.size()]);
    co_return r && r->elements.size() == 6;
  };
  const decide_fn local_read_hit = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    const std::string key = "lh:" + names[i % names.size()];
    const auto r = co_await local.read("HGETALL", key);
    co_return r && r->elements.size() == 6;
  };
  ok = row("HGETALL (no local cache)", loop, admin, plain_hgetall, s) && ok;
  ok = row("local_cache read hit (HGETALL)", loop, admin, local_read_hit, s) && ok;
  // Ten keys at once: MGET against local_cache::mget of held keys (one decision = ten values).
  const decide_fn plain_mget = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    std::vector<std::string> keys;
    for (std::size_t j = 0; j < 10; ++j) keys.push_back("lc:" + names[(i * 10 + j) % names.size()]);
    const auto r = co_await redis.command<std::vector<std::optional<std::string>>>("MGET", keys);
    co_return r && r->size() == 10 && (*r)[9].has_value();
  };
  const decide_fn local_mget = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    std::vector<std::string> keys;
    for (std::size_t j = 0; j < 10; ++j) keys.push_back("lc:" + names[(i * 10 + j) % names.size()]);
    const std::vector<std::string_view> views(keys.begin(), keys.end());
    const auto r = co_await local.mget(views);
    co_return r && r->size() == 10 && (*r)[9].has_value();
  };
  ok = row("MGET of 10 (no local cache)", loop, admin, plain_mget, s) && ok;
  ok = row("local_cache mget of 10 held", loop, admin, local_mget, s) && ok;
  // OPTIN tracking: a miss is MULTI, CLIENT CACHING yes, GET, PTTL, EXEC; hits are the same.
  client::options optin = tracked;
  optin.tracking.optin = true;
  client::client optin_client(loop, optin);
  patterns::local_cache optin_cache(optin_client, {.max_entries = 100'000});
  const decide_fn optin_miss = [&](std::size_t, std::uint64_t) -> patterns::task<bool> {
    const auto r = co_await optin_cache.get("lc:unseen:" + std::to_string(unseen++));
    co_return r && !r->has_value();
  };
  ok = row("local_cache miss, OPTIN (MULTI..EXEC)", loop, admin, optin_miss, s) && ok;

  // Job queue: one decision = one job's whole cycle, enqueue + reserve + complete (three scripts).
  // Each caller reserves after its own enqueue, so a job is always ready (the reserve may take
  // another caller's).
  patterns::job_queue jobs(redis, "bench", {.timeout = 5s});
  const decide_fn cycle = [&](std::size_t, std::uint64_t) -> patterns::task<bool> {
    if (!co_await jobs.enqueue("a payload of some thirty bytes")) co_return false;
    auto j = co_await jobs.reserve();
    if (!j || !*j) co_return false;
    co_return (co_await jobs.complete(**j)).value_or(false);
  };
  ok = row("job enqueue+reserve+complete", loop, admin, cycle, s) && ok;

  // Leaderboard: a best-score submit for 1,000 players in turn (the standing read in the same script).
  patterns::leaderboard board(redis, "bench", {.timeout = 5s});
  const decide_fn submit = [&](std::size_t, std::uint64_t i) -> patterns::task<bool> {
    co_return static_cast<bool>(co_await board.submit(names[i % names.size()], static_cast<double>(i % 5000)));
  };
  ok = row("leaderboard submit", loop, admin, submit, s) && ok;
  if (!ok) std::fprintf(stderr, "patterns_bench: some decisions were not \"yes\" (see the last column)\n");
  return ok ? 0 : 1;
}
