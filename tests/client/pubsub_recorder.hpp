// SPDX-License-Identifier: MIT
// Test support for the pub/sub tests: every event a handler receives, copied.
#pragma once

#include "client/subscriber.hpp"

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace redring::client::test_pubsub {

/// One event, copied (the views of a `pubsub_event` live during the handler's call only).
struct recorded {
  pubsub_kind kind;
  std::string channel, pattern, payload;
  std::int64_t count;
  bool operator==(const recorded&) const = default;
};

inline std::ostream& operator<<(std::ostream& os, const recorded& r) {
  return os << "{kind " << static_cast<int>(r.kind) << ", channel " << r.channel << ", pattern " << r.pattern
            << ", payload " << r.payload.size() << " bytes, count " << r.count << "}";
}

/// A handler that records every event.
struct recorder {
  std::vector<recorded> events;
  void operator()(const pubsub_event& e) {
    events.push_back({e.kind, std::string(e.channel), std::string(e.pattern), std::string(e.payload), e.count});
  }
  /// Events of kind `k` so far.
  [[nodiscard]] std::size_t count(pubsub_kind k) const {
    return static_cast<std::size_t>(std::count_if(events.begin(), events.end(), [&](const recorded& r) { return r.kind == k; }));
  }
  /// Events of kind `k` for `channel` so far.
  [[nodiscard]] std::size_t count(pubsub_kind k, std::string_view channel) const {
    return static_cast<std::size_t>(
        std::count_if(events.begin(), events.end(), [&](const recorded& r) { return r.kind == k && r.channel == channel; }));
  }
};

}  // namespace redring::client::test_pubsub
