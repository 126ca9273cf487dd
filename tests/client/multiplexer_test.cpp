// SPDX-License-Identifier: MIT
// The sans-I/O multiplexer with plain bytes: order, pushes, timeouts, drops, and zero-copy parsing
// of kernel buffers split at every point.
#include "client/error.hpp"
#include "client/multiplexer.hpp"
#include "resp/json.hpp"
#include "resp/value.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
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

// A request that waits for no reply (replies = 0) completes as soon as it is submitted, so its
// caller may free its arguments at once: a large one must be copied, never referenced, even when it
// says it borrows (the writer referenced 64 KiB and sent what the caller wrote there afterwards).
TEST(Multiplexer, ARequestWaitingForNoReplyOwnsNothingOfItsCaller) {
  multiplexer m;
  struct fire_and_forget : request {
    std::string payload = std::string(64 * 1024, 'X');
  } r;
  r.request::replies = 0;
  r.borrows_arguments = true;
  r.encode = [](request& base, resp::writer& w) { w.command("SET", "k", std::string_view(static_cast<fire_and_forget&>(base).payload)); };
  m.encode(r, never);
  std::fill(r.payload.begin(), r.payload.end(), 'Y');  // the caller reuses its buffer
  std::string sent;
  for (const iovec& v : m.take_output()) sent.append(static_cast<const char*>(v.iov_base), v.iov_len);
  EXPECT_EQ(sent.size(), std::string_view("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$65536\r\n\r\n").size() + 64 * 1024);
  EXPECT_EQ(sent.find('Y'), std::string::npos);
  EXPECT_NE(sent.find(std::string(64 * 1024, 'X')), std::string::npos);
}

// A request with a deadline may time out, and its caller free or reuse the arguments, before its
// bytes leave (a send stuck behind a full socket): a large borrowed argument is copied, never
// referenced, whenever there is a deadline.
TEST(Multiplexer, ARequestWithADeadlineOwnsNothingOfItsCaller) {
  multiplexer m;
  struct borrowed : request {
    std::string payload = std::string(64 * 1024, 'X');
    std::vector<std::error_code> done;
  } r;
  r.borrows_arguments = true;
  r.encode = [](request& base, resp::writer& w) { w.command("SET", "k", std::string_view(static_cast<borrowed&>(base).payload)); };
  r.on_node = [](request&, const resp::node&) {};
  r.on_done = [](request& base, std::error_code ec) { static_cast<borrowed&>(base).done.push_back(ec); };
  const auto t0 = net::clock::now();
  m.encode(r, t0 + std::chrono::milliseconds(10));
  (void)m.expire(t0 + std::chrono::milliseconds(20));
  ASSERT_EQ(r.done, std::vector<std::error_code>{errc::timeout});
  std::fill(r.payload.begin(), r.payload.end(), 'Y');  // the caller's buffer, reused once completed
  std::string sent;
  for (const iovec& v : m.take_output()) sent.append(static_cast<const char*>(v.iov_base), v.iov_len);
  EXPECT_EQ(sent.find('Y'), std::string::npos);
  EXPECT_NE(sent.find(std::string(64 * 1024, 'X')), std::string::npos);
}

// Requests that timed out before they were sent are dropped with their bytes: they never run, and
// the live ones keep their order and their deadlines. Nothing is dropped while anything is sent.
TEST(Multiplexer, RequestsThatTimedOutUnsentAreNeverSent) {
  multiplexer m;
  auto a = make(), b = make(), c = make();
  a.encode = [](request&, resp::writer& w) { w.command("SET", "k", "stale"); };
  b.encode = [](request&, resp::writer& w) { w.command("GET", "k"); };
  c.encode = [](request&, resp::writer& w) { w.command("SET", "k", "stale2"); };
  const auto t0 = net::clock::now();
  m.encode(a, t0 + std::chrono::milliseconds(10));
  m.encode(b, t0 + std::chrono::milliseconds(50));
  m.encode(c, t0 + std::chrono::milliseconds(10));
  EXPECT_FALSE(m.drop_unsent_timeouts());  // none timed out yet
  EXPECT_EQ(m.expire(t0 + std::chrono::milliseconds(20)), t0 + std::chrono::milliseconds(50));
  EXPECT_EQ(a.done, std::vector<std::error_code>{errc::timeout});
  EXPECT_EQ(c.done, std::vector<std::error_code>{errc::timeout});
  EXPECT_EQ(m.unsent(), 3u);  // the timed-out ones still count, and would be sent
  EXPECT_TRUE(m.drop_unsent_timeouts());
  EXPECT_EQ(m.unsent(), 1u);
  EXPECT_EQ(m.queued(), 1u);
  EXPECT_EQ(m.next_deadline(), t0 + std::chrono::milliseconds(50));  // b keeps its deadline
  std::string sent;
  for (const iovec& v : m.take_output()) sent.append(static_cast<const char*>(v.iov_base), v.iov_len);
  EXPECT_EQ(sent, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  (void)m.output_written(sent.size());
  // A timed-out request already sent is not dropped: its reply will come, and is discarded.
  EXPECT_EQ(m.expire(t0 + std::chrono::milliseconds(100)), never);
  EXPECT_EQ(b.done, std::vector<std::error_code>{errc::timeout});
  EXPECT_FALSE(m.drop_unsent_timeouts());
  ASSERT_FALSE(m.feed("$-1\r\n"));
  EXPECT_TRUE(b.replies.empty());
  EXPECT_EQ(m.queued(), 0u);
  EXPECT_TRUE(m.idle());
}

// A completion inside expire (a caller resubmitting at the offline limit) may drop the timed-out
// requests, which rebuilds the queue under expire's walk: the walk starts over, so no due request is
// skipped (one timed out a whole timeout late). A request waiting for no reply keeps its bytes: with
// it unsent, nothing is dropped (it has no slot to be encoded again from).
TEST(Multiplexer, DroppingTimedOutRequestsDuringExpireSkipsNoneAndKeepsRequestsOfNoReply) {
  static multiplexer* current = nullptr;
  static std::vector<bool> dropped_inside;
  multiplexer m;
  current = &m;
  dropped_inside.clear();
  auto a = make(), b = make(), c = make();
  a.on_done = [](request& base, std::error_code ec) {
    static_cast<recorder&>(base).done.push_back(ec);
    dropped_inside.push_back(current->drop_unsent_timeouts());
  };
  const auto t0 = net::clock::now();
  for (recorder* r : {&a, &b, &c}) m.encode(*r, t0 + std::chrono::milliseconds(10));
  EXPECT_EQ(m.expire(t0 + std::chrono::milliseconds(20)), never);
  EXPECT_EQ(dropped_inside, std::vector<bool>{true});  // a was a zombie, dropped: b and c moved
  for (recorder* r : {&a, &b, &c}) EXPECT_EQ(r->done, std::vector<std::error_code>{errc::timeout});
  EXPECT_EQ(m.queued(), 0u);
  // A request of no reply, unsent: the timed-out ones stay (and are sent) rather than lose it.
  struct no_reply : request {
  } q;
  q.request::replies = 0;
  q.encode = [](request&, resp::writer& w) { w.command("CLIENT", "REPLY", "ON"); };
  q.on_done = [](request&, std::error_code) {};
  m.encode(q, never);
  EXPECT_FALSE(m.drop_unsent_timeouts());
  std::string sent;
  for (const iovec& v : m.take_output()) sent.append(static_cast<const char*>(v.iov_base), v.iov_len);
  EXPECT_NE(sent.find("REPLY"), std::string::npos);
  (void)m.output_written(sent.size());
  current = nullptr;
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

// A timed-out request's completion submits the next command, due at once: expire times that one out
// in the same pass and returns the next deadline still ahead, never one already past (it returned
// `now`, and the connection re-armed its timer for nothing; found by fuzz_multiplexer).
TEST(Multiplexer, ExpireReturnsADeadlineAheadWhenCompletionsSubmit) {
  multiplexer m;
  const auto t0 = net::clock::now();
  struct chained : recorder {
    multiplexer* m = nullptr;
    recorder* next = nullptr;
    net::clock::time_point next_deadline;
  };
  recorder next = make(), later = make();
  chained first;
  static_cast<recorder&>(first) = make();
  first.m = &m;
  first.next = &next;
  first.next_deadline = t0 + std::chrono::milliseconds(20);  // due when `first` times out
  first.on_done = [](request& base, std::error_code ec) {
    auto& self = static_cast<chained&>(base);
    self.done.push_back(ec);
    self.m->encode(*self.next, self.next_deadline);
  };
  m.encode(first, t0 + std::chrono::milliseconds(10));
  m.encode(later, t0 + std::chrono::milliseconds(30));
  EXPECT_EQ(m.expire(t0 + std::chrono::milliseconds(20)), t0 + std::chrono::milliseconds(30));
  EXPECT_EQ(first.done, std::vector<std::error_code>{errc::timeout});
  EXPECT_EQ(next.done, std::vector<std::error_code>{errc::timeout});
  EXPECT_TRUE(later.done.empty());
  EXPECT_EQ(m.next_deadline(), t0 + std::chrono::milliseconds(30));
}

// A completion during fail_all submits again (a caller retrying at once): that request fails too,
// and its bytes go with it. They stayed before, and the next connection sent them ahead of the next
// request, which then took their reply (found by fuzz_multiplexer).
TEST(Multiplexer, FailAllDropsWhatItsCompletionsSubmit) {
  multiplexer m;
  struct retrying : recorder {
    multiplexer* m = nullptr;
    recorder* again = nullptr;
  };
  recorder again = make(), next = make();
  retrying first;
  static_cast<recorder&>(first) = make();
  first.m = &m;
  first.again = &again;
  first.on_done = [](request& base, std::error_code ec) {
    auto& self = static_cast<retrying&>(base);
    self.done.push_back(ec);
    self.m->encode(*self.again, never);
  };
  m.encode(first, never);
  m.fail_all(errc::connection_lost);
  EXPECT_EQ(first.done, std::vector<std::error_code>{errc::connection_lost});
  EXPECT_EQ(again.done, std::vector<std::error_code>{errc::connection_lost});
  EXPECT_FALSE(m.has_output());
  EXPECT_TRUE(m.idle());
  m.encode(next, never);
  const auto out = m.take_output();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].iov_len, 14u);  // *1\r\n$4\r\nPING\r\n: the next request's bytes only
  (void)m.output_written(14);
  ASSERT_FALSE(m.feed("+PONG\r\n"));
  EXPECT_EQ(next.replies, std::vector<std::string>{R"({"simple":"PONG"})"});
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

// A callback may submit: a sink that enqueues, or the cluster router learning of a MOVED inside a
// transaction and sending CLUSTER SLOTS on the same connection. Enqueueing past the ring's capacity
// (64) moves every slot; the reply under way must still count against its own request (before the
// fix, dispatch kept a reference into the old ring: the batch below waited for a third reply).
TEST(Multiplexer, CallbacksThatEnqueuePastTheRingsCapacityKeepTheReplyCount) {
  for (const bool via_redirect_handler : {false, true}) {
    SCOPED_TRACE(via_redirect_handler ? "on_moved_in_batch" : "on_node");
    multiplexer m;
    std::deque<recorder> later;
    struct ctx {
      multiplexer* m;
      std::deque<recorder>* later;
      void enqueue() const {
        for (int i = 0; i < 64; ++i) {
          later->push_back(make());
          m->encode(later->back(), never);
        }
      }
    } x{&m, &later};
    struct batch_request : recorder {
      ctx* x = nullptr;
      bool enqueued = false;
    } batch;
    static_cast<recorder&>(batch) = make(2);
    batch.x = &x;
    if (via_redirect_handler) {
      m.set_redirect_handler({[](void*, request&, std::string_view) { FAIL() << "a batch is not redirected"; }, &x,
                              [](void* c, std::string_view) { static_cast<ctx*>(c)->enqueue(); }});
    } else {
      batch.on_node = [](request& base, const resp::node& n) {
        auto& self = static_cast<batch_request&>(base);
        if (!std::exchange(self.enqueued, true)) self.x->enqueue();
        if (self.builder.add(n)) self.replies.push_back(std::string(self.builder.take().text));
      };
    }
    m.encode(batch, never);
    (void)m.take_output();
    (void)m.output_written(1 << 20);
    ASSERT_FALSE(m.feed("-MOVED 1 127.0.0.1:7000\r\n"));
    EXPECT_EQ(later.size(), 64u);
    EXPECT_TRUE(batch.done.empty());
    ASSERT_FALSE(m.feed("+second\r\n"));
    EXPECT_EQ(batch.done, std::vector<std::error_code>{std::error_code()});
    EXPECT_EQ(batch.replies.size(), 2u);
    EXPECT_EQ(m.queued(), 64u);
    // The enqueued requests get the replies that follow, in order.
    (void)m.take_output();
    (void)m.output_written(1 << 20);
    std::string pongs;
    for (int i = 0; i < 64; ++i) pongs.append(":").append(std::to_string(i)).append("\r\n");
    ASSERT_FALSE(m.feed(pongs));
    for (int i = 0; i < 64; ++i) {
      ASSERT_EQ(later[i].replies, std::vector<std::string>{R"({"integer":")" + std::to_string(i) + R"("})"}) << i;
      EXPECT_EQ(later[i].done, std::vector<std::error_code>{std::error_code()});
    }
    EXPECT_TRUE(m.idle());
  }
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

// RESP3 lets an attribute precede any value, a push included: "push or reply" is decided by the
// annotated value, not by the attribute (it once was: the push went to the waiting request as its
// reply, and every later reply was off by one).
TEST(Multiplexer, PushAfterAnAttributeStaysOutOfBand) {
  multiplexer m;
  auto a = make(), b = make();
  m.encode(a, never);
  m.encode(b, never);
  (void)m.take_output();
  int pushes = 0;
  m.set_push_handler({[](void* ctx, const resp::node& n) { *static_cast<int*>(ctx) += n.ends_reply; }, &pushes});
  ASSERT_FALSE(m.feed("|1\r\n+key\r\n+value\r\n>2\r\n+message\r\n+hi\r\n+ra\r\n+rb\r\n"));
  EXPECT_EQ(pushes, 1);
  EXPECT_EQ(a.replies, std::vector<std::string>{R"({"simple":"ra"})"});
  EXPECT_EQ(b.replies, std::vector<std::string>{R"({"simple":"rb"})"});
}

// Held attributes are bounded (limits::max_held_attribute_bytes): attributes without end before a
// value grew the held copy without end (93 MiB of `|1 +a +b` took 1.2 GB); past the bound the
// stream is a protocol error. Within it, a value after them is delivered with them as before.
TEST(Multiplexer, HeldAttributesAreBounded) {
  resp::limits lim;
  lim.max_held_attribute_bytes = 4096;
  std::string attribute;
  for (int i = 0; i < 20; ++i) attribute += "|1\r\n+key\r\n+value\r\n";  // 20 x 3 nodes: 3,840 + 160 bytes
  {
    multiplexer m(lim);
    auto a = make();
    m.encode(a, never);
    (void)m.take_output();
    ASSERT_FALSE(m.feed(attribute + "+ok\r\n"));
    ASSERT_EQ(a.done.size(), 1u);
    EXPECT_FALSE(a.done[0]);
  }
  multiplexer m(lim);
  auto a = make();
  m.encode(a, never);
  (void)m.take_output();
  std::error_code ec;
  for (int i = 0; i < 1000 && !ec; ++i) ec = m.feed(attribute);  // would hold 80 KB of 4 KiB
  EXPECT_EQ(ec, errc::protocol_error);
  EXPECT_TRUE(a.done.empty());  // the connection fails it (fail_all), as for any protocol error
  m.fail_all(ec);
  ASSERT_EQ(a.done.size(), 1u);
  EXPECT_EQ(a.done[0], errc::protocol_error);
}

// The receive buffer grows to hold a large reply whole, and goes back to its initial size once
// reads have found it empty for a while (256 in a row), by either receive path: one 1 MiB GET
// pinned 1 MiB to the connection for its life.
TEST(Multiplexer, AGrownReceiveBufferIsReleasedAfterALargeReply) {
  for (const bool in_place : {false, true}) {
    multiplexer m({}, 64 * 1024);
    const std::size_t initial = m.read_capacity();
    auto big = make();
    m.encode(big, never);
    (void)m.take_output();
    (void)m.output_written(1 << 20);
    const std::string payload(1u << 20, 'v');
    const std::string reply = std::string("$").append(std::to_string(payload.size())).append("\r\n").append(payload).append("\r\n");
    for (std::size_t at = 0; at < reply.size(); at += 16 * 1024) {  // in 16 KiB receives
      const std::string_view piece = std::string_view(reply).substr(at, 16 * 1024);
      ASSERT_FALSE(in_place ? m.feed_in_place(piece) : m.feed(piece));
    }
    ASSERT_EQ(big.done.size(), 1u);
    EXPECT_GT(m.read_capacity(), 4 * initial) << in_place;
    std::vector<recorder> small(300);
    for (auto& r : small) {
      r = make();
      m.encode(r, never);
    }
    (void)m.take_output();
    (void)m.output_written(1 << 20);
    for (std::size_t i = 0; i < small.size(); ++i) {
      ASSERT_FALSE(in_place ? m.feed_in_place("+OK\r\n") : m.feed("+OK\r\n"));
      if (i < 200) {
        EXPECT_GT(m.read_capacity(), 4 * initial) << "released after only " << i << " reads";
      }
    }
    EXPECT_EQ(m.read_capacity(), initial) << in_place;
    for (const auto& r : small) EXPECT_EQ(r.done.size(), 1u);
  }
}

// A randomized model check. Requests of 1..3 commands (ECHO "id.n"), some idempotent, some
// with deadlines, some handshake (front) ones after a reconnect; a server that answers in order,
// injects pushes, cuts connections; partial writes and partial reads. Every request completes
// exactly once, sees only its own replies, and no reply after completion.
namespace model {
struct req : request {
  int id = 0;
  std::uint32_t k = 1;
  std::uint32_t seen = 0;
  int done = 0;
  int nodes_after_done = 0;
  int wrong = 0;
  std::error_code ec;
  resp::value_builder b;
};
// Set by the model: called from completions, to submit follow-up requests from inside them.
inline std::function<void()> on_completion;
}  // namespace model

TEST(Multiplexer, RandomizedModelCompletesEachRequestOnceWithItsOwnReplies) {
  using model::req;
  for (unsigned seed = 1; seed <= 6000; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    multiplexer m;
    int pushes = 0;
    m.set_push_handler({[](void* ctx, const resp::node& n) { *static_cast<int*>(ctx) += n.ends_reply; }, &pushes});
    std::deque<std::unique_ptr<req>> all;
    std::string server_in, server_out;  // the server's input and its replies not yet delivered
    std::span<const iovec> sending;
    bool in_flight = false;
    auto now = net::clock::time_point{} + std::chrono::hours(1);
    auto make_req = [&](bool front) -> req& {
      auto r = std::make_unique<req>();
      r->id = static_cast<int>(all.size());
      r->k = front ? 1 : 1 + static_cast<std::uint32_t>(pick(3));
      r->request::replies = r->k;
      r->idempotent = !front && pick(3) == 0;
      r->encode = [](request& base, resp::writer& w) {
        auto& self = static_cast<req&>(base);
        for (std::uint32_t i = 0; i < self.k; ++i) w.command("ECHO", std::to_string(self.id) + "." + std::to_string(i));
      };
      r->on_node = [](request& base, const resp::node& n) {
        auto& self = static_cast<req&>(base);
        if (self.done) ++self.nodes_after_done;
        if (!self.b.add(n)) return;
        const resp::value v = self.b.take();
        if (v.text != std::to_string(self.id) + "." + std::to_string(self.seen)) ++self.wrong;
        ++self.seen;
      };
      r->on_done = [](request& base, std::error_code ec) {
        auto& self = static_cast<req&>(base);
        ++self.done;
        self.ec = ec;
        if (!ec && self.seen != self.k) ++self.wrong;
        if (model::on_completion) model::on_completion();
      };
      all.push_back(std::move(r));
      return *all.back();
    };
    // The server: answers every complete ECHO in `server_in`.
    auto serve = [&] {
      for (;;) {
        // *2\r\n$4\r\nECHO\r\n$<len>\r\n<text>\r\n
        const std::string head = "*2\r\n$4\r\nECHO\r\n$";
        if (server_in.size() < head.size()) return;
        ASSERT_EQ(server_in.compare(0, head.size(), head), 0) << server_in;
        const auto crlf = server_in.find("\r\n", head.size());
        if (crlf == std::string::npos) return;
        const std::size_t len = std::stoul(server_in.substr(head.size(), crlf - head.size()));
        if (server_in.size() < crlf + 2 + len + 2) return;
        const std::string text = server_in.substr(crlf + 2, len);
        server_in.erase(0, crlf + 2 + len + 2);
        if (pick(8) == 0) server_out += ">1\r\n+p\r\n";
        server_out.append("$").append(std::to_string(text.size())).append("\r\n").append(text).append("\r\n");
      }
    };
    int follow_ups = 0;
    model::on_completion = [&] {
      if (follow_ups < 200 && pick(3) == 0) {
        ++follow_ups;
        req& r = make_req(false);
        m.encode(r, pick(3) == 0 ? now + std::chrono::milliseconds(pick(50)) : never);
      }
    };
    auto drop = [&] {
      server_in.clear();
      server_out.clear();
      in_flight = false;
      sending = {};
      m.drop_sent(errc::connection_lost);
      if (pick(2) == 0) m.encode(make_req(true), now + std::chrono::milliseconds(pick(50)), /*front=*/true);
    };
    for (int step = 0; step < 300; ++step) {
      switch (pick(7)) {
        case 0:
        case 1: {
          req& r = make_req(false);
          const auto deadline = pick(3) == 0 ? now + std::chrono::milliseconds(pick(50)) : never;
          m.encode(r, deadline);
          break;
        }
        case 2:
          if (!in_flight) {
            sending = m.take_output(pick(4) != 0);
            in_flight = !sending.empty();
          }
          break;
        case 3:
          if (in_flight) {
            std::size_t total = 0;
            for (const auto& v : sending) total += v.iov_len;
            const std::size_t n = pick(2) == 0 ? total : static_cast<std::size_t>(pick(static_cast<int>(total) + 1));
            std::size_t left = n;
            for (const auto& v : sending) {
              const std::size_t t = std::min(left, v.iov_len);
              server_in.append(static_cast<const char*>(v.iov_base), t);
              left -= t;
            }
            sending = m.output_written(n);
            in_flight = !sending.empty();
            serve();
          }
          break;
        case 4:
          if (!server_out.empty()) {
            const std::size_t n = 1 + static_cast<std::size_t>(pick(static_cast<int>(server_out.size())));
            const std::string chunk = server_out.substr(0, n);
            server_out.erase(0, n);
            const auto ec = pick(2) == 0 ? m.feed(chunk) : m.feed_in_place(chunk);
            ASSERT_FALSE(ec) << "seed " << seed;
          }
          break;
        case 5:
          now += std::chrono::milliseconds(pick(20));
          (void)m.expire(now);
          break;
        case 6:
          if (pick(4) == 0) drop();
          break;
      }
    }
    // Let everything finish on a healthy connection, then close.
    for (int round = 0; round < 50; ++round) {
      if (!in_flight) {
        sending = m.take_output(true);
        in_flight = !sending.empty();
      }
      if (in_flight) {
        std::size_t total = 0;
        for (const auto& v : sending) {
          server_in.append(static_cast<const char*>(v.iov_base), v.iov_len);
          total += v.iov_len;
        }
        sending = m.output_written(total);
        in_flight = false;
        serve();
      }
      if (!server_out.empty()) {
        ASSERT_FALSE(m.feed(server_out)) << "seed " << seed;
        server_out.clear();
      }
    }
    const std::size_t left = m.queued();
    model::on_completion = nullptr;
    m.fail_all(errc::shutting_down);
    for (const auto& r : all) {
      ASSERT_EQ(r->done, 1) << "seed " << seed << " request " << r->id;
      ASSERT_EQ(r->wrong, 0) << "seed " << seed << " request " << r->id;
      ASSERT_EQ(r->nodes_after_done, 0) << "seed " << seed << " request " << r->id;
      if (r->ec == errc::shutting_down) ADD_FAILURE() << "seed " << seed << " request " << r->id << " left " << left;
    }
  }
}

}  // namespace
// The one parser of MOVED/ASK texts (cluster routing, the subscribers): well-formed ones, an empty
// host, an IPv6 host, and malformed ones refused.
TEST(ClusterRedirection, ParsedOrRefused) {
  cluster_redirection r;
  ASSERT_TRUE(parse_cluster_redirection("MOVED 3999 127.0.0.1:6381", r));
  EXPECT_FALSE(r.ask);
  EXPECT_EQ(r.slot, 3999);
  EXPECT_EQ(r.host, "127.0.0.1");
  EXPECT_EQ(r.port, 6381);
  ASSERT_TRUE(parse_cluster_redirection("ASK 16383 ::1:7000", r));
  EXPECT_TRUE(r.ask);
  EXPECT_EQ(r.slot, 16383);
  EXPECT_EQ(r.host, "::1");
  ASSERT_TRUE(parse_cluster_redirection("MOVED 0 :7001", r));
  EXPECT_EQ(r.host, "");
  EXPECT_EQ(r.port, 7001);
  for (const char* bad : {"MOVED 16384 h:1", "MOVED 1 h:0", "MOVED 1 h:65536", "MOVED 1 h", "MOVED 1", "MOVED x h:1",
                          "ASK -1 h:1", "TRYAGAIN", "ERR MOVED 1 h:1", "MOVED 1 h:1x"}) {
    EXPECT_FALSE(parse_cluster_redirection(bad, r)) << bad;
  }
  EXPECT_TRUE(is_cluster_redirect("TRYAGAIN Multiple keys request during rehashing of slot"));
  EXPECT_FALSE(is_cluster_redirect("NOPERM this user has no permissions"));
}

}  // namespace redring::client
