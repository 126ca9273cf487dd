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
  std::map<std::string, std::map<std::string, std::string>> sections;
  /// The value of `key` in `section` (lower-case section name, as INFO prints it after "# ").
  [[nodiscard]] std::optional<std::string_view> get(std::string_view section, std::string_view key) const;
  /// The value of `key` in any section.
  [[nodiscard]] std::optional<std::string_view> find(std::string_view key) const;
};

/// Parses INFO's text ("# Server\r\nredis_version:7.0.15\r\n..."). Lines without ':' are skipped.
[[nodiscard]] server_info parse_info(std::string_view text);

/// One SLOWLOG GET entry.
struct slowlog_entry {
  std::int64_t id = 0;
  std::chrono::system_clock::time_point when;
  std::chrono::microseconds duration{0};
  std::vector<std::string> arguments;
  std::string client_address;  ///< Redis 4+.
  std::string client_name;     ///< Redis 4+.
};

/// Converts SLOWLOG GET's reply. A time outside system_clock's range is `resp::errc::out_of_range`.
[[nodiscard]] resp::result<std::vector<slowlog_entry>> to_slowlog(const resp::value& v);

/// Converts TIME's reply ([seconds, microseconds]) to a time point. Seconds outside system_clock's
/// range (about +-292 years around 1970) or microseconds outside [0, 10^6) are `resp::errc::out_of_range`.
[[nodiscard]] resp::result<std::chrono::system_clock::time_point> to_time(const resp::value& v);

}  // namespace redring::client
