// SPDX-License-Identifier: MIT
// What redring-fuzz sends and finds: a case is a list of frames (commands, raw bytes, or replies of
// the hostile server); an outcome says what went wrong, if anything. Also the reproducer file format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redring::fuzz {

/// What a frame is.
enum class frame_kind : std::uint8_t {
  command,  ///< A well-formed request (array of bulk strings): the server owes exactly one reply.
  raw,      ///< Bytes sent as they are (malformed or inline frames): no reply count is expected.
  reply,    ///< A reply the hostile server sends to one command of the client under test.
};

/// How the hostile server delivers a reply's bytes.
enum class delivery : std::uint8_t {
  whole,     ///< One write.
  bytewise,  ///< One write per byte (the first 64 bytes, 1 ms apart), then the rest.
  chunks,    ///< Random split points, no delay.
  trickle,   ///< Random chunks 2-20 ms apart.
  cut,       ///< A strict prefix, then the connection is closed.
};

/// One unit of a case: the minimiser removes and shrinks these.
struct frame {
  frame_kind kind = frame_kind::command;
  std::vector<std::string> args;  ///< command: the arguments, name first
  std::string bytes;              ///< raw, reply: the bytes
  delivery how = delivery::whole; ///< reply: how it is sent
  bool close_after = false;       ///< reply: close the connection after it (it may leave a reply open)
  std::uint32_t split_seed = 0;   ///< reply: seeds the split points of chunks, trickle and cut

  friend bool operator==(const frame&, const frame&) = default;
};

/// A sequence of frames sent on one connection (server mode) or served to one run of a client.
struct fuzz_case {
  std::vector<frame> frames;
  friend bool operator==(const fuzz_case&, const fuzz_case&) = default;
};

/// Appends the wire bytes of a command or raw frame (a reply frame's bytes as they are).
void append_wire(std::string& out, const frame& f);
/// A command frame.
[[nodiscard]] frame command_frame(std::vector<std::string> args);
/// A raw frame.
[[nodiscard]] frame raw_frame(std::string bytes);

/// What a run of a case found.
enum class finding_kind : std::uint8_t {
  none,
  crash,           ///< The target is gone: connections refused or closed at once (server), or the client died of a signal or a sanitizer report.
  hang,            ///< No reply within the timeout and a fresh connection's PING stalls too (server); the client did not exit in time.
  desync,          ///< Replies do not match requests: the sentinel came back early, late or not at all.
  disconnect,      ///< The server closed the connection in the middle of well-formed requests but still answers others.
  protocol_error,  ///< The server's reply bytes are not valid RESP under strict limits.
  exit_status,     ///< The client exited non-zero (a finding only with --exit-is-finding).
  reply_shape,     ///< A reply's type is not one the server documents for its command (and not an error).
};

/// The lower-case name of a finding kind ("crash", "protocol_error", ...).
[[nodiscard]] std::string_view to_string(finding_kind k) noexcept;
/// The kind named `name`, if any.
[[nodiscard]] std::optional<finding_kind> finding_from_string(std::string_view name) noexcept;
/// The name of a delivery style ("whole", "bytewise", ...), and back.
[[nodiscard]] std::string_view to_string(delivery d) noexcept;
[[nodiscard]] std::optional<delivery> delivery_from_string(std::string_view name) noexcept;

/// What one run of a case found.
struct outcome {
  finding_kind kind = finding_kind::none;
  std::string detail;  ///< One line: what was seen.
};

/// Bytes as a double-quoted C-like literal: printable ASCII as is, `\"`, `\\`, `\r`, `\n`, `\t`, else `\xHH`.
[[nodiscard]] std::string quote(std::string_view bytes);

/// A reproducer: everything `redring-fuzz replay` needs.
struct reproducer {
  std::string mode = "server";     ///< "server" or "client"
  finding_kind kind = finding_kind::none;
  std::string detail;
  std::uint64_t seed = 0;
  std::vector<std::string> client_argv;  ///< client mode: the client under test, with {socket} and {port}
  fuzz_case steps;
};

/// The file text of `r` (see docs/redring-fuzz.md, "Reproducer files").
[[nodiscard]] std::string format_reproducer(const reproducer& r);
/// Parses a reproducer file's text; nullopt with `why` (naming the line) if it is not one.
[[nodiscard]] std::optional<reproducer> parse_reproducer(std::string_view text, std::string& why);

}  // namespace redring::fuzz
