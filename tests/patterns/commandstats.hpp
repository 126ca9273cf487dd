// SPDX-License-Identifier: MIT
// Round trips counted by the server: calls per command from `INFO commandstats`, for the patterns'
// tests and bench/patterns_bench.
#pragma once

#include "tests/support/redis_server.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace redring::test {

/// Calls of `command` (lowercase, e.g. "evalsha") in an `INFO commandstats` text; 0 if never called.
inline std::int64_t command_calls(std::string_view info, std::string_view command) {
  std::string field = "cmdstat_";
  field.append(command).append(":calls=");
  const auto at = info.find(field);
  return at == std::string_view::npos ? 0 : std::atoll(info.data() + at + field.size());
}

/// The server's counts so far: `scripts` (EVALSHA + EVAL) and `commands` (every command, including
/// those a script runs, which Redis counts under their own names; INFO itself excluded).
struct command_counts {
  std::int64_t scripts = 0;
  std::int64_t commands = 0;
};

/// Reads `INFO commandstats` on `admin`. Every command the patterns send is a script, so the
/// difference in `scripts` between two readings is the round trips made in between.
inline command_counts read_command_counts(blocking_connection& admin) {
  const std::string info = admin.call({"INFO", "commandstats"}).text;
  command_counts c;
  c.scripts = command_calls(info, "evalsha") + command_calls(info, "eval");
  for (std::size_t at = info.find(":calls="); at != std::string::npos; at = info.find(":calls=", at + 1))
    c.commands += std::atoll(info.c_str() + at + 7);
  c.commands -= command_calls(info, "info");
  return c;
}

}  // namespace redring::test
