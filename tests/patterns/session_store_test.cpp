// SPDX-License-Identifier: MIT
// The session store against a real redis-server: create and read back, the idle timeout sliding
// forward, the absolute lifetime, set, destroy, "log out everywhere", forged ids, and errors as
// values.
#include "patterns/session_store.hpp"

#include "patterns/script.hpp"

#include "tests/patterns/commandstats.hpp"
#include "tests/patterns/run_task.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <signal.h>

#include <atomic>
#include <limits>
#include <stdexcept>

#include <set>
#include <string>
#include <vector>

// Fault injection: while `fail_random` is set, OpenSSL's RAND_bytes (looked up through this
// executable first) reports failure; otherwise it is the real one.
namespace {
std::atomic<bool> fail_random{false};
}  // namespace
extern "C" int RAND_bytes(unsigned char* buf, int num) {
  if (fail_random.load()) return 0;
  using fn = int (*)(unsigned char*, int);
  static const auto real = reinterpret_cast<fn>(::dlsym(RTLD_NEXT, "RAND_bytes"));
  return real(buf, num);
}

namespace redring::patterns {
namespace {

using namespace std::chrono_literals;
using test::options_for;
using test::run_task;

class SessionStore : public ::testing::Test, protected test::pattern_world {
 protected:

  std::string create(session_store& s, std::string_view user, const session_fields& fields = {}) {
    auto id = run_task(loop, s.create(user, fields));
    EXPECT_TRUE(id) << id.error().what();
    return id ? *id : std::string();
  }
  // True if `id` names a live session (a failed read fails the test).
  bool live(session_store& s, std::string_view id) {
    auto got = run_task(loop, s.get(id));
    EXPECT_TRUE(got) << got.error().what();
    return got && got->has_value();
  }
};

TEST_F(SessionStore, ASessionReadsBackWithItsUserAndFields) {
  session_store s(c);
  const std::string id = create(s, "alice", {{"cart", "3 items"}, {"theme", "dark"}});
  EXPECT_EQ(id.size(), 16u + 64u);
  const auto got = run_task(loop, s.get(id));
  ASSERT_TRUE(got && *got) << (got ? "no session" : got.error().what());
  EXPECT_EQ((*got)->user, "alice");
  EXPECT_EQ((*got)->fields, (session_fields{{"cart", "3 items"}, {"theme", "dark"}}));
  ASSERT_TRUE(*run_task(loop, s.set(id, "cart", "4 items")));
  EXPECT_EQ((*run_task(loop, s.get(id)))->fields.at("cart"), "4 items");
  // An anonymous session: no user, no index.
  const std::string anonymous = create(s, "");
  const auto a = run_task(loop, s.get(anonymous));
  ASSERT_TRUE(a && *a);
  EXPECT_EQ((*a)->user, "");
  EXPECT_TRUE((*a)->fields.empty());
}

TEST_F(SessionStore, IdsAreUniqueAndAUsersSessionsShareItsSlotTag) {
  session_store s(c);
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.insert(create(s, "bob"));
  EXPECT_EQ(ids.size(), 200u);
  std::set<std::string> tags;
  for (const std::string& id : ids) tags.insert(id.substr(0, 16));
  EXPECT_EQ(tags.size(), 1u);  // one user, one tag
  EXPECT_EQ(s.key(*ids.begin()), "sess:{" + ids.begin()->substr(0, 16) + "}:" + ids.begin()->substr(16));
}

TEST_F(SessionStore, UseSlidesTheIdleTimeoutForward) {
  session_store s(c, {.idle_timeout = 60s});
  const std::string id = create(s, "carol");
  EXPECT_GT(admin.call({"PTTL", s.key(id)}).integer, 50'000);
  (void)admin.call({"PEXPIRE", s.key(id), "1000"});  // as if it had sat idle for 59 s
  ASSERT_TRUE(live(s, id));
  EXPECT_GT(admin.call({"PTTL", s.key(id)}).integer, 50'000);  // a use restarts it
  (void)admin.call({"PEXPIRE", s.key(id), "1000"});
  ASSERT_TRUE(*run_task(loop, s.set(id, "k", "v")));
  EXPECT_GT(admin.call({"PTTL", s.key(id)}).integer, 50'000);
  // Idle past the timeout: gone.
  (void)admin.call({"PEXPIRE", s.key(id), "1"});
  test::pause(loop, 20ms);
  const auto gone = run_task(loop, s.get(id));
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  EXPECT_FALSE(*run_task(loop, s.set(id, "k", "v")));
}

TEST_F(SessionStore, TheAbsoluteLifetimeEndsASessionHoweverMuchItIsUsed) {
  session_store s(c, {.idle_timeout = 60s, .max_lifetime = 10s});
  const std::string id = create(s, "dave");
  const std::int64_t ttl = admin.call({"PTTL", s.key(id)}).integer;
  EXPECT_GT(ttl, 5'000);
  EXPECT_LE(ttl, 10'000);  // capped by the lifetime, not the idle timeout
  ASSERT_TRUE(live(s, id));
  EXPECT_LE(admin.call({"PTTL", s.key(id)}).integer, 10'000);  // a use does not reach past the end
  // The end passes (moved into the past rather than waited for): the next use finds it over.
  (void)admin.call({"HSET", s.key(id), "redring:expires_at", "1"});
  const auto over = run_task(loop, s.get(id));
  ASSERT_TRUE(over);
  EXPECT_FALSE(over->has_value());
  EXPECT_EQ(admin.call({"EXISTS", s.key(id)}).integer, 0);  // and deleted
}

// Rotation: the fields move to a new id, the old one stops working; logging in makes the anonymous
// session the user's (in their index, with a whole lifetime); the same user keeps the absolute end.
TEST_F(SessionStore, RotationMovesTheSessionToANewIdAndEndsTheOld) {
  session_store s(c, {.idle_timeout = 60s, .max_lifetime = 10s});
  const std::string anonymous = create(s, "", {{"cart", "3 items"}});
  // Make the anonymous session's end near: a login must not inherit it.
  const resp::value now = admin.call({"TIME"});
  const std::int64_t now_ms = std::stoll(now.elements[0].text) * 1000 + std::stoll(now.elements[1].text) / 1000;
  (void)admin.call({"HSET", s.key(anonymous), "redring:expires_at", std::to_string(now_ms + 2000)});
  const auto logged_in = run_task(loop, s.rotate(anonymous, "erin"));
  ASSERT_TRUE(logged_in) << logged_in.error().what();
  ASSERT_TRUE(logged_in->has_value());
  const std::string id = **logged_in;
  EXPECT_NE(id, anonymous);
  EXPECT_FALSE(live(s, anonymous));  // the planted or seen id is over
  EXPECT_EQ(admin.call({"EXISTS", s.key(anonymous)}).integer, 0);
  const auto got = run_task(loop, s.get(id));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->user, "erin");
  EXPECT_EQ((*got)->fields, (session_fields{{"cart", "3 items"}}));
  EXPECT_GT(admin.call({"PTTL", s.key(id)}).integer, 5'000);  // a lifetime of its own, not the 2 s left
  EXPECT_EQ(admin.call({"SISMEMBER", s.key(id).substr(0, s.key(id).find("}:") + 2) + "index", s.key(id)}).integer, 1);

  // The same user: a new id, the same absolute end (set to a value no fresh lifetime would give).
  const std::string end_before = std::to_string(now_ms + 7'777);
  (void)admin.call({"HSET", s.key(id), "redring:expires_at", end_before});
  const auto again = run_task(loop, s.rotate(id));
  ASSERT_TRUE(again && again->has_value());
  EXPECT_FALSE(live(s, id));
  EXPECT_EQ(admin.call({"HGET", s.key(**again), "redring:expires_at"}).text, end_before);
  EXPECT_EQ((*run_task(loop, s.get(**again)))->user, "erin");
  const auto explicit_same = run_task(loop, s.rotate(**again, "erin"));
  ASSERT_TRUE(explicit_same && explicit_same->has_value());
  EXPECT_EQ(admin.call({"HGET", s.key(**explicit_same), "redring:expires_at"}).text, end_before);
  // destroy_all finds the rotated session in the index.
  EXPECT_EQ(*run_task(loop, s.destroy_all("erin")), 1);
  EXPECT_FALSE(live(s, **explicit_same));

  // No session: a missing, ended or malformed id rotates to nothing.
  const auto missing = run_task(loop, s.rotate(**explicit_same));
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
  EXPECT_FALSE(run_task(loop, s.rotate("not-an-id"))->has_value());
  const std::string ended = create(s, "fred");
  (void)admin.call({"HSET", s.key(ended), "redring:expires_at", "1"});
  EXPECT_FALSE(run_task(loop, s.rotate(ended))->has_value());
  EXPECT_EQ(admin.call({"EXISTS", s.key(ended)}).integer, 0);
}

// A rotation racing "log out everywhere" cannot leave the session alive under its new id (the same
// user's rotation moves it in one script: destroy_all sees it under one id or the other). Before,
// the session was taken, destroy_all found nothing, and the new id was created after it.
TEST_F(SessionStore, ARotationRacingDestroyAllLeavesNoSession) {
  session_store s(c, {.idle_timeout = 60s});
  for (int round = 0; round < 20; ++round) {
    const std::string id = create(s, "gina");
    std::optional<resp::result<std::optional<std::string>>> rotated;
    std::optional<resp::result<std::int64_t>> ended;
    // Both issued in the same loop turn, in both orders: they leave in one write, run back to back.
    if (round % 2 == 0) {
      patterns::spawn(s.rotate(id), [&](auto v) { rotated.emplace(std::move(v)); });
      patterns::spawn(s.destroy_all("gina"), [&](auto v) { ended.emplace(std::move(v)); });
    } else {
      patterns::spawn(s.destroy_all("gina"), [&](auto v) { ended.emplace(std::move(v)); });
      patterns::spawn(s.rotate(id), [&](auto v) { rotated.emplace(std::move(v)); });
    }
    ASSERT_TRUE(test::run_until(loop, [&] { return rotated.has_value() && ended.has_value(); }));
    ASSERT_TRUE(*rotated && *ended);
    EXPECT_EQ(**ended, 1) << "round " << round;  // it found the session, under one id or the other
    if (**rotated) {
      EXPECT_FALSE(live(s, ***rotated)) << "round " << round;
    }
    EXPECT_FALSE(live(s, id));
  }
}

// An absolute end someone else wrote as a fraction or not as a number: read as the other scripts
// read it (floored; not a number: none), and the rotated session has a TTL. Before, a fractional
// end made PEXPIRE fail after the hash was written (a key that never expired), and text failed the
// rotation after the old session was taken.
TEST_F(SessionStore, RotationReadsAnOddAbsoluteEndAsGetDoes) {
  session_store s(c, {.idle_timeout = 60s});
  const std::string id = create(s, "hank");
  const resp::value now = admin.call({"TIME"});
  const std::int64_t now_ms = std::stoll(now.elements[0].text) * 1000 + std::stoll(now.elements[1].text) / 1000;
  (void)admin.call({"HSET", s.key(id), "redring:expires_at", std::to_string(now_ms + 30'000) + ".5"});
  ASSERT_TRUE(live(s, id));
  const auto fractional = run_task(loop, s.rotate(id));
  ASSERT_TRUE(fractional && *fractional) << (fractional ? "no session" : fractional.error().what());
  const std::int64_t ttl = admin.call({"PTTL", s.key(**fractional)}).integer;
  EXPECT_GT(ttl, 20'000);
  EXPECT_LE(ttl, 30'000);
  (void)admin.call({"HSET", s.key(**fractional), "redring:expires_at", "never"});
  ASSERT_TRUE(live(s, **fractional));
  const auto text = run_task(loop, s.rotate(**fractional));
  ASSERT_TRUE(text && *text) << (text ? "no session" : text.error().what());
  EXPECT_GT(admin.call({"PTTL", s.key(**text)}).integer, 50'000);  // no end: the idle timeout
  // The login path (take, then create) with the same odd end: a whole lifetime, a TTL.
  (void)admin.call({"HSET", s.key(**text), "redring:expires_at", "1e400"});
  const auto login = run_task(loop, s.rotate(**text, "ivan"));
  ASSERT_TRUE(login && *login) << (login ? "no session" : login.error().what());
  EXPECT_GT(admin.call({"PTTL", s.key(**login)}).integer, 50'000);
  EXPECT_EQ(admin.call({"EVAL", "local n = 0 for _, k in ipairs(redis.call('KEYS', 'sess:*')) do "
                                "if redis.call('PTTL', k) == -1 then n = n + 1 end end return n", "0"}).integer,
            0);  // no key without a TTL
}

TEST_F(SessionStore, DestroyAllLogsAUserOutEverywhereAndNobodyElse) {
  session_store s(c);
  const std::vector<std::string> alice = {create(s, "alice"), create(s, "alice"), create(s, "alice")};
  const std::string bob = create(s, "bob");
  const std::string anonymous = create(s, "");
  ASSERT_TRUE(*run_task(loop, s.destroy(alice[0])));
  EXPECT_FALSE(*run_task(loop, s.destroy(alice[0])));  // once
  const auto n = run_task(loop, s.destroy_all("alice"));
  ASSERT_TRUE(n) << n.error().what();
  EXPECT_EQ(*n, 2);
  for (const std::string& id : alice) EXPECT_FALSE(live(s, id));
  EXPECT_TRUE(live(s, bob));
  EXPECT_TRUE(live(s, anonymous));
  EXPECT_EQ(*run_task(loop, s.destroy_all("alice")), 0);
  EXPECT_FALSE(run_task(loop, s.destroy_all("")));  // anonymous sessions have no index
}

TEST_F(SessionStore, ForgedIdsAreNoSessionAndCostNoRoundTrip) {
  session_store s(c);
  const std::string real = create(s, "eve");
  const auto before = test::read_command_counts(admin);
  for (const std::string& forged : {std::string(), std::string("x"), real.substr(0, real.size() - 1), real + "0",
                                    std::string(real.size(), 'g'), std::string("../../etc/passwd"),
                                    std::string(80, '0').replace(10, 1, "}"), std::string(100000, 'a')}) {
    const auto got = run_task(loop, s.get(forged));
    ASSERT_TRUE(got);
    EXPECT_FALSE(got->has_value());
    EXPECT_FALSE(*run_task(loop, s.set(forged, "k", "v")));
    EXPECT_FALSE(*run_task(loop, s.destroy(forged)));
    EXPECT_EQ(s.key(forged), "");
  }
  EXPECT_EQ(test::read_command_counts(admin).scripts, before.scripts);
  // A well-formed id nobody issued: no session.
  std::string guessed = real;
  guessed.back() = guessed.back() == '0' ? '1' : '0';
  EXPECT_FALSE(live(s, guessed));
}

TEST_F(SessionStore, TheStoresOwnFieldsAreRefusedAndHidden) {
  session_store s(c);
  EXPECT_FALSE(run_task(loop, s.create("frank", {{"redring:user", "mallory"}})));
  const std::string id = create(s, "frank", {{"redringish", "fine"}});
  const auto set = run_task(loop, s.set(id, "redring:user", "mallory"));
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().code, std::errc::invalid_argument);
  const auto got = run_task(loop, s.get(id));
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->user, "frank");
  EXPECT_EQ((*got)->fields, (session_fields{{"redringish", "fine"}}));  // no redring: fields shown
}

TEST_F(SessionStore, AFailingCsprngCreatesNoSession) {
  session_store s(c);
  fail_random = true;
  const auto named = run_task(loop, s.create("kim"));
  const auto anonymous = run_task(loop, s.create(""));
  fail_random = false;
  ASSERT_FALSE(named);
  EXPECT_NE(named.error().message.find("CSPRNG"), std::string::npos) << named.error().what();
  EXPECT_FALSE(anonymous);
  EXPECT_EQ(admin.call({"DBSIZE"}).integer, 0);  // nothing written
  EXPECT_TRUE(run_task(loop, s.create("kim")));  // and working again
}

TEST_F(SessionStore, HugeTimeoutsStillExpire) {
  session_store s(c, {.idle_timeout = std::chrono::milliseconds::max(), .max_lifetime = std::chrono::milliseconds::max()});
  const std::string id = create(s, "lee");
  ASSERT_FALSE(id.empty());
  const std::int64_t ttl = admin.call({"PTTL", s.key(id)}).integer;
  EXPECT_GT(ttl, 0);  // an expiry, not -1
  EXPECT_LE(ttl, 10'000'000'000'000);
  ASSERT_TRUE(live(s, id));
  EXPECT_GT(admin.call({"PTTL", s.key(id)}).integer, 0);
}

TEST_F(SessionStore, ASecretKeysTheTagAndEveryStoreSharingItAgrees) {
  session_store plain(c);
  session_store keyed(c, {.tag_secret = "s3cret"});
  session_store same_secret(c, {.tag_secret = "s3cret"});
  session_store other_secret(c, {.tag_secret = "another"});
  const std::string a = create(plain, "mia"), b = create(keyed, "mia"), d = create(other_secret, "mia");
  EXPECT_EQ(a.substr(0, 16), sha1_hex("mia").substr(0, 16));
  EXPECT_NE(b.substr(0, 16), a.substr(0, 16));  // not the plain SHA1 any more
  EXPECT_NE(d.substr(0, 16), b.substr(0, 16));
  EXPECT_TRUE(live(same_secret, b));
  EXPECT_EQ(*run_task(loop, same_secret.destroy_all("mia")), 1);  // finds the keyed index
  EXPECT_FALSE(live(keyed, b));
  EXPECT_TRUE(live(plain, a));
  EXPECT_TRUE(live(other_secret, d));
}

TEST_F(SessionStore, APrefixWhoseBracesSplitTheSlotsIsRefused) {
  EXPECT_THROW(session_store(c, {.prefix = "x{}:"}), std::invalid_argument);
  EXPECT_NO_THROW(session_store(c, {.prefix = "app:"}));
}

TEST_F(SessionStore, RedisGoneIsAnErrorValue) {
  session_store s(c, {.timeout = 300ms});
  const std::string id = create(s, "gina");
  ::kill(server.pid(), SIGKILL);
  EXPECT_FALSE(run_task(loop, s.get(id)));
  EXPECT_FALSE(run_task(loop, s.create("gina")));
  EXPECT_FALSE(run_task(loop, s.destroy_all("gina")));
}

}  // namespace
}  // namespace redring::patterns
