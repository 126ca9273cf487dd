// SPDX-License-Identifier: MIT
// Where each command's keys are: learned from the server's own COMMAND reply (Redis 7 key
// specifications, or first/last/step before them), so that Cluster routing needs no hand-written table
// and new commands route correctly. https://redis.io/docs/reference/key-specs/
#pragma once

#include "resp/result.hpp"
#include "resp/value.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace redring::client {

/// The key positions of every command a server knows.
class command_keys {
 public:
  /// What `find` learned about one call.
  enum class outcome : std::uint8_t {
    found,            ///< `out` holds the argument indexes of the keys (possibly none: a keyless command)
    unknown_command,  ///< the server did not list this command
    undeterminable,   ///< the key specs say the keys cannot be found from the arguments alone
  };

  /// Builds the table from the reply of `COMMAND` (or `COMMAND INFO ...`), RESP2 or RESP3.
  /// An error if the reply does not have COMMAND's shape.
  [[nodiscard]] static resp::result<command_keys> from_reply(const resp::value& reply);

  struct command;

  /// Appends to `out` the indexes in `args` (args[0] is the command's name, any case) of the call's
  /// keys, in the order the key specs give them; subcommands ("OBJECT ENCODING", "XINFO STREAM") are
  /// looked up with their container.
  outcome find(std::span<const std::string_view> args, std::vector<std::size_t>& out) const;

  /// The entry of the call's command (its subcommand's, if it has one), or null if unknown. Valid as
  /// long as this table. Lets a caller cache the lookup for names without subcommands.
  [[nodiscard]] const command* lookup(std::span<const std::string_view> args) const;
  /// The argument index of the command's only key when its key specs name exactly one key at a fixed
  /// index (GET, SET, INCR, HSET ...: `find` would always answer {index}), else -1.
  static int single_key_index(const command& c) noexcept;
  /// `find` with the entry already looked up.
  static outcome find(const command& c, std::span<const std::string_view> args, std::vector<std::size_t>& out);

  /// Commands known.
  [[nodiscard]] std::size_t size() const noexcept { return commands_.size(); }

 private:
  struct key_spec {
    enum class begin : std::uint8_t { index, keyword, unknown } begin_kind = begin::unknown;
    std::int64_t index = 0;         // begin index: the argument index
    std::string keyword;            // begin keyword: the keyword (upper case)
    std::int64_t start_from = 0;    // begin keyword: where the search starts (negative: from the end, backwards)
    enum class find : std::uint8_t { range, keynum, unknown } find_kind = find::unknown;
    std::int64_t last_key = 0, key_step = 1, limit = 0;        // range
    std::int64_t keynum_index = 0, first_key = 0;              // keynum (key_step shared)
  };

 public:
  /// What the table knows of one command.
  struct command {
    std::vector<key_spec> specs;
    bool has_subcommands = false;
    bool readonly = false;  ///< COMMAND flag `readonly`: may be served by a replica
  };

 private:

  static bool parse_command(const resp::value& info, std::unordered_map<std::string, command>& into);

  std::unordered_map<std::string, command> commands_;  // lower-case name, "container|sub" for subcommands
};

}  // namespace redring::client
