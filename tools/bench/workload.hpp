// SPDX-License-Identifier: MIT
// What redring-bench sends: command templates with `__key__` and `__data__` placeholders, each with a
// weight (memtier's --command / --command-ratio).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redring::bench {

/// One command template of the mix.
struct command_spec {
  /// What one argument of the template is.
  enum class part_kind : std::uint8_t {
    literal,  ///< sent as written
    key,      ///< `__key__`: a key from the key pattern (prefix + number)
    data,     ///< `__data__`: a value of `--data-size` bytes
  };
  /// One argument.
  struct part {
    part_kind kind = part_kind::literal;
    std::string text;  ///< the literal's bytes (empty for placeholders)
  };

  std::string name;          ///< the command's name, upper-cased: the report's row (e.g. "GET", "HSET")
  std::vector<part> parts;   ///< every argument, the name included
  unsigned weight = 1;       ///< relative frequency in the mix (--command-ratio)
  /// True when `__key__` is the command's only key (the built-in SET and GET): its requests name it
  /// (`request::key`), so a cluster client routes them without looking the command up. A --command
  /// template's `__key__` may be a field or a member, so templates leave it false.
  bool routes_by_key = false;
  /// True for GET-like commands whose null reply is a miss (GET, HGET, GETEX, GETDEL, LINDEX ...: a
  /// null reply of any command counts as a miss; this says whether hits/misses are reported).
  [[nodiscard]] bool reports_hits() const noexcept { return name == "GET"; }
};

/// Parses a template such as `HSET h:__key__ f __data__`: words split at spaces; a word in double
/// quotes may hold spaces (`\"` and `\\` escape inside quotes). A placeholder must be a whole word.
/// Returns nullopt and sets `why` for an empty template or an unterminated quote.
[[nodiscard]] std::optional<command_spec> parse_command(std::string_view text, std::string& why);

/// The default mix: `SET __key__ __data__` with weight `set_weight`, `GET __key__` with `get_weight`
/// (a command of weight 0 is left out).
[[nodiscard]] std::vector<command_spec> default_workload(unsigned set_weight, unsigned get_weight);

/// Picks commands in proportion to their weights, deterministically: with weights 1:10 every run of
/// 11 picks has exactly one of the first (a smooth weighted round robin, like nginx's upstreams).
class command_mix {
 public:
  /// A mix over `specs` (non-empty, weights not all 0).
  explicit command_mix(const std::vector<command_spec>& specs);
  /// The index of the next command.
  std::size_t next() noexcept;

 private:
  std::vector<std::int64_t> weight_, current_;
  std::int64_t total_ = 0;
};

}  // namespace redring::bench
