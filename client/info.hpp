// SPDX-License-Identifier: MIT
// Parsed replies of INFO, TIME and SLOWLOG GET.
#pragma once

#include "resp/result.hpp"
#include "resp/value.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redring::client {

/// INFO's text as sections of key/value pairs: `info.sections["server"]["redis_version"]`.
struct server_info {
  /// Section name (lower case; "default" for lines before the first "# " header) -> key -> value.
  std::map<std::string, std::map<std::string, std::string>> sections;
  /// The value of `key` in `section` (lower-case section name, as INFO prints it after "# "). The
  /// view points into `sections`: it lives as long as this server_info (and that value is not
  /// changed). Keep the server_info: `(co_await redis.info())->get(...)` dangles once the statement
  /// ends, with the temporary result that held it.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view section, std::string_view key) const;
  /// The value of `key` in the first section, by name order, that has it. The view lives as long as
  /// `get`'s (as long as this server_info: not past a temporary's statement).
  [[nodiscard]] std::optional<std::string_view> find(std::string_view key) const;
};

/// Parses INFO's text ("# Server\r\nredis_version:7.0.15\r\n..."). Lines without ':' are skipped.
[[nodiscard]] server_info parse_info(std::string_view text);

/// One SLOWLOG GET entry.
struct slowlog_entry {
  std::int64_t id = 0;                         ///< The entry's unique, increasing id.
  std::chrono::system_clock::time_point when;  ///< When the command was processed (whole seconds).
  std::chrono::microseconds duration{0};       ///< How long the command ran.
  std::vector<std::string> arguments;          ///< The command and its arguments (the server may shorten them).
  std::string client_address;  ///< "ip:port" of the client (Redis 4+; empty before).
  std::string client_name;     ///< CLIENT SETNAME's name (Redis 4+; empty before or when unnamed).
};

/// Converts SLOWLOG GET's reply. A time outside system_clock's range is `resp::errc::out_of_range`.
[[nodiscard]] resp::result<std::vector<slowlog_entry>> to_slowlog(const resp::value& v);

/// Converts TIME's reply ([seconds, microseconds]) to a time point. Seconds outside system_clock's
/// range (about +-292 years around 1970) or microseconds outside [0, 10^6) are `resp::errc::out_of_range`.
[[nodiscard]] resp::result<std::chrono::system_clock::time_point> to_time(const resp::value& v);

}  // namespace redring::client
