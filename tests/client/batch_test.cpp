// SPDX-License-Identifier: MIT
// Pipelines, MULTI/EXEC transactions (with WATCH on a session of its own), blocking commands that
// do not stall other callers, and the blocking facade.
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/sync_client.hpp"

#include "tests/support/no_io_uring.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

namespace redring::client {
namespace {

using namespace std::chrono_literals;

using test::run_until;

class Batch : public ::testing::Test {
 protected:
  Batch() : c(loop, opts()) {}
  options opts() {
    options o;
    o.unix_path = server.socket_path();
    return o;
  }
  test::redis_server server;
  net::loop loop;
  client c;
};

TEST_F(Batch, PipelineRepliesInOrderWithErrorsInPlace) {
  pipeline p;
  p.add("SET", "a", "1").add("INCR", "a").add("HSET", "a", "f", "v").add("GET", "a");
  for (int i = 0; i < 1000; ++i) p.add("INCR", "n");
  EXPECT_EQ(p.size(), 1004u);
  std::optional<result<std::vector<resp::value>>> got;
  auto body = [&]() -> detached { got.emplace(co_await c.execute(p)); };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }));
  ASSERT_TRUE(*got) << got->error().what();
  const auto& v = **got;
  ASSERT_EQ(v.size(), 1004u);
  EXPECT_EQ(v[0].text, "OK");
  EXPECT_EQ(v[1].integer, 2);
  EXPECT_EQ(v[2].error_code(), "WRONGTYPE");
  EXPECT_EQ(v[3].text, "2");
  EXPECT_EQ(v[1003].integer, 1000);
  // An empty pipeline completes at once.
  pipeline empty;
  bool empty_done = false;
  auto body2 = [&]() -> detached {
    const auto r = co_await c.execute(empty);
    empty_done = r && r->empty();
  };
  body2();
  EXPECT_TRUE(empty_done);
}

TEST_F(Batch, TransactionRunsAtomicallyAndReportsAborts) {
  transaction t;
  t.add("SET", "x", "10").add("INCRBY", "x", 5).add("GET", "x");
  std::optional<result<std::vector<resp::value>>> got;
  auto body = [&]() -> detached { got.emplace(co_await c.execute(t)); };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }));
  ASSERT_TRUE(*got) << got->error().what();
  ASSERT_EQ((*got)->size(), 3u);
  EXPECT_EQ((*got)->at(1).integer, 15);
  EXPECT_EQ((*got)->at(2).text, "15");

  // A command the server refuses to queue aborts everything: EXECABORT.
  transaction bad;
  bad.add("SET", "y", "1").add("NOSUCHCOMMAND");
  got.reset();
  auto body2 = [&]() -> detached { got.emplace(co_await c.execute(bad)); };
  body2();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }));
  ASSERT_FALSE(*got);
  EXPECT_EQ(got->error().code_word(), "EXECABORT");

  // WATCH on a session of its own; another client changes the key: EXEC aborts.
  auto session = c.open_session();
  std::optional<result<std::vector<resp::value>>> watched;
  auto body3 = [&]() -> detached {
    (void)co_await session->command("WATCH", "x");
    (void)co_await c.set("x", "changed");  // through the shared connection
    transaction t2;
    t2.add("SET", "x", "mine");
    watched.emplace(co_await session->execute(t2));
  };
  body3();
  ASSERT_TRUE(run_until(loop, [&] { return watched.has_value(); }));
  ASSERT_FALSE(*watched);
  EXPECT_EQ(watched->error().code, errc::transaction_aborted);
}

// An empty transaction still sends MULTI and EXEC: that EXEC ends the session's WATCH and reports
// a watched key that changed. It once sent nothing and said "success": the WATCH stayed, and the
// next, unrelated transaction was aborted by it.
TEST_F(Batch, AnEmptyTransactionStillEndsAWatch) {
  auto session = c.open_session();
  std::optional<result<std::vector<resp::value>>> empty, next;
  auto body = [&]() -> detached {
    (void)co_await session->command("WATCH", "w");
    (void)co_await c.set("w", "changed");
    const transaction nothing;
    empty.emplace(co_await session->execute(nothing));
    (void)co_await c.set("w", "again");  // no WATCH any more: this changes nothing for the session
    transaction t;
    t.add("SET", "w", "mine");
    next.emplace(co_await session->execute(t));
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return next.has_value(); }));
  ASSERT_FALSE(*empty);
  EXPECT_EQ(empty->error().code, errc::transaction_aborted);
  ASSERT_TRUE(*next) << next->error().what();
  ASSERT_EQ((*next)->size(), 1u);
  EXPECT_EQ((**next)[0].text, "OK");
}

// A pipeline holding a blocking command goes to a connection of its own, as the command alone
// would: a PING sent meanwhile is answered while the BLPOP still waits. It once went to the shared
// connection, and the PING waited the BLPOP's second out.
TEST_F(Batch, APipelineHoldingABlockingCommandDoesNotStallOthers) {
  pipeline p;
  p.add("SET", "pipeline:set", "1").add("BLPOP", "pipeline:nothing", "1");
  EXPECT_TRUE(p.may_block());
  std::optional<result<std::vector<resp::value>>> batch;
  std::optional<result<std::string>> pong;
  auto blocker = [&]() -> detached { batch.emplace(co_await c.execute(p)); };
  auto other = [&]() -> detached { pong.emplace(co_await c.ping()); };
  blocker();
  other();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 5s));
  EXPECT_TRUE(*pong);
  EXPECT_FALSE(batch.has_value()) << "the PING waited behind the pipeline's BLPOP";
  ASSERT_TRUE(run_until(loop, [&] { return batch.has_value(); }, 5s));
  ASSERT_TRUE(*batch);
  EXPECT_EQ((*batch)->size(), 2u);
  pipeline plain;
  plain.add("GET", "pipeline:set");
  EXPECT_FALSE(plain.may_block());
}

TEST_F(Batch, BlockingCommandsDoNotStallOtherCallers) {
  std::optional<result<resp::value>> popped;
  bool brpop_done = false, pong = false, blocked_at_pong = false;
  auto blocker = [&]() -> detached { popped.emplace(co_await c.command("BLPOP", "queue", "5")); };
  auto other = [&]() -> detached {
    (void)co_await c.ping();
    pong = true;
    blocked_at_pong = !brpop_done && !popped.has_value();  // PING did not wait behind BLPOP or BRPOP
    (void)co_await c.rpush("queue", "job");
  };
  blocker();
  auto blocker2 = [&]() -> detached {
    (void)co_await c.command("BRPOP", "other-queue", "1");
    brpop_done = true;
  };
  blocker2();
  other();
  ASSERT_TRUE(run_until(loop, [&] { return popped.has_value(); }, 10s));
  ASSERT_TRUE(pong);
  EXPECT_TRUE(blocked_at_pong) << "PING's reply came after a blocking command's";
  ASSERT_TRUE(*popped);
  ASSERT_EQ((*popped)->elements.size(), 2u);
  EXPECT_EQ((*popped)->elements[1].text, "job");
  using detail::command_class;
  EXPECT_EQ(detail::classify("XREAD", "BLOCK", "0", "STREAMS", "s", "$"), command_class::blocking);
  EXPECT_EQ(detail::classify("XREAD", "COUNT", "1", "STREAMS", "s", "0"), command_class::shared);
  EXPECT_EQ(detail::classify("blpop", "k", 1), command_class::blocking);
  EXPECT_EQ(detail::classify("LPOP", "k"), command_class::shared);
  // Every blocking command, whatever its case: one classified shared would stall every caller.
  for (const char* name : {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZMPOP", "BZPOPMIN", "BZPOPMAX", "WAIT",
                           "WAITAOF", "wait", "bzpopmin", "Blmove"}) {
    EXPECT_EQ(detail::classify(std::string_view(name), "k"), command_class::blocking) << name;
    EXPECT_EQ(detail::classify_words({name, "k"}), command_class::blocking) << name;
  }
  EXPECT_EQ(detail::classify("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"), command_class::blocking);
  EXPECT_EQ(detail::classify("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), command_class::shared);
  for (const char* name : {"LMOVE", "RPOPLPUSH", "LMPOP", "ZMPOP", "ZPOPMIN", "WATCH", "BITCOUNT", "XADD", "XRANGE"}) {
    EXPECT_EQ(detail::classify(std::string_view(name), "k"), command_class::shared) << name;
  }
}

// Commands whose answers are not one reply each would put a shared connection out of step: under
// RESP3 SUBSCRIBE's confirmations are pushes, so a GET issued after it took the PING's reply (the
// connection stayed one reply behind for good); MONITOR answers every later command the server runs;
// CLIENT REPLY OFF answers nothing. Every API refuses them unsent, with unsupported_command, whatever
// their case, alone or in a batch; CLIENT REPLY ON is sent. The connection stays in step.
TEST_F(Batch, CommandsThatBreakTheReplyStreamAreRefusedUnsent) {
  using detail::command_class;
  for (const char* name : {"SUBSCRIBE", "psubscribe", "SSubscribe", "UNSUBSCRIBE", "PUNSUBSCRIBE", "sunsubscribe", "MONITOR"}) {
    EXPECT_EQ(detail::classify(std::string_view(name), "ch"), command_class::unsupported) << name;
  }
  EXPECT_EQ(detail::classify("CLIENT", "REPLY", "OFF"), command_class::unsupported);
  EXPECT_EQ(detail::classify("client", "reply", "skip"), command_class::unsupported);
  EXPECT_EQ(detail::classify("CLIENT", "REPLY", "ON"), command_class::shared);
  EXPECT_EQ(detail::classify("CLIENT", "SETNAME", "x"), command_class::shared);
  EXPECT_EQ(detail::classify_words({"CLIENT", "reply", "Off"}), command_class::unsupported);
  EXPECT_EQ(detail::classify_words({"MONITOR"}), command_class::unsupported);
  EXPECT_EQ(detail::classify_words({"BLPOP", "q", "0"}), command_class::blocking);
  EXPECT_EQ(detail::classify_words({"XREAD", "block", "0", "STREAMS", "s", "$"}), command_class::blocking);
  EXPECT_EQ(detail::classify_words({"GET", "k"}), command_class::shared);
  // A command given as a range is classified by its words (it went out on the shared connection).
  const std::vector<std::string> subscribe_words{"SUBSCRIBE", "news"}, xread{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"};
  const std::vector<std::string> reply_off{"REPLY", "OFF"}, get{"GET", "k"};
  EXPECT_EQ(detail::classify(subscribe_words), command_class::unsupported);
  EXPECT_EQ(detail::classify(xread), command_class::blocking);
  EXPECT_EQ(detail::classify("XREAD", std::vector<std::string>{"block", "0"}, "STREAMS", "s", "$"), command_class::blocking);
  EXPECT_EQ(detail::classify("CLIENT", reply_off), command_class::unsupported);
  EXPECT_EQ(detail::classify(get), command_class::shared);
  EXPECT_EQ(detail::classify(std::vector<std::string>{}), command_class::shared);
  EXPECT_EQ(detail::classify("XREAD", 5, "STREAMS"), command_class::shared);
  for (const char* name : {"SET", "SETRANGE", "SINTERSTORE", "PUBLISH", "PUBSUB", "SPUBLISH", "UNLINK", "MGET"}) {
    EXPECT_EQ(detail::classify(std::string_view(name), "k"), command_class::shared) << name;
  }

  options o = opts();
  o.command_timeout = 2s;  // without the refusal, the commands after SUBSCRIBE would wait for ever
  client cl(loop, o);
  test::blocking_connection admin(server.socket_path());
  bool finished = false;
  auto body = [&]() -> detached {
    const auto sub = co_await cl.command<resp::value>("SUBSCRIBE", "news");
    EXPECT_TRUE(!sub && sub.error().code == errc::unsupported_command);
    const auto psub = co_await cl.command<ignore_t>("psubscribe", "n*");
    EXPECT_TRUE(!psub && psub.error().code == errc::unsupported_command);
    std::vector<std::string> words{"ssubscribe", "x"};  // a command built at run time
    const auto owned = co_await owned_awaitable<resp::value>(cl, std::move(words));
    EXPECT_TRUE(!owned && owned.error().code == errc::unsupported_command);
    const std::vector<std::string> subscribe{"SUBSCRIBE", "news"};
    const auto ranged = co_await cl.command<resp::value>(subscribe);
    EXPECT_TRUE(!ranged && ranged.error().code == errc::unsupported_command);
    const auto monitor = co_await cl.command<resp::value>("MONITOR");
    EXPECT_TRUE(!monitor && monitor.error().code == errc::unsupported_command);
    const auto off = co_await cl.command<resp::value>("CLIENT", "REPLY", "OFF");
    EXPECT_TRUE(!off && off.error().code == errc::unsupported_command);
    pipeline p;
    p.add("SET", "k", "v").add("SSUBSCRIBE", "s").add("GET", "k");
    EXPECT_TRUE(p.has_unsupported());
    const auto batch = co_await cl.execute(p);
    EXPECT_TRUE(!batch && batch.error().code == errc::unsupported_command);
    transaction t;
    t.add("SET", "k", "v").add("UNSUBSCRIBE");
    const auto multi = co_await cl.execute(t);
    EXPECT_TRUE(!multi && multi.error().code == errc::unsupported_command);
    // In step: each reply is its own command's.
    EXPECT_EQ((co_await cl.command<std::string>("SET", "k", "v1")).value_or("?"), "OK");
    EXPECT_EQ((co_await cl.get("k")).value_or(std::nullopt).value_or("?"), "v1");
    EXPECT_EQ((co_await cl.command<std::string>("CLIENT", "REPLY", "ON")).value_or("?"), "OK");
    EXPECT_EQ((co_await cl.command<std::string>("PING")).value_or("?"), "PONG");
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }, 10s));
  std::optional<std::string> callback_error;
  cl.command_callback<resp::value>([&](result<resp::value> r) { callback_error = r ? "sent" : r.error().what(); }, "SUBSCRIBE", "x");
  ASSERT_TRUE(run_until(loop, [&] { return callback_error.has_value(); }));
  EXPECT_NE(callback_error->find("out of step"), std::string::npos) << *callback_error;
  const std::string stats = admin.call({"INFO", "commandstats"}).text;
  for (const char* command : {"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "monitor", "multi"}) {
    EXPECT_EQ(stats.find("cmdstat_" + std::string(command) + ":"), std::string::npos) << command;
  }
  EXPECT_NE(stats.find("cmdstat_client|reply:calls=1,"), std::string::npos) << stats;  // the ON alone
}

// A blocking command that timed out on the client is still blocked on the server: its connection
// is not handed to the next blocking command (it once was, its timed-out slot not counting as
// queued, and that command waited behind the first one on the server).
TEST_F(Batch, TimedOutBlockingCommandsConnectionIsNotReused) {
  std::optional<result<resp::value>> first, second;
  auto blocker1 = [&]() -> detached { first.emplace(co_await c.command("BLPOP", "never", "0").with_timeout(100ms)); };
  blocker1();
  ASSERT_TRUE(run_until(loop, [&] { return first.has_value(); }, 5s));
  ASSERT_FALSE(*first);
  EXPECT_EQ(first->error().code, errc::timeout);
  auto blocker2 = [&]() -> detached { second.emplace(co_await c.command("BLPOP", "jobs", "0").with_timeout(2000ms)); };
  bool pushed = false;
  auto pusher = [&]() -> detached {
    (void)co_await c.rpush("jobs", "job");
    pushed = true;
  };
  blocker2();
  pusher();
  ASSERT_TRUE(run_until(loop, [&] { return second.has_value(); }, 5s));
  EXPECT_TRUE(pushed);
  ASSERT_TRUE(*second) << second->error().what();  // observed: timeout (stuck behind BLPOP never 0)
  ASSERT_EQ((*second)->elements.size(), 2u);
  EXPECT_EQ((*second)->elements[1].text, "job");
}

// Each blocking command that times out leaves its connection blocked on the server: the next one
// cannot use it, and it is closed (reaped) instead of kept for the client's life. 30 timed-out BLPOPs
// left 31 connections; now the server sees one blocking connection at most, and the pool's.
TEST_F(Batch, TimedOutBlockingCommandsDoNotPileUpConnections) {
  test::blocking_connection admin(server.socket_path());
  int timeouts = 0;
  bool finished = false;
  auto body = [&]() -> detached {
    (void)co_await c.ping();  // the pooled connection
    for (int i = 0; i < 30; ++i) {
      const auto r = co_await c.command("BLPOP", "never", "0").with_timeout(20ms);
      if (!r && r.error().code == errc::timeout) ++timeouts;
    }
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }, 20s));
  EXPECT_EQ(timeouts, 30);
  // The reaped connections' closes reach the server within a few turns.
  std::size_t clients = 0;
  for (int i = 0; i < 100; ++i) {
    loop.run_once(10ms);
    const std::string list = admin.call({"CLIENT", "LIST"}).text;
    clients = static_cast<std::size_t>(std::count(list.begin(), list.end(), '\n'));
    if (clients <= 3) break;
  }
  EXPECT_LE(clients, 3u);  // admin, the pooled connection, the last blocking one
}

// A blocking command sent through command_callback gets a connection of its own too (it once went
// on the shared connection and stalled every other caller until it returned).
TEST_F(Batch, BlockingCommandThroughACallbackDoesNotStallOtherCallers) {
  std::optional<result<resp::value>> popped;
  c.command_callback([&](result<resp::value> r) { popped.emplace(std::move(r)); }, "BLPOP", "cbqueue", "1");
  bool pong = false, blocked_at_pong = false;
  auto other = [&]() -> detached {
    (void)co_await c.ping();
    pong = true;
    blocked_at_pong = !popped.has_value();  // the BLPOP waits its second out
  };
  other();
  ASSERT_TRUE(run_until(loop, [&] { return popped.has_value() && pong; }, 5s));
  EXPECT_TRUE(blocked_at_pong) << "PING waited behind a BLPOP sent with command_callback";
}

// After close(), a blocking command fails with shutting_down like every other command (it once
// opened a new connection of its own and ran; from a completion during ~client, that path would
// have used the already destroyed `blocking_` vector).
TEST_F(Batch, BlockingCommandAfterCloseFailsLikeTheOthers) {
  bool warm = false;
  auto start = [&]() -> detached {
    (void)co_await c.ping();
    warm = true;
  };
  start();
  ASSERT_TRUE(run_until(loop, [&] { return warm; }, 5s));
  c.close();
  std::optional<result<std::string>> pong;
  std::optional<result<resp::value>> popped;
  auto ping = [&]() -> detached { pong.emplace(co_await c.ping()); };
  auto pop = [&]() -> detached { popped.emplace(co_await c.command("BLPOP", "q", "0.2")); };
  ping();
  pop();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value() && popped.has_value(); }, 5s));
  ASSERT_FALSE(*pong);
  EXPECT_EQ(pong->error().code, errc::shutting_down);
  ASSERT_FALSE(*popped) << "BLPOP ran on a new connection after close()";
  EXPECT_EQ(popped->error().code, errc::shutting_down);
}

// WATCH lives on one connection. A session does not reconnect: once its connection drops, the
// transaction fails with connection_lost instead of running on a new connection without the WATCH
// and overwriting the change the WATCH was to detect (a lost update; it once did).
TEST_F(Batch, SessionDropFailsTheTransactionInsteadOfLosingTheWatch) {
  auto session = c.open_session();
  bool watched = false;
  auto watch = [&]() -> detached {
    (void)co_await session->command("WATCH", "x");
    watched = true;
  };
  watch();
  ASSERT_TRUE(run_until(loop, [&] { return watched; }, 5s));
  {
    test::blocking_connection admin(server.socket_path());
    (void)admin.call({"SET", "x", "changed"});
    (void)admin.call({"CLIENT", "KILL", "TYPE", "normal"});  // a network blip (SKIPME yes: not admin)
  }
  ASSERT_TRUE(run_until(loop, [&] { return session->conn().state() == connection_state::closed; }, 5s));
  transaction t;
  t.add("SET", "x", "mine");
  std::optional<result<std::vector<resp::value>>> got;
  auto exec = [&]() -> detached { got.emplace(co_await session->execute(t)); };
  exec();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 5s));
  ASSERT_FALSE(*got) << "EXEC ran without the WATCH that the dropped connection had";
  EXPECT_EQ(got->error().code, errc::connection_lost);
  EXPECT_EQ(session->conn().connects(), 1u);
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(admin.call({"GET", "x"}).text, "changed");
  // The client the session came from reconnects as before.
  std::optional<result<std::string>> pong;
  auto ping = [&]() -> detached { pong.emplace(co_await c.ping()); };
  ping();
  ASSERT_TRUE(run_until(loop, [&] { return pong.has_value(); }, 5s));
  EXPECT_TRUE(*pong);
}

// A session is one connection even when its client has a pool: WATCH went out on one and
// MULTI/EXEC round-robin on the other, so a watched key's change went unseen and EXEC ran.
TEST_F(Batch, ASessionOfAPooledClientKeepsWatchAndExecOnOneConnection) {
  options o = opts();
  o.pool_size = 2;
  client pooled(loop, o);
  auto session = pooled.open_session();
  EXPECT_EQ(session->pool().size(), 1u);
  bool watched = false;
  auto watch = [&]() -> detached {
    (void)co_await session->command("WATCH", "bal");
    watched = true;
  };
  watch();
  ASSERT_TRUE(run_until(loop, [&] { return watched; }, 5s));
  test::blocking_connection admin(server.socket_path());
  (void)admin.call({"SET", "bal", "changed-by-other"});
  transaction t;
  t.add("SET", "bal", "from-tx");
  std::optional<result<std::vector<resp::value>>> got;
  auto exec = [&]() -> detached { got.emplace(co_await session->execute(t)); };
  exec();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }, 5s));
  ASSERT_FALSE(*got) << "EXEC ran although the WATCHed key changed";
  EXPECT_EQ(got->error().code, errc::transaction_aborted);
  EXPECT_EQ(admin.call({"GET", "bal"}).text, "changed-by-other");
}

// MULTI alone on the shared connection queued the other callers' commands into its transaction
// (a GET answered QUEUED); a pipeline may hold MULTI ... EXEC, which leaves together.
TEST_F(Batch, AMultiAloneOrLeftOpenIsRefusedUnsent) {
  using detail::command_class;
  EXPECT_EQ(detail::classify("MULTI"), command_class::multi);
  EXPECT_EQ(detail::classify("multi"), command_class::multi);
  EXPECT_EQ(detail::classify_words({"Multi"}), command_class::multi);
  EXPECT_EQ(detail::classify("MULTIX"), command_class::shared);
  EXPECT_EQ(detail::classify("MGET", "k"), command_class::shared);
  pipeline open, closed, discarded, words;
  open.add("MULTI").add("INCR", "n");
  closed.add("MULTI").add("INCR", "n").add("EXEC");
  discarded.add("MULTI").add("INCR", "n").add("discard");
  words.add(std::vector<std::string>{"MULTI"}).add(std::vector<std::string>{"EXEC"});
  EXPECT_TRUE(open.has_unsupported());
  EXPECT_FALSE(closed.has_unsupported());
  EXPECT_FALSE(discarded.has_unsupported());
  EXPECT_FALSE(words.has_unsupported());
  transaction nested;
  nested.add("MULTI").add("INCR", "n");
  EXPECT_TRUE(nested.has_unsupported());
  open.clear();
  EXPECT_FALSE(open.has_unsupported());
  open.add("MULTI").add("INCR", "n");

  std::optional<result<resp::value>> alone;
  std::optional<result<std::vector<resp::value>>> open_run, nested_run, closed_run;
  std::optional<result<std::optional<std::string>>> get_after;
  auto body = [&]() -> detached {
    alone.emplace(co_await c.command("MULTI"));
    open_run.emplace(co_await c.execute(open));
    nested_run.emplace(co_await c.execute(nested));
    (void)co_await c.set("k", "v");
    get_after.emplace(co_await c.get("k"));  // answered QUEUED when MULTI had gone out
    closed_run.emplace(co_await c.execute(closed));
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return closed_run.has_value(); }, 5s));
  ASSERT_FALSE(*alone);
  EXPECT_EQ(alone->error().code, errc::unsupported_command);
  ASSERT_FALSE(*open_run);
  EXPECT_EQ(open_run->error().code, errc::unsupported_command);
  ASSERT_FALSE(*nested_run);
  EXPECT_EQ(nested_run->error().code, errc::unsupported_command);
  ASSERT_TRUE(*get_after);
  EXPECT_EQ(**get_after, std::optional<std::string>("v"));
  ASSERT_TRUE(*closed_run);
  ASSERT_EQ((*closed_run)->size(), 3u);
  EXPECT_EQ((**closed_run)[2].elements.size(), 1u);  // EXEC: the one INCR
  // Nothing refused reached the server: n was incremented once, by the closed pipeline.
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(admin.call({"GET", "n"}).text, "1");
}

TEST(SyncClient, ManyThreadsShareOneConnection) {
  test::redis_server server;
  options o;
  o.unix_path = server.socket_path();
  sync_client c(o);
  ASSERT_TRUE(c.set("k", "v"));
  EXPECT_EQ(*c.get("k"), std::optional<std::string>("v"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) EXPECT_TRUE(c.command<std::int64_t>("INCR", "shared"));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(*c.command<std::int64_t>("GET", "shared"), 2000);
  const auto err = c.command<std::int64_t>("HGET", "k", "f");
  EXPECT_EQ(err.error().code_word(), "WRONGTYPE");
}

// With default options (no command_timeout, reconnecting on), a call to a server that stopped
// answering returns a timeout after default_call_timeout: it once blocked its thread for as long
// as the server was stopped. A blocking command is not bounded by it.
TEST(SyncClient, AStoppedServerIsATimeoutNotAHang) {
  test::redis_server server;
  options o;
  o.unix_path = server.socket_path();
  sync_client c(o);
  ASSERT_TRUE(c.set("k", "v"));
  ASSERT_EQ(::kill(server.pid(), SIGSTOP), 0);
  const auto r = c.get("k");
  ::kill(server.pid(), SIGCONT);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::timeout);
  // After SIGCONT a blocking command works as before: BLPOP for 0.3 s past nothing is answered by
  // the server (null). (That no default deadline bounds it would need a block past the 5 s of
  // default_call_timeout: not checked here, to keep the test short.)
  const auto pop = c.command<std::optional<std::vector<std::string>>>("BLPOP", "nothing", "0.3");
  ASSERT_TRUE(pop) << pop.error().what();
  EXPECT_FALSE(pop->has_value());
}

// A blocking call from the loop's own thread (here: a coroutine resumed there) would wait for the
// loop it blocks: it fails at once. It once deadlocked.
TEST(SyncClient, ACallOnTheLoopThreadFailsInsteadOfDeadlocking) {
  test::redis_server server;
  options o;
  o.unix_path = server.socket_path();
  sync_client c(o);
  std::promise<std::error_code> outcome;
  auto body = [&]() -> detached {
    (void)co_await c.async().ping();  // resumes on the loop thread
    const auto r = c.get("k");
    outcome.set_value(r ? std::error_code() : r.error().code);
  };
  body();
  auto f = outcome.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << "deadlocked";
  EXPECT_EQ(f.get(), std::make_error_code(std::errc::resource_deadlock_would_occur));
  EXPECT_TRUE(c.get("k"));  // from another thread, as ever
}

TEST(SyncClient, UnreachableServerFailsWithAReason) {
  options o;
  o.unix_path = "/nonexistent/redring.sock";
  o.command_timeout = 200ms;
  sync_client c(o);
  const auto r = c.get("k");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, errc::timeout);
  EXPECT_NE(c.async().conn().last_error().find("cannot connect"), std::string::npos);
}

// Destroyed as soon as it is built: the destructor's stop() may come before the loop thread enters
// run(). run() used to clear that stop on entry, and the destructor's join waited forever (2 runs
// in 3 of 2000 iterations hung). A watchdog turns a hang into a failure with a message.
TEST(SyncClient, DestroyedAtOnceDoesNotHang) {
  std::atomic<int> done{0};
  constexpr int iterations = 300;
  std::thread watchdog([&] {
    int last = -1;
    for (;;) {
      for (int i = 0; i < 100 && done < iterations; ++i) std::this_thread::sleep_for(50ms);
      const int d = done;
      if (d == iterations) return;
      if (d == last) {
        std::fprintf(stderr, "sync_client's destructor hung at iteration %d\n", d);
        std::abort();
      }
      last = d;
    }
  });
  options o;
  o.unix_path = "/nonexistent/redring.sock";
  o.reconnect.initial_delay = 100s;
  for (int i = 0; i < iterations; ++i) {
    { sync_client c(o); }
    ++done;
  }
  watchdog.join();
  EXPECT_EQ(done, iterations);
}

// Destroyed from a callback of its own client, on its loop thread: the destructor joined its own
// thread (std::system_error from a noexcept destructor: std::terminate). The thread is left to end
// its turn and free the loop and the client.
TEST(SyncClient, DestroyedFromItsOwnCallback) {
  test::redis_server server;
  options o;
  o.unix_path = server.socket_path();
  auto* s = new sync_client(o);
  ASSERT_TRUE(s->command<std::string>("SET", "k", "v"));
  std::atomic<bool> called{false};
  std::atomic<int> value_ok{-1};
  s->async().command_callback<std::optional<std::string>>(
      [&, s](result<std::optional<std::string>> r) {
        value_ok = r && *r == std::optional<std::string>("v") ? 1 : 0;
        delete s;
        called = true;
      },
      "GET", "k");
  for (int i = 0; i < 500 && !called; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(called);
  EXPECT_EQ(value_ok, 1);
  // The server sees the client go once the detached thread has closed it.
  test::blocking_connection admin(server.socket_path());
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = admin.call({"CLIENT", "LIST"}).text.find("cmd=get") == std::string::npos;
    if (!gone) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone) << "the destroyed sync_client's connection stayed open";
}

// Where io_uring is forbidden (say, in a container), the constructor throws, with the loop thread
// joined: the loop's exception does not escape that thread, which would end the process through
// std::terminate.
TEST(SyncClient, ForbiddenIoUringThrowsFromTheConstructor) {
  const auto r = test::run_without_io_uring([] {
    options o;
    o.unix_path = "/nonexistent/redring.sock";
    try {
      sync_client c(o);
      std::printf("constructed");
      return 1;
    } catch (const std::system_error& e) {
      std::printf("%s", e.what());
      return e.code() == std::errc::operation_not_permitted ? 0 : 2;
    }
  });
  if (r.exit_code == test::no_filter) GTEST_SKIP() << "no seccomp filter can be installed here";
  ASSERT_EQ(r.signal, 0) << r.output;
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("io_uring is disabled"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace redring::client
