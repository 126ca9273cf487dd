// SPDX-License-Identifier: MIT
// The RESP2/RESP3 data types, valued by their wire byte (RESP3 spec, "RESP3 types").
#pragma once

#include <cstdint>
#include <string_view>

namespace redring::resp {

/// A RESP data type. Each enumerator's value is the byte that introduces it on the wire.
/// RESP2's `$-1` and `*-1` arrive as `type::null` (see `node::null_origin`).
enum class type : char {
  simple_string = '+',    ///< `+OK\r\n`
  simple_error = '-',     ///< `-ERR message\r\n`
  integer = ':',          ///< `:42\r\n`, a signed 64-bit integer
  blob_string = '$',      ///< `$3\r\nfoo\r\n`; also the head of a streamed string `$?\r\n`
  array = '*',            ///< `*2\r\n...`
  null = '_',             ///< `_\r\n` (and RESP2's `$-1`, `*-1`)
  double_number = ',',    ///< `,1.5\r\n`, `,inf\r\n`, `,nan\r\n`
  boolean = '#',          ///< `#t\r\n` or `#f\r\n`
  blob_error = '!',       ///< `!<len>\r\nCODE message\r\n`
  verbatim_string = '=',  ///< `=<len>\r\ntxt:text\r\n`
  big_number = '(',       ///< `(3492890328409238509324850943850943825024385\r\n`
  map = '%',              ///< `%<pairs>\r\n` then key, value, key, value, ...
  set = '~',              ///< `~<n>\r\n`
  attribute = '|',        ///< `|<pairs>\r\n`: metadata for the value that follows it
  push = '>',             ///< `><n>\r\n`: out-of-band data (pub/sub, invalidation)
  stream_part = ';',      ///< `;<len>\r\n<bytes>\r\n`: one chunk of a streamed string
  end = '.',              ///< `.\r\n`: closes a streamed aggregate; also the closing `;0\r\n` of a streamed string
};

/// True for the types whose node is followed by child nodes: array, map, set, attribute, push.
[[nodiscard]] constexpr bool is_aggregate(type t) noexcept {
  return t == type::array || t == type::map || t == type::set || t == type::attribute || t == type::push;
}

/// Child nodes per declared element: 2 for map and attribute (key and value), 1 otherwise.
[[nodiscard]] constexpr std::uint64_t multiplicity(type t) noexcept {
  return (t == type::map || t == type::attribute) ? 2 : 1;
}

/// True for the error replies: simple_error and blob_error.
[[nodiscard]] constexpr bool is_error(type t) noexcept {
  return t == type::simple_error || t == type::blob_error;
}

/// The lower-case name of a type ("simple_string", "array", ...), for messages and JSON.
[[nodiscard]] std::string_view to_string(type t) noexcept;

}  // namespace redring::resp
