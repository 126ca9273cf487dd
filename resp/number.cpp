// SPDX-License-Identifier: MIT
#include "resp/number.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <limits>

namespace redring::resp {
namespace {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Skips a run of digits from `i`; returns the index after it.
std::size_t skip_digits(std::string_view s, std::size_t i) noexcept {
  while (i < s.size() && is_digit(s[i])) ++i;
  return i;
}

}  // namespace

int64_result parse_int64(std::string_view text) noexcept {
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
    negative = text[i] == '-';
    ++i;
  }
  if (i == text.size()) return {0, errc::invalid_integer};
  // Up to 18 digits cannot overflow: accumulate unsigned, one compare per digit.
  if (text.size() - i <= 18) {
    std::uint64_t v = 0;
    for (; i < text.size(); ++i) {
      const unsigned d = static_cast<unsigned char>(text[i]) - unsigned{'0'};
      if (d > 9) return {0, errc::invalid_integer};
      v = v * 10 + d;
    }
    const auto s = static_cast<std::int64_t>(v);
    return {negative ? -s : s, errc{}};
  }
  // Accumulate as a negative number: its range holds INT64_MIN.
  constexpr std::int64_t min = std::numeric_limits<std::int64_t>::min();
  std::int64_t acc = 0;
  bool overflow = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (!is_digit(c)) return {0, errc::invalid_integer};
    const int d = c - '0';
    if (acc < (min + d) / 10) overflow = true;  // acc * 10 - d < min
    if (!overflow) acc = acc * 10 - d;
  }
  if (overflow) return {0, errc::integer_overflow};
  if (!negative) {
    if (acc == min) return {0, errc::integer_overflow};
    acc = -acc;
  }
  return {acc, errc{}};
}

bool is_valid_double(std::string_view s) noexcept {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  const std::string_view rest = s.substr(i);
  if (rest == "inf" || rest == "nan") return true;
  const std::size_t int_end = skip_digits(s, i);
  if (int_end == i) return false;
  i = int_end;
  if (i < s.size() && s[i] == '.') {
    const std::size_t frac_end = skip_digits(s, i + 1);
    if (frac_end == i + 1) return false;
    i = frac_end;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const std::size_t exp_end = skip_digits(s, i);
    if (exp_end == i) return false;
    i = exp_end;
  }
  return i == s.size();
}

bool parse_double(std::string_view s, double& out) noexcept {
  if (!is_valid_double(s)) return false;
  std::string_view body = s;
  bool negative = false;
  if (body.front() == '+' || body.front() == '-') {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (body == "inf") {
    out = negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    return true;
  }
  if (body == "nan") {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  double v = 0;
  const auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
  if (ec == std::errc::result_out_of_range) {
    // from_chars leaves v untouched. Whether the text under- or overflows depends on the magnitude
    // (a long fraction underflows without any exponent), so let strtod saturate it (fuzz bug 1).
    const std::string copy(body);
    v = std::strtod(copy.c_str(), nullptr);
  } else if (ec != std::errc{} || ptr != body.data() + body.size()) {
    return false;
  }
  out = negative ? -v : v;
  return true;
}

bool is_valid_big_number(std::string_view s) noexcept {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  return i < s.size() && skip_digits(s, i) == s.size();
}

}  // namespace redring::resp
