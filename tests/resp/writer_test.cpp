// SPDX-License-Identifier: MIT
// The writer: command encoding, argument kinds, RESP3 values, references instead of copies.
#include "resp/writer.hpp"

#include "tests/support/alloc_counter.hpp"
#include "tests/support/decode.hpp"

#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <list>
#include <map>
#include <type_traits>
#include <string>
#include <vector>

namespace redring::resp {
namespace {

std::string gather(writer& w) {
  std::string out;
  for (const iovec& v : w.iovecs()) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
  return out;
}

TEST(Writer, Commands) {
  writer w;
  w.command("GET", "key");
  EXPECT_EQ(w.data(), "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
  w.clear();
  const std::string value(100, 'v');
  w.command("SET", std::string("k"), std::string_view(value), "EX", 10);
  EXPECT_EQ(w.data(), "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\n" + value + "\r\n$2\r\nEX\r\n$2\r\n10\r\n");
}

// The inline copy has a branch per size class (0, 1-3, 4-7, 8-15, 16-32, larger): every length up
// to 80, at every alignment of the source, must come out byte for byte.
TEST(Writer, EveryShortArgumentLengthIsCopiedExactly) {
  std::string source(120, '\0');
  for (std::size_t i = 0; i < source.size(); ++i) source[i] = static_cast<char>('A' + i % 53);
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t n = 0; n <= 100; ++n) {  // every one- and two-digit length, and the first of three
      writer w;
      const std::string_view arg(source.data() + offset, n);
      w.command("ECHO", arg, 7);
      const std::string expected = "*3\r\n$4\r\nECHO\r\n$" + std::to_string(n) + "\r\n" + std::string(arg) +
                                   "\r\n$1\r\n7\r\n";
      ASSERT_EQ(w.data(), expected) << "length " << n << " offset " << offset;
    }
  }
}

// A char array's text ends at its first NUL, as strlen would say, or at its end if it has none.
TEST(Writer, CharArraysEndAtTheirFirstNul) {
  EXPECT_EQ(array_text("GET"), "GET");
  EXPECT_EQ(array_text(""), "");
  const char embedded[6] = {'a', 'b', '\0', 'c', 'd', '\0'};
  EXPECT_EQ(array_text(embedded), "ab");
  const char unterminated[3] = {'x', 'y', 'z'};
  EXPECT_EQ(array_text(unterminated), "xyz");
  char buffer[64] = "short";
  EXPECT_EQ(array_text(buffer), "short");
  const char long_literal[] = "a literal longer than one word";
  EXPECT_EQ(array_text(long_literal), "a literal longer than one word");
  writer w;
  w.command(buffer, embedded);
  EXPECT_EQ(w.data(), "*2\r\n$5\r\nshort\r\n$2\r\nab\r\n");
}

// A compile-time literal encodes as the same text would, on the fast path and on the referencing
// one (a large payload among the arguments), empty and long ones included.
TEST(Writer, LiteralsEncodeAsTheirText) {
  static_assert(lit<"GET">.text == "GET" && lit<"">.text.empty() && std::is_empty_v<literal<"GET">>);
  static_assert(is_literal_v<literal<"SET">> && !is_literal_v<std::string_view>);
  writer w;
  w.command(lit<"GET">, "key");
  EXPECT_EQ(w.data(), "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
  w.clear();
  w.command(lit<"ZREMRANGEBYSCORE">, "k", lit<"">, lit<"a literal longer than thirty-two bytes, copied whole">, 5);
  EXPECT_EQ(w.data(),
            "*5\r\n$16\r\nZREMRANGEBYSCORE\r\n$1\r\nk\r\n$0\r\n\r\n"
            "$52\r\na literal longer than thirty-two bytes, copied whole\r\n$1\r\n5\r\n");
  writer referencing(8);  // payloads of 8 bytes or more referenced: the slow path
  const std::string big(20, 'b');
  referencing.command(lit<"SET">, std::string_view(big), lit<"PX">, 100);
  EXPECT_EQ(gather(referencing), "*4\r\n$3\r\nSET\r\n$20\r\n" + big + "\r\n$2\r\nPX\r\n$3\r\n100\r\n");
}

TEST(Writer, ArgumentKinds) {
  writer w;
  const std::vector<std::string> keys = {"a", "bb"};
  const std::list<std::string_view> more = {"c"};
  w.command("DEL", keys, more, std::vector<std::string>{});
  EXPECT_EQ(w.data(), "*4\r\n$3\r\nDEL\r\n$1\r\na\r\n$2\r\nbb\r\n$1\r\nc\r\n");
  w.clear();
  w.command("X", std::int64_t{-9223372036854775807LL - 1}, std::uint64_t{18446744073709551615ULL}, 1.5, 0.1,
            std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), short{-3});
  EXPECT_EQ(w.data(),
            "*8\r\n$1\r\nX\r\n$20\r\n-9223372036854775808\r\n$20\r\n18446744073709551615\r\n$3\r\n1.5\r\n"
            "$3\r\n0.1\r\n$3\r\ninf\r\n$4\r\n-inf\r\n$2\r\n-3\r\n");
  w.clear();
  const std::array<std::string_view, 3> split = {"HSET", "h", "f"};
  w.command(std::span<const std::string_view>(split));
  EXPECT_EQ(w.data(), "*3\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n");
  w.clear();
  w.command("SET", std::string_view("a\r\nb\0c", 6), "");
  EXPECT_EQ(w.data(), std::string("*3\r\n$3\r\nSET\r\n$6\r\na\r\nb\0c\r\n$0\r\n\r\n", 31));
}

// From a review: bulk() takes any integer type (bulk(5), bulk(5u), bulk(std::size_t) were ambiguous
// between int64_t, double and string_view), floats keep their own shortest form (0.1f was sent as
// 0.10000000149011612), and an empty default-constructed view, whose data() is null, is written
// without passing null to memcpy (UBSan: "null pointer passed as argument 2").
static_assert(!scalar_argument<char8_t> && !scalar_argument<char16_t> && !scalar_argument<char32_t> &&
              !scalar_argument<wchar_t> && !scalar_argument<char> && !scalar_argument<bool>);
static_assert(scalar_argument<signed char> && scalar_argument<unsigned long long> && scalar_argument<long double>);

TEST(Writer, NumbersOfEveryTypeAndEmptyViews) {
  writer w;
  w.aggregate_header(type::array, 5);
  w.bulk(5);
  w.bulk(5u);
  w.bulk(std::size_t{18446744073709551615ULL});
  w.bulk(0.1f);
  w.bulk(0.1);
  EXPECT_EQ(w.data(), "*5\r\n$1\r\n5\r\n$1\r\n5\r\n$20\r\n18446744073709551615\r\n$3\r\n0.1\r\n$3\r\n0.1\r\n");
  w.clear();
  w.command("ZADD", "k", 0.1f, "m", 1e30f);
  EXPECT_EQ(w.data(), "*5\r\n$4\r\nZADD\r\n$1\r\nk\r\n$3\r\n0.1\r\n$1\r\nm\r\n$5\r\n1e+30\r\n");
  w.clear();
  const std::string_view none{};
  w.bulk(none);
  w.simple_string(none);
  w.simple_error(none);
  w.blob_error(none);
  const std::array<std::string_view, 2> split = {"GET", none};
  w.command(std::span<const std::string_view>(split));
  EXPECT_EQ(w.data(), "$0\r\n\r\n+\r\n-\r\n!0\r\n\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
}

// A range of pairs (MSET's keys and values, a map's entries) writes two bulk strings per element,
// first then second, counted twice in the array header, on the fast path and the referencing one.
TEST(Writer, RangesOfPairsWriteBothHalves) {
  static_assert(pair_argument<std::pair<std::string, int>> && pair_argument<std::pair<const std::string, double>>);
  static_assert(!pair_argument<std::pair<std::string, std::vector<int>>> && !pair_argument<std::string>);
  static_assert(!argument<std::pair<std::string, std::string>>);  // only as a range's element
  writer w;
  const std::vector<std::pair<std::string, std::string>> kv = {{"k1", "v1"}, {"k2", ""}};
  w.command(lit<"MSET">, kv);
  EXPECT_EQ(w.data(), "*5\r\n$4\r\nMSET\r\n$2\r\nk1\r\n$2\r\nv1\r\n$2\r\nk2\r\n$0\r\n\r\n");
  w.clear();
  const std::map<std::string, std::int64_t> fields = {{"a", -1}, {"b", 20}};
  w.command("HSET", "h", fields, std::vector<std::pair<std::string_view, double>>{{"c", 0.5}});
  EXPECT_EQ(w.data(), "*8\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\na\r\n$2\r\n-1\r\n$1\r\nb\r\n$2\r\n20\r\n"
                      "$1\r\nc\r\n$3\r\n0.5\r\n");
  w.clear();
  w.command("MSET", std::vector<std::pair<std::string, std::string>>{});
  EXPECT_EQ(w.data(), "*1\r\n$4\r\nMSET\r\n");
  writer referencing(8);  // the value of 20 bytes is referenced: each argument through `bulk`
  const std::string big(20, 'b');
  const std::vector<std::pair<std::string_view, std::string_view>> with_big = {{"k", big}, {"x", "y"}};
  referencing.command(lit<"MSET">, with_big);
  EXPECT_GT(referencing.iovecs().size(), 1u);
  EXPECT_EQ(gather(referencing), "*5\r\n$4\r\nMSET\r\n$1\r\nk\r\n$20\r\n" + big + "\r\n$1\r\nx\r\n$1\r\ny\r\n");
}

TEST(Writer, ReplyTypesParseBack) {
  writer w;
  w.simple_string("OK");
  w.simple_error("ERR x");
  w.integer(-5);
  w.blob_string("bin\r\nary");
  w.blob_error("SYNTAX bad");
  w.verbatim_string("txt", "hello");
  w.null();
  w.null_bulk();
  w.null_array();
  w.boolean(true);
  w.double_number(-2.5);
  w.double_number(std::numeric_limits<double>::quiet_NaN());
  w.double_text("1e10");
  w.big_number("-123456789012345678901234567890");
  w.aggregate_header(type::map, 1);
  w.simple_string("k");
  w.aggregate_header(type::set, 0);
  w.aggregate_header(type::attribute, 1);
  w.simple_string("a");
  w.integer(1);
  w.aggregate_header(type::push, 1);
  w.simple_string("p");
  w.streamed_header(type::blob_string);
  w.stream_part("ab");
  w.stream_end();
  w.streamed_header(type::array);
  w.integer(1);
  w.end();
  const auto d = test::decode(w.data());
  ASSERT_EQ(d.state, status::need_more);
  EXPECT_TRUE(d.boundary);
  const std::vector<std::string> want = {
      R"({"simple":"OK"})", R"({"error":"ERR x"})", R"({"integer":"-5"})", R"({"bulk":"bin\r\nary"})",
      R"({"bulkerror":"SYNTAX bad"})", R"({"verbatim":{"format":"txt","text":"hello"}})", R"({"null":"null"})",
      R"({"null":"bulk"})", R"({"null":"array"})", R"({"boolean":true})", R"({"double":"-2.5"})",
      R"({"double":"nan"})", R"({"double":"1e10"})", R"({"bignum":"-123456789012345678901234567890"})",
      R"({"map":[[{"simple":"k"},{"set":[]}]]})",
      R"({"attribute":[[{"simple":"a"},{"integer":"1"}]],"value":{"push":[{"simple":"p"}]}})",
      R"({"bulk":"ab"})", R"({"array":[{"integer":"1"}]})"};
  EXPECT_EQ(d.json, want);
}

TEST(Writer, LargePayloadsAreReferencedNotCopied) {
  const std::string big(64u << 20, 'x');  // a 64 MiB SET copies nothing
  writer w;
  w.command("SET", "k", std::string_view(big));
  EXPECT_TRUE(w.data().empty());  // not contiguous any more
  EXPECT_EQ(w.size(), 4 + 9 + 7 + 11 + big.size() + 2);
  const auto iov = w.iovecs();
  ASSERT_EQ(iov.size(), 3u);
  EXPECT_EQ(iov[1].iov_base, big.data());
  EXPECT_EQ(iov[1].iov_len, big.size());
  const std::string wire = gather(w);
  EXPECT_EQ(wire.substr(0, 31), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$67108864\r\n");
  EXPECT_EQ(wire.substr(wire.size() - 2), "\r\n");
  EXPECT_EQ(wire.size(), w.size());
}

TEST(Writer, ReferenceThresholdIsConfigurable) {
  writer w(4);
  w.command("SET", "abc", "abcd", 123456);  // integers are always copied
  const auto iov = w.iovecs();
  ASSERT_EQ(iov.size(), 3u);  // "*4..$4\r\n", then "abcd" referenced, then the rest
  EXPECT_EQ(std::string_view(static_cast<const char*>(iov[1].iov_base), iov[1].iov_len), "abcd");
  EXPECT_EQ(gather(w), "*4\r\n$3\r\nSET\r\n$3\r\nabc\r\n$4\r\nabcd\r\n$6\r\n123456\r\n");
  writer never(0);
  const std::string big(1 << 20, 'y');
  never.command("SET", "k", big);
  EXPECT_EQ(never.iovecs().size(), 1u);
  EXPECT_EQ(never.data().size(), never.size());
}

TEST(Writer, ReusedBufferAllocatesNothing) {
  writer w;
  const std::string value(100, 'v');
  for (int i = 0; i < 100; ++i) w.command("SET", "key", value);
  (void)w.iovecs();
  w.clear();
  const auto before = test::allocations();
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 100; ++i) w.command("SET", "key", value);
    (void)w.iovecs();
    w.clear();
  }
  EXPECT_EQ(test::allocations(), before);
}

}  // namespace
}  // namespace redring::resp
