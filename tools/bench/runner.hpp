// SPDX-License-Identifier: MIT
// The workload: per connection a sliding window of `pipeline` requests (or, with --auto, coroutines
// that each await their own command), each encoded from a command template and the key pattern, its
// reply checked and its latency recorded; closed loop, or open loop at a fixed rate.
#pragma once

#include "client/cluster.hpp"
#include "tools/bench/bench_options.hpp"
#include "tools/bench/histogram.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace redring::bench {

/// Figures of one command type.
struct command_stats {
  histogram latency;  ///< nanoseconds, from the start (closed loop) or the scheduled start (open loop) to the reply
  std::uint64_t completed = 0, errors = 0, hits = 0, misses = 0;
  std::map<std::string, std::uint64_t> errors_by_kind;  ///< "WRONGTYPE", "connection lost", ...
  void merge(const command_stats& o);
};

/// One row of the report: a command name and its figures (templates with the same name merged).
struct command_result {
  std::string name;
  bool reports_hits = false;  ///< GET: hits and misses are meaningful
  command_stats stats;
};

/// The outcome of a run. `fatal` is set when the run was cut short (server gone, Ctrl-C): the
/// figures are then those of what completed.
struct run_result {
  std::vector<command_result> commands;  ///< in the order of the workload's first appearance
  std::vector<std::uint64_t> per_second; ///< completions in each second of the measured phase
  double seconds = 0;              ///< measured phase, wall clock
  double client_cpu_seconds = 0;   ///< user + system of this process over the measured phase
  std::string fatal;
  std::vector<client::cluster_node_load> nodes;  ///< --cluster: requests each node received, by name
  [[nodiscard]] std::uint64_t completed() const noexcept;
  /// Every command's figures merged.
  [[nodiscard]] command_stats total() const;
  /// The row named `name`, or null.
  [[nodiscard]] const command_result* find(std::string_view name) const noexcept;
};

/// Figures of a run in progress, for the progress line: the workers publish about once a second,
/// any thread reads.
class live_figures {
 public:
  /// What has completed in the measured phase so far.
  struct snapshot {
    std::uint64_t completed = 0;
    histogram latency;
  };
  /// Worker `i` of `n` publishes its totals so far.
  void publish(std::size_t i, std::size_t n, std::uint64_t completed, const histogram& latency);
  /// Every worker's latest totals merged.
  [[nodiscard]] snapshot read() const;

 private:
  mutable std::mutex m_;
  std::vector<snapshot> workers_;
};

/// Runs the workload of `o` against the server of `target`; stops early when `*stop` becomes true.
/// `live` (may be null) receives figures about once a second.
[[nodiscard]] run_result run(const bench_options& o, const client::options& target, const std::atomic<bool>* stop,
                             live_figures* live = nullptr);

/// The open loop's schedule: request k of a worker is due at `start + k / rate`.
class schedule {
 public:
  using clock = std::chrono::steady_clock;
  schedule(clock::time_point start, double per_second) noexcept
      : start_(start), interval_ns_(1e9 / per_second) {}
  /// When the next request is due; advances the schedule.
  clock::time_point next() noexcept {
    const auto offset = std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(k_++) * interval_ns_));
    return start_ + std::chrono::duration_cast<clock::duration>(offset);
  }

 private:
  clock::time_point start_;
  double interval_ns_;
  std::uint64_t k_ = 0;
};

}  // namespace redring::bench
