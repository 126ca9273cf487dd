// SPDX-License-Identifier: MIT
// Test support: drive a loop until a condition holds, with a deadline so a bug fails, never hangs.
#pragma once

#include "net/loop.hpp"

#include <algorithm>
#include <chrono>

namespace redring::test {

/// Runs turns of `l` until `done()` is true; false if `limit` passes first.
template <class Pred>
bool run_until(net::loop& l, Pred done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    l.run_once(std::chrono::milliseconds(10));
  }
  return true;
}

/// Runs turns of `l` for `span` of wall-clock time (timers that fall due in it fire): for checks of
/// what did or did not happen meanwhile.
inline void run_for(net::loop& l, std::chrono::milliseconds span) {
  const auto end = std::chrono::steady_clock::now() + span;
  for (auto now = std::chrono::steady_clock::now(); now < end; now = std::chrono::steady_clock::now()) {
    l.run_once(std::min(std::chrono::duration_cast<std::chrono::milliseconds>(end - now) + std::chrono::milliseconds(1),
                        std::chrono::milliseconds(10)));
  }
}

}  // namespace redring::test
