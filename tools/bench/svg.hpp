// SPDX-License-Identifier: MIT
// redring-bench's plots as one self-contained SVG: latency by percentile (HDR-style, log-scaled
// percentile axis) per command, and throughput over time. No plotting dependency.
#pragma once

#include "tools/bench/report.hpp"

#include <string>

namespace redring::bench {

/// The SVG document for `r` (`--svg FILE`).
[[nodiscard]] std::string format_svg(const report& r);

}  // namespace redring::bench
