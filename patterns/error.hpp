// SPDX-License-Identifier: MIT
// Error codes of the patterns: outcomes that are neither a server reply nor a client failure.
#pragma once

#include <system_error>

namespace redring::patterns {

/// Why a pattern's operation gave no value although Redis answered.
enum class errc : int {
  not_acquired = 1,  ///< The lock was held by someone else until the acquire deadline (or no quorum).
  load_failed,       ///< The cache's loader returned an error (its text is the message).
  decode_failed,     ///< A typed cache's codec could not decode a value (the codec's text is the message).
};

/// The "redring.patterns" category.
[[nodiscard]] const std::error_category& patterns_category() noexcept;

/// Makes `e` an error_code in `patterns_category()` (found by ADL).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), patterns_category()}; }

}  // namespace redring::patterns

template <>
struct std::is_error_code_enum<redring::patterns::errc> : std::true_type {};
