// SPDX-License-Identifier: MIT
// redring-fuzz, what a review of the tool turned up: safe mode on a server the tool does not own
// (no counts or offsets that build GiBs, no replay of dangerous frames, nothing that reaches other
// clients), the connection's own state (the URL's database, no RESET after AUTH), a lost sentinel,
// a private server that cannot be restarted, equal findings, the hostile server's socket path.
#include "tools/fuzz/command_table.hpp"
#include "tools/fuzz/generator.hpp"
#include "tools/fuzz/hostile_server.hpp"
#include "tools/fuzz/minimiser.hpp"
#include "tools/fuzz/probe.hpp"
#include "tools/fuzz/report.hpp"
#include "tools/fuzz/server_fuzzer.hpp"

#include "tests/support/fake_server.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/tools/redring_fuzz_test_support.hpp"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <set>

namespace redring::fuzz {
namespace {

using namespace std::chrono_literals;
using testing::quick_options;
using testing::real_table;
using testing::temp_dir;

// Arguments that Redis would take as counts and offsets big enough to build GiBs, however they
// came about: drawn, or a refused number that a mutation cut short (-9223372036854775808 to
// -92233720, a reviewer's SRANDMEMBER that took a capped server out of memory).
std::size_t huge_counts_in(const generator& gen) {
  std::size_t n = 0;
  for (std::uint64_t i = 0; i < 600; ++i) {
    for (const frame& f : gen.make_case(5, i).frames) {
      for (std::size_t a = 1; a < f.args.size(); ++a) n += is_huge_count(f.args[a]) ? 1 : 0;
    }
  }
  return n;
}

TEST(FuzzGenerator, SafeModeLeavesOutCountsAndOffsetsThatBuildGigabytes) {
  // `SRANDMEMBER rf:intset -2147483648` made a default-configured server build a 15 GiB reply.
  const std::vector<std::string> only = {"srandmember", "zrandmember", "hrandfield", "setbit", "setrange", "getrange"};
  const generator risky(real_table(), {.mutate_percent = 100, .only = only});
  EXPECT_GT(huge_counts_in(risky), 0u);  // the control: --allow-dangerous and the private server keep them
  const generator safe(real_table(), {.mutate_percent = 100, .only = only, .bounded_integers = true});
  EXPECT_EQ(huge_counts_in(safe), 0u);
  EXPECT_TRUE(is_huge_count("-92233720"));
  EXPECT_TRUE(is_huge_count("4611686018427387903"));    // LONG_MAX / 2: a count Redis takes
  EXPECT_FALSE(is_huge_count("4611686018427387904"));   // one more: refused as a count
  EXPECT_FALSE(is_huge_count("-9223372036854775808"));
  EXPECT_FALSE(is_huge_count("65536"));
  EXPECT_FALSE(is_huge_count("1e9"));
  EXPECT_EQ(huge_count_in(raw_frame("*3\r\n$11\r\nSRANDMEMBER\r\n$1\r\nk\r\n$9\r\n-92233720\r\n")), "-92233720");
  EXPECT_EQ(huge_count_in(raw_frame("*2147483648\r\n$2147483648\r\n")), "");  // lengths, not counts
  // Values the server refuses stay: they test its parsing, and cost it nothing.
  bool beyond_int64 = false;
  rng r(3);
  for (int i = 0; i < 2000 && !beyond_int64; ++i) beyond_int64 = safe.pick_integer(r) == "9223372036854775808";
  EXPECT_TRUE(beyond_int64);
}

TEST(FuzzGenerator, NoResetAfterAuthAndWaitKeepsItsTimeout) {
  // RESET logs the connection out: the case's DISCARD and sentinel then got NOAUTH (a false desync).
  const generator plain(real_table(), {.only = {"reset", "get"}});
  const generator authed(real_table(), {.only = {"reset", "get"}, .keep_connection_state = true});
  auto names = [](const generator& g) {
    std::set<std::string> out;
    for (const command_spec* c : g.eligible()) out.insert(c->name);
    return out;
  };
  EXPECT_EQ(names(plain), (std::set<std::string>{"get", "reset"}));
  EXPECT_EQ(names(authed), (std::set<std::string>{"get"}));
  // WAIT is not flagged blocking, but a mutated timeout (0: forever) held a case up for --timeout.
  const generator waits(real_table(), {.mutate_percent = 100, .only = {"wait"}});
  std::size_t seen = 0;
  for (std::uint64_t i = 0; i < 50; ++i) {
    const fuzz_case c = waits.make_case(1, i);
    for (std::size_t k = waits.setup_frames().size(); k < c.frames.size(); ++k) {
      const frame& f = c.frames[k];
      if (f.kind != frame_kind::command) continue;
      ASSERT_EQ(f.args.size(), 3u) << summarize({{f}});
      EXPECT_EQ(f.args[0], "WAIT");
      EXPECT_EQ(f.args[2], "10");
      ++seen;
    }
  }
  EXPECT_GT(seen, 0u);
}

TEST(FuzzCommands, WhatReachesOtherClientsIsDangerousAndRawFramesAreRead) {
  const command_table& t = real_table();
  for (const char* name : {"publish", "spublish", "script|kill", "function|kill", "client|unblock", "flushall", "config|set"}) {
    const command_spec* c = t.find(name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_TRUE(c->dangerous) << name;
  }
  EXPECT_FALSE(t.find("get")->dangerous);
  EXPECT_FALSE(t.find("client|setname")->dangerous);
  EXPECT_TRUE(t.find("config|get")->dangerous);  // @admin
  // A command frame by its name and subcommand, in any case.
  EXPECT_EQ(dangerous_in(t, command_frame({"FlushAll"})), "flushall");
  EXPECT_EQ(dangerous_in(t, command_frame({"config", "SET", "maxmemory", "1"})), "config|set");
  EXPECT_EQ(dangerous_in(t, command_frame({"CLIENT", "SETNAME", "x"})), "");
  EXPECT_EQ(dangerous_in(t, command_frame({"SET", "k", "flushall"})), "");  // a value, not a command
  EXPECT_EQ(dangerous_in(t, command_frame({"SHUTDOWN"})), "shutdown");      // excluded counts too
  // A raw frame by every word of its bytes: RESP, inline, pipelined, cut.
  EXPECT_EQ(dangerous_in(t, raw_frame("*1\r\n$8\r\nFLUSHALL\r\n")), "flushall");
  EXPECT_EQ(dangerous_in(t, raw_frame("*4\r\n$6\r\nCONFIG\r\n$3\r\nset\r\n$9\r\nmaxmemory\r\n$1\r\n1\r\n")), "config|set");
  EXPECT_EQ(dangerous_in(t, raw_frame("PING\r\nflushdb\r\n")), "flushdb");
  EXPECT_EQ(dangerous_in(t, raw_frame("*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$1\r\nx\r\n")), "");
  EXPECT_EQ(dangerous_in(t, raw_frame("*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nFLUS")), "");
  // Only where a command starts: INFO is @dangerous, CLIENT INFO and COMMAND INFO are not, and an
  // argument that names a command is not one.
  EXPECT_EQ(dangerous_in(t, raw_frame("*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n*1\r\n$3\r\nGE")), "");
  EXPECT_EQ(dangerous_in(t, raw_frame("COMMAND INFO get\r\n")), "");
  EXPECT_EQ(dangerous_in(t, raw_frame("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8\r\nflushall\r\n")), "");
  EXPECT_EQ(dangerous_in(t, raw_frame("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$7\r\nFLUSHDB\r\n")), "flushdb");
  // Without the server's table, a stricter built-in list.
  const command_table fallback = command_table::conservative();
  EXPECT_EQ(dangerous_in(fallback, command_frame({"CONFIG", "GET", "x"})), "config");
  EXPECT_EQ(dangerous_in(fallback, raw_frame("shutdown nosave\r\n")), "shutdown");
  EXPECT_EQ(dangerous_in(fallback, command_frame({"GET", "k"})), "");
}

TEST(FuzzReport, FindingsAreTheSameOnlyWhenEveryByteIs) {
  // Every unminimised case starts with the same long set-up DEL: their one-line summaries, cut at
  // 240 bytes, were equal, and different findings were merged (their reproducers deleted).
  temp_dir out;
  fuzz_options opts;
  opts.out_dir = out.path;
  const std::string long_arg(400, 'k');  // summaries cut each argument at 24 bytes, all at ~240
  run_stats stats;
  for (const char* last : {"GET", "INCR", "GET"}) {
    finding_record rec;
    rec.kind = finding_kind::desync;
    fuzz_case c;
    for (int i = 0; i < 12; ++i) c.frames.push_back(command_frame({"DEL", long_arg}));
    c.frames.push_back(command_frame({last, "k"}));
    save_finding(rec, std::move(c), "server", {}, opts);
    record_finding(stats, std::move(rec));
  }
  ASSERT_EQ(stats.findings.size(), 2u);
  EXPECT_EQ(stats.findings[0].summary, stats.findings[1].summary);  // the summaries do not tell them apart
  EXPECT_EQ(stats.findings[0].occurrences, 2u);
  EXPECT_EQ(stats.findings[1].occurrences, 1u);
  EXPECT_TRUE(std::filesystem::exists(stats.findings[0].file));
  EXPECT_TRUE(std::filesystem::exists(stats.findings[1].file));
}

TEST(FuzzServer, AServerThatAnswersTheCaseButDropsTheSentinelIsADisconnect) {
  // Every command is answered; the connection closes instead of answering DISCARD.
  test::fake_server fake([](const std::vector<std::string>& cmd, int) {
    if (!cmd.empty() && cmd[0] == "DISCARD") return test::fake_reply{"", true};
    if (!cmd.empty() && cmd[0] == "ECHO" && cmd.size() == 2) {
      return test::fake_reply{"$" + std::to_string(cmd[1].size()) + "\r\n" + cmd[1] + "\r\n"};
    }
    return test::fake_reply{"+OK\r\n"};
  });
  endpoint where;
  where.unix_path = fake.socket_path();
  probe_settings s;
  s.timeout = 2000ms;
  const probe_result r = run_case(where, {{command_frame({"SET", "k", "v"}), command_frame({"GET", "k"})}}, s, "nonce-1");
  EXPECT_EQ(r.found.kind, finding_kind::disconnect) << r.found.detail;
  EXPECT_NE(r.found.detail.find("after 2 of 4 replies"), std::string::npos) << r.found.detail;
}

TEST(FuzzServer, AConnectionClosedByQuitOwesNothingAfterIt) {
  test::redis_server server;
  endpoint where;
  where.unix_path = server.socket_path();
  probe_settings s;
  s.timeout = 2000ms;
  const probe_result quit = run_case(where, {{command_frame({"PING"}), command_frame({"QUIT"}), command_frame({"GET", "k"})}}, s, "n-1");
  EXPECT_EQ(quit.found.kind, finding_kind::none) << quit.found.detail;
  const probe_result kill =
      run_case(where, {{command_frame({"PING"}), command_frame({"CLIENT", "KILL", "SKIPME", "no"})}}, s, "n-2");
  EXPECT_EQ(kill.found.kind, finding_kind::none) << kill.found.detail;
}

TEST(FuzzServer, APrivateServerThatCannotBeRestartedStopsTheRun) {
  // It crashed the tool (a result with no per-frame flags was read past its end).
  auto server = std::make_unique<test::redis_server>();
  temp_dir out;
  fuzz_options opts = quick_options(out.path);
  opts.only = {"get", "set"};
  opts.iterations = 20;
  opts.allow_dangerous = true;
  opts.timeout = 1000ms;
  int restarts = 0;
  server_target target{{server->socket_path()}, "private", [&restarts](endpoint&, std::string& why) {
                         ++restarts;
                         why = "redis-server would not start";
                         return false;
                       }};
  server_fuzzer fuzzer(target, opts);
  ASSERT_EQ(fuzzer.prepare(), std::nullopt);
  server.reset();  // gone, and it cannot come back
  const run_stats stats = fuzzer.run({});
  EXPECT_TRUE(stats.unusable);
  EXPECT_NE(stats.stopped.find("cannot restart the private server: redis-server would not start"), std::string::npos)
      << stats.stopped;
  EXPECT_GE(restarts, 1);
  EXPECT_NE(format_report(stats).find("stopped early: cannot restart"), std::string::npos);
}

TEST(FuzzServer, TheUrlsDatabaseIsSelectedOnEveryConnection) {
  test::redis_server server;
  temp_dir out;
  fuzz_options opts = quick_options(out.path);
  ASSERT_EQ(parse_options({"server", "-u", "unix://" + server.socket_path() + "?db=7", "--only", "get,set,incr",
                           "--iterations", "5", "--malformed", "0", "--out", out.path},
                          opts),
            std::nullopt);
  server_target target{opts.target(), "url", {}};
  server_fuzzer fuzzer(target, opts);
  ASSERT_EQ(fuzzer.prepare(), std::nullopt);
  const run_stats stats = fuzzer.run({});
  EXPECT_TRUE(stats.findings.empty()) << stats.findings.front().detail;
  test::blocking_connection c(server.socket_path());
  EXPECT_EQ(c.call({"DBSIZE"}).integer, 0);  // db 0 untouched
  EXPECT_EQ(c.call({"SELECT", "7"}).text, "OK");
  EXPECT_GT(c.call({"DBSIZE"}).integer, 0);
}

TEST(FuzzMinimiser, StopsAtOnceWhenInterrupted) {
  fuzz_case c{{command_frame({"A"}), command_frame({"B"}), command_frame({"C"}), command_frame({"D"})}};
  std::size_t runs = 0;
  interrupted = true;
  minimise_stats ms;
  const fuzz_case got = minimise(c, [&](const fuzz_case&) { return ++runs, true; }, {}, ms);
  interrupted = false;
  EXPECT_EQ(runs, 0u);
  EXPECT_TRUE(ms.exhausted);
  EXPECT_EQ(got, c);
}

TEST(FuzzClient, TheHostileServerReplacesOnlyAStaleSocket) {
  temp_dir dir;
  std::string why;
  // A regular file at the path (client mode's -s is a server's socket in the other modes).
  const std::string file = dir.path + "/victim.txt";
  std::ofstream(file) << "keep me";
  EXPECT_EQ(hostile_server::listen(file, 0, why), nullptr);
  EXPECT_NE(why.find("is not a socket"), std::string::npos) << why;
  EXPECT_EQ(testing::file_text(file), "keep me");
  // A live server's socket.
  test::redis_server server;
  EXPECT_EQ(hostile_server::listen(server.socket_path(), 0, why), nullptr);
  EXPECT_NE(why.find("live server"), std::string::npos) << why;
  test::blocking_connection c(server.socket_path());
  EXPECT_EQ(c.call({"PING"}).text, "PONG");
  // A stale socket (its server gone) is replaced.
  const std::string stale = dir.path + "/stale.sock";
  {
    auto first = hostile_server::listen(stale, 0, why);
    ASSERT_NE(first, nullptr) << why;
    // Leave the socket file behind, as a killed process would.
    struct stat st{};
    ASSERT_EQ(::stat(stale.c_str(), &st), 0);
    const std::string keep = stale + ".tmp";
    std::filesystem::rename(stale, keep);
    first.reset();
    std::filesystem::rename(keep, stale);
  }
  auto second = hostile_server::listen(stale, 0, why);
  EXPECT_NE(second, nullptr) << why;
}

TEST(FuzzBinary, ReplayGuardsAServerItDoesNotOwn) {
  test::redis_server server;
  test::blocking_connection c(server.socket_path());
  ASSERT_EQ(c.call({"SET", "precious", "1"}).text, "OK");
  temp_dir dir;
  std::string out;
  auto write = [&](const std::string& name, const reproducer& r) {
    const std::string path = dir.path + "/" + name;
    std::ofstream(path) << format_reproducer(r);
    return path;
  };
  reproducer flush;
  flush.kind = finding_kind::desync;
  flush.steps.frames = {command_frame({"SET", "rf:string", "x"}), command_frame({"FLUSHALL"})};
  const std::string flush_file = write("flush.repro", flush);
  reproducer raw = flush;
  raw.steps.frames = {raw_frame("*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$9\r\nmaxmemory\r\n$3\r\n1mb\r\n")};
  const std::string raw_file = write("raw.repro", raw);

  EXPECT_EQ(testing::run_tool("replay " + flush_file + " -s " + server.socket_path(), out), 2) << out;
  EXPECT_NE(out.find("sends flushall"), std::string::npos) << out;
  EXPECT_EQ(testing::run_tool("replay " + raw_file + " -s " + server.socket_path(), out), 2) << out;
  EXPECT_NE(out.find("sends config|set"), std::string::npos) << out;
  EXPECT_EQ(c.call({"EXISTS", "precious"}).integer, 1);
  EXPECT_EQ(c.call({"CONFIG", "GET", "maxmemory"}).elements.at(1).text, "0");
  // With --allow-dangerous it runs (and finds no desync: a different kind would not count either).
  EXPECT_EQ(testing::run_tool("replay " + flush_file + " --allow-dangerous -s " + server.socket_path(), out), 0) << out;
  EXPECT_EQ(c.call({"EXISTS", "precious"}).integer, 0);
  // Counts that build gigabytes, in a command or raw frame.
  reproducer huge;
  huge.kind = finding_kind::desync;
  huge.steps.frames = {command_frame({"SETBIT", "rf:missing", "4294967295", "0"})};
  EXPECT_EQ(testing::run_tool("replay " + write("huge.repro", huge) + " -s " + server.socket_path(), out), 2) << out;
  EXPECT_NE(out.find("sends 4294967295"), std::string::npos) << out;
  huge.steps.frames = {raw_frame("*3\r\n$11\r\nSRANDMEMBER\r\n$8\r\nrf:intset\r\n$9\r\n-92233720\r\n")};
  EXPECT_EQ(testing::run_tool("replay " + write("huge-raw.repro", huge) + " -s " + server.socket_path(), out), 2) << out;
  // A user whose ACL refuses COMMAND: judged by the built-in list, a harmless reproducer still runs.
  ASSERT_EQ(c.call({"ACL", "SETUSER", "lim", "on", ">pw", "~*", "+get", "+set", "+ping", "+echo", "+discard", "+del",
                    "+auth", "+select"})
                .text,
            "OK");
  reproducer harmless;
  harmless.kind = finding_kind::desync;
  harmless.steps.frames = {command_frame({"SET", "rf:string", "x"}), command_frame({"GET", "rf:string"})};
  const std::string harmless_file = write("harmless.repro", harmless);
  EXPECT_EQ(testing::run_tool("replay " + harmless_file + " --user lim -a pw -s " + server.socket_path(), out), 0) << out;
  EXPECT_NE(out.find("did not reproduce"), std::string::npos) << out;
  EXPECT_EQ(testing::run_tool("replay " + flush_file + " --user lim -a pw -s " + server.socket_path(), out), 2) << out;
  EXPECT_NE(out.find("without the server's command table"), std::string::npos) << out;
  // A target that does not answer is unusable (3), not a reproduced crash.
  EXPECT_EQ(testing::run_tool("replay " + flush_file + " -s " + dir.path + "/nothing.sock", out), 3) << out;
  EXPECT_EQ(out.find("reproduced"), std::string::npos) << out;
}

}  // namespace
}  // namespace redring::fuzz
