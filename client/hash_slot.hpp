// SPDX-License-Identifier: MIT
// Redis Cluster key hashing: CRC16 (XMODEM) of the key, or of its {hash tag}, modulo 16384.
// Specification: https://redis.io/docs/reference/cluster-spec/ ("Key distribution model", "Hash tags").
#pragma once

#include <cstdint>
#include <string_view>

namespace redring::client {

/// Hash slots in a Redis Cluster.
inline constexpr std::uint16_t slot_count = 16384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis Cluster uses it.
/// `crc16("123456789") == 0x31C3`.
[[nodiscard]] std::uint16_t crc16(std::string_view bytes) noexcept;

/// The part of `key` that is hashed: the text between the first `{` and the first `}` after it, if
/// that text is not empty; otherwise the whole key. `{user1000}.following` -> `user1000`;
/// `foo{}{bar}` -> the whole key; `foo{{bar}}` -> `{bar`; `foo{bar}{zap}` -> `bar`. Views `key`.
[[nodiscard]] std::string_view hash_tag(std::string_view key) noexcept;

/// The slot of `key`: `crc16(hash_tag(key)) % 16384`.
[[nodiscard]] std::uint16_t hash_slot(std::string_view key) noexcept;

/// `crc16` by tables only (four bytes per step), never by carry-less multiplication: the reference
/// the fast path is tested against, and what a CPU without PCLMULQDQ runs.
[[nodiscard]] std::uint16_t crc16_portable(std::string_view bytes) noexcept;

}  // namespace redring::client
