// SPDX-License-Identifier: MIT
#include "patterns/leaderboard.hpp"

#include "patterns/script.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <utility>

namespace redring::patterns {
namespace {

// Every script works on one key, the board (KEYS[1]). ARGV "high" or "low" is the order. A
// standing's rank is 1 + ZCOUNT of the strictly better scores, computed in the same script as the
// score, so no submit can fall between them. Scores travel as text (Redis' %.17g: exact).

// KEYS[1] the board; ARGV[1] member, ARGV[2] score, ARGV[3] "best" | "replace" | "add", ARGV[4]
// order, ARGV[5] expiry in ms (0: none). Returns {score, rank} after the submit. Atomic: the write,
// the score read back and its rank are one step (ZADD GT/LT keeps the better score: Redis 6.2+).
constexpr std::string_view submit_lua = R"lua(
local high = ARGV[4] == 'high'
local score
if ARGV[3] == 'add' then
  score = redis.call('ZINCRBY', KEYS[1], ARGV[2], ARGV[1])
else
  if ARGV[3] == 'best' then
    redis.call('ZADD', KEYS[1], high and 'GT' or 'LT', ARGV[2], ARGV[1])
  else
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  end
  score = redis.call('ZSCORE', KEYS[1], ARGV[1])
end
if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
local better
if high then better = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')
else better = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. score) end
return {score, better + 1}
)lua";

// KEYS[1] the board; ARGV[1] member, ARGV[2] order. Returns {score, rank}, or nil without a score.
// Atomic: the score and its rank are read at one instant.
constexpr std::string_view rank_lua = R"lua(
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return false end
local better
if ARGV[2] == 'high' then better = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')
else better = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. score) end
return {score, better + 1}
)lua";

// KEYS[1] the board; ARGV[1] the first position (0-based) or a member, ARGV[2] how many or the
// radius, ARGV[3] order, ARGV[4] "page" (positions ARGV[1] to ARGV[1] + ARGV[2] - 1) or "around"
// (the member's position minus the radius, at least 0, to plus the radius). Returns {rank of the
// first, its position, member, score, member, score, ...}, or {0, 0} (past the end; a member with
// no score). Atomic: the positions, the entries and the first one's rank come from one state (the
// client derives the other ranks from the scores: ties are adjacent).
constexpr std::string_view list_lua = R"lua(
local high = ARGV[3] == 'high'
local first, last
if ARGV[4] == 'around' then
  local pos = redis.call(high and 'ZREVRANK' or 'ZRANK', KEYS[1], ARGV[1])
  if not pos then return {0, 0} end
  first = math.max(0, pos - tonumber(ARGV[2]))
  last = pos + tonumber(ARGV[2])
else
  first = tonumber(ARGV[1])
  last = first + tonumber(ARGV[2]) - 1
end
local r = redis.call(high and 'ZREVRANGE' or 'ZRANGE', KEYS[1], first, last, 'WITHSCORES')
if #r == 0 then return {0, 0} end
local better
if high then better = redis.call('ZCOUNT', KEYS[1], '(' .. r[2], '+inf')
else better = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. r[2]) end
table.insert(r, 1, first)
table.insert(r, 1, better + 1)
return r
)lua";

constexpr std::int64_t max_position = std::int64_t{1} << 40;


// A score as Redis writes it ("12", "1.5", "inf", "-inf"); false for anything else.
bool parse_score(const resp::value& v, double& out) {
  if (v.data_type != resp::type::blob_string && v.data_type != resp::type::simple_string && v.data_type != resp::type::double_number) {
    return false;
  }
  if (v.text.empty()) return false;
  char* end = nullptr;
  out = std::strtod(v.text.c_str(), &end);
  return end == v.text.c_str() + v.text.size() && !std::isnan(out);
}

std::string score_text(double score) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", score);  // exact, and "inf" / "-inf" as Redis reads them
  return buf;
}

}  // namespace

leaderboard::leaderboard(client::client& c, std::string_view name, leaderboard_options opts)
    : client_(c), opts_(std::move(opts)) {
  key_ = opts_.prefix;
  key_.append(name);
}

task<resp::result<standing>> leaderboard::submit(std::string_view member, double score) {
  if (std::isnan(score)) co_return refused_argument("leaderboard: a score must be a number (NaN given)");
  const std::array<std::string, 1> keys = {key_};
  const std::array<std::string, 5> args = {
      std::string(member), score_text(score),
      opts_.mode == submit_mode::add ? "add" : opts_.mode == submit_mode::best ? "best" : "replace",
      opts_.order == score_order::high_first ? "high" : "low",
      ms_argument(opts_.expire_after)};
  auto reply = co_await script_for<submit_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  standing s{std::string(member), 0, 0};
  if (reply->data_type != resp::type::array || reply->elements.size() != 2 || !parse_score(reply->elements[0], s.score) ||
      reply->elements[1].data_type != resp::type::integer) {
    co_return unexpected_reply("leaderboard: submit");
  }
  s.rank = reply->elements[1].integer;
  co_return s;
}

task<resp::result<std::optional<standing>>> leaderboard::rank(std::string_view member) {
  const std::array<std::string, 1> keys = {key_};
  const std::array<std::string, 2> args = {std::string(member), opts_.order == score_order::high_first ? "high" : "low"};
  auto reply = co_await script_for<rank_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->is_null()) co_return std::optional<standing>();
  standing s{std::string(member), 0, 0};
  if (reply->data_type != resp::type::array || reply->elements.size() != 2 || !parse_score(reply->elements[0], s.score) ||
      reply->elements[1].data_type != resp::type::integer) {
    co_return unexpected_reply("leaderboard: rank");
  }
  s.rank = reply->elements[1].integer;
  co_return std::optional<standing>(std::move(s));
}

task<resp::result<std::vector<standing>>> leaderboard::page(std::int64_t first, std::int64_t count) {
  if (first < 0) co_return refused_argument("leaderboard: a page starts at position 0 or later");
  // A sorted set holds fewer than 2^32 members; larger figures would reach Lua as doubles that
  // Redis cannot read back as integers.
  if (count <= 0 || first >= max_position) co_return std::vector<standing>();
  count = std::min(count, max_position);
  co_return co_await list("page", std::to_string(first), count);
}

task<resp::result<std::vector<standing>>> leaderboard::around(std::string_view member, std::int64_t radius) {
  if (radius < 0) co_return refused_argument("leaderboard: the radius must be 0 or more");
  radius = std::min(radius, max_position);
  co_return co_await list("around", std::string(member), radius);
}

// Runs list_lua and turns {rank of the first, its position, member, score, ...} into
// standings: an entry whose score differs from the one before it is ranked by its position (every
// member before it is strictly better); one equal to it shares its rank.
task<resp::result<std::vector<standing>>> leaderboard::list(std::string_view kind, std::string first_arg, std::int64_t count) {
  const std::array<std::string, 1> keys = {key_};
  const std::array<std::string, 4> args = {std::move(first_arg), std::to_string(count),
                                           opts_.order == score_order::high_first ? "high" : "low", std::string(kind)};
  auto reply = co_await script_for<list_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  auto& e = reply->elements;
  if (reply->data_type != resp::type::array || e.size() < 2 || e.size() % 2 != 0 || e[0].data_type != resp::type::integer ||
      e[1].data_type != resp::type::integer) {
    co_return unexpected_reply("leaderboard: a list");
  }
  std::vector<standing> out;
  out.reserve((e.size() - 2) / 2);
  const std::int64_t first_position = e[1].integer;
  for (std::size_t i = 2; i < e.size(); i += 2) {
    standing st{std::move(e[i].text), 0, 0};
    if (!parse_score(e[i + 1], st.score)) co_return unexpected_reply("leaderboard: a list");
    const auto index = static_cast<std::int64_t>(out.size());
    st.rank = index == 0 ? e[0].integer : st.score == out.back().score ? out.back().rank : first_position + index + 1;
    out.push_back(std::move(st));
  }
  co_return out;
}

task<resp::result<bool>> leaderboard::remove(std::string_view member) {
  auto removed = co_await client_.command<std::int64_t>("ZREM", key_, member).with_timeout(opts_.timeout);
  if (!removed) co_return removed.error();
  co_return *removed == 1;
}

task<resp::result<std::int64_t>> leaderboard::size() {
  co_return co_await client_.zcard(key_).with_timeout(opts_.timeout);
}

}  // namespace redring::patterns
