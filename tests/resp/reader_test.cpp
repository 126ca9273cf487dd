// SPDX-License-Identifier: MIT
// The reader: every type, every error with its offset, every limit at N and N+1, the RESP3
// specification's examples, node shape, and split invariance.
#include "resp/reader.hpp"

#include "tests/support/alloc_counter.hpp"
#include "tests/support/decode.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <span>
#include <string>
#include <vector>

namespace redring::resp {
namespace {

using test::decode;
using test::json_of;

TEST(Reader, SimpleTypes) {
  EXPECT_EQ(json_of("+OK\r\n"), R"({"simple":"OK"})");
  EXPECT_EQ(json_of("+\r\n"), R"({"simple":""})");
  EXPECT_EQ(json_of("-ERR unknown command\r\n"), R"({"error":"ERR unknown command"})");
  EXPECT_EQ(json_of(":0\r\n"), R"({"integer":"0"})");
  EXPECT_EQ(json_of(":-42\r\n"), R"({"integer":"-42"})");
  EXPECT_EQ(json_of(":+42\r\n"), R"({"integer":"42"})");
  EXPECT_EQ(json_of(":007\r\n"), R"({"integer":"7"})");
  EXPECT_EQ(json_of(":-0\r\n"), R"({"integer":"0"})");
  EXPECT_EQ(json_of(":9223372036854775807\r\n"), R"({"integer":"9223372036854775807"})");
  EXPECT_EQ(json_of(":-9223372036854775808\r\n"), R"({"integer":"-9223372036854775808"})");
  EXPECT_EQ(json_of("#t\r\n"), R"({"boolean":true})");
  EXPECT_EQ(json_of("#f\r\n"), R"({"boolean":false})");
  EXPECT_EQ(json_of("_\r\n"), R"({"null":"null"})");
  EXPECT_EQ(json_of("$-1\r\n"), R"({"null":"bulk"})");
  EXPECT_EQ(json_of("*-1\r\n"), R"({"null":"array"})");
  EXPECT_EQ(json_of("(3492890328409238509324850943850943825024385\r\n"),
            R"({"bignum":"3492890328409238509324850943850943825024385"})");
  EXPECT_EQ(json_of("(-12\r\n"), R"({"bignum":"-12"})");
}

TEST(Reader, Doubles) {
  for (const char* text : {"1.23", "10", "-1.5", "+3", "inf", "-inf", "+inf", "nan", "-nan", "1e10", "1.5E-3",
                           "2e+7", "0.0", "-0.0"}) {
    EXPECT_EQ(json_of(std::string(",") + text + "\r\n"), std::string(R"({"double":")") + text + "\"}") << text;
  }
}

TEST(Reader, BlobTypes) {
  EXPECT_EQ(json_of("$0\r\n\r\n"), R"({"bulk":""})");
  EXPECT_EQ(json_of("$5\r\nhello\r\n"), R"({"bulk":"hello"})");
  EXPECT_EQ(json_of(std::string("$6\r\na\r\nb\0c\r\n", 12)), R"({"bulk":"a\r\nb\u0000c"})");
  EXPECT_EQ(json_of("$2\r\n\xff\x80\r\n"), "{\"bulk\":\"\xc3\xbf\xc2\x80\"}");
  EXPECT_EQ(json_of("!21\r\nSYNTAX invalid syntax\r\n"), R"({"bulkerror":"SYNTAX invalid syntax"})");
  EXPECT_EQ(json_of("=15\r\ntxt:Some string\r\n"), R"({"verbatim":{"format":"txt","text":"Some string"}})");
  EXPECT_EQ(json_of("=4\r\nmkd:\r\n"), R"({"verbatim":{"format":"mkd","text":""}})");
}

TEST(Reader, LoneCrAndLfArePartOfTheLine) {
  EXPECT_EQ(json_of("+a\rb\nc\r\n"), R"({"simple":"a\rb\nc"})");
  EXPECT_EQ(json_of("+\r\r\n"), R"({"simple":"\r"})");
  EXPECT_EQ(json_of("-\n\r\n"), R"({"error":"\n"})");
}

TEST(Reader, Aggregates) {
  EXPECT_EQ(json_of("*0\r\n"), R"({"array":[]})");
  EXPECT_EQ(json_of("*2\r\n:1\r\n*1\r\n+a\r\n"), R"({"array":[{"integer":"1"},{"array":[{"simple":"a"}]}]})");
  EXPECT_EQ(json_of("~2\r\n+a\r\n+b\r\n"), R"({"set":[{"simple":"a"},{"simple":"b"}]})");
  EXPECT_EQ(json_of("%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n"),
            R"({"map":[[{"simple":"a"},{"integer":"1"}],[{"simple":"b"},{"integer":"2"}]]})");
  EXPECT_EQ(json_of("%0\r\n"), R"({"map":[]})");
  EXPECT_EQ(json_of(">2\r\n+message\r\n$2\r\nhi\r\n"), R"({"push":[{"simple":"message"},{"bulk":"hi"}]})");
  EXPECT_EQ(json_of("*3\r\n$-1\r\n*-1\r\n_\r\n"), R"({"array":[{"null":"bulk"},{"null":"array"},{"null":"null"}]})");
}

// Examples from the RESP3 specification (redis/redis-specifications, protocol/RESP3.md).
TEST(Reader, SpecificationExamples) {
  EXPECT_EQ(json_of("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n"), R"({"bulk":"Hello word"})");  // sic, the specification's own example
  EXPECT_EQ(json_of("*?\r\n:1\r\n:2\r\n:3\r\n.\r\n"), R"({"array":[{"integer":"1"},{"integer":"2"},{"integer":"3"}]})");
  EXPECT_EQ(json_of("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n"),
            R"({"map":[[{"simple":"a"},{"integer":"1"}],[{"simple":"b"},{"integer":"2"}]]})");
  EXPECT_EQ(json_of("~?\r\n+a\r\n.\r\n"), R"({"set":[{"simple":"a"}]})");
  EXPECT_EQ(json_of("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n"),
            R"({"attribute":[[{"simple":"key-popularity"},{"map":[[{"bulk":"a"},{"double":"0.1923"}],[{"bulk":"b"},{"double":"0.0012"}]]}]],"value":{"array":[{"integer":"2039123"},{"integer":"9543892"}]}})");
  EXPECT_EQ(json_of("*3\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3600\r\n:3\r\n"),
            R"({"array":[{"integer":"1"},{"integer":"2"},{"attribute":[[{"simple":"ttl"},{"integer":"3600"}]],"value":{"integer":"3"}}]})");
  EXPECT_EQ(json_of(">4\r\n+pubsub\r\n+message\r\n+somechannel\r\n+this is the message\r\n"),
            R"({"push":[{"simple":"pubsub"},{"simple":"message"},{"simple":"somechannel"},{"simple":"this is the message"}]})");
  EXPECT_EQ(json_of("$?\r\n;0\r\n"), R"({"bulk":""})");
  EXPECT_EQ(json_of("*?\r\n.\r\n"), R"({"array":[]})");
}

TEST(Reader, AttributesNestAndDoNotCount) {
  EXPECT_EQ(json_of("|0\r\n|1\r\n+a\r\n+b\r\n:1\r\n"),
            R"({"attribute":[],"value":{"attribute":[[{"simple":"a"},{"simple":"b"}]],"value":{"integer":"1"}}})");
  // An attribute on a map key, inside a streamed map.
  EXPECT_EQ(json_of("%?\r\n|0\r\n+k\r\n+v\r\n.\r\n"),
            R"({"map":[[{"attribute":[],"value":{"simple":"k"}},{"simple":"v"}]]})");
  // An attribute whose value carries an attribute.
  EXPECT_EQ(json_of("|1\r\n+k\r\n|0\r\n+v\r\n:1\r\n"),
            R"({"attribute":[[{"simple":"k"},{"attribute":[],"value":{"simple":"v"}}]],"value":{"integer":"1"}})");
}

TEST(Reader, StreamedNesting) {
  EXPECT_EQ(json_of("*?\r\n$?\r\n;1\r\na\r\n;0\r\n*?\r\n.\r\n%?\r\n.\r\n.\r\n"),
            R"({"array":[{"bulk":"a"},{"array":[]},{"map":[]}]})");
}

TEST(Reader, NodeShape) {
  const auto d = decode("*2\r\n%1\r\n+k\r\n:1\r\n$?\r\n;2\r\nab\r\n;0\r\n+next\r\n");
  ASSERT_EQ(d.state, status::need_more);
  ASSERT_EQ(d.nodes.size(), 8u);
  struct expect { type t; std::uint32_t depth; std::uint64_t size; bool streamed; bool ends; };
  const expect want[] = {
      {type::array, 0, 2, false, false}, {type::map, 1, 1, false, false},
      {type::simple_string, 2, 0, false, false}, {type::integer, 2, 0, false, false},
      {type::blob_string, 1, 0, true, false}, {type::stream_part, 2, 0, false, false},
      {type::end, 1, 0, false, true}, {type::simple_string, 0, 0, false, true},
  };
  for (std::size_t i = 0; i < std::size(want); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(d.nodes[i].data_type, want[i].t);
    EXPECT_EQ(d.nodes[i].depth, want[i].depth);
    EXPECT_EQ(d.nodes[i].size, want[i].size);
    EXPECT_EQ(d.nodes[i].streamed, want[i].streamed);
    EXPECT_EQ(d.nodes[i].ends_reply, want[i].ends);
  }
  EXPECT_EQ(d.nodes[3].integer, 1);
}

TEST(Reader, NodeViewsPointIntoTheInput) {
  const std::string input = "*2\r\n$5\r\nhello\r\n=6\r\ntxt:hi\r\n";
  reader r;
  std::array<node, 8> nodes;
  const auto res = r.read(input, nodes);
  ASSERT_EQ(res.nodes, 3u);
  EXPECT_EQ(res.consumed, input.size());
  EXPECT_EQ(nodes[1].value.data(), input.data() + 8);
  EXPECT_EQ(nodes[1].value, "hello");
  EXPECT_EQ(nodes[2].verbatim_format(), "txt");
  EXPECT_EQ(nodes[2].verbatim_text(), "hi");
}

struct error_case {
  const char* name;
  std::string input;
  errc code;
  std::uint64_t offset;
};

class ReaderErrors : public ::testing::TestWithParam<error_case> {};

TEST_P(ReaderErrors, ReportsCodeAndOffset) {
  const auto& c = GetParam();
  const auto d = decode(c.input);
  ASSERT_EQ(d.state, status::error) << c.name;
  EXPECT_EQ(d.error.code, c.code) << c.name << ": " << d.error.message();
  EXPECT_EQ(d.error.offset, c.offset) << c.name;
  // The same at every chunk size.
  for (std::size_t chunk = 1; chunk < c.input.size(); ++chunk) {
    EXPECT_EQ(decode(c.input, chunk), d) << c.name << " chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, ReaderErrors,
    ::testing::Values(
        error_case{"unknown type", "x\r\n", errc::invalid_type_byte, 0},
        error_case{"unknown type after reply", "+OK\r\n@", errc::invalid_type_byte, 5},
        error_case{"space type", " OK\r\n", errc::invalid_type_byte, 0},
        error_case{"length letters", "$abc\r\n", errc::invalid_length, 1},
        error_case{"length empty", "$\r\n", errc::invalid_length, 1},
        error_case{"length negative", "$-2\r\n", errc::invalid_length, 1},
        error_case{"length -01", "$-01\r\n", errc::invalid_length, 1},
        error_case{"length plus", "*+1\r\n", errc::invalid_length, 1},
        error_case{"map null", "%-1\r\n", errc::invalid_length, 1},
        error_case{"set null", "~-1\r\n", errc::invalid_length, 1},
        error_case{"error blob null", "!-1\r\n", errc::invalid_length, 1},
        error_case{"attribute streamed", "|?\r\n", errc::invalid_length, 1},
        error_case{"push streamed", ">?\r\n", errc::invalid_length, 1},
        error_case{"verbatim streamed", "=?\r\n", errc::invalid_length, 1},
        error_case{"payload without crlf", "$3\r\nabcXY", errc::missing_crlf, 7},
        error_case{"payload with lf only", "$3\r\nabc\n\n", errc::missing_crlf, 7},
        error_case{"boolean x", "#x\r\n", errc::invalid_boolean, 1},
        error_case{"boolean tt", "#tt\r\n", errc::invalid_boolean, 1},
        error_case{"boolean empty", "#\r\n", errc::invalid_boolean, 1},
        error_case{"integer letters", ":12a\r\n", errc::invalid_integer, 1},
        error_case{"integer empty", ":\r\n", errc::invalid_integer, 1},
        error_case{"integer sign only", ":-\r\n", errc::invalid_integer, 1},
        error_case{"integer space", ": 1\r\n", errc::invalid_integer, 1},
        error_case{"integer over", ":9223372036854775808\r\n", errc::integer_overflow, 1},
        error_case{"integer under", ":-9223372036854775809\r\n", errc::integer_overflow, 1},
        error_case{"integer huge", ":99999999999999999999999\r\n", errc::integer_overflow, 1},
        error_case{"double trailing dot", ",1.\r\n", errc::invalid_double, 1},
        error_case{"double leading dot", ",.5\r\n", errc::invalid_double, 1},
        error_case{"double bare exponent", ",1e\r\n", errc::invalid_double, 1},
        error_case{"double upper INF", ",INF\r\n", errc::invalid_double, 1},
        error_case{"double junk", ",1.5x\r\n", errc::invalid_double, 1},
        error_case{"double empty", ",\r\n", errc::invalid_double, 1},
        error_case{"double infinity", ",infinity\r\n", errc::invalid_double, 1},
        error_case{"bignum letters", "(12a\r\n", errc::invalid_big_number, 1},
        error_case{"bignum empty", "(\r\n", errc::invalid_big_number, 1},
        error_case{"bignum sign only", "(-\r\n", errc::invalid_big_number, 1},
        error_case{"verbatim short", "=3\r\ntxt\r\n", errc::invalid_verbatim, 4},
        error_case{"verbatim no colon", "=5\r\ntxt x\r\n", errc::invalid_verbatim, 4},
        error_case{"null with payload", "_x\r\n", errc::invalid_null, 1},
        error_case{"end at top", ".\r\n", errc::unexpected_end, 0},
        error_case{"end in counted array", "*1\r\n.\r\n", errc::unexpected_end, 4},
        error_case{"end after attribute", "*?\r\n|0\r\n.\r\n", errc::unexpected_end, 8},
        error_case{"end after map key", "%?\r\n+a\r\n.\r\n", errc::unexpected_end, 8},
        error_case{"end with payload", "*?\r\n.x\r\n", errc::unexpected_end, 4},
        error_case{"end in streamed string", "$?\r\n.\r\n", errc::invalid_stream_part, 4},
        error_case{"part outside string", ";3\r\nabc\r\n", errc::unexpected_stream_part, 0},
        error_case{"part in array", "*?\r\n;1\r\na\r\n", errc::unexpected_stream_part, 4},
        error_case{"string interrupted", "$?\r\n;1\r\na\r\n+a\r\n", errc::invalid_stream_part, 11},
        error_case{"part length bad", "$?\r\n;x\r\n", errc::invalid_length, 5},
        error_case{"part null", "$?\r\n;-1\r\n", errc::invalid_length, 5}),
    [](const ::testing::TestParamInfo<error_case>& param_info) {
      std::string name = param_info.param.name;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(ReaderLimits, DepthAtLimitPassesAndOneMoreFails) {
  std::string ok;
  for (int i = 0; i < 128; ++i) ok += "*1\r\n";
  ok += ":1\r\n";
  EXPECT_EQ(decode(ok).json.size(), 1u);
  std::string deep;
  for (int i = 0; i < 129; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  const auto d = decode(deep);
  ASSERT_EQ(d.state, status::error);
  EXPECT_EQ(d.error.code, errc::nesting_too_deep);
  EXPECT_EQ(d.error.offset, 128u * 4);
  // A custom limit, and attributes count as a level.
  limits small;
  small.max_depth = 2;
  EXPECT_EQ(decode("*1\r\n*1\r\n:1\r\n", 0, small).json.size(), 1u);
  EXPECT_EQ(decode("*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", 0, small).json.size(), 1u);
  EXPECT_EQ(decode("*1\r\n*1\r\n*1\r\n:1\r\n", 0, small).error.code, errc::nesting_too_deep);
  EXPECT_EQ(decode("*1\r\n*1\r\n|1\r\n+a\r\n+b\r\n:1\r\n", 0, small).error.code, errc::nesting_too_deep);
  // Empty aggregates open no level.
  EXPECT_EQ(decode("*1\r\n*1\r\n*0\r\n", 0, small).json.size(), 1u);
}

TEST(ReaderLimits, DefaultBulkLengthAtLimitWaitsAndOneMoreFails) {
  reader r;
  node n;
  const auto at = r.next("$536870912\r\n", n);
  EXPECT_EQ(at.state, status::need_more);
  EXPECT_EQ(at.consumed, 12u);
  EXPECT_EQ(at.needed, 536870912u + 2);
  reader r2;
  const auto over = r2.next("$536870913\r\n", n);
  ASSERT_EQ(over.state, status::error);
  EXPECT_EQ(over.error.code, errc::bulk_too_long);
  EXPECT_EQ(decode("$99999999999999999999999999\r\n").error.code, errc::bulk_too_long);
  EXPECT_EQ(decode("=536870913\r\n").error.code, errc::bulk_too_long);
  EXPECT_EQ(decode("!536870913\r\n").error.code, errc::bulk_too_long);
}

TEST(ReaderLimits, CustomBulkLengthCoversStreamedTotal) {
  limits small;
  small.max_bulk_length = 8;
  EXPECT_EQ(decode("$8\r\n12345678\r\n", 0, small).json.size(), 1u);
  EXPECT_EQ(decode("$9\r\n123456789\r\n", 0, small).error.code, errc::bulk_too_long);
  EXPECT_EQ(decode("$?\r\n;4\r\n1234\r\n;4\r\n5678\r\n;0\r\n", 0, small).json.size(), 1u);
  const auto d = decode("$?\r\n;4\r\n1234\r\n;5\r\n56789\r\n;0\r\n", 0, small);
  EXPECT_EQ(d.error.code, errc::bulk_too_long);
  EXPECT_EQ(d.error.offset, 15u);
}

TEST(ReaderLimits, DefaultAggregateSizeAtLimitWaitsAndOneMoreFails) {
  for (const char t : std::string("*~%|>")) {
    SCOPED_TRACE(t);
    reader r;
    node n;
    const auto at = r.next(std::string(1, t) + "536870912\r\n", n);
    EXPECT_EQ(at.state, status::ok);
    EXPECT_EQ(n.size, 536870912u);
    EXPECT_FALSE(r.at_reply_boundary());
    const auto d = decode(std::string(1, t) + "536870913\r\n");
    EXPECT_EQ(d.error.code, errc::aggregate_too_large);
    EXPECT_EQ(d.error.offset, 1u);
  }
  EXPECT_EQ(decode("*4294967295\r\n").error.code, errc::aggregate_too_large);
}

TEST(ReaderLimits, CustomAggregateSizeCoversStreamedCount) {
  limits small;
  small.max_aggregate_size = 2;
  EXPECT_EQ(decode("*2\r\n:1\r\n:2\r\n", 0, small).json.size(), 1u);
  EXPECT_EQ(decode("*3\r\n", 0, small).error.code, errc::aggregate_too_large);
  EXPECT_EQ(decode("*?\r\n:1\r\n:2\r\n.\r\n", 0, small).json.size(), 1u);
  EXPECT_EQ(decode("*?\r\n:1\r\n:2\r\n:3\r\n", 0, small).error.code, errc::aggregate_too_large);
  EXPECT_EQ(decode("%?\r\n:1\r\n:2\r\n:3\r\n:4\r\n.\r\n", 0, small).json.size(), 1u);
  EXPECT_EQ(decode("%?\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n", 0, small).error.code, errc::aggregate_too_large);
}

TEST(ReaderLimits, LineLengthAtLimitPassesAndOneMoreFails) {
  limits small;
  small.max_line_length = 10;
  EXPECT_EQ(decode("+0123456789\r\n", 0, small).json.size(), 1u);
  const auto over = decode("+0123456789A\r\n", 0, small);
  EXPECT_EQ(over.error.code, errc::line_too_long);
  EXPECT_EQ(over.error.offset, 11u);
  // Without a CRLF in sight, the error comes once the line cannot end within the limit.
  EXPECT_EQ(decode("+0123456789\r", 0, small).state, status::need_more);
  const auto endless = decode("+0123456789AB", 0, small);
  EXPECT_EQ(endless.error.code, errc::line_too_long);
  EXPECT_EQ(endless.error.offset, 11u);
  for (std::size_t chunk = 1; chunk < 13; ++chunk) EXPECT_EQ(decode("+0123456789AB", chunk, small), endless);
}

TEST(Reader, ClaimedSizesCostNoMemory) {
  reader r;
  std::array<node, 4> nodes;
  (void)r.read("*1\r\n:1\r\n", nodes);  // the stack's first frame allocates once
  const auto before = test::allocations();
  EXPECT_EQ(r.read("*536870912\r\n", nodes).state, status::need_more);
  reader r2;
  EXPECT_EQ(r2.read("$536870912\r\n", nodes).state, status::need_more);
  EXPECT_EQ(test::allocations(), before);
}

TEST(Reader, SteadyStateAllocatesNothing) {
  std::string stream;
  for (int i = 0; i < 100; ++i) {
    stream += "+OK\r\n:12345\r\n$5\r\nhello\r\n*3\r\n$1\r\na\r\n*1\r\n:1\r\n%1\r\n+k\r\n,1.5\r\n";
    stream += "$?\r\n;2\r\nab\r\n;0\r\n|1\r\n+a\r\n+b\r\n>2\r\n+x\r\n_\r\n";
  }
  reader r;
  std::array<node, 16> nodes;
  auto run = [&] {
    std::size_t pos = 0, replies = 0;
    for (;;) {
      const auto res = r.read(std::string_view(stream).substr(pos), nodes);
      for (std::size_t i = 0; i < res.nodes; ++i) replies += nodes[i].ends_reply;
      pos += res.consumed;
      if (res.state != status::ok) break;
    }
    return replies;
  };
  EXPECT_EQ(run(), 600u);
  const auto before = test::allocations();
  EXPECT_EQ(run(), 600u);
  EXPECT_EQ(test::allocations(), before);
}

TEST(Reader, BlobHeaderIsConsumedOnceAndPayloadWaitsWithExactNeed) {
  const std::string payload(100000, 'x');
  const std::string input = "$100000\r\n" + payload + "\r\n";
  reader r;
  node n;
  std::string buffer;
  std::size_t pos = 0, fed = 0, calls_consuming = 0;
  while (fed < input.size()) {
    const std::size_t piece = std::min<std::size_t>(997, input.size() - fed);
    buffer.append(input, fed, piece);
    fed += piece;
    const auto res = r.next(std::string_view(buffer).substr(pos), n);
    if (res.consumed != 0) ++calls_consuming;
    pos += res.consumed;
    if (fed < input.size()) {
      ASSERT_EQ(res.state, status::need_more);
      EXPECT_EQ(res.needed, input.size() - fed);
    } else {
      ASSERT_EQ(res.state, status::ok);
      EXPECT_EQ(n.value.size(), payload.size());
      EXPECT_TRUE(n.ends_reply);
    }
  }
  EXPECT_EQ(calls_consuming, 2u);  // the header, then the whole payload
}

TEST(Reader, PartialLineWaitsWithoutProgressUntilMoreArrives) {
  reader r;
  node n;
  for (int i = 0; i < 2; ++i) {  // the same bytes again: still waiting, nothing consumed
    const auto part = r.next("$10", n);
    EXPECT_EQ(part.state, status::need_more);
    EXPECT_EQ(part.consumed, 0u);
    EXPECT_EQ(part.needed, 1u);
  }
  const auto header = r.next("$10\r\n01234", n);
  EXPECT_EQ(header.state, status::need_more);
  EXPECT_EQ(header.consumed, 5u);
  EXPECT_EQ(header.needed, 7u);
  EXPECT_EQ(r.stream_offset(), 5u);
  const auto body = r.next("0123456789\r\n", n);
  ASSERT_EQ(body.state, status::ok);
  EXPECT_EQ(n.value, "0123456789");
  EXPECT_EQ(r.next("", n).needed, 1u);
}

TEST(Reader, EmptyOutputIsFullEvenWhileWaiting) {
  reader r;
  std::array<node, 2> nodes;
  EXPECT_EQ(r.read("$5\r\nab", nodes).state, status::need_more);
  const auto none = r.read("ab", std::span<node>());
  EXPECT_EQ(none.state, status::ok);
  EXPECT_EQ(none.nodes, 0u);
  EXPECT_EQ(none.consumed, 0u);
  EXPECT_EQ(r.read("ab", nodes).needed, 5u);
  const auto done = r.read("abcde\r\n", std::span<node>(nodes).first(1));
  ASSERT_EQ(done.state, status::ok);  // the output span is full
  EXPECT_EQ(done.nodes, 1u);
  EXPECT_EQ(r.read("", nodes).state, status::need_more);
}

TEST(Reader, ErrorsAreStickyUntilReset) {
  reader r;
  node n;
  EXPECT_EQ(r.next("+OK\r\n", n).state, status::ok);
  const auto e = r.next("x", n);
  ASSERT_EQ(e.state, status::error);
  EXPECT_EQ(e.error.offset, 5u);  // stream offset, across calls
  EXPECT_EQ(r.next("+OK\r\n", n).state, status::error);
  EXPECT_FALSE(r.at_reply_boundary());
  r.reset();
  EXPECT_EQ(r.next("+OK\r\n", n).state, status::ok);
  EXPECT_TRUE(r.at_reply_boundary());
}

TEST(Reader, BoundaryTracking) {
  EXPECT_TRUE(decode("").boundary);
  EXPECT_TRUE(decode("+OK\r\n").boundary);
  EXPECT_FALSE(decode("+OK\r").boundary);
  EXPECT_FALSE(decode("*2\r\n:1\r\n").boundary);
  EXPECT_FALSE(decode("|0\r\n").boundary);
  EXPECT_FALSE(decode("$3\r\nab").boundary);
  EXPECT_FALSE(decode("*?\r\n").boundary);
}

// Every node, field by field, with the state, error and offsets at the end, of `s` fed in `chunk`-byte
// pieces to an output of `width` nodes: a client's read loop over a growing window.
std::string trace(std::string_view s, std::size_t chunk, std::size_t width, const limits& lim = {}) {
  reader r(lim);
  std::vector<node> nodes(width);
  std::string out;
  std::size_t pos = 0;
  for (std::size_t window = std::min(chunk, s.size());; window = std::min(window + chunk, s.size())) {
    read_result res;
    do {
      res = r.read(s.substr(pos, window - pos), nodes);
      for (std::size_t i = 0; i < res.nodes; ++i) {
        const node& n = nodes[i];
        out += std::to_string(static_cast<int>(n.data_type)) + "/" + std::to_string(static_cast<int>(n.null_origin)) +
               "/" + std::to_string(n.streamed) + std::to_string(n.ends_reply) + "/" + std::to_string(n.depth) + "/" +
               std::to_string(n.size) + "/" + std::to_string(n.integer) + "/" + std::string(n.value) + "|";
        if (!n.value.empty()) {  // views into this call's input
          EXPECT_GE(n.value.data(), s.data() + pos);
          EXPECT_LE(n.value.data() + n.value.size(), s.data() + window);
        }
      }
      pos += res.consumed;
      EXPECT_EQ(r.stream_offset(), pos);
    } while (res.state == status::ok);
    if (res.state == status::error) {
      out += " error " + std::to_string(static_cast<int>(res.error.code)) + " at " + std::to_string(res.error.offset);
      break;
    }
    EXPECT_GE(res.needed, 1u);
    if (window == s.size()) break;
  }
  return out + " end " + std::to_string(pos) + (r.at_reply_boundary() ? " boundary" : "");
}

// Replies made of blob strings take inline shortcuts in read() when they arrive in pieces (a pending
// payload that completes, then the next blob header); every piece and output size must give what
// one whole read gives, errors and their offsets included.
TEST(Reader, BlobShortcutsMatchTheGeneralPathForEverySplit) {
  struct stream {
    std::string bytes;
    limits lim;
  };
  limits narrow_line;
  narrow_line.max_line_length = 2;
  limits small_bulk;
  small_bulk.max_bulk_length = 10;
  limits shallow;
  shallow.max_aggregate_size = 3;
  limits depth_one;
  depth_one.max_depth = 1;
  limits no_depth;
  no_depth.max_depth = 0;
  const std::string k100(100, 'k');
  const std::vector<stream> streams = {
      {"*3\r\n$3\r\nfoo\r\n$0\r\n\r\n$10\r\n0123456789\r\n$2\r\nab\r\n", {}},
      {"*2\r\n$100\r\n" + k100 + "\r\n$100\r\n" + k100 + "\r\n*2\r\n$1\r\nx\r\n$100\r\n" + k100 + "\r\n", {}},
      {"$003\r\nabc\r\n$1234567\r\n", {}},                      // leading zeros; a 7-digit length waiting
      {"$12345678\r\n$123456789012345678\r\n", {}},             // 8 and 18 digits
      {"$3\r\nabc\r\n$1234567890123456789\r\n", {}},           // 19 digits: bulk_too_long
      {"|1\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nvv\r\n$1\r\nz\r\n", {}},  // attribute, then the values
      {"*2\r\n|1\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nv\r\n$1\r\nw\r\n", {}},
      {"%2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*1\r\n$1\r\nd\r\n", {}},
      {"*?\r\n$3\r\nabc\r\n$2\r\nde\r\n.\r\n$?\r\n;3\r\nabc\r\n$1\r\n", {}},  // streams: `$` inside is an error
      {"*?\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n.\r\n", shallow},
      {"$3\r\nabc\r\n$-1\r\n$?\r\n;1\r\nx\r\n;0\r\n!3\r\nerr\r\n=7\r\ntxt:abc\r\n$1\r\nq\r\n", {}},
      {"$3\r\nabc\r\n$1a\r\n", {}},
      {"$3\r\nabc\r\n$\r\n", {}},
      {"$3\r\nabc\r\n$1\rx\n", {}},
      {"$3\r\nabc\r\n$2\n\r\n", {}},
      {"$3\r\nabcXY$1\r\n", {}},
      {"$3\r\nabc\r\n$10\r\n0123456789\r\n$11\r\n", small_bulk},
      {"$3\r\nabc\r\n$10\r\n0123456789\r\n$100\r\n", narrow_line},
      {"$3\r\nabc\r\n$10\r\n0123456789\r\n$1234", narrow_line},
      {"$5\r\nabcde\r\n*1\r\n$5\r\n0123", {}},
      // The blob that closes the outermost array, then the next array header (C3's shape), and
      // what the array shortcut leaves to the general path: other counts, nested closes, limits.
      {"*2\r\n$3\r\nabc\r\n$3\r\ndef\r\n*2\r\n$3\r\nghi\r\n$3\r\njkl\r\n*1\r\n$1\r\nm\r\n", {}},
      {"*1\r\n$1\r\na\r\n*0\r\n*-1\r\n*?\r\n$1\r\nb\r\n.\r\n*1\r\n:1\r\n*1\r\n$1\r\nc\r\n", {}},
      {"*1\r\n$1\r\na\r\n*1234567\r\n$1\r\nb\r\n", {}},         // 7 digits: the longest shortcut
      {"*1\r\n$1\r\na\r\n*12345678\r\n$1\r\nb\r\n", {}},        // 8: the general path
      {"*1\r\n$1\r\na\r\n*+1\r\n", {}},
      {"*1\r\n$1\r\na\r\n*1\r\r\n", {}},
      {"*1\r\n$1\r\na\r\n*1\rx$1\r\nb\r\n", {}},
      {"*1\r\n$1\r\na\r\n*4\r\n$1\r\nb\r\n", shallow},           // count over the limit
      {"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*3\r\n$1\r\nd\r\n", shallow},
      {"*1\r\n*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n", {}},           // closes two arrays
      {"*2\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n%1\r\n$1\r\nk\r\n$1\r\nv\r\n", {}},
      {"%1\r\n$1\r\nk\r\n$1\r\nv\r\n~1\r\n$1\r\ns\r\n>2\r\n$1\r\np\r\n$1\r\nq\r\n*1\r\n$1\r\nz\r\n", {}},
      {"|1\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$1\r\na\r\n$1\r\nb\r\n", {}},  // an attribute closes
      {"*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n", depth_one},
      {"*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n", no_depth},
      {"*1\r\n$1\r\na\r\n*10\r\n$1\r\nb\r\n", narrow_line},
      {"*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n", narrow_line},
      {"*2\r\n$100\r\n" + k100 + "\r\n$100\r\n" + k100 + "\r\n*2\r\n$100\r\n" + k100 + "\r\n$100\r\n" + k100 + "\r\n", {}},
  };
  for (const stream& st : streams) {
    const std::string whole = trace(st.bytes, st.bytes.size(), 256, st.lim);
    for (std::size_t chunk = 1; chunk <= st.bytes.size(); ++chunk) {
      for (const std::size_t width : {1, 2, 3, 7, 256}) {
        EXPECT_EQ(trace(st.bytes, chunk, width, st.lim), whole) << st.bytes << " chunk " << chunk << " width " << width;
      }
    }
  }
}

// Whole replies in a big input take read_some's common-element path (common_elements in
// resp/reader.cpp) where at least 32 bytes remain; pieces of a few bytes take the general path. Each
// case sits between fillers, so that the common path runs into it; every piece and output size must
// give what one whole read gives, errors and their offsets included. The cases are the path's edges:
// what it takes, and the first thing past each of its conditions and the reader's limits.
TEST(Reader, CommonElementsMatchTheGeneralPathForEverySplit) {
  struct stream {
    std::string bytes;
    limits lim;
    bool at_end = false;
  };
  const auto with = [](auto set) {
    limits lim;
    set(lim);
    return lim;
  };
  const std::string filler = ":1\r\n+OK\r\n$2\r\nab\r\n*1\r\n:7\r\n-E\r\n*0\r\n";  // 39 bytes
  const std::string k100(100, 'k');
  std::vector<stream> cases = {
      {"+OK\r\n-ERR x\r\n+\r\n-\r\n:0\r\n:-0\r\n:+42\r\n:007\r\n", {}},
      {"+0123456789abcd\r\n+0123456789abcde\r\n-0123456789abcdef\r\n", {}},  // CR at 15, 16, 17
      {"+a\rb\r\n-\n\r\r\n+\r\r\n:1\r2\r\n", {}},                               // lone CRs and LFs
      {":12345678901234567\r\n:-1234567890123456\r\n:-12345678901234567\r\n:9223372036854775807\r\n", {}},
      {":-9223372036854775808\r\n:9223372036854775808\r\n", {}},  // over int64: the general error
      {":12a\r\n", {}},
      {":\r\n", {}},
      {"$0\r\n\r\n$3\r\nfoo\r\n$003\r\nabc\r\n$100\r\n" + k100 + "\r\n", {}},
      {"$3\r\nfooXY:1\r\n", {}},   // payload not followed by CRLF
      {"$3\r\nfoo\rX:1\r\n", {}},
      {"$-1\r\n$?\r\n;2\r\nab\r\n;0\r\n$-2\r\n", {}},
      {"$\r\n", {}},
      {"$1\r2\r\n", {}},
      {"$12345678901234567\r\n", {}},    // 17 digits: too long for the default bulk limit
      {"$123456789012345678901\r\n", {}},
      {"*3\r\n$1\r\na\r\n*0\r\n*2\r\n*1\r\n:1\r\n+x\r\n*-1\r\n", {}},
      {"*2\r\n*2\r\n*2\r\n:1\r\n:2\r\n:3\r\n:4\r\n", {}},  // one value closes three arrays
      {"*2\r\n|1\r\n+k\r\n+v\r\n+a\r\n*1\r\n|1\r\n+k\r\n*1\r\n:1\r\n:2\r\n", {}},  // attributes inside
      {"|1\r\n+k\r\n*2\r\n:1\r\n:2\r\n+annotated\r\n", {}},
      {"*?\r\n+a\r\n:1\r\n$1\r\nx\r\n*1\r\n:2\r\n.\r\n", {}},  // a stream: its children the general way
      {"*1\r\n*?\r\n*1\r\n+a\r\n.\r\n", {}},
      {"%1\r\n+k\r\n+v\r\n~1\r\n+s\r\n>1\r\n+p\r\n#t\r\n,1.5\r\n_\r\n(12\r\n!1\r\ne\r\n=5\r\ntxt:x\r\n", {}},
      {"*1\r\n;1\r\nx\r\n", {}},
      {"*1\r\n.\r\n", {}},
      {"&1\r\n", {}},
      {"$16\r\n0123456789abcdef\r\n", with([](limits& l) { l.max_bulk_length = 16; })},
      {"$17\r\n0123456789abcdefg\r\n", with([](limits& l) { l.max_bulk_length = 16; })},
      {"*3\r\n:1\r\n:2\r\n:3\r\n", with([](limits& l) { l.max_aggregate_size = 3; })},
      {"*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n", with([](limits& l) { l.max_aggregate_size = 3; })},
      {"*1\r\n*1\r\n:1\r\n", with([](limits& l) { l.max_depth = 2; })},
      {"*1\r\n*1\r\n*1\r\n:1\r\n", with([](limits& l) { l.max_depth = 2; })},
      {"+0123456789abcd\r\n$3\r\nabc\r\n", with([](limits& l) { l.max_line_length = 31; })},
      {"+0123456789abcd\r\n", with([](limits& l) { l.max_line_length = 14; })},
      {"+0123456789abcde\r\n", with([](limits& l) { l.max_line_length = 14; })},
      {"+0123456789abcd\r\n:123456789012345\r\n", with([](limits& l) { l.max_line_length = 32; })},
  };
  // And at the end of the input, 32 bytes or a few more from the last element: a CR at the last
  // byte (its LF not here yet), a line cut short, payloads still arriving.
  const std::string x30(30, 'x');
  for (const std::string_view tail : {":111111111111111111111111111111\r", "+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r"}) {
    cases.push_back({std::string(tail), {}, true});
  }
  cases.push_back({"$26\r\n" + x30.substr(0, 26) + "\r", {}, true});
  cases.push_back({"*1\r\n$22\r\n" + x30.substr(0, 22) + "\r\n", {}, true});
  cases.push_back({"*2\r\n:1\r\n$40\r\n" + x30, {}, true});  // the header taken, the payload waited for
  for (const stream& c : cases) {
    const std::string bytes = c.at_end ? filler + c.bytes : filler + c.bytes + filler + filler;
    const std::string whole = trace(bytes, bytes.size(), 256, c.lim);
    for (std::size_t chunk = 1; chunk <= bytes.size(); ++chunk) {
      for (const std::size_t width : {1, 2, 3, 7, 256}) {
        EXPECT_EQ(trace(bytes, chunk, width, c.lim), whole) << c.bytes << " chunk " << chunk << " width " << width;
      }
    }
  }
}

// Every stream, cut at every point (and fed a byte at a time), decodes as when fed whole.
TEST(Reader, SplitInvariance) {
  const std::vector<std::string> streams = {
      "+OK\r\n:1\r\n$3\r\nfoo\r\n*2\r\n$1\r\na\r\n$-1\r\n",
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
      "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n*?\r\n~?\r\n#t\r\n.\r\n%?\r\n.\r\n.\r\n",
      ">3\r\n$7\r\nmessage\r\n$7\r\nchannel\r\n$5\r\nhello\r\n=15\r\ntxt:Some string\r\n(123\r\n!3\r\nERR\r\n",
      "+a\rb\r\n-\n\r\r\n_\r\n*-1\r\n",
      "*2\r\n:1\r\n:12a\r\n",
      "$5\r\nabcdeXY",
      "*3\r\n:1\r\n",
      // Lines cut near the end of an input with 16 or more bytes before them, CRs close by.
      "+0123456789abcdef\r\n$2\r\n\r\r\r\n+\r\r\r\n:-12\r\n*1\r\n$17\r\n0123456789abcdef\r\r\n",
      "$30\r\n0123456789\r\n0123456789\r\n012345\r\n+a\rb\nc\r\n-\r\n",
  };
  for (const auto& s : streams) {
    const auto whole = decode(s);
    EXPECT_EQ(decode(s, 1), whole) << s;
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
      EXPECT_EQ(test::decode_split(s, {cut}), whole) << s << " cut " << cut;
    }
    for (std::size_t a = 0; a < s.size(); a += 3) {
      for (std::size_t b = a; b < s.size(); b += 5) EXPECT_EQ(test::decode_split(s, {a, b}), whole);
    }
  }
}

}  // namespace
}  // namespace redring::resp

namespace redring::resp {
namespace {

// A refused aggregate header is not consumed, like every other bad element (found by fuzzing).
TEST(Reader, RefusedHeadersStayUnconsumed) {
  limits small;
  small.max_depth = 2;
  reader r(small);
  std::array<node, 8> nodes;
  const auto deep = r.read("*1\r\n*1\r\n*1\r\n:1\r\n", nodes);
  ASSERT_EQ(deep.state, status::error);
  EXPECT_EQ(deep.error.offset, 8u);
  EXPECT_EQ(deep.consumed, 8u);
  limits narrow;
  narrow.max_aggregate_size = 2;
  reader r2(narrow);
  const auto wide = r2.read("*?\r\n:1\r\n:2\r\n*1\r\n", nodes);
  ASSERT_EQ(wide.state, status::error);
  EXPECT_EQ(wide.error.code, errc::aggregate_too_large);
  EXPECT_EQ(wide.consumed, 12u);
  EXPECT_EQ(r2.stream_offset(), 12u);
}

}  // namespace
}  // namespace redring::resp
