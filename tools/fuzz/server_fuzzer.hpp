// SPDX-License-Identifier: MIT
// Server mode: generate cases from the server's own command table, run them, and on a finding
// reproduce, minimise and save it.
#pragma once

#include "tools/fuzz/command_table.hpp"
#include "tools/fuzz/generator.hpp"
#include "tools/fuzz/minimiser.hpp"
#include "tools/fuzz/options.hpp"
#include "tools/fuzz/probe.hpp"
#include "tools/fuzz/reply_shape.hpp"
#include "tools/fuzz/report.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace redring::fuzz {

/// The server under test: where it is and, if the fuzzer owns it, how to restart it (after a crash
/// or a hang, and between minimisation runs that crash it).
struct server_target {
  endpoint where;
  std::string description;
  /// Restarts the server, updating `where`; false with a reason. Empty: the server cannot be restarted.
  std::function<bool(endpoint& where, std::string& why)> restart;
};

/// The server-mode fuzzer.
class server_fuzzer {
 public:
  server_fuzzer(server_target& target, const fuzz_options& opts);

  /// Checks the server answers, then reads COMMAND INFO, COMMAND DOCS and INFO server and builds
  /// the generator. An error message, or nullopt.
  [[nodiscard]] std::optional<std::string> prepare();
  /// Runs cases until --time / --iterations / --max-findings, or a dead server that cannot be
  /// restarted (`run_stats::stopped` says so), or until `progress` (called about once a second)
  /// returns false or a signal sets `interrupted`.
  run_stats run(const std::function<bool(const run_stats&)>& progress);

  /// Runs `c` once on a live server: restarts a dead one first (if it can), and after a crash or a hang.
  probe_result run_once(const fuzz_case& c);
  /// Empties the keyspace: FLUSHALL with --allow-dangerous (always for the private server), else
  /// DEL of every key the generator can name; on a fresh connection, a failure ignored (the run
  /// that follows will meet it). Before each minimisation run and a replay: a candidate must not
  /// pass or fail on keys that an earlier candidate left.
  void reset_keys();
  /// Waits until the server answers a PING within the timeout again: restarts it if it can, else
  /// retries for up to `settle_limit` (a server busy with a long command recovers on its own).
  /// False if it did not.
  bool settle();
  /// How long `settle` waits for a server it cannot restart.
  static constexpr std::chrono::seconds settle_limit{30};
  /// Reproduces, minimises (until `deadline` at the latest) and saves a finding of `c`; returns its
  /// record (not yet in the stats). A hang is judged by `confirmed_by_trials` (--hang-trials runs in
  /// a row, each on a settled server).
  finding_record handle(const fuzz_case& c, const outcome& found, const std::deque<fuzz_case>& history,
                        clock::time_point deadline = clock::time_point::max());

  [[nodiscard]] const command_table& table() const noexcept { return table_; }
  [[nodiscard]] const generator& gen() const noexcept { return *gen_; }
  [[nodiscard]] probe_settings& settings() noexcept { return settings_; }
  [[nodiscard]] const std::string& server_version() const noexcept { return version_; }
  [[nodiscard]] const reply_shapes& shapes() const noexcept { return shapes_; }

 private:
  server_target& target_;
  const fuzz_options& opts_;
  probe_settings settings_;
  command_table table_;
  reply_shapes shapes_;
  std::unique_ptr<generator> gen_;
  std::string version_;
  std::uint64_t nonce_ = 0;
  std::string lost_;  // why the private server could not be restarted ("" while it can)
  run_stats stats_;
  std::set<std::string> distinct_, distinct_ok_;
};

}  // namespace redring::fuzz
