// SPDX-License-Identifier: MIT
// Server-mode detection: runs one case on a fresh connection, ended by a sentinel `ECHO <nonce>`,
// and says whether the server crashed, hung, desynchronised, dropped the connection or sent
// invalid RESP.
#pragma once

#include "resp/limits.hpp"
#include "resp/value.hpp"
#include "tools/fuzz/fuzz_case.hpp"
#include "tools/fuzz/reply_shape.hpp"
#include "tools/fuzz/socket.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace redring::fuzz {

/// How a case is run and judged.
struct probe_settings {
  std::chrono::milliseconds timeout{3000};  ///< for a reply, and for the liveness PING
  std::chrono::milliseconds quiet{5};       ///< a case with raw frames is over this long after its last reply
  std::vector<frame> preamble;              ///< sent first on every connection (AUTH), not part of the case
  /// Strict limits for the server's replies: a reply outside them is a protocol error finding.
  resp::limits limits{.max_bulk_length = std::uint64_t{512} << 20,
                      .max_aggregate_size = std::uint64_t{1} << 24,
                      .max_depth = 64,
                      .max_line_length = std::uint64_t{64} << 20};
  /// Documented reply types (nullptr: no shape checks); must outlive the settings' use.
  const reply_shapes* shapes = nullptr;
};

/// What a run of a case saw.
struct probe_result {
  outcome found;
  std::size_t replies = 0;     ///< top-level replies received (pushes excluded)
  bool slow = false;           ///< timed out while the server still answered a fresh PING (not a finding)
  std::size_t shape_checked = 0;  ///< replies whose type was checked against the documented ones
  /// For each frame of the case: true if it was a command whose reply was not an error.
  std::vector<bool> succeeded;
};

/// Whether the server answers a PING on a fresh connection.
enum class liveness : std::uint8_t {
  alive,    ///< PONG (or any reply: NOAUTH still proves it runs)
  dead,     ///< connection refused, or closed before the reply
  stalled,  ///< connected, no reply within the timeout
};

/// Checks the server with a PING on a fresh connection (after the preamble); `why` says what failed.
[[nodiscard]] liveness check_alive(const endpoint& where, const probe_settings& s, std::string& why);

/// Runs `c` on a fresh connection: preamble, the frames, then `DISCARD` (so that an open MULTI
/// cannot queue the sentinel) and the sentinel `ECHO nonce`.
/// - every reply is parsed with `s.limits`: invalid bytes are `protocol_error`;
/// - a case of command frames only is strict: exactly one reply per command must precede the
///   sentinel (`desync` otherwise), and the connection must stay open (`disconnect`);
/// - with `s.shapes`, each reply to a command before the first raw frame and before any MULTI (whose
///   replies are +QUEUED and an EXEC array) must be an error or of the command's documented types
///   (`reply_shape` otherwise; a desync found in the same case wins, as it explains the mismatch);
/// - a case with raw frames may lose its sentinel (the server waits for more, or closes on a
///   protocol error), but the commands before the first raw frame must be answered before the
///   connection closes (`disconnect`);
/// - on a timeout or a close the server is checked with `check_alive`: `crash` if dead, `hang` if
///   stalled.
[[nodiscard]] probe_result run_case(const endpoint& where, const fuzz_case& c, const probe_settings& s,
                                    std::string_view nonce);

/// Sends one command on a fresh connection and returns its reply (for set-up: COMMAND DOCS, INFO).
[[nodiscard]] std::optional<resp::value> call(const endpoint& where, const probe_settings& s,
                                              const std::vector<std::string>& args, std::string& why);

}  // namespace redring::fuzz
