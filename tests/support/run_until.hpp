// SPDX-License-Identifier: MIT
// Test support: drive a loop until a condition holds, with a deadline so a bug fails, never hangs.
#pragma once

#include "net/loop.hpp"

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

}  // namespace redring::test
