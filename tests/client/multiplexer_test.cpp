// SPDX-License-Identifier: MIT
// The sans-I/O multiplexer with plain bytes: order, pushes, timeouts, drops, and zero-copy parsing
// of kernel buffers split at every point.
#include "client/error.hpp"
#include "client/multiplexer.hpp"
#include "resp/json.hpp"
#include "resp/value.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace redring::client {
namespace {

// A request that records its replies as JSON, and how it completed.
struct recorder : request {
  resp::value_builder builder;
  std::vector<std::string> replies;
  std::vector<std::error_code> done;
};

recorder make(std::uint32_t count = 1) {
  recorder r;
  r.request::replies = count;
  r.encode = [](request&, resp::writer& w) { w.command("PING"); };
  r.on_node = [](request& base, const resp::node& n) {
    auto& self = static_cast<recorder&>(base);
    if (self.builder.add(n)) {
      std::string j;
      resp::append_json(j, self.builder.take());
      self.replies.push_back(j);
    }
  };
  r.on_done = [](request& base, std::error_code ec) { static_cast<recorder&>(base).done.push_back(ec); };
  return r;
}

const auto never = net::clock::time_point::max();

TEST(Multiplexer, MatchesRepliesInOrderAndRoutesPushes) {
  multiplexer m;
  std::vector<recorder> rs;
  rs.reserve(3);
  for (int i = 0; i < 3; ++i) rs.push_back(make());
  for (auto& r : rs) m.encode(r, never);
  EXPECT_EQ(m.unsent(), 3u);
  const auto out = m.take_output();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::string_view(static_cast<const char*>(out[0].iov_base), out[0].iov_len), std::string("*1\r\n$4\r\nPING\r\n") + "*1\r\n$4\r\nPING\r\n" + "*1\r\n$4\r\nPING\r\n");
  EXPECT_TRUE(m.output_written(out[0].iov_len).empty());
  int pushes = 0;
  m.set_push_handler({[](void* ctx, const resp::node& n) { *static_cast<int*>(ctx) += n.ends_reply; }, &pushes});
  ASSERT_FALSE(m.feed(":1\r\n>2\r\n+a\r\n+b\r\n*2\r\n:2\r\n:3\r\n+x\r\n"));
  EXPECT_EQ(rs[0].replies, std::vector<std::string>{R"({"integer":"1"})"});
  EXPECT_EQ(rs[1].replies, std::vector<std::string>{R"({"array":[{"integer":"2"},{"integer":"3"}]})"});
  EXPECT_EQ(rs[2].replies, std::vector<std::string>{R"({"simple":"x"})"});
  EXPECT_EQ(pushes, 1);
  for (auto& r : rs) EXPECT_EQ(r.done, std::vector<std::error_code>{std::error_code()});
  EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, TimedOutRequestsDiscardTheirLateReply) {
  multiplexer m;
  auto a = make(), b = make();
  const auto t0 = net::clock::now();
  m.encode(a, t0 + std::chrono::milliseconds(10));
  m.encode(b, never);
  (void)m.take_output();
  (void)m.output_written(1 << 20);
  EXPECT_EQ(m.expire(t0 + std::chrono::milliseconds(20)), never);
  EXPECT_EQ(a.done, std::vector<std::error_code>{errc::timeout});
  EXPECT_EQ(m.queued(), 1u);
  ASSERT_FALSE(m.feed("+late\r\n+mine\r\n"));
  EXPECT_TRUE(a.replies.empty());
  EXPECT_EQ(b.replies, std::vector<std::string>{R"({"simple":"mine"})"});
  EXPECT_TRUE(m.idle());
}

TEST(Multiplexer, DropKeepsUnsentAndCompletesSentOnce) {
  multiplexer m;
  auto sent = make(), unsent = make();
  m.encode(sent, never);
  (void)m.take_output();
  m.encode(unsent, never);
  ASSERT_FALSE(m.feed("$5\r\nhel"));  // half a reply, then the connection goes
  m.drop_sent(errc::connection_lost);
  EXPECT_EQ(sent.done, std::vector<std::error_code>{errc::connection_lost});
  EXPECT_TRUE(unsent.done.empty());
  EXPECT_EQ(m.unsent(), 1u);
  const auto out = m.take_output();  // the next connection sends the unsent command
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].iov_len, 14u);
  (void)m.output_written(14);
  ASSERT_FALSE(m.feed("+PONG\r\n"));
  EXPECT_EQ(unsent.replies, std::vector<std::string>{R"({"simple":"PONG"})"});
}

TEST(Multiplexer, MalformedReplyIsAProtocolError) {
  multiplexer m;
  auto r = make();
  m.encode(r, never);
  (void)m.take_output();
  EXPECT_EQ(m.feed("$3\r\nabcXY"), errc::protocol_error);
}

// Replies delivered as two kernel buffers, cut at every offset: the same results as contiguous
// feeding, and only the element that spans the cut is copied.
TEST(Multiplexer, InPlaceParsingAtEverySplit) {
  const std::string big(5000, 'x');
  const std::string stream = "+OK\r\n:123456\r\n$5\r\nhello\r\n*3\r\n$1\r\na\r\n%1\r\n+k\r\n:1\r\n_\r\n$5000\r\n" + big +
                             "\r\n|1\r\n+ttl\r\n:9\r\n,1.5\r\n$?\r\n;2\r\nab\r\n;0\r\n";
  constexpr int replies = 7;
  std::vector<std::string> expected;
  {
    multiplexer m;
    std::vector<recorder> rs(replies);
    for (auto& r : rs) r = make(), m.encode(r, never);
    (void)m.take_output();
    ASSERT_FALSE(m.feed(stream));
    for (auto& r : rs) expected.insert(expected.end(), r.replies.begin(), r.replies.end());
    ASSERT_EQ(expected.size(), static_cast<std::size_t>(replies));
  }
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    multiplexer m;
    std::vector<recorder> rs(replies);
    for (auto& r : rs) r = make(), m.encode(r, never);
    (void)m.take_output();
    // Each "kernel buffer" is a separate allocation that dies after the call: no view may outlive it.
    {
      const std::string first = stream.substr(0, cut);
      ASSERT_FALSE(m.feed_in_place(first));
    }
    {
      const std::string second = stream.substr(cut);
      ASSERT_FALSE(m.feed_in_place(second));
    }
    std::vector<std::string> got;
    for (auto& r : rs) got.insert(got.end(), r.replies.begin(), r.replies.end());
    ASSERT_EQ(got, expected) << "cut at " << cut;
    // Copies are bounded by the element that spans the cut (the 5000-byte blob at most).
    EXPECT_LE(m.bytes_copied(), 5000u + 16) << "cut at " << cut;
    EXPECT_TRUE(m.idle());
  }
}

}  // namespace
}  // namespace redring::client
