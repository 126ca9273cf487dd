// SPDX-License-Identifier: MIT
// client::cluster_subscriber against a real cluster (3 primaries + 3 replicas on loopback ports):
// sharded channels on every shard beside classic ones, a resharded slot, a stale topology's MOVED
// followed, a primary killed and its replica promoted, and the example.
#include "client/cluster_subscriber.hpp"

#include "client/hash_slot.hpp"

#include "tests/client/pubsub_recorder.hpp"
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
