// SPDX-License-Identifier: MIT
#include "tools/bench/report.hpp"

#include <fmt/format.h>

namespace redring::bench {
namespace {

constexpr double percentiles[] = {50, 90, 99, 99.9, 99.99};

double ops_per_second(const report& r) {
  return r.result.seconds > 0 ? static_cast<double>(r.result.completed()) / r.result.seconds : 0;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string stats_json(const command_stats& s, double seconds) {
  std::string out = fmt::format(R"({{"requests":{},"ops_per_second":{:.1f},"errors":{},"hits":{},"misses":{},)",
                                s.completed, seconds > 0 ? static_cast<double>(s.completed) / seconds : 0.0, s.errors,
                                s.hits, s.misses);
  out += R"("errors_by_kind":{)";
  bool first = true;
  for (const auto& [k, v] : s.errors_by_kind) {
    out += fmt::format("{}{}:{}", first ? "" : ",", json_string(k), v);
    first = false;
  }
  out += fmt::format(R"(}},"latency_us":{{"min":{:.3f},"mean":{:.3f},)", s.latency.min() / 1e3, s.latency.mean() / 1e3);
  for (const double p : percentiles) out += fmt::format(R"("p{}":{:.3f},)", p, s.latency.percentile(p) / 1e3);
  out += fmt::format(R"("max":{:.3f}}},"histogram_ns":[)", s.latency.max() / 1e3);
  first = true;
  s.latency.for_each_bucket([&](std::uint64_t low, std::uint64_t high, std::uint64_t count) {
    out += fmt::format("{}[{},{},{}]", first ? "" : ",", low, high, count);
    first = false;
  });
  return out + "]}";
}

}  // namespace

server_delta server_difference(const server_counters& before, const server_counters& after,
                               std::uint64_t commands_at_least) noexcept {
  // Unsigned, a reset made the difference wrap to about 1.8e19 commands.
  server_delta d;
  if (after.commands >= before.commands && after.commands - before.commands >= commands_at_least) {
    d.commands = after.commands - before.commands;
  }
  if (after.cpu_seconds >= before.cpu_seconds) d.cpu_seconds = after.cpu_seconds - before.cpu_seconds;
  return d;
}

std::string shape(const bench_options& o) {
  std::string s = o.auto_pipeline
                      ? fmt::format("{} thread x {} conn, {} auto-pipelined virtual clients per thread", o.threads, o.clients, o.clients * o.pipeline)
                      : fmt::format("{} thread x {} conn x pipeline {}", o.threads, o.clients, o.pipeline);
  if (o.rate > 0) s += fmt::format(", open loop at {:.0f}/s", o.rate);
  if (o.cluster) s += ", cluster";
  return s;
}

std::string format_text(const report& r) {
  const bench_options& o = *r.options;
  const double ops = ops_per_second(r);
  const double client_us = r.result.completed() ? r.result.client_cpu_seconds * 1e6 / static_cast<double>(r.result.completed()) : 0;
  std::string out = fmt::format("{} requests in {:.2f} s: {:.0f} ops/s, client CPU {:.3f} us/op ({}, {})\n",
                                r.result.completed(), r.result.seconds, ops, client_us, shape(o), r.target);
  if (!r.result.fatal.empty()) out += "run cut short: " + r.result.fatal + "\n";
  if (o.quiet) return out;
  out += fmt::format("\n{:<6} {:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}   (latency in us)\n", "type", "requests",
                     "ops/s", "p50", "p90", "p99", "p99.9", "p99.99", "max");
  auto row = [&](const std::string& name, const command_stats& s) {
    if (s.completed == 0) return;
    out += fmt::format("{:<6} {:>10} {:>12.0f}", name, s.completed,
                       r.result.seconds > 0 ? static_cast<double>(s.completed) / r.result.seconds : 0.0);
    for (const double p : percentiles) out += fmt::format(" {:>9.1f}", s.latency.percentile(p) / 1e3);
    out += fmt::format(" {:>9.1f}\n", s.latency.max() / 1e3);
  };
  for (const command_result& c : r.result.commands) row(c.name, c.stats);
  out += "\n";
  for (const command_result& c : r.result.commands) {
    if (c.reports_hits) out += fmt::format("{} hits {} / misses {}\n", c.name, c.stats.hits, c.stats.misses);
  }
  const command_stats all = r.result.total();
  if (all.errors == 0) {
    out += "errors: none\n";
  } else {
    out += fmt::format("errors: {}", all.errors);
    for (const auto& [k, v] : all.errors_by_kind) out += fmt::format(", {} x {}", v, k);
    out += "\n";
  }
  for (const auto& n : r.result.nodes) {
    if (n.sent == 0) continue;
    out += fmt::format("node {} ({}): {} requests, {:.0f} ops/s ({:.1f} %)\n", n.node, n.primary ? "primary" : "replica",
                       n.sent, r.result.seconds > 0 ? static_cast<double>(n.sent) / r.result.seconds : 0.0,
                       r.result.completed() ? 100.0 * static_cast<double>(n.sent) / static_cast<double>(r.result.completed()) : 0.0);
  }
  if (r.before && r.after && r.result.completed() > 0) {
    const server_delta d = server_difference(*r.before, *r.after, r.result.completed());
    out += "server: ";
    out += d.commands ? fmt::format("{} commands", *d.commands) : "commands unknown (its statistics were reset during the run)";
    out += d.cpu_seconds ? fmt::format(", CPU {:.3f} us/op\n", *d.cpu_seconds * 1e6 / static_cast<double>(r.result.completed()))
                         : std::string(", CPU unknown\n");
  }
  return out;
}

std::string format_json(const report& r) {
  const bench_options& o = *r.options;
  std::string out = "{";
  out += fmt::format(R"("target":{},"threads":{},"clients":{},"pipeline":{},"auto":{},"rate":{},"data_size":{},"ratio":"{}:{}",)",
                     json_string(r.target), o.threads, o.clients, o.pipeline, o.auto_pipeline, o.rate, o.data_size,
                     o.set_ratio, o.get_ratio);
  out += fmt::format(R"("requests":{},"seconds":{:.6f},"ops_per_second":{:.1f},"client_cpu_us_per_op":{:.4f},)",
                     r.result.completed(), r.result.seconds, ops_per_second(r),
                     r.result.completed() ? r.result.client_cpu_seconds * 1e6 / static_cast<double>(r.result.completed()) : 0.0);
  out += fmt::format(R"("cut_short":{},)", r.result.fatal.empty() ? "null" : json_string(r.result.fatal));
  if (r.before && r.after) {
    // An unknown figure is null (see server_delta).
    const server_delta d = server_difference(*r.before, *r.after, r.result.completed());
    const std::string commands = d.commands ? std::to_string(*d.commands) : "null";
    const std::string cpu = !d.cpu_seconds ? "null"
                            : fmt::format("{:.4f}", r.result.completed() ? *d.cpu_seconds * 1e6 / static_cast<double>(r.result.completed()) : 0.0);
    out += fmt::format(R"("server":{{"version":{},"commands":{},"cpu_us_per_op":{}}},)", json_string(r.after->version), commands, cpu);
  }
  out += R"("per_second":[)";
  for (std::size_t i = 0; i < r.result.per_second.size(); ++i) out += fmt::format("{}{}", i ? "," : "", r.result.per_second[i]);
  out += R"(],"nodes":[)";
  for (std::size_t i = 0; i < r.result.nodes.size(); ++i) {
    const auto& n = r.result.nodes[i];
    out += fmt::format(R"({}{{"node":{},"primary":{},"requests":{},"ops_per_second":{:.1f}}})", i ? "," : "",
                       json_string(n.node), n.primary, n.sent,
                       r.result.seconds > 0 ? static_cast<double>(n.sent) / r.result.seconds : 0.0);
  }
  out += R"(],"commands":{)";
  for (std::size_t i = 0; i < r.result.commands.size(); ++i) {
    const command_result& c = r.result.commands[i];
    out += fmt::format("{}{}:", i ? "," : "", json_string(c.name)) + stats_json(c.stats, r.result.seconds);
  }
  out += "}}\n";
  return out;
}

}  // namespace redring::bench
