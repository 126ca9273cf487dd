// SPDX-License-Identifier: MIT
#include "tools/bench/svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace redring::bench {
namespace {

constexpr double kWidth = 520, kHeight = 320;          // one panel
constexpr double kLeft = 70, kRight = 20, kTop = 40, kBottom = 50;
constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

// A "nice" axis maximum (1, 2 or 5 times a power of ten) at or above v.
double nice_ceiling(double v) {
  if (v <= 0) return 1;
  const double p = std::pow(10, std::floor(std::log10(v)));
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

std::string escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

struct panel {
  double x0, y0;  // top-left corner of the panel
  [[nodiscard]] double plot_w() const { return kWidth - kLeft - kRight; }
  [[nodiscard]] double plot_h() const { return kHeight - kTop - kBottom; }
  [[nodiscard]] double px(double fraction) const { return x0 + kLeft + fraction * plot_w(); }
  [[nodiscard]] double py(double fraction) const { return y0 + kTop + (1 - fraction) * plot_h(); }
};

void frame(std::string& out, const panel& p, std::string_view title, std::string_view x_label, std::string_view y_label,
           double y_max) {
  out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="15" text-anchor="middle">{}</text>)" "\n",
                     p.x0 + kWidth / 2, p.y0 + 22, escape(title));
  out += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="none" stroke="#444"/>)" "\n",
                     p.px(0), p.py(1), p.plot_w(), p.plot_h());
  for (int i = 0; i <= 4; ++i) {  // horizontal grid with labels
    const double f = i / 4.0;
    out += fmt::format(R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}" stroke="#ddd"/>)"
                       R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="end">{}</text>)" "\n",
                       p.px(0), p.py(f), p.px(1), p.py(f), p.px(0) - 6, p.py(f) + 4, fmt::format("{:g}", y_max * f));
  }
  out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="12" text-anchor="middle">{}</text>)" "\n",
                     p.px(0.5), p.y0 + kHeight - 10, escape(x_label));
  out += fmt::format(R"s(<text x="{:.1f}" y="{:.1f}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1f} {:.1f})">{}</text>)s" "\n",
                     p.x0 + 16, p.py(0.5), p.x0 + 16, p.py(0.5), escape(y_label));
}

// Latency by percentile: x = log10(1 / (1 - p)), from p = 0 to 99.999 %.
void latency_panel(std::string& out, const report& r, const panel& p) {
  constexpr double kDecades = 5;  // 90 %, 99 %, 99.9 %, 99.99 %, 99.999 %
  double y_max = 0;
  for (const auto& c : r.result.commands) y_max = std::max(y_max, c.stats.latency.percentile(99.999) / 1e3);
  y_max = nice_ceiling(y_max);
  frame(out, p, "Latency by percentile", "percentile", "latency (us)", y_max);
  const char* ticks[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%"};
  for (int d = 0; d <= 5; ++d) {
    out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="middle">{}</text>)" "\n",
                       p.px(d / kDecades), p.py(0) + 16, ticks[d]);
  }
  std::size_t color = 0;
  for (const auto& c : r.result.commands) {
    if (c.stats.completed == 0) continue;
    std::string points;
    for (int i = 0; i <= 250; ++i) {
      const double x = kDecades * i / 250.0;
      const double pct = 100 * (1 - std::pow(10, -x));
      const double us = c.stats.latency.percentile(pct) / 1e3;
      points += fmt::format("{:.1f},{:.1f} ", p.px(x / kDecades), p.py(std::min(1.0, us / y_max)));
    }
    const char* col = kColors[color % std::size(kColors)];
    out += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)" "\n", col, points);
    out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="12" fill="{}">{} p50 {:.1f} / p99 {:.1f} us</text>)" "\n",
                       p.px(0) + 8, p.py(1) + 16 + 15 * static_cast<double>(color), col, escape(c.name),
                       c.stats.latency.percentile(50) / 1e3, c.stats.latency.percentile(99) / 1e3);
    ++color;
  }
}

// Completions in each second of the run.
void throughput_panel(std::string& out, const report& r, const panel& p) {
  const auto& s = r.result.per_second;
  double y_max = 0;
  for (const auto v : s) y_max = std::max(y_max, static_cast<double>(v));
  y_max = nice_ceiling(y_max);
  frame(out, p, "Throughput over time", "second of the run", "requests / s", y_max);
  const std::size_t n = std::max<std::size_t>(s.size(), 1);
  for (std::size_t i = 0; i < n; i += std::max<std::size_t>(1, n / 10)) {
    out += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="11" text-anchor="middle">{}</text>)" "\n",
                       p.px((static_cast<double>(i) + 0.5) / static_cast<double>(n)), p.py(0) + 16, i);
  }
  const double bar = p.plot_w() / static_cast<double>(n);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double f = static_cast<double>(s[i]) / y_max;
    out += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"/>)" "\n",
                       p.px(static_cast<double>(i) / static_cast<double>(n)) + 1, p.py(f), std::max(1.0, bar - 2),
                       f * p.plot_h(), kColors[0]);
  }
}

}  // namespace

std::string format_svg(const report& r) {
  std::string out = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="sans-serif">)" "\n"
      R"(<rect width="100%" height="100%" fill="white"/>)" "\n",
      2 * kWidth, kHeight + 30);
  const double ops = r.result.seconds > 0 ? static_cast<double>(r.result.completed()) / r.result.seconds : 0;
  out += fmt::format(R"(<text x="10" y="{:.1f}" font-size="12" fill="#444">redring-bench: {:.0f} ops/s, {}; {}</text>)" "\n",
                     kHeight + 20, ops, escape(shape(*r.options)), escape(r.target));
  latency_panel(out, r, panel{0, 0});
  throughput_panel(out, r, panel{kWidth, 0});
  return out + "</svg>\n";
}

}  // namespace redring::bench
