// SPDX-License-Identifier: MIT
// A leaderboard on one sorted set: submit scores (keep the best, replace, or add), standings with
// competition ranks (ties share a rank), the top, a page, the neighbourhood of a member.
// Each operation is one Lua script: the score and its rank are read at one instant.
#pragma once

#include "client/client.hpp"
#include "patterns/task.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace redring::patterns {

/// Which scores rank first.
enum class score_order : std::uint8_t {
  high_first,  ///< Points: the highest score is rank 1.
  low_first,   ///< Times, strokes: the lowest score is rank 1.
};

/// What `submit` does with a member's score.
enum class submit_mode : std::uint8_t {
  best,     ///< Keep the better of the old and the new score (ZADD GT, or LT for `low_first`).
  replace,  ///< Always take the new score.
  add,      ///< Add the submitted score to the member's (ZINCRBY; a new member starts at 0).
};

/// Settings of a `leaderboard`.
struct leaderboard_options {
  /// The board's key: prefix + name.
  std::string prefix = "lb:";
  /// Which scores rank first.
  score_order order = score_order::high_first;
  /// What a submit does with the member's score.
  submit_mode mode = submit_mode::best;
  /// If positive, every submit sets the board to expire this long after it (a daily board that
  /// disappears a while after its last score; at most 10^13 ms); 0: never expires.
  std::chrono::milliseconds expire_after{0};
  /// Per command (0: the client's default; negative: none).
  std::chrono::milliseconds timeout{1000};
};

/// A member's place on the board.
struct standing {
  /// The member's name (any bytes).
  std::string member;
  /// Its score (exact: what Redis holds).
  double score = 0;
  /// 1-based standard competition rank ("1224"): 1 + the number of members with a strictly better
  /// score, so members with equal scores share a rank. Among equal scores, lists order members by
  /// name (descending for `high_first`, ascending for `low_first`: Redis' order).
  std::int64_t rank = 0;
  friend bool operator==(const standing&, const standing&) = default;
};

/// A leaderboard named `name` on a client. Loop thread only; the client must outlive it and every
/// operation in flight. String views passed in must outlive the co_await.
class leaderboard {
 public:
  /// The board `name` (key: `opts.prefix` + name) on `c`.
  leaderboard(client::client& c, std::string_view name, leaderboard_options opts = {});

  /// Records `score` for `member` as the mode says; returns the member's standing after it. A NaN
  /// score is refused (`std::errc::invalid_argument`); an `add` that would make one (inf + -inf)
  /// is the server's error reply (`server_error`), as a value.
  [[nodiscard]] task<resp::result<standing>> submit(std::string_view member, double score);
  /// The member's standing, or nullopt if it has no score.
  [[nodiscard]] task<resp::result<std::optional<standing>>> rank(std::string_view member);
  /// The first `count` standings.
  [[nodiscard]] task<resp::result<std::vector<standing>>> top(std::int64_t count) { return page(0, count); }
  /// `count` standings from position `first` (0-based: page k of size n is page(k * n, n)); empty
  /// past the end.
  [[nodiscard]] task<resp::result<std::vector<standing>>> page(std::int64_t first, std::int64_t count);
  /// The member's standing with up to `radius` standings before and after it (fewer at the ends);
  /// empty if the member has no score.
  [[nodiscard]] task<resp::result<std::vector<standing>>> around(std::string_view member, std::int64_t radius);
  /// Removes the member: true if it had a score.
  [[nodiscard]] task<resp::result<bool>> remove(std::string_view member);
  /// How many members have a score.
  [[nodiscard]] task<resp::result<std::int64_t>> size();

  /// The board's Redis key (a sorted set).
  [[nodiscard]] const std::string& key() const noexcept { return key_; }

 private:
  // Runs the list script for a "page" or "around" and makes standings of its reply.
  task<resp::result<std::vector<standing>>> list(std::string_view kind, std::string first_arg, std::int64_t count);

  client::client& client_;
  leaderboard_options opts_;
  std::string key_;
};

}  // namespace redring::patterns
