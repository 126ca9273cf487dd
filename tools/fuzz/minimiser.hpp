// SPDX-License-Identifier: MIT
// Delta debugging (Zeller's ddmin) over a case: fewest frames first, then fewest and shortest
// arguments, then fewest bytes in raw frames and replies, as long as the finding still reproduces.
#pragma once

#include "tools/fuzz/fuzz_case.hpp"
#include "tools/fuzz/socket.hpp"

#include <chrono>
#include <cstddef>
#include <functional>

namespace redring::fuzz {

/// True if the finding still reproduces with this case.
using reproduces = std::function<bool(const fuzz_case&)>;

/// Bounds on the work of one minimisation.
struct minimise_budget {
  std::size_t attempts = 3000;                 ///< runs of the case at most
  std::chrono::milliseconds time{60000};       ///< wall time at most
  /// Also stop here (the end of a --time bounded run).
  clock::time_point deadline = clock::time_point::max();
};

/// What a minimisation did.
struct minimise_stats {
  std::size_t attempts = 0;
  bool exhausted = false;  ///< the budget ran out: the result reproduces but may not be minimal
};

/// An oracle for timing findings (hangs): `trial` runs a case once and says whether it hung;
/// `settle` waits until the target answers promptly again (restarted, or recovered on its own) and
/// returns false if it did not, in which case nothing is judged. A case counts as reproducing only
/// if `trials` runs in a row, each after a settle, all hang: a run that hangs by chance (a loaded
/// machine, a server still busy with the previous candidate's stall) cannot make a reduction stick,
/// while a case that does not hang is rejected after its first run.
[[nodiscard]] reproduces confirmed_by_trials(reproduces trial, std::function<bool()> settle, unsigned trials);

/// Minimises `c` (which must reproduce) and returns the smallest case found that still reproduces:
/// 1. ddmin over the frames (1-minimal: removing any one frame loses the finding);
/// 2. per command frame, ddmin over its arguments after the name, then each argument shortened to
///    "" or its shortest prefix that still reproduces;
/// 3. per raw or reply frame, ddmin over its bytes; replies also try plain delivery and no close.
[[nodiscard]] fuzz_case minimise(fuzz_case c, const reproduces& still, const minimise_budget& budget,
                                 minimise_stats& stats);

}  // namespace redring::fuzz
