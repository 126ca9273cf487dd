// SPDX-License-Identifier: MIT
// redring-bench: option parsing (every bad input), the histogram's accuracy, and end-to-end runs
// against a private server, whose own counters must agree with the report.
#include "tools/bench/bench_options.hpp"
#include "tools/bench/embedded_server.hpp"
#include "tools/bench/histogram.hpp"
#include "tools/bench/report.hpp"
#include "tools/bench/runner.hpp"
#include "tools/bench/workload.hpp"

#include "tests/support/no_io_uring.hpp"
#include "tests/support/redis_sentinel.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

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
      {{"-u", "rediss://x?tls_verify=maybe"}, "-u: tls_verify must be yes or no"},
      {{"-c", "0"}, "-c must be 1-10000"},
      {{"-t", "-1"}, "-t must be"},
      {{"-P", "abc"}, "-P must be"},
      {{"-n", "0"}, "-n must be a positive number"},
      {{"--test-time", "0"}, "--test-time must be seconds, 0.001-86400"},
      {{"--test-time", "nan"}, "--test-time must be seconds"},      // once a run of nothing, exit 0
      {{"--test-time", "0.0001"}, "--test-time must be seconds"},   // once truncated to 0: -n 100000
      {{"--warmup", "nan"}, "--warmup must be seconds"},
      {{"--ratio", "4294967295:1"}, "--ratio must be SET:GET"},     // once wrapped to "both 0"
      {{"--ratio", "4294967295:2"}, "--ratio must be SET:GET"},     // once accepted, wrapped to 1
      {{"--warmup", "-1"}, "--warmup must be seconds"},
      {{"--key-prefix", std::string(65, 'k')}, "--key-prefix must be at most 64 bytes"},
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
      // One target: with two, one of them was silently ignored.
      {{"-s", "/x", "-h", "127.0.0.1"}, "either -h or -s"},
      {{"-h", "127.0.0.1", "-s", "/x"}, "either -h or -s"},
      {{"-s", "/x", "-u", "redis://127.0.0.1"}, "either -u or -s"},
      {{"-u", "unix:///x", "-s", "/y"}, "either -u or -s"},
      {{"-u", "redis://127.0.0.1:7000", "-h", "10.0.0.1"}, "either -u or -h/-p"},
      {{"-u", "redis://127.0.0.1:7000", "-p", "7001"}, "either -u or -h/-p"},
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

TEST(BenchOptions, ClusterOptions) {
  bench_options o;
  ASSERT_FALSE(parse_options({"--cluster"}, o));
  EXPECT_TRUE(o.cluster);
  EXPECT_TRUE(o.client_options().cluster.enabled);
  bench_options p;
  ASSERT_FALSE(parse_options({"--cluster-shards", "5"}, p));
  EXPECT_TRUE(p.cluster);
  EXPECT_EQ(p.cluster_shards, 5);
  bench_options q;
  EXPECT_NE(parse_options({"--cluster-shards", "0"}, q).value_or("").find("--cluster-shards"), std::string::npos);
  EXPECT_NE(parse_options({"--cluster-shards", "x"}, q).value_or("").find("--cluster-shards"), std::string::npos);
  EXPECT_NE(parse_options({"--cluster-shards"}, q).value_or("").find("--cluster-shards"), std::string::npos);
}

TEST(BenchOptions, ZeroWarmupMeansNone) {
  bench_options o;
  ASSERT_EQ(parse({"--warmup", "0", "--test-time", "0.5"}, &o), std::nullopt);
  EXPECT_EQ(o.warmup.count(), 0);
}

TEST(BenchOptions, CommandTemplatesAndWeights) {
  bench_options o;
  ASSERT_EQ(parse({"--command", "hset h:__key__ \"a field\" __data__", "--command-ratio", "3", "--command", "HGET h:__key__ \"a field\"",
                   "--auto", "--rate", "2500.5", "--svg", "plot.svg", "--progress"}, &o),
            std::nullopt);
  ASSERT_EQ(o.commands.size(), 2u);
  const command_spec& hset = o.commands[0];
  EXPECT_EQ(hset.name, "HSET");
  EXPECT_EQ(hset.weight, 3u);
  ASSERT_EQ(hset.parts.size(), 4u);
  EXPECT_EQ(hset.parts[0].text, "hset");
  EXPECT_EQ(hset.parts[1].kind, command_spec::part_kind::literal);  // "h:__key__": placeholders are whole words
  EXPECT_EQ(hset.parts[1].text, "h:__key__");
  EXPECT_EQ(hset.parts[2].text, "a field");
  EXPECT_EQ(hset.parts[3].kind, command_spec::part_kind::data);
  EXPECT_EQ(o.commands[1].weight, 1u);
  EXPECT_TRUE(o.auto_pipeline);
  EXPECT_DOUBLE_EQ(o.rate, 2500.5);
  EXPECT_EQ(o.svg_path, "plot.svg");
  EXPECT_TRUE(o.progress);
  EXPECT_EQ(o.workload().size(), 2u);

  std::string why;
  const auto get = parse_command("GET __key__", why);
  ASSERT_TRUE(get);
  EXPECT_EQ(get->parts[1].kind, command_spec::part_kind::key);
  EXPECT_TRUE(get->reports_hits());
  const auto quoted = parse_command(R"(SET "__key__" "x\"y\\z")", why);
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->parts[1].kind, command_spec::part_kind::literal);  // quoted: sent as written
  EXPECT_EQ(quoted->parts[2].text, "x\"y\\z");

  // The default mix follows --ratio; a weight of 0 leaves the command out.
  bench_options d;
  ASSERT_EQ(parse({"--ratio", "0:1"}, &d), std::nullopt);
  ASSERT_EQ(d.workload().size(), 1u);
  EXPECT_EQ(d.workload()[0].name, "GET");
}

TEST(BenchOptions, BadCommandsAndRates) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--command", ""}, "--command: empty command"},
      {{"--command", "   "}, "--command: empty command"},
      {{"--command", "SET \"k v"}, "unterminated quote"},
      {{"--command", "__key__ GET"}, "must start with its name"},
      {{"--command"}, "--command needs"},
      {{"--command-ratio", "2"}, "--command-ratio must follow a --command"},
      {{"--command", "GET k", "--command-ratio", "-1"}, "--command-ratio must be"},
      {{"--command", "GET k", "--command-ratio", "0"}, "every --command has weight 0"},
      {{"--rate", "0"}, "--rate must be"},
      {{"--rate", "fast"}, "--rate must be"},
      {{"--rate", "nan"}, "--rate must be"},
      {{"--rate", "1e-9"}, "--rate must be"},  // a request every 31 years: Ctrl-C once waited for it
      {{"--rate"}, "--rate needs"},
      {{"--svg"}, "--svg needs"},
  };
  for (const auto& [args, message] : cases) {
    const auto r = parse(args);
    ASSERT_TRUE(r.has_value()) << args[0];
    EXPECT_NE(r->find(message), std::string::npos) << *r;
  }
}

TEST(Workload, MixFollowsTheWeightsExactly) {
  auto specs = default_workload(1, 10);
  command_mix mix(specs);
  for (int cycle = 0; cycle < 50; ++cycle) {
    int sets = 0;
    for (int i = 0; i < 11; ++i) sets += specs[mix.next()].name == "SET" ? 1 : 0;
    EXPECT_EQ(sets, 1);  // exactly one SET in every 11 commands
  }
  // The built-in SET and GET name their key for a cluster client; a template's __key__ may be a
  // field, so templates do not.
  for (const auto& spec : specs) EXPECT_TRUE(spec.routes_by_key) << spec.name;
  std::string why;
  EXPECT_FALSE(parse_command("HSET h:1 __key__ __data__", why)->routes_by_key);
  EXPECT_FALSE(parse_command("GET __key__", why)->routes_by_key);
  std::vector<command_spec> three = {*parse_command("A", why), *parse_command("B", why), *parse_command("C", why)};
  three[0].weight = 5;
  three[1].weight = 3;
  three[2].weight = 2;
  command_mix m3(three);
  int counts[3] = {};
  for (int i = 0; i < 1000; ++i) ++counts[m3.next()];
  EXPECT_EQ(counts[0], 500);
  EXPECT_EQ(counts[1], 300);
  EXPECT_EQ(counts[2], 200);
}

TEST(OpenLoop, ScheduleSpacesRequestsEvenly) {
  const auto start = schedule::clock::now();
  schedule s(start, 4000);  // one every 250 us
  for (int k = 0; k < 10000; ++k) {
    const auto due = s.next();
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(due - start).count(), 250 * k);
  }
}

// The server's counters went backwards during the run (CONFIG RESETSTAT, a restart): the difference
// is unknown, said so, never a wrapped 18446744073709551xxx.
TEST(Report, ServerCountersThatWentBackwardsAreUnknown) {
  const server_counters before{.commands = 5000, .cpu_seconds = 2.0, .version = "7.0.15"};
  const server_counters grew{.commands = 6000, .cpu_seconds = 2.5, .version = "7.0.15"};
  const server_counters reset{.commands = 12, .cpu_seconds = 2.5, .version = "7.0.15"};
  const server_counters restarted{.commands = 12, .cpu_seconds = 0.1, .version = "7.0.15"};
  const auto d = server_difference(before, grew);
  EXPECT_EQ(d.commands, std::optional<std::uint64_t>(1000));
  ASSERT_TRUE(d.cpu_seconds.has_value());
  EXPECT_DOUBLE_EQ(*d.cpu_seconds, 0.5);
  EXPECT_EQ(server_difference(before, before).commands, std::optional<std::uint64_t>(0));
  EXPECT_EQ(server_difference(before, reset).commands, std::nullopt);
  // Reset, then grown past the old count: fewer than the run's own commands is unknown too.
  EXPECT_EQ(server_difference(before, grew, d.commands.value_or(0) + 1).commands, std::nullopt);
  EXPECT_EQ(server_difference(before, grew, d.commands.value_or(0)).commands, d.commands);
  EXPECT_TRUE(server_difference(before, reset).cpu_seconds.has_value());  // RESETSTAT keeps the CPU time
  EXPECT_EQ(server_difference(before, restarted).commands, std::nullopt);
  EXPECT_EQ(server_difference(before, restarted).cpu_seconds, std::nullopt);

  bench_options o;
  report r;
  r.options = &o;
  r.target = "redis-server 7.0.15 at unix:/x";
  r.result.seconds = 1;
  r.result.commands.push_back({.name = "GET", .reports_hits = true, .stats = {}});
  r.result.commands.back().stats.completed = 1000;
  r.before = before;
  r.after = grew;
  EXPECT_NE(format_text(r).find("server: 1000 commands, CPU 500.000 us/op"), std::string::npos) << format_text(r);
  EXPECT_NE(format_json(r).find(R"("server":{"version":"7.0.15","commands":1000,"cpu_us_per_op":500.0000})"), std::string::npos)
      << format_json(r);
  r.after = reset;
  std::string text = format_text(r), json = format_json(r);
  EXPECT_NE(text.find("server: commands unknown (its statistics were reset during the run), CPU 500.000 us/op"), std::string::npos) << text;
  EXPECT_NE(json.find(R"("commands":null,"cpu_us_per_op":500.0000)"), std::string::npos) << json;
  r.after = restarted;
  text = format_text(r);
  json = format_json(r);
  EXPECT_NE(text.find("server: commands unknown (its statistics were reset during the run), CPU unknown"), std::string::npos) << text;
  EXPECT_NE(json.find(R"("commands":null,"cpu_us_per_op":null)"), std::string::npos) << json;
  EXPECT_EQ(text.find("1844674407"), std::string::npos) << text;
  EXPECT_EQ(json.find("1844674407"), std::string::npos) << json;
}

// A socket listening on a free port of 127.0.0.1 (its number in `port`), or -1.
int listen_on_loopback(int& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  return fd;
}

// A private redis-server that fails to start says why: the end of its log is in the message (its
// temp dir, and the log in it, are removed; the message once pointed into that removed dir).
TEST(EmbeddedServer, AFailedStartShowsTheEndOfTheLog) {
  // The server, asked to listen on a port that is taken, logs the bind failure and exits.
  int port_number = 0;
  const int held = listen_on_loopback(port_number);
  ASSERT_GE(held, 0);
  const std::string port = std::to_string(port_number);
  embedded_server server;
  const std::string why = server.start({"--port", port, "--bind", "127.0.0.1"});
  ::close(held);
  EXPECT_FALSE(server.running());
  EXPECT_NE(why.find("redis-server exited at start"), std::string::npos) << why;
  EXPECT_NE(why.find("Address already in use"), std::string::npos) << why;
  EXPECT_NE(why.find("Failed listening on port " + port), std::string::npos) << why;
  const std::string dir = server.dir();
  server.stop();
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;  // nothing left behind: the message has the log
}

// The tests' own redis_server, failing to start the same way, says why too (and keeps the log).
TEST(TestSupportServer, AFailedStartShowsTheEndOfTheLog) {
  int port = 0;
  const int held = listen_on_loopback(port);
  ASSERT_GE(held, 0);
  std::string why;
  try {
    test::redis_server server({"--port", std::to_string(port), "--bind", "127.0.0.1"});
  } catch (const std::runtime_error& e) {
    why = e.what();
  }
  ::close(held);
  EXPECT_NE(why.find("redis-server exited at start"), std::string::npos) << why;
  EXPECT_NE(why.find("Address already in use"), std::string::npos) << why;
  const auto at = why.find("/tmp/redring-test-");
  ASSERT_NE(at, std::string::npos) << why;
  const std::string log = why.substr(at, why.find(':', at) - at);
  EXPECT_TRUE(std::filesystem::exists(log)) << log;
  std::filesystem::remove_all(std::filesystem::path(log).parent_path());
}

struct program_output {
  int status = -1;
  std::string out;
};

// Runs redring-bench with `args` (shell words), and `env` ("NAME=value ...") before it.
program_output run_bench(const std::string& args, const std::string& env = "") {
  const std::string out_file = "/tmp/redring-bench-test-" + std::to_string(::getpid()) + ".out";
  const int raw = std::system((env + " " + REDRING_BENCH_PATH + " " + args + " > " + out_file + " 2>&1").c_str());
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

// The "nodes" of a --cluster report: (requests, primary) per node.
std::vector<std::pair<std::uint64_t, bool>> node_requests(const std::string& json) {
  std::vector<std::pair<std::uint64_t, bool>> out;
  for (auto at = json.find("{\"node\":"); at != std::string::npos; at = json.find("{\"node\":", at + 1)) {
    const auto end = json.find('}', at);
    out.emplace_back(json_number(json, "requests", at), json.substr(at, end - at).find("\"primary\":true") != std::string::npos);
  }
  return out;
}

// Every request went to exactly one node (a MOVED resend would count twice there), and the servers
// ran each once (plus the client's own few commands).
void expect_each_request_sent_and_run_once(const std::string& json, const std::vector<std::pair<std::uint64_t, bool>>& per_node,
                                           std::uint64_t requests) {
  std::uint64_t sent = 0;
  for (const auto& node : per_node) sent += node.first;
  EXPECT_EQ(sent, requests) << json;
  const auto server = json.find("\"server\":");
  ASSERT_NE(server, std::string::npos) << json;
  EXPECT_GE(json_number(json, "commands", server), requests);
  EXPECT_LE(json_number(json, "commands", server), requests + 100);
}

TEST(BenchEndToEnd, PrivateClusterReportsEveryNodeAndAgreesWithTheServers) {
  const std::string json_file = "/tmp/redring-bench-test-cluster-" + std::to_string(::getpid()) + ".json";
  const auto r = run_bench("--cluster-shards 3 -n 30000 -c 2 -P 32 --ratio 1:1 --key-maximum 99999 --json " + json_file);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("30000 requests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("private Redis Cluster of 3 primaries"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("errors: none"), std::string::npos) << r.out;
  std::ifstream f(json_file);
  const std::string json(std::istreambuf_iterator<char>(f), {});
  std::remove(json_file.c_str());
  // Three primaries, each with about a third of the requests (random keys over 16384 slots), all of
  // them accounted for; the servers together ran every request (plus the client's own few).
  const auto per_node = node_requests(json);
  ASSERT_EQ(per_node.size(), 3u) << json;
  for (const auto& [n, primary] : per_node) {
    EXPECT_GT(n, 7000u) << json;
    EXPECT_LT(n, 13000u) << json;
    EXPECT_TRUE(primary) << json;
  }
  expect_each_request_sent_and_run_once(json, per_node, 30000);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n') >= 3, true);
  EXPECT_NE(r.out.find("(primary):"), std::string::npos) << r.out;
}

// --auto on a cluster: the built-in commands route by the key they name (routed_by). A wrong route
// would be resent after its MOVED: more requests to the nodes than the run made (the servers do not
// count a command they redirect).
TEST(BenchEndToEnd, PrivateClusterAutoPipelinedRunsEveryRequestOnce) {
  const std::string json_file = "/tmp/redring-bench-test-cluster-auto-" + std::to_string(::getpid()) + ".json";
  const auto r = run_bench("--cluster-shards 3 -n 9000 -c 2 -P 16 --auto --ratio 1:2 --json " + json_file);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("errors: none"), std::string::npos) << r.out;
  std::ifstream f(json_file);
  const std::string json(std::istreambuf_iterator<char>(f), {});
  std::remove(json_file.c_str());
  const auto per_node = node_requests(json);
  EXPECT_EQ(per_node.size(), 3u) << json;
  expect_each_request_sent_and_run_once(json, per_node, 9000);
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

// redis+sentinel://: the requests go to the master the sentinel names, and the report says so.
TEST(BenchEndToEnd, ThroughASentinel) {
  test::redis_sentinel d(0, 1);
  const std::string sentinel = "127.0.0.1:" + std::to_string(d.sentinel_port(0));
  const auto r = run_bench("-u redis+sentinel://" + sentinel + "/mymaster -n 2000 --quiet");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("2000 requests"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("at master of 'mymaster' via sentinel " + sentinel), std::string::npos) << r.out;
  test::blocking_connection master(d.server(0).socket_path());
  EXPECT_GT(master.call({"DBSIZE"}).integer, 0);  // the SETs landed there
}

// Reads the whole file and removes it.
std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::string s(std::istreambuf_iterator<char>(f), {});
  std::remove(path.c_str());
  return s;
}

// The latency percentile `p` (e.g. "p90") of command `name` in a JSON report, in microseconds.
double json_latency(const std::string& json, const std::string& name, const std::string& p) {
  const auto at = json.find("\"" + name + "\":{");
  if (at == std::string::npos) return -1;
  const auto key = json.find("\"" + p + "\":", json.find("\"latency_us\"", at));
  return std::stod(json.substr(key + p.size() + 3));
}

TEST(BenchEndToEnd, CommandTemplatesReachTheServerAsWritten) {
  test::redis_server server;
  const std::string json_file = "/tmp/redring-bench-test-cmd-" + std::to_string(::getpid()) + ".json";
  const auto r = run_bench("-s " + server.socket_path() +
                           " -n 4000 -c 2 -P 8 -d 7 --key-maximum 9 --key-prefix u: --auto"
                           " --command 'HSET h:1 __key__ __data__' --command-ratio 1 --command 'HGET h:1 __key__' --command-ratio 3"
                           " --json " + json_file);
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string json = slurp(json_file);
  const auto hset = json.find("\"HSET\":{");
  const auto hget = json.find("\"HGET\":{");
  ASSERT_NE(hset, std::string::npos) << json;
  ASSERT_NE(hget, std::string::npos) << json;
  EXPECT_EQ(json_number(json, "requests", hset), 1000u);
  EXPECT_EQ(json_number(json, "requests", hget), 3000u);
  EXPECT_EQ(json_number(json, "errors", hset) + json_number(json, "errors", hget), 0u);
  // The server saw exactly those commands, with the keys and values the templates say.
  test::blocking_connection c(server.socket_path());
  const resp::value stats = c.call({"INFO", "commandstats"});
  EXPECT_NE(stats.text.find("cmdstat_hset:calls=1000,"), std::string::npos) << stats.text;
  EXPECT_NE(stats.text.find("cmdstat_hget:calls=3000,"), std::string::npos) << stats.text;
  const resp::value fields = c.call({"HKEYS", "h:1"});
  ASSERT_FALSE(fields.elements.empty());
  EXPECT_LE(fields.elements.size(), 10u);
  for (const auto& f : fields.elements) EXPECT_EQ(f.text.rfind("u:", 0), 0u) << f.text;
  EXPECT_EQ(c.call({"HGET", "h:1", fields.elements[0].text}).text, "xxxxxxx");
}

TEST(BenchEndToEnd, OpenLoopKeepsItsRate) {
  const std::string json_file = "/tmp/redring-bench-test-rate-" + std::to_string(::getpid()) + ".json";
  const auto r = run_bench("--rate 3000 --test-time 1 -c 2 -P 16 --json " + json_file);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("open loop at 3000/s"), std::string::npos) << r.out;
  const std::string json = slurp(json_file);
  // Requests start on schedule, not as fast as replies come: those due in [0, 1 s), 3000 of them.
  EXPECT_EQ(json_number(json, "requests"), 3000u) << json.substr(0, 400);
}

TEST(BenchEndToEnd, OpenLoopChargesAStallToEveryRequestScheduledDuringIt) {
  // Coordinated omission: a closed-loop client stops sending while the server stalls, so only the
  // few requests in flight see the stall. Open loop, latency runs from the scheduled time: every
  // request due during a 400 ms stall waits for its end, so about a third of 1.2 s of requests at
  // 1000/s see 0-400 ms and p90 is far above a normal reply's latency.
  test::redis_server server;
  const pid_t pid = server.pid();
  std::thread staller([pid] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ::kill(pid, SIGSTOP);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ::kill(pid, SIGCONT);
  });
  const std::string json_file = "/tmp/redring-bench-test-co-" + std::to_string(::getpid()) + ".json";
  const auto r = run_bench("-s " + server.socket_path() + " --rate 1000 --test-time 1.2 -c 1 -P 4 --ratio 0:1 --json " + json_file);
  staller.join();
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string json = slurp(json_file);
  EXPECT_GE(json_latency(json, "GET", "p90"), 50000.0) << json.substr(0, 600);   // >= 50 ms
  EXPECT_GE(json_latency(json, "GET", "max"), 300000.0) << json.substr(0, 600);  // the whole stall
}

TEST(BenchEndToEnd, JsonSchemaSvgAndProgressLine) {
  const std::string base = "/tmp/redring-bench-test-out-" + std::to_string(::getpid());
  const auto r = run_bench("--test-time 1.2 -c 2 -P 4 --progress --json " + base + ".json --svg " + base + ".svg");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("[   1.0 s]"), std::string::npos) << r.out;  // the progress line, forced
  EXPECT_NE(r.out.find("p99"), std::string::npos);
  const std::string json = slurp(base + ".json");
  for (const char* key : {"target", "threads", "clients", "pipeline", "auto", "rate", "data_size", "ratio", "requests",
                          "seconds", "ops_per_second", "client_cpu_us_per_op", "cut_short", "server", "version",
                          "commands", "cpu_us_per_op", "per_second", "GET", "SET", "hits", "misses", "errors",
                          "errors_by_kind", "latency_us", "min", "mean", "p50", "p90", "p99", "p99.9", "p99.99",
                          "max", "histogram_ns"}) {
    std::string quoted = "\"";  // (append, not +: GCC 12's -Wrestrict false positive)
    quoted.append(key).append("\":");
    EXPECT_NE(json.find(quoted), std::string::npos) << key;
  }
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.substr(json.size() - 2), "}\n");
  const std::string svg = slurp(base + ".svg");
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("Latency by percentile"), std::string::npos);
  EXPECT_NE(svg.find("Throughput over time"), std::string::npos);
  std::size_t lines = 0;
  for (auto at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++lines;
  EXPECT_EQ(lines, 2u);  // one curve per command: SET and GET
  std::size_t opens = 0, closes = 0;
  for (const char c : svg) {
    opens += c == '<';
    closes += c == '>';
  }
  EXPECT_EQ(opens, closes);
}

TEST(BenchEndToEnd, UnreachableServerIsAClearError) {
  const auto r = run_bench("-s /nonexistent/redis.sock -n 10");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("cannot reach the server at unix:/nonexistent/redis.sock: "), std::string::npos) << r.out;
  const auto bad = run_bench("-c zero");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.out.find("-c must be"), std::string::npos);
}

TEST(BenchEndToEnd, WrongPasswordIsAClearErrorAndTheRightOneWorks) {
  test::redis_server server({"--requirepass", "s3cret"});
  const auto wrong = run_bench("-s " + server.socket_path() + " -a nope -n 10");
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.out.find("cannot reach the server at unix:" + server.socket_path() + ": "), std::string::npos) << wrong.out;
  EXPECT_NE(wrong.out.find("authentication failed"), std::string::npos) << wrong.out;
  EXPECT_EQ(wrong.out.find("s3cret"), std::string::npos);
  EXPECT_EQ(std::count(wrong.out.begin(), wrong.out.end(), '\n'), 1) << wrong.out;  // one line
  const auto right = run_bench("-s " + server.socket_path() + " -a s3cret -n 1000 --quiet");
  EXPECT_EQ(right.status, 0) << right.out;
  EXPECT_NE(right.out.find("1000 requests"), std::string::npos) << right.out;
}

// Where io_uring is forbidden (say, in a container), redring-bench says so in one line and exits 1:
// the loop's exception neither escapes a thread (std::terminate) nor main (an abort).
TEST(BenchEndToEnd, ForbiddenIoUringExitsOneWithTheCause) {
  const auto r = test::run_without_io_uring([] {
    ::execl(REDRING_BENCH_PATH, "redring-bench", "-s", "/nonexistent/redring.sock", "-n", "10", static_cast<char*>(nullptr));
    return 127;
  });
  if (r.exit_code == test::no_filter) GTEST_SKIP() << "no seccomp filter can be installed here";
  EXPECT_EQ(r.signal, 0) << r.output;
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.rfind("redring-bench: io_uring_setup failed: io_uring is disabled", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

// The run's worker threads each make a loop: where that fails, the run ends cut short with the
// reason instead of an exception leaving the thread.
TEST(BenchRun, ForbiddenIoUringCutsTheRunShortWithTheCause) {
  const auto r = test::run_without_io_uring([] {
    bench_options o;
    if (parse_options({"-s", "/nonexistent/redring.sock", "-n", "10", "-t", "2"}, o)) return 3;
    const std::atomic<bool> stop{false};
    const run_result result = run(o, o.client_options(), &stop);
    std::printf("%s", result.fatal.c_str());
    return result.fatal.empty() ? 1 : 0;
  });
  if (r.exit_code == test::no_filter) GTEST_SKIP() << "no seccomp filter can be installed here";
  ASSERT_EQ(r.signal, 0) << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("io_uring_setup failed: io_uring is disabled", 0), 0u) << r.output;
}

// Starts redring-bench with `args`, its stdout and stderr into `out_file`.
pid_t spawn_bench(const std::string& out_file, std::vector<const char*> args) {
  args.insert(args.begin(), REDRING_BENCH_PATH);
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::execv(REDRING_BENCH_PATH, const_cast<char* const*>(args.data()));
    ::_exit(127);
  }
  return pid;
}

TEST(BenchEndToEnd, CtrlCStopsTheRunReportsAndRemovesThePrivateServer) {
  const std::string out_file = "/tmp/redring-bench-test-int-" + std::to_string(::getpid()) + ".out";
  const pid_t pid = spawn_bench(out_file, {"--test-time", "60", "-P", "4"});
  ASSERT_GE(pid, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  const std::string out = slurp(out_file);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("run cut short: interrupted"), std::string::npos) << out;
  EXPECT_NE(out.find("requests in"), std::string::npos) << out;  // the partial report
  // The private server is gone with its directory.
  const auto at = out.find("unix:/tmp/redring-bench-");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string socket = out.substr(at + 5, out.find(')', at) - at - 5);
  const std::string dir = socket.substr(0, socket.rfind('/'));
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir;
}

// An open loop at a low rate, interrupted while its requests wait for their scheduled time, stops
// at once: SIGTERM once waited for the next request's time (here 100 s ahead).
TEST(BenchEndToEnd, AnInterruptedOpenLoopStopsWhileWaitingForItsSchedule) {
  const std::string out_file = "/tmp/redring-bench-test-rate-" + std::to_string(::getpid()) + ".out";
  const pid_t pid = spawn_bench(out_file, {"--rate", "0.01", "-n", "3", "--quiet"});
  ASSERT_GE(pid, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::kill(pid, SIGTERM);
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 100 && done == 0; ++i) {  // 10 s at most, then fail rather than hang
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "still waiting for its schedule 10 s after SIGTERM: " << slurp(out_file);
  }
  const std::string out = slurp(out_file);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("interrupted"), std::string::npos) << out;
}

// Every 2^64 keys, drawn in sequence: the span wraps to 0 (it once divided by it: SIGFPE).
TEST(BenchEndToEnd, TheWholeKeyRangeInSequence) {
  const auto r = run_bench("-n 20 --quiet --key-maximum 18446744073709551615 --key-pattern S");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("20 requests in"), std::string::npos) << r.out;
}

// Reports that cannot be written make the run fail, said on stderr (it once exited 0).
TEST(BenchEndToEnd, AReportThatCannotBeWrittenFailsTheRun) {
  const auto r = run_bench("-n 200 --quiet --json /nonexistent/dir/x.json");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot write /nonexistent/dir/x.json"), std::string::npos) << r.out;
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

// -s names a socket, -h a host, -u a whole target: given two, one used to win silently. Refused
// before anything starts, with the usage and exit 2, as every bad option is.
TEST(BenchEndToEnd, TwoTargetsAreRefused) {
  for (const char* args : {"-s /tmp/x.sock -h 127.0.0.1 -n 10", "-u redis://127.0.0.1:7000 -s /tmp/x.sock -n 10"}) {
    const auto r = run_bench(args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find("redring-bench: give either -"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("usage: redring-bench"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("ops/s, client CPU"), std::string::npos) << r.out;  // no run
  }
}

// CONFIG RESETSTAT during the run: the server's command count went backwards. The report says the
// count is unknown (it once printed the wrapped difference, 18446744073709551xxx commands).
TEST(BenchEndToEnd, ServerStatisticsResetDuringTheRunAreUnknown) {
  test::redis_server server;
  {
    test::blocking_connection admin(server.socket_path());
    std::string pings;
    for (int i = 0; i < 2000; ++i) pings += "*1\r\n$4\r\nPING\r\n";
    admin.send(pings);
    (void)admin.read_raw_replies(2000);
  }
  const std::string json_file = "/tmp/redring-bench-test-reset-" + std::to_string(::getpid()) + ".json";
  const auto r = run_bench("-s " + server.socket_path() + " -n 20 --command \"CONFIG RESETSTAT\" --json " + json_file);
  const std::string json = slurp(json_file);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("server: commands unknown (its statistics were reset during the run)"), std::string::npos) << r.out;
  EXPECT_NE(json.find(R"("commands":null)"), std::string::npos) << json;
  EXPECT_EQ(r.out.find("1844674407"), std::string::npos) << r.out;
  EXPECT_EQ(json.find("1844674407"), std::string::npos) << json;
}

// The private redis-server fails to start (here a stand-in first in PATH that logs why and exits):
// redring-bench exits 1 and its message holds the end of the server's log.
TEST(BenchEndToEnd, APrivateServerThatCannotStartSaysWhy) {
  const std::string dir = "/tmp/redring-bench-test-path-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  {
    std::ofstream script(dir + "/redis-server");
    script << "#!/bin/sh\n"
              "# Writes to the file after --logfile, as redis-server does, and fails.\n"
              "while [ $# -gt 0 ]; do [ \"$1\" = --logfile ] && log=$2; shift; done\n"
              "echo '1:M 01 Jan 2026 00:00:00.000 # Fatal: the stand-in cannot start (for the test)' >> \"$log\"\n"
              "exit 1\n";
  }
  std::filesystem::permissions(dir + "/redis-server", std::filesystem::perms::owner_all);
  const auto r = run_bench("-n 10 --quiet", "PATH=" + dir + ":\"$PATH\"");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot start a private redis-server: redis-server exited at start"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Fatal: the stand-in cannot start (for the test)"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace redring::bench
