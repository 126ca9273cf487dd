// SPDX-License-Identifier: MIT
// A cluster-mode client against a scripted server, for what a real cluster never sends: malformed
// MOVED/ASK text, malformed CLUSTER SHARDS/SLOTS replies, a node that vanishes mid-topology-fetch.
// Every command completes exactly once, with a value or an error that says why.
#include "client/client.hpp"
#include "client/detached.hpp"

#include "tests/support/fake_server.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/run_until.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

namespace redring::client {
namespace {

using namespace std::chrono_literals;
using test::fake_reply;
using test::fake_server;
using test::run_until;

std::string bulk(std::string_view s) { return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n"; }

// COMMAND as Redis 6 lists GET: [name, arity, flags, first, last, step].
const std::string command_table = "*1\r\n*6\r\n" + bulk("get") + ":2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n";

// CLUSTER SHARDS (RESP3) with one shard serving every slot from one primary at 127.0.0.1:port.
std::string shards_reply(std::uint16_t port) {
  return "*1\r\n%2\r\n" + bulk("slots") + "*2\r\n:0\r\n:16383\r\n" + bulk("nodes") + "*1\r\n%6\r\n" + bulk("id") +
         bulk(std::string(40, 'a')) + bulk("port") + ":" + std::to_string(port) + "\r\n" + bulk("ip") + bulk("127.0.0.1") +
         bulk("endpoint") + bulk("127.0.0.1") + bulk("role") + bulk("master") + bulk("health") + bulk("online");
}

// What the fake cluster answers besides the handshake: COMMAND, CLUSTER SHARDS from `topology`, and
// `on_get` to every GET. The first connection is the seed's.
struct fake_cluster {
  using topology_fn = std::function<fake_reply(int fetch, int connection)>;
  using get_fn = std::function<fake_reply(int get)>;

  fake_cluster(topology_fn topology, get_fn on_get)
      : server([this, topology = std::move(topology), on_get = std::move(on_get)](const std::vector<std::string>& cmd,
                                                                                  int conn) -> fake_reply {
          if (auto r = test::handshake_reply(cmd); !r.bytes.empty()) return r;
          if (cmd[0] == "COMMAND") return {command_table};
          if (cmd[0] == "CLUSTER") {
            const int n = fetches++;
            return topology(n, conn);
          }
          if (cmd[0] == "GET") return on_get(gets++);
          return {"-ERR unexpected " + cmd[0] + "\r\n"};
        },
        /*tcp=*/true) {}

  options client_options() const {
    options o;
    o.unix_path = server.socket_path();
    o.cluster.enabled = true;
    o.cluster.min_refresh_gap = 1ms;  // the tests follow many refreshes
    o.cluster.retry_delay = 1ms;
    o.cluster.max_retry_delay = 2ms;
    o.reconnect.initial_delay = 1ms;
    o.reconnect.max_delay = 5ms;
    return o;
  }

  std::atomic<int> fetches{0}, gets{0};
  fake_server server;  // the seed on its Unix socket, the topology's node on its TCP port
  [[nodiscard]] std::uint16_t port() const noexcept { return static_cast<std::uint16_t>(server.port()); }
};

using get_result = result<std::optional<std::string>>;

// Sends `count` GETs at once and runs the loop until each completed; fails the test if any completed
// twice or never.
std::vector<get_result> run_gets(net::loop& loop, client& c, int count) {
  std::vector<std::optional<get_result>> done(static_cast<std::size_t>(count));
  int completions = 0;
  auto one = [&](std::size_t i) -> detached {
    auto r = co_await c.get("k");
    EXPECT_FALSE(done[i].has_value()) << "command " << i << " completed twice";
    done[i].emplace(std::move(r));
    ++completions;
  };
  for (std::size_t i = 0; i < done.size(); ++i) one(i);
  EXPECT_TRUE(run_until(loop, [&] { return completions == count; })) << completions << " of " << count << " completed";
  std::vector<get_result> out;
  for (auto& d : done) {
    if (d) out.push_back(std::move(*d));
  }
  return out;
}

// Every one of `count` results is the value "v".
void expect_values(const std::vector<get_result>& results, std::size_t count) {
  ASSERT_EQ(results.size(), count);
  for (const auto& r : results) {
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(**r, "v");
  }
}

TEST(ClusterFault, WellFormedTopologyRoutesThroughTheRelay) {
  // The baseline the other tests break: a value comes back from the node the topology names.
  fake_cluster f([&](int, int) { return fake_reply{shards_reply(f.port())}; },
                 [](int) { return fake_reply{bulk("v")}; });
  net::loop loop;
  client c(loop, f.client_options());
  expect_values(run_gets(loop, c, 3), 3);
  EXPECT_EQ(c.cluster()->nodes(true), std::vector<std::string>{"127.0.0.1:" + std::to_string(f.port())});
}

TEST(ClusterFault, MalformedRedirectionsAreReturnedAsTheServerSentThem) {
  // No slot, a slot that is not a number or out of range, no address, no port, a port that is not
  // one: the client cannot follow these, so the server's own error is the command's result, and
  // the command is not sent again.
  const std::vector<std::string> texts = {
      "MOVED",  // not a redirection at all (no space): an ordinary error reply
      "MOVED ", "MOVED x", "MOVED abc 127.0.0.1:7000", "MOVED 16384 127.0.0.1:7000", "MOVED 99999999999 127.0.0.1:7000",
      "MOVED -1 127.0.0.1:7000", "MOVED 3999", "MOVED 3999 ", "MOVED 3999 127.0.0.1", "MOVED 3999 127.0.0.1:",
      "MOVED 3999 127.0.0.1:abc", "MOVED 3999 127.0.0.1:99999", "MOVED 3999 127.0.0.1:-1", "MOVED 3999 127.0.0.1:0",
      "MOVED 3999 127.0.0.1:7000 extra", "MOVED  3999 127.0.0.1:7000", "ASK", "ASK ", "ASK 3999", "ASK 3999 127.0.0.1",
      "ASK 3999 127.0.0.1:65536", "ASK 3999 127.0.0.1:0", "ASK 16384 127.0.0.1:7000", "ASK x 127.0.0.1:7000",
      "",  // an empty error line
  };
  for (const std::string& text : texts) {
    SCOPED_TRACE("'" + text + "'");
    fake_cluster f([&](int, int) { return fake_reply{shards_reply(f.port())}; },
                   [&](int) { return fake_reply{"-" + text + "\r\n"}; });
    net::loop loop;
    client c(loop, f.client_options());
    const auto results = run_gets(loop, c, 2);
    ASSERT_EQ(results.size(), 2u);
    for (const auto& r : results) {
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, resp::errc::server_error);
      EXPECT_EQ(r.error().message, text);
    }
    EXPECT_EQ(f.gets.load(), 2);  // none was sent again
    EXPECT_EQ(c.cluster()->statistics().moved, 0u);
    EXPECT_EQ(c.cluster()->statistics().ask, 0u);
  }
}

// Every GET is answered by the redirection `kind` (MOVED or ASK) to slot 3999 at port `to` (0: the
// fake node itself): 4 GETs each end with that redirection as their result, after 1 + `bound` sends.
void expect_redirections_end(const std::string& kind, int to, std::uint8_t bound) {
  SCOPED_TRACE(kind);
  std::string text;
  fake_cluster f([&](int, int) { return fake_reply{shards_reply(f.port())}; },
                 [&](int) { return fake_reply{"-" + text + "\r\n"}; });
  text = kind + " 3999 127.0.0.1:" + std::to_string(to != 0 ? to : f.port());
  net::loop loop;
  options o = f.client_options();
  o.cluster.max_redirects = bound;
  client c(loop, o);
  const auto results = run_gets(loop, c, 4);
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, text) << r.error().what();
  }
  EXPECT_EQ(f.gets.load(), 4 * (1 + bound));
}

TEST(ClusterFault, EndlessRedirectionsEndAfterTheBound) {
  // A well-formed MOVED (and ASK) back to the same node, forever.
  expect_redirections_end("MOVED", 0, 5);
  expect_redirections_end("ASK", 0, 5);
}

TEST(ClusterFault, RedirectionToANodeThatIsNotThereEnds) {
  // MOVED and ASK to a port nobody listens on: the command waits for that node, which never comes;
  // each topology refresh routes it back to the slot's owner, which redirects it again, until the
  // bound. No command is lost to the node the client gives up on (nor failed as `shutting_down`
  // when the node is forgotten).
  int dead_port = 0;
  {
    dead_port = test::free_loopback_port();  // a free port, nobody listening
  }
  expect_redirections_end("MOVED", dead_port, 3);
  expect_redirections_end("ASK", dead_port, 3);
}

// A malformed topology reply: what was wrong with it.
struct bad_topology {
  const char* what;
  std::string bytes;
};

std::string node_map(const std::string& fields, int count) { return "%" + std::to_string(count) + "\r\n" + fields; }
std::string good_node(std::uint16_t port) {
  return bulk("id") + bulk(std::string(40, 'a')) + bulk("port") + ":" + std::to_string(port) + "\r\n" + bulk("ip") +
         bulk("127.0.0.1") + bulk("role") + bulk("master");
}
std::string shard(const std::string& slots, const std::string& nodes) {
  return "%2\r\n" + bulk("slots") + slots + bulk("nodes") + nodes;
}

std::vector<bad_topology> bad_shards(std::uint16_t port) {
  const std::string all = "*2\r\n:0\r\n:16383\r\n";
  const std::string nodes = "*1\r\n" + node_map(good_node(port), 4);
  auto node_with_port = [](const std::string& port_field) {
    return "*1\r\n" + node_map(bulk("id") + bulk("x") + bulk("port") + port_field + bulk("role") + bulk("master"), 3);
  };
  return {
      {"not an array", ":1\r\n"},
      {"a string", bulk("slots")},
      {"a shard that is an integer", "*1\r\n:7\r\n"},
      {"no slots", "*1\r\n%1\r\n" + bulk("nodes") + nodes},
      {"no nodes", "*1\r\n%1\r\n" + bulk("slots") + all},
      {"odd slot list", "*1\r\n" + shard("*3\r\n:0\r\n:5\r\n:9\r\n", nodes)},
      {"slot 16384", "*1\r\n" + shard("*2\r\n:0\r\n:16384\r\n", nodes)},
      {"negative slot", "*1\r\n" + shard("*2\r\n:-1\r\n:16383\r\n", nodes)},
      {"range backwards", "*1\r\n" + shard("*2\r\n:100\r\n:5\r\n", nodes)},
      {"slots as strings", "*1\r\n" + shard("*2\r\n" + bulk("0") + bulk("16383"), nodes)},
      {"nodes as a string", "*1\r\n" + shard(all, bulk("nodes"))},
      {"a node that is a string", "*1\r\n" + shard(all, "*1\r\n" + bulk("node"))},
      {"a node without port", "*1\r\n" + shard(all, "*1\r\n" + node_map(bulk("id") + bulk("x") + bulk("role") + bulk("master"), 2))},
      {"a node without id", "*1\r\n" + shard(all, "*1\r\n" + node_map(bulk("port") + ":7000\r\n" + bulk("role") + bulk("master"), 2))},
      {"a node without role", "*1\r\n" + shard(all, "*1\r\n" + node_map(bulk("id") + bulk("x") + bulk("port") + ":7000\r\n", 2))},
      {"negative port", "*1\r\n" + shard(all, node_with_port(":-6379\r\n"))},
      {"port 0", "*1\r\n" + shard(all, node_with_port(":0\r\n"))},
      {"port 65536", "*1\r\n" + shard(all, node_with_port(":65536\r\n"))},
      {"port as a string", "*1\r\n" + shard(all, node_with_port(bulk("7000")))},
      {"an error reply", "-ERR something else\r\n"},
  };
}

std::vector<bad_topology> bad_slots(std::uint16_t port) {
  const std::string primary = "*3\r\n" + bulk("127.0.0.1") + ":" + std::to_string(port) + "\r\n" + bulk("id");
  return {
      {"not an array", ":1\r\n"},
      {"an entry that is an integer", "*1\r\n:5\r\n"},
      {"entry too short", "*1\r\n*2\r\n:0\r\n:16383\r\n"},
      {"slot 16384", "*1\r\n*3\r\n:0\r\n:16384\r\n" + primary},
      {"negative slot", "*1\r\n*3\r\n:-5\r\n:100\r\n" + primary},
      {"range backwards", "*1\r\n*3\r\n:9\r\n:1\r\n" + primary},
      {"slot as a string", "*1\r\n*3\r\n" + bulk("0") + ":16383\r\n" + primary},
      {"node as a string", "*1\r\n*3\r\n:0\r\n:16383\r\n" + bulk("127.0.0.1:7000")},
      {"node without port", "*1\r\n*3\r\n:0\r\n:16383\r\n*1\r\n" + bulk("127.0.0.1")},
      {"negative port", "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n" + bulk("127.0.0.1") + ":-1\r\n"},
      {"port 0", "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n" + bulk("127.0.0.1") + ":0\r\n"},
      {"port as a string", "*1\r\n*3\r\n:0\r\n:16383\r\n*2\r\n" + bulk("127.0.0.1") + bulk("7000")},
      {"a replica with a bad port", "*1\r\n*4\r\n:0\r\n:16383\r\n" + primary + "*2\r\n" + bulk("127.0.0.1") + ":70000\r\n"},
  };
}

// Before the first topology, a reply the client cannot read fails the waiting commands with
// `cluster_topology` (waiting would not help: the node answered), `last_error()` says what was wrong,
// and later commands fail fast until a topology is readable.
void expect_topology_error(fake_cluster& f, std::size_t gets_expected) {
  net::loop loop;
  client c(loop, f.client_options());
  const auto results = run_gets(loop, c, 3);
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::cluster_topology) << r.error().what();
  }
  EXPECT_NE(c.last_error().find("CLUSTER"), std::string::npos) << c.last_error();
  EXPECT_FALSE(c.cluster()->ready());
  const auto later = run_gets(loop, c, 1);
  ASSERT_EQ(later.size(), 1u);
  ASSERT_FALSE(later[0]);
  EXPECT_EQ(later[0].error().code, errc::cluster_topology);
  EXPECT_EQ(static_cast<std::size_t>(f.gets.load()), gets_expected);  // nothing was sent to a node
}

TEST(ClusterFault, MalformedClusterShardsIsAClearError) {
  const auto probe_port = static_cast<std::uint16_t>(test::free_loopback_port());
  for (const auto& bad : bad_shards(probe_port)) {
    SCOPED_TRACE(bad.what);
    fake_cluster f([&](int, int) { return fake_reply{bad.bytes}; }, [](int) { return fake_reply{bulk("v")}; });
    expect_topology_error(f, 0);
  }
}

TEST(ClusterFault, MalformedClusterSlotsIsAClearError) {
  // A server before Redis 7 (no SHARDS), whose SLOTS reply is malformed.
  const auto probe_port = static_cast<std::uint16_t>(test::free_loopback_port());
  for (const auto& bad : bad_slots(probe_port)) {
    SCOPED_TRACE(bad.what);
    std::atomic<bool> asked_slots{false};
    fake_cluster f(
        [&](int fetch, int) {
          if (fetch == 0) return fake_reply{"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n"};
          asked_slots = true;
          return fake_reply{bad.bytes};
        },
        [](int) { return fake_reply{bulk("v")}; });
    expect_topology_error(f, 0);
    EXPECT_TRUE(asked_slots.load());
  }
}

TEST(ClusterFault, AReadableTopologyAfterAMalformedOneClearsTheError) {
  std::atomic<bool> good{false};
  fake_cluster f(
      [&](int, int) { return fake_reply{good ? shards_reply(f.port()) : std::string(":1\r\n")}; },
      [](int) { return fake_reply{bulk("v")}; });
  net::loop loop;
  client c(loop, f.client_options());
  const auto first = run_gets(loop, c, 1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_FALSE(first[0]);
  EXPECT_EQ(first[0].error().code, errc::cluster_topology);
  good = true;
  ASSERT_TRUE(run_until(loop, [&] { return c.cluster()->ready(); }));  // asked again until readable
  expect_values(run_gets(loop, c, 2), 2);
}

TEST(ClusterFault, MalformedRefreshKeepsTheTopologyInUse) {
  // After a good topology, a refresh whose reply is malformed changes nothing: commands keep going
  // to the node they went to.
  fake_cluster f([&](int fetch, int) { return fake_reply{fetch == 0 ? shards_reply(f.port()) : "*1\r\n:7\r\n"}; },
                 [](int) { return fake_reply{bulk("v")}; });
  net::loop loop;
  client c(loop, f.client_options());
  ASSERT_EQ(run_gets(loop, c, 1).size(), 1u);
  c.cluster()->refresh();
  ASSERT_TRUE(run_until(loop, [&] { return f.fetches.load() >= 3; }));  // retried, still malformed
  expect_values(run_gets(loop, c, 5), 5);
  EXPECT_TRUE(c.cluster()->ready());
}

TEST(ClusterFault, NodeVanishingMidTopologyFetchIsRiddenOut) {
  // The seed closes its connection on the first CLUSTER SHARDS (no reply), then on the second (half
  // a reply); the third connection answers. Commands waiting for the topology are not lost: each
  // completes once, with the value.
  for (const bool half : {false, true}) {
    SCOPED_TRACE(half ? "cut mid-reply" : "closed before replying");
    fake_cluster f(
        [&](int fetch, int) {
          const std::string whole = shards_reply(f.port());
          if (fetch == 0) return fake_reply{half ? whole.substr(0, whole.size() / 2) : std::string(), true};
          return fake_reply{whole};
        },
        [](int) { return fake_reply{bulk("v")}; });
    net::loop loop;
    client c(loop, f.client_options());
    expect_values(run_gets(loop, c, 8), 8);
    EXPECT_GE(f.fetches.load(), 2);
    EXPECT_GE(f.server.connections(), 3);  // the seed twice, then the node
  }
}

TEST(ClusterFault, NodeVanishingMidRefreshLosesNothing) {
  // After the first topology, three refreshes are cut mid-reply by the node asked (the primary): its
  // connection drops under 20 GETs. Commands it had sent complete with `connection_lost`, the others
  // with values; none is lost, none completes twice; once a refresh is answered all is well.
  fake_cluster f(
      [&](int fetch, int) {
        const std::string whole = shards_reply(f.port());
        return fetch >= 1 && fetch <= 3 ? fake_reply{whole.substr(0, 20), true} : fake_reply{whole};
      },
      [](int) { return fake_reply{bulk("v")}; });
  net::loop loop;
  client c(loop, f.client_options());
  ASSERT_EQ(run_gets(loop, c, 1).size(), 1u);
  c.cluster()->refresh();
  int ok = 0, lost = 0;
  for (const auto& r : run_gets(loop, c, 20)) {
    if (r) {
      EXPECT_EQ(**r, "v");
      ++ok;
    } else {
      EXPECT_EQ(r.error().code, errc::connection_lost) << r.error().what();
      ++lost;
    }
  }
  EXPECT_EQ(ok + lost, 20);
  ASSERT_TRUE(run_until(loop, [&] { return f.fetches.load() >= 5; }));
  expect_values(run_gets(loop, c, 10), 10);
}

}  // namespace
}  // namespace redring::client
