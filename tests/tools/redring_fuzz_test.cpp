// SPDX-License-Identifier: MIT
// redring-fuzz, server mode: options, the reproducer format, generator determinism, the minimiser,
// no false findings against a real redis-server, desync detection on a proxy that drops one reply,
// crash detection and minimisation on a fake server that dies on one command sequence hidden among
// thousands, and the binary end to end.
#include "tools/fuzz/generator.hpp"
#include "tools/fuzz/minimiser.hpp"
#include "tools/fuzz/options.hpp"
#include "tools/fuzz/probe.hpp"
#include "tools/fuzz/server_fuzzer.hpp"

#include "tests/support/fake_server.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/tools/redring_fuzz_test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace redring::fuzz {
namespace {

using testing::quick_options;
using testing::real_table;
using testing::temp_dir;

// The error message parse_options gives for `args` ("" if none).
std::string error_of(const std::vector<std::string>& args) {
  fuzz_options o;
  return parse_options(args, o).value_or("");
}

TEST(FuzzOptions, ModesAndDefaults) {
  fuzz_options d;
  ASSERT_EQ(parse_options({"server"}, d), std::nullopt);
  EXPECT_EQ(d.mode, mode::server);
  EXPECT_TRUE(d.embedded());
  EXPECT_EQ(d.time.count(), 60000);  // bounded by default
  fuzz_options o;
  ASSERT_EQ(parse_options({"server", "-s", "/tmp/x.sock", "--seed", "42", "--iterations", "10", "--batch", "5",
                           "--timeout", "500", "--malformed", "0", "--mutate", "50", "--only", "get,set",
                           "--allow-dangerous", "--out", "d", "--json", "j", "--quiet", "--no-minimise",
                           "--minimise-time", "2", "--max-findings", "3", "--hang-trials", "3", "--no-shape-checks"},
                          o),
            std::nullopt);
  EXPECT_FALSE(o.embedded());
  EXPECT_EQ(o.target().unix_path, "/tmp/x.sock");
  EXPECT_EQ(o.seed, 42u);
  EXPECT_TRUE(o.seed_given);
  EXPECT_EQ(o.iterations, 10u);
  EXPECT_EQ(o.time.count(), 0);
  EXPECT_EQ(o.only, (std::vector<std::string>{"get", "set"}));
  EXPECT_EQ(o.minimise_time.count(), 2000);
  EXPECT_FALSE(o.minimise);
  EXPECT_EQ(o.hang_trials, 3u);
  EXPECT_FALSE(o.shape_checks);
  EXPECT_EQ(d.hang_trials, 2u);
  EXPECT_TRUE(d.shape_checks);
  fuzz_options c;
  ASSERT_EQ(parse_options({"client", "--replies", "3", "--", "redis-cli", "-s", "{socket}"}, c), std::nullopt);
  EXPECT_EQ(c.mode, mode::client);
  EXPECT_EQ(c.replies, 3u);
  EXPECT_EQ(c.client_argv, (std::vector<std::string>{"redis-cli", "-s", "{socket}"}));
  fuzz_options r;
  ASSERT_EQ(parse_options({"replay", "f.repro", "-u", "redis://:pw@127.0.0.1:7000"}, r), std::nullopt);
  EXPECT_EQ(r.replay_file, "f.repro");
  EXPECT_EQ(r.target().port, 7000);
  EXPECT_EQ(r.auth_password(), "pw");
  EXPECT_EQ(error_of({"--help"}), "help");
  // --only takes names in any case; --user with the URL's password; the URL's database.
  fuzz_options any;
  ASSERT_EQ(parse_options({"server", "--only", "GET,Config|Get", "--user", "u", "-u", "redis://:pw@127.0.0.1/7"}, any),
            std::nullopt);
  EXPECT_EQ(any.only, (std::vector<std::string>{"get", "config|get"}));
  EXPECT_EQ(any.auth_user(), "u");
  EXPECT_EQ(any.database(), 7);
}

TEST(FuzzOptions, EveryBadInputNamesTheOption) {
  const std::pair<std::vector<std::string>, const char*> cases[] = {
      {{}, "give a mode"},
      {{"fuzz"}, "unknown mode 'fuzz'"},
      {{"server", "-p"}, "-p needs"},
      {{"server", "-p", "0"}, "-p must be a port"},
      {{"server", "-u", "http://x"}, "-u: unknown scheme"},
      {{"server", "-u", "rediss://127.0.0.1:6380"}, "-u: rediss:// and redis+sentinel:// are not supported"},
      {{"server", "-u", "redis+sentinel://127.0.0.1/mymaster"}, "-u: rediss:// and redis+sentinel:// are not supported"},
      {{"server", "--seed", "x"}, "--seed must be"},
      {{"server", "--time", "0"}, "--time must be seconds"},
      {{"server", "--time", "nan"}, "--time must be seconds"},       // once 0 cases, "findings: none", exit 0
      {{"server", "--minimise-time", "0.0001"}, "--minimise-time must be seconds"},
      {{"server", "--timeout", "5"}, "--timeout must be milliseconds"},
      {{"server", "--malformed", "101"}, "--malformed must be 0-100"},
      {{"server", "--batch", "0"}, "--batch must be 1-100000"},
      {{"server", "--bogus"}, "unknown option '--bogus'"},
      {{"server", "--hang-trials", "0"}, "--hang-trials must be 1-100"},
      {{"server", "-p", "1", "-s", "x"}, "give either -s or -h/-p"},
      {{"server", "-h", "10.1.2.3", "-s", "x"}, "give either -s or -h/-p"},  // -s won, -h was ignored
      {{"server", "-u", "unix:///x", "-p", "6390"}, "give either -u or -h/-p/-s"},
      {{"server", "-u", "redis://127.0.0.1", "-h", "y"}, "give either -u or -h/-p/-s"},
      {{"server", "--user", "x"}, "--user needs a password"},  // no AUTH was sent: every case NOAUTH
      {{"server", "--", "x"}, "server mode runs no command"},
      {{"client"}, "client mode needs the client to run"},
      {{"client", "-h", "x", "--", "y"}, "client mode listens on"},
      {{"client", "--"}, "-- needs a command"},
      {{"replay"}, "replay needs a reproducer file"},
  };
  for (const auto& [args, want] : cases) {
    const std::string got = error_of(args);
    EXPECT_NE(got.find(want), std::string::npos) << "'" << got << "' should contain " << want;
  }
}

TEST(FuzzReproducer, RoundTripsEveryFrameKindAndByte) {
  reproducer r;
  r.mode = "client";
  r.kind = finding_kind::protocol_error;
  r.detail = "bad \"thing\" \\ at\r\n byte 3";
  r.seed = 18446744073709551615u;
  r.client_argv = {"redis-cli", "-s", "{socket}", "GET", "a b"};
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  r.steps.frames.push_back(command_frame({"SET", "k", all_bytes, ""}));
  r.steps.frames.push_back(raw_frame("*1\r\n$4\r\nPI"));
  frame reply;
  reply.kind = frame_kind::reply;
  reply.bytes = all_bytes;
  reply.how = delivery::trickle;
  reply.close_after = true;
  reply.split_seed = 4000000000u;
  r.steps.frames.push_back(reply);
  const std::string text = format_reproducer(r);
  std::string why;
  const auto back = parse_reproducer(text, why);
  ASSERT_TRUE(back.has_value()) << why;
  EXPECT_EQ(back->mode, r.mode);
  EXPECT_EQ(back->kind, r.kind);
  EXPECT_EQ(back->detail, r.detail);
  EXPECT_EQ(back->seed, r.seed);
  EXPECT_EQ(back->client_argv, r.client_argv);
  EXPECT_EQ(back->steps, r.steps);
  // Every line is printable ASCII: the file survives editors and mail.
  for (const char c : text) EXPECT_TRUE(c == '\n' || (c >= 0x20 && c < 0x7f));
}

TEST(FuzzReproducer, BadFilesNameTheLine) {
  std::string why;
  EXPECT_FALSE(parse_reproducer("hello\n", why));
  EXPECT_NE(why.find("line 1"), std::string::npos);
  EXPECT_FALSE(parse_reproducer("redring-fuzz reproducer 1\nmode server\ncommand \"SET\" \"\\xZZ\"\n", why));
  EXPECT_NE(why.find("line 3"), std::string::npos);
  EXPECT_FALSE(parse_reproducer("redring-fuzz reproducer 1\nreply whole 1 maybe \"x\"\n", why));
  EXPECT_NE(why.find("line 2"), std::string::npos);
  EXPECT_FALSE(parse_reproducer("", why));
}

TEST(FuzzGenerator, SameSeedSameCasesAndOnlyEligibleCommands) {
  const command_table& table = real_table();
  ASSERT_GT(table.commands.size(), 200u);
  generator_options opts;
  generator a(table, opts), b(table, opts);
  EXPECT_EQ(a.make_case(7, 3), b.make_case(7, 3));
  EXPECT_EQ(a.make_case(7, 1000), b.make_case(7, 1000));
  EXPECT_NE(a.make_case(7, 3), a.make_case(8, 3));
  EXPECT_NE(a.make_case(7, 3), a.make_case(7, 4));
  // Without --allow-dangerous nothing destructive is eligible; excluded commands never are.
  for (const command_spec* c : a.eligible()) {
    EXPECT_FALSE(c->dangerous) << c->name;
    EXPECT_FALSE(c->excluded) << c->name;
  }
  EXPECT_EQ(table.find("flushall")->dangerous, true);
  EXPECT_EQ(table.find("shutdown")->excluded, true);
  EXPECT_EQ(table.find("config|set")->dangerous, true);
  EXPECT_FALSE(table.find("get")->dangerous);
  opts.allow_dangerous = true;
  generator d(table, opts);
  EXPECT_GT(d.eligible().size(), a.eligible().size());
  // Over many cases: malformed frames appear, most commands are drawn, grammar is followed.
  std::set<std::string> names;
  std::size_t raw = 0;
  for (std::uint64_t i = 0; i < 400; ++i) {
    for (const frame& f : a.make_case(1, i).frames) {
      if (f.kind == frame_kind::raw) ++raw;
      else names.insert(command_name(table, f));
      std::string wire;
      append_wire(wire, f);
      EXPECT_LT(wire.size(), std::size_t{8} << 20);  // repeated mutations stay bounded
    }
  }
  EXPECT_GT(raw, 40u);
  EXPECT_GT(names.size(), a.eligible().size() * 9 / 10);
  rng r(5);
  const frame zadd = a.generate(r, *table.find("zadd"));
  ASSERT_GE(zadd.args.size(), 4u);
  EXPECT_EQ(zadd.args[0], "ZADD");
  EXPECT_EQ(zadd.args[1].rfind("rf:", 0), 0u);  // keys stay in the fuzzer's prefix
  const frame blpop = a.generate(r, *table.find("blpop"));
  EXPECT_EQ(blpop.args.back(), "0.01");  // a blocking command's timeout is kept short
}

TEST(FuzzMinimiser, FindsTheTwoFramesAmongThousands) {
  // Reproduces iff "LPUSH rf:boom ..." comes before "LPOP rf:boom" (pure predicate, no sockets).
  fuzz_case c;
  rng r(11);
  for (int i = 0; i < 3000; ++i) {
    std::string key = "k";
    key.append(std::to_string(r.below(1000)));  // not operator+: GCC 12 -Wrestrict false positive
    c.frames.push_back(command_frame({"SET", key, "v"}));
  }
  c.frames[700] = command_frame({"LPUSH", "rf:boom", "some", "values", std::string(5000, 'x')});
  c.frames[2300] = command_frame({"LPOP", "rf:boom", "3"});
  auto still = [](const fuzz_case& x) {
    bool pushed = false;
    for (const frame& f : x.frames) {
      if (f.args.size() >= 2 && f.args[0] == "LPUSH" && f.args[1] == "rf:boom") pushed = true;
      if (pushed && f.args.size() >= 2 && f.args[0] == "LPOP" && f.args[1] == "rf:boom") return true;
    }
    return false;
  };
  minimise_stats stats;
  const fuzz_case m = minimise(c, still, {}, stats);
  ASSERT_EQ(m.frames.size(), 2u);
  EXPECT_EQ(m.frames[0].args, (std::vector<std::string>{"LPUSH", "rf:boom"}));
  EXPECT_EQ(m.frames[1].args, (std::vector<std::string>{"LPOP", "rf:boom"}));
  EXPECT_FALSE(stats.exhausted);
  EXPECT_LT(stats.attempts, 600u);
}

TEST(FuzzMinimiser, ShrinksRawBytesAndRespectsItsBudget) {
  fuzz_case c{{raw_frame("*1\r\n$4\r\nPING\r\nGARBAGE*9\r\n")}};
  minimise_stats stats;
  const fuzz_case m = minimise(c, [](const fuzz_case& x) { return x.frames[0].bytes.find('G') != std::string::npos; }, {}, stats);
  EXPECT_EQ(m.frames[0].bytes, "G");
  minimise_stats tight;
  fuzz_case big;
  for (int i = 0; i < 100; ++i) big.frames.push_back(command_frame({"PING"}));
  (void)minimise(big, [](const fuzz_case&) { return true; }, {.attempts = 5}, tight);
  EXPECT_EQ(tight.attempts, 5u);
  EXPECT_TRUE(tight.exhausted);
}

TEST(FuzzServer, NoFalseFindingsAgainstRedis) {
  test::redis_server server;
  temp_dir out;
  fuzz_options opts = quick_options(out.path);
  opts.allow_dangerous = true;  // as against the private server
  server_target target{{server.socket_path()}, "redis", {}};
  probe_settings s;
  std::string why;
  ASSERT_TRUE(call(target.where, s, {"CONFIG", "SET", "proto-max-bulk-len", "32mb"}, why)) << why;
  server_fuzzer fuzzer(target, opts);
  ASSERT_EQ(fuzzer.prepare(), std::nullopt);
  const run_stats stats = fuzzer.run({});
  for (const auto& f : stats.findings) ADD_FAILURE() << to_string(f.kind) << ": " << f.detail << "\n" << f.summary;
  EXPECT_EQ(stats.cases, 150u);
  EXPECT_GT(stats.distinct, 250u);     // most of Redis' commands were sent
  EXPECT_GT(stats.distinct_ok, 120u);  // and many got past argument checking
  EXPECT_GT(stats.raw_frames, 10u);
  EXPECT_GT(stats.shape_commands, 150u);  // reply types were checked, none wrongly
  EXPECT_GT(stats.shape_checked, 1000u);
}

// A proxy in front of a real redis-server that forwards every command and its reply, except that it
// never answers HSTRLEN: the desync the sentinel must catch.
TEST(FuzzServer, DetectsADroppedReplyAndMinimisesIt) {
  const testing::editing_proxy proxy([](const std::vector<std::string>& cmd, std::string& reply) {
    if (!cmd.empty() && cmd[0] == "HSTRLEN") reply.clear();
  });
  temp_dir out;
  const fuzz_options opts = testing::proxy_options(out.path, {"get", "set", "incr", "hstrlen", "llen", "hset"});
  server_target target{{proxy.socket_path()}, "proxy", {}};
  server_fuzzer fuzzer(target, opts);
  ASSERT_EQ(fuzzer.prepare(), std::nullopt);
  const run_stats stats = fuzzer.run({});
  ASSERT_EQ(stats.findings.size(), 1u);
  const finding_record& f = stats.findings[0];
  EXPECT_EQ(f.kind, finding_kind::desync);
  EXPECT_TRUE(f.reproduced);
  ASSERT_EQ(f.frames_minimal, 1u) << f.summary;
  EXPECT_EQ(f.summary.rfind("HSTRLEN", 0), 0u) << f.summary;
  // The reproducer replays to the same finding.
  std::string why;
  const auto repro = parse_reproducer(testing::file_text(f.file), why);
  ASSERT_TRUE(repro) << why;
  EXPECT_EQ(fuzzer.run_once(repro->steps).found.kind, finding_kind::desync);
}

// A fake server that "crashes" (closes every connection at once, as if gone) after it saw
// LPUSH rf:boom and then LPOP rf:boom on one connection, until restarted.
TEST(FuzzServer, MinimisesACrashHiddenAmongThousandsOfCommands) {
  std::atomic<bool> crashed{false};
  std::map<int, bool> pushed;
  test::fake_server fake([&](const std::vector<std::string>& cmd, int conn) {
    if (crashed) return test::fake_reply{"", true};
    if (cmd.size() >= 2 && cmd[0] == "LPUSH" && cmd[1] == "rf:boom") pushed[conn] = true;
    if (cmd.size() >= 2 && cmd[0] == "LPOP" && cmd[1] == "rf:boom" && pushed[conn]) {
      crashed = true;
      return test::fake_reply{"", true};
    }
    return test::fake_reply{"+OK\r\n"};
  });
  const fuzz_case c = testing::hidden_among(2000, 3, {{500, command_frame({"LPUSH", "rf:boom", "a", "b", "c"})},
                                                     {1500, command_frame({"LPOP", "rf:boom", "2"})}});

  temp_dir out;
  fuzz_options opts = quick_options(out.path);
  opts.timeout = std::chrono::milliseconds(5000);  // the fake parses megabytes slowly under ASan
  int restarts = 0;
  server_target target{{fake.socket_path()}, "fake", [&](endpoint&, std::string&) {
                         ++restarts;
                         crashed = false;
                         return true;
                       }};
  server_fuzzer fuzzer(target, opts);
  const probe_result first = fuzzer.run_once(c);
  ASSERT_EQ(first.found.kind, finding_kind::crash) << first.found.detail;
  const finding_record f = fuzzer.handle(c, first.found, {});
  EXPECT_TRUE(f.reproduced);
  EXPECT_EQ(f.frames_found, 2002u);
  EXPECT_EQ(f.frames_minimal, 2u);
  EXPECT_EQ(f.summary, "LPUSH \"rf:boom\"; LPOP \"rf:boom\"");
  EXPECT_GT(restarts, 2);
  ASSERT_FALSE(f.file.empty());
  EXPECT_TRUE(std::filesystem::exists(f.file));
}

// The binary: exit statuses, the report, JSON, replay.
int run(const std::string& args, std::string* output) { return testing::run_tool(args, *output); }

TEST(FuzzBinary, ExitStatusesReportAndReplay) {
  std::string out;
  EXPECT_EQ(run("--help", &out), 0);
  EXPECT_NE(out.find("usage: redring-fuzz server"), std::string::npos);
  EXPECT_EQ(run("server --bogus", &out), 2);
  EXPECT_NE(out.find("unknown option '--bogus'"), std::string::npos);
  EXPECT_EQ(run("server -h 192.0.2.1 --iterations 1", &out), 2);  // not loopback
  EXPECT_NE(out.find("--allow-remote"), std::string::npos);
  EXPECT_EQ(run("server -s /nonexistent/redis.sock --iterations 1", &out), 3);

  test::redis_server server;
  temp_dir dir;
  const std::string json = dir.path + "/report.json";
  EXPECT_EQ(run("server -s " + server.socket_path() + " --seed 9 --iterations 40 --quiet --json " + json +
                    " --out " + dir.path,
                &out),
            0)
      << out;
  EXPECT_NE(out.find("40 cases"), std::string::npos) << out;
  EXPECT_NE(out.find("findings: none"), std::string::npos) << out;
  EXPECT_NE(out.find("reply types checked: "), std::string::npos) << out;
  std::ifstream in(json);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("\"cases\":40,"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("\"findings\":[]"), std::string::npos) << text.str();

  // A reproducer that finds nothing on a healthy server replays clean (0); a bad file is usage (2).
  const std::string file = dir.path + "/ok.repro";
  std::ofstream(file) << "redring-fuzz reproducer 1\nmode server\nfinding desync\ndetail \"\"\nseed 1\ncommand \"PING\"\n";
  EXPECT_EQ(run("replay " + file + " -s " + server.socket_path(), &out), 0) << out;
  EXPECT_NE(out.find("did not reproduce"), std::string::npos) << out;
  std::ofstream(dir.path + "/bad.repro") << "nonsense\n";
  EXPECT_EQ(run("replay " + dir.path + "/bad.repro", &out), 2);
  EXPECT_NE(out.find("line 1"), std::string::npos) << out;
}

}  // namespace
}  // namespace redring::fuzz
