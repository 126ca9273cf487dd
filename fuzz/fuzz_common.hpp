// SPDX-License-Identifier: MIT
// Shared helpers of the libFuzzer targets: an invariant check that aborts, an independent checker of
// the node shape rules (node.hpp), a JSON validator, and small utilities over resp::value.
// Each target is one translation unit that includes this header once.
#pragma once

#include "resp/json.hpp"
#include "resp/limits.hpp"
#include "resp/node.hpp"
#include "resp/number.hpp"
#include "resp/reader.hpp"
#include "resp/value.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// UBSan only reports by default; a fuzzer must stop at the first finding. Sanitizer runtimes call these
// hooks at start-up (environment variables still override them).
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }
extern "C" const char* __asan_default_options() { return "detect_leaks=1"; }

namespace fuzz {

namespace resp = redring::resp;

[[noreturn]] inline void fail(const char* what, const char* file, int line) {
  std::fprintf(stderr, "\n=== fuzz invariant violated: %s (%s:%d)\n", what, file, line);
  std::fflush(stderr);
  std::abort();
}

}  // namespace fuzz

// Aborts (a libFuzzer crash, with the input saved) when `cond` is false.
#define FUZZ_CHECK(cond)                                        \
  do {                                                          \
    if (!(cond)) ::fuzz::fail(#cond, __FILE__, __LINE__);       \
  } while (0)

namespace fuzz {

// The limits used by the targets besides the defaults.
inline constexpr resp::limits tiny_limits{4096, 64, 8, 256};
// Very small: streamed strings and lines overflow quickly, so split feeding meets the limit paths.
inline constexpr resp::limits micro_limits{64, 8, 4, 16};

inline std::string decimal(std::int64_t v) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  return std::string(buf, end);
}

inline std::string to_json(const resp::value& v) {
  std::string out;
  resp::append_json(out, v);
  return out;
}

// The reader gives an integer's text as sent ("+007"); `write` sends the canonical decimal. Makes
// a value comparable with its re-encoded and re-parsed copy.
inline void normalise(resp::value& v) {
  if (v.data_type == resp::type::integer) v.text = decimal(v.integer);
  for (auto& e : v.elements) normalise(e);
  for (auto& a : v.attributes)
    for (auto& e : a) normalise(e);
}

inline bool same_double(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
}

// Oracles for number.hpp's grammars that share none of its code (its own checks cannot catch its
// own mistakes): a RESP3 double is `[+-]?(inf|nan|digits[.digits][(e|E)[+-]digits])`, decided
// here by strtod's parser (it must take the whole text) plus the rules where strtod is looser (hex,
// "infinity", ".5", "1.", spaces); an integer is what std::from_chars takes, after an optional '+';
// a big number is a sign and digits.
namespace oracle {

inline bool is_double(std::string_view t) {
  const std::size_t sign = !t.empty() && (t[0] == '+' || t[0] == '-') ? 1 : 0;
  const std::string_view body = t.substr(sign);
  if (body == "inf" || body == "nan") return true;
  if (body.empty() || body[0] < '0' || body[0] > '9') return false;  // ".5", "-e1"
  if (body.find_first_not_of("0123456789.eE+-") != std::string_view::npos) return false;  // hex, "infinity", spaces
  if (const auto dot = body.find('.'); dot != std::string_view::npos) {
    if (dot + 1 >= body.size() || body[dot + 1] < '0' || body[dot + 1] > '9') return false;  // "1.", "1.e5"
  }
  const std::string z(t);
  char* end = nullptr;
  (void)std::strtod(z.c_str(), &end);
  return end == z.c_str() + z.size();  // "1e", "1+2", "1.2.3", "1e5e5" stop early
}

inline bool is_big_number(std::string_view t) {
  const std::size_t sign = !t.empty() && (t[0] == '+' || t[0] == '-') ? 1 : 0;
  return t.size() > sign && t.find_first_not_of("0123456789", sign) == std::string_view::npos;
}

// The int64 of `[+-]?digits`, or false (not that shape, or outside int64).
inline bool int64_of(std::string_view t, std::int64_t& out) {
  if (!t.empty() && t[0] == '+') {
    t.remove_prefix(1);
    if (t.empty() || t[0] == '-') return false;  // from_chars would take "+-5" as -5
  }
  const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  return !t.empty() && ec == std::errc{} && p == t.data() + t.size();
}

}  // namespace oracle

// number.hpp's contract: a text accepted by is_valid_double converts to the correctly rounded double,
// saturating to +-inf or 0 like strtod (the oracle: glibc's strtod is correctly rounded too).
inline void check_parse_double(std::string_view text) {
  FUZZ_CHECK(resp::is_valid_double(text) == oracle::is_double(text));
  if (!oracle::is_double(text)) return;
  double got = 0;
  FUZZ_CHECK(resp::parse_double(text, got));
  const std::string z(text);
  const double want = std::strtod(z.c_str(), nullptr);
  // An out-of-range text saturates by its magnitude, as strtod does (fuzz/README.md, bug 1, fixed).
  if (!same_double(got, want)) {
    std::fprintf(stderr, "parse_double(\"%.100s\"%s) (%zu bytes) = %.17g, strtod says %.17g\n", z.c_str(),
                 z.size() > 100 ? "..." : "", z.size(), got, want);
    FUZZ_CHECK(same_double(got, want));
  }
}

// ---------------------------------------------------------------------------------------------
// A strict JSON validator (RFC 8259 grammar, UTF-8 strings), so that append_json's output is checked
// for being JSON at all, not only for being stable.
class json_validator {
 public:
  static bool valid(std::string_view s) {
    json_validator v{s};
    v.ws();
    if (!v.value(0)) return false;
    v.ws();
    return v.i_ == s.size();
  }

 private:
  explicit json_validator(std::string_view s) : s_(s) {}
  bool eof() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  void ws() {
    while (!eof() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++i_;
  }
  bool lit(std::string_view l) {
    if (s_.substr(i_, l.size()) != l) return false;
    i_ += l.size();
    return true;
  }
  bool value(int depth) {
    if (depth > 4096 || eof()) return false;
    switch (peek()) {
      case '{': return object(depth);
      case '[': return array(depth);
      case '"': return string();
      case 't': return lit("true");
      case 'f': return lit("false");
      case 'n': return lit("null");
      default: return number();
    }
  }
  bool object(int depth) {
    ++i_;
    ws();
    if (!eof() && peek() == '}') return ++i_, true;
    for (;;) {
      ws();
      if (eof() || peek() != '"' || !string()) return false;
      ws();
      if (eof() || peek() != ':') return false;
      ++i_;
      ws();
      if (!value(depth + 1)) return false;
      ws();
      if (eof()) return false;
      if (peek() == '}') return ++i_, true;
      if (peek() != ',') return false;
      ++i_;
    }
  }
  bool array(int depth) {
    ++i_;
    ws();
    if (!eof() && peek() == ']') return ++i_, true;
    for (;;) {
      ws();
      if (!value(depth + 1)) return false;
      ws();
      if (eof()) return false;
      if (peek() == ']') return ++i_, true;
      if (peek() != ',') return false;
      ++i_;
    }
  }
  static bool hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
  bool string() {
    ++i_;
    while (!eof()) {
      const auto c = static_cast<unsigned char>(peek());
      if (c == '"') return ++i_, true;
      if (c < 0x20) return false;
      if (c == '\\') {
        ++i_;
        if (eof()) return false;
        const char e = peek();
        if (e == 'u') {
          if (i_ + 4 >= s_.size()) return false;
          for (int k = 1; k <= 4; ++k)
            if (!hex(s_[i_ + k])) return false;
          i_ += 5;
          continue;
        }
        if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) return false;
        ++i_;
        continue;
      }
      if (c < 0x80) {
        ++i_;
        continue;
      }
      // UTF-8: only well-formed sequences (no overlongs, no surrogates).
      int n = 0;
      std::uint32_t cp = 0;
      if (c >= 0xC2 && c <= 0xDF) n = 1, cp = c & 0x1F;
      else if (c >= 0xE0 && c <= 0xEF) n = 2, cp = c & 0x0F;
      else if (c >= 0xF0 && c <= 0xF4) n = 3, cp = c & 0x07;
      else return false;
      if (i_ + static_cast<std::size_t>(n) >= s_.size()) return false;
      for (int k = 1; k <= n; ++k) {
        const auto cc = static_cast<unsigned char>(s_[i_ + k]);
        if ((cc & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3F);
      }
      if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return false;
      }
      i_ += static_cast<std::size_t>(n) + 1;
    }
    return false;
  }
  bool number() {
    const std::size_t start = i_;
    if (!eof() && peek() == '-') ++i_;
    if (eof()) return false;
    if (peek() == '0') {
      ++i_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
    } else {
      return false;
    }
    if (!eof() && peek() == '.') {
      ++i_;
      const std::size_t d = i_;
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
      if (i_ == d) return false;
    }
    if (!eof() && (peek() == 'e' || peek() == 'E')) {
      ++i_;
      if (!eof() && (peek() == '+' || peek() == '-')) ++i_;
      const std::size_t d = i_;
      while (!eof() && peek() >= '0' && peek() <= '9') ++i_;
      if (i_ == d) return false;
    }
    return i_ > start;
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

// ---------------------------------------------------------------------------------------------
// A node with its view copied out, for comparing node sequences across feeds.
struct owned_node {
  resp::type data_type;
  resp::type null_origin;
  bool streamed;
  bool ends_reply;
  std::uint32_t depth;
  std::uint64_t size;
  std::int64_t integer;
  std::string value;

  explicit owned_node(const resp::node& n)
      : data_type(n.data_type), null_origin(n.null_origin), streamed(n.streamed), ends_reply(n.ends_reply),
        depth(n.depth), size(n.size), integer(n.integer), value(n.value) {}
  friend bool operator==(const owned_node&, const owned_node&) = default;
};

// How a whole feed ended.
struct outcome {
  resp::status state = resp::status::need_more;
  resp::errc code{};
  std::uint64_t offset = 0;        // error offset, or the stream offset at need_more
  bool at_boundary = false;
  friend bool operator==(const outcome&, const outcome&) = default;
};

// ---------------------------------------------------------------------------------------------
// An independent model of the shape rules of node.hpp (and of the limits), fed every node in order.
class shape_checker {
 public:
  explicit shape_checker(const resp::limits& lim) : lim_(lim) {}

  // The bytes the next nodes may view: the input of the current read call.
  void set_input(std::string_view in) { in_ = in; }

  // True when no reply is open: no aggregate, streamed string or attribute.
  [[nodiscard]] bool at_boundary() const { return stack_.empty() && !after_attr_; }

  void on_node(const resp::node& n) {
    using resp::type;
    check_fields(n);
    const bool in_string = !stack_.empty() && stack_.back().kind == type::blob_string;
    if (in_string) {
      // Rule 3 for strings: parts, then the end at the string's own depth.
      FUZZ_CHECK(n.data_type == type::stream_part || n.data_type == type::end);
      if (n.data_type == type::stream_part) {
        FUZZ_CHECK(n.depth == stack_.size());
        FUZZ_CHECK(!n.value.empty());  // `;0` is the end, never a part
        stack_.back().bytes += n.value.size();
        FUZZ_CHECK(stack_.back().bytes <= lim_.max_bulk_length);
        FUZZ_CHECK(!n.ends_reply);
        return;
      }
      FUZZ_CHECK(n.depth + 1 == stack_.size());
      stack_.pop_back();
      complete(n);
      return;
    }
    FUZZ_CHECK(n.data_type != type::stream_part);
    if (n.data_type == type::end) {
      FUZZ_CHECK(!stack_.empty());
      const frame& f = stack_.back();
      FUZZ_CHECK(f.streamed);
      FUZZ_CHECK(!after_attr_);
      FUZZ_CHECK(f.kind != type::map || f.seen % 2 == 0);
      FUZZ_CHECK(n.depth + 1 == stack_.size());
      stack_.pop_back();
      complete(n);
      return;
    }
    // Rule 1: a new element sits one level below the innermost open aggregate.
    FUZZ_CHECK(n.depth == stack_.size());
    if (n.data_type == type::attribute) {
      // Rule 4: does not count as an element of the enclosing aggregate.
      FUZZ_CHECK(!n.ends_reply);
      if (n.size == 0) {
        after_attr_ = true;
      } else {
        push(type::attribute, false, n.size * 2);
      }
      return;
    }
    after_attr_ = false;
    if (!stack_.empty()) {
      frame& parent = stack_.back();
      if (parent.streamed) {
        ++parent.seen;
        FUZZ_CHECK((parent.seen + resp::multiplicity(parent.kind) - 1) / resp::multiplicity(parent.kind) <=
                   lim_.max_aggregate_size);
      } else {
        // Rule 2: no more children than declared.
        FUZZ_CHECK(parent.remaining > 0);
        --parent.remaining;
      }
    }
    if (n.streamed) {
      push(n.data_type, true, 0);
      FUZZ_CHECK(!n.ends_reply);
      return;
    }
    if (resp::is_aggregate(n.data_type) && n.size != 0) {
      push(n.data_type, false, n.size * resp::multiplicity(n.data_type));
      FUZZ_CHECK(!n.ends_reply);
      return;
    }
    complete(n);
  }

 private:
  struct frame {
    resp::type kind;
    bool streamed;
    std::uint64_t remaining;  // counted: child values still expected
    std::uint64_t seen = 0;   // streamed aggregate: children seen
    std::uint64_t bytes = 0;  // streamed string: payload so far
  };

  void push(resp::type kind, bool streamed, std::uint64_t remaining) {
    stack_.push_back(frame{kind, streamed, remaining});
    FUZZ_CHECK(stack_.size() <= lim_.max_depth);
  }

  // `n` completed an element: close the counted aggregates it completes; rule 5.
  void complete(const resp::node& n) {
    bool ends = false;
    for (;;) {
      if (stack_.empty()) {
        ends = true;
        break;
      }
      const frame& f = stack_.back();
      if (f.streamed || f.remaining != 0) break;
      const bool attribute = f.kind == resp::type::attribute;
      stack_.pop_back();
      if (attribute) {
        after_attr_ = true;
        break;
      }
    }
    FUZZ_CHECK(n.ends_reply == ends);
  }

  static bool has_crlf(std::string_view s) { return s.find("\r\n") != std::string_view::npos; }

  void check_fields(const resp::node& n) const {
    using resp::type;
    // The view lies inside the input of the call that produced the node.
    if (!n.value.empty()) {
      FUZZ_CHECK(n.value.data() >= in_.data());
      FUZZ_CHECK(n.value.data() + n.value.size() <= in_.data() + in_.size());
    }
    switch (n.data_type) {
      case type::simple_string:
      case type::simple_error:
        FUZZ_CHECK(!has_crlf(n.value));
        FUZZ_CHECK(n.value.size() <= lim_.max_line_length);
        break;
      case type::integer: {
        FUZZ_CHECK(n.value.size() <= lim_.max_line_length);
        std::int64_t want = 0;
        FUZZ_CHECK(oracle::int64_of(n.value, want));
        FUZZ_CHECK(want == n.integer);
        break;
      }
      case type::double_number:
        FUZZ_CHECK(n.value.size() <= lim_.max_line_length);
        FUZZ_CHECK(oracle::is_double(n.value));
        check_parse_double(n.value);
        break;
      case type::big_number:
        FUZZ_CHECK(n.value.size() <= lim_.max_line_length);
        FUZZ_CHECK(oracle::is_big_number(n.value));
        FUZZ_CHECK(oracle::is_double(n.value));  // [+-]?digits is a double too
        check_parse_double(n.value);
        break;
      case type::boolean:
        FUZZ_CHECK(n.value == "t" || n.value == "f");
        FUZZ_CHECK(n.integer == (n.value == "t" ? 1 : 0));
        break;
      case type::blob_string:
        FUZZ_CHECK(n.streamed || n.value.size() <= lim_.max_bulk_length);
        if (n.streamed) FUZZ_CHECK(n.value.empty());
        break;
      case type::blob_error:
      case type::stream_part:
        FUZZ_CHECK(n.value.size() <= lim_.max_bulk_length);
        break;
      case type::verbatim_string:
        FUZZ_CHECK(n.value.size() <= lim_.max_bulk_length);
        FUZZ_CHECK(n.value.size() >= 4 && n.value[3] == ':');
        FUZZ_CHECK(n.verbatim_format().size() == 3);
        break;
      case type::array:
      case type::set:
      case type::map:
      case type::attribute:
      case type::push:
      case type::null:
      case type::end:
        FUZZ_CHECK(n.value.empty());
        break;
      default: FUZZ_CHECK(!"node with an unknown type");
    }
    if (n.data_type != type::integer && n.data_type != type::boolean) FUZZ_CHECK(n.integer == 0);
    if (n.data_type == type::null) {
      FUZZ_CHECK(n.null_origin == type::blob_string || n.null_origin == type::array || n.null_origin == type::null);
    } else {
      FUZZ_CHECK(n.null_origin == type::null);
    }
    if (n.streamed) {
      FUZZ_CHECK(n.data_type == type::blob_string || n.data_type == type::array || n.data_type == type::set ||
                 n.data_type == type::map);
      FUZZ_CHECK(n.size == 0);
    }
    if (!resp::is_aggregate(n.data_type)) FUZZ_CHECK(n.size == 0);
    if (resp::is_aggregate(n.data_type)) FUZZ_CHECK(n.size <= lim_.max_aggregate_size);
  }

  resp::limits lim_;
  std::string_view in_;
  std::vector<frame> stack_;
  bool after_attr_ = false;
};

// ---------------------------------------------------------------------------------------------
// Builds values from nodes and checks the builder's own contract: `add` completes a reply exactly
// on the node that has ends_reply.
struct reply_collector {
  resp::value_builder builder;
  std::vector<resp::value> replies;

  void add(const resp::node& n) {
    const bool done = builder.add(n);
    FUZZ_CHECK(done == n.ends_reply);
    if (done) replies.push_back(builder.take());
  }
};

}  // namespace fuzz
