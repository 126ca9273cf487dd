// SPDX-License-Identifier: MIT
#include "patterns/job_queue.hpp"

#include "client/hash_slot.hpp"
#include "patterns/script.hpp"
#include "patterns/watchdog.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>
#include <utility>

namespace redring::patterns {
namespace {

// Every script's keys share the queue's {hash tag}: one slot. A job is its id in the lists and
// sorted sets, its payload in the data hash and its reservations so far in the attempts hash; an
// id with its attempt number names one reservation, which every later step checks (a worker whose
// lease ran out cannot complete, fail or extend the job's next reservation). Time is the server's
// (TIME, in ms).

// KEYS[1] seq, KEYS[2] wait, KEYS[3] delayed, KEYS[4] data, KEYS[5] notify; ARGV[1] the payload,
// ARGV[2] the delay in ms. Returns the new job's id. Atomic: the id, the payload and the job's place
// appear together (a crash between them would leave a payload no list names, or an id with none),
// and the notify token wakes a waiting worker only once the job is there to take. The notify list
// holds at most one token: enough to wake a worker blocked now or about to block.
constexpr std::string_view enqueue_lua = R"lua(
local id = tostring(redis.call('INCR', KEYS[1]))
redis.call('HSET', KEYS[4], id, ARGV[1])
local delay = tonumber(ARGV[2])
if delay > 0 then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[3], t[1] * 1000 + math.floor(t[2] / 1000) + delay, id)
else
  redis.call('LPUSH', KEYS[2], id)
end
redis.call('LPUSH', KEYS[5], '1')
redis.call('LTRIM', KEYS[5], 0, 0)
return id
)lua";

// KEYS[1] wait, KEYS[2] delayed, KEYS[3] active, KEYS[4] data, KEYS[5] attempts, KEYS[6] dead,
// KEYS[7] notify; ARGV[1] the lease in ms, ARGV[2] max attempts, ARGV[3] max moves. First moves due
// delayed jobs to the ready list and takes back jobs whose lease ran out (to the front of the ready
// list, the first expired first, or to the dead list after their last attempt); then pops the
// oldest ready job, counts the attempt and leases it. Returns {1, id, payload, attempt}, or {0, ms
// until a delayed job or a lease falls due (-1: none)}. Atomic: two workers never pop the same job,
// and a job taken back is in exactly one place. An id whose payload is gone (deleted by hand) is
// dropped. While ready jobs remain after the pop, it leaves a wake-up token: the notify list holds
// one token however many jobs an enqueue burst or this reserve made ready, so each worker woken
// passes the wake-up on to the next waiting one.
constexpr std::string_view reserve_lua = R"lua(
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local moves = tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, moves)) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('LPUSH', KEYS[1], id)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, moves)
for i = #expired, 1, -1 do
  local id = expired[i]
  redis.call('ZREM', KEYS[3], id)
  if tonumber(redis.call('HGET', KEYS[5], id) or '0') >= tonumber(ARGV[2]) then
    redis.call('LPUSH', KEYS[6], id)
  else
    redis.call('RPUSH', KEYS[1], id)
  end
end
while true do
  local id = redis.call('RPOP', KEYS[1])
  if not id then break end
  local payload = redis.call('HGET', KEYS[4], id)
  if payload then
    local attempt = redis.call('HINCRBY', KEYS[5], id, 1)
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), id)
    if redis.call('LLEN', KEYS[1]) > 0 then
      redis.call('LPUSH', KEYS[7], '1')
      redis.call('LTRIM', KEYS[7], 0, 0)
    end
    return {1, id, payload, attempt}
  end
  redis.call('HDEL', KEYS[5], id)
end
local wait = -1
for _, k in ipairs({KEYS[2], KEYS[3]}) do
  local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  if first[2] then
    local w = math.max(0, math.ceil(tonumber(first[2]) - now))
    if wait < 0 or w < wait then wait = w end
  end
end
return {0, wait}
)lua";

// KEYS[1] active, KEYS[2] data, KEYS[3] attempts; ARGV[1] the id, ARGV[2] the attempt. Returns 1
// if the job was reserved under that attempt and is now gone, else 0. Atomic: the check and the
// removal cannot be split by a reserve taking the job back.
constexpr std::string_view complete_lua = R"lua(
if redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0
)lua";

// KEYS[1] active, KEYS[2] delayed, KEYS[3] dead, KEYS[4] attempts, KEYS[5] notify; ARGV[1] the
// id, ARGV[2] the attempt, ARGV[3] max attempts, ARGV[4] the first retry delay in ms, ARGV[5] the
// largest. Returns 1 (scheduled again after retry_delay * 2^(attempt - 1), capped), 2 (dead: that
// was the last attempt) or 0 (not reserved under that attempt). Atomic like complete. A retry
// leaves a wake-up token: a worker already waiting chose its timeout before this job was due.
constexpr std::string_view fail_lua = R"lua(
if not (redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('HGET', KEYS[4], ARGV[1]) == ARGV[2]) then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
local attempt = tonumber(ARGV[2])
if attempt >= tonumber(ARGV[3]) then
  redis.call('LPUSH', KEYS[3], ARGV[1])
  return 2
end
local delay = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ math.min(attempt - 1, 62))
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000) + delay, ARGV[1])
redis.call('LPUSH', KEYS[5], '1')
redis.call('LTRIM', KEYS[5], 0, 0)
return 1
)lua";

// KEYS[1] active, KEYS[2] attempts; ARGV[1] the id, ARGV[2] the attempt, ARGV[3] the lease in ms.
// Returns 1 if the lease now ends ARGV[3] ms from now, 0 if the job is not reserved under that
// attempt. Atomic like complete.
constexpr std::string_view extend_lua = R"lua(
if redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('HGET', KEYS[2], ARGV[1]) == ARGV[2] then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[1], 'XX', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3]), ARGV[1])
  return 1
end
return 0
)lua";

// KEYS[1] wait, KEYS[2] delayed, KEYS[3] active, KEYS[4] dead. Returns the four sizes. A script so
// that they are read at one instant (a job moving between two reads would be counted twice or not
// at all).
constexpr std::string_view counts_lua = R"lua(
return {redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
        redis.call('LLEN', KEYS[4])}
)lua";


// One run of extend_lua: true if the job was still reserved under that attempt.
task<resp::result<bool>> extend_once(client::client& c, std::array<std::string, 2> keys, std::array<std::string, 3> args,
                                     std::chrono::milliseconds timeout) {
  auto reply = co_await script_for<extend_lua>().run(c, keys, args, timeout);
  if (!reply) co_return reply.error();
  if (reply->data_type != resp::type::integer) co_return unexpected_reply("job_queue: extend");
  co_return reply->integer == 1;
}

}  // namespace

// What a job_lease and its renewals share. Holds all a renewal needs, so the queue may go first.
struct job_lease::state {
  client::client* client = nullptr;
  std::array<std::string, 2> keys;  // active, attempts
  std::array<std::string, 3> args;  // id, attempt, lease in ms
  std::chrono::milliseconds lease{};
  std::chrono::milliseconds timeout{};
  net::clock::time_point valid_until{};
  std::uint64_t renewals = 0;
  bool lost = false;
  detail::watchdog_pause dog;  // stopped: stop() or the handle destroyed
};

job_lease& job_lease::operator=(job_lease&& other) noexcept {
  if (this != &other) {
    stop();
    state_ = std::move(other.state_);
  }
  return *this;
}
job_lease::~job_lease() { stop(); }
void job_lease::stop() noexcept {
  if (state_) state_->dog.stop();
}
bool job_lease::lost() const noexcept { return state_->lost; }
net::clock::time_point job_lease::valid_until() const noexcept { return state_->valid_until; }
std::uint64_t job_lease::renewals() const noexcept { return state_->renewals; }

// Renews every lease/3; a renewal without a reply is tried again at the next beat while the lease
// still runs (one slow reply does not lose the job), and a lease past valid_until is lost. The
// pause never outlasts valid_until, and a renewal's timeout is cut to what is left of it.
client::detached job_queue::keep_renewing(std::shared_ptr<job_lease::state> s, std::function<void()> on_lost) {
  const auto beat = std::max(s->lease / 3, std::chrono::milliseconds(1));
  const auto left = [&s] { return std::chrono::ceil<std::chrono::milliseconds>(s->valid_until - net::clock::now()); };
  // Not a step before the caller holds the handle: on_lost never runs inside the call that started
  // the watchdog (a review proved it did for a lease already run out).
  co_await s->dog.pause(std::chrono::milliseconds(0));
  while (!s->dog.stopped()) {
    if (left().count() <= 0) {
      s->lost = true;
      break;
    }
    co_await s->dog.pause(std::min(beat, left()));
    if (s->dog.stopped()) break;
    const auto budget = left();
    if (budget.count() <= 0) {
      s->lost = true;
      break;
    }
    const auto sent = net::clock::now();
    auto renewed = co_await extend_once(*s->client, s->keys, s->args, s->timeout.count() > 0 ? std::min(s->timeout, budget) : budget);
    if (s->dog.stopped()) break;
    if (renewed && *renewed) {
      s->valid_until = sent + s->lease;
      ++s->renewals;
      continue;
    }
    if (!renewed && renewed.error().code == client::errc::shutting_down) {
      // The client closed: no renewal will come, the lease runs out (a review proved it ended unreported).
      s->lost = true;
      break;
    }
    if (renewed || net::clock::now() >= s->valid_until) {  // gone, or no renewal in time
      s->lost = true;
      break;
    }
  }
  if (s->lost && on_lost) on_lost();
}

job_queue::job_queue(client::client& c, std::string_view name, job_queue_options opts)
    : client_(c), opts_(std::move(opts)) {
  base_ = opts_.prefix;
  base_.append("{").append(name).append("}:");
  if (opts_.lease.count() < 1) throw std::invalid_argument("job_queue: the lease must be at least 1 ms");
  if (opts_.max_attempts < 1) throw std::invalid_argument("job_queue: max_attempts must be at least 1");
  // An empty name, or a prefix with braces of its own, would not make {name} the keys' hash tag:
  // they would fall in different slots (CROSSSLOT on a cluster).
  const auto slot = client::hash_slot(key("wait"));
  for (const char* part : {"delayed", "active", "data", "attempts", "dead", "seq", "notify"}) {
    if (client::hash_slot(key(part)) != slot) {
      throw std::invalid_argument("job_queue: the keys of queue \"" + std::string(name) + "\" would not share a slot (an empty name, or braces in the prefix)");
    }
  }
}

std::string job_queue::key(std::string_view part) const {
  std::string k = base_;
  k.append(part);
  return k;
}

task<resp::result<std::string>> job_queue::enqueue(std::string_view payload, std::chrono::milliseconds delay) {
  const std::array<std::string, 5> keys = {key("seq"), key("wait"), key("delayed"), key("data"), key("notify")};
  const std::array<std::string, 2> args = {std::string(payload), ms_argument(delay)};
  auto reply = co_await script_for<enqueue_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->data_type != resp::type::blob_string && reply->data_type != resp::type::simple_string) {
    co_return unexpected_reply("job_queue: enqueue");
  }
  co_return std::move(reply->text);
}

task<resp::result<std::optional<job>>> job_queue::reserve_once(std::int64_t& next_due_ms) {
  const std::array<std::string, 7> keys = {key("wait"),     key("delayed"), key("active"), key("data"),
                                           key("attempts"), key("dead"),    key("notify")};
  const std::array<std::string, 3> args = {ms_argument(opts_.lease), std::to_string(opts_.max_attempts),
                                           std::to_string(std::max<std::int64_t>(1, opts_.max_moves))};
  const auto sent = net::clock::now();
  auto reply = co_await script_for<reserve_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  const auto& e = reply->elements;
  if (reply->data_type != resp::type::array || e.empty() || e[0].data_type != resp::type::integer) {
    co_return unexpected_reply("job_queue: reserve");
  }
  if (e[0].integer == 0 && e.size() == 2 && e[1].data_type == resp::type::integer) {
    next_due_ms = e[1].integer;
    co_return std::optional<job>();
  }
  if (e[0].integer != 1 || e.size() != 4 || e[3].data_type != resp::type::integer) co_return unexpected_reply("job_queue: reserve");
  co_return std::optional<job>(job{std::move(reply->elements[1].text), std::move(reply->elements[2].text), e[3].integer, sent});
}

task<resp::result<std::optional<job>>> job_queue::reserve() {
  std::int64_t next_due = -1;
  co_return co_await reserve_once(next_due);
}

task<resp::result<std::optional<job>>> job_queue::reserve(std::chrono::milliseconds wait) {
  const auto deadline = net::deadline_after(client_.loop().now(), wait);
  const std::string notify = key("notify");
  for (;;) {
    std::int64_t next_due = -1;
    auto got = co_await reserve_once(next_due);
    if (!got || *got) co_return got;
    const auto now = client_.loop().now();
    if (now >= deadline) co_return got;
    // Block until an enqueue's token, the next delayed job or lease falls due, or the wait ends,
    // whichever comes first; then reserve again (the token may be stale, or another worker's job).
    auto block = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    if (next_due >= 0) block = std::min(block, std::chrono::milliseconds(next_due));
    block = std::clamp(block, std::chrono::milliseconds(1), std::chrono::milliseconds(24 * 3600 * 1000));
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", static_cast<double>(block.count()) / 1000.0);  // BLPOP takes seconds (Redis 6+: decimals)
    // The command's own timeout covers the block plus the usual allowance, so a server that stops
    // answering does not hold the worker for ever.
    const auto allowance = opts_.timeout.count() > 0 ? opts_.timeout : std::chrono::milliseconds(1000);
    auto woken = co_await client_.command<resp::ignore_t>("BLPOP", notify, std::string_view(seconds)).with_timeout(block + allowance);
    if (!woken) co_return woken.error();
  }
}

task<resp::result<bool>> job_queue::complete(const job& j) {
  const std::array<std::string, 3> keys = {key("active"), key("data"), key("attempts")};
  const std::array<std::string, 2> args = {j.id, std::to_string(j.attempt)};
  auto reply = co_await script_for<complete_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->data_type != resp::type::integer) co_return unexpected_reply("job_queue: complete");
  co_return reply->integer == 1;
}

task<resp::result<failed_job>> job_queue::fail(const job& j) {
  const std::array<std::string, 5> keys = {key("active"), key("delayed"), key("dead"), key("attempts"), key("notify")};
  const std::array<std::string, 5> args = {j.id, std::to_string(j.attempt), std::to_string(opts_.max_attempts),
                                           ms_argument(opts_.retry_delay), ms_argument(opts_.max_retry_delay)};
  auto reply = co_await script_for<fail_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->data_type != resp::type::integer || reply->integer < 0 || reply->integer > 2) co_return unexpected_reply("job_queue: fail");
  co_return reply->integer == 1 ? failed_job::retried : reply->integer == 2 ? failed_job::dead : failed_job::lease_lost;
}

task<resp::result<bool>> job_queue::extend(const job& j) {
  return extend_once(client_, {key("active"), key("attempts")}, {j.id, std::to_string(j.attempt), ms_argument(opts_.lease)}, opts_.timeout);
}

job_lease job_queue::keep_alive(const job& j, std::function<void()> on_lost) {
  auto s = std::make_shared<job_lease::state>();
  s->client = &client_;
  s->keys = {key("active"), key("attempts")};
  s->args = {j.id, std::to_string(j.attempt), ms_argument(opts_.lease)};
  s->lease = opts_.lease;
  s->timeout = opts_.timeout;
  // A job built by hand has no reservation time: its lease is taken to start now.
  s->valid_until = (j.leased_at == net::clock::time_point{} ? net::clock::now() : j.leased_at) + opts_.lease;
  s->dog.attach(client_.loop());
  keep_renewing(s, std::move(on_lost));
  return job_lease(std::move(s));
}

task<resp::result<job_counts>> job_queue::counts() {
  const std::array<std::string, 4> keys = {key("wait"), key("delayed"), key("active"), key("dead")};
  auto reply = co_await script_for<counts_lua>().run(client_, keys, {}, opts_.timeout);
  if (!reply) co_return reply.error();
  const auto& e = reply->elements;
  if (reply->data_type != resp::type::array || e.size() != 4 ||
      std::any_of(e.begin(), e.end(), [](const resp::value& v) { return v.data_type != resp::type::integer; })) {
    co_return unexpected_reply("job_queue: counts");
  }
  co_return job_counts{e[0].integer, e[1].integer, e[2].integer, e[3].integer};
}

}  // namespace redring::patterns
