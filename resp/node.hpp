// SPDX-License-Identifier: MIT
// One element of a RESP reply as the reader emits it: a type, a depth, a size and a view.
#pragma once

#include "resp/type.hpp"

#include <cstdint>
#include <string_view>

namespace redring::resp {

/// One element of a reply, in pre-order: an aggregate's node comes before its children.
///
/// Lifetime: `value` views the input span of the `reader::read` call that produced the node. It is
/// valid while the caller keeps those bytes unchanged, and no longer. A node owns nothing; copy the
/// bytes out (or build a `resp::value`) to keep them.
///
/// Shape rules a consumer relies on:
/// 1. A top-level reply starts at depth 0. Children of an aggregate at depth d have depth d + 1.
/// 2. An aggregate declares `size` elements (pairs, for map and attribute: 2 * size child values follow).
/// 3. A streamed aggregate (`*?`, `~?`, `%?`) or streamed string (`$?`) has `streamed == true` and
///    `size == 0`; its children (stream parts, for a string) follow, then a `type::end` node at the
///    aggregate's own depth.
/// 4. An attribute (`|`) is followed, at its own depth, by the value it annotates; it does not count as
///    an element of the enclosing aggregate.
/// 5. `ends_reply` is true on the last node of each top-level reply.
struct node {
  /// The element's type. RESP2 `$-1` and `*-1` arrive as `type::null`; see `null_origin`.
  type data_type = type::null;
  /// For `type::null`: the wire type that carried it: `blob_string` (`$-1`), `array` (`*-1`) or `null` (`_`).
  type null_origin = type::null;
  /// True for the head of a streamed string or aggregate (see rule 3).
  bool streamed = false;
  /// True on the last node of a top-level reply (see rule 5).
  bool ends_reply = false;
  /// Nesting depth (see rule 1).
  std::uint32_t depth = 0;
  /// Aggregates: the declared element count (pairs for map and attribute). Others: 0.
  std::uint64_t size = 0;
  /// `type::integer`: the parsed value. `type::boolean`: 1 or 0. Others: 0.
  std::int64_t integer = 0;
  /// Scalars: the payload without type byte and CRLF (for a double, integer or big number, its text as
  /// sent; for a verbatim string, `fmt:text`). Aggregates, nulls, ends: empty.
  std::string_view value;

  /// For `type::verbatim_string`: the three-byte format, e.g. "txt". Views the same bytes as `value`.
  [[nodiscard]] std::string_view verbatim_format() const noexcept { return value.substr(0, 3); }
  /// For `type::verbatim_string`: the text after `fmt:`. Views the same bytes as `value`.
  [[nodiscard]] std::string_view verbatim_text() const noexcept { return value.size() < 4 ? std::string_view() : value.substr(4); }
};

}  // namespace redring::resp
