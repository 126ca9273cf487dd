// SPDX-License-Identifier: MIT
// Counts heap allocations made through operator new in this test binary, to assert "allocates nothing".
#pragma once

#include <cstdint>

namespace redring::test {

/// Allocations (operator new calls) made by this thread since the program started.
[[nodiscard]] std::uint64_t allocations() noexcept;

}  // namespace redring::test
