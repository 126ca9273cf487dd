// SPDX-License-Identifier: MIT
// A log-linear latency histogram (HDR-style): fixed memory, at most 1/256 relative error.
#pragma once

#include <array>
#include <cstdint>

namespace redring::bench {

/// Counts values (nanoseconds) in buckets: exact below 256, then 128 sub-buckets per power of two,
/// so a reported percentile is within 1/256 (0.4%) of a recorded value. Values above 2^40 ns
/// (~18 minutes) are clamped. 40 KiB, no allocation; `merge` adds another histogram.
class histogram {
 public:
  /// Records one value.
  void record(std::uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++total_;
    if (ns > max_) max_ = ns;
    if (ns < min_) min_ = ns;
    sum_ += ns;
  }
  /// Adds every value of `other`.
  void merge(const histogram& other) noexcept;
  /// The value at percentile `p` (0-100): the midpoint of the bucket that holds it; 0 if empty.
  [[nodiscard]] std::uint64_t percentile(double p) const noexcept;
  [[nodiscard]] std::uint64_t count() const noexcept { return total_; }
  [[nodiscard]] std::uint64_t max() const noexcept { return total_ == 0 ? 0 : max_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  [[nodiscard]] double mean() const noexcept { return total_ == 0 ? 0 : static_cast<double>(sum_) / static_cast<double>(total_); }

  /// Buckets, for export: each non-empty bucket's lowest value and count, through `f(low, high, count)`.
  template <class F>
  void for_each_bucket(F f) const {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      if (counts_[i] != 0) f(low_of(i), high_of(i), counts_[i]);
    }
  }

  static constexpr unsigned sub_bits = 7;                  // 128 sub-buckets per power of two
  static constexpr unsigned max_exponent = 40;
  static constexpr std::size_t buckets = (max_exponent + 2) << sub_bits;

  [[nodiscard]] static std::size_t index_of(std::uint64_t v) noexcept {
    if (v < (1u << (sub_bits + 1))) return static_cast<std::size_t>(v);  // exact
    if (v >= (std::uint64_t{1} << max_exponent)) v = (std::uint64_t{1} << max_exponent) - 1;
    const unsigned e = 63u - static_cast<unsigned>(__builtin_clzll(v));  // v in [2^e, 2^(e+1))
    const unsigned shift = e - sub_bits;
    return (static_cast<std::size_t>(shift + 1) << sub_bits) + static_cast<std::size_t>((v >> shift) & ((1u << sub_bits) - 1));
  }
  [[nodiscard]] static std::uint64_t low_of(std::size_t i) noexcept {
    if (i < (std::size_t{1} << (sub_bits + 1))) return i;
    const unsigned shift = static_cast<unsigned>(i >> sub_bits) - 1;
    const std::uint64_t mantissa = (std::uint64_t{1} << sub_bits) | (i & ((1u << sub_bits) - 1));
    return mantissa << shift;
  }
  [[nodiscard]] static std::uint64_t high_of(std::size_t i) noexcept {
    if (i < (std::size_t{1} << (sub_bits + 1))) return i;
    const unsigned shift = static_cast<unsigned>(i >> sub_bits) - 1;
    return low_of(i) + (std::uint64_t{1} << shift) - 1;
  }

 private:
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t total_ = 0, max_ = 0, min_ = UINT64_MAX, sum_ = 0;
};

}  // namespace redring::bench
