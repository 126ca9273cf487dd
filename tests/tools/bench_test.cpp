// SPDX-License-Identifier: MIT
// redring-bench: option parsing (every bad input), the histogram's accuracy, and end-to-end runs
// against a private server, whose own counters must agree with the report.
#include "tools/bench/bench_options.hpp"
#include "tools/bench/histogram.hpp"

#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <thread>

namespace redring::bench {
namespace {

std::optional<std::string> parse(std::vector<std::string> args, bench_options* out = nullptr) {
  bench_options o;
  auto r = parse_options(args, o);
  if (out != nullptr) *out = o;
  return r;
}

TEST(BenchOptions, Defaults) {
  bench_options o;
  ASSERT_EQ(parse({}, &o), std::nullopt);
  EXPECT_TRUE(o.embedded());
  EXPECT_EQ(o.requests, 100000u);
  EXPECT_EQ(o.get_ratio, 10u);
}

TEST(BenchOptions, AllOptions) {
  bench_options o;
  ASSERT_EQ(parse({"-h", "127.0.0.1", "-p", "7000", "-a", "pw", "--user", "u", "-t", "2", "-c", "8", "-P", "512",
                   "--test-time", "1.5", "--warmup", "0.5", "--ratio", "1:3", "-d", "100", "--key-prefix", "k",
                   "--key-minimum", "5", "--key-maximum", "50", "--key-pattern", "S", "--json", "out.json", "--quiet"},
                  &o),
            std::nullopt);
  EXPECT_FALSE(o.embedded());
  EXPECT_EQ(o.port, 7000);
  EXPECT_EQ(o.test_time.count(), 1500);
  EXPECT_EQ(o.warmup.count(), 500);
  EXPECT_EQ(o.set_ratio, 1u);
  EXPECT_EQ(o.get_ratio, 3u);
  EXPECT_EQ(o.pattern, key_pattern::sequential);
  bench_options g;
  ASSERT_EQ(parse({"--key-pattern", "G", "--cpu", "0,2-3"}, &g), std::nullopt);
  EXPECT_EQ(g.pattern, key_pattern::gaussian);
  EXPECT_EQ(g.cpus, (std::vector<int>{0, 2, 3}));
  EXPECT_TRUE(o.quiet);
  const auto c = o.client_options();
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.password, "pw");
  bench_options u;
  ASSERT_EQ(parse({"-u", "unix:///tmp/x.sock?db=2"}, &u), std::nullopt);
  EXPECT_EQ(u.client_options().unix_path, "/tmp/x.sock");
  EXPECT_EQ(u.client_options().database, 2);
}

TEST(BenchOptions, EveryBadInputNamesTheOption) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{"-p"}, "-p needs"},
      {{"-p", "0"}, "-p must be a port"},
      {{"-p", "70000"}, "-p must be"},
      {{"-p", "x"}, "-p must be"},
      {{"-h"}, "-h needs"},
      {{"-s"}, "-s needs"},
      {{"-u", "http://x"}, "-u: unknown scheme"},
      {{"-u", "rediss://x"}, "-u: rediss://"},
      {{"-c", "0"}, "-c must be 1-10000"},
      {{"-t", "-1"}, "-t must be"},
      {{"-P", "abc"}, "-P must be"},
      {{"-n", "0"}, "-n must be a positive number"},
      {{"--test-time", "0"}, "--test-time must be seconds"},
      {{"--test-time", "1", "-n", "5"}, "either -n or --test-time"},
      {{"--ratio", "1"}, "--ratio must be SET:GET"},
      {{"--ratio", "0:0"}, "--ratio must be SET:GET"},
      {{"-d", "-3"}, "-d must be a size"},
      {{"--key-pattern", "Z"}, "--key-pattern must be R"},
      {{"--cpu", "x"}, "--cpu must be a CPU list"},
      {{"--cpu", "3-1"}, "--cpu must be a CPU list"},
      {{"--cpu"}, "--cpu needs"},
      {{"--key-minimum", "10", "--key-maximum", "5"}, "--key-minimum must not exceed"},
      {{"-p", "1", "-s", "/x"}, "either -p or -s"},
      {{"--json"}, "--json needs"},
      {{"--bogus"}, "unknown option '--bogus'"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = parse(args);
    ASSERT_TRUE(r.has_value()) << args[0];
    EXPECT_NE(r->find(message), std::string::npos) << *r;
  }
  EXPECT_EQ(parse({"--help"}), std::optional<std::string>("help"));
}

TEST(Histogram, PercentilesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> values;
  std::exponential_distribution<double> expo(1.0 / 50000.0);
  for (int i = 0; i < 200000; ++i) values.push_back(static_cast<std::uint64_t>(expo(rng)) + 1);
  for (int i = 0; i < 1000; ++i) values.push_back(1000000000ull + rng() % 1000000000ull);  // a far tail
  histogram h;
  for (const auto v : values) h.record(v);
  std::sort(values.begin(), values.end());
  for (const double p : {1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const auto exact = values[static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size()))) - 1];
    const auto got = h.percentile(p);
    EXPECT_LE(std::abs(static_cast<double>(got) - static_cast<double>(exact)), 0.01 * static_cast<double>(exact) + 1)
        << "p" << p << " exact " << exact << " got " << got;
  }
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.count(), values.size());
  histogram constant;
  for (int i = 0; i < 10; ++i) constant.record(12345);
  EXPECT_EQ(constant.percentile(50), 12345u);  // clamped to [min, max]
  histogram merged;
  merged.merge(h);
  merged.merge(constant);
  EXPECT_EQ(merged.count(), h.count() + 10);
  EXPECT_EQ(histogram().percentile(99), 0u);
  for (std::uint64_t v : {0ull, 1ull, 255ull, 256ull, 257ull, 1000ull, 123456789ull, (1ull << 40) - 1}) {
    const auto i = histogram::index_of(v);
    EXPECT_LE(histogram::low_of(i), v);
    EXPECT_GE(histogram::high_of(i), v);
  }
}

struct program_output {
  int status = -1;
  std::string out;
};

program_output run_bench(const std::string& args) {
  const std::string out_file = "/tmp/redring-bench-test-" + std::to_string(::getpid()) + ".out";
  const int raw = std::system((std::string(REDRING_BENCH_PATH) + " " + args + " > " + out_file + " 2>&1").c_str());
  program_output r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream f(out_file);
  r.out.assign(std::istreambuf_iterator<char>(f), {});
  std::remove(out_file.c_str());
  return r;
}

// The number after the first `"key":` in `json` (from `from`); 0 if absent.
std::uint64_t json_number(const std::string& json, const std::string& key, std::size_t from = 0) {
  const auto at = json.find("\"" + key + "\":", from);
  if (at == std::string::npos) return 0;
  return static_cast<std::uint64_t>(std::stod(json.substr(at + key.size() + 3)));
}

TEST(BenchEndToEnd, EmbeddedServerReportAgreesWithServerCounters) {
  const std::string json_file = "/tmp/redring-bench-test-" + std::to_string(::getpid()) + ".json";
  const auto r = run_bench("-n 20000 -c 2 -P 16 --ratio 1:1 --json " + json_file);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("20000 requests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("private redis-server"), std::string::npos);
  EXPECT_NE(r.out.find("errors: none"), std::string::npos);
  std::ifstream f(json_file);
  const std::string json(std::istreambuf_iterator<char>(f), {});
  std::remove(json_file.c_str());
  ASSERT_FALSE(json.empty());
  EXPECT_EQ(json_number(json, "requests"), 20000u);
  // The server counted every request, plus a few of our own (HELLO, INFO): no more than that.
  const std::uint64_t server_commands = json_number(json, "commands");
  EXPECT_GE(server_commands, 20000u);
  EXPECT_LE(server_commands, 20000u + 20);
  EXPECT_NE(json.find("\"histogram_ns\":[["), std::string::npos);
  // GET hits and misses add up to the GETs.
  const auto get = json.find("\"GET\":{");
  ASSERT_NE(get, std::string::npos);
  EXPECT_EQ(json_number(json, "requests", get), 10000u);
  EXPECT_EQ(json_number(json, "errors", get), 0u);
  EXPECT_EQ(json_number(json, "hits", get) + json_number(json, "misses", get), 10000u);
}

TEST(BenchEndToEnd, ExternalServerByUrlAndTimedRun) {
  test::redis_server server;
  const auto r = run_bench("-u unix://" + server.socket_path() + " --test-time 0.5 --warmup 0.2 -c 2 -P 4 --key-pattern S --quiet");
  const auto g = run_bench("-s " + server.socket_path() + " -n 2000 -t 2 --cpu 0-1 --key-pattern G --quiet");
  EXPECT_EQ(g.status, 0) << g.out;
  EXPECT_NE(g.out.find("2000 requests"), std::string::npos) << g.out;
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("ops/s"), std::string::npos);
  EXPECT_EQ(r.out.find("p99.9"), std::string::npos);  // --quiet: the summary line only
}

TEST(BenchEndToEnd, UnreachableServerIsAClearError) {
  const auto r = run_bench("-s /nonexistent/redis.sock -n 10");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("cannot reach the server at unix:/nonexistent/redis.sock"), std::string::npos) << r.out;
  const auto bad = run_bench("-c zero");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("-c must be"), std::string::npos);
}

TEST(BenchEndToEnd, ServerDyingMidRunIsReportedWithPartialResults) {
  auto server = std::make_unique<test::redis_server>();
  const pid_t pid = server->pid();
  std::thread killer([pid] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    ::kill(pid, SIGKILL);
  });
  const auto r = run_bench("-s " + server->socket_path() + " --test-time 20 -P 8");
  killer.join();
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("run cut short: connection lost"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("requests in"), std::string::npos);  // the partial report is still there
}

}  // namespace
}  // namespace redring::bench
