// SPDX-License-Identifier: MIT
// redring-bench: benchmarks a Redis-compatible server through the redring client. With no server
// given it starts a private redis-server, runs the default workload, reports, and cleans up.
// Exit status: 0 done, 1 the run failed or was cut short (partial figures still reported), 2 usage.
#include "client/sync_client.hpp"
#include "tools/bench/bench_options.hpp"
#include "tools/bench/embedded_server.hpp"
#include "tools/bench/report.hpp"
#include "tools/bench/runner.hpp"

#include <csignal>
#include <cstdio>
#include <fstream>

using namespace redring;

namespace {

std::atomic<bool> interrupted{false};

extern "C" void on_signal(int) { interrupted.store(true); }

std::optional<bench::server_counters> read_counters(const client::options& target) {
  client::options o = target;
  o.command_timeout = std::chrono::milliseconds(3000);
  o.reconnect.enabled = false;
  client::sync_client c(o);
  const auto info = c.command<std::string>("INFO");
  if (!info) return std::nullopt;
  const client::server_info parsed = client::parse_info(*info);
  bench::server_counters s;
  if (auto v = parsed.find("total_commands_processed")) s.commands = std::stoull(std::string(*v));
  if (auto v = parsed.find("used_cpu_user")) s.cpu_seconds += std::stod(std::string(*v));
  if (auto v = parsed.find("used_cpu_sys")) s.cpu_seconds += std::stod(std::string(*v));
  if (auto v = parsed.find("redis_version")) s.version = *v;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
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
  client::options target = o.client_options();
  bench::report r;
  r.options = &o;
  if (o.embedded()) {
    if (const std::string why = server.start(); !why.empty()) {
      std::fprintf(stderr, "redring-bench: cannot start a private redis-server: %s\n", why.c_str());
      return 1;
    }
    target.unix_path = server.socket_path();
  }
  r.before = read_counters(target);
  if (!r.before) {
    const std::string where = target.unix_path.empty() ? target.host + ":" + std::to_string(target.port) : "unix:" + target.unix_path;
    std::fprintf(stderr, "redring-bench: cannot reach the server at %s (or INFO failed)\n", where.c_str());
    return 1;
  }
  r.target = (o.embedded() ? "private redis-server " : "redis-server ") + r.before->version + " at " +
             (target.unix_path.empty() ? target.host + ":" + std::to_string(target.port) : "unix:" + target.unix_path);

  r.result = bench::run(o, target, &interrupted);
  r.after = read_counters(target);
  std::fputs(bench::format_text(r).c_str(), stdout);
  if (!o.json_path.empty()) {
    std::ofstream(o.json_path) << bench::format_json(r);
  }
  return r.result.fatal.empty() ? 0 : 1;
}
