// SPDX-License-Identifier: MIT
// The workload: per connection a sliding window of `pipeline` requests, each encoded from the key
// pattern and the command mix, its reply checked and its latency recorded.
#pragma once

#include "tools/bench/bench_options.hpp"
#include "tools/bench/histogram.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace redring::bench {

/// Figures of one command type.
struct command_stats {
  histogram latency;  ///< nanoseconds, from encoding to the last byte of the reply
  std::uint64_t completed = 0, errors = 0, hits = 0, misses = 0;
  std::map<std::string, std::uint64_t> errors_by_kind;  ///< "WRONGTYPE", "connection lost", ...
  void merge(const command_stats& o);
};

/// The outcome of a run. `fatal` is set when the run was cut short (server gone, Ctrl-C): the
/// figures are then those of what completed.
struct run_result {
  command_stats get, set;
  double seconds = 0;              ///< measured phase, wall clock
  double client_cpu_seconds = 0;   ///< user + system of this process over the measured phase
  std::string fatal;
  [[nodiscard]] std::uint64_t completed() const noexcept { return get.completed + set.completed; }
};

/// Runs the workload of `o` against the server of `target`; stops early when `*stop` becomes true.
[[nodiscard]] run_result run(const bench_options& o, const client::options& target, const std::atomic<bool>* stop);

}  // namespace redring::bench
