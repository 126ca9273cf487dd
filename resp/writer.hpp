// SPDX-License-Identifier: MIT
// The RESP encoder: commands as arrays of bulk strings, and every RESP3 reply type, into one reusable
// buffer; large payloads are referenced, not copied.
#pragma once

#include "resp/type.hpp"

#include <sys/uio.h>

#include <bit>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ranges>
#include <span>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace redring::resp {

/// Something the writer turns into one bulk-string argument: text, an integer or a floating point
/// number (written in its shortest round-trip form). Other types convert to one of these first.
template <class T>
concept scalar_argument = std::convertible_to<const T&, std::string_view> ||
                          (std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
                           !std::same_as<T, wchar_t> && !std::same_as<T, char8_t> && !std::same_as<T, char16_t> &&
                           !std::same_as<T, char32_t>) ||
                          std::floating_point<T>;

/// Two scalar arguments as one tuple-like value (`std::pair<std::string, std::string>`, a map's
/// entry): two bulk strings. Only as the element of a range: MSET's or HSET's key/value pairs.
template <class T>
concept pair_argument = requires { std::tuple_size<T>::value; } && std::tuple_size<T>::value == 2 &&
                        scalar_argument<std::remove_cvref_t<std::tuple_element_t<0, T>>> &&
                        scalar_argument<std::remove_cvref_t<std::tuple_element_t<1, T>>>;

/// A range of scalar arguments (e.g. `std::vector<std::string>` of keys): one bulk string per element;
/// or a range of pairs (e.g. `std::map<std::string, std::string>`): two per element, first then second.
template <class T>
concept range_argument = std::ranges::sized_range<const T> && !scalar_argument<T> &&
                         (scalar_argument<std::ranges::range_value_t<const T>> ||
                          pair_argument<std::ranges::range_value_t<const T>>);

/// Anything `writer::command` accepts.
template <class T>
concept argument = scalar_argument<T> || range_argument<T>;

/// A string as a template argument (`literal<"GET">`); see `literal`.
template <std::size_t N>
struct fixed_string {
  char chars[N]{};
  consteval fixed_string(const char (&s)[N]) noexcept {  // NOLINT: implicit, for `literal<"GET">`
    for (std::size_t i = 0; i < N; ++i) chars[i] = s[i];
  }
};

/// Text known at compile time, such as a command's name: `command(lit<"GET">, key)`. An
/// argument like any text, but the writer encodes it from constants (`$3\r\nGET\r\n` folds into a
/// few stores, with no length to measure or write digit by digit), and it takes no space where an
/// awaitable stores its arguments. The client's typed helpers name their commands so.
template <fixed_string S>
struct literal {
  /// The text, without the literal's terminating NUL.
  static constexpr std::string_view text{S.chars, sizeof(S.chars) - 1};
  constexpr operator std::string_view() const noexcept { return text; }  // NOLINT: an argument converts
};

/// `literal<S>{}`, shorter: `command(resp::lit<"GET">, key)`.
template <fixed_string S>
inline constexpr literal<S> lit{};

/// True for `literal<S>` types.
template <class T>
inline constexpr bool is_literal_v = false;
template <fixed_string S>
inline constexpr bool is_literal_v<literal<S>> = true;

/// The text of a char array argument, as strlen would find it (up to the first NUL, or the whole
/// array if it has none), without a call: arrays of up to 8 bytes (command names as literals) are
/// searched in one word, larger ones by char_traits::find.
template <std::size_t N>
[[gnu::always_inline]] inline std::string_view array_text(const char (&a)[N]) noexcept {
  if constexpr (N <= 8 && std::endian::native == std::endian::little) {
    std::uint64_t v = ~std::uint64_t{0};  // bytes past the array count as non-NUL
    std::memcpy(&v, a, N);
    const std::uint64_t zero = (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL;
    return std::string_view(a, zero == 0 ? N : static_cast<std::size_t>(__builtin_ctzll(zero)) / 8);
  } else {
    const char* const end = std::char_traits<char>::find(a, N, '\0');
    return std::string_view(a, end == nullptr ? N : static_cast<std::size_t>(end - a));
  }
}

/// Payloads of this many bytes or more are referenced by an iovec instead of copied.
inline constexpr std::size_t default_reference_threshold = 16 * 1024;

/// Encodes RESP into a growable buffer that is reused across `clear()`s, so that steady-state encoding
/// allocates nothing.
///
/// Lifetime: a payload of `reference_threshold` bytes or more is not copied; the writer keeps a pointer
/// to it, and the caller must keep those bytes alive and unchanged until it is done with `iovecs()`.
/// Views returned by `data()` and `iovecs()` are valid until the next call that writes or clears.
class writer {
 public:
  /// A writer that references payloads of `reference_threshold` bytes or more (0: never reference).
  explicit writer(std::size_t reference_threshold = default_reference_threshold) noexcept
      : threshold_(reference_threshold == 0 ? SIZE_MAX : reference_threshold) {}

  /// Changes the reference threshold for what is written next (0: never reference).
  void set_reference_threshold(std::size_t bytes) noexcept { threshold_ = bytes == 0 ? SIZE_MAX : bytes; }

  /// Appends a command: an array of one bulk string per scalar argument and per element of each range.
  /// `command("SET", key, 42)` writes `*3\r\n$3\r\nSET\r\n$...`.
  template <argument... Args>
  void command(const Args&... args) {
    // Fast path: one capacity check for the whole command, lengths written inline. Taken unless a
    // payload is to be referenced (then each argument goes through `bulk`).
    std::size_t bound = 1 + max_digits + 2;
    if ((add_bound(bound, args) && ...)) {
      char* p = reserve(bound);
      *p++ = '*';
      p = put_length(p, (argument_count(args) + ... + 0));
      (put_argument(p, args), ...);
      commit(p);
      return;
    }
    array_header_raw(type::array, (argument_count(args) + ... + 0));
    (write_argument(args), ...);
  }

  /// Appends a command from already-split arguments.
  void command(std::span<const std::string_view> args);

  /// Appends one bulk string (`$<len>\r\n<bytes>\r\n`); for building commands piece by piece after
  /// `aggregate_header(type::array, n)`.
  void bulk(std::string_view bytes);
  /// Appends an integer of any type (not bool or a character type) as a bulk string argument: `bulk(5)`,
  /// `bulk(std::size_t{n})`, an unsigned above INT64_MAX too.
  template <class I>
    requires(std::integral<I> && scalar_argument<I>)  // not bool, nor a character type
  void bulk(I v) {
    if constexpr (std::is_signed_v<I>) {
      bulk_signed(static_cast<std::int64_t>(v));
    } else {
      bulk_unsigned(static_cast<std::uint64_t>(v));
    }
  }
  /// Appends a floating point number as a bulk string argument in the shortest form that reads back
  /// as the same value of its own type (a float 0.1f is "0.1"); "inf", "-inf", "nan" too.
  template <std::floating_point F>
  void bulk(F v) {
    if constexpr (std::same_as<F, float>) {
      bulk_float(v);
    } else {
      bulk_double(static_cast<double>(v));
    }
  }

  // --- RESP3 values (for fake servers, the fuzzer and round-trip tests) ---

  /// `+text\r\n`. `text` must not contain CRLF (not checked: the fuzzer writes invalid frames on purpose).
  void simple_string(std::string_view text);
  /// `-text\r\n`.
  void simple_error(std::string_view text);
  /// `:v\r\n`.
  void integer(std::int64_t v);
  /// `$len\r\nbytes\r\n`. Same as `bulk`.
  void blob_string(std::string_view bytes) { bulk(bytes); }
  /// `!len\r\nbytes\r\n`.
  void blob_error(std::string_view bytes);
  /// `=len\r\nfmt:text\r\n`; `format` should be 3 bytes.
  void verbatim_string(std::string_view format, std::string_view text);
  /// `_\r\n`.
  void null();
  /// RESP2 `$-1\r\n`.
  void null_bulk();
  /// RESP2 `*-1\r\n`.
  void null_array();
  /// `#t\r\n` or `#f\r\n`.
  void boolean(bool v);
  /// `,v\r\n` in shortest round-trip form; infinities as `inf`/`-inf`, NaN as `nan`.
  void double_number(double v);
  /// `,text\r\n` with the text as given (it should match the RESP3 double grammar).
  void double_text(std::string_view text);
  /// `(digits\r\n`.
  void big_number(std::string_view digits);
  /// `<byte><count>\r\n` for array, set, push (count elements) or map, attribute (count pairs).
  void aggregate_header(type t, std::uint64_t count);
  /// The head of a streamed string (`$?\r\n`) or streamed array, set or map (`*?`, `~?`, `%?`).
  void streamed_header(type t);
  /// One part of a streamed string: `;len\r\nbytes\r\n` (a zero-length part is written as-is: it ends the string).
  void stream_part(std::string_view bytes);
  /// `;0\r\n`: ends a streamed string.
  void stream_end() { raw(";0\r\n"); }
  /// `.\r\n`: ends a streamed aggregate.
  void end() { raw(".\r\n"); }
  /// Appends bytes verbatim (copied, whatever their size): for frames the other methods cannot make.
  void raw(std::string_view bytes);

  // --- Output ---

  /// Total bytes written since the last `clear()`.
  [[nodiscard]] std::size_t size() const noexcept { return size_ + referenced_; }
  /// True if nothing was written since the last `clear()`.
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  /// The bytes written, if none was referenced (else empty): valid until the next write or clear.
  [[nodiscard]] std::string_view data() const noexcept {
    return segments_.empty() ? std::string_view(buf_.get(), size_) : std::string_view();
  }
  /// The bytes written, in order, as iovecs over the buffer and the referenced payloads: valid until
  /// the next write or clear.
  [[nodiscard]] std::span<const iovec> iovecs();
  /// Forgets everything written, keeping the buffer's capacity.
  void clear() noexcept {
    size_ = 0;
    referenced_ = 0;
    segments_.clear();
    segment_start_ = 0;
  }

 private:
  struct segment {
    const char* external;  // nullptr: buffer bytes [offset, offset + length)
    std::size_t offset;
    std::size_t length;
  };

  // The text of a string-like argument (a char array's by `array_text`: no strlen call).
  template <class T>
  [[gnu::always_inline]] static std::string_view text_of(const T& arg) noexcept {
    if constexpr (std::is_array_v<T>) {
      return array_text(arg);
    } else {
      return std::string_view(arg);
    }
  }

  template <class T>
  static constexpr std::size_t argument_count(const T& arg) noexcept {
    if constexpr (range_argument<T>) {
      constexpr std::size_t per_element = pair_argument<std::ranges::range_value_t<const T>> ? 2 : 1;
      return static_cast<std::size_t>(std::ranges::size(arg)) * per_element;
    } else {
      return 1;
    }
  }

  template <class T>
  void write_argument(const T& arg) {
    if constexpr (range_argument<T>) {
      for (const auto& element : arg) write_argument(element);
    } else if constexpr (pair_argument<T>) {
      write_argument(std::get<0>(arg));
      write_argument(std::get<1>(arg));
    } else if constexpr (std::convertible_to<const T&, std::string_view>) {
      bulk(text_of(arg));
    } else {
      bulk(arg);  // a number
    }
  }

  static constexpr std::size_t max_digits = 20;   // uint64 in decimal
  static constexpr std::size_t max_number = 32;   // longest integer or double text

  // Adds the encoded size of `arg` to `bound`; false if it must be referenced (slow path).
  template <class T>
  [[gnu::always_inline]] bool add_bound(std::size_t& bound, const T& arg) const noexcept {
    if constexpr (range_argument<T>) {
      for (const auto& e : arg) {
        if (!add_bound(bound, e)) return false;
      }
      return true;
    } else if constexpr (pair_argument<T>) {
      return add_bound(bound, std::get<0>(arg)) && add_bound(bound, std::get<1>(arg));
    } else if constexpr (std::convertible_to<const T&, std::string_view>) {
      const std::size_t n = text_of(arg).size();
      bound += 1 + max_digits + 2 + n + 2;
      return n < threshold_;
    } else {
      bound += 1 + 2 + 2 + max_number + 2;
      return true;
    }
  }

  // "00" "01" ... "99".
  static constexpr char digit_pairs[201] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";

  // Writes a length or count; short ones without a call.
  [[gnu::always_inline]] static char* put_length(char* p, std::uint64_t v) noexcept {
    if (v < 10) {
      *p++ = static_cast<char>('0' + v);
    } else if (v < 100) {
      // Two digits from a table (one 2-byte move): the division by 10 cost ~8 instructions, and
      // lengths of 10-99 are most keys.
      std::memcpy(p, digit_pairs + 2 * v, 2);
      p += 2;
    } else {
      p = std::to_chars(p, p + max_digits, v).ptr;
    }
    p[0] = '\r';
    p[1] = '\n';
    return p + 2;
  }

  // Copies `n` bytes. Up to 32 (keys, field names, small values: most arguments) without a call:
  // two overlapping moves of the largest power of two that fits, so no branch per byte; longer ones
  // by memcpy. (A call to memcpy costs more than the copy itself for a 3-byte "GET".)
  [[gnu::always_inline]] static void copy_short(char* dst, const char* src, std::size_t n) noexcept {
    struct bytes16 {
      char b[16];
    };
    if (n > 32) {
      std::memcpy(dst, src, n);
    } else if (n >= 16) {
      copy_ends<bytes16>(dst, src, n);
    } else if (n >= 8) {
      copy_ends<std::uint64_t>(dst, src, n);
    } else if (n >= 4) {
      copy_ends<std::uint32_t>(dst, src, n);
    } else if (n != 0) {
      const char a = src[0], b = src[n / 2], c = src[n - 1];
      dst[0] = a;
      dst[n / 2] = b;
      dst[n - 1] = c;
    }
  }

  // The first and the last sizeof(Word) bytes of n in [sizeof(Word), 2 * sizeof(Word)]: all of them.
  template <class Word>
  [[gnu::always_inline]] static void copy_ends(char* dst, const char* src, std::size_t n) noexcept {
    Word head, tail;
    std::memcpy(&head, src, sizeof head);
    std::memcpy(&tail, src + n - sizeof tail, sizeof tail);
    std::memcpy(dst, &head, sizeof head);
    std::memcpy(dst + n - sizeof tail, &tail, sizeof tail);
  }

  [[gnu::always_inline]] static char* put_bulk(char* p, std::string_view s) noexcept {
    *p++ = '$';
    p = put_length(p, s.size());
    copy_short(p, s.data(), s.size());
    p += s.size();
    p[0] = '\r';
    p[1] = '\n';
    return p + 2;
  }

  template <class T>
  [[gnu::always_inline]] static void put_argument(char*& p, const T& arg) noexcept {
    if constexpr (range_argument<T>) {
      for (const auto& e : arg) put_argument(p, e);
    } else if constexpr (pair_argument<T>) {
      put_argument(p, std::get<0>(arg));
      put_argument(p, std::get<1>(arg));
    } else if constexpr (std::convertible_to<const T&, std::string_view>) {
      p = put_bulk(p, text_of(arg));
    } else if constexpr (std::floating_point<T>) {
      char digits[max_number];
      p = put_number(p, digits, std::same_as<T, float> ? format_float(digits, static_cast<float>(arg))
                                                       : format_double(digits, static_cast<double>(arg)));
    } else {
      char digits[max_number];
      const char* e = std::to_chars(digits, digits + max_number, arg).ptr;
      p = put_number(p, digits, static_cast<std::size_t>(e - digits));
    }
  }

  // A number's text (`n` <= max_number bytes of `digits`) as a bulk string. The whole digits buffer
  // is copied, a fixed-size copy without a call or a branch on `n`: `add_bound` counted max_number
  // bytes of payload, so the bytes past `n` land in reserved space and the CRLF overwrites them.
  [[gnu::always_inline]] static char* put_number(char* p, const char (&digits)[max_number], std::size_t n) noexcept {
    *p++ = '$';
    p = put_length(p, n);
    std::memcpy(p, digits, max_number);
    p += n;
    p[0] = '\r';
    p[1] = '\n';
    return p + 2;
  }

  // Shortest round-trip text of `v` into `out` (inf, -inf, nan spelled as RESP3 does); its length.
  static std::size_t format_double(char* out, double v) noexcept;
  static std::size_t format_float(char* out, float v) noexcept;  // its own shortest form

  void bulk_signed(std::int64_t v);
  void bulk_unsigned(std::uint64_t v);
  void bulk_double(double v);
  void bulk_float(float v);
  void copy_bulk(std::string_view bytes);  // never references: for digits in a local buffer
  void array_header_raw(type t, std::uint64_t count);
  // Room for n more bytes; returns the write position. Inline: every command asks, and the buffer
  // only grows until the largest batch fits.
  char* reserve(std::size_t n) {
    if (capacity_ - size_ < n) [[unlikely]] grow(n);
    return buf_.get() + size_;
  }
  void grow(std::size_t n);
  void commit(char* end) noexcept { size_ = static_cast<std::size_t>(end - buf_.get()); }
  void reference(std::string_view bytes);
  void line(char prefix, std::string_view text);

  std::unique_ptr<char[]> buf_;
  std::size_t size_ = 0;          // bytes in buf_
  std::size_t capacity_ = 0;
  std::size_t referenced_ = 0;    // bytes in referenced payloads
  std::size_t threshold_;
  std::size_t segment_start_ = 0; // buf_ offset where the current internal segment begins
  std::vector<segment> segments_; // empty while nothing is referenced
  std::vector<iovec> iovecs_;
};

}  // namespace redring::resp
