// SPDX-License-Identifier: MIT
// The patterns on a real Redis Cluster (3 primaries + 3 replicas). The client does not route by slot
// yet, so each test connects to the primary that serves its pattern's hash tag (CLUSTER SHARDS) and
// shows that every script's keys are in that one slot: no CROSSSLOT, no MOVED.
#include "client/hash_slot.hpp"
#include "client/slot_map.hpp"
#include "patterns/job_queue.hpp"
#include "patterns/local_cache.hpp"
#include "patterns/lock.hpp"
#include "patterns/rate_limiter.hpp"
#include "patterns/typed_cache.hpp"

#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_cluster.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <stdexcept>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::run_task;

class OnCluster : public ::testing::Test {
 protected:
  // One cluster for the whole binary: it takes seconds to start.
  static void SetUpTestSuite() { cluster_ = std::make_unique<test::redis_cluster>(3, 1); }
  static void TearDownTestSuite() { cluster_.reset(); }
  static inline std::unique_ptr<test::redis_cluster> cluster_;

  // The primary serving `key`'s slot, from CLUSTER SHARDS.
  static client::cluster_node owner_of(std::string_view key) {
    test::blocking_connection c(cluster_->node(0).socket_path());
    const auto map = client::slot_map::from_shards(c.call({"CLUSTER", "SHARDS"}));
    const client::cluster_node* n = map ? map->primary_of(client::hash_slot(key)) : nullptr;
    if (n == nullptr) throw std::runtime_error("no primary for the key's slot");
    return *n;
  }
  // Client options for `node` over TCP.
  static client::options options_for(const client::cluster_node& node) {
    client::options o;
    o.host = node.host;
    o.port = node.port;
    return o;
  }
  // Another primary than `node` (it answers MOVED for `node`'s slots).
  static client::cluster_node other_primary(const client::cluster_node& node) {
    test::blocking_connection c(cluster_->node(0).socket_path());
    const auto map = client::slot_map::from_shards(c.call({"CLUSTER", "SHARDS"}));
    for (const auto& shard : map->shards())
      if (!shard.nodes.empty() && shard.nodes.front().primary && shard.nodes.front().port != node.port) return shard.nodes.front();
    throw std::runtime_error("a cluster with one primary");
  }

  // The Unix socket of `node`, for the test's own blocking connection to it.
  static std::string socket_of(const client::cluster_node& node) {
    for (std::size_t i = 0; i < cluster_->size(); ++i)
      if (cluster_->port(i) == node.port) return cluster_->node(i).socket_path();
    throw std::runtime_error("no such node");
  }

  net::loop loop;
};

// Every algorithm decides on the node of its key (one key each); the same limiter on another
// primary gets MOVED, which its failure policy turns into a failure decision (the routing matters).
TEST_F(OnCluster, RateLimitersDecideOnTheOwnerOfTheirKey) {
  for (const auto algorithm : {limiter_algorithm::fixed_window, limiter_algorithm::sliding_log,
                               limiter_algorithm::sliding_window, limiter_algorithm::token_bucket, limiter_algorithm::gcra}) {
    const limiter_options opts{.algorithm = algorithm, .limit = 3, .period = 10s, .prefix = "rl:{tenant:7}:", .timeout = 5s};
    const auto node = owner_of("rl:{tenant:7}:");
    client::client c(loop, options_for(node));
    rate_limiter l(c, opts);
    ASSERT_EQ(client::hash_slot(l.key("alice")), client::hash_slot("{tenant:7}"));
    (void)run_task(loop, l.reset("alice"));
    for (int i = 0; i < 4; ++i) {
      const decision d = run_task(loop, l.hit("alice"));
      EXPECT_EQ(d.source, decision_source::server) << (d.failure ? d.failure->what() : "");
      EXPECT_EQ(d.allowed, i < 3) << "hit " << i << ", algorithm " << static_cast<int>(algorithm);
    }
    client::client elsewhere(loop, options_for(other_primary(node)));
    const decision moved = run_task(loop, rate_limiter(elsewhere, opts).hit("alice"));
    EXPECT_EQ(moved.source, decision_source::failure);
    EXPECT_EQ(moved.failure ? moved.failure->code_word() : "", "MOVED");
  }
}

// The lock's key and its fencing counter share the name's slot (the acquire script touches both);
// a name with its own hash tag puts the lock in the slot of the data it guards.
TEST_F(OnCluster, LockAndFencingCounterShareASlot) {
  const auto node = owner_of("{nightly-report}");
  client::client c(loop, options_for(node));
  lock l(c, {.ttl = 5s, .timeout = 5s});
  EXPECT_EQ(client::hash_slot(l.key("nightly-report") + ":fence"), client::hash_slot(l.key("nightly-report")));
  for (std::int64_t fence = 1; fence <= 2; ++fence) {
    auto held = run_task(loop, l.acquire("nightly-report"));
    ASSERT_TRUE(held) << held.error().what();
    EXPECT_EQ(held->fencing_token(), fence);
    EXPECT_TRUE(*run_task(loop, l.extend(*held)));
    EXPECT_TRUE(*run_task(loop, l.release(*held)));
  }

  EXPECT_EQ(l.key("{user:7}:profile"), "lock:{user:7}:profile:lock");
  const auto data_node = owner_of("{user:7}");
  client::client d(loop, options_for(data_node));
  lock guard(d, {.ttl = 5s, .timeout = 5s});
  auto held = run_task(loop, guard.acquire("{user:7}:profile"));
  ASSERT_TRUE(held) << held.error().what();
  EXPECT_EQ(held->fencing_token(), 1);
  test::blocking_connection admin(socket_of(data_node));
  EXPECT_EQ(admin.call({"EXISTS", "lock:{user:7}:profile:lock", "lock:{user:7}:profile:lock:fence"}).integer, 2);
  EXPECT_TRUE(*run_task(loop, guard.release(*held)));
}

// The cache's value keys, tag sets and stampede locks all live in the slot of its {space:vN} tag:
// a miss takes the stampede lock on that node, stores, and hits; write-through with two tags and
// tag invalidation (a script that deletes keys it reads from a set) run without CROSSSLOT.
TEST_F(OnCluster, CacheKeysTagsAndStampedeLocksShareTheNamespacesSlot) {
  const auto node = owner_of("{users:v1}");
  client::client c(loop, options_for(node));
  typed_cache<std::string> users(c, {.prefix = "env:", .space = "users", .timeout = 5s});
  const auto slot = client::hash_slot("{users:v1}");
  EXPECT_EQ(client::hash_slot(users.value_key("7")), slot);
  EXPECT_EQ(client::hash_slot(users.tag_key("team")), slot);
  EXPECT_EQ(client::hash_slot(users.tag_list_key("7")), slot);
  EXPECT_EQ(client::hash_slot(users.lock_key("7")), slot);

  test::blocking_connection admin(socket_of(node));
  bool locked_while_loading = false;
  const auto load = [&]() -> task<typed_cache<std::string>::load_result> {
    locked_while_loading = admin.call({"EXISTS", users.lock_key("7")}).integer == 1;
    co_return std::optional<std::string>("ada");
  };
  const auto miss = run_task(loop, users.get_or_load("7", load));
  ASSERT_TRUE(miss) << miss.error().what();
  EXPECT_EQ(miss->source, cache_source::loaded);
  EXPECT_FALSE(miss->failure) << miss->failure->what();
  EXPECT_TRUE(locked_while_loading);
  const auto hit = run_task(loop, users.get_or_load("7", load));
  EXPECT_EQ(hit->source, cache_source::hit);
  EXPECT_EQ(hit->value, "ada");

  const std::vector<std::string> two = {"team", "admins"}, one = {"team"};
  const std::string grace = "grace", lin = "lin";
  ASSERT_TRUE(*run_task(loop, users.set("8", grace, two)));
  ASSERT_TRUE(*run_task(loop, users.set("9", lin, one)));
  const auto removed = run_task(loop, users.invalidate_tag("team"));
  ASSERT_TRUE(removed) << removed.error().what();
  EXPECT_EQ(*removed, 2);
  EXPECT_TRUE(admin.call({"GET", users.value_key("8")}).text.starts_with("!"));  // tombstones
  EXPECT_TRUE(admin.call({"GET", users.value_key("9")}).text.starts_with("!"));
  EXPECT_EQ(admin.call({"EXISTS", users.tag_key("team")}).integer, 0);
  EXPECT_EQ(admin.call({"EXISTS", users.value_key("7")}).integer, 1);
  EXPECT_TRUE(*run_task(loop, users.invalidate("7")));

  // A loaded value with tags: its tag list and sets, read and written inside the storing script,
  // are keys of the same slot, which the node accepts.
  const auto tagged = run_task(loop, users.get_or_load("10", load, one));
  ASSERT_TRUE(tagged) << tagged.error().what();
  EXPECT_EQ(tagged->source, cache_source::loaded);
  EXPECT_FALSE(tagged->failure) << tagged->failure->what();
  EXPECT_EQ(*run_task(loop, users.invalidate_tag("team")), 1);
}

// The same patterns through a cluster-mode client seeded at one node (the client routes each
// script by its keys): names spread over the three primaries all decide, lock, cache and queue jobs.
TEST_F(OnCluster, ThroughAClusterModeClient) {
  client::options o;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(cluster_->port(0));
  o.cluster.enabled = true;
  client::client c(loop, o);
  std::set<std::uint16_t> primaries;
  for (const char* tenant : {"a", "b", "c", "d", "e", "f"}) {
    const std::string tag = std::string("{") + tenant + "}";
    primaries.insert(owner_of(tag).port);
    rate_limiter l(c, {.limit = 2, .period = 10s, .prefix = "rl:" + tag, .timeout = 5s});
    (void)run_task(loop, l.reset("x"));
    EXPECT_TRUE(run_task(loop, l.hit("x")).allowed) << tag;
    EXPECT_TRUE(run_task(loop, l.hit("x")).allowed) << tag;
    const decision third = run_task(loop, l.hit("x"));
    EXPECT_FALSE(third.allowed) << tag << (third.failure ? third.failure->what() : "");
    EXPECT_EQ(third.source, decision_source::server) << tag;

    lock locks(c, {.ttl = 5s, .timeout = 5s});
    auto held = run_task(loop, locks.acquire(tag + ":job"));
    ASSERT_TRUE(held) << held.error().what();
    EXPECT_TRUE(*run_task(loop, locks.release(*held)));

    typed_cache<std::string> k(c, {.space = tenant, .timeout = 5s});
    const auto load = []() -> task<typed_cache<std::string>::load_result> { co_return std::optional<std::string>("v"); };
    const auto miss = run_task(loop, k.get_or_load("1", load));
    ASSERT_TRUE(miss) << miss.error().what();
    EXPECT_FALSE(miss->failure) << miss->failure->what();
    EXPECT_EQ(run_task(loop, k.get_or_load("1", load))->source, cache_source::hit);
    const std::vector<std::string> tags = {"t"};
    const std::string value = "w";
    ASSERT_TRUE(*run_task(loop, k.set("2", value, tags)));
    EXPECT_EQ(*run_task(loop, k.invalidate_tag("t")), 1);

    job_queue q(c, tenant, {.timeout = 5s});  // keys queue:{tenant}:...
    const auto id = run_task(loop, q.enqueue("j"));
    ASSERT_TRUE(id) << id.error().what();
    const auto j = run_task(loop, q.reserve());
    ASSERT_TRUE(j && *j) << tag;
    EXPECT_EQ((*j)->payload, "j");
    EXPECT_TRUE(*run_task(loop, q.complete(**j)));
    // Empty: the wait blocks in BLPOP on the queue's node (the enqueue's token first), then ends empty.
    const auto none = run_task(loop, q.reserve(200ms));
    ASSERT_TRUE(none) << none.error().what();
    EXPECT_FALSE(none->has_value());
  }
  EXPECT_EQ(primaries.size(), 3u);  // the tenants' tags cover every primary
}

// Client-side caching through a cluster client: each node's connection tracks what it read, and a
// write on any shard invalidates its key. Run in the default tracking mode and with OPTIN, where
// each read goes in a transaction after CLIENT CACHING yes, whole to its slot's primary.
class OnClusterTracking : public OnCluster, public ::testing::WithParamInterface<bool> {};

TEST_P(OnClusterTracking, LocalCacheFollowsInvalidationsFromEveryShard) {
  client::options o = options_for(owner_of("x"));
  o.cluster.enabled = true;
  o.tracking.enabled = true;
  o.tracking.optin = GetParam();
  client::client c(loop, o);
  local_cache cache(c);
  std::vector<std::string> keys;
  std::set<std::uint16_t> ports;
  for (int i = 0; ports.size() < 3; ++i) {
    std::string k = "lc:" + std::to_string(i);
    if (ports.insert(owner_of(k).port).second) keys.push_back(k);
  }
  for (const auto& k : keys) {
    test::blocking_connection(socket_of(owner_of(k))).call({"SET", k, "v1"});
    auto v = run_task(loop, cache.get(k));
    ASSERT_TRUE(v) << v.error().what();
  }
  for (const auto& k : keys) {
    auto v = run_task(loop, cache.get(k));
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, "v1");
  }
  EXPECT_EQ(cache.stats().hits, 3u);
  for (const auto& k : keys) test::blocking_connection(socket_of(owner_of(k))).call({"SET", k, "v2"});
  ASSERT_TRUE(test::run_until(loop, [&] { return cache.stats().invalidations == 3; }, 5s));
  const std::vector<std::string_view> views(keys.begin(), keys.end());
  auto all = run_task(loop, cache.mget(views));  // every shard at once
  ASSERT_TRUE(all) << all.error().what();
  EXPECT_EQ(*all, std::vector<std::optional<std::string>>(keys.size(), "v2"));
  const auto hits_before = cache.stats().hits;
  all = run_task(loop, cache.mget(views));
  ASSERT_TRUE(all);
  EXPECT_EQ(cache.stats().hits, hits_before + keys.size());
  // read(): a hash on each shard (in its key's slot), routed by the command's key.
  auto hgetall = [&](const std::string& h) {
    auto r = run_task(loop, cache.read("HGETALL", h));
    EXPECT_TRUE(r) << r.error().what();
    return r ? r->elements.size() : 0;
  };
  for (const auto& k : keys) {
    const std::string h = "{" + k + "}h";
    test::blocking_connection owner(socket_of(owner_of(k)));
    owner.call({"DEL", h});  // left by the other mode's run
    owner.call({"HSET", h, "f", "1"});
    EXPECT_EQ(hgetall(h), 2u);  // a RESP3 map: f, 1
  }
  const auto hits = cache.stats().hits;
  for (const auto& k : keys) EXPECT_EQ(hgetall("{" + k + "}h"), 2u);
  EXPECT_EQ(cache.stats().hits, hits + 3);
  for (const auto& k : keys) test::blocking_connection(socket_of(owner_of(k))).call({"HSET", "{" + k + "}h", "g", "2"});
  ASSERT_TRUE(test::run_until(loop, [&] { return cache.stats().invalidations == 6; }, 5s));
  for (const auto& k : keys) EXPECT_EQ(hgetall("{" + k + "}h"), 4u);
}

INSTANTIATE_TEST_SUITE_P(Modes, OnClusterTracking, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "optin" : "default"; });

}  // namespace
}  // namespace redring::patterns
