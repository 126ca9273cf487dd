// SPDX-License-Identifier: MIT
// client::cluster_subscriber against a real cluster (3 primaries + 3 replicas on loopback ports):
// sharded channels on every shard beside classic ones, a resharded slot, a stale topology's MOVED
// followed, a primary killed and its replica promoted, and the example.
#include "client/cluster_subscriber.hpp"

#include "client/hash_slot.hpp"

#include "tests/client/pubsub_recorder.hpp"
#include "tests/support/fake_server.hpp"
#include "tests/support/redis_cluster.hpp"
#include "tests/support/run_program.hpp"
#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <stdio.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace redring::client {
namespace {

using namespace std::chrono_literals;
using test::run_until;

using test_pubsub::recorded;
using test_pubsub::recorder;

options seed_options(test::redis_cluster& cl, std::size_t seed) {
  options o;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(cl.port(seed));
  o.reconnect.initial_delay = 20ms;
  o.reconnect.max_delay = 200ms;
  return o;
}

std::string address(test::redis_cluster& cl, std::size_t i) { return "127.0.0.1:" + std::to_string(cl.port(i)); }

// SPUBLISH on the primary serving the channel's slot; the receivers it reports.
std::int64_t spublish(test::redis_cluster& cl, std::string_view channel, std::string_view message) {
  test::blocking_connection c(cl.node(cl.owner_of_key(channel)).socket_path());
  const resp::value r = c.call({"SPUBLISH", channel, message});
  if (r.is_error()) throw std::runtime_error("SPUBLISH: " + r.text);
  return r.integer;
}

// A channel name (prefix + a number) whose slot node `primary` serves.
std::string channel_on(test::redis_cluster& cl, std::size_t primary, std::string_view prefix) {
  for (int i = 0;; ++i) {
    std::string name = std::string(prefix) + std::to_string(i);
    if (cl.owner_of_key(name) == primary) return name;
  }
}

class ClusterSubscriber : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = std::make_unique<test::redis_cluster>(3, 1); }
  static void TearDownTestSuite() { cluster_.reset(); }
  static test::redis_cluster& cluster() { return *cluster_; }
  net::loop loop;

 private:
  static inline std::unique_ptr<test::redis_cluster> cluster_;
};

TEST_F(ClusterSubscriber, ShardedChannelsOnEveryShardBesideClassicOnes) {
  auto& cl = cluster();
  const std::vector<std::string> sharded = {channel_on(cl, 0, "every:"), channel_on(cl, 1, "every:"), channel_on(cl, 2, "every:")};
  cluster_subscriber sub(loop, seed_options(cl, 4));  // a replica as the seed
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({sharded[0], sharded[1], sharded[2]});
  sub.subscribe({"news"});
  sub.psubscribe({"alerts.*"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] {
    return rec.count(pubsub_kind::ssubscribe) == 3 && rec.count(pubsub_kind::subscribe) == 1 && rec.count(pubsub_kind::psubscribe) == 1;
  }, 10s)) << sub.last_error();
  EXPECT_TRUE(sub.ready());
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(sub.node_of(sharded[i]), address(cl, i)) << sharded[i];
  EXPECT_EQ(sub.nodes().size(), 3u);  // one subscriber per primary; the classic sets share one of them
  EXPECT_NE(sub.node_subscriber(sub.classic_node()), nullptr);
  rec.events.clear();

  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(spublish(cl, sharded[i], "to " + sharded[i]), 1);
  test::blocking_connection elsewhere(cl.node(5).socket_path());  // classic messages cross the cluster
  elsewhere.call({"PUBLISH", "news", "n"});
  elsewhere.call({"PUBLISH", "alerts.disk", "a"});
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 5; }, 10s));
  std::multiset<std::string> got;
  for (const recorded& r : rec.events) got.insert(std::to_string(static_cast<int>(r.kind)) + " " + r.channel + " " + r.payload);
  const auto text = [](pubsub_kind k, const std::string& c, const std::string& p) { return std::to_string(static_cast<int>(k)) + " " + c + " " + p; };
  const std::multiset<std::string> want = {text(pubsub_kind::smessage, sharded[0], "to " + sharded[0]),
                                           text(pubsub_kind::smessage, sharded[1], "to " + sharded[1]),
                                           text(pubsub_kind::smessage, sharded[2], "to " + sharded[2]),
                                           text(pubsub_kind::message, "news", "n"), text(pubsub_kind::pmessage, "alerts.disk", "a")};
  EXPECT_EQ(got, want);

  sub.sunsubscribe({sharded[1]});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::sunsubscribe, sharded[1]) == 1; }, 5s));
  EXPECT_EQ(spublish(cl, sharded[1], "after"), 0);
  EXPECT_EQ(sub.node_of(sharded[1]), "");
  EXPECT_EQ(sub.shard_channels(), (std::set<std::string, std::less<>>{sharded[0], sharded[2]}));
  EXPECT_EQ(sub.moves(), 0u);
}

// A slot resharded under a subscribed channel: the old primary ends the subscription itself
// (slot_moved), and the channel is subscribed again on the new one.
TEST_F(ClusterSubscriber, FollowsAReshardedSlot) {
  auto& cl = cluster();
  const std::string channel = channel_on(cl, 0, "reshard:");
  cluster_subscriber sub(loop, seed_options(cl, 0));
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({channel});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe) == 1; }, 10s)) << sub.last_error();
  cl.migrate_slot(hash_slot(channel), 0, 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.node_of(channel) == address(cl, 1) && rec.count(pubsub_kind::ssubscribe) == 2; }, 10s))
      << sub.last_error();
  EXPECT_EQ(rec.count(pubsub_kind::slot_moved, channel), 1u);
  EXPECT_EQ(sub.moves(), 1u);
  EXPECT_EQ(spublish(cl, channel, "on the new owner"), 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 1; }, 5s));
  EXPECT_EQ(rec.events.back(), (recorded{pubsub_kind::smessage, channel, "", "on the new owner", 0}));
  // Node 0 holds nothing now: its subscriber is closed after the topology that moved the channel.
  ASSERT_TRUE(run_until(loop, [&] { return sub.node_subscriber(address(cl, 0)) == nullptr; }, 5s));
  cl.migrate_slot(hash_slot(channel), 1, 0);  // as it was, for the other tests
}

// A channel asked for while the subscriber's topology is stale (its slot moved since, and no refresh
// is due): the old owner's MOVED is followed, not delivered.
TEST_F(ClusterSubscriber, AStaleTopologysRedirectionIsFollowed) {
  auto& cl = cluster();
  const std::string first = channel_on(cl, 2, "stale-a:");
  const std::string later = channel_on(cl, 2, "stale-b:");
  options o = seed_options(cl, 2);
  o.cluster.refresh_interval = 0ms;
  cluster_subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({first});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe) == 1; }, 10s)) << sub.last_error();
  const std::uint64_t refreshes = sub.refreshes();
  cl.migrate_slot(hash_slot(later), 2, 0);
  sub.ssubscribe({later});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe, later) == 1; }, 10s)) << sub.last_error();
  EXPECT_EQ(sub.node_of(later), address(cl, 0));
  EXPECT_EQ(rec.count(pubsub_kind::refused), 0u);
  EXPECT_GT(sub.refreshes(), refreshes);
  EXPECT_EQ(sub.moves(), 1u);
  EXPECT_EQ(spublish(cl, later, "x"), 1);
  ASSERT_TRUE(run_until(loop, [&] { return sub.messages() == 1; }, 5s));
  cl.migrate_slot(hash_slot(later), 0, 2);
}

// A refusal that is no redirection (an ACL without the channel) is delivered, and the name dropped.
TEST_F(ClusterSubscriber, AnAclRefusalIsDeliveredAndDropped) {
  auto& cl = cluster();
  for (std::size_t i = 0; i < cl.size(); ++i) {
    test::blocking_connection c(cl.node(i).socket_path());
    ASSERT_EQ(c.call({"ACL", "SETUSER", "narrow", "on", ">pw", "resetchannels", "&allowed:*", "+@all", "~*"}).text, "OK");
  }
  const std::string allowed = channel_on(cl, 1, "allowed:");
  options o = seed_options(cl, 1);
  o.user = "narrow";
  o.password = "pw";
  cluster_subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({allowed, "forbidden"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe) == 1 && rec.count(pubsub_kind::refused) == 1; }, 10s))
      << sub.last_error();
  EXPECT_EQ(rec.count(pubsub_kind::refused, "forbidden"), 1u);
  EXPECT_EQ(sub.shard_channels(), (std::set<std::string, std::less<>>{allowed}));
  EXPECT_EQ(sub.node_of("forbidden"), "");
  EXPECT_NE(sub.last_error().find("NOPERM"), std::string::npos) << sub.last_error();
}

// Another channel of the same node as `x`, in another slot.
std::string other_slot_on_same_node(test::redis_cluster& cl, const std::string& x, std::string_view prefix) {
  const std::size_t node = cl.owner_of_key(x);
  for (int i = 0;; ++i) {
    std::string y = std::string(prefix) + std::to_string(i);
    if (hash_slot(y) != hash_slot(x) && cl.owner_of_key(y) == node) return y;
  }
}

// A subscriber's SUNSUBSCRIBE crossing the node's own sunsubscribe push (the slot just left it): the
// node's MOVED answer to it must not be taken for the answer to the next command. (A review proved
// it was: SSUBSCRIBE y "refused", y dropped from the set while the server kept it subscribed.)
TEST_F(ClusterSubscriber, ARedirectedSunsubscribeBlamesNoOtherCommand) {
  auto& cl = cluster();
  const std::string x = channel_on(cl, 0, "cross-x:");
  const std::string y = other_slot_on_same_node(cl, x, "cross-y:");
  options o = seed_options(cl, 0);
  subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({x});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe) == 1; }, 10s)) << sub.last_error();
  cl.migrate_slot(hash_slot(x), 0, 1);  // node 0's own sunsubscribe x now waits in our socket
  sub.sunsubscribe({x});                 // answered by MOVED: node 0 serves x's slot no more
  sub.ssubscribe({y});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe, y) == 1; }, 5s));
  test::run_for(loop, 100ms);  // the MOVED has arrived too
  EXPECT_EQ(rec.count(pubsub_kind::refused), 0u);
  EXPECT_EQ(sub.shard_channels(), (std::set<std::string, std::less<>>{y}));
  sub.sunsubscribe({y});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::sunsubscribe, y) == 1; }, 5s));
  EXPECT_EQ(spublish(cl, y, "after"), 0);
  cl.migrate_slot(hash_slot(x), 1, 0);
}

// The same through a cluster subscriber: nothing refused, nothing counted as a move.
TEST_F(ClusterSubscriber, ARedirectedSunsubscribeMovesNothing) {
  auto& cl = cluster();
  const std::string x = channel_on(cl, 0, "cross2-x:");
  const std::string y = other_slot_on_same_node(cl, x, "cross2-y:");
  options o = seed_options(cl, 0);
  o.cluster.refresh_interval = 0ms;
  cluster_subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({x});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe) == 1; }, 10s)) << sub.last_error();
  cl.migrate_slot(hash_slot(x), 0, 1);
  sub.sunsubscribe({x});
  sub.ssubscribe({y});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe, y) >= 1; }, 5s));
  test::run_for(loop, 300ms);
  EXPECT_EQ(rec.count(pubsub_kind::ssubscribe, y), 1u);
  EXPECT_EQ(rec.count(pubsub_kind::refused), 0u);
  EXPECT_EQ(sub.node_of(y), address(cl, 0));
  EXPECT_EQ(sub.moves(), 0u);
  sub.sunsubscribe({y});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::sunsubscribe, y) == 1; }, 5s));
  EXPECT_EQ(spublish(cl, y, "after"), 0);
  cl.migrate_slot(hash_slot(x), 1, 0);
}

// The handler changes the subscriptions and closes the subscriber from inside node events (ASan in
// CI): nothing is delivered after close(), and destroying it afterwards is clean.
TEST_F(ClusterSubscriber, AHandlerMayChangeSubscriptionsAndClose) {
  auto& cl = cluster();
  const std::string a = channel_on(cl, 0, "h-a:"), b = channel_on(cl, 1, "h-b:"), c = channel_on(cl, 2, "h-c:");
  auto sub = std::make_unique<cluster_subscriber>(loop, seed_options(cl, 0));
  std::size_t messages = 0, confirmations = 0, events_after_close = 0;
  bool closed = false;
  auto handler = [&](const pubsub_event& e) {
    if (closed) ++events_after_close;
    if (e.kind == pubsub_kind::ssubscribe) ++confirmations;
    if (e.kind == pubsub_kind::smessage) {
      ++messages;
      sub->sunsubscribe({e.channel});  // a view of the event: copied before use
      sub->ssubscribe({a, b, c});
      sub->subscribe({"h-x"});
      sub->unsubscribe({"h-x"});
    }
    if (e.kind == pubsub_kind::slot_moved) {
      sub->sunsubscribe(std::vector<std::string_view>(sub->shard_channels().begin(), sub->shard_channels().end()));
      sub->close();
      closed = true;
    }
  };
  sub->set_handler(handler);
  sub->ssubscribe({a, b, c});
  sub->start();
  ASSERT_TRUE(run_until(loop, [&] { return confirmations == 3; }, 10s));
  EXPECT_EQ(spublish(cl, a, "1"), 1);
  ASSERT_TRUE(run_until(loop, [&] { return messages >= 1; }, 5s));
  cl.migrate_slot(hash_slot(c), 2, 0);
  ASSERT_TRUE(run_until(loop, [&] { return closed; }, 5s));
  spublish(cl, b, "after close");
  test::run_for(loop, 200ms);
  EXPECT_EQ(events_after_close, 0u);
  sub.reset();
  test::run_for(loop, 100ms);
  cl.migrate_slot(hash_slot(c), 0, 2);
}

#ifdef REDRING_CLUSTER_PUBSUB_EXAMPLE
TEST_F(ClusterSubscriber, TheExampleRunsAgainstTheCluster) {
  std::string out;
  EXPECT_EQ(test::run_program(std::string(REDRING_CLUSTER_PUBSUB_EXAMPLE) + " redis://127.0.0.1:" + std::to_string(cluster().port(1)), out), 0)
      << out;
  for (const char* line : {"orders:{eu}: order 1 (sharded, on 127.0.0.1:", "orders:{us}: order 2 (sharded, on 127.0.0.1:",
                           "orders:{asia}: order 3 (sharded, on 127.0.0.1:", "news: hello (classic)"}) {
    EXPECT_NE(out.find(line), std::string::npos) << line << "\n" << out;
  }
}
#endif

// A cluster of three primaries with a long node timeout: a node down stays a primary in the
// topology for the whole test.
class ClusterSubscriberSlowFailover : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = std::make_unique<test::redis_cluster>(3, 0, 15000); }
  static void TearDownTestSuite() { cluster_.reset(); }
  static test::redis_cluster& cluster() { return *cluster_; }
  net::loop loop;

 private:
  static inline std::unique_ptr<test::redis_cluster> cluster_;
};

// A seed whose topology is stale (it says node 0 serves every slot): node 0's MOVED names the right
// node, which is asked next. (A review proved the stale seed was asked ten times a second for ever.)
TEST_F(ClusterSubscriberSlowFailover, AStaleTopologySourceIsLeftForTheNodeAMovedNames) {
  auto& cl = cluster();
  const std::string id0 = cl.node_id(0);
  const std::string port0 = std::to_string(cl.port(0));
  test::fake_server seed([&](const std::vector<std::string>& cmd, int) -> test::fake_reply {
    if (auto r = test::handshake_reply(cmd); !r.bytes.empty()) return r;
    if (cmd.size() == 2 && cmd[0] == "CLUSTER" && cmd[1] == "SHARDS") {
      return {"*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%5\r\n$2\r\nid\r\n$40\r\n" + id0 +
              "\r\n$4\r\nport\r\n:" + port0 +
              "\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"};
    }
    return {"-ERR unknown\r\n"};
  }, /*tcp=*/true);
  options o = seed_options(cl, 0);
  o.port = static_cast<std::uint16_t>(seed.port());
  cluster_subscriber sub(loop, o);
  recorder rec;
  sub.set_handler(rec);
  const std::string channel = channel_on(cl, 1, "stale-source:");
  sub.ssubscribe({channel});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe, channel) == 1; }, 5s))
      << "refreshes " << sub.refreshes() << ", " << sub.last_error();
  EXPECT_EQ(sub.node_of(channel), address(cl, 1));
  EXPECT_EQ(rec.count(pubsub_kind::refused), 0u);
  EXPECT_LE(sub.refreshes(), 4u);
}

// The classic node killed while the cluster still counts it a primary: the classic channels go to
// a live primary at once, not after the failover. (A review proved they stayed on the dead node:
// the fallback choice was the node being left.)
TEST_F(ClusterSubscriberSlowFailover, ClassicChannelsLeaveADeadNodeForALiveOne) {
  auto& cl = cluster();
  cluster_subscriber sub(loop, seed_options(cl, 1));
  recorder rec;
  sub.set_handler(rec);
  sub.subscribe({"classic"});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::subscribe) == 1; }, 10s)) << sub.last_error();
  const std::string dead_address = sub.classic_node();
  const std::size_t dead = cl.index_of_port(std::stoi(dead_address.substr(dead_address.rfind(':') + 1)));
  ASSERT_EQ(::kill(cl.node(dead).pid(), SIGKILL), 0);
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::subscribe) == 2; }, 5s)) << sub.classic_node();
  EXPECT_NE(sub.classic_node(), dead_address);
  test::blocking_connection other(cl.node((dead + 1) % 3).socket_path());
  other.call({"PUBLISH", "classic", "while the dead node is still a primary"});
  EXPECT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::message, "classic") == 1; }, 5s)) << sub.classic_node();
}

// A primary killed: its replica is promoted, and the channels it held follow to it.
TEST(ClusterSubscriberFailover, ChannelsFollowAPromotedReplica) {
  test::redis_cluster cl(3, 1, 1000);
  net::loop loop;
  const std::string channel = channel_on(cl, 0, "failover:");
  const std::string classic = "classic";
  cluster_subscriber sub(loop, seed_options(cl, 1));
  recorder rec;
  sub.set_handler(rec);
  sub.ssubscribe({channel, channel_on(cl, 1, "failover:")});
  sub.start();
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::ssubscribe) == 2; }, 10s)) << sub.last_error();
  sub.subscribe({classic});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::subscribe) == 1; }, 10s)) << sub.last_error();
  const std::string classic_before = sub.classic_node();
  ASSERT_EQ(::kill(cl.node(0).pid(), SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  // The promoted replica (one of nodes 3..5) serves the slot; the channel is subscribed there.
  ASSERT_TRUE(run_until(loop, [&] {
    return rec.count(pubsub_kind::ssubscribe, channel) == 2 && !sub.node_of(channel).empty() && sub.node_of(channel) != address(cl, 0);
  }, 30s)) << sub.last_error();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  std::printf("subscribed on the promoted replica %.2f s after the kill\n", seconds);
  const std::size_t promoted = cl.owner_of_key(channel);
  EXPECT_EQ(sub.node_of(channel), address(cl, promoted));
  EXPECT_EQ(spublish(cl, channel, "after the failover"), 1);
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::smessage, channel) == 1; }, 5s));
  // The classic channel left node 0 if it was there.
  if (classic_before == address(cl, 0)) {
    EXPECT_NE(sub.classic_node(), classic_before);
    EXPECT_GE(rec.count(pubsub_kind::subscribe, classic), 2u);
  }
  test::blocking_connection other(cl.node(2).socket_path());
  other.call({"PUBLISH", classic, "still here"});
  ASSERT_TRUE(run_until(loop, [&] { return rec.count(pubsub_kind::message, classic) == 1; }, 10s)) << sub.classic_node();
  EXPECT_GE(sub.moves(), 1u);
}

}  // namespace
}  // namespace redring::client
