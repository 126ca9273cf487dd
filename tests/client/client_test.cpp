// SPDX-License-Identifier: MIT
// The client against a real redis-server: commands, auto-pipelining at scale, large values, errors,
// a server killed and restarted under load, and a stopped server with timeouts.
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/url.hpp"

#include "tests/support/run_until.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>

namespace redring::client {
namespace {

using namespace std::chrono_literals;

// Runs the loop until `done()` or `limit` passes; false on time-out.
using test::run_until;

options unix_options(const test::redis_server& s) {
  options o;
  o.unix_path = s.socket_path();
  return o;
}

TEST(Client, CommandsThroughCoroutines) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));
  bool finished = false;
  auto body1 = [&]() -> detached {
    EXPECT_TRUE(co_await c.set("k", "v"));
    auto v = co_await c.get("k");
    EXPECT_EQ(*v, std::optional<std::string>("v"));
    EXPECT_EQ(*co_await c.get("missing"), std::nullopt);
    EXPECT_EQ(*co_await c.incr("n"), 1);
    EXPECT_EQ(*co_await c.incrby("n", 41), 42);
    EXPECT_EQ(*co_await c.del("k", "n", "missing"), 2);
    EXPECT_EQ(*co_await c.hset("h", "f", "x"), 1);
    const auto all = co_await c.hgetall("h");
    EXPECT_EQ(all->size(), 1u);
    EXPECT_EQ(all->at(0).second, "x");
    const std::vector<std::string> keys = {"h", "nope"};
    const auto wrong = co_await c.mget(keys);
    EXPECT_EQ(wrong->size(), 2u);
    const auto err = co_await c.get("h");  // WRONGTYPE
    EXPECT_FALSE(err);
    EXPECT_EQ(err.error().code_word(), "WRONGTYPE");
    EXPECT_EQ(*co_await c.zadd("z", 1.5, "a"), 1);
    EXPECT_EQ(*co_await c.zscore("z", "a"), 1.5);
    EXPECT_EQ(*co_await c.ping(), "PONG");
    const auto any = co_await c.command("HELLO", 3);
    EXPECT_EQ(any->data_type, resp::type::map);
    finished = true;
  };
  body1();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
  EXPECT_EQ(c.conn().protocol(), 3);
}

TEST(Client, HundredThousandPipelinedCommands) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));
  constexpr int n = 100000;
  int done = 0;
  std::int64_t last = 0;
  bool ordered = true;
  // The closure must outlive its coroutines: they reach the captures through it.
  auto body2 = [&]() -> detached {
    const auto r = co_await c.incr("counter");
    if (!r) ADD_FAILURE() << r.error().what();
    if (*r != last + 1) ordered = false;
    last = *r;
    ++done;
  };
  for (int i = 0; i < n; ++i) body2();
  ASSERT_TRUE(run_until(loop, [&] { return done == n; }, 60s)) << done;
  EXPECT_TRUE(ordered);
  EXPECT_EQ(last, n);
}

TEST(Client, TenThousandConcurrentCoroutinesEachLooping) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));
  constexpr int workers = 10000, rounds = 5;
  int finished = 0, mismatches = 0;
  auto body3 = [&](int w) -> detached {  // w is a parameter: copied into each coroutine frame
    const std::string key = "w:" + std::to_string(w);
    for (int r = 0; r < rounds; ++r) {
      const std::string value = std::to_string(w * 100 + r);
      (void)co_await c.set(key, value);
      const auto got = co_await c.get(key);
      if (!got || *got != value) ++mismatches;
    }
    ++finished;
  };
  for (int w = 0; w < workers; ++w) body3(w);
  ASSERT_TRUE(run_until(loop, [&] { return finished == workers; }, 60s)) << finished;
  EXPECT_EQ(mismatches, 0);
}

TEST(Client, SixtyFourMebibyteValueRoundTrip) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));
  std::string big(64u << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 24);
  bool finished = false;
  auto body4 = [&]() -> detached {
    EXPECT_TRUE(co_await c.set("big", big));
    const auto got = co_await c.get("big");
    EXPECT_TRUE(got && *got && **got == big);
    finished = true;
  };
  body4();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }, 60s));
}

TEST(Client, CallbacksFromAnotherThread) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));
  std::atomic<int> replies{0};
  std::thread other([&] {
    for (int i = 0; i < 1000; ++i) {
      c.command_callback<std::int64_t>([&](result<std::int64_t> r) { replies += r ? 1 : 0; }, "INCR", "x");
    }
  });
  ASSERT_TRUE(run_until(loop, [&] { return replies.load() == 1000; }));
  other.join();
  int final_value = 0;
  c.command_callback<int>([&](result<int> r) { final_value = *r; }, "GET", std::string("x"));
  ASSERT_TRUE(run_until(loop, [&] { return final_value != 0; }));
  EXPECT_EQ(final_value, 1000);
}

// A command sent from another thread is posted to the loop; if the client is closed and destroyed
// on the loop thread before the loop runs that task, the task used to call into the freed client
// (and the callback never ran). It completes with shutting_down instead. The callback is passed by
// name (an lvalue), which did not compile.
TEST(Client, ACommandPostedToAClientDestroyedBeforeTheLoopRunsItCompletesWithShuttingDown) {
  test::redis_server server;
  net::loop loop;
  auto c = std::make_unique<client>(loop, unix_options(server));
  loop.poll();  // this thread is the loop's
  std::atomic<int> calls{0};
  std::error_code why;
  auto on_reply = [&](result<std::string> r) {
    ++calls;
    if (!r) why = r.error().code;
  };
  std::thread other([&] {
    c->command_callback<std::string>(on_reply, "PING");
    c->start();  // posted as well
  });
  other.join();
  c->close();
  c.reset();
  for (int i = 0; i < 3; ++i) loop.poll();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(why, errc::shutting_down);
}

// A real server's RESP3 pushes: CLIENT TRACKING's invalidations reach the push handler, node by
// node, while hundreds of commands are in flight on the same connection, and every command still
// gets its own reply (a push taken for a reply would shift all that follow).
TEST(Client, TrackingInvalidationsReachThePushHandlerWithoutShiftingReplies) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));  // RESP3
  struct seen {
    int pushes = 0;
    std::vector<std::string> keys;  // invalidated keys: blob strings inside a push's array
    bool in_push = false;
  } pushed;
  c.set_push_handler({[](void* ctx, const resp::node& n) {
                        auto* s = static_cast<seen*>(ctx);
                        if (n.depth == 0) s->in_push = n.data_type == resp::type::push;
                        if (s->in_push && n.depth == 0) ++s->pushes;
                        if (s->in_push && n.depth == 2 && n.data_type == resp::type::blob_string) s->keys.emplace_back(n.value);
                      },
                      &pushed});
  test::blocking_connection admin(server.socket_path());
  int wrong = 0, finished = 0;
  bool tracking = false;
  auto setup = [&]() -> detached {
    const auto on = co_await c.command<std::string>("CLIENT", "TRACKING", "ON");
    EXPECT_TRUE(on && *on == "OK");
    for (int i = 0; i < 8; ++i) (void)co_await c.set("tracked:" + std::to_string(i), "old");
    for (int i = 0; i < 8; ++i) (void)co_await c.get("tracked:" + std::to_string(i));  // now tracked
    tracking = true;
  };
  setup();
  ASSERT_TRUE(run_until(loop, [&] { return tracking; }, 5s));
  // 200 callers, each reading its own key 20 times, while the admin changes the tracked keys. (The
  // closure outlives its coroutines; `caller` is a parameter, copied into each coroutine's frame.)
  auto body = [&](int caller) -> detached {
    const std::string key = "mine:" + std::to_string(caller), value = "v" + std::to_string(caller);
    (void)co_await c.set(key, value);
    for (int i = 0; i < 20; ++i) {
      const auto got = co_await c.get(key);
      if (!got || *got != std::optional<std::string>(value)) ++wrong;
      if (caller == 0 && i < 8) (void)admin.call({"SET", "tracked:" + std::to_string(i), "new"});
    }
    ++finished;
  };
  for (int caller = 0; caller < 200; ++caller) body(caller);
  ASSERT_TRUE(run_until(loop, [&] { return finished == 200 && pushed.pushes >= 8; }, 10s))
      << finished << " callers finished, " << pushed.pushes << " pushes";
  EXPECT_EQ(wrong, 0) << "replies went to the wrong commands";
  std::sort(pushed.keys.begin(), pushed.keys.end());
  pushed.keys.erase(std::unique(pushed.keys.begin(), pushed.keys.end()), pushed.keys.end());
  EXPECT_EQ(pushed.keys.size(), 8u);
  EXPECT_EQ(pushed.keys.front(), "tracked:0");
}

TEST(Client, AclUserWithRightAndWrongPassword) {
  test::redis_server server;
  {
    test::blocking_connection admin(server.socket_path());
    ASSERT_EQ(admin.call({"ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all"}).text, "OK");
  }
  net::loop loop;
  options good = unix_options(server);
  good.user = "app";
  good.password = "s3cret";
  good.client_name = "redring-test";
  client ok(loop, good);
  std::optional<std::string> who;
  auto body5 = [&]() -> detached {
    const auto r = co_await ok.command<std::string>("ACL", "WHOAMI");
    who = r ? *r : r.error().what();
  };
  body5();
  ASSERT_TRUE(run_until(loop, [&] { return who.has_value(); }));
  EXPECT_EQ(*who, "app");

  options bad = good;
  bad.password = "wrong";
  bad.reconnect.max_delay = 10000ms;
  client denied(loop, bad);
  std::optional<resp::error> failure;
  auto body6 = [&]() -> detached {
    const auto r = co_await denied.ping();
    if (!r) failure = r.error();
  };
  body6();
  ASSERT_TRUE(run_until(loop, [&] { return failure.has_value(); }));
  EXPECT_EQ(failure->code, errc::auth_failed);
  EXPECT_NE(denied.conn().last_error().find("WRONGPASS"), std::string::npos) << denied.conn().last_error();
  EXPECT_EQ(denied.conn().last_error().find("wrong"), std::string::npos);  // the password is never in messages
  // No retry storm: one connection attempt now, the next only after max_delay (200 ms of turns:
  // a reconnect at the initial delay would have connected again in them).
  test::run_for(loop, 200ms);
  EXPECT_EQ(denied.conn().connects(), 1u);
  // Later commands fail fast.
  std::optional<resp::error> again;
  auto body7 = [&]() -> detached {
    const auto r = co_await denied.ping();
    if (!r) again = r.error();
  };
  body7();
  ASSERT_TRUE(run_until(loop, [&] { return again.has_value(); }, 1s));
  EXPECT_EQ(again->code, errc::auth_failed);
}

// A handshake step the server refuses (SELECT of a database it lacks: redis-server has 16) is not
// waited out: like refused credentials, queued and later commands fail with the reason
// (handshake_failed), and the connection retries at the longest delay, not in a storm (it once
// retried at once, forever, with the commands waiting without end).
TEST(Client, RefusedHandshakeFailsQueuedAndLaterCommands) {
  test::redis_server server;
  net::loop loop;
  options o = unix_options(server);
  o.database = 99;
  o.reconnect.initial_delay = 5ms;
  o.reconnect.max_delay = 10000ms;
  client c(loop, o);
  std::optional<result<std::string>> got;
  auto body = [&]() -> detached { got.emplace(co_await c.ping()); };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 5s)) << "the command waits forever";
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code, errc::handshake_failed);
  EXPECT_NE(c.conn().last_error().find("SELECT failed"), std::string::npos) << c.conn().last_error();
  EXPECT_NE(c.conn().last_error().find("out of range"), std::string::npos) << c.conn().last_error();
  test::run_for(loop, 200ms);  // turns in which a reconnect at the initial delay (5 ms) would connect again
  EXPECT_EQ(c.conn().connects(), 1u);  // the next attempt only after max_delay
  std::optional<result<std::string>> later;
  auto again = [&]() -> detached { later.emplace(co_await c.ping()); };
  again();
  ASSERT_TRUE(run_until(loop, [&] { return later.has_value(); }, 1s));
  ASSERT_FALSE(*later);
  EXPECT_EQ(later->error().code, errc::handshake_failed);
  c.close();
}

// The same with no cap on the delay (max_delay = milliseconds::max()): the refused handshake's
// retry at the cap is "never", where the delay's conversions overflowed (a double past int64's
// range, then now + delay past the clock's) into a deadline already past: a reconnect storm.
// A command that fails during its own submission (a closed client: at once, on the same call) lets
// the awaiting coroutine go on without suspending. It was resumed from inside await_suspend, one
// stack frame set deeper per command: a loop of 200,000 such co_awaits overflowed the stack.
TEST(Client, CommandsThatFailAtOnceDoNotDeepenTheStack) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));
  c.close();
  constexpr int n = 200000;
  int failed = 0, batches_failed = 0;
  bool finished = false;
  auto body = [&]() -> detached {
    for (int i = 0; i < n; ++i) {
      const auto r = co_await c.set("k", "v");
      if (!r && r.error().code == errc::shutting_down) ++failed;
    }
    pipeline p;
    p.add("PING");
    for (int i = 0; i < n; ++i) {
      const auto r = co_await c.execute(p);
      if (!r && r.error().code == errc::shutting_down) ++batches_failed;
    }
    finished = true;
  };
  body();  // runs to its end inside this call: nothing suspends
  EXPECT_TRUE(finished);
  EXPECT_EQ(failed, n);
  EXPECT_EQ(batches_failed, n);
}

// close() completes the queued commands, and a completion may destroy the client (the owner of a
// session dropping it): close() then stops touching it. With two connections it went on to the
// second one of the freed client (heap-use-after-free under ASan).
TEST(Client, AClientDestroyedByACompletionDuringCloseIsLeftAlone) {
  test::redis_server server;
  net::loop loop;
  options o = unix_options(server);
  o.pool_size = 2;
  auto owner = std::make_unique<client>(loop, o);
  std::optional<std::error_code> got;
  owner->command_callback<ignore_t>(
      [&](result<ignore_t> r) {
        got = r ? std::error_code() : r.error().code;
        owner.reset();  // inside close(): destroys the client closing
      },
      "GET", "k");  // queued on the first connection, unsent
  owner->close();
  EXPECT_EQ(owner, nullptr);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, errc::shutting_down);
  loop.poll();  // the connections' deferred deletion runs
}

// A state-change callback (logging, tests) that closes the connection as it starts connecting
// stops the connect: it went on, and the closed connection came back to handshaking and ready.
TEST(Client, AStateCallbackThatClosesOnConnectingStopsTheConnect) {
  test::redis_server server;
  net::loop loop;
  client c(loop, unix_options(server));
  test::blocking_connection admin(server.socket_path());
  struct context {
    connection* conn;
    std::vector<connection_state> seen;
  } ctx{&c.conn(), {}};
  c.conn().on_state_change(
      [](void* p, connection_state s) {
        auto* x = static_cast<context*>(p);
        x->seen.push_back(s);
        if (s == connection_state::connecting) x->conn->close();
      },
      &ctx);
  c.start();
  for (int i = 0; i < 20; ++i) loop.run_once(5ms);
  EXPECT_EQ(c.conn().state(), connection_state::closed);
  EXPECT_EQ(ctx.seen, (std::vector<connection_state>{connection_state::connecting, connection_state::closed}));
  const std::string list = admin.call({"CLIENT", "LIST"}).text;
  EXPECT_EQ(std::count(list.begin(), list.end(), '\n'), 1) << list;  // the admin connection alone
}

TEST(Client, AnUncappedReconnectDelayIsNotAStorm) {
  test::redis_server server;
  net::loop loop;
  options o = unix_options(server);
  o.database = 99;
  o.reconnect.max_delay = std::chrono::milliseconds::max();
  for (const double jitter : {0.0, 0.5}) {
    o.reconnect.jitter = jitter;
    client c(loop, o);
    std::optional<result<std::string>> got;
    auto body = [&]() -> detached { got.emplace(co_await c.ping()); };
    body();
    ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 5s));
    ASSERT_FALSE(*got);
    EXPECT_EQ(got->error().code, errc::handshake_failed);
    const auto until = net::clock::now() + 200ms;
    run_until(loop, [&] { return net::clock::now() >= until; }, 1s);
    EXPECT_EQ(c.conn().connects(), 1u) << "jitter " << jitter;
    c.close();
  }
}

TEST(Client, Resp2WhenAsked) {
  test::redis_server server;
  net::loop loop;
  options o = unix_options(server);
  o.protocol = 2;
  o.database = 3;
  client c(loop, o);
  bool finished = false;
  auto body8 = [&]() -> detached {
    (void)co_await c.set("k", "v");
    const auto v = co_await c.command("GET", "missing");
    EXPECT_EQ(v->null_origin, resp::type::blob_string);  // RESP2's $-1
    const auto db = co_await c.command<std::string>("CLIENT", "INFO");
    EXPECT_NE(db->find(" db=3 "), std::string::npos) << *db;
    finished = true;
  };
  body8();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
  EXPECT_EQ(c.conn().protocol(), 2);
}

// With the server down, commands that time out in the offline queue were still sent on reconnect
// (their callers told `timeout`, the writes landed later, over newer ones), and they filled the
// queue's limit while nothing waited. Now they leave the queue: a third SET is accepted under a limit
// of 2, and none of the three runs when the server comes back.
TEST(Client, CommandsThatTimedOutOfflineNeverRun) {
  char sock_dir[] = "/tmp/redring-sock-XXXXXX";
  ASSERT_NE(::mkdtemp(sock_dir), nullptr);
  const std::string path = std::string(sock_dir) + "/redis.sock";
  net::loop loop;
  options o;
  o.unix_path = path;  // nothing listens yet
  o.offline_queue_limit = 2;
  o.command_timeout = 50ms;
  o.reconnect.initial_delay = 10ms;
  o.reconnect.max_delay = 20ms;
  client c(loop, o);
  std::vector<std::error_code> outcomes;
  bool finished = false;
  auto body = [&]() -> detached {
    for (const char* v : {"stale1", "stale2", "stale3"}) {
      const auto r = co_await c.set("k", v);
      outcomes.push_back(r ? std::error_code() : r.error().code);
    }
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }, 10s));
  EXPECT_EQ(outcomes, (std::vector<std::error_code>{errc::timeout, errc::timeout, errc::timeout}));
  test::redis_server server({}, path);
  std::optional<result<std::optional<std::string>>> got;
  auto check = [&]() -> detached { got.emplace(co_await c.get("k").with_timeout(5s)); };
  check();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 10s));
  ASSERT_TRUE(*got) << got->error().what();
  EXPECT_EQ(**got, std::nullopt);  // no SET ran
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(admin.call({"INFO", "commandstats"}).text.find("cmdstat_set:"), std::string::npos);
  ::rmdir(sock_dir);
}

TEST(Client, ServerKilledUnderLoadEveryCommandCompletesOnceAndClientRecovers) {
  char sock_dir[] = "/tmp/redring-sock-XXXXXX";
  ASSERT_NE(::mkdtemp(sock_dir), nullptr);
  const std::string path = std::string(sock_dir) + "/redis.sock";
  auto server = std::make_unique<test::redis_server>(std::vector<std::string>{}, path);
  net::loop loop;
  options o = unix_options(*server);
  o.reconnect.initial_delay = 20ms;
  o.reconnect.max_delay = 200ms;
  client c(loop, o);
  // Warm up: connected and ready.
  bool ready = false;
  auto body9 = [&]() -> detached {
    (void)co_await c.ping();
    ready = true;
  };
  body9();
  ASSERT_TRUE(run_until(loop, [&] { return ready; }));

  constexpr int n = 10000;
  std::vector<int> completions(n, 0);
  int ok = 0, lost = 0, other = 0;
  auto body10 = [&](int i) -> detached {
    const auto r = co_await c.incr("k");
    ++completions[i];
    if (r) ++ok;
    else if (r.error().code == errc::connection_lost) ++lost;
    else ++other;
  };
  for (int i = 0; i < n; ++i) body10(i);
  // Freeze the server so that the whole batch is in flight, then kill -9 it.
  ::kill(server->pid(), SIGSTOP);
  loop.run_once(0ms);
  loop.run_once(50ms);
  EXPECT_EQ(c.conn().mux().unsent(), 0u);
  ::kill(server->pid(), SIGKILL);
  ASSERT_TRUE(run_until(loop, [&] { return ok + lost + other == n; }, 30s)) << ok << " " << lost << " " << other;
  for (int i = 0; i < n; ++i) ASSERT_EQ(completions[i], 1) << i;
  EXPECT_EQ(lost, n);  // sent, never answered: each says so, once
  EXPECT_EQ(other, 0);
  // Restart a server on the same socket path: the client reconnects by itself.
  server.reset();
  test::redis_server restarted({}, path);
  std::optional<std::string> pong;
  auto body11 = [&]() -> detached {
    const auto r = co_await c.ping();  // queued while reconnecting, sent once the handshake is done
    pong = r ? *r : r.error().what();
  };
  body11();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 20s));
  EXPECT_EQ(*pong, "PONG");
  EXPECT_GE(c.conn().connects(), 2u);
  ::unlink(path.c_str());
  ::rmdir(sock_dir);
}

TEST(Client, StoppedServerTimeoutsFireAndLaterRepliesStillMatch) {
  test::redis_server server({"--enable-debug-command", "yes"});
  net::loop loop;
  options o = unix_options(server);
  o.command_timeout = 300ms;
  client c(loop, o);
  bool ready = false;
  auto body12 = [&]() -> detached {
    (void)co_await c.set("a", "1");
    (void)co_await c.set("b", "2");
    ready = true;
  };
  body12();
  ASSERT_TRUE(run_until(loop, [&] { return ready; }));

  ::kill(server.pid(), SIGSTOP);
  std::optional<resp::error> timed_out;
  const auto started = std::chrono::steady_clock::now();
  auto body13 = [&]() -> detached {
    const auto r = co_await c.get("a");
    if (!r) timed_out = r.error();
  };
  body13();
  ASSERT_TRUE(run_until(loop, [&] { return timed_out.has_value(); }, 5s));
  EXPECT_EQ(timed_out->code, errc::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
  ::kill(server.pid(), SIGCONT);
  // The late reply to GET a is discarded; GET b gets its own reply.
  std::optional<std::string> b;
  auto body14 = [&]() -> detached {
    const auto r = co_await c.get("b");
    b = r && *r ? **r : std::string("error");
  };
  body14();
  ASSERT_TRUE(run_until(loop, [&] { return b.has_value(); }, 5s));
  EXPECT_EQ(*b, "2");

  // DEBUG SLEEP holds the server: a per-command timeout fires, then order holds.
  std::optional<resp::error> slept;
  std::optional<std::string> after;
  auto body15 = [&]() -> detached {
    auto r = co_await c.command("DEBUG", "SLEEP", "0.5").with_timeout(100ms);
    if (!r) slept = r.error();
    const auto v = co_await c.get("a").with_timeout(5000ms);  // the server still sleeps a while
    after = v && *v ? **v : (v ? std::string("nil") : v.error().what());
  };
  body15();
  ASSERT_TRUE(run_until(loop, [&] { return after.has_value(); }, 5s));
  ASSERT_TRUE(slept.has_value());
  EXPECT_EQ(slept->code, errc::timeout);
  EXPECT_EQ(*after, "1");
}

// Timeouts of centuries (a URL's largest number of milliseconds, a per-command
// milliseconds::max()) mean "no deadline": before, now + timeout overflowed the clock's nanoseconds
// (undefined behaviour) and the deadline wrapped into the past, so a command waiting on the server
// timed out at once.
TEST(Client, TimeoutsPastTheClocksRangeNeverFire) {
  test::redis_server server({"--enable-debug-command", "yes"});
  net::loop loop;
  options o;
  ASSERT_FALSE(parse_url("unix://" + server.socket_path() + "?timeout=9223372036854775807&connect_timeout=9223372036854775807", o));
  o.health_check_interval = std::chrono::milliseconds::max();
  client c(loop, o);
  std::optional<std::string> slept, held;
  auto body16 = [&]() -> detached {
    const auto r = co_await c.command<std::string>("DEBUG", "SLEEP", "0.2");
    slept = r ? *r : r.error().what();
    const auto h =
        co_await c.command<std::string>("DEBUG", "SLEEP", "0.1").with_timeout(std::chrono::milliseconds::max());
    held = h ? *h : h.error().what();
  };
  body16();
  ASSERT_TRUE(run_until(loop, [&] { return held.has_value(); }, 5s));
  EXPECT_EQ(*slept, "OK");
  EXPECT_EQ(*held, "OK");
}

}  // namespace
}  // namespace redring::client

namespace redring::client {
namespace {

// Both receive paths against the real server: multishot into the loop's provided buffers (parsed
// in place) and plain recv into the connection's buffer.
// The loop's provided buffers, shared by its connections, run out (two buffers of 1 KiB, four
// connections receiving 200 KiB values at once): the kernel ends the multishot receive with ENOBUFS,
// which is backpressure (re-armed once buffers come back), never an error; every reply arrives whole.
TEST(Client, ProvidedBuffersRunningOutIsBackpressure) {
  test::redis_server server;
  net::loop loop(net::loop_options{.buffer_count = 2, .buffer_size = 1024});
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<client>(loop, unix_options(server)));
  std::string big(200 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  int done = 0, bad = 0;
  auto reader = [&](client& c) -> detached {
    for (int round = 0; round < 5; ++round) {
      const auto got = co_await c.get("big");
      if (!got || !*got || **got != big) ++bad;
    }
    ++done;
  };
  bool stored = false;
  auto store = [&]() -> detached {
    stored = static_cast<bool>(co_await clients[0]->set("big", big));
  };
  store();
  ASSERT_TRUE(run_until(loop, [&] { return stored; }, 10s));
  for (auto& c : clients) reader(*c);
  ASSERT_TRUE(run_until(loop, [&] { return done == 4; }, 30s)) << done << " of 4 readers finished";
  EXPECT_EQ(bad, 0);
  std::uint64_t shortages = 0;
  for (auto& c : clients) {
    EXPECT_EQ(c->conn().connects(), 1u) << "a connection dropped: " << c->conn().last_error();
    shortages += c->conn().buffer_shortages();
  }
  if (loop.features().recv_multishot && loop.features().buffer_rings) {
    EXPECT_TRUE(clients[0]->conn().uses_buffer_ring());
    EXPECT_GT(shortages, 0u) << "the buffers never ran out: the test did not test backpressure";
  }
}

class ReceivePath : public ::testing::TestWithParam<bool> {};

TEST_P(ReceivePath, PipelinesAndLargeValues) {
  test::redis_server server;
  net::loop loop;
  options o = unix_options(server);
  o.use_buffer_ring = GetParam();
  client c(loop, o);
  std::string big(3u << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
  constexpr int n = 20000;
  int done = 0, bad = 0;
  auto incr = [&]() -> detached {
    const auto r = co_await c.incr("n");
    bad += r ? 0 : 1;
    ++done;
  };
  bool big_ok = false;
  auto large = [&]() -> detached {
    (void)co_await c.set("big", big);
    const auto got = co_await c.get("big");
    big_ok = got && *got && **got == big;
  };
  large();
  for (int i = 0; i < n; ++i) incr();
  ASSERT_TRUE(run_until(loop, [&] { return done == n && big_ok; }, 30s));
  EXPECT_EQ(bad, 0);
  if (GetParam() && loop.features().recv_multishot && loop.features().buffer_rings) {
    EXPECT_TRUE(c.conn().uses_buffer_ring());
    // Zero copy: what was copied is the tails of replies that spanned two buffers, and the big value
    // once (it spans many).
    EXPECT_LT(c.conn().mux().bytes_copied(), big.size() + 64 * 1024);
  } else {
    EXPECT_FALSE(c.conn().uses_buffer_ring());
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, ReceivePath, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? std::string("Multishot") : std::string("PlainRecv"); });

}  // namespace
}  // namespace redring::client
