// SPDX-License-Identifier: MIT
#include "tools/fuzz/minimiser.hpp"

#include "tools/fuzz/report.hpp"  // interrupted

#include <algorithm>
#include <string>
#include <vector>

namespace redring::fuzz {
namespace {

class tester {
 public:
  tester(const reproduces& still, const minimise_budget& b, minimise_stats& stats)
      : still_(still), budget_(b), stats_(stats), deadline_(std::min(clock::now() + b.time, b.deadline)) {}

  bool spent() {
    if (stats_.attempts >= budget_.attempts || clock::now() >= deadline_ || interrupted) stats_.exhausted = true;
    return stats_.exhausted;
  }
  bool operator()(const fuzz_case& c) {
    if (spent()) return false;
    ++stats_.attempts;
    return still_(c);
  }

 private:
  const reproduces& still_;
  const minimise_budget& budget_;
  minimise_stats& stats_;
  clock::time_point deadline_;
};

// ddmin over a sequence (vector or string). `test(candidate)` runs the case with the candidate in
// place. Returns true if anything was removed.
template <class Seq, class Test>
bool ddmin(Seq& items, Test&& test, tester& t) {
  bool changed = false;
  std::size_t n = 2;
  while (items.size() >= 1 && !t.spent()) {
    if (items.size() == 1) {
      // Can the last one go too?
      Seq none{};
      if (test(none)) {
        items = none;
        changed = true;
      }
      break;
    }
    n = std::min(n, items.size());
    const std::size_t chunk = (items.size() + n - 1) / n;
    bool reduced = false;
    for (std::size_t start = 0; start < items.size() && !t.spent(); start += chunk) {
      Seq complement(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(start));
      const std::size_t stop = std::min(items.size(), start + chunk);
      complement.insert(complement.end(), items.begin() + static_cast<std::ptrdiff_t>(stop), items.end());
      if (test(complement)) {
        items = std::move(complement);
        n = std::max<std::size_t>(n - 1, 2);
        reduced = changed = true;
        break;
      }
    }
    if (reduced) continue;
    if (n >= items.size()) break;
    n = std::min(n * 2, items.size());
  }
  return changed;
}

}  // namespace

reproduces confirmed_by_trials(reproduces trial, std::function<bool()> settle, unsigned trials) {
  return [trial = std::move(trial), settle = std::move(settle), trials](const fuzz_case& c) {
    for (unsigned i = 0; i < trials; ++i) {
      if (!settle() || !trial(c)) return false;
    }
    return true;
  };
}

fuzz_case minimise(fuzz_case c, const reproduces& still, const minimise_budget& budget, minimise_stats& stats) {
  tester t(still, budget, stats);
  // 1. Frames.
  ddmin(c.frames, [&](const std::vector<frame>& frames) {
    if (frames.empty()) return false;  // an empty case finds nothing by definition
    fuzz_case candidate{frames};
    return t(candidate);
  }, t);
  // 2 and 3. Inside each frame.
  for (std::size_t i = 0; i < c.frames.size() && !t.spent(); ++i) {
    auto with = [&](const frame& f) {
      fuzz_case candidate = c;
      candidate.frames[i] = f;
      return t(candidate);
    };
    frame& f = c.frames[i];
    if (f.kind == frame_kind::command) {
      std::vector<std::string> rest(f.args.begin() + 1, f.args.end());
      ddmin(rest, [&](const std::vector<std::string>& r) {
        frame g = f;
        g.args.resize(1);
        g.args.insert(g.args.end(), r.begin(), r.end());
        return with(g);
      }, t);
      f.args.resize(1);
      f.args.insert(f.args.end(), rest.begin(), rest.end());
      for (std::size_t a = 1; a < f.args.size() && !t.spent(); ++a) {
        // Shortest prefix: "" first, then halve while it still reproduces.
        for (std::size_t len : {std::size_t{0}, f.args[a].size() / 2}) {
          while (len < f.args[a].size() && !t.spent()) {
            frame g = f;
            g.args[a].resize(len);
            if (!with(g)) break;
            f = std::move(g);
            len = f.args[a].size() / 2;
            if (f.args[a].empty()) break;
          }
        }
      }
      continue;
    }
    if (f.kind == frame_kind::reply) {
      for (int step = 0; step < 2 && !t.spent(); ++step) {
        frame g = f;
        if (step == 0) g.how = delivery::whole;
        else g.close_after = false;
        if (g != f && with(g)) f = std::move(g);
      }
    }
    std::string bytes = f.bytes;
    ddmin(bytes, [&](const std::string& b) {
      if (b.empty()) return false;
      frame g = f;
      g.bytes = b;
      return with(g);
    }, t);
    f.bytes = std::move(bytes);
  }
  return c;
}

}  // namespace redring::fuzz
