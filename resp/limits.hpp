// SPDX-License-Identifier: MIT
// Protocol limits: the one place where the reader's bounds on hostile input are set.
#pragma once

#include <cstdint>

namespace redring::resp {

/// Bounds the reader enforces on every reply. A value over a bound is a protocol error with its own
/// `errc`, reported before anything is allocated or awaited: `*4294967295\r\n` followed by nothing costs
/// no memory. Each limit is inclusive: a length of exactly `max_bulk_length` parses.
struct limits {
  /// Longest blob, verbatim, error blob or stream part payload, and longest joined streamed string, in bytes.
  /// Redis' own `proto-max-bulk-len` default is 512 MiB.
  std::uint64_t max_bulk_length = std::uint64_t{512} << 20;
  /// Most elements one aggregate may declare (pairs, for maps and attributes) or stream.
  std::uint64_t max_aggregate_size = std::uint64_t{1} << 29;
  /// Most levels open at once: aggregates (arrays inside arrays ...), attributes and streamed
  /// strings each open one. Bounds the reader's stack and any recursion over a decoded value.
  std::uint32_t max_depth = 128;
  /// Longest line (simple string, simple error, number, length) before its CRLF, in bytes. As long as
  /// the longest bulk by default, so that no line needs more buffer than a bulk could.
  std::uint64_t max_line_length = std::uint64_t{512} << 20;
  /// Most bytes of top-level attributes a client holds before the value they annotate, which decides
  /// where the reply goes (a command's or the push handler): their texts plus 64 bytes per node.
  /// The reader streams attributes and does not use it; `client::multiplexer` fails the connection
  /// with a protocol error past it, where hostile attributes grew its memory without end.
  std::uint64_t max_held_attribute_bytes = std::uint64_t{1} << 20;
};

/// The defaults above, for documentation and tests.
inline constexpr limits default_limits{};

}  // namespace redring::resp
