// SPDX-License-Identifier: MIT
// The typed helpers against a real redis-server, in RESP3 and RESP2.
#include "client/client.hpp"
#include "client/detached.hpp"

#include "tests/patterns/commandstats.hpp"
#include "tests/support/alloc_counter.hpp"
#include "tests/support/decode.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>

namespace redring::client {
namespace {

using namespace std::chrono_literals;

using test::run_until;

class Helpers : public ::testing::TestWithParam<int> {
 protected:
  Helpers() : c(loop, opts()) {}
  options opts() {
    options o;
    o.unix_path = server.socket_path();
    o.protocol = GetParam();
    return o;
  }
  test::redis_server server{{"--slowlog-log-slower-than", "0"}};
  net::loop loop;
  client c;
};

// TIME and SLOWLOG GET from a server that cannot be trusted: seconds past system_clock's range are
// an error, not an overflowing conversion (undefined behaviour; UBSan flags it).
TEST(ServerTimes, OutOfRangeTimesAreErrors) {
  const auto time_reply = [](std::string_view s, std::string_view us) {
    return test::parse_one(std::string("*2\r\n$").append(std::to_string(s.size())).append("\r\n").append(s).append("\r\n$")
                               .append(std::to_string(us.size())).append("\r\n").append(us).append("\r\n"));
  };
  const auto ok = to_time(time_reply("1700000000", "250000"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(ok->time_since_epoch()).count(), 1700000000250000);
  EXPECT_EQ(to_time(time_reply("9223372036854775807", "0")).error().code, resp::errc::out_of_range);
  EXPECT_EQ(to_time(time_reply("-9223372036854775808", "0")).error().code, resp::errc::out_of_range);
  EXPECT_EQ(to_time(time_reply("1", "1000000")).error().code, resp::errc::out_of_range);
  EXPECT_EQ(to_time(time_reply("1", "-1")).error().code, resp::errc::out_of_range);
  const auto slowlog = [](std::string_view when) {
    return test::parse_one(std::string("*1\r\n*4\r\n:1\r\n:").append(when).append("\r\n:10\r\n*1\r\n$3\r\nGET\r\n"));
  };
  const auto entries = to_slowlog(slowlog("1700000000"));
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ(std::chrono::system_clock::to_time_t(entries->front().when), 1700000000);
  EXPECT_EQ(to_slowlog(slowlog("9223372036854775807")).error().code, resp::errc::out_of_range);
}

TEST_P(Helpers, IgnoredRepliesStillReportErrorsAndNulls) {
  bool finished = false;
  auto body = [&]() -> detached {
    EXPECT_TRUE(co_await c.command<ignore_t>("SET", "k", "v"));
    EXPECT_TRUE(co_await c.command<ignore_t>("GET", "missing"));  // a null is a reply like any other
    EXPECT_TRUE(co_await c.command<ignore_t>("HGETALL", "missing"));
    const auto wrong = co_await c.command<ignore_t>("INCR", "k");
    EXPECT_FALSE(wrong);
    EXPECT_TRUE(!wrong && wrong.error().code == resp::errc::server_error && wrong.error().code_word() == "ERR");
    const auto hit = co_await c.command<std::optional<ignore_t>>("GET", "k");
    EXPECT_TRUE(hit && hit->has_value());
    const auto miss = co_await c.command<std::optional<ignore_t>>("GET", "missing");
    EXPECT_TRUE(miss && !miss->has_value());
    const auto type = co_await c.command<std::optional<ignore_t>>("LPUSH", "k", "x");
    EXPECT_TRUE(!type && type.error().code_word() == "WRONGTYPE");
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

TEST_P(Helpers, Strings) {
  bool finished = false;
  auto body = [&]() -> detached {
    EXPECT_TRUE(*co_await c.set("s", "1", set_options{.expire = 60000ms}));
    EXPECT_FALSE(*co_await c.set("s", "2", set_options{.only_if_absent = true}));
    EXPECT_FALSE(*co_await c.set("nope", "2", set_options{.only_if_present = true}));
    EXPECT_EQ(*co_await c.set_get("s", "3", set_options{.keep_ttl = true}), std::optional<std::string>("1"));
    const auto ttl = co_await c.pttl("s");
    EXPECT_GT(*ttl, 50000);
    EXPECT_EQ(*co_await c.getex("s", std::nullopt), std::optional<std::string>("3"));
    EXPECT_EQ(*co_await c.ttl("s"), -1);
    const std::vector<std::pair<std::string, std::string>> kv = {{"m1", "a"}, {"m2", "b"}};
    EXPECT_TRUE(co_await c.mset(kv));
    const std::vector<std::string> keys = {"m1", "m2", "m3"};
    {
      const std::vector<std::optional<std::string>> expected{"a", "b", std::nullopt};  // GCC 12: no initializer_list beside co_await
      EXPECT_EQ(*co_await c.mget(keys), expected);
    }
    EXPECT_EQ(*co_await c.getdel("m1"), std::optional<std::string>("a"));
    EXPECT_EQ(*co_await c.exists("m1", "m2"), 1);
    const std::string both[] = {"m1", "m2"};  // a C array of keys is a range, not text
    EXPECT_EQ(*co_await c.exists(both), 1);
    EXPECT_EQ(*co_await c.type("m2"), "string");
    EXPECT_TRUE(*co_await c.expire("m2", 100s));
    EXPECT_EQ(*co_await c.decr("counter"), -1);
    EXPECT_EQ(*co_await c.unlink("m2", "counter"), 2);
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

TEST_P(Helpers, Collections) {
  bool finished = false;
  auto body = [&]() -> detached {
    EXPECT_EQ(*co_await c.hincrby("h", "n", 5), 5);
    EXPECT_EQ(*co_await c.hset("h", "f", "v"), 1);
    EXPECT_EQ(*co_await c.hlen("h"), 2);
    EXPECT_EQ(*co_await c.hget("h", "f"), std::optional<std::string>("v"));
    EXPECT_EQ(*co_await c.hdel("h", "f"), 1);
    EXPECT_EQ(*co_await c.rpush("l", "a"), 1);
    EXPECT_EQ(*co_await c.lpush("l", "b"), 2);
    {
      const std::vector<std::string> expected{"b", "a"};  // GCC 12: no initializer_list beside co_await
      EXPECT_EQ(*co_await c.lrange("l", 0, -1), expected);
    }
    EXPECT_EQ(*co_await c.llen("l"), 2);
    EXPECT_EQ(*co_await c.lpop("l"), std::optional<std::string>("b"));
    EXPECT_EQ(*co_await c.rpop("l"), std::optional<std::string>("a"));
    EXPECT_EQ(*co_await c.rpop("l"), std::nullopt);
    EXPECT_EQ(*co_await c.sadd("s", "x"), 1);
    EXPECT_TRUE(*co_await c.sismember("s", "x"));
    {
      const std::vector<std::string> expected{"x"};  // GCC 12: no initializer_list beside co_await
      EXPECT_EQ(*co_await c.smembers("s"), expected);
    }
    EXPECT_EQ(*co_await c.srem("s", "x"), 1);
    EXPECT_EQ(*co_await c.scard("s"), 0);
    for (int i = 0; i < 5; ++i) (void)co_await c.zadd("z", i * 1.5, "m" + std::to_string(i));
    {
      const std::vector<std::string> expected{"m0", "m1"};  // GCC 12: no initializer_list beside co_await
      EXPECT_EQ(*co_await c.zrange("z", "0", "1"), expected);
    }
    {
      const std::vector<std::string> expected{"m3", "m4"};  // GCC 12: no initializer_list beside co_await
      const zrange_options by_score{.by_score = true, .limit = std::pair<std::int64_t, std::int64_t>(1, 2)};
      EXPECT_EQ(*co_await c.zrange("z", "(1.5", "+inf", by_score), expected);
    }
    {
      const std::vector<std::string> expected{"m4"};  // GCC 12: no initializer_list beside co_await
      const zrange_options reverse{.reverse = true};
      EXPECT_EQ(*co_await c.zrange("z", "0", "0", reverse), expected);
    }
    const auto scored = co_await c.zrange_with_scores("z", "0", "1");
    EXPECT_TRUE(scored);
    if (scored) {
      const std::vector<std::pair<std::string, double>> expected = {{"m0", 0.0}, {"m1", 1.5}};
      EXPECT_EQ(*scored, expected);
    }
    EXPECT_EQ(*co_await c.zrank("z", "m2"), std::optional<std::int64_t>(2));
    EXPECT_EQ(*co_await c.zrevrank("z", "m2"), std::optional<std::int64_t>(2));
    EXPECT_EQ(*co_await c.zrank("z", "none"), std::nullopt);
    EXPECT_EQ(*co_await c.zincrby("z", 10, "m0"), 10.0);
    // Scores now: m1 1.5, m2 3, m3 4.5, m4 6, m0 10.
    EXPECT_EQ(*co_await c.zcount("z", "-inf", "5"), 3);
    EXPECT_EQ(*co_await c.zremrangebyscore("z", "-inf", "(3"), 1);
    EXPECT_EQ(*co_await c.zcard("z"), 4);
    EXPECT_EQ(*co_await c.publish("nobody", "hi"), 0);
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

TEST_P(Helpers, ServerIntrospection) {
  bool finished = false;
  auto body = [&]() -> detached {
    const auto info = co_await c.info();
    EXPECT_TRUE(info);
    if (info) {
      EXPECT_TRUE(info->get("server", "redis_version").has_value());
      EXPECT_EQ(info->find("tcp_port"), std::optional<std::string_view>("0"));
    }
    const auto t = co_await c.time();
    EXPECT_TRUE(t);
    if (t) {
      EXPECT_LT(std::chrono::abs(*t - std::chrono::system_clock::now()), 5s);
    }
    const auto slow = co_await c.slowlog_get(5);
    EXPECT_TRUE(slow);
    if (slow) {
      EXPECT_FALSE(slow->empty());  // every command is slow with --slowlog-log-slower-than 0
      if (!slow->empty()) {
        EXPECT_FALSE(slow->front().arguments.empty());
      }
    }
    const auto sha = co_await c.script_load("return ARGV[1]");
    EXPECT_TRUE(sha);
    const std::vector<std::string> no_keys, argv = {"echoed"};
    const auto r = co_await c.evalsha(*sha, no_keys, argv);
    EXPECT_EQ(r->text, "echoed");
    const std::vector<std::string> eval_keys = {"ek"};
    const auto e = co_await c.eval("return redis.call('INCR', KEYS[1])", eval_keys, no_keys);
    EXPECT_EQ(e->integer, 1);
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

TEST_P(Helpers, ScanIteratorsSeeEveryKey) {
  bool finished = false;
  auto body = [&]() -> detached {
    pipeline p;
    for (int i = 0; i < 1000; ++i) p.add("SET", "scan:" + std::to_string(i), "v");
    for (int i = 0; i < 300; ++i) p.add("HSET", "bigh", "f" + std::to_string(i), i);
    for (int i = 0; i < 300; ++i) p.add("SADD", "bigs", i);
    for (int i = 0; i < 300; ++i) p.add("ZADD", "bigz", i, "m" + std::to_string(i));
    (void)co_await c.execute(p);
    std::set<std::string> seen;
    auto s = c.scan({.match = "scan:*", .count = 100, .type = "string"});
    int pages = 0;
    while (!s.done()) {
      const auto page = co_await s.next();
      if (!page) break;
      ++pages;
      seen.insert(page->begin(), page->end());
    }
    EXPECT_EQ(seen.size(), 1000u);
    EXPECT_GT(pages, 1);
    std::size_t fields = 0, members = 0, scored = 0;
    for (auto h = c.hscan("bigh", {.count = 50}); !h.done();) fields += (co_await h.next())->size();
    for (auto ss = c.sscan("bigs"); !ss.done();) members += (co_await ss.next())->size();
    for (auto z = c.zscan("bigz"); !z.done();) scored += (co_await z.next())->size();
    EXPECT_GE(fields, 600u);  // field, value pairs; SCAN may repeat, never miss
    EXPECT_GE(members, 300u);
    EXPECT_GE(scored, 600u);
    // "" is a key like any other: HSCAN "" 0, not HSCAN 0 (the key was once dropped).
    (void)co_await c.hset("", "f", "v");
    std::vector<std::string> empty_key;
    for (auto h = c.hscan(""); !h.done();) {
      const auto page = co_await h.next();
      if (!page) {
        ADD_FAILURE() << page.error().what();
        break;
      }
      empty_key.insert(empty_key.end(), page->begin(), page->end());
    }
    EXPECT_EQ(empty_key, (std::vector<std::string>{"f", "v"}));
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

// A finished scanner stays finished: next() after cursor 0 is an empty page and sends nothing (it
// once sent SCAN 0 again, which starts the iteration over).
TEST_P(Helpers, AFinishedScanStaysFinished) {
  test::blocking_connection admin(server.socket_path());
  bool finished = false;
  auto body = [&]() -> detached {
    pipeline p;
    for (int i = 0; i < 5; ++i) p.add("SET", "k" + std::to_string(i), "v");
    p.add("SADD", "set", "a", "b");
    (void)co_await c.execute(p);
    auto s = c.scan();
    auto m = c.sscan("set");
    std::size_t keys = 0, members = 0;
    while (!s.done()) keys += (co_await s.next())->size();
    while (!m.done()) members += (co_await m.next())->size();
    EXPECT_EQ(keys, 6u);
    EXPECT_EQ(members, 2u);
    const std::string before = admin.call({"INFO", "commandstats"}).text;
    for (int again = 0; again < 3; ++again) {
      for (scanner* done : {&s, &m}) {
        const auto page = co_await done->next();
        EXPECT_TRUE(page.has_value() && page->empty()) << (page ? std::to_string(page->size()) + " elements" : page.error().what());
        EXPECT_TRUE(done->done());
      }
    }
    const std::string after = admin.call({"INFO", "commandstats"}).text;
    EXPECT_EQ(test::command_calls(after, "scan"), test::command_calls(before, "scan"));
    EXPECT_EQ(test::command_calls(after, "sscan"), test::command_calls(before, "sscan"));
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

// A server error that asking again would only repeat ends the scan: `while (!s.done())` over an
// HSCAN of a string key went round for ever, one WRONGTYPE after another.
TEST_P(Helpers, AScanTheServerRefusesEnds) {
  test::blocking_connection admin(server.socket_path());
  bool finished = false;
  auto body = [&]() -> detached {
    (void)co_await c.set("str", "v");
    auto h = c.hscan("str");
    int rounds = 0;
    std::optional<resp::error> last;
    while (!h.done() && rounds < 10) {
      ++rounds;
      const auto page = co_await h.next();
      if (!page) last = page.error();
    }
    EXPECT_EQ(rounds, 1);
    EXPECT_TRUE(h.done());
    EXPECT_TRUE(last.has_value());
    EXPECT_EQ(last.value_or(resp::error{}).code_word(), "WRONGTYPE");
    const std::string before = admin.call({"INFO", "commandstats"}).text;
    const auto again = co_await h.next();
    EXPECT_TRUE(again.has_value() && again->empty());
    EXPECT_EQ(test::command_calls(admin.call({"INFO", "commandstats"}).text, "hscan"), test::command_calls(before, "hscan"));
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

// TYPE belongs to SCAN alone: Redis answers HSCAN/SSCAN/ZSCAN ... TYPE with a bare "ERR syntax
// error". Such a scanner sends nothing; its first next() says why, and it is done.
TEST_P(Helpers, ATypeFilterOnACollectionScanIsRefusedUnsent) {
  test::blocking_connection admin(server.socket_path());
  bool finished = false;
  auto body = [&]() -> detached {
    (void)co_await c.hset("h", "f", "v");
    (void)co_await c.sadd("s", "m");
    scanner scanners[] = {c.hscan("h", {.type = "string"}), c.sscan("s", {.type = "set"}), c.zscan("z", {.type = "zset"})};
    for (scanner& s : scanners) {
      EXPECT_FALSE(s.done());
      const auto page = co_await s.next();
      EXPECT_FALSE(page.has_value());
      if (page) continue;
      EXPECT_EQ(page.error().code, errc::invalid_argument) << page.error().what();
      EXPECT_NE(page.error().message.find("TYPE"), std::string::npos) << page.error().message;
      EXPECT_TRUE(s.done());
      const auto after = co_await s.next();  // done: an empty page, as after any finished scan
      EXPECT_TRUE(after.has_value() && after->empty());
    }
    // SCAN keeps its TYPE filter.
    std::vector<std::string> hashes;
    for (auto s = c.scan({.type = "hash"}); !s.done();) {
      const auto page = co_await s.next();
      if (!page) {
        ADD_FAILURE() << page.error().what();
        break;
      }
      hashes.insert(hashes.end(), page->begin(), page->end());
    }
    EXPECT_EQ(hashes, std::vector<std::string>{"h"});
    const std::string stats = admin.call({"INFO", "commandstats"}).text;
    for (const char* command : {"hscan", "sscan", "zscan"}) EXPECT_EQ(test::command_calls(stats, command), 0) << command;
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

// The helpers with options (SET with set_options, SET ... GET, GETEX, ZRANGE with zrange_options)
// keep their words in the awaitable, and MSET borrows its pairs: in steady state a call allocates
// nothing (short values, which std::string holds inline), and a 1 MiB value is referenced, not
// copied (the writer's threshold is 16 KiB), so its SET and MSET allocate nothing either. Each
// call's words reach the server.
TEST_P(Helpers, HelpersWithOptionsAllocateNothing) {
  bool finished = false;
  std::uint64_t allocated = ~std::uint64_t{0};
  const std::string big(1 << 20, 'b');
  auto body = [&]() -> detached {
    const zrange_options limit{.by_score = true, .reverse = true, .limit = std::pair<std::int64_t, std::int64_t>(0, 5)};
    const std::pair<std::string_view, std::string_view> pairs[] = {{"m1", "x"}, {"m2", big}};
    int right = 0;
    for (int pass = 0; pass < 2; ++pass) {  // the first warms the client's buffers up
      const std::uint64_t before = test::allocations();
      right = 0;
      for (int i = 0; i < 100; ++i) {
        // An error reply (a malformed option word) counts as wrong: every reply is checked before use.
        const auto set = co_await c.set("o", "1", set_options{.expire = 60000ms});
        right += set && *set ? 1 : 0;
        const auto kept = co_await c.set("o", "2", set_options{.only_if_absent = true});
        right += kept && !*kept ? 1 : 0;  // exists: not set
        const auto old = co_await c.set_get("o", "3", set_options{.keep_ttl = true});
        right += old && *old == std::optional<std::string>("1") ? 1 : 0;
        const auto got = co_await c.getex("o", 30000ms);
        right += got && *got == std::optional<std::string>("3") ? 1 : 0;
        const auto members = co_await c.zrange("missing", "+inf", "-inf", limit);
        right += members && members->empty() ? 1 : 0;
        const auto big_set = co_await c.set("big", big, set_options{.expire = 60000ms});
        right += big_set && *big_set ? 1 : 0;
        const auto stored = co_await c.mset(pairs);  // borrowed, not copied
        right += stored ? 1 : 0;
      }
      if (pass == 1) allocated = test::allocations() - before;
    }
    EXPECT_EQ(right, 700);
    const auto ttl = co_await c.pttl("o");
    EXPECT_TRUE(ttl && *ttl > 20000 && *ttl <= 30000);  // GETEX's PX reached the server
    const auto stored = co_await c.command<std::int64_t>("STRLEN", "m2");
    EXPECT_TRUE(stored && *stored == static_cast<std::int64_t>(big.size()));  // MSET's referenced value did
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
  EXPECT_EQ(allocated, 0u);
}

INSTANTIATE_TEST_SUITE_P(Protocols, Helpers, ::testing::Values(3, 2),
                         [](const auto& p) { return p.param == 3 ? std::string("Resp3") : std::string("Resp2"); });

}  // namespace
}  // namespace redring::client
