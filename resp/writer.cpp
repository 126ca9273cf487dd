// SPDX-License-Identifier: MIT
#include "resp/writer.hpp"

#include <algorithm>
#include <cmath>

namespace redring::resp {
namespace {

// Longest decimal int64/uint64 text plus sign.
constexpr std::size_t max_integer_chars = 21;
// Longest shortest-round-trip double text ("-2.2250738585072014e-308" is 24).
constexpr std::size_t max_double_chars = 32;

inline char* put(char* p, std::string_view s) noexcept {
  // An empty view may have a null data(), which memcpy must not get even for 0 bytes.
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

inline char* put_crlf(char* p) noexcept {
  p[0] = '\r';
  p[1] = '\n';
  return p + 2;
}

inline char* put_uint(char* p, std::uint64_t v) noexcept {
  return std::to_chars(p, p + max_integer_chars, v).ptr;
}

inline char* put_int(char* p, std::int64_t v) noexcept {
  return std::to_chars(p, p + max_integer_chars, v).ptr;
}

// Shortest round-trip text of a double or a float (each its own: 0.1f is "0.1", not the double
// 0.10000000149011612); RESP3 spells the specials inf, -inf and nan.
template <class F>
inline char* put_double(char* p, F v) noexcept {
  if (std::isnan(v)) return put(p, "nan");
  if (std::isinf(v)) return put(p, v < 0 ? "-inf" : "inf");
  return std::to_chars(p, p + max_double_chars, v).ptr;
}

}  // namespace

std::size_t writer::format_double(char* out, double v) noexcept {
  return static_cast<std::size_t>(put_double(out, v) - out);
}

std::size_t writer::format_float(char* out, float v) noexcept {
  return static_cast<std::size_t>(put_double(out, v) - out);
}

void writer::grow(std::size_t n) {
  const std::size_t capacity = std::max({capacity_ * 2, size_ + n, std::size_t{256}});
  auto grown = std::make_unique_for_overwrite<char[]>(capacity);
  if (size_ != 0) std::memcpy(grown.get(), buf_.get(), size_);
  buf_ = std::move(grown);
  capacity_ = capacity;
}

void writer::reference(std::string_view bytes) {
  segments_.push_back(segment{nullptr, segment_start_, size_ - segment_start_});
  segments_.push_back(segment{bytes.data(), 0, bytes.size()});
  segment_start_ = size_;
  referenced_ += bytes.size();
}

std::span<const iovec> writer::iovecs() {
  iovecs_.clear();
  auto add = [this](const char* base, std::size_t length) {
    if (length != 0) iovecs_.push_back(iovec{const_cast<char*>(base), length});
  };
  for (const segment& s : segments_) {
    add(s.external != nullptr ? s.external : buf_.get() + s.offset, s.length);
  }
  add(buf_.get() + segment_start_, size_ - segment_start_);
  return iovecs_;
}

void writer::command(std::span<const std::string_view> args) {
  array_header_raw(type::array, args.size());
  for (const std::string_view a : args) bulk(a);
}

void writer::array_header_raw(type t, std::uint64_t count) {
  char* p = reserve(1 + max_integer_chars + 2);
  *p++ = static_cast<char>(t);
  p = put_uint(p, count);
  commit(put_crlf(p));
}

void writer::bulk(std::string_view bytes) {
  if (bytes.size() >= threshold_) {
    char* p = reserve(1 + max_integer_chars + 2);
    *p++ = '$';
    commit(put_crlf(put_uint(p, bytes.size())));
    reference(bytes);
    commit(put_crlf(reserve(2)));
    return;
  }
  copy_bulk(bytes);
}

void writer::copy_bulk(std::string_view bytes) {
  char* p = reserve(1 + max_integer_chars + 2 + bytes.size() + 2);
  *p++ = '$';
  p = put_crlf(put_uint(p, bytes.size()));
  p = put(p, bytes);
  commit(put_crlf(p));
}

void writer::bulk_signed(std::int64_t v) {
  char digits[max_integer_chars];
  const char* e = put_int(digits, v);
  copy_bulk(std::string_view(digits, static_cast<std::size_t>(e - digits)));
}

void writer::bulk_unsigned(std::uint64_t v) {
  char digits[max_integer_chars];
  const char* e = put_uint(digits, v);
  copy_bulk(std::string_view(digits, static_cast<std::size_t>(e - digits)));
}

void writer::bulk_double(double v) {
  char digits[max_double_chars];
  const char* e = put_double(digits, v);
  copy_bulk(std::string_view(digits, static_cast<std::size_t>(e - digits)));
}

void writer::bulk_float(float v) {
  char digits[max_double_chars];
  const char* e = put_double(digits, v);
  copy_bulk(std::string_view(digits, static_cast<std::size_t>(e - digits)));
}

void writer::line(char prefix, std::string_view text) {
  char* p = reserve(1 + text.size() + 2);
  *p++ = prefix;
  commit(put_crlf(put(p, text)));
}

void writer::simple_string(std::string_view text) { line('+', text); }
void writer::simple_error(std::string_view text) { line('-', text); }
void writer::big_number(std::string_view digits) { line('(', digits); }
void writer::double_text(std::string_view text) { line(',', text); }
void writer::null() { raw("_\r\n"); }
void writer::null_bulk() { raw("$-1\r\n"); }
void writer::null_array() { raw("*-1\r\n"); }
void writer::boolean(bool v) { raw(v ? "#t\r\n" : "#f\r\n"); }

void writer::integer(std::int64_t v) {
  char* p = reserve(1 + max_integer_chars + 2);
  *p++ = ':';
  commit(put_crlf(put_int(p, v)));
}

void writer::double_number(double v) {
  char* p = reserve(1 + max_double_chars + 2);
  *p++ = ',';
  commit(put_crlf(put_double(p, v)));
}

void writer::blob_error(std::string_view bytes) {
  char* p = reserve(1 + max_integer_chars + 2 + bytes.size() + 2);
  *p++ = '!';
  p = put_crlf(put_uint(p, bytes.size()));
  commit(put_crlf(put(p, bytes)));
}

void writer::verbatim_string(std::string_view format, std::string_view text) {
  const std::size_t length = format.size() + 1 + text.size();
  char* p = reserve(1 + max_integer_chars + 2 + length + 2);
  *p++ = '=';
  p = put_crlf(put_uint(p, length));
  p = put(p, format);
  *p++ = ':';
  commit(put_crlf(put(p, text)));
}

void writer::aggregate_header(type t, std::uint64_t count) { array_header_raw(t, count); }

void writer::streamed_header(type t) {
  char* p = reserve(4);
  *p++ = static_cast<char>(t);
  commit(put_crlf(put(p, "?")));
}

void writer::stream_part(std::string_view bytes) {
  char* p = reserve(1 + max_integer_chars + 2 + bytes.size() + 2);
  *p++ = ';';
  p = put_crlf(put_uint(p, bytes.size()));
  commit(put_crlf(put(p, bytes)));
}

void writer::raw(std::string_view bytes) {
  // Nothing to copy, and a default view's null data must not reach memcpy (undefined even for 0
  // bytes; an empty transaction's batch is one).
  if (bytes.empty()) return;
  char* p = reserve(bytes.size());
  commit(put(p, bytes));
}

}  // namespace redring::resp
