// SPDX-License-Identifier: MIT
// Real replies from redis-server: every RESP3 type through `DEBUG PROTOCOL`, the HELLO 3 map, and
// RESP2 replies, decoded whole and one byte at a time.
#include "tests/support/decode.hpp"
#include "tests/support/redis_server.hpp"

#include "resp/convert.hpp"

#include <gtest/gtest.h>

namespace redring::resp {
namespace {

class RedisCapture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new test::redis_server({"--enable-debug-command", "yes"}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static test::redis_server* server_;
};
test::redis_server* RedisCapture::server_ = nullptr;

// The raw bytes of one reply to `args`, checked to decode the same whole and byte by byte.
std::string capture(test::blocking_connection& c, const std::vector<std::string_view>& args) {
  c.send_command(args);
  std::string raw = c.read_raw_replies(1);
  const auto whole = test::decode(raw);
  EXPECT_EQ(test::decode(raw, 1), whole);
  return raw;
}

TEST_F(RedisCapture, DebugProtocolCoversEveryResp3Type) {
  test::blocking_connection c(server_->socket_path());
  const std::string hello = capture(c, {"HELLO", "3"});
  const std::string hello_json = test::json_of(hello);
  EXPECT_TRUE(hello_json.starts_with(R"({"map":[[{"bulk":"server"},{"bulk":"redis"}])")) << hello_json;
  EXPECT_NE(hello_json.find(R"([{"bulk":"proto"},{"integer":"3"}])"), std::string::npos);

  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "string"})), R"({"bulk":"Hello World"})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "integer"})), R"({"integer":"12345"})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "double"})), R"({"double":"3.141"})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "bignum"})),
            R"({"bignum":"1234567999999999999999999999999999999"})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "null"})), R"({"null":"null"})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "true"})), R"({"boolean":true})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "false"})), R"({"boolean":false})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "verbatim"})),
            R"({"verbatim":{"format":"txt","text":"This is a verbatim\nstring"}})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "array"})),
            R"({"array":[{"integer":"0"},{"integer":"1"},{"integer":"2"}]})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "set"})),
            R"({"set":[{"integer":"0"},{"integer":"1"},{"integer":"2"}]})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "map"})),
            R"({"map":[[{"integer":"0"},{"boolean":false}],[{"integer":"1"},{"boolean":true}],[{"integer":"2"},{"boolean":false}]]})");
  EXPECT_EQ(test::json_of(capture(c, {"DEBUG", "PROTOCOL", "attrib"})),
            R"({"attribute":[[{"bulk":"key-popularity"},{"array":[{"bulk":"key:123"},{"integer":"90"}]}]],"value":{"bulk":"Some real reply following the attribute"}})");
  // `DEBUG PROTOCOL push` sends a push, then a normal reply: out of band first, order kept.
  c.send_command({"DEBUG", "PROTOCOL", "push"});
  const std::string push = c.read_raw_replies(2);
  const auto d = test::decode(push);
  ASSERT_EQ(d.json.size(), 2u);
  EXPECT_EQ(d.json[0], R"({"push":[{"bulk":"server-cpu-usage"},{"integer":"42"}]})");
  EXPECT_EQ(d.json[1], R"({"bulk":"Some real reply following the push reply"})");
}

TEST_F(RedisCapture, Resp3DataReplies) {
  test::blocking_connection c(server_->socket_path());
  (void)capture(c, {"HELLO", "3"});
  (void)capture(c, {"DEL", "h", "z", "missing"});
  EXPECT_EQ(test::json_of(capture(c, {"HSET", "h", "f1", "v1", "f2", "v2"})), R"({"integer":"2"})");
  EXPECT_EQ(test::json_of(capture(c, {"HGETALL", "h"})),
            R"({"map":[[{"bulk":"f1"},{"bulk":"v1"}],[{"bulk":"f2"},{"bulk":"v2"}]]})");
  (void)capture(c, {"ZADD", "z", "1.5", "a"});
  EXPECT_EQ(test::json_of(capture(c, {"ZSCORE", "z", "a"})), R"({"double":"1.5"})");
  EXPECT_EQ(test::json_of(capture(c, {"GET", "missing"})), R"({"null":"null"})");
  EXPECT_EQ(test::json_of(capture(c, {"SET", "k", "v"})), R"({"simple":"OK"})");
  EXPECT_TRUE(test::json_of(capture(c, {"NOSUCHCOMMAND"})).starts_with(R"({"error":"ERR unknown command 'NOSUCHCOMMAND')"));
  const value wrongtype = c.call({"HGET", "k", "f"});
  EXPECT_EQ(wrongtype.error_code(), "WRONGTYPE");
  EXPECT_EQ(convert<std::string>(wrongtype).error().code_word(), "WRONGTYPE");
}

TEST_F(RedisCapture, Resp2Replies) {
  test::blocking_connection c(server_->socket_path());
  (void)capture(c, {"DEL", "l", "h2", "missing"});
  EXPECT_EQ(test::json_of(capture(c, {"GET", "missing"})), R"({"null":"bulk"})");
  EXPECT_EQ(test::json_of(capture(c, {"BLPOP", "missing", "0.01"})), R"({"null":"array"})");
  (void)capture(c, {"HSET", "h2", "f", "v"});
  EXPECT_EQ(test::json_of(capture(c, {"HGETALL", "h2"})), R"({"array":[{"bulk":"f"},{"bulk":"v"}]})");
  const auto map = convert<std::map<std::string, std::string>>(c.call({"HGETALL", "h2"}));
  ASSERT_TRUE(map);
  EXPECT_EQ(map->at("f"), "v");
  // A large value crosses many reads; it arrives whole.
  const std::string big(3 << 20, 'q');
  (void)capture(c, {"SET", "big", big});
  const value got = c.call({"GET", "big"});
  EXPECT_EQ(got.text, big);
}

}  // namespace
}  // namespace redring::resp
