// SPDX-License-Identifier: MIT
// redring-fuzz, client mode: the hostile server finds the planted crash and hang of a deliberately
// buggy client and minimises each to the one reply that causes it; our own client and redis-cli
// survive every generated reply stream (no crash, no hang); reply plans are deterministic; replay.
#include "tools/fuzz/hostile_server.hpp"
#include "tools/fuzz/options.hpp"

#include "tests/tools/redring_fuzz_test_support.hpp"
#include "tests/support/redis_server.hpp"

#include <gtest/gtest.h>

#include <map>

#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <stdexcept>

namespace redring::fuzz {
namespace {

using testing::temp_dir;

// Runs client mode (seed 1, 30 runs) against `argv` on a fresh hostile server, with the options
// `adjust` changes; reproducers go to `out`.
run_stats fuzz_against(std::vector<std::string> argv, const temp_dir& out,
                       const std::function<void(fuzz_options&)>& adjust = {}) {
  std::string why;
  auto server = hostile_server::listen("", 0, why);
  if (!server) throw std::runtime_error(why);
  fuzz_options o;
  o.mode = mode::client;
  o.seed = 1;
  o.iterations = 30;
  o.out_dir = out.path;
  o.client_argv = std::move(argv);
  o.timeout = std::chrono::milliseconds(3000);
  o.minimise_time = std::chrono::seconds(20);
  if (adjust) adjust(o);
  return fuzz_client(*server, o, {});
}

void expect_no_findings(const run_stats& stats) {
  EXPECT_EQ(stats.cases, 30u);
  for (const auto& f : stats.findings) ADD_FAILURE() << to_string(f.kind) << ": " << f.detail << "\n" << f.summary;
}

TEST(FuzzClient, PlansAreDeterministicAndVaried) {
  EXPECT_EQ(make_reply_plan(5, 9, 8), make_reply_plan(5, 9, 8));
  EXPECT_NE(make_reply_plan(5, 9, 8), make_reply_plan(6, 9, 8));
  std::set<char> first_bytes;
  std::set<delivery> styles;
  for (std::uint64_t i = 0; i < 200; ++i) {
    for (const frame& f : make_reply_plan(1, i, 8).frames) {
      EXPECT_EQ(f.kind, frame_kind::reply);
      if (!f.bytes.empty()) first_bytes.insert(f.bytes[0]);
      styles.insert(f.how);
    }
  }
  for (char t : std::string_view("+-:$*_,#!=(%~|>")) EXPECT_TRUE(first_bytes.count(t)) << "no reply starts with " << t;
  EXPECT_EQ(styles.size(), 5u);
}

TEST(FuzzClient, FindsAndMinimisesThePlantedCrashAndHang) {
  temp_dir out;
  const run_stats stats = fuzz_against({REDRING_FUZZ_BUGGY_CLIENT, "{socket}"}, out, [](fuzz_options& o) {
    o.timeout = std::chrono::milliseconds(800);  // the planted hang costs this per run
    o.replies = 3;
  });
  const finding_record* crash = nullptr;
  const finding_record* hang = nullptr;
  for (const auto& f : stats.findings) {
    // A run slowed down by a loaded machine may time out once; the planted faults reproduce.
    if (f.kind == finding_kind::crash && f.reproduced && crash == nullptr) crash = &f;
    if (f.kind == finding_kind::hang && f.reproduced && hang == nullptr) hang = &f;
  }
  ASSERT_NE(crash, nullptr);
  ASSERT_NE(hang, nullptr);
  EXPECT_NE(crash->detail.find("signal 6"), std::string::npos) << crash->detail;
  // Each minimised to one reply whose first byte is the planted type: a double, a boolean.
  EXPECT_EQ(crash->frames_minimal, 1u) << crash->summary;
  EXPECT_EQ(crash->summary.rfind("reply whole \",", 0), 0u) << crash->summary;
  EXPECT_EQ(hang->frames_minimal, 1u) << hang->summary;
  EXPECT_EQ(hang->summary.rfind("reply whole \"#", 0), 0u) << hang->summary;

  // Replay from the reproducer file, by the binary.
  std::string text;
  EXPECT_EQ(testing::run_tool("replay " + crash->file, text), 1) << text;
  EXPECT_NE(text.find("reproduced crash"), std::string::npos) << text;
}

TEST(FuzzClient, OurClientSurvivesEveryReply) {
  temp_dir out;
  const run_stats stats = fuzz_against({REDRING_FUZZ_CLIENT_TARGET, "{socket}"}, out, [](fuzz_options& o) {
    o.timeout = std::chrono::milliseconds(15000);  // eight commands, each may wait its 1 s timeout
    o.minimise = false;
  });
  expect_no_findings(stats);
  EXPECT_GT(stats.commands, 75u);          // a cut connection ends a run early: reconnection is off
  // Every run exited 0: errors are values (a client that always exited 1 would pass a count of
  // distinct codes).
  EXPECT_EQ(stats.exit_codes, (std::map<int, std::uint64_t>{{0, stats.cases}}));
}

TEST(FuzzClient, RedisCliSurvivesEveryReply) {
  if (::access("/usr/bin/redis-cli", X_OK) != 0) GTEST_SKIP() << "redis-cli not installed (Debian: redis-tools)";
  temp_dir out;
  expect_no_findings(fuzz_against({"redis-cli", "-s", "{socket}", "GET", "k"}, out,
                                  [](fuzz_options& o) { o.minimise = false; }));
}

TEST(FuzzClient, ListensOnALoopbackPortToo) {
  // A port free a moment ago (a port from the pid could be taken, and the test then skipped itself).
  const int port = test::free_loopback_port();
  std::string why;
  auto server = hostile_server::listen("", port, why);
  ASSERT_TRUE(server) << why;
  EXPECT_EQ(server->describe(), "127.0.0.1:" + std::to_string(port));
  fuzz_case plan;
  frame f;
  f.kind = frame_kind::reply;
  f.bytes = "+PONG\r\n";
  plan.frames.push_back(f);
  const client_run run = server->run({"sh", "-c", "exit 3"}, plan, std::chrono::milliseconds(2000), true);
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_EQ(run.found.kind, finding_kind::exit_status);
}

}  // namespace
}  // namespace redring::fuzz
