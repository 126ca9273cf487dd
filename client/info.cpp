// SPDX-License-Identifier: MIT
#include "client/info.hpp"

#include "resp/convert.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <optional>

namespace redring::client {

namespace {
// system_clock counts nanoseconds in an int64 (about +-292 years around 1970): converting a hostile
// reply's seconds could overflow (undefined behaviour), so they are checked first.
std::optional<std::chrono::system_clock::time_point> epoch_time(std::int64_t s, std::int64_t us) {
  using clock = std::chrono::system_clock;
  constexpr std::int64_t max_s = std::chrono::duration_cast<std::chrono::seconds>(clock::duration::max()).count() - 1;
  if (s < -max_s || s > max_s || us < 0 || us >= 1'000'000) return std::nullopt;
  return clock::time_point(
      std::chrono::duration_cast<clock::duration>(std::chrono::seconds(s) + std::chrono::microseconds(us)));
}
}  // namespace

std::optional<std::string_view> server_info::get(std::string_view section, std::string_view key) const {
  const auto s = sections.find(std::string(section));
  if (s == sections.end()) return std::nullopt;
  const auto k = s->second.find(std::string(key));
  if (k == s->second.end()) return std::nullopt;
  return std::string_view(k->second);
}

std::optional<std::string_view> server_info::find(std::string_view key) const {
  for (const auto& [name, entries] : sections) {
    if (const auto k = entries.find(std::string(key)); k != entries.end()) return std::string_view(k->second);
  }
  return std::nullopt;
}

server_info parse_info(std::string_view text) {
  server_info out;
  std::string section = "default";
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.starts_with("# ")) {
      section.assign(line.substr(2));
      std::transform(section.begin(), section.end(), section.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.sections[section][std::string(line.substr(0, colon))] = std::string(line.substr(colon + 1));
  }
  return out;
}

resp::result<std::vector<slowlog_entry>> to_slowlog(const resp::value& v) {
  if (v.is_error()) return resp::error{resp::errc::server_error, v.text};
  if (v.data_type != resp::type::array) return resp::error{resp::errc::unexpected_type, "SLOWLOG GET: not an array"};
  std::vector<slowlog_entry> out;
  for (const resp::value& e : v.elements) {
    if (e.elements.size() < 4) return resp::error{resp::errc::unexpected_size, "SLOWLOG entry too short"};
    slowlog_entry entry;
    auto id = resp::convert<std::int64_t>(e.elements[0]);
    auto when = resp::convert<std::int64_t>(e.elements[1]);
    auto micros = resp::convert<std::int64_t>(e.elements[2]);
    auto args = resp::convert<std::vector<std::string>>(e.elements[3]);
    if (!id || !when || !micros || !args) return resp::error{resp::errc::unexpected_type, "SLOWLOG entry fields"};
    const auto at = epoch_time(*when, 0);
    if (!at) return resp::error{resp::errc::out_of_range, "SLOWLOG entry time out of range"};
    entry.id = *id;
    entry.when = *at;
    entry.duration = std::chrono::microseconds(*micros);
    entry.arguments = std::move(*args);
    if (e.elements.size() >= 6) {
      entry.client_address = resp::convert<std::string>(e.elements[4]).value_or({});
      entry.client_name = resp::convert<std::string>(e.elements[5]).value_or({});
    }
    out.push_back(std::move(entry));
  }
  return out;
}

resp::result<std::chrono::system_clock::time_point> to_time(const resp::value& v) {
  auto parts = resp::convert<std::pair<std::int64_t, std::int64_t>>(v);
  if (!parts) return parts.error();
  const auto at = epoch_time(parts->first, parts->second);
  if (!at) return resp::error{resp::errc::out_of_range, "TIME out of range"};
  return *at;
}

}  // namespace redring::client
