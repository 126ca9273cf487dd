// SPDX-License-Identifier: MIT
#include "client/hash_slot.hpp"

#include <array>

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
// T(k+1)[x] is Tk[x] followed by one zero byte: four independent lookups instead of a chain of four
// (in cluster mode every command's key is hashed).
constexpr std::uint16_t zero_byte(std::uint16_t v) { return static_cast<std::uint16_t>((v << 8) ^ crc_table[v >> 8]); }
constexpr std::array<std::array<std::uint16_t, 256>, 4> crc_slices = [] {
  std::array<std::array<std::uint16_t, 256>, 4> t{};
  t[0] = crc_table;
  for (std::size_t k = 1; k < 4; ++k) {
    for (unsigned x = 0; x < 256; ++x) t[k][x] = zero_byte(t[k - 1][x]);
  }
  return t;
}();

}  // namespace

std::uint16_t crc16(std::string_view bytes) noexcept {
  std::uint16_t crc = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  for (; n >= 4; n -= 4, p += 4) {
    crc = static_cast<std::uint16_t>(crc_slices[3][(crc >> 8) ^ p[0]] ^ crc_slices[2][(crc & 0xFF) ^ p[1]] ^
                                     crc_slices[1][p[2]] ^ crc_slices[0][p[3]]);
  }
  for (; n != 0; --n, ++p) crc = static_cast<std::uint16_t>((crc << 8) ^ crc_table[((crc >> 8) ^ *p) & 0xFF]);
  return crc;
}

std::string_view hash_tag(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

}  // namespace redring::client
