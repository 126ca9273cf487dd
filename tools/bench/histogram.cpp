// SPDX-License-Identifier: MIT
#include "tools/bench/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace redring::bench {

void histogram::merge(const histogram& other) noexcept {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
  min_ = std::min(min_, other.min_);
}

std::uint64_t histogram::percentile(double p) const noexcept {
  if (total_ == 0) return 0;
  const double clamped = std::clamp(p, 0.0, 100.0);
  // The rank of the value at p: the smallest with at least p% of values at or below it.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(clamped / 100.0 * static_cast<double>(total_))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::uint64_t mid = low_of(i) + (high_of(i) - low_of(i)) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace redring::bench
