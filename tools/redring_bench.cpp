// SPDX-License-Identifier: MIT
// redring-bench: benchmarks a Redis-compatible server through the redring client. With no server
// given it starts a private redis-server, runs the default workload, reports, and cleans up.
// Exit status: 0 done, 1 the run failed or was cut short (partial figures still reported), 2 usage.
#include "client/sync_client.hpp"
#include "tools/bench/bench_options.hpp"
#include "client/slot_map.hpp"
#include "tools/bench/embedded_cluster.hpp"
#include "tools/bench/embedded_server.hpp"
#include "tools/bench/report.hpp"
#include "tools/bench/runner.hpp"
#include "tools/bench/svg.hpp"

#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

using namespace redring;

namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_signal(int) { interrupted.store(true); }

// The server's counters from INFO, or why they could not be read (unreachable, auth refused ...).
std::optional<bench::server_counters> read_counters(const client::options& target, std::string* why = nullptr) {
  client::options o = target;
  o.command_timeout = std::chrono::milliseconds(3000);
  o.reconnect.enabled = false;
  client::sync_client c(o);
  const auto info = c.command<std::string>("INFO");
  if (!info) {
    if (why != nullptr) *why = info.error().what();
    return std::nullopt;
  }
  const client::server_info parsed = client::parse_info(*info);
  bench::server_counters s;
  if (auto v = parsed.find("total_commands_processed")) s.commands = std::stoull(std::string(*v));
  if (auto v = parsed.find("used_cpu_user")) s.cpu_seconds += std::stod(std::string(*v));
  if (auto v = parsed.find("used_cpu_sys")) s.cpu_seconds += std::stod(std::string(*v));
  if (auto v = parsed.find("redis_version")) s.version = *v;
  return s;
}

// A cluster's counters: the sum over its primaries (from the seed's CLUSTER SHARDS).
std::optional<bench::server_counters> read_cluster_counters(const client::options& target, std::string* why = nullptr) {
  client::options o = target;
  o.cluster.enabled = false;
  o.command_timeout = std::chrono::milliseconds(3000);
  o.reconnect.enabled = false;
  client::sync_client seed(o);
  const auto shards = seed.command<resp::value>("CLUSTER", "SHARDS");
  auto map = shards ? client::slot_map::from_shards(*shards) : resp::result<client::slot_map>(shards.error());
  if (!map) {
    if (why != nullptr) *why = map.error().what();
    return std::nullopt;
  }
  bench::server_counters sum;
  for (const client::cluster_shard& shard : map->shards()) {
    if (shard.nodes.empty() || !shard.nodes.front().primary) continue;
    client::options node = o;
    node.unix_path.clear();
    if (!shard.nodes.front().host.empty()) node.host = shard.nodes.front().host;  // empty: the seed's host
    node.port = shard.nodes.front().port;
    const auto one = read_counters(node, why);
    if (!one) return std::nullopt;
    sum.commands += one->commands;
    sum.cpu_seconds += one->cpu_seconds;
    sum.version = one->version;
  }
  return sum;
}

// Prints "elapsed, ops/s, p50/p99 so far" on stderr once a second until stopped.
class progress_line {
 public:
  explicit progress_line(const bench::live_figures& live) : live_(live), thread_([this] { loop(); }) {}
  ~progress_line() {
    {
      const std::lock_guard lock(m_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
    std::fputs("\n", stderr);
  }

 private:
  void loop() {
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t last = 0;
    std::unique_lock lock(m_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; })) {
      const auto s = live_.read();
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr, "\r[%6.1f s] %10.0f ops/s  %llu done  p50 %.1f us  p99 %.1f us   ", elapsed,
                   static_cast<double>(s.completed - last), static_cast<unsigned long long>(s.completed),
                   s.latency.percentile(50) / 1e3, s.latency.percentile(99) / 1e3);
      last = s.completed;
    }
  }

  const bench::live_figures& live_;
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

int run(int argc, char** argv) {
  bench::bench_options o;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (const auto bad = bench::parse_options(args, o)) {
    if (*bad == "help") {
      std::fputs(bench::usage(), stdout);
      return 0;
    }
    std::fprintf(stderr, "redring-bench: %s\n%s", bad->c_str(), bench::usage());
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  bench::embedded_server server;
  bench::embedded_cluster cluster;
  client::options target = o.client_options();
  bench::report r;
  r.options = &o;
  if (o.embedded() && o.cluster) {
    if (const std::string why = cluster.start(o.cluster_shards); !why.empty()) {
      std::fprintf(stderr, "redring-bench: cannot start a private cluster: %s\n", why.c_str());
      return 1;
    }
    target.host = "127.0.0.1";
    target.port = static_cast<std::uint16_t>(cluster.port(0));
  } else if (o.embedded()) {
    if (const std::string why = server.start(); !why.empty()) {
      std::fprintf(stderr, "redring-bench: cannot start a private redis-server: %s\n", why.c_str());
      return 1;
    }
    target.unix_path = server.socket_path();
  }
  const auto counters = [&](std::string* why) { return o.cluster ? read_cluster_counters(target, why) : read_counters(target, why); };
  std::string why;
  r.before = counters(&why);
  std::string where = target.unix_path.empty() ? target.host + ":" + std::to_string(target.port) : "unix:" + target.unix_path;
  if (!target.sentinel.master_name.empty()) {  // redis+sentinel://: the sentinels say where
    where = std::string(target.sentinel.role == client::sentinel_role::master ? "master" : "a replica") + " of '" +
            target.sentinel.master_name + "' via sentinel";
    for (std::size_t i = 0; i < target.sentinel.sentinels.size(); ++i) {
      where += (i == 0 ? " " : ",") + target.sentinel.sentinels[i].host + ":" + std::to_string(target.sentinel.sentinels[i].port);
    }
  }
  if (!r.before) {
    std::fprintf(stderr, "redring-bench: cannot reach the %s at %s: %s\n", o.cluster ? "cluster" : "server", where.c_str(), why.c_str());
    return 1;
  }
  if (o.cluster) {
    r.target = (o.embedded() ? "private Redis Cluster of " + std::to_string(o.cluster_shards) + " primaries, redis-server "
                             : "Redis Cluster, redis-server ") + r.before->version + ", seed " + where;
  } else {
    r.target = (o.embedded() ? "private redis-server " : "redis-server ") + r.before->version + " at " + where;
  }

  bench::live_figures live;
  {
    std::optional<progress_line> progress;
    if (o.progress || ::isatty(STDERR_FILENO) == 1) progress.emplace(live);
    r.result = bench::run(o, target, &interrupted, &live);
  }
  r.after = counters(nullptr);
  std::fputs(bench::format_text(r).c_str(), stdout);
  // A report that cannot be written is a failure (exit 1), said on stderr: a script that reads it
  // next must not find the last run's file and take it for this one's.
  const auto write = [](const std::string& path, const std::string& text) {
    std::ofstream f(path);
    f << text;
    f.close();
    if (!f) std::fprintf(stderr, "redring-bench: cannot write %s\n", path.c_str());
    return static_cast<bool>(f);
  };
  bool written = true;
  if (!o.json_path.empty()) written = write(o.json_path, bench::format_json(r)) && written;
  if (!o.svg_path.empty()) written = write(o.svg_path, bench::format_svg(r)) && written;
  return r.result.fatal.empty() && written ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // What is left to throw is the set-up of an io_uring loop (std::system_error, e.g. io_uring
  // disabled in a container): a clear line and exit 1, after `run`'s private server has stopped.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "redring-bench: %s\n", e.what());
    return 1;
  }
}
