// SPDX-License-Identifier: MIT
// redring-bench's report: a text table and a JSON document of the same figures.
#pragma once

#include "tools/bench/bench_options.hpp"
#include "tools/bench/runner.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace redring::bench {

/// The server's own counters (INFO), read before and after the run.
struct server_counters {
  std::uint64_t commands = 0;  ///< total_commands_processed
  double cpu_seconds = 0;      ///< used_cpu_user + used_cpu_sys
  std::string version;         ///< redis_version
};

/// What the server did between two readings of its counters. Each figure is nullopt when its
/// counter went backwards, so that the difference means nothing: CONFIG RESETSTAT during the run
/// zeroes the command count (not the CPU time), a restart both.
struct server_delta {
  std::optional<std::uint64_t> commands;
  std::optional<double> cpu_seconds;
};

/// `after - before`, figure by figure, unknown where a counter went backwards (see `server_delta`),
/// and the command count unknown too when it is below `commands_at_least` (the commands this run
/// completed: a reset followed by growth past the old count looks like a plain, smaller difference).
[[nodiscard]] server_delta server_difference(const server_counters& before, const server_counters& after,
                                             std::uint64_t commands_at_least = 0) noexcept;

/// Everything the report shows.
struct report {
  const bench_options* options = nullptr;
  run_result result;
  std::optional<server_counters> before, after;
  std::string target;  ///< "private redis-server 7.0.15 (unix:/tmp/...)" or the URL
};

/// The run's shape: "1 thread x 4 conn x pipeline 16[, open loop at 10000/s]".
[[nodiscard]] std::string shape(const bench_options& o);
/// The text report (the summary line only, with `--quiet`).
[[nodiscard]] std::string format_text(const report& r);
/// The JSON report, histograms included.
[[nodiscard]] std::string format_json(const report& r);

}  // namespace redring::bench
