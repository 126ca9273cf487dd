// SPDX-License-Identifier: MIT
// Client-side caching against a real redis-server: hits without round trips, invalidations of
// writes by others and by this client, flushes, a lost connection, eviction, RESP2 refused.
#include "patterns/local_cache.hpp"

#include "client/detached.hpp"

#include "tests/patterns/commandstats.hpp"
#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

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

TEST(LocalCacheSetup, TrackingOverResp2IsRefusedWithAClearError) {
  test::redis_server server;
  net::loop loop;
  client::options o = tracking_options(server);
  o.protocol = 2;
  client::client c(loop, o);
  local_cache cache(c);
  auto r = run_task(loop, cache.get("k"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, client::errc::handshake_failed);
  EXPECT_NE(c.last_error().find("needs RESP3"), std::string::npos) << c.last_error();
}

}  // namespace
}  // namespace redring::patterns
