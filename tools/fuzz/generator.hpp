// SPDX-License-Identifier: MIT
// Server-mode case generation: commands built from the server's grammar with values from
// interesting sets, mutations of valid commands, and malformed frames.
#pragma once

#include "tools/fuzz/command_table.hpp"
#include "tools/fuzz/fuzz_case.hpp"
#include "tools/fuzz/rng.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redring::fuzz {

/// How cases are drawn.
struct generator_options {
  bool allow_dangerous = false;   ///< include `command_spec::dangerous` commands
  unsigned malformed_percent = 20; ///< cases that end with one or two malformed raw frames
  unsigned mutate_percent = 25;   ///< command frames that are mutated after generation
  std::size_t batch = 24;         ///< generated frames per case (the keyspace set-up comes first)
  std::string key_prefix = "rf:"; ///< every generated key starts with it
  std::vector<std::string> only;  ///< if not empty: only these commands (lower case, "a|b")
  /// Without --allow-dangerous: integers that a server takes as a count or an offset and that would
  /// make it build GiBs (`SRANDMEMBER k -2147483648`, `SETBIT k 4294967295 1`) are left out, and
  /// any that a mutation makes (a truncated `-9223372036854775808`) become ±65536 (`is_huge_count`);
  /// the ones the server refuses (beyond int64, or beyond its own bounds) stay.
  bool bounded_integers = false;
  /// The connection has state a case must not reset (AUTH, SELECT in the preamble): no RESET.
  bool keep_connection_state = false;
};

/// True for an integer text (an optional sign, digits) that a server would take as a count or an
/// offset big enough to build gigabytes: a magnitude above 65536 and no more than LONG_MAX / 2 (Redis
/// refuses counts beyond that, and offsets beyond 2^32 bits or 512 MiB).
[[nodiscard]] bool is_huge_count(std::string_view arg) noexcept;
/// The first argument of a command frame, or word of a raw frame (RESP headers skipped), that
/// `is_huge_count`; "" if none.
[[nodiscard]] std::string huge_count_in(const frame& f);

/// Draws cases from a command table. Case `i` of seed `s` depends only on (s, i) and the table.
class generator {
 public:
  generator(const command_table& table, generator_options opts);

  /// The keyspace set-up: DEL of every fuzz key, then one existing key of every type.
  [[nodiscard]] std::vector<frame> setup_frames() const;
  /// Case `index` of the run seeded `seed`: set-up frames, then `batch` generated commands (a MULTI
  /// left open is closed with EXEC so that the sentinel is not queued), then, in `malformed_percent`
  /// of the cases, one or two malformed frames.
  [[nodiscard]] fuzz_case make_case(std::uint64_t seed, std::uint64_t index) const;

  /// A valid command of a random eligible spec.
  [[nodiscard]] frame random_command(rng& r) const;
  /// The command `spec` with arguments drawn from its grammar.
  [[nodiscard]] frame generate(rng& r, const command_spec& spec) const;
  /// `f` (a command frame) mutated: arguments replaced, removed, repeated, flipped, truncated...
  [[nodiscard]] frame mutate(rng& r, frame f) const;
  /// A malformed or unusual raw frame: bad and oversized lengths, truncation, inline commands,
  /// nested arrays, wrong prefix bytes, a pipeline cut mid-frame, flipped bytes.
  [[nodiscard]] frame malformed(rng& r) const;

  /// A value of each interesting set (for tests and mutation).
  [[nodiscard]] std::string random_key(rng& r) const;
  [[nodiscard]] std::string random_value(rng& r) const;
  /// An interesting integer (see `generator_options::bounded_integers`).
  [[nodiscard]] std::string pick_integer(rng& r) const;

  /// Commands eligible for generation (after exclusions, --allow-dangerous and --only).
  [[nodiscard]] const std::vector<const command_spec*>& eligible() const noexcept { return eligible_; }

 private:
  void add_arg(rng& r, const command_spec& spec, const arg_spec& a, std::vector<std::string>& out, int depth) const;
  std::string value_for(rng& r, const command_spec& spec, const arg_spec& a) const;

  const command_table& table_;
  generator_options opts_;
  std::vector<const command_spec*> eligible_;
};

/// `DEL` of every key the generator can name under `prefix` (the first set-up frame): run before
/// each minimisation run and replay, so that no run sees keys an earlier one left.
[[nodiscard]] frame delete_fuzz_keys(std::string_view prefix = "rf:");

/// The upper-case command name of a frame's arguments, with the subcommand for containers known to
/// `table` ("CONFIG GET" -> "config|get"); empty for raw frames.
[[nodiscard]] std::string command_name(const command_table& table, const frame& f);

}  // namespace redring::fuzz
