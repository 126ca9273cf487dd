// SPDX-License-Identifier: MIT
// Strict parsers for RESP's numeric texts: integers, doubles and big numbers.
#pragma once

#include "resp/error.hpp"

#include <cstdint>
#include <string_view>

namespace redring::resp {

/// The result of `parse_int64`: `code` is `errc{}` on success.
struct int64_result {
  std::int64_t value = 0;  ///< The number; 0 when `code` is an error.
  errc code{};             ///< `errc{}`, `invalid_integer` or `integer_overflow`.
};

/// Parses `[+-]?digits` as an int64: `invalid_integer` for an empty text or a non-digit,
/// `integer_overflow` for a value outside int64. Leading zeros are accepted.
[[nodiscard]] int64_result parse_int64(std::string_view text) noexcept;

/// True if `text` is a RESP3 double: `[+-]?(inf|nan|digits[.digits][(e|E)[+-]digits])`.
[[nodiscard]] bool is_valid_double(std::string_view text) noexcept;

/// Converts a text accepted by `is_valid_double` to a double (inf and nan included). Returns false
/// if the text is not valid; the value is then unspecified.
[[nodiscard]] bool parse_double(std::string_view text, double& out) noexcept;

/// True if `text` is a RESP3 big number: `[+-]?digits`.
[[nodiscard]] bool is_valid_big_number(std::string_view text) noexcept;

}  // namespace redring::resp
