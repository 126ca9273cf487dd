// SPDX-License-Identifier: MIT
// Error codes of the RESP layer: protocol errors found by the reader, and conversion errors of the
// typed adapters. Both are std::error_code values in the "redring.resp" category.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace redring::resp {

/// Why a byte stream is not valid RESP, or why a reply cannot become the requested type.
enum class errc : int {
  // Protocol errors (the reader).
  invalid_type_byte = 1,      ///< The first byte of an element is not a RESP type byte.
  invalid_length,             ///< A length or count is empty, has a non-digit, or is negative (other than `$-1`, `*-1`).
  bulk_too_long,              ///< A blob length (or a streamed string's total) is over `limits::max_bulk_length`.
  aggregate_too_large,        ///< An aggregate declares or streams more than `limits::max_aggregate_size` elements.
  nesting_too_deep,           ///< More than `limits::max_depth` aggregates open at once.
  line_too_long,              ///< A line is longer than `limits::max_line_length` before its CRLF.
  missing_crlf,               ///< A blob payload is not followed by CRLF.
  invalid_boolean,            ///< A boolean is not exactly `#t` or `#f`.
  invalid_integer,            ///< An integer is empty or has a non-digit.
  integer_overflow,           ///< An integer does not fit in int64.
  invalid_double,             ///< A double is not `[+-]?(inf|nan|digits[.digits][(e|E)[+-]digits])`.
  invalid_big_number,         ///< A big number is not `[+-]?digits`.
  invalid_verbatim,           ///< A verbatim string lacks its 3-byte format and `:`.
  invalid_null,               ///< A null is not exactly `_`.
  unexpected_end,             ///< `.` outside a streamed aggregate, after a map key, or after an attribute.
  unexpected_stream_part,     ///< `;` outside a streamed string.
  invalid_stream_part,        ///< A streamed string is interrupted by something other than `;`.
  // Conversion errors (the typed adapters).
  server_error,               ///< The reply is an error reply (`-` or `!`); its text says which.
  unexpected_type,            ///< The reply's type cannot convert to the requested C++ type.
  unexpected_null,            ///< The reply is null and the requested type is not optional.
  out_of_range,               ///< The reply's number does not fit the requested C++ type.
  unexpected_size,            ///< The reply's element count does not fit the requested C++ type.
};

/// The "redring.resp" error category.
[[nodiscard]] const std::error_category& resp_category() noexcept;

/// Makes `e` an error_code in `resp_category()` (found by ADL).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), resp_category()};
}

/// A protocol error: what is wrong and where.
struct parse_error {
  errc code{};                ///< What is wrong.
  std::uint64_t offset = 0;   ///< Offset of the offending byte from the start of the stream (across feeds).

  /// A one-line message: "invalid integer at byte 17".
  [[nodiscard]] std::string message() const;
};

/// The code word of a server error text: "MOVED" for "MOVED 3999 127.0.0.1:6381", "ERR" for
/// "ERR unknown command". The view points into `text`.
[[nodiscard]] std::string_view error_code_word(std::string_view text) noexcept;

}  // namespace redring::resp

template <>
struct std::is_error_code_enum<redring::resp::errc> : std::true_type {};
