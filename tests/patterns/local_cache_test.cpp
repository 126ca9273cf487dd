// SPDX-License-Identifier: MIT
// Client-side caching against a real redis-server: hits without round trips, invalidations of
// writes by others and by this client, flushes, a lost connection, eviction, RESP2 refused.
#include "patterns/local_cache.hpp"

#include "client/detached.hpp"

#include "tests/patterns/commandstats.hpp"
#include "tests/patterns/run_task.hpp"
#include "tests/patterns/split_relay.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::run_task;

client::options tracking_options(const test::redis_server& s) {
  client::options o = test::options_for(s);
  o.tracking.enabled = true;
  o.reconnect.initial_delay = 10ms;
  o.reconnect.max_delay = 50ms;
  return o;
}

std::optional<std::string> cached_get_in(net::loop& loop, local_cache& cache, std::string_view key) {
  auto r = run_task(loop, cache.get(key));
  EXPECT_TRUE(r) << r.error().what();
  return r ? *r : std::nullopt;
}

class LocalCache : public ::testing::Test {
 protected:
  test::redis_server server;
  net::loop loop;
  client::client c{loop, tracking_options(server)};
  test::blocking_connection admin{server.socket_path()};

  std::int64_t gets() { return test::command_calls(admin.call({"INFO", "commandstats"}).text, "get"); }
  std::optional<std::string> cached_get(local_cache& cache, std::string_view key) {
    auto r = run_task(loop, cache.get(key));
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : std::nullopt;
  }
};

TEST_F(LocalCache, ASecondReadIsAnsweredWithoutARoundTrip) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "k", "v1"}).text, "OK");
  EXPECT_EQ(cached_get(cache, "k"), "v1");
  const std::int64_t after_first = gets();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(cached_get(cache, "k"), "v1");
  EXPECT_EQ(gets(), after_first);  // no GET reached the server
  EXPECT_EQ(cached_get(cache, "missing"), std::nullopt);
  EXPECT_EQ(cached_get(cache, "missing"), std::nullopt);  // absence is kept too
  const auto s = cache.stats();
  EXPECT_EQ(s.hits, 6u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.bytes, std::string("k").size() + 2 + std::string("missing").size());
}

// A write by another client: the server's invalidation drops the key, and the next read sees the
// new value; a key created after its absence was cached likewise.
TEST_F(LocalCache, AWriteByAnotherClientIsSeenAfterItsInvalidation) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "k", "old"}).text, "OK");
  EXPECT_EQ(cached_get(cache, "k"), "old");
  EXPECT_EQ(cached_get(cache, "later"), std::nullopt);
  ASSERT_EQ(admin.call({"SET", "k", "new"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "later", "now"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return cache.stats().invalidations == 2; }, 5s));
  EXPECT_FALSE(cache.holds("k"));
  EXPECT_EQ(cached_get(cache, "k"), "new");
  EXPECT_EQ(cached_get(cache, "later"), "now");
  // Deletion invalidates, as does setting a TTL, and the expiry itself (the server's active expiry
  // deletes the key within about 100 ms here: no read needed).
  ASSERT_EQ(admin.call({"DEL", "later"}).integer, 1);
  ASSERT_EQ(admin.call({"PEXPIRE", "k", "200"}).integer, 1);
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("k") && !cache.holds("later"); }, 5s));
  EXPECT_EQ(cached_get(cache, "later"), std::nullopt);
  EXPECT_EQ(cached_get(cache, "k"), "new");  // not expired yet: read and kept again
  ASSERT_TRUE(cache.holds("k"));
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("k"); }, 5s));  // expired
  EXPECT_EQ(cached_get(cache, "k"), std::nullopt);
}

// This client's own writes: `set` drops the local copy first, so the next read (in the same turn)
// sees the new value; a write by another path of the same client is seen once its invalidation
// arrives (no NOLOOP by default).
TEST_F(LocalCache, ThisClientsOwnWritesAreSeen) {
  local_cache cache(c);
  EXPECT_EQ(cached_get(cache, "mine"), std::nullopt);
  auto body = [&]() -> task<std::optional<std::string>> {
    auto ok = co_await cache.set("mine", "1");
    EXPECT_TRUE(ok && *ok);
    auto v = co_await cache.get("mine");  // right after the reply: the invalidation may still be on its way
    co_return v ? *v : std::nullopt;
  };
  EXPECT_EQ(run_task(loop, body()), "1");
  auto plain = [&]() -> task<bool> { co_return static_cast<bool>(co_await c.set("mine", "2")); };
  ASSERT_TRUE(run_task(loop, plain()));
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("mine"); }, 5s));
  EXPECT_EQ(cached_get(cache, "mine"), "2");
}

TEST_F(LocalCache, AFlushDropsEverything) {
  local_cache cache(c);
  for (const char* k : {"a", "b", "c"}) {
    ASSERT_EQ(admin.call({"SET", k, "v"}).text, "OK");
    EXPECT_EQ(cached_get(cache, k), "v");
  }
  ASSERT_EQ(cache.stats().entries, 3u);
  ASSERT_EQ(admin.call({"FLUSHALL"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return cache.stats().entries == 0; }, 5s));
  EXPECT_EQ(cache.stats().flushes, 1u);
  EXPECT_EQ(cached_get(cache, "a"), std::nullopt);
}

// The connection is killed and the key changed before the client reconnects: no invalidation can
// come (its tracked keys went with the connection), so the cache drops everything and reads again.
TEST_F(LocalCache, ALostConnectionDropsEverything) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "k", "before"}).text, "OK");
  EXPECT_EQ(cached_get(cache, "k"), "before");
  const auto connects = c.conn().connects();
  ASSERT_EQ(admin.call({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}).integer, 1);
  ASSERT_EQ(admin.call({"SET", "k", "while away"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return c.conn().connects() > connects && c.conn().state() == client::connection_state::ready; }, 5s));
  EXPECT_EQ(cached_get(cache, "k"), "while away");
  EXPECT_GE(cache.stats().flushes, 1u);
  // And the new connection tracks again.
  ASSERT_EQ(admin.call({"SET", "k", "after"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("k"); }, 5s));
  EXPECT_EQ(cached_get(cache, "k"), "after");
}

TEST_F(LocalCache, TheLeastRecentlyUsedKeyIsEvicted) {
  local_cache cache(c, {.max_entries = 2});
  for (const char* k : {"a", "b"}) EXPECT_EQ(cached_get(cache, k), std::nullopt);
  EXPECT_EQ(cached_get(cache, "a"), std::nullopt);  // a is now more recent than b
  EXPECT_EQ(cached_get(cache, "c"), std::nullopt);  // evicts b
  EXPECT_TRUE(cache.holds("a"));
  EXPECT_FALSE(cache.holds("b"));
  EXPECT_TRUE(cache.holds("c"));
  EXPECT_EQ(cache.stats().evictions, 1u);
  cache.clear();
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.stats().bytes, 0u);
}

TEST_F(LocalCache, ByteBoundAndMaxAge) {
  local_cache cache(c, {.max_bytes = 16, .max_age = 50ms});
  ASSERT_EQ(admin.call({"SET", "big", std::string(100, 'x')}).text, "OK");
  EXPECT_EQ(cached_get(cache, "big"), std::string(100, 'x'));
  EXPECT_FALSE(cache.holds("big"));  // larger than the whole cache: not kept
  ASSERT_EQ(admin.call({"SET", "s", "12345"}).text, "OK");
  EXPECT_EQ(cached_get(cache, "s"), "12345");
  EXPECT_TRUE(cache.holds("s"));
  test::run_for(loop, 80ms);
  const auto misses = cache.stats().misses;
  EXPECT_EQ(cached_get(cache, "s"), "12345");
  EXPECT_EQ(cache.stats().misses, misses + 1);  // too old: read again
}

// A key past its TTL that the server has not deleted yet sends no invalidation: the local copy
// keeps the key's own deadline (PTTL, read with the GET). A review proved it served 300 ms late.
TEST(LocalCacheTtl, AnExpiredKeyIsNotServedBeforeTheServerDeletesIt) {
  test::redis_server server({"--enable-debug-command", "yes"});
  net::loop loop;
  client::client c(loop, tracking_options(server));
  test::blocking_connection admin{server.socket_path()};
  local_cache cache(c);
  ASSERT_EQ(admin.call({"DEBUG", "SET-ACTIVE-EXPIRE", "0"}).text, "OK");  // as if the expiry sampler lagged
  ASSERT_EQ(admin.call({"SET", "k", "v", "PX", "100"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "forever", "w"}).text, "OK");
  auto r1 = run_task(loop, cache.get("k"));
  ASSERT_TRUE(r1 && *r1 == "v");
  EXPECT_TRUE(cache.holds("k"));
  ASSERT_TRUE(run_task(loop, cache.get("forever")));
  test::run_for(loop, 300ms);
  auto r2 = run_task(loop, cache.get("k"));
  ASSERT_TRUE(r2);
  EXPECT_EQ(*r2, std::nullopt);
  auto r3 = run_task(loop, cache.get("forever"));
  ASSERT_TRUE(r3 && *r3 == "w");
  EXPECT_EQ(cache.stats().hits, 1u);  // "forever" (no TTL) only
}

// pool_size 2: a GET on the other connection, answered before the SET ran (held by CLIENT PAUSE
// WRITE), must not leave the old value to be served after set() returned (a review proved it was).
TEST(LocalCachePool, SetIsReadYourWritesWithTwoConnections) {
  test::redis_server server;
  net::loop loop;
  client::options o = tracking_options(server);
  o.pool_size = 2;
  client::client c(loop, o);
  test::blocking_connection admin{server.socket_path()};
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "k", "v1"}).text, "OK");
  auto first = run_task(loop, cache.get("k"));
  ASSERT_TRUE(first && *first == "v1");
  ASSERT_EQ(admin.call({"CLIENT", "PAUSE", "300", "WRITE"}).text, "OK");
  std::optional<std::string> after_set;
  bool done = false, read = false;
  auto writer = [&]() -> client::detached {
    auto ok = co_await cache.set("k", "v2");
    EXPECT_TRUE(ok && *ok);
    auto v = co_await cache.get("k");
    after_set = v ? *v : std::optional<std::string>("error");
    done = true;
  };
  auto reader = [&]() -> client::detached {
    (void)co_await cache.get("k");  // concurrent with the write: either value is right for it
    read = true;
  };
  writer();
  reader();
  ASSERT_TRUE(test::run_until(loop, [&] { return done && read; }, 5s));
  EXPECT_EQ(after_set, "v2");
}

// SWAPDB changes every value and sends no invalidation (Redis 7.0): documented; clear() is the remedy.
TEST_F(LocalCache, SwapdbIsNotInvalidatedClearIsTheRemedy) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "k", "db0"}).text, "OK");
  ASSERT_EQ(admin.call({"SELECT", "1"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "k", "db1"}).text, "OK");
  EXPECT_EQ(cached_get(cache, "k"), "db0");
  ASSERT_EQ(admin.call({"SWAPDB", "0", "1"}).text, "OK");
  test::run_for(loop, 200ms);
  EXPECT_EQ(cached_get(cache, "k"), "db0");  // the documented limit
  cache.clear();
  EXPECT_EQ(cached_get(cache, "k"), "db1");
}

TEST_F(LocalCache, WrongTypeIsAnErrorAndNotKept) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"RPUSH", "l", "x"}).integer, 1);
  auto r = run_task(loop, cache.get("l"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code_word(), "WRONGTYPE");
  EXPECT_FALSE(cache.holds("l"));
}

// Pushes are passed on to the handler given; the cache gives it back when it goes.
TEST_F(LocalCache, OtherPushesArePassedOn) {
  struct counter {
    int nodes = 0;
    static void on(void* self, const resp::node&) { ++static_cast<counter*>(self)->nodes; }
  } seen;
  {
    local_cache cache(c, {}, {&counter::on, &seen});
    EXPECT_EQ(cached_get(cache, "k"), std::nullopt);
    ASSERT_EQ(admin.call({"SET", "k", "v"}).text, "OK");
    ASSERT_TRUE(test::run_until(loop, [&] { return seen.nodes >= 4; }, 5s));  // push, "invalidate", array, key
  }
  EXPECT_EQ(seen.nodes, 4);
  // After the cache: the handler is the client's again.
  auto read = [&]() -> task<bool> { co_return static_cast<bool>(co_await c.get("k2")); };
  ASSERT_TRUE(run_task(loop, read()));
  ASSERT_EQ(admin.call({"SET", "k2", "v"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return seen.nodes == 8; }, 5s));
}

// options::tracking reaches the server as CLIENT TRACKING ON with its flags (seen by CLIENT
// TRACKINGINFO on the connection itself).
TEST(LocalCacheSetup, TrackingOptionsReachTheServer) {
  test::redis_server server;
  net::loop loop;
  client::options o = tracking_options(server);
  o.tracking.broadcast = true;
  o.tracking.prefixes = {"user:", "config:"};
  o.tracking.noloop = true;
  client::client c(loop, o);
  auto info = [&]() -> task<resp::result<resp::value>> { co_return co_await c.command<resp::value>("CLIENT", "TRACKINGINFO"); };
  const auto r = run_task(loop, info());
  ASSERT_TRUE(r) << r.error().what();
  std::set<std::string> flags, prefixes;
  for (std::size_t i = 0; i + 1 < r->elements.size(); i += 2) {
    const auto& k = r->elements[i].text;
    for (const auto& e : r->elements[i + 1].elements) (k == "flags" ? flags : prefixes).insert(e.text);
  }
  EXPECT_EQ(flags, (std::set<std::string>{"on", "bcast", "noloop"}));
  EXPECT_EQ(prefixes, (std::set<std::string>{"user:", "config:"}));
}

// Broadcasting mode: keys under a prefix are invalidated without having been read on the connection;
// keys outside every prefix would never be, so they are not kept.
TEST(LocalCacheSetup, BroadcastKeepsOnlyKeysUnderItsPrefixes) {
  test::redis_server server;
  net::loop loop;
  client::options o = tracking_options(server);
  o.tracking.broadcast = true;
  o.tracking.prefixes = {"cfg:"};
  client::client c(loop, o);
  test::blocking_connection admin(server.socket_path());
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "cfg:a", "1"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "other", "1"}).text, "OK");
  for (const char* k : {"cfg:a", "other"}) ASSERT_TRUE(run_task(loop, cache.get(k)));
  EXPECT_TRUE(cache.holds("cfg:a"));
  EXPECT_FALSE(cache.holds("other"));
  ASSERT_EQ(admin.call({"SET", "other", "2"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "cfg:a", "2"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("cfg:a"); }, 5s));
  const auto other = run_task(loop, cache.get("other"));
  ASSERT_TRUE(other && *other);
  EXPECT_EQ(**other, "2");
}

TEST(LocalCacheSetup, AClientWithoutTrackingIsRefused) {
  test::redis_server server;
  net::loop loop;
  client::client c(loop, test::options_for(server));
  EXPECT_THROW(local_cache cache(c), std::invalid_argument);
}

// A client made with `o` fails its handshake: a cache read says so, and the client's last error
// contains `why`.
void expect_handshake_refused(const client::options& o, std::string_view why) {
  net::loop loop;
  client::client c(loop, o);
  local_cache cache(c);
  auto r = run_task(loop, cache.get("k"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, client::errc::handshake_failed);
  EXPECT_NE(c.last_error().find(why), std::string::npos) << c.last_error();
}

TEST(LocalCacheSetup, TrackingOverResp2IsRefusedWithAClearError) {
  test::redis_server server;
  client::options o = tracking_options(server);
  o.protocol = 2;
  expect_handshake_refused(o, "needs RESP3");
}

// mget: held keys from the process, the others read together and kept; a key of another type is
// nil, as MGET answers it; the next mget is answered in the process but for that key.
TEST_F(LocalCache, MgetServesHeldKeysAndReadsTheOthersTogether) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "a", "1"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "b", "2"}).text, "OK");
  ASSERT_EQ(admin.call({"RPUSH", "list", "x"}).integer, 1);
  EXPECT_EQ(cached_get(cache, "a"), "1");
  const std::vector<std::string_view> keys = {"a", "b", "missing", "list", "a"};
  const std::int64_t before = gets();
  const auto first = run_task(loop, cache.mget(keys));
  ASSERT_TRUE(first) << first.error().what();
  const std::vector<std::optional<std::string>> expected = {"1", "2", std::nullopt, std::nullopt, "1"};
  EXPECT_EQ(*first, expected);
  EXPECT_EQ(gets(), before + 3);  // b, missing, list
  EXPECT_EQ(cache.stats().hits, 2u);  // a, twice
  EXPECT_FALSE(cache.holds("list"));
  const auto second = run_task(loop, cache.mget(keys));
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, expected);
  EXPECT_EQ(gets(), before + 4);  // list only
  ASSERT_EQ(admin.call({"SET", "b", "3"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("b"); }, 5s));
  const auto third = run_task(loop, cache.mget(std::vector<std::string_view>{"b"}));
  ASSERT_TRUE(third);
  EXPECT_EQ((*third)[0], "3");
  const auto none = run_task(loop, cache.mget({}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// --- read(): any read-only command about one key ---------------------------------------------------

// One row per command `read` keeps: what puts the key in place, the read ("k" is the key), and a
// write by another client that changes the read's reply.
struct cacheable_case {
  std::vector<std::vector<std::string_view>> setup;
  std::vector<std::string_view> read;
  std::vector<std::string_view> change;
};

std::vector<cacheable_case> cacheable_cases() {
  const std::vector<std::string_view> hash = {"HSET", "k", "a", "1"};
  const std::vector<std::string_view> list = {"RPUSH", "k", "a", "b"};
  const std::vector<std::string_view> set = {"SADD", "k", "a"};
  const std::vector<std::string_view> zset = {"ZADD", "k", "1", "a", "2", "b"};
  const std::vector<std::string_view> lex = {"ZADD", "k", "0", "a", "0", "b"};
  const std::vector<std::string_view> stream = {"XADD", "k", "1-1", "f", "v"};
  const std::vector<std::string_view> geo = {"GEOADD", "k", "13.361389", "38.115556", "a", "15.087269", "37.502669", "b"};
  return {
      {{{"SET", "k", "v1"}}, {"GET", "k"}, {"SET", "k", "v2"}},
      {{{"SET", "k", "hello"}}, {"GETRANGE", "k", "0", "2"}, {"SET", "k", "world"}},
      {{{"SET", "k", "abc"}}, {"STRLEN", "k"}, {"APPEND", "k", "d"}},
      {{{"SETBIT", "k", "7", "1"}}, {"GETBIT", "k", "7"}, {"SETBIT", "k", "7", "0"}},
      {{{"SET", "k", "a"}}, {"BITCOUNT", "k"}, {"SET", "k", "aaa"}},
      {{{"SETBIT", "k", "3", "1"}}, {"BITPOS", "k", "1"}, {"SETBIT", "k", "1", "1"}},
      {{{"SET", "k", "a"}}, {"BITFIELD_RO", "k", "GET", "u8", "0"}, {"SET", "k", "b"}},
      {{{"SET", "k", "v"}}, {"TYPE", "k"}, {"DEL", "k"}},
      {{{"SET", "k", "v"}}, {"EXISTS", "k"}, {"DEL", "k"}},
      {{hash}, {"HGET", "k", "a"}, {"HSET", "k", "a", "2"}},
      {{hash}, {"HMGET", "k", "a", "b"}, {"HSET", "k", "b", "3"}},
      {{hash}, {"HGETALL", "k"}, {"HSET", "k", "b", "2"}},
      {{hash}, {"HKEYS", "k"}, {"HSET", "k", "b", "2"}},
      {{hash}, {"HVALS", "k"}, {"HSET", "k", "b", "2"}},
      {{hash}, {"HLEN", "k"}, {"HSET", "k", "b", "2"}},
      {{hash}, {"HEXISTS", "k", "b"}, {"HSET", "k", "b", "2"}},
      {{hash}, {"HSTRLEN", "k", "a"}, {"HSET", "k", "a", "123"}},
      {{list}, {"LINDEX", "k", "0"}, {"LPUSH", "k", "z"}},
      {{list}, {"LLEN", "k"}, {"RPUSH", "k", "c"}},
      {{list}, {"LRANGE", "k", "0", "-1"}, {"RPUSH", "k", "c"}},
      {{list}, {"LPOS", "k", "b"}, {"LPUSH", "k", "z"}},
      {{set}, {"SCARD", "k"}, {"SADD", "k", "b"}},
      {{set}, {"SISMEMBER", "k", "b"}, {"SADD", "k", "b"}},
      {{set}, {"SMISMEMBER", "k", "a", "b"}, {"SADD", "k", "b"}},
      {{set}, {"SMEMBERS", "k"}, {"SADD", "k", "b"}},
      {{zset}, {"ZCARD", "k"}, {"ZADD", "k", "3", "c"}},
      {{zset}, {"ZCOUNT", "k", "0", "10"}, {"ZADD", "k", "3", "c"}},
      {{lex}, {"ZLEXCOUNT", "k", "-", "+"}, {"ZADD", "k", "0", "c"}},
      {{zset}, {"ZMSCORE", "k", "a", "c"}, {"ZADD", "k", "3", "c"}},
      {{zset}, {"ZSCORE", "k", "a"}, {"ZADD", "k", "5", "a"}},
      {{zset}, {"ZRANK", "k", "b"}, {"ZADD", "k", "0", "c"}},
      {{zset}, {"ZREVRANK", "k", "a"}, {"ZADD", "k", "3", "c"}},
      {{zset}, {"ZRANGE", "k", "0", "-1", "WITHSCORES"}, {"ZADD", "k", "3", "c"}},
      {{lex}, {"ZRANGEBYLEX", "k", "-", "+"}, {"ZADD", "k", "0", "c"}},
      {{zset}, {"ZRANGEBYSCORE", "k", "-inf", "+inf"}, {"ZADD", "k", "3", "c"}},
      {{zset}, {"ZREVRANGE", "k", "0", "-1"}, {"ZADD", "k", "3", "c"}},
      {{lex}, {"ZREVRANGEBYLEX", "k", "+", "-"}, {"ZADD", "k", "0", "c"}},
      {{zset}, {"ZREVRANGEBYSCORE", "k", "+inf", "-inf"}, {"ZADD", "k", "3", "c"}},
      {{stream}, {"XLEN", "k"}, {"XADD", "k", "2-1", "f", "v"}},
      {{stream}, {"XRANGE", "k", "-", "+"}, {"XADD", "k", "2-1", "f", "v"}},
      {{stream}, {"XREVRANGE", "k", "+", "-"}, {"XADD", "k", "2-1", "f", "v"}},
      {{geo}, {"GEODIST", "k", "a", "b"}, {"GEOADD", "k", "13", "38", "a"}},
      {{geo}, {"GEOHASH", "k", "a"}, {"GEOADD", "k", "13", "38", "a"}},
      {{geo}, {"GEOPOS", "k", "a"}, {"GEOADD", "k", "13", "38", "a"}},
      {{geo}, {"GEOSEARCH", "k", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"}, {"GEOADD", "k", "15.01", "37.01", "c"}},
  };
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  return out;
}

// Every command the cache keeps: the first read goes to the server and equals an uncached read, the
// second is answered in the process (the server counts no call), and the server invalidates the key
// for it when another client writes, after which the read sees the change. This is the evidence
// that Redis tracks the key for each of these commands.
TEST_F(LocalCache, EveryCacheableCommandIsKeptAndInvalidated) {
  local_cache cache(c);
  const auto cases = cacheable_cases();
  std::set<std::string_view> covered;
  auto direct = [&](std::span<const std::string_view> words) -> task<resp::result<resp::value>> {
    co_return co_await c.command<resp::value>(words);
  };
  for (const cacheable_case& t : cases) {
    const std::string_view name = t.read[0];
    SCOPED_TRACE(std::string(name));
    covered.insert(name);
    ASSERT_TRUE(local_cache::cacheable(t.read));
    for (const auto& words : t.setup) ASSERT_FALSE(admin.call(words).is_error());
    const auto before = run_task(loop, direct(t.read));
    ASSERT_TRUE(before) << before.error().what();
    const auto first = run_task(loop, cache.read(t.read));
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_EQ(*first, *before);
    ASSERT_TRUE(cache.holds("k"));
    const std::int64_t calls = test::command_calls(admin.call({"INFO", "commandstats"}).text, lower(name));
    const auto hits = cache.stats().hits;
    const auto second = run_task(loop, cache.read(t.read));
    ASSERT_TRUE(second);
    EXPECT_EQ(*second, *first);
    EXPECT_EQ(cache.stats().hits, hits + 1);
    EXPECT_EQ(test::command_calls(admin.call({"INFO", "commandstats"}).text, lower(name)), calls);
    ASSERT_FALSE(admin.call(t.change).is_error());
    ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("k"); }, 5s)) << "no invalidation";
    const auto changed = run_task(loop, direct(t.read));
    ASSERT_TRUE(changed);
    EXPECT_NE(*changed, *first) << "the row's write does not change the reply";
    const auto third = run_task(loop, cache.read(t.read));
    ASSERT_TRUE(third);
    EXPECT_EQ(*third, *changed);
    // Next row: a fresh key (its invalidation, if any, precedes the next row's first reply on the
    // connection, so it cannot drop that row's reply).
    ASSERT_FALSE(admin.call({"DEL", "k"}).is_error());
    cache.forget("k");
  }
  const auto names = local_cache::cacheable_commands();
  EXPECT_EQ(covered, std::set<std::string_view>(names.begin(), names.end()));  // a row for each
}

// Commands whose reply the key's invalidation would not cover, writes, and malformed words: refused
// before anything is sent.
TEST_F(LocalCache, ReadRefusesWhatItCannotKeep) {
  local_cache cache(c);
  const std::vector<std::vector<std::string_view>> refused = {
      {"SRANDMEMBER", "k"},  // random
      {"HRANDFIELD", "k"},
      {"TTL", "k"},          // changes with time alone
      {"OBJECT", "FREQ", "k"},
      {"EXISTS", "a", "b"},  // several keys
      {"SORT_RO", "k", "BY", "w_*"},
      {"LCS", "a", "b"},
      {"SET", "k", "v"},     // writes
      {"INCR", "k"},
      {"GETDEL", "k"},
      {"GET"},               // no key
      {},
      {"ZREVRANGEBYSCOREX", "k"},
  };
  const std::int64_t before = test::read_command_counts(admin).commands;
  for (const auto& words : refused) {
    SCOPED_TRACE(words.empty() ? std::string("(empty)") : std::string(words[0]));
    EXPECT_FALSE(local_cache::cacheable(words));
    const auto r = run_task(loop, cache.read(words));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, client::errc::invalid_argument);
  }
  EXPECT_EQ(test::read_command_counts(admin).commands, before);  // nothing reached the server
  EXPECT_TRUE(local_cache::cacheable(std::vector<std::string_view>{"hGetAll", "k"}));  // any case
}

// The replies of one key share its invalidation; names match in any case; GET through `get` and
// through `read` is one reply; byte accounting counts the words after the key and the payloads.
TEST_F(LocalCache, RepliesOfOneKeyShareTheKeysInvalidation) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"HSET", "h", "f1", "a", "f2", "bb"}).integer, 2);
  ASSERT_EQ(admin.call({"SET", "s", "xyz"}).text, "OK");
  for (const std::vector<std::string_view>& words :
       {std::vector<std::string_view>{"HGET", "h", "f1"}, {"HGET", "h", "f2"}, {"HLEN", "h"}, {"GET", "s"}}) {
    ASSERT_TRUE(run_task(loop, cache.read(words)));
  }
  auto s = cache.stats();
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.replies, 4u);
  EXPECT_EQ(s.misses, 4u);
  // h: key 1 + ("f1" 2 + "a" 1) + ("f2" 2 + "bb" 2) + HLEN's "2" 1, and each reply's own record;
  // s: key 1 + "xyz" 3 (GET's value is the entry's own field).
  constexpr std::size_t r = local_cache::reply_overhead;
  EXPECT_EQ(s.bytes, 1 + (3 + r) + (4 + r) + (1 + r) + 1 + 3);
  const auto lowercase = run_task(loop, cache.read("hget", "h", "f2"));
  ASSERT_TRUE(lowercase);
  EXPECT_EQ(lowercase->text, "bb");
  EXPECT_EQ(cached_get(cache, "s"), "xyz");  // get() finds read()'s GET
  EXPECT_EQ(cache.stats().hits, 2u);
  ASSERT_EQ(admin.call({"HSET", "h", "f3", "c"}).integer, 1);
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("h"); }, 5s));
  s = cache.stats();
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.replies, 1u);
  EXPECT_EQ(s.bytes, 4u);  // s and its GET value
  EXPECT_EQ(s.invalidations, 1u);
  const auto len = run_task(loop, cache.read("HLEN", "h"));
  ASSERT_TRUE(len);
  EXPECT_EQ(len->integer, 3);
  cache.forget("s");
  EXPECT_FALSE(cache.holds("s"));
  EXPECT_EQ(cache.stats().replies, 1u);
}

// Each kept reply counts its record (reply_overhead) and each element of an aggregate its value
// (element_overhead), so max_bytes bounds many small replies and empty lists too; the least recently
// used key goes first, never the key being stored; a reply larger than the cache is served, not kept.
TEST_F(LocalCache, ReadRepliesCountAgainstTheBounds) {
  constexpr std::size_t r = local_cache::reply_overhead;
  constexpr std::size_t e = local_cache::element_overhead;
  const std::size_t lrange_all = 3 + r + (e + 1) + (e + 2);  // words "0" "-1", elements "a" "bb"
  const std::size_t lrange_one = 2 + r + (e + 1);            // words "0" "0", element "a"
  const std::size_t lrange_two = 2 + r + (e + 2);            // words "1" "1", element "bb"
  const std::size_t empty = 3 + r;                           // no element
  const std::size_t bound = 1 + lrange_all + lrange_one + lrange_two;  // the three replies of "l" fit
  ASSERT_LE(5 + empty, lrange_two);                          // and "empty" fits in place of the third
  local_cache cache(c, {.max_entries = 100, .max_bytes = bound});
  ASSERT_EQ(admin.call({"RPUSH", "l", "a", "bb"}).integer, 2);
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "l", "0", "-1")));
  EXPECT_EQ(cache.stats().bytes, 1 + lrange_all);
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "l", "0", "0")));
  EXPECT_EQ(cache.stats().bytes, 1 + lrange_all + lrange_one);
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "empty", "0", "-1")));
  EXPECT_EQ(cache.stats().entries, 2u);
  EXPECT_EQ(cache.stats().bytes, 1 + lrange_all + lrange_one + 5 + empty);
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "l", "1", "1")));  // does not fit: "empty" goes
  EXPECT_FALSE(cache.holds("empty"));
  EXPECT_TRUE(cache.holds("l"));
  EXPECT_EQ(cache.stats().replies, 3u);
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(cache.stats().bytes, bound);
  // A reply of "l" that does not fit beside its own: the key's older replies give way, oldest first.
  ASSERT_EQ(admin.call({"RPUSH", "l", "ccc", "dddd"}).integer, 4);
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("l"); }, 5s));
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "l", "0", "0")));
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "l", "1", "1")));
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "l", "0", "-1")));  // four elements: the oldest goes
  EXPECT_EQ(cache.stats().replies, 2u);
  EXPECT_EQ(cache.stats().bytes, 1 + lrange_two + 3 + r + (e + 1) + (e + 2) + (e + 3) + (e + 4));
  const auto hits = cache.stats().hits;
  ASSERT_TRUE(run_task(loop, cache.read("LRANGE", "l", "1", "1")));
  EXPECT_EQ(cache.stats().hits, hits + 1);  // the newer of the two older replies stayed
  std::vector<std::string_view> big_list = {"RPUSH", "big"};
  for (int i = 0; i < 20; ++i) big_list.push_back("x");
  ASSERT_EQ(admin.call(big_list).integer, 20);
  const auto big = run_task(loop, cache.read("LRANGE", "big", "0", "-1"));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->elements.size(), 20u);
  EXPECT_FALSE(cache.holds("big"));
  EXPECT_TRUE(cache.holds("l"));
}

// Many small replies under one key (a review held 10,000 HEXISTS replies, ~2.7 MB of heap, counted
// as 49 KB within a 64 KiB bound): each counts its record, so the bound holds ~250 of them, the
// key's oldest giving way to each new one; and a key keeps at most max_replies_per_key.
TEST_F(LocalCache, ManySmallRepliesAreBoundedByBytesAndPerKey) {
  constexpr std::size_t max_bytes = 64 * 1024;
  ASSERT_EQ(admin.call({"HSET", "h", "x", "1"}).integer, 1);
  std::vector<std::string> fields;
  for (int i = 0; i < 2000; ++i) fields.push_back(std::to_string(i));
  auto fill = [&](local_cache& lc) -> task<bool> {
    for (const auto& f : fields) {
      if (!co_await lc.read("HEXISTS", "h", f)) co_return false;
    }
    co_return true;
  };
  {
    local_cache cache(c, {.max_bytes = max_bytes, .max_replies_per_key = 100'000});
    ASSERT_TRUE(run_task(loop, fill(cache), 60s));
    const auto s = cache.stats();
    EXPECT_LE(s.bytes, max_bytes);
    EXPECT_LE(s.replies, max_bytes / local_cache::reply_overhead);
    EXPECT_GE(s.replies, max_bytes / (local_cache::reply_overhead + 8) - 1);
  }
  local_cache capped(c, {.max_replies_per_key = 3});
  ASSERT_TRUE(run_task(loop, fill(capped), 60s));
  EXPECT_EQ(capped.stats().replies, 3u);
  const auto hits = capped.stats().hits;
  for (const char* f : {"1997", "1998", "1999"}) ASSERT_TRUE(run_task(loop, capped.read("HEXISTS", "h", f)));
  EXPECT_EQ(capped.stats().hits, hits + 3);  // the last three stored are the ones kept
  ASSERT_TRUE(run_task(loop, capped.read("HEXISTS", "h", "0")));
  EXPECT_EQ(capped.stats().hits, hits + 3);
}

TEST_F(LocalCache, ReadErrorRepliesAreNotKept) {
  local_cache cache(c);
  ASSERT_EQ(admin.call({"SET", "s", "v"}).text, "OK");
  const auto r = run_task(loop, cache.read("HGETALL", "s"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code_word(), "WRONGTYPE");
  const auto arity = run_task(loop, cache.read("HGET", "s"));  // the server counts the words
  ASSERT_FALSE(arity);
  EXPECT_EQ(arity.error().code, resp::errc::server_error);
  EXPECT_FALSE(cache.holds("s"));
  EXPECT_EQ(cache.stats().replies, 0u);
}

// The key's TTL bounds every reply kept under it, as for GET.
TEST(LocalCacheTtl, AReadReplyEndsAtItsKeysDeadline) {
  test::redis_server server({"--enable-debug-command", "yes"});
  net::loop loop;
  client::client c(loop, tracking_options(server));
  test::blocking_connection admin{server.socket_path()};
  local_cache cache(c);
  ASSERT_EQ(admin.call({"DEBUG", "SET-ACTIVE-EXPIRE", "0"}).text, "OK");
  ASSERT_EQ(admin.call({"RPUSH", "l", "a"}).integer, 1);
  ASSERT_EQ(admin.call({"PEXPIRE", "l", "100"}).integer, 1);
  const auto first = run_task(loop, cache.read("LRANGE", "l", "0", "-1"));
  ASSERT_TRUE(first && first->elements.size() == 1);
  EXPECT_TRUE(cache.holds("l"));
  test::run_for(loop, 300ms);
  const auto later = run_task(loop, cache.read("LRANGE", "l", "0", "-1"));
  ASSERT_TRUE(later);
  EXPECT_TRUE(later->elements.empty());
  EXPECT_EQ(cache.stats().hits, 0u);
}

// OPTIN: the server tracks only the cache's reads (each after CLIENT CACHING yes, in a MULTI), so a
// plain read through the same client brings no invalidation; the cache's GET and read() are
// invalidated as in the default mode.
TEST(LocalCacheOptin, OnlyTheCachesReadsAreTracked) {
  test::redis_server server;
  net::loop loop;
  client::options o = tracking_options(server);
  o.tracking.optin = true;
  client::client c(loop, o);
  test::blocking_connection admin{server.socket_path()};
  struct counter {
    int pushes = 0;
    static void on(void* self, const resp::node& n) { static_cast<counter*>(self)->pushes += n.depth == 0 ? 1 : 0; }
  } seen;
  local_cache cache(c, {}, {&counter::on, &seen});
  ASSERT_EQ(admin.call({"SET", "cached", "v1"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "plain", "p1"}).text, "OK");
  ASSERT_EQ(admin.call({"HSET", "h", "f", "1"}).integer, 1);
  auto info = [&]() -> task<resp::result<resp::value>> { co_return co_await c.command<resp::value>("CLIENT", "TRACKINGINFO"); };
  const auto tracking = run_task(loop, info());
  ASSERT_TRUE(tracking) << tracking.error().what();
  const resp::value* flags = tracking->find("flags");
  ASSERT_NE(flags, nullptr);
  EXPECT_TRUE(std::any_of(flags->elements.begin(), flags->elements.end(), [](const resp::value& f) { return f.text == "optin"; }));
  auto plain_get = [&]() -> task<std::optional<std::string>> {
    auto r = co_await c.get("plain");
    co_return r ? *r : std::nullopt;
  };
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(run_task(loop, cache.get("cached")));
    ASSERT_TRUE(run_task(loop, cache.read("HGETALL", "h")));
    EXPECT_EQ(run_task(loop, plain_get()), "p1");
  }
  EXPECT_EQ(cache.stats().hits, 2u);
  ASSERT_EQ(admin.call({"SET", "plain", "p2"}).text, "OK");
  ASSERT_EQ(admin.call({"SET", "cached", "v2"}).text, "OK");
  ASSERT_EQ(admin.call({"HSET", "h", "f", "2"}).integer, 0);
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("cached") && !cache.holds("h"); }, 5s));
  EXPECT_EQ(run_task(loop, plain_get()), "p2");  // a round trip: any push for "plain" came before it
  EXPECT_EQ(seen.pushes, 2);                     // "cached" and "h" only
  EXPECT_EQ(cached_get_in(loop, cache, "cached"), "v2");
  const auto h = run_task(loop, cache.read("HGETALL", "h"));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->find("f")->text, "2");
  // The new reads are tracked again.
  ASSERT_EQ(admin.call({"SET", "cached", "v3"}).text, "OK");
  ASSERT_TRUE(test::run_until(loop, [&] { return !cache.holds("cached"); }, 5s));
}

TEST(LocalCacheOptin, OptinWithBroadcastIsRefusedWithAClearError) {
  test::redis_server server;
  client::options o = tracking_options(server);
  o.tracking.optin = true;
  o.tracking.broadcast = true;
  expect_handshake_refused(o, "optin and broadcast");
}

// A write by another client that runs between the read and its pipelined PTTL (the pipeline reached
// the server in two reads) sends its invalidation between their two replies, before anything is
// stored: the read is not kept (review helper-33 proved the old value kept and served for good).
// The cache's connection goes through a split_relay that runs `write` on another connection between
// the cache's read of "k" and its PTTL.
struct relayed_cache {
  test::redis_server server;
  test::blocking_connection admin{server.socket_path()};
  test::blocking_connection writer{server.socket_path()};  // used by the relay thread only
  std::vector<std::string_view> write;
  test::split_relay relay{server.socket_path(), "*2\r\n$4\r\nPTTL\r\n$1\r\nk\r\n", [this] { (void)writer.call(write); }};
  net::loop loop;
  client::client c{loop, [this] {
                     client::options o = tracking_options(server);
                     o.unix_path = relay.path();
                     return o;
                   }()};
  local_cache cache{c};

  explicit relayed_cache(std::vector<std::string_view> w) : write(std::move(w)) {}
};

TEST(LocalCacheRace, AWriteBetweenTheReadAndItsPttlIsNotMissed) {
  relayed_cache t({"SET", "k", "v2"});
  ASSERT_EQ(t.admin.call({"SET", "k", "v1"}).text, "OK");
  auto first = run_task(t.loop, t.cache.get("k"));
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "v1");  // right for a read concurrent with the write
  ASSERT_TRUE(t.relay.split());
  ASSERT_EQ(t.admin.call({"GET", "k"}).text, "v2");
  test::run_for(t.loop, 300ms);  // any invalidation still on its way arrives
  auto later = run_task(t.loop, t.cache.get("k"));
  ASSERT_TRUE(later);
  EXPECT_EQ(*later, "v2") << "served from the process after the server changed the key; hits=" << t.cache.stats().hits;
}

// The same through read().
TEST(LocalCacheRace, AWriteBetweenAReadAndItsPttlIsNotMissedByRead) {
  relayed_cache t({"HSET", "k", "g", "2"});
  ASSERT_EQ(t.admin.call({"HSET", "k", "f", "1"}).integer, 1);
  auto first = run_task(t.loop, t.cache.read("HGETALL", "k"));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->elements.size(), 2u);
  ASSERT_TRUE(t.relay.split());
  test::run_for(t.loop, 300ms);
  auto later = run_task(t.loop, t.cache.read("HGETALL", "k"));
  ASSERT_TRUE(later);
  EXPECT_EQ(later->elements.size(), 4u) << "stale HGETALL served; hits=" << t.cache.stats().hits;
}

// Accounting (from review helper-33): random reads, writes by another client, forgets and stale copies, with
// tight bounds; forgetting every key one by one must bring bytes, replies and entries back to 0.
TEST(LocalCacheAccounting, ReturnsToZeroByForgets) {
  test::redis_server server({"--enable-debug-command", "yes"});
  net::loop loop;
  client::client c(loop, tracking_options(server));
  test::blocking_connection admin{server.socket_path()};
  ASSERT_EQ(admin.call({"DEBUG", "SET-ACTIVE-EXPIRE", "0"}).text, "OK");
  for (int round = 0; round < 3; ++round) {
    local_cache cache(c, {.max_entries = 3, .max_bytes = 2 * local_cache::reply_overhead + 200 * static_cast<std::size_t>(round)});
    std::uint32_t seed = 12345u + static_cast<std::uint32_t>(round);
    auto rnd = [&](std::uint32_t n) { seed = seed * 1103515245u + 12345u; return (seed >> 8) % n; };
    const std::vector<std::string> keys = {"a", "bb", "ccc", "dddd", "eeeee"};
    for (int i = 0; i < 400; ++i) {
      const std::string& k = keys[rnd(5)];
      std::string field = std::to_string(rnd(4));
      field.insert(field.begin(), 'f');
      switch (rnd(10)) {
        case 0: (void)admin.call({"DEL", k}); break;
        case 1: (void)admin.call({"SET", k, std::string(rnd(30), 'x')}); break;
        case 2: (void)admin.call({"HSET", k, field, std::string(rnd(30), 'y')}); break;
        case 3: cache.forget(k); break;
        case 4: (void)admin.call({"PEXPIRE", k, "5"}); break;
        case 5: (void)run_task(loop, cache.get(k)); break;
        case 6: (void)run_task(loop, cache.read("get", k)); break;
        case 7: (void)run_task(loop, cache.read("HGET", k, field)); break;
        case 8: (void)run_task(loop, cache.read("HGETALL", k)); break;
        default: (void)run_task(loop, cache.read("HLEN", k)); break;
      }
      if (rnd(7) == 0) test::run_for(loop, 6ms);
      const auto s = cache.stats();
      ASSERT_LE(s.bytes, 2 * local_cache::reply_overhead + 200 * static_cast<std::size_t>(round));
      ASSERT_LE(s.entries, 3u);
    }
    test::run_for(loop, 50ms);
    for (const auto& k : keys) cache.forget(k);
    const auto s = cache.stats();
    EXPECT_EQ(s.entries, 0u);
    EXPECT_EQ(s.replies, 0u);
    EXPECT_EQ(s.bytes, 0u);
    EXPECT_GT(s.hits, 0u);       // the mix served from the process,
    EXPECT_GT(s.evictions, 0u);  // hit the bounds,
    EXPECT_GT(s.invalidations, 0u);  // and saw the server's invalidations
  }
}

}  // namespace
}  // namespace redring::patterns
