// SPDX-License-Identifier: MIT
// The client in cluster mode against a real cluster (3 primaries + 3 replicas on loopback ports):
// routing, hash tags, cross-slot split and merge, pipelines, keyless commands, MOVED after a slot
// moved, ASK while a slot migrates under load, a CLUSTERDOWN window, and a primary killed under load.
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/hash_slot.hpp"
#include "client/slot_map.hpp"
#include "net/error.hpp"

#include "tests/support/redis_cluster.hpp"
#include "tests/support/run_program.hpp"
#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <thread>

namespace redring::client {
namespace {

using namespace std::chrono_literals;
using test::run_until;

options cluster_options_for(test::redis_cluster& cl, std::size_t seed = 0) {
  options o;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(cl.port(seed));
  o.cluster.enabled = true;
  return o;
}

// Slot -> the fixture's index of the primary serving it, from node `ask`'s own CLUSTER SHARDS.
std::vector<std::size_t> owners(test::redis_cluster& cl, std::size_t ask = 0) {
  test::blocking_connection c(cl.node(ask).socket_path());
  const auto map = slot_map::from_shards(c.call({"CLUSTER", "SHARDS"}));
  if (!map) throw std::runtime_error("no topology");
  std::vector<std::size_t> out(slot_count);
  for (std::size_t s = 0; s < slot_count; ++s) {
    const cluster_node* p = map->primary_of(static_cast<std::uint16_t>(s));
    if (p == nullptr) throw std::runtime_error("unassigned slot");
    out[s] = cl.index_of_port(p->port);
  }
  return out;
}

std::size_t owner_of(test::redis_cluster& cl, std::uint16_t slot) { return owners(cl)[slot]; }

class ClusterClient : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = std::make_unique<test::redis_cluster>(3, 1); }
  static void TearDownTestSuite() { cluster_.reset(); }
  static test::redis_cluster& cluster() { return *cluster_; }

  ClusterClient() : c(loop, cluster_options_for(cluster())) {}
  // Runs `body` (a coroutine that sets `done`) to completion.
  template <class F>
  void run(F& body, std::chrono::milliseconds limit = 30s) {
    done = false;
    body();
    ASSERT_TRUE(run_until(loop, [&] { return done; }, limit));
  }

  // Sets `key` through the client, so that it knows the slot's owner (before a test moves the slot).
  void warm(const std::string& key, const std::string& value) {
    auto body = [&]() -> detached {
      EXPECT_TRUE(co_await c.set(key, value));
      done = true;
    };
    run(body);
  }

  // Starts `one(i)` for each i < n (a coroutine that counts itself in `ok` or `failed`) and runs the
  // loop until all have, then expects every one ok.
  template <class F>
  void run_each(int n, F& one, int& ok, int& failed) {
    for (int i = 0; i < n; ++i) one(i);
    ASSERT_TRUE(run_until(loop, [&] { return ok + failed == n; }, 60s));
    EXPECT_EQ(ok, n);
    EXPECT_EQ(failed, 0);
  }
  // Requests handed to every node's connections so far.
  std::uint64_t total_sent() {
    std::uint64_t sent = 0;
    for (const auto& l : c.cluster()->load()) sent += l.sent;
    return sent;
  }

  net::loop loop;
  client c;
  bool done = false;

 private:
  static inline std::unique_ptr<test::redis_cluster> cluster_;
};

TEST_F(ClusterClient, RoutesTenThousandKeysToTheirNodes) {
  constexpr int n = 10000;
  int ok = 0, failed = 0;
  auto one = [&](int i) -> detached {
    const std::string key = "route:" + std::to_string(i);
    const std::string value = "v" + std::to_string(i);
    const auto set = co_await c.set(key, value);
    const auto got = co_await c.get(key);
    if (set && got && *got == value) ++ok;
    else ++failed;
  };
  ASSERT_NO_FATAL_FAILURE(run_each(n, one, ok, failed));
  // Each went straight to its slot's primary: no redirection after the first topology ...
  EXPECT_EQ(c.cluster()->statistics().moved, 0u);
  // ... and each primary holds exactly the keys whose slots it serves.
  std::map<std::size_t, int> expected;
  const auto owner = owners(cluster());
  for (int i = 0; i < n; ++i) ++expected[owner[hash_slot("route:" + std::to_string(i))]];
  ASSERT_EQ(expected.size(), 3u);
  for (const auto& [index, count] : expected) {
    test::blocking_connection node(cluster().node(index).socket_path());
    EXPECT_EQ(node.call({"EVAL", "return #redis.call('KEYS', 'route:*')", "0"}).integer, count) << "node " << index;
  }
  EXPECT_EQ(total_sent(), 2u * n);
  EXPECT_EQ(c.cluster()->nodes(true).size(), 3u);
  EXPECT_EQ(c.cluster()->nodes(false).size(), 6u);
}

// Three ways to name a key reach the same primary: the typed helpers (`request::key`, no look-up),
// `routed_by`, and a generic command routed by the server's key specifications. A key named wrongly
// costs a MOVED and still gives the right reply.
TEST_F(ClusterClient, NamedKeysAndKeySpecsRouteAlike) {
  constexpr int n = 600;
  int ok = 0, failed = 0;
  auto one = [&](int i) -> detached {
    const std::string key = "named:" + std::to_string(i);
    const std::string value = "v" + std::to_string(i);
    bool good = true;
    switch (i % 4) {
      case 0: good = good && (co_await c.set(key, value)).has_value(); break;
      case 1: good = good && (co_await c.command<std::string>("SET", key, value).routed_by(key)).has_value(); break;
      case 2: good = good && (co_await c.command<std::string>("SET", key, value)).has_value(); break;
      // A compile-time name: the key specs' look-up reads it as any other first argument.
      default: good = good && (co_await c.command<std::string>(resp::lit<"SET">, key, value)).has_value(); break;
    }
    const auto typed = co_await c.get(key);
    const auto generic = co_await c.command<std::optional<std::string>>("GET", key);
    const auto routed = co_await c.command<std::optional<std::string>>("GET", key).routed_by(key);
    good = good && typed && *typed == value && generic && *generic == value && routed && *routed == value;
    if (good) ++ok;
    else ++failed;
  };
  ASSERT_NO_FATAL_FAILURE(run_each(n, one, ok, failed));
  EXPECT_EQ(c.cluster()->statistics().moved, 0u);
  EXPECT_EQ(total_sent(), 4u * n);

  // A key in another shard's slot named in place of the real one: MOVED, then the right value.
  const auto owner = owners(cluster());
  std::string key, wrong;
  for (int i = 0; wrong.empty(); ++i) {
    const std::string k = "named:" + std::to_string(i);
    if (key.empty()) key = k;
    else if (owner[hash_slot(k)] != owner[hash_slot(key)]) wrong = k;
  }
  std::optional<std::string> got;
  auto misnamed = [&]() -> detached {
    auto r = co_await c.command<std::optional<std::string>>("GET", key).routed_by(wrong);
    if (r) got = *r;
    done = true;
  };
  run(misnamed);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, "v0");
  EXPECT_GE(c.cluster()->statistics().moved, 1u);
}

TEST_F(ClusterClient, HashTagsKeepMultiKeyCommandsAndTransactionsOnOneSlot) {
  auto body = [&]() -> detached {
    EXPECT_TRUE(co_await c.command<ignore_t>("SADD", "{user:1}.a", "x", "y"));
    EXPECT_TRUE(co_await c.command<ignore_t>("SADD", "{user:1}.b", "y", "z"));
    const auto inter = co_await c.command<std::vector<std::string>>("SINTER", "{user:1}.a", "{user:1}.b");
    EXPECT_TRUE(inter && *inter == std::vector<std::string>{"y"});
    // Keys in different slots, in a command that cannot be split: refused before it is sent.
    const auto cross = co_await c.command<std::vector<std::string>>("SINTER", "{user:1}.a", "{user:2}.b");
    EXPECT_TRUE(!cross && cross.error().code == errc::cross_slot) << (cross ? "" : cross.error().what());
    transaction t;
    t.add("INCR", "{user:1}.n");
    t.add("INCR", "{user:1}.n");
    t.add("GET", "{user:1}.n");
    const auto r = co_await c.execute(t);
    EXPECT_TRUE(r && r->size() == 3 && (*r)[2].text == "2");
    transaction across;
    across.add("INCR", "{user:1}.n");
    across.add("INCR", "{user:2}.n");
    const auto bad = co_await c.execute(across);
    EXPECT_TRUE(!bad && bad.error().code == errc::cross_slot);
    // Scripts route by their KEYS, and must keep them in one slot.
    const std::vector<std::string> keys = {"{user:1}.n"}, none = {};
    const auto script = co_await c.eval("return redis.call('INCR', KEYS[1])", keys, none);
    EXPECT_TRUE(script && script->integer == 3);
    const std::vector<std::string> two = {"{user:1}.n", "{user:2}.n"};
    const auto split_script = co_await c.eval("return 1", two, none);
    EXPECT_TRUE(!split_script && split_script.error().code == errc::cross_slot);
    done = true;
  };
  run(body);
  EXPECT_EQ(c.cluster()->statistics().moved, 0u);
}

TEST_F(ClusterClient, CrossSlotMultiKeyCommandsAreSplitAndMerged) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    pairs.emplace_back("multi:" + std::to_string(i), "value" + std::to_string(i));
    keys.push_back(pairs.back().first);
  }
  keys.push_back("multi:missing");
  std::set<std::uint16_t> slots;
  for (const auto& k : keys) slots.insert(hash_slot(k));
  ASSERT_GT(slots.size(), 50u);
  auto body = [&]() -> detached {
    EXPECT_TRUE(co_await c.mset(pairs));
    const auto values = co_await c.mget(keys);
    EXPECT_TRUE(values.has_value());
    if (values) {
      EXPECT_EQ(values->size(), 101u);
      for (std::size_t i = 0; i < 100 && i < values->size(); ++i) EXPECT_EQ((*values)[i], pairs[i].second) << i;
      if (values->size() == 101) {
        EXPECT_FALSE((*values)[100].has_value());
      }
    }
    EXPECT_EQ(*co_await c.command<std::int64_t>("EXISTS", keys), 100);
    EXPECT_EQ(*co_await c.command<std::int64_t>("TOUCH", keys), 100);
    const std::vector<std::string> half(keys.begin(), keys.begin() + 50);
    EXPECT_EQ(*co_await c.command<std::int64_t>("UNLINK", half), 50);
    EXPECT_EQ(*co_await c.command<std::int64_t>("DEL", keys), 50);
    EXPECT_EQ(*co_await c.command<std::int64_t>("EXISTS", keys), 0);
    // MSETNX cannot be split and stay atomic: refused.
    const auto msetnx = co_await c.command<std::int64_t>("MSETNX", "multi:a", "1", "multi:b", "2");
    EXPECT_TRUE(hash_slot("multi:a") == hash_slot("multi:b") || (!msetnx && msetnx.error().code == errc::cross_slot));
    done = true;
  };
  run(body);
  EXPECT_GE(c.cluster()->statistics().splits, 6u);
}

TEST_F(ClusterClient, PipelinesAreSplitPerNodeAndRepliesComeBackInOrder) {
  pipeline p;
  for (int i = 0; i < 300; ++i) {
    const std::string key = "pipe:" + std::to_string(i);
    p.add("SET", key, std::to_string(i));
    p.add("INCR", key);
    p.add("GET", key);
  }
  p.add("MGET", "pipe:1", "pipe:2", "pipe:3");
  auto body = [&]() -> detached {
    const auto r = co_await c.execute(p);
    EXPECT_TRUE(r.has_value());
    if (r) {
      EXPECT_EQ(r->size(), 901u);
      for (int i = 0; i < 300 && static_cast<std::size_t>(3 * i + 2) < r->size(); ++i) {
        EXPECT_EQ((*r)[3 * i].text, "OK");
        EXPECT_EQ((*r)[3 * i + 1].integer, i + 1);
        EXPECT_EQ((*r)[3 * i + 2].text, std::to_string(i + 1));
      }
      if (r->size() == 901) {
        const auto& m = (*r)[900].elements;
        EXPECT_TRUE(m.size() == 3 && m[0].text == "2" && m[1].text == "3" && m[2].text == "4");
      }
    }
    done = true;
  };
  run(body);
}

// A pipeline that holds a MULTI ... EXEC after other commands runs the transaction, as on one server
// (where a pipeline's bytes are written contiguously). It was once split per command: MULTI and
// EXEC went to two different primaries (round-robin for keyless commands), no transaction ran, EXEC
// failed, and the connection that got MULTI stayed inside it, so unrelated commands sent on it later
// were answered QUEUED.
TEST_F(ClusterClient, PipelineHoldingATransactionRunsItAndLeavesNoConnectionInMulti) {
  pipeline p;
  p.add("SET", "{txp}n", "0");
  p.add("MULTI");
  p.add("INCR", "{txp}n");
  p.add("INCR", "{txp}n");
  p.add("EXEC");
  int broken = 0;
  auto body = [&]() -> detached {
    EXPECT_EQ(*co_await c.ping(), "PONG");  // the topology is known
    const auto r = co_await c.execute(p);
    EXPECT_TRUE(r.has_value());
    if (r && r->size() == 5) {
      EXPECT_EQ((*r)[1].text, "OK");
      EXPECT_EQ((*r)[2].text, "QUEUED");
      EXPECT_EQ((*r)[3].text, "QUEUED");
      EXPECT_FALSE((*r)[4].is_error()) << (*r)[4].text;
      EXPECT_EQ((*r)[4].elements.size(), 2u);
    }
    // No connection may be left inside MULTI: plain commands on every primary answer normally.
    for (int i = 0; i < 60; ++i) {
      const std::string key = "after-txp:" + std::to_string(i);
      const auto set = co_await c.set(key, "v");
      const auto got = co_await c.get(key);
      if (!(set && got && *got && **got == "v")) ++broken;
    }
    done = true;
  };
  run(body);
  EXPECT_EQ(broken, 0) << "SET/GET pairs answered wrongly after the pipeline";
}

TEST_F(ClusterClient, KeylessCommandsGoToOneNodeOrToEveryPrimary) {
  std::vector<std::string> nodes;
  auto body = [&]() -> detached {
    EXPECT_EQ(*co_await c.ping(), "PONG");  // also waits for the topology
    nodes = c.cluster()->nodes(false);
    // Every node on request: each answers for itself.
    for (const std::string& n : nodes) {
      const auto info = co_await c.command<std::string>("INFO", "server").at_node(n);
      EXPECT_TRUE(info && info->find("tcp_port:" + n.substr(n.rfind(':') + 1)) != std::string::npos) << n;
    }
    // SCRIPT LOAD goes to every primary, so EVALSHA works wherever the keys live.
    const auto sha = co_await c.script_load("return redis.call('GET', KEYS[1])");
    EXPECT_TRUE(sha.has_value());
    for (int i = 0; i < 30 && sha; ++i) {
      const std::vector<std::string> keys = {"script:" + std::to_string(i)}, none = {};
      const auto r = co_await c.evalsha(*sha, keys, none);
      EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().what());
    }
    const auto bad_node = co_await c.ping().at_node("nonsense");
    EXPECT_TRUE(!bad_node && bad_node.error().code == resp::errc::server_error);
    done = true;
  };
  run(body);
  EXPECT_EQ(nodes.size(), 6u);
  // FLUSHALL too (last: it empties every primary).
  auto flush = [&]() -> detached {
    EXPECT_TRUE(co_await c.set("flush:a", "1"));
    EXPECT_TRUE(co_await c.set("flush:b", "1"));
    EXPECT_TRUE(co_await c.command<ignore_t>("FLUSHALL"));
    done = true;
  };
  run(flush);
  for (std::size_t i = 0; i < cluster().size(); ++i) {
    test::blocking_connection n(cluster().node(i).socket_path());
    const resp::value role = n.call({"ROLE"});
    if (!role.elements.empty() && role.elements[0].text == "master") {
      EXPECT_EQ(n.call({"DBSIZE"}).integer, 0) << i;
    }
  }
}

TEST_F(ClusterClient, ReplicaReadsWhenAsked) {
  options o = cluster_options_for(cluster(), 1);
  o.cluster.reads = read_from::prefer_replica;
  client reader(loop, o);
  auto write = [&]() -> detached {
    EXPECT_TRUE(co_await c.set("replica:k", "v"));
    done = true;
  };
  run(write);
  // Replication is asynchronous: read from the replica until the write shows (a loaded CI is slow).
  std::optional<std::string> got;
  auto read = [&]() -> detached {
    const auto r = co_await reader.get("replica:k");
    EXPECT_TRUE(r.has_value());
    if (r) got = *r;
    done = true;
  };
  for (int attempt = 0; attempt < 100 && got != std::optional<std::string>("v"); ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(50ms);
    run(read);
  }
  EXPECT_EQ(got, std::optional<std::string>("v"));
  auto body = [&]() -> detached {
    EXPECT_TRUE(co_await reader.set("replica:k", "w"));  // writes still go to the primary
    done = true;
  };
  run(body);
  // The GET went to a replica, the SET to a primary.
  std::uint64_t to_replicas = 0, to_primaries = 0;
  for (const auto& l : reader.cluster()->load()) (l.primary ? to_primaries : to_replicas) += l.sent;
  EXPECT_GE(to_replicas, 1u);
  EXPECT_GE(to_primaries, 1u);
}

TEST_F(ClusterClient, FollowsMovedAfterASlotMoved) {
  const std::string key = "moved:key";
  const std::uint16_t slot = hash_slot(key);
  warm(key, "before");  // the client now knows the old owner
  const std::size_t from = owner_of(cluster(), slot);
  const std::size_t to = (from + 1) % 3;  // another primary (the first three nodes are the primaries)
  cluster().migrate_slot(slot, from, to);
  auto after = [&]() -> detached {
    const auto v = co_await c.get(key);
    EXPECT_TRUE(v && *v == "before");
    EXPECT_TRUE(co_await c.set(key, "after"));
    done = true;
  };
  run(after);
  EXPECT_GE(c.cluster()->statistics().moved, 1u);
  test::blocking_connection owner(cluster().node(to).socket_path());
  EXPECT_EQ(owner.call({"GET", key}).text, "after");
}

// A transaction whose queued command is answered MOVED is refused (EXECABORT) with nothing run: the
// router learns the slot's new owner and sends the transaction there, whole, so the caller's first
// attempt commits. (A batch's MOVED was once not news to the router: after a slot moved, every
// transaction on it failed until an unrelated MOVED or the periodic refresh; then the caller's
// second attempt succeeded; now the router retries it.)
TEST_F(ClusterClient, TransactionsFollowASlotThatMoved) {
  const std::string key = "{txmoved}n";
  const std::uint16_t slot = hash_slot(key);
  warm(key, "0");  // the client now knows the old owner
  const std::size_t from = owner_of(cluster(), slot);
  cluster().migrate_slot(slot, from, (from + 1) % 3);
  int ok = 0, attempts = 0;
  std::string last;
  for (; attempts < 10 && ok == 0; ++attempts) {
    auto once = [&]() -> detached {
      transaction t;
      t.add("INCR", key);
      const auto r = co_await c.execute(t);
      if (r) ++ok;
      else last = r.error().what();
      done = true;
    };
    run(once);
    std::this_thread::sleep_for(200ms);  // more than min_refresh_gap: a refresh asked for would have run
    loop.poll();
  }
  EXPECT_EQ(ok, 1) << "10 transactions over 2 s all failed; the last: " << last;
  EXPECT_EQ(attempts, 1) << last;
  EXPECT_GE(c.cluster()->statistics().moved, 1u);
}

// A transaction on a key already moved to the importing node of a slot still being migrated: the
// source answers its queued command ASK and EXEC EXECABORT. Nothing ran, so the router sends it
// again, whole, to the importing node behind ASKING (which lasts through MULTI), where it commits.
// Before, the caller got EXECABORT on every attempt until the migration ended.
TEST_F(ClusterClient, TransactionsFollowAskWhileTheirSlotMigrates) {
  const std::string key = "{txask}n";
  const std::uint16_t slot = hash_slot(key);
  warm(key, "41");  // the client knows the source as the slot's owner
  const std::size_t from = owner_of(cluster(), slot), to = (from + 1) % 3;
  int transactions = 0;
  std::string got, error;
  cluster().migrate_slot(slot, from, to, [&] {
    // The key is on the importing node now; the slot is still the source's (MIGRATING).
    auto once = [&]() -> detached {
      transaction t;
      t.add("INCR", key);
      t.add("GET", key);
      const auto r = co_await c.execute(t);
      if (r && r->size() == 2) got = (*r)[1].text;
      else if (!r) error = r.error().what();
      done = true;
    };
    run(once);
    ++transactions;
  });
  ASSERT_EQ(transactions, 1);
  EXPECT_EQ(got, "42") << error;
  EXPECT_GE(c.cluster()->statistics().ask, 1u);
  test::blocking_connection owner(cluster().node(to).socket_path());
  EXPECT_EQ(owner.call({"GET", key}).text, "42");
}

// Puts `slot` mid-migration (IMPORTING on `to`, MIGRATING on `from`) without moving a key; and
// undoes it (the keys named removed from both nodes, both sides STABLE).
void begin_migration(test::redis_cluster& cl, std::uint16_t slot, std::size_t from, std::size_t to) {
  const std::string s = std::to_string(slot);
  test::blocking_connection src(cl.node(from).socket_path()), dst(cl.node(to).socket_path());
  dst.call({"CLUSTER", "SETSLOT", s, "IMPORTING", cl.node_id(from)});
  src.call({"CLUSTER", "SETSLOT", s, "MIGRATING", cl.node_id(to)});
}
void end_migration(test::redis_cluster& cl, std::uint16_t slot, std::size_t from, std::size_t to,
                   const std::vector<std::string>& keys) {
  const std::string s = std::to_string(slot);
  test::blocking_connection src(cl.node(from).socket_path()), dst(cl.node(to).socket_path());
  for (const auto& k : keys) {
    dst.call({"ASKING"});
    dst.call({"DEL", k});
    src.call({"DEL", k});
  }
  dst.call({"CLUSTER", "SETSLOT", s, "STABLE"});
  src.call({"CLUSTER", "SETSLOT", s, "STABLE"});
}

// A pipeline holding two transactions, the first run by the source and the second refused (ASK,
// EXECABORT): resending the batch would run the first again (a review saw it run 17 times, on both
// nodes, as ASKING lasts only to the first EXEC). Only a batch with one MULTI, first, and one EXEC,
// last, is resent; this one's replies reach the caller as the server sent them.
TEST_F(ClusterClient, ABatchWhoseFirstTransactionRanIsNotSentAgain) {
  const std::string a = "{txtwice}a", b = "{txtwice}b";
  const std::uint16_t slot = hash_slot(a);
  warm(a, "10");
  const std::size_t from = owner_of(cluster(), slot), to = (from + 1) % 3;
  begin_migration(cluster(), slot, from, to);
  std::optional<result<std::vector<resp::value>>> got;
  auto once = [&]() -> detached {
    pipeline p;
    p.add("MULTI").add("INCR", a).add("EXEC");
    p.add("MULTI").add("SET", b, "x").add("EXEC");
    got.emplace(co_await c.execute(p));
    done = true;
  };
  run(once);
  test::blocking_connection src(cluster().node(from).socket_path());
  const std::string src_a = src.call({"GET", a}).text;
  test::blocking_connection dst(cluster().node(to).socket_path());
  dst.call({"ASKING"});
  const resp::value dst_a = dst.call({"GET", a});
  end_migration(cluster(), slot, from, to, {a, b});
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(src_a, "11") << "the first transaction ran more than once on the source";
  EXPECT_TRUE(dst_a.is_null()) << "and on the importing node: " << dst_a.text;
}

// A session WATCHes a key, another client changes it, the slot moves: the old owner refuses the
// session's transaction (MOVED, EXECABORT), and it must stay refused. Resent to the new owner,
// where no WATCH exists, it committed over the other client's write (a review's find).
TEST_F(ClusterClient, AWatchedTransactionIsNotSentWhereItsWatchIsNot) {
  const std::string key = "{txwatch}k";
  const std::uint16_t slot = hash_slot(key);
  warm(key, "0");
  const std::size_t from = owner_of(cluster(), slot), to = (from + 1) % 3;
  auto session = c.open_session();
  auto watch = [&]() -> detached {
    const auto w = co_await session->command("WATCH", key);
    EXPECT_TRUE(w && !w->is_error());
    done = true;
  };
  run(watch);
  {
    test::blocking_connection src(cluster().node(from).socket_path());
    EXPECT_EQ(src.call({"SET", key, "theirs"}).text, "OK");  // breaks the WATCH
  }
  cluster().migrate_slot(slot, from, to);
  std::optional<result<std::vector<resp::value>>> got;
  auto once = [&]() -> detached {
    transaction t;
    t.add("SET", key, "mine");
    got.emplace(co_await session->execute(t));
    done = true;
  };
  run(once);
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(*got) << "a transaction whose WATCHed key changed committed";
  test::blocking_connection owner(cluster().node(to).socket_path());
  EXPECT_EQ(owner.call({"GET", key}).text, "theirs");
}

TEST_F(ClusterClient, ASlotMigratedUnderLoadLosesNothing) {
  // 200 counters in one slot, incremented without pause while the slot moves key by key.
  constexpr int counters = 200;
  const std::uint16_t slot = hash_slot("{migrating}");
  auto setup = [&]() -> detached {
    for (int i = 0; i < counters; ++i) EXPECT_TRUE(co_await c.set("{migrating}:" + std::to_string(i), "0"));
    done = true;
  };
  run(setup);
  const std::size_t from = owner_of(cluster(), slot);
  const std::size_t to = (from + 2) % 3;
  std::atomic<bool> migrated{false};
  std::vector<std::int64_t> expected(counters, 0);
  std::int64_t ok = 0, failed = 0;
  bool stop = false;
  int workers = 0;
  auto worker = [&](int w) -> detached {
    ++workers;
    for (int i = w; !stop; i = (i + 7) % counters) {
      const auto r = co_await c.incr("{migrating}:" + std::to_string(i));
      if (r) ++ok, ++expected[static_cast<std::size_t>(i)];
      else ++failed, ADD_FAILURE() << r.error().what();
    }
    --workers;
  };
  std::thread mover([&] {
    cluster().migrate_slot(slot, from, to, [] { std::this_thread::sleep_for(2ms); });
    migrated = true;
  });
  for (int w = 0; w < 16; ++w) worker(w);
  const bool finished = run_until(loop, [&] { return migrated.load(); }, 60s);
  mover.join();
  ASSERT_TRUE(finished);
  // Keep going a little on the new owner, then stop.
  const auto more = ok + 2000;
  EXPECT_TRUE(run_until(loop, [&] { return ok >= more; }, 30s));
  stop = true;
  ASSERT_TRUE(run_until(loop, [&] { return workers == 0; }));
  EXPECT_EQ(failed, 0);
  const auto& stats = c.cluster()->statistics();
  EXPECT_GE(stats.ask + stats.moved, 1u);
  test::blocking_connection owner(cluster().node(to).socket_path());
  for (int i = 0; i < counters; ++i) {
    EXPECT_EQ(owner.call({"GET", "{migrating}:" + std::to_string(i)}).text, std::to_string(expected[static_cast<std::size_t>(i)])) << i;
  }
  std::cout << "[ migrate ] " << ok << " increments, " << stats.ask << " ASK, " << stats.moved << " MOVED\n";
}

TEST_F(ClusterClient, ClusterDownWindowIsRiddenOutWithBackoff) {
  const std::string key = "down:key";
  const std::uint16_t slot = hash_slot(key);
  warm(key, "0");
  const std::size_t owner = owner_of(cluster(), slot);
  test::blocking_connection admin(cluster().node(owner).socket_path());
  ASSERT_EQ(admin.call({"CLUSTER", "DELSLOTS", std::to_string(slot)}).text, "OK");
  // The owner no longer serves the slot: CLUSTERDOWN until it takes it back, 300 ms later.
  std::thread restore([&] {
    std::this_thread::sleep_for(300ms);
    test::blocking_connection again(cluster().node(owner).socket_path());
    again.call({"CLUSTER", "ADDSLOTS", std::to_string(slot)});
  });
  int ok = 0, failed = 0;
  auto one = [&]() -> detached {
    const auto r = co_await c.incr(key);
    if (r) ++ok;
    else ++failed, ADD_FAILURE() << r.error().what();
  };
  for (int i = 0; i < 50; ++i) one();
  const bool finished = run_until(loop, [&] { return ok + failed == 50; }, 30s);
  restore.join();
  ASSERT_TRUE(finished);
  EXPECT_EQ(ok, 50);
  EXPECT_GE(c.cluster()->statistics().retries, 1u);
  test::blocking_connection check(cluster().node(owner).socket_path());
  EXPECT_EQ(check.call({"GET", key}).text, "50");
}

TEST_F(ClusterClient, LargeValuesAreRoutedWithoutCopiesOfTheirPayload) {
  // 1 MiB values are referenced by the writer, not copied: the router finds the key among iovecs.
  const std::string big(1 << 20, 'x');
  const std::vector<std::pair<std::string, std::string>> pairs = {{"big:a", big}, {"big:b", big + "y"}};
  const std::vector<std::string> keys = {"big:a", "big:b"};
  auto body = [&]() -> detached {
    EXPECT_TRUE(co_await c.set("big:1", big));
    const auto got = co_await c.get("big:1");
    EXPECT_TRUE(got && *got == big);
    EXPECT_TRUE(co_await c.mset(pairs));
    const auto both = co_await c.mget(keys);
    EXPECT_TRUE(both && both->size() == 2 && (*both)[0] == big && (*both)[1] == big + "y");
    done = true;
  };
  run(body);
  EXPECT_EQ(c.cluster()->statistics().moved, 0u);
}

#ifdef REDRING_CLUSTER_EXAMPLE
TEST_F(ClusterClient, TheExampleRunsAgainstTheCluster) {
  std::string out;
  EXPECT_EQ(test::run_program(std::string(REDRING_CLUSTER_EXAMPLE) + " redis://127.0.0.1:" + std::to_string(cluster().port(2)), out), 0)
      << out;
  EXPECT_NE(out.find("MGET across slots: 1 2 3 4 (nil)"), std::string::npos) << out;
  EXPECT_NE(out.find("HINCRBY routed by its key: "), std::string::npos) << out;
  EXPECT_NE(out.find("pipeline: 6 replies in order"), std::string::npos) << out;
  EXPECT_NE(out.find("transaction on one slot: 2 replies"), std::string::npos) << out;
  std::size_t pongs = 0;
  for (std::size_t at = 0; (at = out.find(": PONG", at)) != std::string::npos; ++at) ++pongs;
  EXPECT_EQ(pongs, 6u) << out;
}
#endif

TEST_F(ClusterClient, ScanWalksEveryPrimary) {
  client fresh(loop, cluster_options_for(cluster(), 2));  // the first page arrives before the topology
  std::set<std::string> seen;
  int pages = 0;
  auto body = [&]() -> detached {
    for (int i = 0; i < 500; ++i) EXPECT_TRUE(co_await c.set("scan:" + std::to_string(i), "v"));
    scanner s = fresh.scan({.match = "scan:*", .count = 50});
    while (!s.done() && pages < 1000) {
      const auto page = co_await s.next();
      EXPECT_TRUE(page.has_value());
      if (!page) break;
      seen.insert(page->begin(), page->end());
      ++pages;
    }
    done = true;
  };
  run(body);
  EXPECT_EQ(seen.size(), 500u);  // every key of every primary, and nothing else
  for (const auto& k : seen) EXPECT_EQ(k.rfind("scan:", 0), 0u) << k;
  EXPECT_GE(pages, 3);  // at least one page per primary
}

// A blocking command gets a connection of the node's own, with the rules of a single server's: no
// health check (a PING queued behind BLPOP times out and drops the connection and the BLPOP with it),
// and a connection whose blocking command timed out on the client is not reused (the server still
// blocks it: the next command would wait behind it).
TEST_F(ClusterClient, BlockingConnectionsFollowTheSingleServerRules) {
  net::loop l;
  options o = cluster_options_for(cluster());
  o.health_check_interval = 100ms;
  client bc(l, o);
  std::optional<result<resp::value>> slow, first, second;
  auto slow_pop = [&]() -> detached { slow.emplace(co_await bc.command("BLPOP", "{bq}slow", "1")); };
  slow_pop();
  ASSERT_TRUE(run_until(l, [&] { return slow.has_value(); }, 10s));
  ASSERT_TRUE(*slow) << slow->error().what();  // observed: connection_lost (the health PING's timeout)
  EXPECT_TRUE((*slow)->is_null());
  auto blocker1 = [&]() -> detached { first.emplace(co_await bc.command("BLPOP", "{bq}never", "0").with_timeout(100ms)); };
  blocker1();
  ASSERT_TRUE(run_until(l, [&] { return first.has_value(); }, 5s));
  ASSERT_FALSE(*first);
  EXPECT_EQ(first->error().code, errc::timeout);
  auto blocker2 = [&]() -> detached { second.emplace(co_await bc.command("BLPOP", "{bq}jobs", "0").with_timeout(2000ms)); };
  auto pusher = [&]() -> detached { (void)co_await bc.rpush("{bq}jobs", "job"); };
  blocker2();
  pusher();
  ASSERT_TRUE(run_until(l, [&] { return second.has_value(); }, 5s));
  ASSERT_TRUE(*second) << second->error().what();  // observed: timeout (behind BLPOP {bq}never 0)
  ASSERT_EQ((*second)->elements.size(), 2u);
  EXPECT_EQ((*second)->elements[1].text, "job");
  bc.close();
  // Unblock the server side of the first BLPOP, so the node does not keep the client around.
  test::blocking_connection admin(cluster().node(owner_of(cluster(), hash_slot("{bq}never"))).socket_path());
  admin.call({"RPUSH", "{bq}never", "x"});
  admin.call({"DEL", "{bq}never"});
}

// MSET with an odd number of arguments over keys in two slots: its last key has no value. It goes
// to a server, which refuses it, instead of being split (the split read past the arguments).
TEST_F(ClusterClient, MsetWithAMissingValueIsTheServersToRefuse) {
  ASSERT_NE(hash_slot("odd:a"), hash_slot("odd:b"));
  std::optional<result<resp::value>> r;
  std::uint64_t splits_before = 0;
  auto body = [&]() -> detached {
    co_await c.command("PING");  // the topology is known
    splits_before = c.cluster()->statistics().splits;
    r.emplace(co_await c.command("MSET", "odd:a", "1", "odd:b"));
    done = true;
  };
  run(body);
  ASSERT_TRUE(*r) << r->error().what();
  // The server refuses it: CROSSSLOT here (its slot check comes before MSET's argument count).
  ASSERT_TRUE((*r)->is_error()) << (*r)->text;
  EXPECT_TRUE((*r)->text.starts_with("CROSSSLOT") || (*r)->text.find("wrong number") != std::string::npos) << (*r)->text;
  EXPECT_EQ(c.cluster()->statistics().splits, splits_before);
}

// A client closed by a completion while the router is routing (here: the commands that waited for
// the topology) routes nothing after, opens no connection, and leaves no timer armed: the router
// is destroyed with the client, and the loop runs on.
TEST_F(ClusterClient, ClosedFromACompletionRoutesNothingMore) {
  ASSERT_NE(hash_slot("a"), hash_slot("b"));
  net::loop l;
  options o = cluster_options_for(cluster());
  o.cluster.refresh_interval = 20ms;
  auto cc = std::make_unique<client>(l, o);
  std::optional<result<resp::value>> first, second;
  // Both wait for the topology; the first fails as it is routed (SUNION across slots cannot be
  // split), and its callback closes the client before the second is routed.
  cc->command_callback(
      [&](result<resp::value> r) {
        first.emplace(std::move(r));
        cc->close();
      },
      "SUNION", "a", "b");
  cc->command_callback([&](result<resp::value> r) { second.emplace(std::move(r)); }, "GET", "after-close");
  ASSERT_TRUE(run_until(l, [&] { return first.has_value() && second.has_value(); }, 10s));
  ASSERT_FALSE(*first);
  EXPECT_EQ(first->error().code, errc::cross_slot);
  ASSERT_FALSE(*second) << "routed after close";
  EXPECT_EQ(second->error().code, errc::shutting_down);
  cc.reset();
  // Nothing is left on the loop: no timer armed (one would fire into the destroyed router), no
  // operation in flight or queued. Then turns past the refresh interval, for ASan to see.
  test::run_for(l, 100ms);
  // Once the connections' last completions are in, the loop has nothing left: no timer (poll_timeout
  // would be finite for ever), no work.
  EXPECT_TRUE(run_until(l, [&] { return l.poll_timeout() == std::chrono::milliseconds::max(); }, 2s))
      << "still " << l.poll_timeout().count() << " ms";
}

// A seed that refuses the handshake (an unknown ACL user; a database other than 0, which cluster
// mode refuses) fails the commands with that reason, fast, and is asked again at a gentle pace (it
// was asked again at once, from inside the failure, until the stack overflowed).
TEST_F(ClusterClient, ARefusedHandshakeIsAClearErrorNotARetryStorm) {
  struct refusal {
    const char* what;
    std::function<void(options&)> set;
    errc expected;
  };
  const refusal refusals[] = {
      {"unknown user", [](options& o) { o.user = "nosuchuser", o.password = "nosuchpassword"; }, errc::auth_failed},
      {"database 1", [](options& o) { o.database = 1; }, errc::handshake_failed},
  };
  for (const refusal& f : refusals) {
    SCOPED_TRACE(f.what);
    net::loop l;
    options o = cluster_options_for(cluster());
    f.set(o);
    client rc(l, o);
    std::optional<result<resp::value>> r1, r2;
    rc.command_callback([&](result<resp::value> r) { r1.emplace(std::move(r)); }, "GET", "k");
    ASSERT_TRUE(run_until(l, [&] { return r1.has_value(); }, 10s));
    ASSERT_FALSE(*r1);
    EXPECT_EQ(r1->error().code, f.expected) << r1->error().what();
    // Later commands fail fast with the same reason.
    rc.command_callback([&](result<resp::value> r) { r2.emplace(std::move(r)); }, "GET", "k");
    ASSERT_TRUE(run_until(l, [&] { return r2.has_value(); }, 5s));
    ASSERT_FALSE(*r2);
    EXPECT_EQ(r2->error().code, f.expected);
    // Asked again by the refresh timer (every min_refresh_gap, 100 ms), not in a loop.
    const auto before = rc.cluster()->statistics().refreshes;
    test::run_for(l, 300ms);
    EXPECT_LE(rc.cluster()->statistics().refreshes - before, 5u);
  }
}

// A command addressed to a node outside the topology whose connection is still in its handshake
// when a refresh applies a topology: the node is kept (it was closed, and the command failed with
// shutting_down though nothing was shutting down). Here the node never answers the handshake (a
// socket that listens and never accepts): the command ends by its own timeout.
TEST_F(ClusterClient, ARefreshDoesNotCloseANodeStillConnecting) {
  const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(silent, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(silent, 4), 0);
  ASSERT_EQ(::getsockname(silent, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  net::loop l;
  options o = cluster_options_for(cluster());
  o.cluster.min_refresh_gap = 0ms;
  client nc(l, o);
  bool pinged = false;
  auto warm_up = [&]() -> detached {
    (void)co_await nc.ping();
    pinged = true;
  };
  warm_up();
  ASSERT_TRUE(run_until(l, [&] { return pinged && nc.cluster()->ready(); }, 10s));
  std::optional<result<resp::value>> r;
  auto addressed = [&]() -> detached { r.emplace(co_await nc.command("PING").at_node(address).with_timeout(500ms)); };
  addressed();
  // The refresh's topology arrives within milliseconds, long before the PING's timeout.
  nc.cluster()->refresh();
  ASSERT_TRUE(run_until(l, [&] { return r.has_value(); }, 10s));
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code, errc::timeout) << r->error().what();  // observed: shutting_down
  ::close(silent);
}

// close() of a cluster client completes the commands waiting for a topology, and a completion may
// destroy the client: close() then stops touching the router, and the router's destructor closes
// its seed before its members go (the seed's bootstrap request was completed after it was freed:
// heap-use-after-free under ASan).
TEST(ClusterClientSetup, AClientDestroyedByACompletionDuringCloseIsLeftAlone) {
  char dir[] = "/tmp/redring-nosrv-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  net::loop loop;
  options o;
  o.unix_path = std::string(dir) + "/nothing.sock";  // nothing listens: the command waits for a topology
  o.cluster.enabled = true;
  auto owner = std::make_unique<client>(loop, o);
  std::optional<std::error_code> got;
  owner->command_callback<ignore_t>(
      [&](result<ignore_t> r) {
        got = r ? std::error_code() : r.error().code;
        owner.reset();
      },
      "GET", "k");
  for (int i = 0; i < 3; ++i) loop.poll();
  ASSERT_FALSE(got.has_value());
  owner->close();
  EXPECT_EQ(owner, nullptr);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, errc::shutting_down);
  for (int i = 0; i < 3; ++i) loop.poll();
  ::rmdir(dir);
}

TEST(ClusterClientSetup, NotAClusterIsAClearError) {
  test::redis_server plain;
  net::loop loop;
  options o;
  o.unix_path = plain.socket_path();
  o.cluster.enabled = true;
  client c(loop, o);
  bool finished = false;
  auto body = [&]() -> detached {
    const auto r = co_await c.get("k");
    EXPECT_TRUE(!r && r.error().code == errc::cluster_topology) << (r ? "a reply" : r.error().what());
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
}

// A cluster node none of whose nodes serves a slot (cluster mode on, slots never assigned): its
// topology has no primary, so SCAN has nothing to walk. The scan ends with one clear error and sends
// nothing more (it once sent PING after PING, each an empty page, and never finished).
TEST(ClusterClientSetup, ScanOfATopologyWithoutPrimariesEndsWithAnError) {
  const int port = test::free_cluster_port();  // not 0: its cluster bus would take port 10000
  test::redis_server lone({"--port", std::to_string(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                           "--cluster-config-file", "nodes.conf"});
  net::loop loop;
  options o;
  o.unix_path = lone.socket_path();
  o.cluster.enabled = true;
  client c(loop, o);
  bool finished = false;
  int pages = 0;
  std::optional<resp::error> failure;
  scanner s = c.scan();
  auto body = [&]() -> detached {
    while (!s.done() && pages < 100) {
      const auto page = co_await s.next();
      ++pages;
      if (!page) {
        failure = page.error();
        break;
      }
      EXPECT_TRUE(page->empty());  // the PING that waits for the topology
    }
    if (s.done()) {
      const auto again = co_await s.next();  // done: an empty page, nothing sent
      EXPECT_TRUE(again.has_value() && again->empty());
    }
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }));
  ASSERT_TRUE(failure.has_value()) << pages << " empty pages and no error";
  EXPECT_EQ(failure->code, errc::cluster_topology) << failure->what();
  EXPECT_NE(failure->what().find("no primary"), std::string::npos) << failure->what();
  EXPECT_TRUE(s.done());
  EXPECT_LE(pages, 2);  // at most one PING while the topology was unknown, then the error
}

// A primary killed under load: its replica is promoted and the commands carry on; every command
// completes exactly once, with its reply or an error that says why.
TEST(ClusterFailover, APrimaryKilledUnderLoad) {
  test::redis_cluster cl(3, 1, 1000);
  net::loop loop;
  options o = cluster_options_for(cl, 1);
  o.command_timeout = 20s;
  client c(loop, o);
  // Keys on every shard; find the ones on the primary we will kill (node 0).
  const std::size_t victim = 0;
  std::vector<std::string> keys, victim_keys;
  const auto owner = owners(cl, 1);
  for (int i = 0; i < 300; ++i) {
    keys.push_back("fo:" + std::to_string(i));
    if (owner[hash_slot(keys.back())] == victim) victim_keys.push_back(keys.back());
  }
  ASSERT_FALSE(victim_keys.empty());
  std::int64_t submitted = 0, completed = 0, ok = 0, lost = 0, other = 0, victim_ok_after = 0, lost_elsewhere = 0;
  bool killed = false, stop = false;
  int workers = 0;
  std::map<std::string, int> error_kinds;
  auto worker = [&](int w) -> detached {
    ++workers;
    for (int i = w; !stop; i = (i + 13) % static_cast<int>(keys.size())) {
      const std::string& key = keys[static_cast<std::size_t>(i)];
      ++submitted;
      const auto r = co_await c.incr(key);
      ++completed;
      if (r) {
        ++ok;
        if (killed && std::find(victim_keys.begin(), victim_keys.end(), key) != victim_keys.end()) ++victim_ok_after;
      } else {
        ++error_kinds[r.error().what()];
        if (r.error().code == errc::connection_lost) {
          ++lost;
          // Only a command in flight to the dead primary may be lost: its key is in the victim's slots.
          if (std::find(victim_keys.begin(), victim_keys.end(), key) == victim_keys.end()) ++lost_elsewhere;
        } else {
          ++other;
        }
      }
    }
    --workers;
  };
  for (int w = 0; w < 32; ++w) worker(w);
  ASSERT_TRUE(run_until(loop, [&] { return ok >= 3000; }, 30s));
  ASSERT_EQ(::kill(cl.node(victim).pid(), SIGKILL), 0);
  killed = true;
  const auto ok_at_kill = ok;
  // Carry on until keys of the dead primary's slots are served again (by its promoted replica).
  EXPECT_TRUE(run_until(loop, [&] { return victim_ok_after >= 200; }, 60s))
      << "victim keys served after the kill: " << victim_ok_after;
  stop = true;
  ASSERT_TRUE(run_until(loop, [&] { return workers == 0; }, 30s));
  EXPECT_EQ(completed, submitted);  // exactly once: none lost, none twice
  EXPECT_GT(ok, ok_at_kill);
  EXPECT_EQ(other, 0);  // only commands sent to the dead node may fail, and they say so
  EXPECT_EQ(lost_elsewhere, 0);
  for (const auto& [what, count] : error_kinds) std::cout << "[ failover ] " << count << " x " << what << "\n";
  std::cout << "[ failover ] " << ok << " ok, " << lost << " connection_lost, reroutes "
            << c.cluster()->statistics().rerouted << ", refreshes " << c.cluster()->statistics().refreshes << "\n";
}

// Nodes that announce host names (cluster-announce-hostname, cluster-preferred-endpoint-type
// hostname, Redis 7) are connected to by name, each looked up by the loop's resolver off the loop
// thread: here names no DNS knows, which only the test's lookup maps to the node's port.
std::atomic<int> cluster_lookups{0};
std::error_code node_name_lookup(const std::string& host, std::uint16_t port, std::vector<net::address>& out) {
  ++cluster_lookups;
  if (!host.starts_with("node-") || !host.ends_with(".test")) return net::errc::resolve_failed;
  net::address a;
  if (!net::address::from_numeric("127.0.0.1", port, a)) return net::errc::resolve_failed;
  out.push_back(a);
  return {};
}

TEST(ClusterHostnames, NodesAnnouncedByNameAreLookedUpAndServed) {
  test::redis_cluster cl(3, 0);
  for (std::size_t i = 0; i < cl.size(); ++i) {
    test::blocking_connection admin(cl.node(i).socket_path());
    admin.call({"CONFIG", "SET", "cluster-announce-hostname", "node-" + std::to_string(cl.port(i)) + ".test"});
    admin.call({"CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname"});
  }
  // Gossip carries each node's name to the others: wait until node 0 names every node.
  bool named = false;
  for (int i = 0; i < 200 && !named; ++i) {
    test::blocking_connection admin(cl.node(0).socket_path());
    const resp::value slots = admin.call({"CLUSTER", "SLOTS"});
    named = !slots.elements.empty();
    for (const resp::value& range : slots.elements) {
      for (std::size_t n = 2; n < range.elements.size(); ++n) {
        if (!range.elements[n].elements.empty() && !range.elements[n].elements[0].text.starts_with("node-")) named = false;
      }
    }
    if (!named) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(named) << "the nodes never announced their names";
  net::loop l(net::loop_options{.lookup = &node_name_lookup});
  cluster_lookups = 0;
  client c(l, cluster_options_for(cl, 0));  // the seed by address: only announced names are looked up
  int ok = 0;
  bool done = false;
  auto body = [&]() -> detached {
    for (int i = 0; i < 100; ++i) {
      const std::string key = "named:" + std::to_string(i);
      const auto set = co_await c.command("SET", key, key);
      const auto got = co_await c.get(key);
      if (set && got && *got == key) ++ok;
    }
    done = true;
  };
  body();
  ASSERT_TRUE(run_until(l, [&] { return done; }, 10s));
  EXPECT_EQ(ok, 100) << c.last_error();
  EXPECT_GE(cluster_lookups, 3);  // every primary, by its announced name
  const auto& stats = c.cluster()->statistics();
  EXPECT_EQ(stats.moved, 0u);  // routed by the map, names and all
}

// While a primary is down, the commands queued for it keep their deadline as each refresh routes
// them again (it restarted with every reroute, every 50 ms, so none ever timed out); a blocking
// command queued on the dead primary's blocking connection follows the failover like the others (it
// was never taken off that connection); and the topology is asked of a node that is up, not of the
// dead seed.
TEST(ClusterFailover, CommandsForADeadPrimaryKeepTheirDeadlineAndFollowTheFailover) {
  test::redis_cluster cl(3, 1, 1000);
  net::loop l;
  options o = cluster_options_for(cl, 0);  // the seed is the primary about to die
  client c(l, o);
  const auto owner = owners(cl, 1);
  std::string key, list;
  for (int i = 0; key.empty() || list.empty(); ++i) {
    const std::string k = "dead:" + std::to_string(i);
    if (owner[hash_slot(k)] != 0) continue;
    if (key.empty()) key = k;
    else list = k;
  }
  // Connections to node 0, the main one and a blocking one.
  std::optional<result<resp::value>> warm_set, warm_pop;
  auto warm = [&]() -> detached {
    warm_set.emplace(co_await c.command("SET", key, "v"));
    warm_pop.emplace(co_await c.command("BLPOP", list, "0.01"));
  };
  warm();
  ASSERT_TRUE(run_until(l, [&] { return warm_pop.has_value(); }, 10s));
  ASSERT_TRUE(*warm_set && *warm_pop);
  ASSERT_EQ(::kill(cl.node(0).pid(), SIGKILL), 0);
  // Let the client see both connections drop (else the BLPOP below could be sent on one about to).
  test::run_for(l, 200ms);
  // No failover before cluster-node-timeout (1 s) has passed: this GET must time out, not wait.
  std::optional<result<resp::value>> get, pop;
  auto getter = [&]() -> detached { get.emplace(co_await c.command("GET", key).with_timeout(300ms)); };
  getter();
  auto popper = [&]() -> detached { pop.emplace(co_await c.command("BLPOP", list, "10").with_timeout(30s)); };
  popper();
  ASSERT_TRUE(run_until(l, [&] { return get.has_value(); }, 10s));
  ASSERT_FALSE(*get) << "served by " << (get->has_value() ? "the promoted replica: the timeout restarted" : "?");
  EXPECT_EQ(get->error().code, errc::timeout) << get->error().what();
  // After the failover, the key is served again and the blocking command with it.
  bool served = false;
  auto until_served = [&]() -> detached {
    for (int attempt = 0; attempt < 60; ++attempt) {
      if (co_await c.command("SET", key, "after").with_timeout(1000ms)) break;
    }
    (void)co_await c.command("RPUSH", list, "job");
    served = true;
  };
  until_served();
  ASSERT_TRUE(run_until(l, [&] { return served; }, 30s));
  ASSERT_TRUE(run_until(l, [&] { return pop.has_value(); }, 15s));
  ASSERT_TRUE(*pop) << pop->error().what();
  ASSERT_EQ((*pop)->elements.size(), 2u);
  EXPECT_EQ((*pop)->elements[1].text, "job");
  EXPECT_GE(c.cluster()->statistics().rerouted, 2u);
}

}  // namespace
}  // namespace redring::client
