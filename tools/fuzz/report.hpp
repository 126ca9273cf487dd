// SPDX-License-Identifier: MIT
// redring-fuzz's figures and findings: the progress line, the final text report and its JSON.
#pragma once

#include "tools/fuzz/fuzz_case.hpp"
#include "tools/fuzz/options.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace redring::fuzz {

/// Set by redring-fuzz's SIGINT/SIGTERM handler: a run stops at its next case, a minimisation at its
/// next attempt and a client run at once (its client killed).
inline std::atomic<bool> interrupted{false};

/// One distinct finding of a run.
struct finding_record {
  finding_kind kind = finding_kind::none;
  std::string detail;
  std::string file;              ///< the reproducer written ("" if none could be)
  std::size_t frames_found = 0;  ///< frames in the case that found it
  std::size_t frames_minimal = 0;///< frames after minimisation
  std::size_t attempts = 0;      ///< minimisation runs
  bool reproduced = false;       ///< it reproduced on a re-run (else saved as found)
  std::size_t occurrences = 1;   ///< cases that found the same minimal case again
  std::string summary;           ///< the minimal case's commands, one line
  std::string fingerprint;       ///< the minimal case's frames in full: equal findings have equal ones
};

/// Everything the report says.
struct run_stats {
  std::string mode;               ///< "server" or "client"
  std::string target;             ///< what was fuzzed
  std::uint64_t seed = 0;
  double seconds = 0;
  std::uint64_t cases = 0;        ///< server: cases run; client: client runs
  std::uint64_t commands = 0;     ///< server: frames sent (set-up and sentinels included); client: replies sent
  std::uint64_t raw_frames = 0;   ///< server: malformed frames among them
  std::uint64_t slow = 0;         ///< server: cases that timed out while the server stayed responsive
  std::size_t eligible = 0;       ///< server: commands the generator may draw
  std::size_t distinct = 0;       ///< server: distinct commands sent
  std::size_t distinct_ok = 0;    ///< server: distinct commands that got a non-error reply
  std::size_t shape_commands = 0; ///< server: commands with a documented reply type (0: checks off)
  std::uint64_t shape_checked = 0;///< server: replies whose type was checked
  std::map<int, std::uint64_t> exit_codes;  ///< client: runs per exit status (signals as 128+N)
  std::vector<finding_record> findings;
  /// Why the run stopped early because the target became unusable (a private server that could not
  /// be restarted, an external one that stopped answering); "" when it ran its course.
  std::string stopped;
  /// The run could not go on for a reason outside the target's behaviour (a private server that
  /// could not be restarted, a client that cannot be run): redring-fuzz exits 3.
  bool unusable = false;
};

/// Paces a run: when to stop (--time, --iterations, --max-findings, or `progress` returning false),
/// and a call of `progress` about once a second. Keeps `stats.seconds` current.
class run_pacer {
 public:
  run_pacer(const fuzz_options& opts, run_stats& stats, const std::function<bool(const run_stats&)>& progress)
      : opts_(opts), stats_(stats), progress_(progress), start_(clock::now()), last_(start_) {}
  /// True if case (or client run) `index` should run.
  bool next(std::uint64_t index);
  /// When --time ends the run (never if unbounded): minimisation stops there too.
  [[nodiscard]] clock::time_point deadline() const noexcept {
    return opts_.time.count() == 0 ? clock::time_point::max() : start_ + opts_.time;
  }
  /// Sets the final elapsed time.
  void finish() { stats_.seconds = std::chrono::duration<double>(clock::now() - start_).count(); }

 private:
  const fuzz_options& opts_;
  run_stats& stats_;
  const std::function<bool(const run_stats&)>& progress_;
  clock::time_point start_, last_;
};

/// One line: elapsed, cases, commands and commands/s, distinct commands, findings.
[[nodiscard]] std::string progress_line(const run_stats& s);
/// The final report, several lines.
[[nodiscard]] std::string format_report(const run_stats& s);
/// The same as a JSON object.
[[nodiscard]] std::string format_json(const run_stats& s);
/// A JSON string literal of arbitrary bytes (\u00XX for control and non-ASCII bytes).
[[nodiscard]] std::string json_string(std::string_view bytes);

}  // namespace redring::fuzz

namespace redring::fuzz {

/// Writes `r` to `dir/<kind>-<n>.repro` (first free n; `dir` is created) and returns the path, or ""
/// with `why`.
[[nodiscard]] std::string save_reproducer(const std::string& dir, const reproducer& r, std::string& why);
/// Adds `rec` to the findings, or counts it as another occurrence of an equal one (same kind and
/// the same minimal case, every byte of it), whose reproducer then stands for both (`rec`'s file is
/// removed).
void record_finding(run_stats& stats, finding_record rec);
/// Completes `rec` with the minimal case `best` and saves it as a reproducer in --out (`argv` for
/// client mode); a failure to save is noted in `rec.detail`.
void save_finding(finding_record& rec, fuzz_case best, std::string_view mode, const std::vector<std::string>& argv,
                  const fuzz_options& opts);
/// One line describing a case's frames (arguments cut to 24 bytes, at most ~240 bytes in all).
[[nodiscard]] std::string summarize(const fuzz_case& c);

}  // namespace redring::fuzz
