// SPDX-License-Identifier: MIT
// The leaderboard against a real redis-server: the three submit modes in both orders, competition
// ranks (ties share one) in standings, pages and neighbourhoods, exact scores, concurrent adds,
// expiry, bad arguments and errors as values.
#include "patterns/leaderboard.hpp"

#include "client/detached.hpp"
#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::options_for;
using test::run_task;

class Leaderboard : public ::testing::Test, protected test::pattern_world {
 protected:

  void submit_all(leaderboard& b, const std::vector<std::pair<std::string, double>>& scores) {
    for (const auto& [member, score] : scores) ASSERT_TRUE(run_task(loop, b.submit(member, score))) << member;
  }
  std::vector<standing> page(leaderboard& b, std::int64_t first, std::int64_t count) {
    auto p = run_task(loop, b.page(first, count));
    EXPECT_TRUE(p) << p.error().what();
    return p ? *p : std::vector<standing>{};
  }
};

TEST_F(Leaderboard, BestScoresRankHighFirstAndTiesShareARank) {
  leaderboard b(c, "points");
  submit_all(b, {{"alice", 10}, {"bob", 20}, {"carol", 20}, {"dave", 5}});
  const auto lower = run_task(loop, b.submit("alice", 8));  // worse than her 10: kept
  ASSERT_TRUE(lower);
  EXPECT_EQ(*lower, (standing{"alice", 10, 3}));
  const auto higher = run_task(loop, b.submit("dave", 15));
  ASSERT_TRUE(higher);
  EXPECT_EQ(*higher, (standing{"dave", 15, 3}));
  // bob and carol tie at 20 (rank 1 both; Redis lists equal scores by name, descending here).
  const std::vector<standing> expected{{"carol", 20, 1}, {"bob", 20, 1}, {"dave", 15, 3}, {"alice", 10, 4}};
  EXPECT_EQ(page(b, 0, 10), expected);
  auto top2 = run_task(loop, b.top(2));
  ASSERT_TRUE(top2);
  EXPECT_EQ(*top2, std::vector<standing>(expected.begin(), expected.begin() + 2));
  const auto bob = run_task(loop, b.rank("bob"));
  ASSERT_TRUE(bob && *bob);
  EXPECT_EQ(**bob, (standing{"bob", 20, 1}));
  const auto nobody = run_task(loop, b.rank("nobody"));
  ASSERT_TRUE(nobody);
  EXPECT_FALSE(nobody->has_value());
  EXPECT_EQ(*run_task(loop, b.size()), 4);
}

TEST_F(Leaderboard, LowFirstKeepsTheLowestForTimes) {
  leaderboard b(c, "laps", {.order = score_order::low_first});
  submit_all(b, {{"ann", 62.5}, {"ben", 61.25}, {"cat", 70}});
  const auto better = run_task(loop, b.submit("cat", 60.125));
  ASSERT_TRUE(better);
  EXPECT_EQ(*better, (standing{"cat", 60.125, 1}));
  const auto worse = run_task(loop, b.submit("ben", 65));
  ASSERT_TRUE(worse);
  EXPECT_EQ(*worse, (standing{"ben", 61.25, 2}));
  EXPECT_EQ(page(b, 0, 3), (std::vector<standing>{{"cat", 60.125, 1}, {"ben", 61.25, 2}, {"ann", 62.5, 3}}));
}

TEST_F(Leaderboard, ReplaceAndAddModes) {
  leaderboard replaced(c, "replaced", {.mode = submit_mode::replace});
  submit_all(replaced, {{"x", 50}, {"y", 40}});
  const auto down = run_task(loop, replaced.submit("x", 30));  // replace takes a worse score too
  ASSERT_TRUE(down);
  EXPECT_EQ(*down, (standing{"x", 30, 2}));

  leaderboard added(c, "added", {.mode = submit_mode::add});
  submit_all(added, {{"x", 5}, {"x", 7}, {"y", 11}});
  EXPECT_EQ(page(added, 0, 5), (std::vector<standing>{{"x", 12, 1}, {"y", 11, 2}}));
  const auto minus = run_task(loop, added.submit("x", -2.5));
  ASSERT_TRUE(minus);
  EXPECT_EQ(*minus, (standing{"x", 9.5, 2}));
}

// Ranks in a page that starts inside a tie come from the server's count, not the page's positions.
TEST_F(Leaderboard, PagesAndNeighbourhoodsCarryCompetitionRanks) {
  leaderboard b(c, "ties");
  submit_all(b, {{"a", 50}, {"b", 40}, {"c", 40}, {"d", 40}, {"e", 30}, {"f", 20}});
  EXPECT_EQ(page(b, 2, 3), (std::vector<standing>{{"c", 40, 2}, {"b", 40, 2}, {"e", 30, 5}}));
  EXPECT_TRUE(page(b, 6, 3).empty());  // past the end
  EXPECT_TRUE(page(b, 0, 0).empty());
  auto around = run_task(loop, b.around("e", 1));
  ASSERT_TRUE(around);
  EXPECT_EQ(*around, (std::vector<standing>{{"b", 40, 2}, {"e", 30, 5}, {"f", 20, 6}}));
  auto at_top = run_task(loop, b.around("a", 2));  // fewer before it at the top
  ASSERT_TRUE(at_top);
  EXPECT_EQ(*at_top, (std::vector<standing>{{"a", 50, 1}, {"d", 40, 2}, {"c", 40, 2}}));
  auto absent = run_task(loop, b.around("zed", 2));
  ASSERT_TRUE(absent);
  EXPECT_TRUE(absent->empty());
  auto everything = run_task(loop, b.around("c", std::numeric_limits<std::int64_t>::max()));
  ASSERT_TRUE(everything) << everything.error().what();
  EXPECT_EQ(everything->size(), 6u);
  auto huge = run_task(loop, b.page(1, std::numeric_limits<std::int64_t>::max()));
  ASSERT_TRUE(huge) << huge.error().what();
  EXPECT_EQ(huge->size(), 5u);
}

TEST_F(Leaderboard, ScoresComeBackExactlyInfinitiesIncluded) {
  leaderboard b(c, "exact", {.mode = submit_mode::replace});
  const double pi = 3.141592653589793, tiny = 4.9406564584124654e-324, third = 1.0 / 3.0;
  submit_all(b, {{"pi", pi}, {"tiny", tiny}, {"third", third}, {"up", INFINITY}, {"down", -INFINITY}});
  const auto all = page(b, 0, 10);
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0], (standing{"up", INFINITY, 1}));
  EXPECT_EQ(all[1], (standing{"pi", pi, 2}));
  EXPECT_EQ(all[2], (standing{"third", third, 3}));
  EXPECT_EQ(all[3], (standing{"tiny", tiny, 4}));
  EXPECT_EQ(all[4], (standing{"down", -INFINITY, 5}));
}

TEST_F(Leaderboard, ConcurrentAddsLoseNothing) {
  leaderboard b(c, "clicks", {.mode = submit_mode::add});
  int finished = 0, failures = 0;
  auto clicker = [&](int) -> client::detached {
    for (int i = 0; i < 20; ++i) {
      if (!co_await b.submit("page", 1)) ++failures;
    }
    ++finished;
  };
  for (int i = 0; i < 50; ++i) clicker(i);
  ASSERT_TRUE(test::run_until(loop, [&] { return finished == 50; }, 20s));
  EXPECT_EQ(failures, 0);
  const auto r = run_task(loop, b.rank("page"));
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->score, 1000);
}

TEST_F(Leaderboard, ASubmitKeepsTheBoardAliveForExpireAfter) {
  leaderboard daily(c, "day:2026-12-07", {.expire_after = 60s});
  ASSERT_TRUE(run_task(loop, daily.submit("a", 1)));
  const std::int64_t ttl = admin.call({"PTTL", daily.key()}).integer;
  EXPECT_GT(ttl, 50'000);
  EXPECT_LE(ttl, 60'000);
  leaderboard longest(c, "longest", {.expire_after = std::chrono::milliseconds::max()});
  ASSERT_TRUE(run_task(loop, longest.submit("a", 1)));  // capped, not refused after the ZADD
  EXPECT_GT(admin.call({"PTTL", longest.key()}).integer, 0);
  leaderboard forever(c, "forever");
  ASSERT_TRUE(run_task(loop, forever.submit("a", 1)));
  EXPECT_EQ(admin.call({"PTTL", forever.key()}).integer, -1);
  EXPECT_EQ(forever.key(), "lb:forever");
}

TEST_F(Leaderboard, RemoveAndBadArguments) {
  leaderboard b(c, "misc", {.mode = submit_mode::add});
  ASSERT_TRUE(run_task(loop, b.submit("a", 1)));
  EXPECT_TRUE(*run_task(loop, b.remove("a")));
  EXPECT_FALSE(*run_task(loop, b.remove("a")));
  EXPECT_EQ(*run_task(loop, b.size()), 0);
  const auto nan = run_task(loop, b.submit("a", std::nan("")));
  ASSERT_FALSE(nan);
  EXPECT_EQ(nan.error().code, std::errc::invalid_argument);
  EXPECT_FALSE(run_task(loop, b.page(-1, 3)));
  EXPECT_FALSE(run_task(loop, b.around("a", -1)));
  // inf + -inf is not a number: the server refuses it, as an error value.
  ASSERT_TRUE(run_task(loop, b.submit("b", INFINITY)));
  const auto undefined = run_task(loop, b.submit("b", -INFINITY));
  ASSERT_FALSE(undefined);
  EXPECT_NE(undefined.error().message.find("NaN"), std::string::npos) << undefined.error().what();
  // Another type under the board's key: WRONGTYPE, as a value.
  (void)admin.call({"SET", "lb:string", "x"});
  leaderboard wrong(c, "string");
  const auto r = run_task(loop, wrong.rank("a"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("WRONGTYPE"), std::string::npos) << r.error().what();
}

TEST_F(Leaderboard, RedisGoneIsAnErrorValue) {
  leaderboard b(c, "down", {.timeout = 300ms});
  ASSERT_TRUE(run_task(loop, b.submit("a", 1)));
  ::kill(server.pid(), SIGKILL);
  EXPECT_FALSE(run_task(loop, b.submit("a", 2)));
  EXPECT_FALSE(run_task(loop, b.top(3)));
}

}  // namespace
}  // namespace redring::patterns
