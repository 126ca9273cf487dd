// SPDX-License-Identifier: MIT
// Pub/sub: client::subscriber against a real redis-server (messages, patterns, unsubscribing, a
// restart, RESP2 refused) and a fake one for malformed pushes.
#include "client/subscriber.hpp"

#include "client/hash_slot.hpp"

#include "tests/client/pubsub_recorder.hpp"
#include "tests/patterns/commandstats.hpp"
#include "tests/support/fake_server.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>
#include <memory>
#include <string>
#include <vector>

namespace redring::client {
namespace {

using namespace std::chrono_literals;
using test::run_until;

using test_pubsub::recorded;
using test_pubsub::recorder;

options unix_options(const std::string& path) {
  options o;
  o.unix_path = path;
  return o;
}

std::int64_t publish(test::blocking_connection& admin, std::string_view channel, std::string_view message) {
  return admin.call({"PUBLISH", channel, message}).integer;
}

TEST(Subscriber, ReceivesWhatIsPublishedToItsChannelsAndPatterns) {
  test::redis_server server;
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"a", "b"});  // before start: sent once connected
  sub.psubscribe({"news.*"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 3; }, 5s)) << sub.last_error();
  const std::vector<recorded> confirmations{{pubsub_kind::subscribe, "a", "", "", 1},
                                            {pubsub_kind::subscribe, "b", "", "", 2},
                                            {pubsub_kind::psubscribe, "news.*", "", "", 3}};
  EXPECT_EQ(rec.events, confirmations);
  rec.events.clear();

  test::blocking_connection admin(server.socket_path());
  const std::string binary("x\r\n\0$3\r\n>1\r\ny", 14);  // RESP-looking bytes and a NUL: payloads are opaque
  const std::string large(1 << 20, 'L');
  EXPECT_EQ(publish(admin, "a", "hello"), 1);
  EXPECT_EQ(publish(admin, "news.eu", binary), 1);
  EXPECT_EQ(publish(admin, "b", large), 1);
  EXPECT_EQ(publish(admin, "c", "nobody"), 0);
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 3; }, 5s));
  const std::vector<recorded> messages{{pubsub_kind::message, "a", "", "hello", 0},
                                       {pubsub_kind::pmessage, "news.eu", "news.*", binary, 0},
                                       {pubsub_kind::message, "b", "", large, 0}};
  EXPECT_EQ(rec.events, messages);
  // Subscribing again to what is subscribed sends nothing: no new confirmation.
  sub.subscribe({"a"});
  test::run_for(loop, 50ms);
  EXPECT_EQ(rec.events.size(), 3u);
}

TEST(Subscriber, UnsubscribingEndsDeliveryForThoseNamesOnly) {
  test::redis_server server;
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  recorder rec;
  sub.set_handler(rec);
  sub.start();
  sub.subscribe({"a", "b"});
  sub.psubscribe({"p.*", "q.*"});
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 4; }, 5s)) << sub.last_error();
  rec.events.clear();
  sub.unsubscribe({"a", "never-subscribed"});
  sub.punsubscribe({"p.*"});
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 2; }, 5s));
  const std::vector<recorded> ends{{pubsub_kind::unsubscribe, "a", "", "", 3}, {pubsub_kind::punsubscribe, "p.*", "", "", 2}};
  EXPECT_EQ(rec.events, ends);
  EXPECT_EQ(sub.channels(), (std::set<std::string, std::less<>>{"b"}));
  EXPECT_EQ(sub.patterns(), (std::set<std::string, std::less<>>{"q.*"}));
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(publish(admin, "a", "1"), 0);
  EXPECT_EQ(publish(admin, "p.x", "2"), 0);
  EXPECT_EQ(publish(admin, "b", "3"), 1);
  EXPECT_EQ(publish(admin, "q.x", "4"), 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 2; }, 5s));
  ASSERT_EQ(rec.events.size(), 4u);
  EXPECT_EQ(rec.events[2], (recorded{pubsub_kind::message, "b", "", "3", 0}));
  EXPECT_EQ(rec.events[3], (recorded{pubsub_kind::pmessage, "q.x", "q.*", "4", 0}));
}

// Sharded channels (SSUBSCRIBE, Redis 7) on a server outside a cluster, which serves them all,
// beside a classic channel: the server counts them apart, confirmed() adds the two counts.
TEST(Subscriber, ShardedChannelsBesideClassicOnes) {
  test::redis_server server;
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({"s1", "{tag}s2"});
  sub.subscribe({"c"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.events.size() == 3; }, 5s)) << sub.last_error();
  const std::vector<recorded> confirmations{{pubsub_kind::subscribe, "c", "", "", 1},
                                            {pubsub_kind::ssubscribe, "s1", "", "", 1},
                                            {pubsub_kind::ssubscribe, "{tag}s2", "", "", 2}};
  EXPECT_EQ(rec.events, confirmations);
  EXPECT_EQ(sub.confirmed(), 3);
  rec.events.clear();
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(admin.call({"SPUBLISH", "s1", "one"}).integer, 1);
  EXPECT_EQ(publish(admin, "s1", "classic, to nobody"), 0);  // a sharded channel is not a classic one
  EXPECT_EQ(admin.call({"SPUBLISH", "{tag}s2", "two"}).integer, 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 2; }, 5s));
  sub.sunsubscribe({"s1", "never"});
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 2; }, 5s));
  const std::vector<recorded> later{{pubsub_kind::smessage, "s1", "", "one", 0},
                                    {pubsub_kind::smessage, "{tag}s2", "", "two", 0},
                                    {pubsub_kind::sunsubscribe, "s1", "", "", 1}};
  EXPECT_EQ(rec.events, later);
  EXPECT_EQ(sub.shard_channels(), (std::set<std::string, std::less<>>{"{tag}s2"}));
  EXPECT_EQ(admin.call({"SPUBLISH", "s1", "gone"}).integer, 0);
}

// What a cluster node does that a lone server never does: it refuses a sharded channel of a slot it
// does not serve (MOVED), and ends one itself when its slot leaves it. Both leave the set; neither
// drops the connection.
TEST(Subscriber, AShardedChannelRefusedOrEndedByTheServerLeavesTheSet) {
  test::fake_server fake([&](const std::vector<std::string>& cmd, int) -> test::fake_reply {
    if (cmd.size() == 2 && cmd[0] == "SSUBSCRIBE" && cmd[1] == "a") return {">3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n"};
    if (cmd.size() == 2 && cmd[0] == "SSUBSCRIBE") {
      return {"-MOVED " + std::to_string(hash_slot("b")) + " 127.0.0.1:7002\r\n"
              ">3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:0\r\n"};  // slot of "a" gone: the server ends it
    }
    return test::handshake_reply(cmd);
  });
  net::loop loop;
  options o = unix_options(fake.socket_path());
  o.set_lib_info = false;
  subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({"a", "b"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.events.size() == 3; }, 5s)) << sub.last_error();
  const std::vector<recorded> expected{{pubsub_kind::ssubscribe, "a", "", "", 1},
                                       {pubsub_kind::refused, "b", "", "MOVED " + std::to_string(hash_slot("b")) + " 127.0.0.1:7002", 0},
                                       {pubsub_kind::slot_moved, "a", "", "", 0}};
  EXPECT_EQ(rec.events, expected);
  EXPECT_TRUE(sub.shard_channels().empty());
  EXPECT_EQ(sub.confirmed(), 0);
  EXPECT_EQ(sub.conn().connects(), 1u);
  EXPECT_EQ(sub.conn().state(), connection_state::ready);
}

TEST(Subscriber, ChangesBeforeTheFirstConnectionSendOnlyTheSets) {
  test::redis_server server;
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"a", "b"});
  sub.psubscribe({"p.*"});
  sub.unsubscribe({"b"});  // asked off before anything was sent: nothing to undo
  sub.punsubscribe({"p.*"});
  sub.psubscribe({"q.*"});
  sub.subscribe({"a", "a"});  // already asked for, and twice in one call: one subscription
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 2; }, 5s)) << sub.last_error();
  test::run_for(loop, 50ms);
  const std::vector<recorded> expected{{pubsub_kind::subscribe, "a", "", "", 1}, {pubsub_kind::psubscribe, "q.*", "", "", 2}};
  EXPECT_EQ(rec.events, expected);
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(publish(admin, "a", "1"), 1);
  EXPECT_EQ(publish(admin, "b", "2"), 0);
  EXPECT_EQ(publish(admin, "p.x", "3"), 0);
  EXPECT_EQ(publish(admin, "q.x", "4"), 1);
}

// A SUBSCRIBE encoded just before the connection drops is never sent there: the connection keeps it
// for the next one, where it goes first. A name unsubscribed meanwhile is unsubscribed again after
// the sets, so the server ends with exactly them.
TEST(Subscriber, ASubscriptionLeftUnsentByADropIsUndoneIfAskedOff) {
  std::mutex m;
  std::vector<std::string> second_connection;  // the (un)subscription commands it received, in order
  test::fake_server fake([&](const std::vector<std::string>& cmd, int connection) -> test::fake_reply {
    if (cmd.empty()) return {};
    if (cmd[0] == "SUBSCRIBE" || cmd[0] == "UNSUBSCRIBE") {
      if (connection == 0) {
        // The confirmation and a message, then bytes that are not RESP, all in one read: the
        // handler's SUBSCRIBE b is encoded, then the protocol error drops the connection unsent.
        return {">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n\x01" "bad\r\n"};
      }
      const std::lock_guard lock(m);
      second_connection.push_back(cmd[0] + " " + cmd.at(1));
      return {};
    }
    return test::handshake_reply(cmd);
  });
  net::loop loop;
  options o = unix_options(fake.socket_path());
  o.set_lib_info = false;
  o.reconnect.initial_delay = 200ms;  // time to unsubscribe during the backoff
  o.reconnect.max_delay = 200ms;
  subscriber sub(loop, o);
  bool asked_for_b = false;
  auto on_event = [&](const pubsub_event& e) {
    if (e.kind == pubsub_kind::message && !asked_for_b) {
      asked_for_b = true;
      sub.subscribe({"b"});
    }
  };
  sub.set_handler(on_event);
  sub.subscribe({"a"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return asked_for_b && sub.conn().state() == connection_state::backoff; }, 5s))
      << sub.last_error();
  EXPECT_NE(sub.last_error().find("protocol"), std::string::npos) << sub.last_error();
  sub.unsubscribe({"b"});
  ASSERT_TRUE(run_until(loop, [&] {
    const std::lock_guard lock(m);
    return second_connection.size() >= 3;
  }, 5s));
  test::run_for(loop, 50ms);
  const std::lock_guard lock(m);
  EXPECT_EQ(second_connection, (std::vector<std::string>{"SUBSCRIBE b", "SUBSCRIBE a", "UNSUBSCRIBE b"}));
  EXPECT_EQ(sub.channels(), (std::set<std::string, std::less<>>{"a"}));
}

// Views of the subscriber's own sets passed back to it ("unsubscribe from everything"): the names
// are copied before the sets change (ASan caught a use after free here), connected or not.
TEST(Subscriber, UnsubscribingWithViewsOfItsOwnSetsIsSafe) {
  test::redis_server server;
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"a", "b", "c"});
  sub.psubscribe({"p.*"});
  {
    std::vector<std::string_view> all(sub.channels().begin(), sub.channels().end());
    sub.unsubscribe(all);  // before connecting
  }
  EXPECT_TRUE(sub.channels().empty());
  sub.subscribe({"a", "b", "c"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 4; }, 5s)) << sub.last_error();
  rec.events.clear();
  std::vector<std::string_view> all(sub.channels().begin(), sub.channels().end());
  sub.unsubscribe(all);  // connected: the commands are encoded from the copies
  std::vector<std::string_view> patterns(sub.patterns().begin(), sub.patterns().end());
  sub.punsubscribe(patterns);
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 0 && rec.events.size() == 4; }, 5s));
  const std::vector<recorded> expected{{pubsub_kind::unsubscribe, "a", "", "", 3},
                                       {pubsub_kind::unsubscribe, "b", "", "", 2},
                                       {pubsub_kind::unsubscribe, "c", "", "", 1},
                                       {pubsub_kind::punsubscribe, "p.*", "", "", 0}};
  EXPECT_EQ(rec.events, expected);
}

// An ACL that allows only some channels: the refused name is refused alone (a command per name),
// reported, dropped from the sets, and never costs the others their subscription, also after a
// reconnect.
TEST(Subscriber, ARefusedChannelIsReportedAndDroppedAlone) {
  test::redis_server server({"--user", "default", "on", "nopass", "resetchannels", "&allowed*", "~*", "+@all"});
  net::loop loop;
  options o = unix_options(server.socket_path());
  o.reconnect.initial_delay = 20ms;
  subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"allowed1"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 1; }, 5s)) << sub.last_error();
  sub.subscribe({"allowed2", "secret", "allowed3"});
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 3 && rec.events.size() == 4; }, 5s)) << sub.last_error();
  ASSERT_EQ(rec.events[2].kind, pubsub_kind::refused);
  EXPECT_EQ(rec.events[2].channel, "secret");
  EXPECT_NE(rec.events[2].payload.find("NOPERM"), std::string::npos) << rec.events[2].payload;
  EXPECT_NE(sub.last_error().find("NOPERM"), std::string::npos) << sub.last_error();
  EXPECT_EQ(sub.channels(), (std::set<std::string, std::less<>>{"allowed1", "allowed2", "allowed3"}));
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(publish(admin, "allowed2", "x"), 1);
  // After a reconnect every allowed channel is subscribed again.
  (void)admin.call({"CLIENT", "KILL", "TYPE", "pubsub"});
  ASSERT_TRUE(run_until(loop, [&] { return sub.conn().connects() == 2 && sub.confirmed() == 3; }, 5s)) << sub.last_error();
  EXPECT_EQ(publish(admin, "allowed1", "y"), 1);
  EXPECT_EQ(publish(admin, "allowed3", "z"), 1);
}

// The subscriber's own health check: a server that stops answering (SIGSTOP) is found dead within
// two intervals, and the subscriber reconnects and subscribes again once it answers.
TEST(Subscriber, AStalledServerIsFoundByTheHealthCheck) {
  test::redis_server server;
  net::loop loop;
  options o = unix_options(server.socket_path());
  o.health_check_interval = 100ms;
  o.reconnect.initial_delay = 20ms;
  o.reconnect.max_delay = 100ms;
  o.connect_timeout = 300ms;
  subscriber sub(loop, o);
  sub.subscribe({"a"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 1; }, 5s)) << sub.last_error();
  ::kill(server.pid(), SIGSTOP);
  ASSERT_TRUE(run_until(loop, [&] { return sub.conn().state() != connection_state::ready; }, 5s));
  EXPECT_NE(sub.last_error().find("health check"), std::string::npos) << sub.last_error();
  ::kill(server.pid(), SIGCONT);
  ASSERT_TRUE(run_until(loop, [&] { return sub.conn().state() == connection_state::ready && sub.confirmed() == 1; }, 10s))
      << sub.last_error();
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(publish(admin, "a", "back"), 1);
}

TEST(Subscriber, TenThousandMessagesArriveInOrderEachOnce) {
  test::redis_server server;
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  std::vector<std::string> got;
  auto keep = [&](const pubsub_event& e) {
    if (e.kind == pubsub_kind::message) got.emplace_back(e.payload);
  };
  sub.set_handler(keep);
  sub.subscribe({"n"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 1; }, 5s)) << sub.last_error();
  constexpr int count = 10000;
  test::blocking_connection admin(server.socket_path());
  std::string pipeline;
  for (int i = 0; i < count; ++i) {
    const std::string v = std::to_string(i);
    pipeline += "*3\r\n$7\r\nPUBLISH\r\n$1\r\nn\r\n$" + std::to_string(v.size()) + "\r\n" + v + "\r\n";
  }
  admin.send(pipeline);
  const std::string replies = admin.read_raw_replies(count);
  std::string expected;
  for (int i = 0; i < count; ++i) expected += ":1\r\n";  // one receiver each
  ASSERT_EQ(replies, expected);
  ASSERT_TRUE(run_until(loop, [&] { return got.size() >= count; }, 10s)) << got.size();
  test::run_for(loop, 20ms);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) ASSERT_EQ(got[i], std::to_string(i)) << "message " << i;
}

TEST(Subscriber, SubscribesAgainAfterTheServerRestarts) {
  char tmpl[] = "/tmp/redring-sub-XXXXXX";
  const std::string dir = ::mkdtemp(tmpl);
  const std::string path = dir + "/redis.sock";
  auto server = std::make_unique<test::redis_server>(std::vector<std::string>{}, path);
  net::loop loop;
  options o = unix_options(path);
  o.reconnect.initial_delay = 20ms;
  o.reconnect.max_delay = 100ms;
  subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"a"});
  sub.psubscribe({"p.*"});
  sub.ssubscribe({"s"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 3; }, 5s)) << sub.last_error();
  ::kill(server->pid(), SIGKILL);
  ASSERT_TRUE(run_until(loop, [&] { return sub.conn().state() != connection_state::ready; }, 5s));
  EXPECT_EQ(sub.confirmed(), 0);  // nothing subscribed while disconnected
  server.reset();
  test::redis_server restarted({}, path);
  ASSERT_TRUE(run_until(loop, [&] { return sub.conn().connects() == 2 && sub.confirmed() == 3; }, 10s)) << sub.last_error();
  test::blocking_connection admin(path);
  EXPECT_EQ(publish(admin, "a", "after"), 1);
  EXPECT_EQ(publish(admin, "p.1", "after too"), 1);
  EXPECT_EQ(admin.call({"SPUBLISH", "s", "sharded"}).integer, 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 3; }, 5s));
  ASSERT_GE(rec.events.size(), 3u);
  EXPECT_EQ(rec.events[rec.events.size() - 3], (recorded{pubsub_kind::message, "a", "", "after", 0}));
  EXPECT_EQ(rec.events[rec.events.size() - 2], (recorded{pubsub_kind::pmessage, "p.1", "p.*", "after too", 0}));
  EXPECT_EQ(rec.events.back(), (recorded{pubsub_kind::smessage, "s", "", "sharded", 0}));
  std::filesystem::remove_all(dir);
}

TEST(Subscriber, TheHealthCheckPingRunsBesideTheSubscriptions) {
  test::redis_server server;
  net::loop loop;
  options o = unix_options(server.socket_path());
  o.health_check_interval = 50ms;  // a PING every 50 ms of silence: under RESP3, answered in subscribed mode
  subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"a"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 1; }, 5s)) << sub.last_error();
  test::blocking_connection admin(server.socket_path());
  const std::int64_t pings_before = test::command_calls(admin.call({"INFO", "commandstats"}).text, "ping");
  test::run_for(loop, 400ms);
  EXPECT_EQ(sub.conn().connects(), 1u) << sub.last_error();  // no PING went unanswered
  EXPECT_EQ(sub.conn().state(), connection_state::ready);
  EXPECT_GE(test::command_calls(admin.call({"INFO", "commandstats"}).text, "ping") - pings_before, 3);
  EXPECT_EQ(publish(admin, "a", "still here"), 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 1; }, 5s));
  EXPECT_EQ(rec.events.back(), (recorded{pubsub_kind::message, "a", "", "still here", 0}));
}

TEST(Subscriber, Resp2IsRefusedWithAClearError) {
  // Asked for: refused at once, nothing connects.
  {
    net::loop loop;
    options o = unix_options("/nonexistent/redis.sock");
    o.protocol = 2;
    subscriber sub(loop, o);
    sub.subscribe({"a"});
    sub.start();
    EXPECT_TRUE(sub.failed());
    EXPECT_NE(sub.last_error().find("RESP3"), std::string::npos) << sub.last_error();
    EXPECT_EQ(sub.conn().state(), connection_state::idle);
  }
  // Agreed with a server without HELLO (the handshake falls back to RESP2): stops, subscribes to nothing.
  test::redis_server server({"--rename-command", "HELLO", ""});
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"a"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.conn().state() == connection_state::closed; }, 5s));
  EXPECT_TRUE(sub.failed());
  EXPECT_EQ(sub.conn().protocol(), 2);
  EXPECT_NE(sub.last_error().find("RESP3"), std::string::npos) << sub.last_error();
  test::blocking_connection admin(server.socket_path());
  EXPECT_EQ(publish(admin, "a", "x"), 0);
  EXPECT_TRUE(rec.events.empty());
}

TEST(Subscriber, AHandlerMayUnsubscribeAndClose) {
  test::redis_server server;
  net::loop loop;
  subscriber sub(loop, unix_options(server.socket_path()));
  int messages = 0;
  auto first_only = [&](const pubsub_event& e) {
    if (e.kind != pubsub_kind::message) return;
    ++messages;
    sub.unsubscribe({"a"});
    sub.close();  // inside the connection's dispatch: closes on the next turn
  };
  sub.set_handler(first_only);
  sub.subscribe({"a"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 1; }, 5s)) << sub.last_error();
  test::blocking_connection admin(server.socket_path());
  // Both are on their way before the subscriber reads either: the second is not delivered.
  EXPECT_EQ(publish(admin, "a", "1"), 1);
  EXPECT_EQ(publish(admin, "a", "2"), 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.conn().state() == connection_state::closed; }, 5s));
  test::run_for(loop, 20ms);
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(sub.messages(), 1u);
}

// A server that answers SUBSCRIBE with malformed and odd pushes among valid ones: only the valid
// ones are delivered, each whole.
TEST(Subscriber, MalformedPushesAreSkippedWhole) {
  const std::string pushes =
      "|1\r\n+key\r\n+value\r\n"                                 // an attribute on the confirmation
      ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"               // valid
      ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n:5\r\n"                 // a payload that is not text
      ">2\r\n$7\r\nmessage\r\n$1\r\na\r\n"                       // too short
      ">1\r\n$3\r\nfoo\r\n"                                      // another kind
      ">3\r\n:7\r\n$1\r\na\r\n$1\r\nb\r\n"                       // a kind that is not text
      ">3\r\n$7\r\nmessage\r\n*1\r\n$1\r\nx\r\n$1\r\np\r\n"      // a channel that is an array
      ">3\r\n$7\r\nmessage\r\n_\r\n$1\r\np\r\n"                  // a null channel
      ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n$1\r\n1\r\n"          // a count that is not an integer
      "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nRESP2\r\n"        // an array, not a push
      ">4\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\npart\r\n$5\r\nextra\r\n"  // too many elements
      ">4\r\n$9\r\nsubscribe\r\n$1\r\nz\r\n:9\r\n$5\r\nextra\r\n"      // too many elements
      ">3\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npq\r\n"              // too few for a pmessage
      ">4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npq\r\n|1\r\n+a\r\n+b\r\n$4\r\nbody\r\n"  // an annotated element
      ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n";       // valid
  test::fake_server fake([&](const std::vector<std::string>& cmd, int) -> test::fake_reply {
    if (!cmd.empty() && cmd[0] == "SUBSCRIBE") return {pushes};
    return test::handshake_reply(cmd);
  });
  net::loop loop;
  options o = unix_options(fake.socket_path());
  o.set_lib_info = false;
  subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"a"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 2; }, 5s)) << sub.last_error();
  test::run_for(loop, 20ms);
  const std::vector<recorded> expected{{pubsub_kind::subscribe, "a", "", "", 1},
                                       {pubsub_kind::pmessage, "pq", "p*", "body", 0},
                                       {pubsub_kind::message, "a", "", "hello", 0}};
  EXPECT_EQ(rec.events, expected);
  EXPECT_EQ(sub.conn().connects(), 1u);  // odd pushes are not protocol errors
}

}  // namespace
}  // namespace redring::client
