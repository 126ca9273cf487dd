// SPDX-License-Identifier: MIT
// Sentinel mode against a real deployment (a master, a replica, two sentinels, all private
// redis-servers on loopback ports): the master or a replica found through the sentinels, dead and
// ignorant sentinels skipped, sentinel credentials, a failover followed, and, with a fake sentinel
// (a real one does not lie), a server of the wrong role left.
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/subscriber.hpp"
#include "client/url.hpp"

#include "tests/support/fake_server.hpp"
#include "tests/support/redis_sentinel.hpp"
#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace redring::client {
namespace {

using namespace std::chrono_literals;
using test::run_until;

std::string sentinel_url(test::redis_sentinel& d, std::string_view query = {}, std::string_view name = "mymaster") {
  std::string url = "redis+sentinel://";
  for (std::size_t i = 0; i < d.sentinels(); ++i) url += (i ? ",127.0.0.1:" : "127.0.0.1:") + std::to_string(d.sentinel_port(i));
  url += "/" + std::string(name);
  if (!query.empty()) url += "?" + std::string(query);
  return url;
}

options options_of(const std::string& url) {
  options o;
  std::string why;
  EXPECT_FALSE(parse_url(url, o, &why)) << why;
  o.command_timeout = 3000ms;
  o.reconnect.initial_delay = 20ms;
  o.reconnect.max_delay = 200ms;
  return o;
}

// Polls `pred` for up to 10 s.
template <class Pred>
bool run_until_true(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

// The port of the server a client's commands reach (CONFIG GET port, or tls-port), or the error.
std::string served_by(net::loop& loop, client& c, const char* port_setting = "port") {
  std::optional<std::string> out;
  auto body = [&]() -> detached {
    const auto r = co_await c.command<std::vector<std::string>>("CONFIG", "GET", port_setting);
    out = r ? (r->size() == 2 ? (*r)[1] : "bad reply") : r.error().what() + " / " + c.conn().last_error();
  };
  body();
  if (!run_until(loop, [&] { return out.has_value(); })) return "no reply";
  return *out;
}

TEST(Sentinel, FindsTheMasterAndChecksItsRole) {
  test::redis_sentinel d(0, 2);
  net::loop loop;
  client c(loop, options_of(sentinel_url(d)));
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  std::optional<std::string> got;
  auto body = [&]() -> detached {
    const auto set = co_await c.set("k", "v");
    const auto role = co_await c.command<resp::value>("ROLE");
    got = std::string(set ? "set" : set.error().what()) + " " + (role && !role->elements.empty() ? role->elements[0].text : "?");
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, "set master");
  // On the master itself, and replicated.
  test::blocking_connection master(d.server(0).socket_path());
  EXPECT_EQ(master.call({"GET", "k"}).text, "v");
}

TEST(Sentinel, ReplicaRoleReadsFromAReplica) {
  test::redis_sentinel d(1, 1);
  test::blocking_connection master(d.server(0).socket_path());
  (void)master.call({"SET", "k", "replicated"});
  (void)master.call({"WAIT", "1", "2000"});
  net::loop loop;
  client c(loop, options_of(sentinel_url(d, "sentinel_role=replica")));
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(1)));
  std::optional<std::string> got;
  auto body = [&]() -> detached {
    const auto get = co_await c.get("k");
    const auto set = co_await c.set("k", "v");  // a replica refuses writes
    got = (get && *get ? **get : std::string("?")) + " / " + (set ? std::string("written") : std::string(set.error().code_word()));
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return got.has_value(); }));
  EXPECT_EQ(*got, "replicated / READONLY");
}

// A sentinel that is down and one that does not know the name are skipped; the one that answered is
// asked first at the next connect (the spec's rule), so the others are not asked again.
TEST(Sentinel, SkipsSentinelsThatAreDownOrDoNotKnowAndAsksTheOneThatAnsweredFirst) {
  test::redis_sentinel d(0, 1);
  const int dead = test::free_loopback_port();  // nobody listens there
  test::fake_server ignorant(
      [](const std::vector<std::string>& cmd, int) -> test::fake_reply {
        if (!cmd.empty() && cmd[0] == "SENTINEL") return {"*-1\r\n"};  // RESP2's null: no such master
        return test::handshake_reply(cmd);
      },
      /*tcp=*/true);
  options o = options_of("redis+sentinel://127.0.0.1:" + std::to_string(dead) + ",127.0.0.1:" + std::to_string(ignorant.port()) +
                         ",127.0.0.1:" + std::to_string(d.sentinel_port(0)) + "/mymaster");
  net::loop loop;
  client c(loop, o);
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  EXPECT_EQ(ignorant.connections(), 1);
  // Dropped by the server: the reconnect asks the sentinel that answered, first.
  test::blocking_connection master(d.server(0).socket_path());
  EXPECT_GE(master.call({"CLIENT", "KILL", "TYPE", "normal"}).integer, 1);  // ours and the sentinel's
  ASSERT_TRUE(run_until(loop, [&] { return c.conn().connects() == 2 && c.conn().state() == connection_state::ready; }));
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  EXPECT_EQ(ignorant.connections(), 1);
}

// Answers a real sentinel never gives (a fake sentinel for each): skipped, each with its reason.
TEST(Sentinel, OddAnswersAreSkipped) {
  test::redis_sentinel d(0, 1);
  const auto answering = [](std::string reply) {
    return std::make_unique<test::fake_server>(
        [reply](const std::vector<std::string>& cmd, int) -> test::fake_reply {
          if (!cmd.empty() && cmd[0] == "SENTINEL") return {reply};
          return test::handshake_reply(cmd);
        },
        /*tcp=*/true);
  };
  std::vector<std::unique_ptr<test::fake_server>> odd;
  odd.push_back(answering(":5\r\n"));                                            // not an address
  odd.push_back(answering("*2\r\n$9\r\n127.0.0.1\r\n$5\r\n99999\r\n"));          // no such port
  odd.push_back(answering("*1\r\n$9\r\n127.0.0.1\r\n"));                          // no port
  odd.push_back(answering("-NOPERM this user has no permissions\r\n"));          // refused
  odd.push_back(answering("$x\r\n"));                                            // not RESP
  odd.push_back(answering("*1\r\n$1048576\r\n"));  // 1 MiB claimed: over a sentinel connection's limits
  std::string url = "redis+sentinel://";
  for (const auto& f : odd) url += "127.0.0.1:" + std::to_string(f->port()) + ",";
  url += "127.0.0.1:" + std::to_string(d.sentinel_port(0)) + "/mymaster";
  net::loop loop;
  client c(loop, options_of(url));
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  // Each was asked once: HELLO, the question and SENTINELS (counted by the fake's thread).
  EXPECT_TRUE(run_until(loop, [&] {
    return std::all_of(odd.begin(), odd.end(), [](const auto& f) { return f->commands() == 3; });
  }));
  for (const auto& f : odd) EXPECT_EQ(f->commands(), 3) << f->port();
  // The same sentinels without the real one: the reasons, in order.
  options o = options_of(url.substr(0, url.rfind(',')) + "/mymaster");
  o.command_timeout = 500ms;
  client alone(loop, o);
  (void)served_by(loop, alone);
  const std::string& why = alone.conn().last_error();
  std::size_t at = 0;
  for (const char* reason : {"unexpected reply to SENTINEL", "unexpected reply to SENTINEL GET-MASTER-ADDR-BY-NAME",
                             "unexpected reply to SENTINEL GET-MASTER-ADDR-BY-NAME", "NOPERM this user has no permissions",
                             "protocol", "protocol"}) {
    const auto found = why.find(reason, at);
    ASSERT_NE(found, std::string::npos) << reason << " in " << why;
    at = found + 1;
  }
}

// A sentinel that completes the handshake and never answers the question is skipped after the
// timeout, also with sentinel_timeout=0 (then connect_timeout bounds the whole question).
TEST(Sentinel, ASilentSentinelIsSkipped) {
  test::redis_sentinel d(0, 1);
  test::fake_server silent([](const std::vector<std::string>& cmd, int) { return test::handshake_reply(cmd); }, /*tcp=*/true);
  for (const char* timeout : {"150", "0"}) {
    options o = options_of("redis+sentinel://127.0.0.1:" + std::to_string(silent.port()) + ",127.0.0.1:" +
                           std::to_string(d.sentinel_port(0)) + "/mymaster?sentinel_timeout=" + timeout);
    o.connect_timeout = 300ms;
    net::loop loop;
    client c(loop, o);
    EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0))) << timeout;
  }
  EXPECT_EQ(silent.connections(), 2);
}

// With reconnecting off, a connection closed for good asks and watches nothing any more.
TEST(Sentinel, AConnectionClosedForGoodLeavesNoWatch) {
  test::redis_sentinel d(0, 1);
  options o = options_of(sentinel_url(d));
  o.reconnect.enabled = false;
  net::loop loop;
  client c(loop, o);
  ASSERT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  const auto watching = [&] { return d.call_sentinel(0, {"CLIENT", "LIST"}).text.find(" sub=1 ") != std::string::npos; };
  ASSERT_TRUE(run_until(loop, watching));
  test::blocking_connection master(d.server(0).socket_path());
  EXPECT_GE(master.call({"CLIENT", "KILL", "TYPE", "normal"}).integer, 1);
  ASSERT_TRUE(run_until(loop, [&] { return c.conn().state() == connection_state::closed; }));
  EXPECT_TRUE(run_until(loop, [&] { return !watching(); }));
}

// rediss+sentinel://: TLS to the sentinels and to the servers they name (their TLS ports).
TEST(Sentinel, OverTls) {
  const test::tls_files files;
  test::redis_sentinel d(1, 1, {}, &files);
  for (const char* role : {"master", "replica"}) {
    net::loop loop;
    client c(loop, options_of("rediss+sentinel://127.0.0.1:" + std::to_string(d.sentinel_port(0)) +
                              "/mymaster?sentinel_role=" + role + "&tls_ca_file=" + files.ca_cert));
    EXPECT_EQ(served_by(loop, c, "tls-port"), std::to_string(d.server_port(role[0] == 'm' ? 0 : 1))) << role;
  }
}

// The watched sentinel freezes (SIGSTOP): the watch's PING goes unanswered, it moves to the other
// sentinel, and from there learns of the failover that one ran; the client leaves the old master at
// the watch's word, not when Sentinel turns the old master into a replica.
TEST(Sentinel, TheWatchMovesOnFromAFrozenSentinel) {
  test::redis_sentinel d(1, 2);
  net::loop loop;
  client c(loop, options_of(sentinel_url(d)));
  ASSERT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  ASSERT_TRUE(run_until(loop, [&] {
    return d.call_sentinel(0, {"CLIENT", "LIST"}).text.find(" sub=1 ") != std::string::npos;
  }));
  ASSERT_EQ(::kill(d.sentinel(0).pid(), SIGSTOP), 0);
  struct resume {
    pid_t pid;
    ~resume() { ::kill(pid, SIGCONT); }
  } resume_at_exit{d.sentinel(0).pid()};
  const std::size_t next = d.failover(1, /*only_via=*/true);
  const std::string now = std::to_string(d.server_port(next));
  EXPECT_TRUE(run_until(loop, [&] { return c.conn().last_error().find("sentinel: ") != std::string::npos; }, 8s))
      << c.conn().last_error();
  EXPECT_NE(c.conn().last_error().find("127.0.0.1:" + now), std::string::npos) << c.conn().last_error();
  EXPECT_EQ(served_by(loop, c), now);
}

// Pub/sub and blocking commands have connections of their own; each asks the sentinels too, and
// follows the failover: the subscription is renewed on the new master, a blocking command waiting
// on the old one completes once with the reason, and the next one blocks on the new master.
TEST(Sentinel, SubscriptionsAndBlockingCommandsFollowAFailover) {
  test::redis_sentinel d(1, 2);
  net::loop loop;
  const options o = options_of(sentinel_url(d));
  client c(loop, o);
  subscriber sub(loop, o);
  std::vector<std::string> messages;
  auto on_event = [&](const pubsub_event& e) {
    if (e.kind == pubsub_kind::message) messages.emplace_back(e.payload);
  };
  sub.set_handler(on_event);
  sub.subscribe({"news"});
  sub.start();
  int blpop_done = 0;
  std::string blpop_result;
  auto wait_for_job = [&]() -> detached {
    const auto r = co_await c.command<std::optional<std::vector<std::string>>>("BLPOP", "jobs", "0");
    ++blpop_done;
    blpop_result = r ? (*r && r->value().size() == 2 ? r->value()[1] : "nil") : r.error().what();
  };
  wait_for_job();
  ASSERT_TRUE(run_until(loop, [&] { return sub.confirmed() == 1; }));
  ASSERT_TRUE(run_until(loop, [&] {  // the BLPOP is blocked on the master
    test::blocking_connection m(d.server(0).socket_path());
    return m.call({"INFO", "clients"}).text.find("blocked_clients:1") != std::string::npos;
  }));
  const std::size_t next = d.failover();
  ASSERT_TRUE(run_until(loop, [&] { return blpop_done == 1; }));
  EXPECT_NE(blpop_result.find("connection"), std::string::npos) << blpop_result;  // lost with it, once
  // The subscription is renewed on the new master (after its connection's backoff, lookup and
  // handshake: by time, not by a count of tries); publish there until a message arrives.
  bool published = false;
  auto publish = [&]() -> detached {
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (messages.empty() && std::chrono::steady_clock::now() < until) {
      const auto n = co_await c.publish("news", "after the failover");
      if (!n || *n == 0) co_await c.command<std::string>("PING");
    }
    published = true;
  };
  publish();
  ASSERT_TRUE(run_until(loop, [&] { return published; }));
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages[0], "after the failover");
  // A new blocking command waits on the new master, and gets what is pushed there.
  wait_for_job();
  test::blocking_connection now(d.server(next).socket_path());
  ASSERT_TRUE(run_until(loop, [&] {
    return now.call({"INFO", "clients"}).text.find("blocked_clients:1") != std::string::npos;
  }));
  (void)now.call({"LPUSH", "jobs", "job-1"});
  ASSERT_TRUE(run_until(loop, [&] { return blpop_done == 2; }));
  EXPECT_EQ(blpop_result, "job-1");
}

// Given one sentinel, the client learns the others from it (SENTINEL SENTINELS) and asks them when
// that one is gone.
TEST(Sentinel, LearnsTheOtherSentinels) {
  test::redis_sentinel d(0, 2);
  // The sentinels find each other through the master's hello channel (every 2 s).
  ASSERT_TRUE(run_until_true([&] { return d.call_sentinel(0, {"SENTINEL", "SENTINELS", "mymaster"}).elements.size() == 1; }));
  net::loop loop;
  client c(loop, options_of("redis+sentinel://127.0.0.1:" + std::to_string(d.sentinel_port(0)) + "/mymaster"));
  ASSERT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  ASSERT_EQ(::kill(d.sentinel(0).pid(), SIGSTOP), 0);
  struct resume {
    pid_t pid;
    ~resume() { ::kill(pid, SIGCONT); }
  } resume_at_exit{d.sentinel(0).pid()};
  test::blocking_connection master(d.server(0).socket_path());
  EXPECT_GE(master.call({"CLIENT", "KILL", "TYPE", "normal"}).integer, 1);
  ASSERT_TRUE(run_until(loop, [&] { return c.conn().connects() == 2 && c.conn().state() == connection_state::ready; }));
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
}

// The master dies (kill -9) with commands in flight: the sentinels agree it is down (1 s) and fail
// over on their own; every command completes exactly once (a reply, or an error that says why) and
// the client recovers on the promoted replica.
TEST(Sentinel, SurvivesTheMastersDeath) {
  test::redis_sentinel d(1, 2);
  net::loop loop;
  options o = options_of(sentinel_url(d));
  o.command_timeout = 2000ms;
  client c(loop, o);
  ASSERT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  constexpr int kWorkers = 50;
  int issued = 0, completed = 0, failed = 0, ok_after_kill = 0;
  bool killed = false, stop = false;
  auto worker = [&](int id) -> detached {
    while (!stop) {
      ++issued;
      const auto r = co_await c.incr("counter:" + std::to_string(id));
      ++completed;
      if (!r) {
        ++failed;
        co_await c.command<std::string>("PING");  // not a tight loop while there is no master
      } else if (killed) {
        ++ok_after_kill;
      }
    }
  };
  for (int i = 0; i < kWorkers; ++i) worker(i);
  ASSERT_TRUE(run_until(loop, [&] { return completed > 1000; }));
  ASSERT_EQ(::kill(d.server(0).pid(), SIGKILL), 0);
  killed = true;
  // More successes than the dead master could have had in flight: the promoted replica answers.
  EXPECT_TRUE(run_until(loop, [&] { return ok_after_kill > 1000; }, 40s)) << c.conn().last_error();
  stop = true;
  ASSERT_TRUE(run_until(loop, [&] { return completed == issued; }));  // each once: none lost, none twice
  EXPECT_GT(failed, 0);  // those in flight when it died said so
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(1)));
}

TEST(Sentinel, NoSentinelAnsweringIsAClearErrorNamingEach) {
  test::redis_sentinel d(0, 1);
  const int dead = test::free_loopback_port();
  options o = options_of("redis+sentinel://127.0.0.1:" + std::to_string(dead) + ",127.0.0.1:" +
                         std::to_string(d.sentinel_port(0)) + "/nosuchmaster");
  o.command_timeout = 500ms;
  net::loop loop;
  client c(loop, o);
  const std::string r = served_by(loop, c);
  EXPECT_NE(r.find("timed out"), std::string::npos) << r;  // the command waited for a connection in vain
  const std::string& why = c.conn().last_error();
  EXPECT_NE(why.find("no sentinel gave the master of 'nosuchmaster'"), std::string::npos) << why;
  EXPECT_NE(why.find("sentinel 127.0.0.1:" + std::to_string(dead) + ": cannot connect"), std::string::npos) << why;
  EXPECT_NE(why.find("sentinel 127.0.0.1:" + std::to_string(d.sentinel_port(0)) + ": does not know master 'nosuchmaster'"),
            std::string::npos)
      << why;
}

TEST(Sentinel, SentinelCredentialsAreTheSentinels) {
  test::redis_sentinel d(0, 1, "requirepass sentinel-secret\n");
  {
    net::loop loop;
    client c(loop, options_of(sentinel_url(d, "sentinel_password=sentinel-secret")));
    EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  }
  options o = options_of(sentinel_url(d, "sentinel_password=wrong"));
  o.command_timeout = 500ms;
  net::loop loop;
  client c(loop, o);
  (void)served_by(loop, c);
  const std::string& why = c.conn().last_error();
  EXPECT_NE(why.find("authentication failed"), std::string::npos) << why;
  EXPECT_EQ(why.find("sentinel-secret"), std::string::npos) << why;
}

TEST(Sentinel, AServerOfTheWrongRoleIsLeftAndTheSentinelsAskedAgain) {
  // A stale sentinel: it names the replica as the master for its first two answers, then the master.
  test::redis_sentinel d(1, 0);
  std::atomic<int> asked{0};
  test::fake_server stale(
      [&](const std::vector<std::string>& cmd, int) -> test::fake_reply {
        if (cmd.size() == 3 && cmd[0] == "SENTINEL" && cmd[1] == "SENTINELS") return {"*0\r\n"};  // knows no other
        if (cmd.size() == 3 && cmd[0] == "SENTINEL") {
          const int port = ++asked <= 2 ? d.server_port(1) : d.server_port(0);
          const std::string p = std::to_string(port);
          return {"*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(p.size()) + "\r\n" + p + "\r\n"};
        }
        return test::handshake_reply(cmd);
      },
      /*tcp=*/true);
  options o = options_of("redis+sentinel://127.0.0.1:" + std::to_string(stale.port()) + "/mymaster");
  net::loop loop;
  client c(loop, o);
  EXPECT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  EXPECT_EQ(asked.load(), 3);
  EXPECT_EQ(c.conn().connects(), 3u);  // the replica twice, then the master
  EXPECT_NE(c.conn().last_error().find("is a slave, not a master of 'mymaster'"), std::string::npos) << c.conn().last_error();
}

TEST(Sentinel, FollowsAFailover) {
  test::redis_sentinel d(1, 2);
  net::loop loop;
  options o = options_of(sentinel_url(d));
  client c(loop, o);
  ASSERT_EQ(served_by(loop, c), std::to_string(d.server_port(0)));
  // The connection's watch subscribed on the sentinel that answered (the first) before the failover.
  ASSERT_TRUE(run_until(loop, [&] {
    return d.call_sentinel(0, {"CLIENT", "LIST"}).text.find(" sub=1 ") != std::string::npos;
  }));
  const auto failover_start = std::chrono::steady_clock::now();
  const std::size_t next = d.failover();
  ASSERT_EQ(next, 1u);
  // Commands keep going; each completes exactly once, with a reply or an error that says why, and
  // within a few seconds they reach the new master.
  int issued = 0, completed = 0;
  std::optional<std::string> on;
  auto body = [&]() -> detached {
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < until) {
      ++issued;
      const auto r = co_await c.command<std::vector<std::string>>("CONFIG", "GET", "port");
      ++completed;
      if (r && r->size() == 2 && (*r)[1] == std::to_string(d.server_port(next))) {
        const auto w = co_await c.incr("after-failover");
        if (w) {
          on = (*r)[1];
          co_return;
        }
      }
    }
    on = "still on the old master: " + c.conn().last_error();
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return on.has_value(); }, 30s));
  EXPECT_EQ(*on, std::to_string(d.server_port(next)));
  std::printf("on the new master %lld ms after SENTINEL FAILOVER\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - failover_start)
                                         .count()));
  EXPECT_EQ(issued, completed);
  test::blocking_connection now(d.server(next).socket_path());
  EXPECT_EQ(now.call({"GET", "after-failover"}).text, "1");
  // Left at the sentinel's word (+switch-master), not seconds later when Sentinel turns the old
  // master into a replica and closes its clients.
  EXPECT_NE(c.conn().last_error().find("'mymaster' failed over from 127.0.0.1:" + std::to_string(d.server_port(0)) +
                                       " to 127.0.0.1:" + std::to_string(d.server_port(next))),
            std::string::npos)
      << c.conn().last_error();
}

}  // namespace
}  // namespace redring::client
