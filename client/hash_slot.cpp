// SPDX-License-Identifier: MIT
#include "client/hash_slot.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define REDRING_CRC16_CLMUL 1
#endif

namespace redring::client {
namespace {

// The byte-at-a-time table of CRC16-CCITT, polynomial 0x1021 (the cluster spec's crc16.c).
constexpr std::array<std::uint16_t, 256> crc_table = [] {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    auto c = static_cast<std::uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) c = static_cast<std::uint16_t>((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
    t[i] = c;
  }
  return t;
}();

// Four bytes per step ("slicing by 4"): the CRC is linear over XOR, so feeding b0..b3 into state c
// gives T3[(c >> 8) ^ b0] ^ T2[(c & 0xFF) ^ b1] ^ T1[b2] ^ T0[b3], where T0 is the table above and
// T(k+1)[x] is Tk[x] followed by one zero byte: four independent lookups instead of a chain of four.
// The portable path, and the reference the carry-less path is tested against.
constexpr std::uint16_t zero_byte(std::uint16_t v) { return static_cast<std::uint16_t>((v << 8) ^ crc_table[v >> 8]); }
constexpr std::array<std::array<std::uint16_t, 256>, 4> crc_slices = [] {
  std::array<std::array<std::uint16_t, 256>, 4> t{};
  t[0] = crc_table;
  for (std::size_t k = 1; k < 4; ++k) {
    for (unsigned x = 0; x < 256; ++x) t[k][x] = zero_byte(t[k - 1][x]);
  }
  return t;
}();

std::uint16_t crc16_tables(const unsigned char* p, std::size_t n) noexcept {
  std::uint16_t crc = 0;
  for (; n >= 4; n -= 4, p += 4) {
    crc = static_cast<std::uint16_t>(crc_slices[3][(crc >> 8) ^ p[0]] ^ crc_slices[2][(crc & 0xFF) ^ p[1]] ^
                                     crc_slices[1][p[2]] ^ crc_slices[0][p[3]]);
  }
  for (; n != 0; --n, ++p) crc = static_cast<std::uint16_t>((crc << 8) ^ crc_table[((crc >> 8) ^ *p) & 0xFF]);
  return crc;
}

#ifdef REDRING_CRC16_CLMUL
// CRC16 by carry-less multiplication (Intel, "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ", 2009), for the key every cluster command hashes: ~4 multiplications for a key of up to
// 16 bytes instead of a table lookup per byte. The CRC (no reflection, initial value 0) of a message
// M, read as a polynomial over GF(2) (first byte highest), is M * x^16 mod P, P = x^16 + 0x1021:
// 1. Leading zero bytes do not change it (initial value 0), so the first len % 16 bytes are taken as
//    a zero-padded 128-bit block, and every further 16 bytes folded in: S' = S_hi * (x^192 mod P) +
//    S_lo * (x^128 mod P) + next (S * x^128 is congruent to that, and it fits in 128 bits again).
// 2. Barrett in one step, exact for polynomials (no carries): with mu = floor(x^144 / P) = x^128 + M,
//    the quotient of S * x^16 by P is Q = S + hi128(S * M), where hi128(S * M) = S_hi * M_hi +
//    hi64(S_hi * M_lo + S_lo * M_hi) (S_lo * M_lo < x^128 adds nothing): three multiplications that
//    do not wait for each other. The remainder is low16(Q * P), and P = x^16 + x^12 + x^5 + 1 makes
//    that low16(Q ^ Q << 5 ^ Q << 12): two shifts, no fourth multiplication. The route of every
//    cluster command waits on this result, so its latency counts, not only its instructions: the
//    earlier reduction (fold to 80 bits, to 64, then Barrett with x^80) chained four multiplications.
constexpr std::uint32_t poly = 0x11021;
constexpr std::uint64_t x_pow_mod(int k) {
  std::uint32_t r = 1;
  for (int i = 0; i < k; ++i) {
    r <<= 1;
    if (r & 0x10000) r ^= poly;
  }
  return r;
}
constexpr std::uint64_t k128 = x_pow_mod(128), k192 = x_pow_mod(192);
// M = floor(x^144 / P) without its x^128 term, by long division: {high word, low word}.
constexpr std::array<std::uint64_t, 2> mu = [] {
  std::uint32_t rem = 0;
  std::uint64_t hi = 0, lo = 0;
  for (int bit = 144; bit >= 0; --bit) {
    rem = (rem << 1) | (bit == 144 ? 1U : 0U);
    hi = (hi << 1) | (lo >> 63);  // the x^128 bit falls off the top
    lo <<= 1;
    if (rem & 0x10000) rem ^= poly, lo |= 1;
  }
  return std::array<std::uint64_t, 2>{hi, lo};
}();

struct u128 {
  std::uint64_t hi = 0, lo = 0;
};

template <class Int>
Int load(const unsigned char* p) noexcept {
  Int v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The first `n` < 16 bytes as a big-endian number (the polynomial), read without touching a byte
// outside them (overlapping loads).
inline u128 head(const unsigned char* p, std::size_t n) noexcept {
  u128 s;
  if (n >= 8) {
    s.lo = __builtin_bswap64(load<std::uint64_t>(p + n - 8));
    if (n > 8) s.hi = __builtin_bswap64(load<std::uint64_t>(p)) >> (8 * (16 - n));
  } else if (n >= 4) {
    s.lo = (std::uint64_t{__builtin_bswap32(load<std::uint32_t>(p))} << (8 * (n - 4))) |
           __builtin_bswap32(load<std::uint32_t>(p + n - 4));
  } else {
    for (std::size_t i = 0; i < n; ++i) s.lo = (s.lo << 8) | p[i];
  }
  return s;
}

// pshufb masks: from offset 16 - r, the first r bytes of a block reversed into its low bytes (the
// polynomial, zero-padded in front); from offset 0, a whole block reversed.
alignas(16) constexpr unsigned char reversing[32] = {15,   14,   13,   12,   11,   10,   9,    8,    7,    6,    5,
                                                     4,    3,    2,    1,    0,    0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                                     0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
constexpr std::uint32_t brace_seen = 0x10000;

// The CRC of p[0, n) in the low 16 bits, and `brace_seen` if one of the bytes is '{' (a compare per
// block on the way, so that hash_slot needs no separate search for a hash tag).
[[gnu::target("pclmul,ssse3")]] inline std::uint32_t crc16_clmul(const unsigned char* p, std::size_t n) noexcept {
  __m128i s;
  std::size_t at;
  if (n >= 16) {
    const std::size_t first = (n & 15) == 0 ? 16 : n & 15;
    s = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)),
                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(reversing + 16 - first)));
    at = first;
  } else {
    const u128 h = head(p, n);
    s = _mm_set_epi64x(static_cast<long long>(h.hi), static_cast<long long>(h.lo));
    at = n;
  }
  const __m128i brace = _mm_set1_epi8('{');
  __m128i seen = _mm_cmpeq_epi8(s, brace);  // the zero padding is never '{'
  const __m128i reverse = _mm_load_si128(reinterpret_cast<const __m128i*>(reversing));
  const __m128i fold = _mm_set_epi64x(static_cast<long long>(k192), static_cast<long long>(k128));
  for (; at < n; at += 16) {
    const __m128i next = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at)), reverse);
    seen = _mm_or_si128(seen, _mm_cmpeq_epi8(next, brace));
    s = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(s, fold, 0x11), _mm_clmulepi64_si128(s, fold, 0x00)), next);
  }
  const __m128i m = _mm_set_epi64x(static_cast<long long>(mu[0]), static_cast<long long>(mu[1]));
  const __m128i top = _mm_clmulepi64_si128(s, m, 0x11);                                                   // S_hi * M_hi
  const __m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(s, m, 0x01), _mm_clmulepi64_si128(s, m, 0x10));  // S_hi * M_lo + S_lo * M_hi
  const __m128i q = _mm_xor_si128(_mm_xor_si128(s, top), _mm_srli_si128(mid, 8));
  const auto ql = static_cast<std::uint32_t>(_mm_cvtsi128_si32(q));
  const std::uint32_t crc = (ql ^ (ql << 5) ^ (ql << 12)) & 0xFFFF;
  return crc | (_mm_movemask_epi8(seen) != 0 ? brace_seen : 0);
}

// Before this file's initialisation (another one's static initialiser hashing) it reads false and
// the tables answer: the same CRC, only slower.
const bool has_clmul = [] {
  __builtin_cpu_init();  // may run before the library's own initialisation of the CPU model
  return __builtin_cpu_supports("pclmul") != 0 && __builtin_cpu_supports("ssse3") != 0;
}();
#endif

}  // namespace

std::uint16_t crc16(std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
#ifdef REDRING_CRC16_CLMUL
  if (has_clmul) return static_cast<std::uint16_t>(crc16_clmul(p, bytes.size()));
#endif
  return crc16_tables(p, bytes.size());
}

std::uint16_t crc16_portable(std::string_view bytes) noexcept {
  return crc16_tables(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::string_view hash_tag(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

namespace {
[[gnu::noinline]] std::uint16_t tagged_slot(std::string_view key) noexcept {
  return static_cast<std::uint16_t>(crc16(hash_tag(key)) & (slot_count - 1));
}
}  // namespace

#ifdef REDRING_CRC16_CLMUL
namespace {
// One pass: the CRC of the whole key, noting a '{' on the way; only a key with one looks for a tag.
// Compiled for PCLMULQDQ as a whole, so that the CRC is inlined here.
[[gnu::target("pclmul,ssse3")]] std::uint16_t hash_slot_clmul(std::string_view key) noexcept {
  const std::uint32_t crc = crc16_clmul(reinterpret_cast<const unsigned char*>(key.data()), key.size());
  if ((crc & brace_seen) == 0) [[likely]] return static_cast<std::uint16_t>(crc & (slot_count - 1));
  return tagged_slot(key);
}
}  // namespace
#endif

std::uint16_t hash_slot(std::string_view key) noexcept {
#ifdef REDRING_CRC16_CLMUL
  if (has_clmul) [[likely]] return hash_slot_clmul(key);
#endif
  return tagged_slot(key);
}

}  // namespace redring::client
