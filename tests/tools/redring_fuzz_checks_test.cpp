// SPDX-License-Identifier: MIT
// redring-fuzz, server mode: reply-type checks (the built-in table and COMMAND DOCS reply_schema; a
// proxy that answers INCR with a bulk string is caught and minimised) and hang minimisation with a
// timing-bound oracle (chance stalls cannot make a reduction stick; a fake server that stalls on one
// command among hundreds is minimised to that command).
#include "tools/fuzz/generator.hpp"
#include "tools/fuzz/minimiser.hpp"
#include "tools/fuzz/reply_shape.hpp"
#include "tools/fuzz/server_fuzzer.hpp"

#include "tests/support/fake_server.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/tools/redring_fuzz_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

namespace redring::fuzz {
namespace {

using namespace std::chrono_literals;
using testing::quick_options;
using testing::real_table;
using testing::temp_dir;

resp::value bulk(std::string text) {
  resp::value v;
  v.data_type = resp::type::blob_string;
  v.text = std::move(text);
  return v;
}

// A RESP2-style map: a flat array of key, value, ...
resp::value flat_map(std::vector<resp::value> items) {
  resp::value v;
  v.data_type = resp::type::array;
  v.elements = std::move(items);
  return v;
}

TEST(FuzzShapes, TypeSetsAndTheBuiltInTable) {
  const type_set s{resp::type::integer, resp::type::null};
  EXPECT_TRUE(s.contains(resp::type::integer));
  EXPECT_FALSE(s.contains(resp::type::blob_string));
  EXPECT_EQ(s.describe(), "integer|null");
  EXPECT_TRUE(acceptable(s, resp::type::simple_error));  // an error is always a valid reply
  EXPECT_TRUE(acceptable(s, resp::type::blob_error));
  EXPECT_FALSE(acceptable(s, resp::type::array));

  const reply_shapes shapes;
  EXPECT_EQ(shapes.expected("incr"), shape::integer);
  EXPECT_EQ(shapes.expected("get"), shape::bulk | shape::null);
  EXPECT_EQ(shapes.expected("eval"), std::nullopt);  // anything: not checked
  // Both protocols: HGETALL is a map after HELLO 3, ZSCORE a double.
  EXPECT_TRUE(shapes.expected("hgetall")->contains(resp::type::map));
  EXPECT_TRUE(shapes.expected("zscore")->contains(resp::type::double_number));
  EXPECT_TRUE(shapes.expected("zscore")->contains(resp::type::blob_string));
  // Frames: raw frames are never checked; names in any case; subcommands without a table.
  EXPECT_EQ(shapes.expected(command_frame({"iNcR", "k"})), shape::integer);
  EXPECT_EQ(shapes.expected(raw_frame("*1\r\n$4\r\nINCR\r\n")), std::nullopt);
  EXPECT_EQ(shapes.expected(command_frame({"OBJECT", "encoding", "k"})), shape::bulk | shape::null);
}

TEST(FuzzShapes, EveryBuiltInNameIsARedisCommand) {
  const command_table& table = real_table();
  const reply_shapes shapes(table, resp::value{});
  EXPECT_GT(shapes.size(), 150u);
  EXPECT_EQ(shapes.from_schema(), 0u);  // Redis 7.0 documents no reply schemas
  for (const auto& [name, types] : shapes.all()) EXPECT_NE(table.find(name), nullptr) << name << " is not a command";
  EXPECT_EQ(shapes.expected(command_frame({"MEMORY", "USAGE", "k"})), shape::integer | shape::null);
}

TEST(FuzzShapes, ReplySchemasFromCommandDocsOverrideTheTable) {
  // {"oneOf": [{"type": "integer"}, {"type": "null"}]} and {"const": "OK"}, as Redis 7.2 sends them.
  auto typed = [](std::string t) { return flat_map({bulk("type"), bulk(std::move(t))}); };
  resp::value one_of;
  one_of.data_type = resp::type::array;
  one_of.elements = {typed("integer"), typed("null")};
  const resp::value either = flat_map({bulk("oneOf"), one_of});
  EXPECT_EQ(types_of_schema(either), shape::integer | shape::null);
  EXPECT_EQ(types_of_schema(typed("array")), shape::aggregate);
  EXPECT_TRUE(types_of_schema(flat_map({bulk("const"), bulk("OK")}))->contains(resp::type::simple_string));
  EXPECT_EQ(types_of_schema(flat_map({bulk("description"), bulk("anything")})), std::nullopt);
  resp::value mixed;
  mixed.data_type = resp::type::array;
  mixed.elements = {typed("integer"), flat_map({bulk("description"), bulk("?")})};
  EXPECT_EQ(types_of_schema(flat_map({bulk("anyOf"), mixed})), std::nullopt);  // one branch unknown: all unknown

  // COMMAND DOCS: get -> {summary, reply_schema}, config -> {subcommands: {config|get -> {reply_schema}}}.
  const resp::value docs = flat_map({
      bulk("get"), flat_map({bulk("summary"), bulk("s"), bulk("reply_schema"), typed("integer")}),
      bulk("config"), flat_map({bulk("subcommands"),
                                flat_map({bulk("config|get"), flat_map({bulk("reply_schema"), typed("object")})})}),
      bulk("newcmd"), flat_map({bulk("reply_schema"), either}),
  });
  const reply_shapes shapes(real_table(), docs);
  EXPECT_EQ(shapes.from_schema(), 3u);
  EXPECT_EQ(shapes.expected("get"), shape::integer);  // the schema wins over the table
  EXPECT_EQ(shapes.expected(command_frame({"CONFIG", "GET", "x"})), shape::aggregate);
  EXPECT_EQ(shapes.expected("newcmd"), shape::integer | shape::null);
  EXPECT_EQ(shapes.expected("incr"), shape::integer);  // the table still covers the rest
}

// A proxy in front of a real redis-server that forwards everything, but answers INCR's integer with
// the same digits as a bulk string: the count and order of replies stay right, only the type is wrong.
TEST(FuzzServer, CatchesAReplyOfTheWrongTypeAndMinimisesIt) {
  const testing::editing_proxy proxy([](const std::vector<std::string>& cmd, std::string& reply) {
    if (!cmd.empty() && cmd[0] == "INCR" && reply.starts_with(":")) {
      const std::string digits = reply.substr(1, reply.size() - 3);
      reply = "$" + std::to_string(digits.size()) + "\r\n" + digits + "\r\n";
    }
  });
  temp_dir out;
  fuzz_options opts = testing::proxy_options(out.path, {"get", "set", "incr", "exists", "llen", "hset", "append", "strlen"});
  server_target target{{proxy.socket_path()}, "proxy", {}};
  server_fuzzer fuzzer(target, opts);
  ASSERT_EQ(fuzzer.prepare(), std::nullopt);
  const run_stats stats = fuzzer.run({});
  ASSERT_EQ(stats.findings.size(), 1u);
  const finding_record& f = stats.findings[0];
  EXPECT_EQ(f.kind, finding_kind::reply_shape);
  EXPECT_NE(f.detail.find("(to INCR) is blob_string"), std::string::npos) << f.detail;
  EXPECT_NE(f.detail.find("documented as integer"), std::string::npos) << f.detail;
  EXPECT_TRUE(f.reproduced);
  ASSERT_EQ(f.frames_minimal, 1u) << f.summary;
  EXPECT_EQ(f.summary.rfind("INCR", 0), 0u) << f.summary;
  // The reproducer replays to the same finding; without shape checks there is nothing to find.
  std::string why;
  const auto repro = parse_reproducer(testing::file_text(f.file), why);
  ASSERT_TRUE(repro) << why;
  EXPECT_EQ(repro->kind, finding_kind::reply_shape);
  EXPECT_EQ(fuzzer.run_once(repro->steps).found.kind, finding_kind::reply_shape);
  opts.shape_checks = false;
  server_fuzzer unchecked(target, opts);
  ASSERT_EQ(unchecked.prepare(), std::nullopt);
  EXPECT_EQ(unchecked.run_once(repro->steps).found.kind, finding_kind::none);
  // The binary replays it too (it reads the proxy's COMMAND DOCS first).
  std::string output;
  EXPECT_EQ(testing::run_tool("replay " + f.file + " -s " + proxy.socket_path(), output), 1) << output;
  EXPECT_NE(output.find("reproduced reply_shape"), std::string::npos) << output;
}

// Replies inside a transaction are +QUEUED and EXEC's array: not judged against the commands' types.
TEST(FuzzServer, NoShapeFindingInsideATransaction) {
  test::redis_server real;
  temp_dir out;
  fuzz_options opts = quick_options(out.path);
  server_target target{{real.socket_path()}, "redis", {}};
  server_fuzzer fuzzer(target, opts);
  ASSERT_EQ(fuzzer.prepare(), std::nullopt);
  const fuzz_case c{{command_frame({"SET", "rf:n", "1"}), command_frame({"INCR", "rf:n"}), command_frame({"multi"}),
                     command_frame({"INCR", "rf:n"}), command_frame({"GET", "rf:n"}), command_frame({"EXEC"})}};
  const probe_result r = fuzzer.run_once(c);
  EXPECT_EQ(r.found.kind, finding_kind::none) << r.found.detail;
  EXPECT_EQ(r.shape_checked, 2u);  // SET and the first INCR only
}

// A fake server with a keyspace shared by all connections: SRANDMEMBER on an existing rf:intset gets
// no reply (a desync). Minimisation runs share that keyspace, so a candidate without the SADD would
// still find the key a previous candidate made (or a key "" that shortening SADD's argument made),
// unless every run starts from an empty keyspace (FLUSHALL: destructive commands are allowed here).
TEST(FuzzServer, MinimisationRunsDoNotInheritKeys) {
  std::set<std::string> keys;
  test::fake_server fake([&](const std::vector<std::string>& cmd, int) {
    if (cmd.empty()) return test::fake_reply{"+OK\r\n"};
    if (cmd[0] == "FLUSHALL") keys.clear();
    if (cmd[0] == "SADD" && cmd.size() > 1) keys.insert(cmd[1]);
    if (cmd[0] == "SRANDMEMBER" && cmd.size() > 1 && keys.contains(cmd[1])) return test::fake_reply{""};
    if (cmd[0] == "ECHO" && cmd.size() == 2) return test::fake_reply{"$" + std::to_string(cmd[1].size()) + "\r\n" + cmd[1] + "\r\n"};
    return test::fake_reply{"+OK\r\n"};
  });
  const fuzz_case c = testing::hidden_among(200, 7, {{20, command_frame({"SADD", "rf:intset", "1", "2"})},
                                                    {150, command_frame({"SRANDMEMBER", "rf:intset", "-5"})}});
  temp_dir out;
  fuzz_options opts = quick_options(out.path);
  opts.timeout = 1000ms;
  opts.allow_dangerous = true;
  server_target target{{fake.socket_path()}, "fake", {}};
  server_fuzzer fuzzer(target, opts);
  const probe_result first = fuzzer.run_once(c);
  ASSERT_EQ(first.found.kind, finding_kind::desync) << first.found.detail;
  const finding_record f = fuzzer.handle(c, first.found, {});
  EXPECT_TRUE(f.reproduced);
  EXPECT_EQ(f.summary, "SADD \"rf:intset\"; SRANDMEMBER \"rf:intset\"");
  // The reproducer works on a fresh keyspace, as `replay` runs it.
  std::string why;
  const auto repro = parse_reproducer(testing::file_text(f.file), why);
  ASSERT_TRUE(repro) << why;
  fuzzer.reset_keys();
  EXPECT_EQ(fuzzer.run_once(repro->steps).found.kind, finding_kind::desync);
}

TEST(FuzzMinimiser, HangTrialsIgnoreChanceStalls) {
  // The case "hangs" iff it holds LINSERT. The target also stalls by chance: every 4th run hangs
  // whatever it runs, and the run after a real hang hangs too unless the target was settled.
  fuzz_case c;
  for (int i = 0; i < 300; ++i) {
    std::string key = "k";
    key.append(std::to_string(i));  // not operator+: GCC 12 -Wrestrict false positive
    c.frames.push_back(command_frame({"SET", key, "v"}));
  }
  c.frames[123] = command_frame({"LINSERT", "rf:list", "BEFORE", "a", "b"});
  int runs = 0, settles = 0;
  bool busy = false;
  const reproduces trial = [&](const fuzz_case& x) {
    const bool real = std::any_of(x.frames.begin(), x.frames.end(), [](const frame& f) { return f.args[0] == "LINSERT"; });
    const bool chance = ++runs % 4 == 0 || busy;
    busy = real;
    return real || chance;
  };
  const auto settle = [&] {
    busy = false;
    ++settles;
    return true;
  };
  minimise_stats stats;
  const fuzz_case m = minimise(c, confirmed_by_trials(trial, settle, 2), {}, stats);
  ASSERT_EQ(m.frames.size(), 1u);
  EXPECT_EQ(m.frames[0].args, (std::vector<std::string>{"LINSERT"}));
  EXPECT_GT(settles, 0);
  // One run per candidate is fooled by the chance stalls: LINSERT is lost on the way.
  runs = 0;
  busy = false;
  minimise_stats once;
  const fuzz_case fooled = minimise(c, confirmed_by_trials(trial, settle, 1), {}, once);
  EXPECT_FALSE(fooled.frames.size() == 1 && fooled.frames[0].args[0] == "LINSERT");
  // A target that does not recover judges nothing: no reduction.
  minimise_stats stuck;
  const fuzz_case same = minimise(c, confirmed_by_trials(trial, [] { return false; }, 2), {}, stuck);
  EXPECT_EQ(same, c);
}

// A fake server (one thread for all connections, like Redis) that stalls for a second on LINSERT,
// so every connection waits, and then goes on; it answers PING, ECHO and the rest at once. It is an
// external target (no restart): the minimiser must wait for it to recover between runs, else the
// stall left by one candidate makes the next, LINSERT-free one look hung.
TEST(FuzzServer, MinimisesAHangOnOneCommandAmongHundreds) {
  std::atomic<int> stalls{0};
  test::fake_server fake([&](const std::vector<std::string>& cmd, int) {
    if (cmd.empty()) return test::fake_reply{"+OK\r\n"};
    if (cmd[0] == "LINSERT") {
      ++stalls;
      std::this_thread::sleep_for(1000ms);
      return test::fake_reply{":1\r\n"};
    }
    if (cmd[0] == "ECHO" && cmd.size() == 2) return test::fake_reply{"$" + std::to_string(cmd[1].size()) + "\r\n" + cmd[1] + "\r\n"};
    return test::fake_reply{"+OK\r\n"};
  });
  // LINSERT early in the case, so that the stall begins within the fake's first read (it may serve
  // the liveness PING between two reads of a long case) and before the reply timeout.
  const fuzz_case c = testing::hidden_among(300, 5, {{30, command_frame({"LINSERT", "rf:list", "BEFORE", "a", "b"})}});

  temp_dir out;
  fuzz_options opts = quick_options(out.path);
  opts.timeout = 250ms;
  opts.minimise_time = 120s;
  server_target target{{fake.socket_path()}, "fake", {}};
  server_fuzzer fuzzer(target, opts);
  const probe_result first = fuzzer.run_once(c);
  ASSERT_EQ(first.found.kind, finding_kind::hang) << first.found.detail;
  const finding_record f = fuzzer.handle(c, first.found, {});
  EXPECT_TRUE(f.reproduced);
  EXPECT_EQ(f.frames_found, 301u);
  EXPECT_EQ(f.frames_minimal, 1u) << f.summary;
  EXPECT_EQ(f.summary, "LINSERT");
  EXPECT_GT(stalls.load(), 8);  // every accepted step hung twice
  ASSERT_FALSE(f.file.empty());
  EXPECT_NE(testing::file_text(f.file).find("finding hang\n"), std::string::npos);
  // The server recovered: it answers again.
  EXPECT_TRUE(fuzzer.settle());
  std::string why;
  EXPECT_EQ(check_alive(target.where, fuzzer.settings(), why), liveness::alive) << why;
}

}  // namespace
}  // namespace redring::fuzz
