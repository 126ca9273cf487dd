// SPDX-License-Identifier: MIT
// The cache against a real redis-server: single-flight, the stampede lock across two clients,
// stale-while-revalidate, negative caching, tags, versions, write-through/delete-on-write, and
// fail-open with the server killed and restarted.
#include "patterns/cache.hpp"
#include "patterns/typed_cache.hpp"

#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <unistd.h>

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::options_for;
using test::run_task;

// A loader that counts its calls and takes `delay` on the loop (like a query to a database).
struct counting_loader {
  net::loop& loop;
  std::optional<std::string> value = "v";
  std::chrono::milliseconds delay{20};
  int calls = 0;
  loader get() {
    return [this]() -> task<load_result> {
      ++calls;
      co_await sleep_for(loop, delay);
      co_return load_result(value);
    };
  }
};

// A slow load over a source of truth the test changes: each call reads `source` at once (the
// database read), then takes 150 ms more, so a write can land between the read and the store.
struct slow_source_loader {
  net::loop& loop;
  std::string source = "old";
  int calls = 0;
  loader get() {
    return [this]() -> task<load_result> {
      ++calls;
      std::string read = source;
      co_await sleep_for(loop, std::chrono::milliseconds(150));
      co_return load_result(std::optional<std::string>(std::move(read)));
    };
  }
};

class Cache : public ::testing::Test, protected test::pattern_world {};

// A user type and its codec for the typed cache: the id as 8 hex digits, then the name; anything
// shorter or not hex does not decode.
struct user {
  int id = 0;
  std::string name;
  friend bool operator==(const user&, const user&) = default;
};
struct user_codec {
  std::string encode(const user& u) const {
    char id[9];
    std::snprintf(id, sizeof id, "%08x", static_cast<unsigned>(u.id));
    return std::string(id, 8).append(u.name);
  }
  resp::result<user> decode(std::string_view bytes) const {
    if (bytes.size() < 8 || !std::all_of(bytes.begin(), bytes.begin() + 8, [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)) != 0; }))
      return resp::error{std::make_error_code(std::errc::invalid_argument), "no 8-digit hex id"};
    return user{static_cast<int>(std::stoul(std::string(bytes.substr(0, 8)), nullptr, 16)), std::string(bytes.substr(8))};
  }
};
static_assert(codec_for<user_codec, user>);
static_assert(codec_for<bytes_codec, std::string>);

// A typed loader that counts its calls.
struct user_loader {
  user value;
  int calls = 0;
  typed_cache<user, user_codec>::loader get() {
    return [this]() -> task<typed_cache<user, user_codec>::load_result> {
      ++calls;
      co_return std::optional<user>(value);
    };
  }
};

// 1,000 concurrent misses of one key in one process: one load, everyone gets the value.
TEST_F(Cache, SingleFlightOneLoadForAThousandWaiters) {
  cache k(c, {});
  counting_loader source{loop};
  int done = 0, right = 0;
  for (int i = 0; i < 1000; ++i) {
    spawn(k.get_or_load("hot", source.get()), [&](resp::result<cached> r) {
      ++done;
      right += r && r->value == "v" ? 1 : 0;
    });
  }
  ASSERT_TRUE(test::run_until(loop, [&] { return done == 1000; }));
  EXPECT_EQ(right, 1000);
  EXPECT_EQ(source.calls, 1);
  const auto again = run_task(loop, k.get_or_load("hot", source.get()));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->source, cache_source::hit);
  EXPECT_EQ(source.calls, 1);
}

// Two processes (two clients, two caches) miss at once: the stampede lock lets one load; the other
// waits for the stored value.
TEST_F(Cache, StampedeLockAcrossClients) {
  client::client other(loop, options_for(server));
  cache a(c, {}), b(other, {});
  counting_loader source_a{loop, "v", 100ms}, source_b{loop, "v", 100ms};
  std::optional<resp::result<cached>> ra, rb;
  spawn(a.get_or_load("shared", source_a.get()), [&](resp::result<cached> r) { ra.emplace(std::move(r)); });
  spawn(b.get_or_load("shared", source_b.get()), [&](resp::result<cached> r) { rb.emplace(std::move(r)); });
  ASSERT_TRUE(test::run_until(loop, [&] { return ra && rb; }));
  ASSERT_TRUE(*ra);
  ASSERT_TRUE(*rb);
  EXPECT_EQ(source_a.calls + source_b.calls, 1);
  EXPECT_EQ((*ra)->value, "v");
  EXPECT_EQ((*rb)->value, "v");
  EXPECT_TRUE((*ra)->source == cache_source::waited || (*rb)->source == cache_source::waited);
}

// A value stored between a miss and the stampede lock's acquisition (another process's loader
// finished and released the lock just then) is served: the lock's holder reads again before it
// loads. Deterministic: `other`'s write is pipelined right behind the miss's read on the same
// connection, so the server runs it before the acquire the miss sends next.
TEST_F(Cache, ValueStoredBetweenTheMissAndTheLockIsNotLoadedAgain) {
  cache a(c, {}), other(c, {});
  counting_loader source{loop, "loaded"};
  std::optional<resp::result<cached>> got;
  std::optional<resp::result<bool>> wrote;
  spawn(a.get_or_load("race", source.get()), [&](resp::result<cached> r) { got.emplace(std::move(r)); });
  spawn(other.set("race", "stored"), [&](resp::result<bool> r) { wrote.emplace(std::move(r)); });
  ASSERT_TRUE(test::run_until(loop, [&] { return got && wrote; }));
  ASSERT_TRUE(*wrote);
  ASSERT_TRUE(*got);
  EXPECT_EQ(source.calls, 0);
  EXPECT_EQ((*got)->value, "stored");
  EXPECT_EQ((*got)->source, cache_source::waited);
  EXPECT_EQ(admin.call({"GET", a.value_key("race")}).text, "+stored");
  EXPECT_TRUE(admin.call({"KEYS", "*lock*"}).elements.empty());  // the stampede lock was released
}

// Past the TTL, within stale_ttl: the stale value is served at once and one refresh stores a new one.
TEST_F(Cache, StaleWhileRevalidate) {
  cache k(c, {.ttl = 100ms, .ttl_jitter = 0, .stale_ttl = 5s});
  counting_loader source{loop, "old"};
  ASSERT_EQ(run_task(loop, k.get_or_load("s", source.get()))->value, "old");
  test::pause(loop, 150ms);
  source.value = "new";
  const auto stale = run_task(loop, k.get_or_load("s", source.get()));
  EXPECT_EQ(stale->source, cache_source::stale);
  EXPECT_EQ(stale->value, "old");
  ASSERT_TRUE(test::run_until(loop, [&] { return source.calls == 2; }));
  ASSERT_TRUE(test::run_until(loop, [&] { return admin.call({"GET", k.value_key("s")}).text == "+new"; }));
  const auto fresh = run_task(loop, k.get_or_load("s", source.get()));
  EXPECT_EQ(fresh->source, cache_source::hit);
  EXPECT_EQ(fresh->value, "new");
  EXPECT_TRUE(test::run_until(loop, [&] { return k.refreshing() == 0; }));  // the refresh releases its lock
}

// "Not found" is cached for negative_ttl, then asked again.
TEST_F(Cache, NegativeCaching) {
  cache k(c, {.negative_ttl = 150ms});
  counting_loader source{loop, std::nullopt};
  EXPECT_FALSE(run_task(loop, k.get_or_load("ghost", source.get()))->value);
  const auto cached_miss = run_task(loop, k.get_or_load("ghost", source.get()));
  EXPECT_FALSE(cached_miss->value);
  EXPECT_EQ(cached_miss->source, cache_source::hit);
  EXPECT_EQ(source.calls, 1);
  test::pause(loop, 200ms);
  (void)run_task(loop, k.get_or_load("ghost", source.get()));
  EXPECT_EQ(source.calls, 2);
}

// A tag invalidates exactly its keys; write-through and delete-on-write; a version bump hides
// everything written before it.
TEST_F(Cache, TagsVersionsWriteThroughAndDelete) {
  cache k(c, {});
  const std::vector<std::string> red = {"red"}, both = {"red", "blue"}, blue = {"blue"};
  ASSERT_TRUE(*run_task(loop, k.set("a", "1", red)));
  ASSERT_TRUE(*run_task(loop, k.set("b", "2", both)));
  ASSERT_TRUE(*run_task(loop, k.set("c", "3", blue)));
  ASSERT_TRUE(*run_task(loop, k.set("d", "4")));
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("red")), 2);
  // Invalidated values become tombstones ('!' and a random tail) that expire after lock_ttl.
  for (const char* key : {"a", "b"}) {
    const resp::value v = admin.call({"GET", k.value_key(key)});
    EXPECT_TRUE(v.text.starts_with("!")) << key << ": " << v.text;
    EXPECT_LE(admin.call({"PTTL", k.value_key(key)}).integer, 5000);
  }
  EXPECT_EQ(admin.call({"GET", k.value_key("c")}).text, "+3");
  EXPECT_EQ(admin.call({"GET", k.value_key("d")}).text, "+4");
  EXPECT_EQ(admin.call({"EXISTS", k.tag_key("red")}).integer, 0);
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("red")), 0);  // nothing left to invalidate

  counting_loader source{loop, "loaded"};
  EXPECT_EQ(run_task(loop, k.get_or_load("c", source.get()))->value, "3");  // written through
  EXPECT_TRUE(*run_task(loop, k.invalidate("c")));                           // deleted on write
  EXPECT_EQ(run_task(loop, k.get_or_load("c", source.get()))->value, "loaded");
  EXPECT_EQ(source.calls, 1);

  k.set_version("2");
  const auto fresh = run_task(loop, k.get_or_load("d", source.get()));
  EXPECT_EQ(fresh->value, "loaded");
  EXPECT_EQ(fresh->source, cache_source::loaded);
  cache old(c, {.version = "1"});
  EXPECT_EQ(run_task(loop, old.get_or_load("d", source.get()))->value, "4");  // version 1 untouched
  EXPECT_NE(k.value_key("d"), old.value_key("d"));
}

// A value written with a tag and then refreshed by stale-while-revalidate (with no tags named) is
// still reachable by invalidate_tag after the first write's TTL. It once was not: the refresh stored
// the value without its tags, the tag set expired with the first write, and invalidate_tag then
// deleted nothing while the refreshed value was served. Now every store puts the value back into
// the tag sets of its tag list and stretches their TTL.
TEST_F(Cache, TagStillInvalidatesAValueRefreshedWhileStale) {
  cache k(c, {.ttl = 400ms, .ttl_jitter = 0, .stale_ttl = 800ms});
  const std::vector<std::string> team = {"team:7"};
  ASSERT_TRUE(*run_task(loop, k.set("u", "v1", team)));  // value and tag set: 1200 ms
  test::pause(loop, 500ms);                                // 700 ms left: within stale_ttl
  counting_loader source{loop, "v2"};
  const auto stale = run_task(loop, k.get_or_load("u", source.get()));
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->source, cache_source::stale);
  ASSERT_TRUE(test::run_until(loop, [&] { return k.refreshing() == 0; }));
  ASSERT_EQ(admin.call({"GET", k.value_key("u")}).text, "+v2");  // refreshed: 1200 ms again
  test::pause(loop, 800ms);  // past the first write's 1200 ms, well within the refreshed value's
  ASSERT_EQ(run_task(loop, k.get_or_load("u", source.get()))->value, "v2");  // still served
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("team:7")), 1);
  // That read was stale again (400 ms left): its refresh, begun before the invalidation, must
  // not store over the tombstone; and it must end before the cache does.
  ASSERT_TRUE(test::run_until(loop, [&] { return k.refreshing() == 0; }));
  EXPECT_NE(admin.call({"GET", k.value_key("u")}).text, "+v2") << "the tagged key survived invalidate_tag";
}

// Tags named at get_or_load go with the value the load stores; a value reloaded after its tag was
// invalidated is back in that tag (its tag list remembers it), so the next invalidate_tag reaches
// it too. And a key never tagged stays out of every tag.
TEST_F(Cache, LoadedValuesCarryTheirTagsThroughReloads) {
  cache k(c, {.ttl = 60s, .ttl_jitter = 0});
  const std::vector<std::string> team = {"team:7"};
  counting_loader source{loop, "v1"};
  const auto first = run_task(loop, k.get_or_load("u", source.get(), team));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->source, cache_source::loaded);
  EXPECT_EQ(admin.call({"ZSCORE", k.tag_key("team:7"), k.value_key("u")}).data_type, resp::type::blob_string);
  ASSERT_TRUE(run_task(loop, k.get_or_load("other", source.get())));  // untagged
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("team:7")), 1);  // "u" only
  EXPECT_EQ(run_task(loop, k.get_or_load("other", source.get()))->source, cache_source::hit);

  source.value = "v2";
  const auto reloaded = run_task(loop, k.get_or_load("u", source.get()));  // no tags named this time
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->source, cache_source::loaded);
  EXPECT_EQ(reloaded->value, "v2");
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("team:7")), 1) << "the reloaded value left its tag";
  EXPECT_EQ(run_task(loop, k.get_or_load("u", source.get()))->source, cache_source::loaded);
  EXPECT_GT(admin.call({"PTTL", k.tag_list_key("u")}).integer, 50000);  // expires with the value
  EXPECT_EQ(admin.call({"EXISTS", k.tag_list_key("other")}).integer, 0);
}

// A reload after an invalidation puts the value back into its tags, even when the invalidation
// came late in the value's life: the tombstone lives lock_ttl, and the tag list, which once lived
// only as long as the last store's TTL, expired under it (a review's find: the reload was then
// untagged and invalidate_tag missed it, serving stale data for a full TTL).
TEST_F(Cache, ReloadAfterALateInvalidationKeepsItsTags) {
  cache k(c, {.ttl = 600ms, .ttl_jitter = 0, .lock_ttl = 5s});
  const std::vector<std::string> team = {"team:7"};
  ASSERT_TRUE(*run_task(loop, k.set("u", "v1", team)));  // value, tag set, tag list: 600 ms
  test::pause(loop, 300ms);
  ASSERT_TRUE(*run_task(loop, k.invalidate("u")));  // a 5 s tombstone
  test::pause(loop, 500ms);                         // past the value's 600 ms
  ASSERT_EQ(admin.call({"GET", k.value_key("u")}).text.substr(0, 1), "!");
  counting_loader source{loop, "v2"};
  const auto reloaded = run_task(loop, k.get_or_load("u", source.get()));  // no tags, as readers do
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->source, cache_source::loaded);
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("team:7")), 1) << "the value reloaded after its invalidation left its tag";
  EXPECT_NE(admin.call({"GET", k.value_key("u")}).text, "+v2") << "stale data survives invalidate_tag";

  // The same through invalidate_tag's tombstones: the reload is back in the tag.
  ASSERT_TRUE(*run_task(loop, k.set("w", "v1", team)));
  test::pause(loop, 300ms);
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("team:7")), 1);
  test::pause(loop, 500ms);
  ASSERT_TRUE(run_task(loop, k.get_or_load("w", source.get())));
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("team:7")), 1);
}

// Tags named by a store replace the key's tag list (a store naming none keeps it): a key
// re-tagged on every write keeps a bounded list, and each store walks only its current tags (the
// list once grew by one set per write, each kept alive and walked by every later store).
TEST_F(Cache, TagListOfAKeyRetaggedOnEveryWriteStaysBounded) {
  cache k(c, {.ttl = 60s, .ttl_jitter = 0});
  for (int i = 0; i < 50; ++i) {
    const std::vector<std::string> owner = {"owner:" + std::to_string(i)};
    const std::string value = std::to_string(i).insert(0, 1, 'v');  // not "v" + ...: GCC 12's -Wrestrict false positive
    ASSERT_TRUE(*run_task(loop, k.set("doc", value, owner)));
  }
  EXPECT_EQ(admin.call({"SCARD", k.tag_list_key("doc")}).integer, 1);
  EXPECT_EQ(admin.call({"SISMEMBER", k.tag_list_key("doc"), k.tag_key("owner:49")}).integer, 1);
  const std::string untagged = "v50";
  ASSERT_TRUE(*run_task(loop, k.set("doc", untagged)));  // names no tags: keeps owner:49
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("owner:49")), 1);
}

// Delete-on-write racing a load in flight: the loader read the source before the write; the writer
// then updates the source and calls invalidate(); the load ends. Its store must not bring the old
// value back (it once did, with a full TTL: every later read hit it until the TTL passed). The
// invalidation leaves a tombstone, and a load stores only if the key is as the load found it.
TEST_F(Cache, InvalidateDuringALoadIsNotUndoneByTheLoadsStore) {
  cache k(c, {});
  slow_source_loader db{loop};
  std::optional<resp::result<cached>> first;
  spawn(k.get_or_load("k", db.get()), [&](resp::result<cached> r) { first.emplace(std::move(r)); });
  ASSERT_TRUE(test::run_until(loop, [&] { return db.calls == 1; }));
  // The writer: update the source of truth, then delete-on-write.
  db.source = "new";
  (void)run_task(loop, k.invalidate("k"));
  ASSERT_TRUE(test::run_until(loop, [&] { return first.has_value(); }));
  const auto after = run_task(loop, k.get_or_load("k", db.get()));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->value, "new") << "source " << static_cast<int>(after->source)
                                 << ": the value read before invalidate() outlived it";
}

// invalidate_tag racing the first load of a key (in no tag set yet, so no tombstone reaches it):
// the load read the source before the tag's invalidation and must not store that after it. It
// once did, for a full TTL. The invalidation leaves a marker on the tag that the load's store
// checks, as it checks the key's tombstone.
TEST_F(Cache, InvalidateTagDuringAFirstLoadIsNotUndoneByTheLoadsStore) {
  cache k(c, {});
  const std::vector<std::string> team = {"team:9"};
  slow_source_loader db{loop};
  std::optional<resp::result<cached>> first;
  spawn(k.get_or_load("member", db.get(), team), [&](resp::result<cached> r) { first.emplace(std::move(r)); });
  ASSERT_TRUE(test::run_until(loop, [&] { return db.calls == 1; }));
  db.source = "new";
  const auto invalidated = run_task(loop, k.invalidate_tag("team:9"));
  ASSERT_TRUE(invalidated);
  EXPECT_EQ(*invalidated, 0);  // the key held nothing yet
  ASSERT_TRUE(test::run_until(loop, [&] { return first.has_value(); }));
  ASSERT_TRUE(*first);
  EXPECT_EQ((*first)->value, "old");  // its caller gets what it loaded
  const auto after = run_task(loop, k.get_or_load("member", db.get(), team));
  ASSERT_TRUE(after);
  EXPECT_EQ(after->value, "new") << "source " << static_cast<int>(after->source)
                                 << ": the value read before invalidate_tag() was stored after it";
  EXPECT_EQ(db.calls, 2);
  // The reload is tagged: the tag reaches it.
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("team:9")), 1);
}

// In one process: a get_or_load after invalidate() (or set) does not join a load begun before
// it, whose data may predate the write; it once did, and got the old value though it came after.
TEST_F(Cache, AReadAfterAWriteDoesNotJoinALoadBegunBeforeIt) {
  cache k(c, {.lock_wait = 300ms});  // the second flight waits that long for the first's stampede lock
  slow_source_loader db{loop};
  std::optional<resp::result<cached>> before, after;
  spawn(k.get_or_load("flight", db.get()), [&](resp::result<cached> r) { before.emplace(std::move(r)); });
  ASSERT_TRUE(test::run_until(loop, [&] { return db.calls == 1; }));
  db.source = "new";
  ASSERT_TRUE(run_task(loop, k.invalidate("flight")));
  spawn(k.get_or_load("flight", db.get()), [&](resp::result<cached> r) { after.emplace(std::move(r)); });
  ASSERT_TRUE(test::run_until(loop, [&] { return before.has_value() && after.has_value(); }));
  ASSERT_TRUE(*before && *after);
  EXPECT_EQ((*before)->value, "old");
  EXPECT_EQ((*after)->value, "new") << "joined the flight begun before invalidate()";
  EXPECT_EQ(db.calls, 2);
}

// A tag written for ever (here: 60 keys with a short TTL, then one more) keeps the keys whose value
// is alive, not every key it ever named: its set once grew without bound, its TTL stretched by
// every write.
TEST_F(Cache, ATagsSetDropsKeysWhoseValueExpired) {
  // Long enough for the 60 writes on a loaded machine (with 50 ms the last writes dropped the first
  // keys, already expired, before the count below).
  cache k(c, {.ttl = 500ms, .ttl_jitter = 0});
  const std::vector<std::string> feed = {"feed"};
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(*run_task(loop, k.set(std::to_string(i).insert(0, "item:"), "x", feed)));
  EXPECT_EQ(admin.call({"ZCARD", k.tag_key("feed")}).integer, 60);
  // Every value expires (waited for, not timed: on a loaded machine the 60 writes may take longer
  // than a TTL, and a fixed pause left the last ones alive).
  std::vector<std::string> keys;
  for (int i = 0; i < 60; ++i) keys.push_back(k.value_key("item:" + std::to_string(i)));
  std::vector<std::string_view> exists = {"EXISTS"};
  exists.insert(exists.end(), keys.begin(), keys.end());
  ASSERT_TRUE(test::run_until(loop, [&] { return admin.call(exists).integer == 0; }, 5s));
  cache longer(c, {.ttl = 60s, .ttl_jitter = 0});
  ASSERT_TRUE(*run_task(loop, longer.set("item:last", "x", feed)));
  EXPECT_EQ(admin.call({"ZCARD", k.tag_key("feed")}).integer, 1);
  EXPECT_EQ(*run_task(loop, longer.invalidate_tag("feed")), 1);
}

// A key may look like anything, "tag:red" included: it is not the tag set of "red" (value keys once
// had no kind of their own, so it was, and a tagged write then failed with WRONGTYPE).
TEST_F(Cache, KeysNamedLikeTagsAreNotTagSets) {
  cache k(c, {});
  const std::vector<std::string> red = {"red"};
  EXPECT_NE(k.value_key("tag:red"), k.tag_key("red"));
  ASSERT_TRUE(*run_task(loop, k.set("tag:red", "just a value")));
  const auto tagged = run_task(loop, k.set("a", "1", red));
  ASSERT_TRUE(tagged) << tagged.error().what();
  EXPECT_EQ(*run_task(loop, k.invalidate_tag("red")), 1);
  counting_loader source{loop, "loaded"};
  const auto kept = run_task(loop, k.get_or_load("tag:red", source.get()));
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->value, "just a value");
  EXPECT_EQ(kept->source, cache_source::hit);
}

// A struct goes through the codec into Redis and back; write-through stores the encoded bytes.
TEST_F(Cache, TypedValuesRoundTripThroughTheCodec) {
  typed_cache<user, user_codec> users(c, {.space = "users"});
  user_loader source{{7, "ada"}};
  const auto first = run_task(loop, users.get_or_load("7", source.get()));
  ASSERT_TRUE(first);
  EXPECT_EQ(first->source, cache_source::loaded);
  EXPECT_EQ(first->value, (user{7, "ada"}));
  EXPECT_EQ(admin.call({"GET", users.value_key("7")}).text, "+00000007ada");  // the byte cache's mark, then the codec's bytes
  const auto second = run_task(loop, users.get_or_load("7", source.get()));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->source, cache_source::hit);
  EXPECT_EQ(second->value, (user{7, "ada"}));
  EXPECT_FALSE(second->failure);
  EXPECT_EQ(source.calls, 1);

  const std::vector<std::string> team = {"team:1"};
  ASSERT_TRUE(*run_task(loop, users.set("8", user{8, "grace|hopper"}, team)));
  const auto written = run_task(loop, users.get_or_load("8", source.get()));
  EXPECT_EQ(written->value, (user{8, "grace|hopper"}));
  EXPECT_EQ(source.calls, 1);
  EXPECT_EQ(*run_task(loop, users.invalidate_tag("team:1")), 1);

  typed_cache<std::string> plain(c, {.space = "plain"});  // bytes by default
  ASSERT_TRUE(*run_task(loop, plain.set("k", std::string("raw bytes"))));
  EXPECT_EQ(run_task(loop, plain.get_or_load("k", {}))->value, "raw bytes");
}

// Bytes the codec cannot decode (corrupt, or written by another program): reported as
// decode_failed, deleted and loaded again; the next read hits the good value. A loader whose own
// value does not decode is an error, not a crash.
TEST_F(Cache, CorruptStoredValueIsReportedAndReloaded) {
  typed_cache<user, user_codec> users(c, {.space = "users"});
  admin.call({"SET", users.value_key("9"), "+garbage", "PX", "60000"});
  user_loader source{{9, "lin"}};
  const auto r = run_task(loop, users.get_or_load("9", source.get()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->value, (user{9, "lin"}));
  EXPECT_EQ(r->source, cache_source::loaded);
  ASSERT_TRUE(r->failure);
  EXPECT_EQ(r->failure->code, make_error_code(errc::decode_failed));
  EXPECT_NE(r->failure->what().find("no 8-digit hex id"), std::string::npos) << r->failure->what();
  EXPECT_EQ(source.calls, 1);
  EXPECT_EQ(admin.call({"GET", users.value_key("9")}).text, "+00000009lin");
  const auto again = run_task(loop, users.get_or_load("9", source.get()));
  EXPECT_EQ(again->source, cache_source::hit);
  EXPECT_FALSE(again->failure);

  struct refusing_codec {
    std::string encode(const user&) const { return "x"; }
    resp::result<user> decode(std::string_view) const {
      return resp::error{std::make_error_code(std::errc::invalid_argument), "never"};
    }
  };
  typed_cache<user, refusing_codec> broken(c, {.space = "broken"});
  const auto bug = run_task(loop, broken.get_or_load("1", [&]() -> task<typed_cache<user, refusing_codec>::load_result> {
    co_return std::optional<user>(user{1, "x"});
  }));
  ASSERT_FALSE(bug);
  EXPECT_EQ(bug.error().code, make_error_code(errc::decode_failed));
}

// Redis killed mid-run: callers still get the loader's values, marked degraded; after a restart on
// the same socket the client recovers and the cache stores again.
TEST(CacheFailOpen, ServesLoaderValuesWhileRedisIsDown) {
  // The socket lives in a directory of the test's own: a server's temp dir goes with the server.
  char dir[] = "/tmp/redring-cache-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/redis.sock";
  auto server = std::make_unique<test::redis_server>(std::vector<std::string>{}, path);
  net::loop loop;
  client::options o = options_for(*server);
  o.reconnect.max_delay = 50ms;
  client::client c(loop, o);
  cache k(c, {.timeout = 100ms});
  counting_loader source{loop, "v", 1ms};
  EXPECT_EQ(run_task(loop, k.get_or_load("x", source.get()))->source, cache_source::loaded);
  server.reset();
  for (int i = 0; i < 3; ++i) {
    const auto r = run_task(loop, k.get_or_load("x", source.get()));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->value, "v");
    EXPECT_EQ(r->source, cache_source::degraded);
    EXPECT_TRUE(r->failure);
  }
  {
    test::redis_server again({}, path);
    bool stored = false;
    for (int i = 0; i < 100 && !stored; ++i) {
      const auto r = run_task(loop, k.get_or_load("x", source.get()));
      stored = r && r->source == cache_source::loaded;
      if (!stored) test::pause(loop, 20ms);
    }
    EXPECT_TRUE(stored);
    EXPECT_EQ(run_task(loop, k.get_or_load("x", source.get()))->source, cache_source::hit);
  }
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace redring::patterns
