// SPDX-License-Identifier: MIT
// The reader's state machine. Grammar: RESP3 specification (redis/redis-specifications,
// protocol/RESP3.md), with RESP2's `$-1` / `*-1` nulls.
#include "resp/reader.hpp"

#include "resp/number.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace redring::resp {
namespace {

// Which bytes may start an element. Context rules for `;` and `.` are checked separately.
constexpr std::array<bool, 256> type_bytes = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view("+-:$*_,#!=(%~|>;.")) t[c] = true;
  return t;
}();

// Returns a pointer to the CR of the first CRLF in [p, end), or nullptr. A lone CR or LF is data.
// [lower, p) must be readable too (the input before the line).
inline const char* find_crlf(const char* p, const char* end, const char* lower) noexcept {
  // Most lines are a few bytes (+OK, :1, $16, *3): one 16-byte compare finds their CR without a
  // branch per byte (and without a length-dependent branch to mispredict).
#if defined(__SSE2__)
  if (end - lower >= 16) {
    // The 16 bytes from p or, for a line at the end of the input (the usual case when replies arrive
    // in small pieces), the 16 that end at `end`, ignoring those before p. Chosen without a branch:
    // which case it is depends on where the input was cut.
    const char* const base = std::min(p, end - 16);
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base)), _mm_set1_epi8('\r'))));
    mask >>= static_cast<unsigned>(p - base);  // in [0, 16]
    while (mask != 0) {
      const char* cr = p + __builtin_ctz(mask);
      if (cr + 1 == end) return nullptr;
      if (cr[1] == '\n') return cr;
      mask &= mask - 1;
    }
    p = base + 16;
  }
#endif
  const char* const short_end = end - p > 16 ? p + 16 : end;
  for (; p < short_end; ++p) {
    if (*p == '\r') {
      if (p + 1 == end) return nullptr;
      if (p[1] == '\n') return p;
    }
  }
  while (p < end) {
    const char* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(end - p)));
    if (cr == nullptr || cr + 1 == end) return nullptr;
    if (cr[1] == '\n') return cr;
    p = cr + 1;
  }
  return nullptr;
}

// Up to 8 ASCII digits at p (n in [0, 8], 8 bytes readable) as a number; false if one is not a digit.
// No branch depends on n: the digits are shifted to the top of a word padded with leading '0's.
inline bool eight_digits(const char* p, unsigned n, std::uint64_t& out) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  const unsigned shift = 8 * (8 - n);                       // in [0, 64]
  const std::uint64_t keep = shift == 64 ? 0 : v << (shift & 63);
  const std::uint64_t pad = shift == 64 ? ~std::uint64_t{0} : ~(~std::uint64_t{0} << (shift & 63));
  v = keep | (0x3030303030303030ULL & pad);
  const bool digits = ((v & 0xF0F0F0F0F0F0F0F0ULL) |
                       (((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) >> 4)) == 0x3333333333333333ULL;
  v -= 0x3030303030303030ULL;
  v = (v * 10) + (v >> 8);
  v = (((v & 0x000000FF000000FFULL) * 0x000F424000000064ULL) +
       (((v >> 16) & 0x000000FF000000FFULL) * 0x0000271000000001ULL)) >> 32;
  out = v;
  return digits;
}

// `[+-]?digits` with 1 to 16 digits, 16 bytes readable at `s`; no branch depends on the length.
inline bool fast_int64(std::string_view s, std::int64_t& out) noexcept {
  const char* p = s.data();
  const bool negative = p[0] == '-';
  const unsigned sign = (negative || p[0] == '+') ? 1 : 0;
  const auto n = static_cast<unsigned>(s.size()) - sign;
  if (n == 0 || n > 16) return false;
  const unsigned lo_n = n < 8 ? n : 8;
  const unsigned hi_n = n - lo_n;
  std::uint64_t hi = 0, lo = 0;
  // Both halves are parsed unconditionally (no short-circuit branch), then both must be digits.
  const unsigned ok = static_cast<unsigned>(eight_digits(p + sign, hi_n, hi)) &
                      static_cast<unsigned>(eight_digits(p + sign + hi_n, lo_n, lo));
  const auto v = static_cast<std::int64_t>(hi * 100000000ULL + lo);
  out = negative ? -v : v;
  return ok != 0;
}

enum class length_kind : std::uint8_t { number, null, streamed, invalid, too_large };

// Parses a length or count line: digits, or `-1` (if `allow_null`), or `?` (if `allow_stream`).
inline length_kind parse_length(std::string_view s, bool allow_null, bool allow_stream, std::uint64_t max,
                                std::uint64_t& out) noexcept {
  if (s.empty()) return length_kind::invalid;
  if (s[0] == '?' && s.size() == 1) return allow_stream ? length_kind::streamed : length_kind::invalid;
  if (s[0] == '-') return (allow_null && s == "-1") ? length_kind::null : length_kind::invalid;
  std::uint64_t v = 0;
  if (s.size() <= 18) {  // cannot wrap: one compare per digit, one range check at the end
    for (const char c : s) {
      const unsigned d = static_cast<unsigned char>(c) - unsigned{'0'};
      if (d > 9) return length_kind::invalid;
      v = v * 10 + d;
    }
    if (v > max) return length_kind::too_large;
    out = v;
    return length_kind::number;
  }
  bool over = false;
  for (const char c : s) {
    if (c < '0' || c > '9') return length_kind::invalid;
    if (!over) {
      v = v * 10 + static_cast<std::uint64_t>(c - '0');
      over = v > max;  // max <= 2^64 / 10 in practice; stop accumulating before wrapping
      if (v > (std::uint64_t{1} << 60)) over = true;
    }
  }
  if (over) return length_kind::too_large;
  out = v;
  return length_kind::number;
}

}  // namespace

void reader::reset() noexcept {
  stack_.clear();
  offset_ = 0;
  input_begin_ = nullptr;
  wait_ = 1;
  scanned_ = 0;
  body_length_ = 0;
  body_depth_ = 0;
  pending_body_ = false;
  after_attribute_ = false;
  failed_ = false;
  error_ = {};
}

reader::step reader::fail(errc code, const char* at) {
  failed_ = true;
  pending_body_ = false;  // so that read() goes straight to read_some, which reports the error
  wait_ = 0;
  error_ = {code, offset_ + static_cast<std::uint64_t>(at - input_begin_)};
  return step::error;
}

bool reader::push_frame(type kind, std::uint64_t count, bool streamed, const char* at) {
  if (stack_.size() >= limits_.max_depth) {
    fail(errc::nesting_too_deep, at);
    return false;
  }
  stack_.push_back(frame{count, 0, kind, streamed});
  return true;
}

// Counts a new value against the enclosing aggregate. Attributes and stream parts do not count.
bool reader::begin_element(const char* at) {
  after_attribute_ = false;
  if (stack_.empty()) return true;
  frame& f = stack_.back();
  if (!f.streamed) {
    --f.remaining;  // never zero here: a counted frame is popped when it reaches zero
    return true;
  }
  ++f.remaining;
  const std::uint64_t m = multiplicity(f.kind);
  if ((f.remaining + m - 1) / m > limits_.max_aggregate_size) {
    fail(errc::aggregate_too_large, at);
    return false;
  }
  return true;
}

// A value just completed: close every counted aggregate it completes, innermost first.
void reader::finish_element(node& out) {
  while (!stack_.empty()) {
    const frame& f = stack_.back();
    if (f.streamed || f.remaining != 0) return;
    const bool attribute = f.kind == type::attribute;
    stack_.pop_back();
    if (attribute) {
      // An attribute's last value closes it; the annotated value follows at the attribute's depth.
      after_attribute_ = true;
      return;
    }
  }
  out.ends_reply = !after_attribute_;
}

[[gnu::always_inline]] inline reader::step reader::parse_body(const char*& p, const char* end, node& out) {
  const std::uint64_t len = body_length_;
  if (static_cast<std::uint64_t>(end - p) < len + 2) return step::need_more;
  if (p[len] != '\r' || p[len + 1] != '\n') return fail(errc::missing_crlf, p + len);
  if (body_type_ == type::verbatim_string && (len < 4 || p[3] != ':')) return fail(errc::invalid_verbatim, p);
  out = node{};
  out.data_type = body_type_;
  out.depth = body_depth_;
  out.value = std::string_view(p, len);
  p += len + 2;
  pending_body_ = false;
  if (body_type_ != type::stream_part) finish_element(out);
  return step::emitted;
}

[[gnu::always_inline]] inline reader::step reader::parse_element(const char*& p, const char* end, node& out) {
  const char* const start = p;
  const char c = *start;
  // Context rules that the type byte alone decides.
  const bool in_stream = !stack_.empty() && stack_.back().streamed;
  const bool in_streamed_string = in_stream && stack_.back().kind == type::blob_string;
  if (in_streamed_string) {
    if (c != ';') return fail(errc::invalid_stream_part, start);
  } else if (c == ';') {
    return fail(errc::unexpected_stream_part, start);
  } else if (c == '.') {
    if (!in_stream) return fail(errc::unexpected_end, start);
  } else if (!type_bytes[static_cast<unsigned char>(c)]) {
    return fail(errc::invalid_type_byte, start);
  }

  // Find the line, resuming the scan where an earlier call stopped.
  const auto content = static_cast<std::uint64_t>(end - start - 1);
  if (scanned_ > content) scanned_ = 0;  // the caller broke the contract; rescan rather than overrun
  const char* cr = find_crlf(start + 1 + scanned_, end, input_begin_);
  if (cr == nullptr) {
    // With max + 2 content bytes and no CRLF, the line is certainly longer than max.
    if (content >= limits_.max_line_length + 2) return fail(errc::line_too_long, start + 1 + limits_.max_line_length);
    scanned_ = content == 0 ? 0 : content - 1;  // the last byte may be a CR
    return step::need_more;
  }
  scanned_ = 0;
  if (static_cast<std::uint64_t>(cr - start - 1) > limits_.max_line_length) {
    return fail(errc::line_too_long, start + 1 + limits_.max_line_length);
  }
  return parse_line_element(start, cr, p, out);
}

[[gnu::always_inline]] inline reader::step reader::parse_line_element(const char* start, const char* cr, const char*& p, node& out) {
  const auto t = static_cast<type>(*start);
  const std::string_view line(start + 1, static_cast<std::size_t>(cr - start - 1));
  const char* const after = cr + 2;
  const auto depth = static_cast<std::uint32_t>(stack_.size());
  out = node{};
  out.data_type = t;
  out.depth = depth;

  switch (t) {
    case type::simple_string:
    case type::simple_error:
      if (!begin_element(start)) return step::error;
      out.value = line;
      break;

    case type::integer: {
      std::int64_t v = 0;
      // The 16-byte read stays inside the input; a text fast_int64 rejects goes the strict way.
      if (!(end_ - line.data() >= 24 && line.size() <= 17 && fast_int64(line, v))) {
        const int64_result r = parse_int64(line);
        if (r.code != errc{}) return fail(r.code, start + 1);
        v = r.value;
      }
      if (!begin_element(start)) return step::error;
      out.integer = v;
      out.value = line;
      break;
    }

    case type::double_number:
      if (!is_valid_double(line)) return fail(errc::invalid_double, start + 1);
      if (!begin_element(start)) return step::error;
      out.value = line;
      break;

    case type::big_number:
      if (!is_valid_big_number(line)) return fail(errc::invalid_big_number, start + 1);
      if (!begin_element(start)) return step::error;
      out.value = line;
      break;

    case type::boolean:
      if (line != "t" && line != "f") return fail(errc::invalid_boolean, start + 1);
      if (!begin_element(start)) return step::error;
      out.integer = line[0] == 't' ? 1 : 0;
      out.value = line;
      break;

    case type::null:
      if (!line.empty()) return fail(errc::invalid_null, start + 1);
      if (!begin_element(start)) return step::error;
      break;

    case type::end: {
      // Context checked: the innermost frame is a streamed aggregate.
      const frame& f = stack_.back();
      if (!line.empty() || after_attribute_ || (f.kind == type::map && f.remaining % 2 != 0)) {
        return fail(errc::unexpected_end, start);
      }
      out.depth = depth - 1;
      stack_.pop_back();
      p = after;
      finish_element(out);
      return step::emitted;
    }

    case type::blob_string:
    case type::blob_error:
    case type::verbatim_string:
    case type::stream_part: {
      std::uint64_t len = 0;
      const bool blob = t == type::blob_string;
      switch (parse_length(line, blob, blob, limits_.max_bulk_length, len)) {
        case length_kind::invalid: return fail(errc::invalid_length, start + 1);
        case length_kind::too_large: return fail(errc::bulk_too_long, start + 1);
        case length_kind::null:
          if (!begin_element(start)) return step::error;
          out.data_type = type::null;
          out.null_origin = type::blob_string;
          p = after;
          finish_element(out);
          return step::emitted;
        case length_kind::streamed:
          if (!begin_element(start) || !push_frame(type::blob_string, 0, true, start)) return step::error;
          out.streamed = true;
          p = after;
          return step::emitted;
        case length_kind::number: break;
      }
      if (t == type::stream_part) {
        frame& f = stack_.back();  // context checked: a streamed string
        if (len == 0) {            // `;0` closes the string
          out.data_type = type::end;
          out.depth = depth - 1;
          stack_.pop_back();
          p = after;
          finish_element(out);
          return step::emitted;
        }
        f.bytes += len;
        if (f.bytes > limits_.max_bulk_length) return fail(errc::bulk_too_long, start + 1);
      } else if (!begin_element(start)) {
        return step::error;
      }
      // The header is consumed now, so a payload arriving in pieces is never rescanned.
      p = after;
      body_type_ = t;
      body_length_ = len;
      body_depth_ = depth;
      pending_body_ = true;
      // A payload still arriving (the common case when a reply trickles in): no call, no node.
      if (static_cast<std::uint64_t>(end_ - p) < len + 2) return step::need_more;
      return parse_body(p, end_, out);
    }

    case type::array:
    case type::set:
    case type::map:
    case type::attribute:
    case type::push: {
      std::uint64_t count = 0;
      const bool can_stream = t == type::array || t == type::set || t == type::map;
      switch (parse_length(line, t == type::array, can_stream, limits_.max_aggregate_size, count)) {
        case length_kind::invalid: return fail(errc::invalid_length, start + 1);
        case length_kind::too_large: return fail(errc::aggregate_too_large, start + 1);
        case length_kind::null:
          if (!begin_element(start)) return step::error;
          out.data_type = type::null;
          out.null_origin = type::array;
          p = after;
          finish_element(out);
          return step::emitted;
        case length_kind::streamed:
          if (!begin_element(start) || !push_frame(t, 0, true, start)) return step::error;
          out.streamed = true;
          p = after;
          return step::emitted;
        case length_kind::number: break;
      }
      out.size = count;
      // A refused header stays unconsumed, like every other bad element: `p` moves only on success.
      if (t == type::attribute) {
        // An attribute annotates the next value and is not an element of the enclosing aggregate.
        if (count == 0) {
          after_attribute_ = true;
        } else if (!push_frame(t, count * 2, false, start)) {
          return step::error;
        }
        p = after;
        return step::emitted;
      }
      if (!begin_element(start)) return step::error;
      if (count != 0 && !push_frame(t, count * multiplicity(t), false, start)) return step::error;
      p = after;
      if (count == 0) finish_element(out);
      return step::emitted;
    }
  }
  p = after;
  finish_element(out);
  return step::emitted;
}

namespace {

// Bit i set where p[i] is a CR, for the 16 bytes at p.
inline std::uint32_t cr_mask16(const char* p) noexcept {
#if defined(__SSE2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
#else
  std::uint32_t m = 0;
  for (unsigned i = 0; i < 16; ++i) m |= static_cast<std::uint32_t>(p[i] == '\r') << i;
  return m;
#endif
}

// The header line of a blob string or array at p (its type byte; 32 readable bytes): 1 to 18
// digits, then CRLF, a length or count no larger than `max`. Returns the first byte after the CRLF,
// or nullptr for anything else (no digit, a sign, `?`, more digits, not CRLF after them): the
// general path decides those (parse_length). All digits then CR LF: that CRLF is the line's first.
inline const char* length_line(const char* p, std::uint64_t max, std::uint64_t& out) noexcept {
  std::uint64_t v = 0;
  const char* const q = detail::scan_digits(p + 1, p + 19, v);  // 18 digits cannot wrap
  if (q == p + 1 || q[0] != '\r' || q[1] != '\n' || v > max) return nullptr;
  out = v;
  return q + 2;
}

}  // namespace

// The general per-element path, parse_element, decides every case with the context checks, the line
// search, a node zeroed then filled, begin_element and finish_element. Most elements of real replies
// are a few common shapes, parsed here with each node written once and the enclosing frame kept in
// a local (`top`), so counting an element is one decrement:
//   `$<n>` blob strings with the payload and its CRLF present (a payload still arriving: its header
//   is consumed and the call ends, as in the general path);
//   `+` and `-` lines of up to 14 bytes; `:` integers (fast_int64's forms, up to 17 bytes);
//   `*<n>` arrays (`*0` is a complete value; n > 0 opens a frame).
// Each is parsed only where the general path would accept it and do exactly the same: no attribute
// just closed, the enclosing frame counted (not a stream), no partial line resumed (`scanned_`), a
// line limit above any line taken here, at least 32 bytes left (so no bounds check in the line
// search; read_some checks it before the call), every other limit under its bound, the line's first
// CR followed by its LF. Anything else (other types, nulls, streams, attributes, maps, sets, pushes,
// a limit reached, an invalid or long line, a payload without its CRLF) returns, with `p` at that
// element, to read_some, which parses one element the general way and calls again. The general path
// then re-reads at most the 32 bytes looked at here, once (no rescan across calls). So nodes, errors
// and offsets are the general path's; CommonElementsMatchTheGeneralPathForEverySplit
// (tests/resp/reader_test.cpp) checks it, its small pieces never leaving 32 bytes for this path.
// Returns the nodes written, n included. Out of line: read_some's general loop then compiles as it
// did without it (no registers shared with this loop), and one call runs through every common
// element in a row.
[[gnu::noinline]] std::size_t reader::common_elements(const char*& p, const char* end, std::span<node> out,
                                                      std::size_t n) {
  if (after_attribute_ || scanned_ != 0 || limits_.max_line_length < 32) return n;
  frame* top = stack_.empty() ? nullptr : &stack_.back();
  if (top != nullptr && top->streamed) return n;
  auto depth = static_cast<std::uint32_t>(stack_.size());
  while (n != out.size() && end - p >= 32) {
    node& o = out[n];
    const char c = *p;
    const char* next;
    if (c == '$') {
      std::uint64_t len = 0;
      const char* const payload = length_line(p, limits_.max_bulk_length, len);
      if (payload == nullptr) return n;
      if (static_cast<std::uint64_t>(end - payload) < len + 2) {
        // The payload still arriving: consume the header and wait, as parse_line_element does.
        if (top != nullptr) --top->remaining;
        body_type_ = type::blob_string;
        body_length_ = len;
        body_depth_ = depth;
        pending_body_ = true;
        p = payload;
        return n;
      }
      if (payload[len] != '\r' || payload[len + 1] != '\n') return n;  // the general path reports it
      o = node{.data_type = type::blob_string, .ends_reply = top == nullptr, .depth = depth,
               .value = std::string_view(payload, len)};
      next = payload + len + 2;
    } else if (c == '+' || c == '-') {
      const std::uint32_t cr = cr_mask16(p);  // bit 0 is clear: p[0] is the type byte
      if (cr == 0) return n;
      const auto at = static_cast<std::size_t>(__builtin_ctz(cr));
      if (p[at + 1] != '\n') return n;  // a lone CR: the general path finds the line's end
      o = node{.data_type = static_cast<type>(c), .ends_reply = top == nullptr, .depth = depth,
               .value = std::string_view(p + 1, at - 1)};
      next = p + at + 2;
    } else if (c == ':') {
      const std::uint32_t cr = cr_mask16(p) | cr_mask16(p + 16) << 16;
      if (cr == 0) return n;
      const auto at = static_cast<std::size_t>(__builtin_ctz(cr));
      const std::string_view line(p + 1, at - 1);
      std::int64_t v = 0;
      // The length first: a CR at 31 has its LF outside the 32 bytes. fast_int64 reads at most 18
      // bytes from p.
      if (line.size() > 17 || p[at + 1] != '\n' || !fast_int64(line, v)) return n;
      o = node{.data_type = type::integer, .ends_reply = top == nullptr, .depth = depth, .integer = v, .value = line};
      next = p + at + 2;
    } else if (c == '*') {
      std::uint64_t count = 0;
      next = length_line(p, limits_.max_aggregate_size, count);
      if (next == nullptr) return n;
      if (count != 0) {
        if (depth >= limits_.max_depth) return n;  // the general path reports nesting_too_deep
        o = node{.data_type = type::array, .depth = depth, .size = count};
        if (top != nullptr) --top->remaining;  // not to zero: the frame closes after this array does
        stack_.push_back(frame{count, 0, type::array, false});
        top = &stack_.back();
        ++depth;
        p = next;
        ++n;
        continue;
      }
      o = node{.data_type = type::array, .ends_reply = top == nullptr, .depth = depth};
    } else {
      return n;
    }
    // A complete value: count it, and close the aggregates it completes (rarely: finish_element).
    p = next;
    ++n;
    if (top == nullptr || --top->remaining != 0) continue;
    finish_element(o);
    top = stack_.empty() ? nullptr : &stack_.back();
    depth = static_cast<std::uint32_t>(stack_.size());
    if (after_attribute_ || (top != nullptr && top->streamed)) return n;
  }
  return n;
}

// Parses into `out` until it is full (ok), the input runs out (need-more, with `wait_` set for the
// next call) or an error (`error_`, sticky). `read` turns the outcome into a read_result.
// Aligned to a cache line: its loop ran 5 % slower on C3 in a build where only code elsewhere had
// moved it by 16 bytes; aligned, its speed no longer depends on what is linked before it.
[[gnu::aligned(64)]] reader::progress reader::read_some(std::string_view input, std::span<node> out) {
  if (failed_) return {0, 0, status::error};
  const char* const begin = input.data();
  const char* const end = begin + input.size();
  input_begin_ = begin;
  end_ = end;
  const char* p = begin;
  std::size_t n = 0;
  step s = step::emitted;
  // A pending payload is the only state a call resumes in that is not an element's start (a partial
  // line is rescanned from its type byte, past `scanned_`).
  if (pending_body_ && !out.empty()) {
    s = parse_body(p, end, out[0]);
    n = s == step::emitted ? 1 : 0;
  }
  while (s == step::emitted && n < out.size()) {
    // The length check here, not in the call: pieces of a trickling reply (C6) are shorter, and a
    // call that returns at once still saves and restores its registers.
    if (end - p >= 32) n = common_elements(p, end, out, n);
    if (n == out.size()) break;
    if (pending_body_ || p == end) {  // a blob header consumed, its payload not here yet; or nothing left
      s = step::need_more;
      break;
    }
    s = parse_element(p, end, out[n]);  // one element common_elements left
    if (s != step::emitted) break;
    ++n;
  }
  const auto consumed = static_cast<std::size_t>(p - begin);
  offset_ += consumed;
  const auto nodes = static_cast<std::uint32_t>(n);
  switch (s) {
    case step::emitted:
      wait_ = 1;
      return {consumed, nodes, status::ok};
    case step::need_more:
      // A partial line (or nothing) waits for one more byte, a payload for all of it and its CRLF.
      wait_ = pending_body_ ? body_length_ + 2 : static_cast<std::uint64_t>(end - p) + 1;
      return {consumed, nodes, status::need_more};
    case step::error: break;
  }
  return {consumed, nodes, status::error};  // `fail` set wait_ to 0
}

// The fast paths' way out: out[0, emitted) is written from input[0, used); the rest is read_some's.
reader::progress reader::read_after(std::string_view input, std::size_t used, std::uint32_t emitted,
                                    std::span<node> out) {
  offset_ += used;  // first: read_some's error offsets count from its own input
  const progress rest = read_some(input.substr(used), out.subspan(emitted));
  return {rest.consumed + used, rest.nodes + emitted, rest.state};
}

}  // namespace redring::resp
