// SPDX-License-Identifier: MIT
// A rate limiter behind an HTTP-style handler: RateLimit-* and Retry-After headers from each
// decision, then the cost of a decision (decisions/s, client CPU, round trips per decision).
// Usage: patterns_rate_limiter [redis://host:port | unix:///path] [decisions]   (default 20000)
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/url.hpp"
#include "patterns/rate_limiter.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace redring;
using namespace std::chrono_literals;

namespace {

struct response {
  int status = 200;
  std::string headers;
};

// What a web server's handler does with a decision.
response to_response(const patterns::decision& d) {
  response r;
  r.status = d.allowed ? 200 : 429;
  r.headers.append("RateLimit-Limit: ").append(std::to_string(d.limit));
  r.headers.append("\nRateLimit-Remaining: ").append(std::to_string(d.remaining));
  // Whole seconds, rounded up, as the headers want them.
  r.headers.append("\nRateLimit-Reset: ").append(std::to_string((d.reset_after.count() + 999) / 1000));
  if (!d.allowed && d.retry_after != patterns::decision::never) {
    r.headers.append("\nRetry-After: ").append(std::to_string((d.retry_after.count() + 999) / 1000));
  }
  if (d.failure) r.headers.append("\nX-RateLimit-Degraded: ").append(d.failure->what());
  return r;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  const long decisions = argc > 2 ? std::atol(argv[2]) : 20000;
  net::loop loop;
  client::client redis(loop, opts);
  // 5 requests per second per user, bursts of 5; GCRA keeps one timestamp per user.
  patterns::rate_limiter limiter(redis, {.algorithm = patterns::limiter_algorithm::gcra, .limit = 5, .period = 1s});
  bool ok = true, finished = false;
  auto demo = [&]() -> client::detached {
    if (auto r = co_await limiter.reset("alice"); !r) {
      std::fprintf(stderr, "Redis unreachable: %s\n", r.error().what().c_str());
      ok = false;
    }
    for (int i = 0; i < 7 && ok; ++i) {  // the 6th and 7th requests of the same second are refused
      const auto r = to_response(co_await limiter.hit("alice"));
      std::printf("request %d -> %d\n%s\n", i + 1, r.status, r.headers.c_str());
      ok = ok && r.status == (i < 5 ? 200 : 429);
    }
    finished = true;
  };
  demo();
  while (!finished) loop.run_once(100ms);
  if (!ok) return 1;

  // The cost of a decision: 64 callers with one decision in flight each, over one connection.
  std::int64_t evalsha_calls = 0;
  auto read_calls = [&]() -> client::detached {
    finished = false;
    const auto info = co_await redis.info("commandstats");
    const auto line = info ? info->get("commandstats", "cmdstat_evalsha") : std::nullopt;  // calls=N,usec=...
    evalsha_calls = line ? std::atoll(std::string(line->substr(line->find('=') + 1)).c_str()) : 0;
    finished = true;
  };
  read_calls();
  while (!finished) loop.run_once(100ms);
  const auto calls_before = evalsha_calls;

  long issued = 0, completed = 0, admitted = 0;
  auto caller = [&](int id) -> client::detached {
    const std::string name = "bench:" + std::to_string(id);
    while (issued < decisions) {
      ++issued;
      const auto d = co_await limiter.hit(name);
      admitted += d.allowed ? 1 : 0;
      ++completed;
    }
  };
  const auto wall0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  for (int id = 0; id < 64; ++id) caller(id);
  while (completed < issued || issued < decisions) loop.run_once(100ms);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const double cpu = cpu_seconds() - cpu0;
  read_calls();
  while (!finished) loop.run_once(100ms);
  std::printf("%ld decisions (%ld admitted) in %.3f s: %.0f decisions/s, client CPU %.2f us/decision, "
              "%.2f EVALSHA per decision\n",
              completed, admitted, wall, static_cast<double>(completed) / wall, cpu * 1e6 / static_cast<double>(completed),
              static_cast<double>(evalsha_calls - calls_before) / static_cast<double>(completed));
  return 0;
}
