// SPDX-License-Identifier: MIT
// redring-fuzz's random numbers: xoshiro256** seeded by splitmix64, with our own bounded draws so a
// seed gives the same cases on every standard library (std distributions are implementation-defined).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace redring::fuzz {

/// A small, fast, portable PRNG. Equal seeds give equal sequences everywhere.
class rng {
 public:
  explicit rng(std::uint64_t seed) noexcept {
    for (auto& s : s_) s = splitmix(seed);
  }

  /// The next 64 random bits.
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, n); 0 when n is 0.
  std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }
  /// Uniform in [lo, hi].
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) noexcept { return lo + below(hi - lo + 1); }
  /// True with probability `percent` / 100.
  bool chance(unsigned percent) noexcept { return below(100) < percent; }
  /// One element of a non-empty span.
  template <class T>
  const T& pick(std::span<const T> items) noexcept {
    return items[static_cast<std::size_t>(below(items.size()))];
  }

  /// A seed derived from (`seed`, `index`): case `index` of a run does not depend on earlier cases.
  static std::uint64_t derive(std::uint64_t seed, std::uint64_t index) noexcept {
    std::uint64_t x = seed ^ (index * 0x9e3779b97f4a7c15ULL);
    return splitmix(x);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t s_[4];
};

}  // namespace redring::fuzz
