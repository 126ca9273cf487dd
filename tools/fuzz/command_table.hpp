// SPDX-License-Identifier: MIT
// The commands a server says it has, from its own COMMAND INFO and COMMAND DOCS replies: names,
// subcommands, arity, flags, ACL categories, key positions and the argument grammar.
#pragma once

#include "resp/value.hpp"
#include "tools/fuzz/fuzz_case.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redring::fuzz {

/// One argument of a command, as COMMAND DOCS describes it.
struct arg_spec {
  /// The argument types of COMMAND DOCS.
  enum class kind : std::uint8_t { string, integer, double_number, key, pattern, unix_time, pure_token, oneof, block };
  kind type = kind::string;
  std::string name;   ///< e.g. "timeout", "member"
  std::string token;  ///< a literal word sent before the value ("EX", "LIMIT"), or empty
  bool optional = false;
  bool multiple = false;
  bool multiple_token = false;  ///< with `multiple`: the token is repeated before each value
  std::vector<arg_spec> children;  ///< oneof, block
};

/// One command or subcommand.
struct command_spec {
  std::string name;                 ///< lower case; "config|set" for a subcommand
  std::vector<std::string> words;   ///< what is sent: {"CONFIG", "SET"}
  int arity = 0;                    ///< COMMAND INFO arity: n exact, -n at least n (words included)
  std::vector<std::string> flags;   ///< "write", "readonly", "blocking", ...
  std::vector<std::string> categories;  ///< "@admin", "@dangerous", ...
  int first_key = 0, last_key = 0, key_step = 0;
  bool has_docs = false;            ///< `args` came from COMMAND DOCS
  std::vector<arg_spec> args;       ///< the arguments after `words`
  bool has_subcommands = false;     ///< a container ("config"): only its subcommands are generated
  bool dangerous = false;           ///< destroys or reconfigures the server (see `classify`)
  bool excluded = false;            ///< never generated (see `classify`)

  [[nodiscard]] bool has_flag(std::string_view f) const noexcept;
};

/// The server's commands.
struct command_table {
  std::vector<command_spec> commands;

  /// Builds the table from the replies to `COMMAND INFO` (or `COMMAND`) and `COMMAND DOCS` (RESP2 or
  /// RESP3 forms). A server without COMMAND DOCS (before 7.0) gives an empty `docs`: arguments are
  /// then drawn by arity and key positions.
  [[nodiscard]] static command_table from_replies(const resp::value& info, const resp::value& docs);

  /// A stand-in for a server whose table cannot be read (COMMAND refused by its ACL): the commands
  /// that destroy, reconfigure, stop or save the server or reach its other clients, each family
  /// whole (CLIENT SETNAME counts), marked dangerous. For refusing, never for generating.
  [[nodiscard]] static command_table conservative();

  /// The command named `name` (lower case, "a|b" for subcommands), or nullptr.
  [[nodiscard]] const command_spec* find(std::string_view name) const noexcept;
};

/// Sets `dangerous` and `excluded` from the name, flags and ACL categories:
/// - dangerous: ACL category @admin or @dangerous, or FLUSHALL, FLUSHDB, SCRIPT FLUSH, FUNCTION
///   FLUSH/DELETE/RESTORE, SWAPDB, CLIENT NO-EVICT, CONFIG SET, and what reaches other clients:
///   SCRIPT KILL, FUNCTION KILL, CLIENT UNBLOCK, PUBLISH, SPUBLISH (see the .cpp); allowed only with
///   --allow-dangerous or against the embedded server;
/// - excluded: commands whose normal effect is a dead, silent, blocked or redirected connection, or
///   traffic off the machine (SHUTDOWN, MONITOR, SYNC, PSYNC, QUIT, DEBUG, FAILOVER, REPLICAOF,
///   SLAVEOF, MIGRATE, CLIENT KILL/PAUSE/REPLY, the SUBSCRIBE family, CLUSTER MEET, SCRIPT DEBUG), and two that
///   cost much time for nothing (PFSELFTEST, SAVE): never generated.
void classify(command_spec& c);

/// `s` in lower case (ASCII): how the table keeps names, flags and categories.
[[nodiscard]] std::string lower(std::string_view s);

/// The name of a dangerous or excluded command (see `classify`) that `f` would send, or "". A
/// command frame is judged by its name (and subcommand); a raw frame by every command its bytes
/// could start: the first element after each `*N` header and the first word of each inline line
/// (with the word after it as a subcommand). Scripts' bodies are not read.
[[nodiscard]] std::string dangerous_in(const command_table& table, const frame& f);

}  // namespace redring::fuzz
