// SPDX-License-Identifier: MIT
// The Cluster building blocks against a real cluster (3 primaries + 3 replicas): hash slots agree with
// CLUSTER KEYSLOT, key positions learned from COMMAND agree with COMMAND GETKEYS, and the slot map from
// CLUSTER SHARDS and from CLUSTER SLOTS sends every key to the node that serves it.
#include "client/command_keys.hpp"
#include "client/hash_slot.hpp"
#include "client/slot_map.hpp"

#include "tests/support/decode.hpp"
#include "tests/support/redis_cluster.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <random>
#include <set>

namespace redring::client {
namespace {

class Cluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = std::make_unique<test::redis_cluster>(3, 1); }
  static void TearDownTestSuite() { cluster_.reset(); }
  static test::redis_cluster& cluster() { return *cluster_; }

 private:
  static inline std::unique_ptr<test::redis_cluster> cluster_;
};

TEST(HashSlot, SpecificationExamples) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the cluster spec's check value
  EXPECT_EQ(crc16(""), 0);
  EXPECT_EQ(hash_tag("{user1000}.following"), "user1000");
  EXPECT_EQ(hash_tag("{user1000}.followers"), "user1000");
  EXPECT_EQ(hash_tag("foo{}{bar}"), "foo{}{bar}");
  EXPECT_EQ(hash_tag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(hash_tag("foo{bar}{zap}"), "bar");
  EXPECT_EQ(hash_tag("{}"), "{}");
  EXPECT_EQ(hash_tag("no tag"), "no tag");
  EXPECT_EQ(hash_tag("open{only"), "open{only");
  EXPECT_EQ(hash_slot("{user1000}.following"), hash_slot("{user1000}.followers"));
  EXPECT_EQ(hash_slot("foo"), 12182);  // redis-cli CLUSTER KEYSLOT foo
}

// CRC16/XMODEM bit by bit, as the cluster spec's crc16.c defines it before its table.
std::uint16_t crc16_bitwise(std::string_view bytes) {
  std::uint16_t crc = 0;
  for (const char ch : bytes) {
    crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(ch) << 8);
    for (int b = 0; b < 8; ++b) crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc;
}

TEST(HashSlot, FastCrcAgreesWithTheDefinitionAtEveryLength) {
  // The carry-less path (where the CPU has it) and the tables, every length from 0 to 300 (each
  // head length and several folds), random bytes and bytes near 0xFF, at every alignment.
  std::mt19937 rng(11);
  std::string buffer(320, '\0');
  for (std::size_t len = 0; len <= 300; ++len) {
    for (int round = 0; round < 8; ++round) {
      const std::size_t offset = static_cast<std::size_t>(round);
      for (std::size_t i = 0; i < len; ++i) {
        buffer[offset + i] = static_cast<char>(round % 2 == 0 ? rng() % 256 : 0xF0 + rng() % 16);
      }
      const std::string_view bytes(buffer.data() + offset, len);
      const std::uint16_t expected = crc16_bitwise(bytes);
      ASSERT_EQ(crc16(bytes), expected) << "length " << len;
      ASSERT_EQ(crc16_portable(bytes), expected) << "length " << len;
      ASSERT_EQ(hash_slot(bytes), crc16_bitwise(hash_tag(bytes)) & 16383) << "length " << len;
    }
  }
}

TEST(HashSlot, BraceAnywhereInTheKeyIsSeen) {
  // hash_slot notices a '{' while hashing: at each position of keys of each length, with and
  // without a closing brace, the slot is that of the tag.
  for (std::size_t len = 1; len <= 40; ++len) {
    for (std::size_t at = 0; at < len; ++at) {
      std::string key(len, 'k');
      key[at] = '{';
      EXPECT_EQ(hash_slot(key), crc16_bitwise(hash_tag(key)) & 16383) << key;
      if (at + 2 < len) {
        key[len - 1] = '}';
        EXPECT_EQ(hash_slot(key), crc16_bitwise(hash_tag(key)) & 16383) << key;
      }
    }
  }
}

TEST_F(Cluster, HashSlotsAgreeWithTheServer) {
  test::blocking_connection c(cluster().node(0).socket_path());
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string key;
    const int len = static_cast<int>(rng() % 24);
    for (int j = 0; j < len; ++j) key += static_cast<char>(rng() % 4 == 0 ? "{}"[rng() % 2] : rng() % 256);
    const resp::value server = c.call({"CLUSTER", "KEYSLOT", key});
    ASSERT_EQ(server.data_type, resp::type::integer) << server.text;
    EXPECT_EQ(hash_slot(key), server.integer) << "key of " << key.size() << " bytes";
  }
}

// Each call's keys as the server says (COMMAND GETKEYS) and as the table says.
void check_against_getkeys(test::blocking_connection& c, const command_keys& table,
                           const std::vector<std::vector<std::string_view>>& calls) {
  for (const auto& call : calls) {
    std::vector<std::string_view> ask = {"COMMAND", "GETKEYS"};
    ask.insert(ask.end(), call.begin(), call.end());
    const resp::value server = c.call(ask);
    std::vector<std::string> expected;
    if (!server.is_error()) {
      for (const auto& k : server.elements) expected.push_back(k.text);
    }
    std::vector<std::size_t> at;
    ASSERT_EQ(table.find(call, at), command_keys::outcome::found) << call[0];
    std::vector<std::string> got;
    for (std::size_t i : at) got.emplace_back(call[i]);
    EXPECT_EQ(got, expected) << call[0] << " " << (call.size() > 1 ? call[1] : "");
  }
}

TEST_F(Cluster, KeyPositionsFromCommandAgreeWithGetkeys) {
  const std::vector<std::vector<std::string_view>> calls = {
      {"GET", "k"},
      {"set", "k", "v", "EX", "10"},
      {"MGET", "a", "b", "c"},
      {"MSET", "a", "1", "b", "2", "c", "3"},
      {"DEL", "a", "b"},
      {"EVAL", "return 1", "2", "k1", "k2", "arg"},
      {"EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "1", "k", "a", "b"},
      {"EVAL", "return 1", "0", "arg"},
      {"FCALL", "f", "2", "x", "y", "arg"},
      {"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"},
      {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "10", "STREAMS", "s1", "s2", "s3", ">", ">", ">"},
      {"ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"},
      {"LMOVE", "src", "dst", "LEFT", "RIGHT"},
      {"BLPOP", "a", "b", "c", "0"},
      {"OBJECT", "ENCODING", "k"},
      {"XINFO", "STREAM", "s"},
      {"SINTERCARD", "3", "a", "b", "c", "LIMIT", "1"},
      {"ZADD", "z", "1", "m"},
      {"HSET", "h", "f", "v", "g", "w"},
      {"RENAME", "a", "b"},
      {"SMOVE", "a", "b", "m"},
      {"GEOSEARCHSTORE", "dst", "src", "FROMLONLAT", "0", "0", "BYRADIUS", "1", "km"},
      {"MIGRATE", "127.0.0.1", "1", "k", "0", "1000"},
  };
  // (MIGRATE ... "" ... KEYS a b: the server's own key function drops the empty key argument, which
  // the key specs list; MIGRATE runs on the node that holds the keys, so it is never routed by key.)
  test::blocking_connection c2(cluster().node(0).socket_path());  // RESP2: key specs as flat arrays
  const auto table2 = command_keys::from_reply(c2.call({"COMMAND"}));
  ASSERT_TRUE(table2) << table2.error().what();
  EXPECT_GT(table2->size(), 200u);
  check_against_getkeys(c2, *table2, calls);

  test::blocking_connection c3(cluster().node(1).socket_path());  // RESP3: key specs as maps
  ASSERT_EQ(c3.call({"HELLO", "3"}).data_type, resp::type::map);
  const auto table3 = command_keys::from_reply(c3.call({"COMMAND"}));
  ASSERT_TRUE(table3) << table3.error().what();
  check_against_getkeys(c3, *table3, calls);

  // Keyless and unknown commands.
  std::vector<std::size_t> at;
  const std::vector<std::string_view> ping = {"PING"};
  EXPECT_EQ(table3->find(ping, at), command_keys::outcome::found);
  EXPECT_TRUE(at.empty());
  // A key count far beyond the arguments (the server refuses the call): positions stay inside the call.
  at.clear();
  const std::vector<std::string_view> huge = {"EVALSHA", "sha", "9223372036854775807", "k", "a"};
  EXPECT_EQ(table3->find(huge, at), command_keys::outcome::found);
  for (const std::size_t i : at) EXPECT_LT(i, huge.size());
  const std::vector<std::string_view> nope = {"NOSUCHCOMMAND", "k"};
  EXPECT_EQ(table3->find(nope, at), command_keys::outcome::unknown_command);
}

TEST_F(Cluster, SlotMapFromShardsAndSlotsRoutesEveryKeyToItsNode) {
  test::blocking_connection c(cluster().node(2).socket_path());
  const auto from_shards = slot_map::from_shards(c.call({"CLUSTER", "SHARDS"}));
  ASSERT_TRUE(from_shards) << from_shards.error().what();
  const auto from_slots = slot_map::from_slots(c.call({"CLUSTER", "SLOTS"}));
  ASSERT_TRUE(from_slots) << from_slots.error().what();
  for (const slot_map* m : {&*from_shards, &*from_slots}) {
    EXPECT_EQ(m->unassigned_slots(), 0u);
    ASSERT_EQ(m->shards().size(), 3u);
    for (const cluster_shard& s : m->shards()) {
      ASSERT_EQ(s.nodes.size(), 2u);  // a primary and its replica
      EXPECT_TRUE(s.nodes[0].primary);
      EXPECT_FALSE(s.nodes[1].primary);
      EXPECT_EQ(s.nodes[0].host, "127.0.0.1");
    }
  }
  std::set<int> primaries;
  for (std::uint32_t slot = 0; slot < slot_count; ++slot) {
    const cluster_node* a = from_shards->primary_of(static_cast<std::uint16_t>(slot));
    const cluster_node* b = from_slots->primary_of(static_cast<std::uint16_t>(slot));
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    ASSERT_EQ(a->port, b->port) << slot;
    ASSERT_EQ(a->id, b->id) << slot;
    primaries.insert(a->port);
  }
  EXPECT_EQ(primaries.size(), 3u);
  // The node the map names accepts the key; every other primary answers MOVED to that node.
  std::map<int, std::size_t> node_of_port;
  for (std::size_t i = 0; i < cluster().size(); ++i) node_of_port[cluster().port(i)] = i;
  for (int i = 0; i < 300; ++i) {
    const std::string key = "key:" + std::to_string(i * 7919);
    const cluster_node* owner = from_shards->primary_of(hash_slot(key));
    for (const int p : primaries) {
      test::blocking_connection n(cluster().node(node_of_port.at(p)).socket_path());
      const resp::value r = n.call({"SET", key, "v"});
      if (p == owner->port) {
        EXPECT_EQ(r.text, "OK") << key;
      } else {
        EXPECT_EQ(r.text, "MOVED " + std::to_string(hash_slot(key)) + " 127.0.0.1:" + std::to_string(owner->port)) << key;
      }
    }
  }
}

TEST(SlotMap, MalformedRepliesAreErrors) {
  auto integer = [](std::int64_t v) {
    resp::value x;
    x.data_type = resp::type::integer;
    x.integer = v;
    return x;
  };
  auto text = [](std::string s) {
    resp::value x;
    x.data_type = resp::type::blob_string;
    x.text = std::move(s);
    return x;
  };
  auto array = [](std::vector<resp::value> e) {
    resp::value x;
    x.data_type = resp::type::array;
    x.elements = std::move(e);
    return x;
  };
  EXPECT_FALSE(slot_map::from_shards(integer(1)));
  EXPECT_FALSE(slot_map::from_slots(text("x")));
  EXPECT_FALSE(slot_map::from_slots(array({array({integer(0), integer(16384), array({text("h"), integer(1)})})})));  // slot 16384
  EXPECT_FALSE(slot_map::from_slots(array({array({integer(5), integer(4), array({text("h"), integer(1)})})})));      // last < first
  EXPECT_FALSE(slot_map::from_slots(array({array({integer(0), integer(1), array({text("h"), integer(0)})})})));      // port 0
  EXPECT_FALSE(slot_map::from_slots(array({array({integer(0), integer(1)})})));                                       // no node
  EXPECT_FALSE(slot_map::from_shards(array({array({text("slots"), array({integer(0)}), text("nodes"), array({})})})));  // odd range
  EXPECT_FALSE(slot_map::from_shards(array({array({text("nodes"), array({})})})));                                   // no slots
  // A well-formed partial map: slots 0-99 only.
  const auto partial = slot_map::from_slots(array({array({integer(0), integer(99), array({text("h"), integer(7000), text("id")})})}));
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->unassigned_slots(), slot_count - 100u);
  EXPECT_EQ(partial->primary_of(99)->port, 7000);
  EXPECT_EQ(partial->primary_of(100), nullptr);
  // A slot served twice: across entries, across shards, within a shard.
  const auto node_at = [&](std::int64_t port) { return array({text("h"), integer(port), text(std::string("id").append(std::to_string(port)))}); };
  EXPECT_FALSE(slot_map::from_slots(array({array({integer(0), integer(10), node_at(7000)}), array({integer(10), integer(20), node_at(7001)})})));
  EXPECT_FALSE(slot_map::from_slots(array({array({integer(0), integer(10), node_at(7000)}), array({integer(5), integer(6), node_at(7000)})})));
  const auto shard = [&](std::vector<resp::value> ranges, std::int64_t port) {
    return array({text("slots"), array(std::move(ranges)), text("nodes"),
                  array({array({text("id"), text(std::string("n").append(std::to_string(port))), text("port"), integer(port), text("ip"),
                                text("h"), text("role"), text("master")})})});
  };
  ASSERT_TRUE(slot_map::from_shards(array({shard({integer(0), integer(9)}, 7000), shard({integer(10), integer(19)}, 7001)})));
  EXPECT_FALSE(slot_map::from_shards(array({shard({integer(0), integer(10)}, 7000), shard({integer(10), integer(19)}, 7001)})));
  EXPECT_FALSE(slot_map::from_shards(array({shard({integer(0), integer(10), integer(3), integer(4)}, 7000)})));
  // A node with a plain and a TLS port: a TLS client takes the TLS one; one with only one port has it.
  const auto two_ports = [&](std::vector<resp::value> fields) {
    return array({array({text("slots"), array({integer(0), integer(slot_count - 1)}), text("nodes"), array({array(std::move(fields))})})});
  };
  const auto both = two_ports({text("id"), text("n"), text("port"), integer(7000), text("tls-port"), integer(7100), text("ip"),
                               text("h"), text("role"), text("master")});
  EXPECT_EQ(slot_map::from_shards(both)->primary_of(0)->port, 7000);
  EXPECT_EQ(slot_map::from_shards(both, /*tls=*/true)->primary_of(0)->port, 7100);
  const auto tls_only = two_ports({text("id"), text("n"), text("tls-port"), integer(7100), text("ip"), text("h"), text("role"), text("master")});
  EXPECT_EQ(slot_map::from_shards(tls_only)->primary_of(0)->port, 7100);
  const auto plain_only = two_ports({text("id"), text("n"), text("port"), integer(7000), text("ip"), text("h"), text("role"), text("master")});
  EXPECT_EQ(slot_map::from_shards(plain_only, /*tls=*/true)->primary_of(0)->port, 7000);
  // A hostile reply of more ranges than slots, each over every slot, is refused before a slot is
  // filled (it was accepted before, the last range winning, after 20000 x 16384 slot writes).
  std::vector<resp::value> everything(20000, array({integer(0), integer(slot_count - 1), node_at(7000)}));
  EXPECT_FALSE(slot_map::from_slots(array(std::move(everything))));
  // The most a reply can hold: 16384 one-slot ranges of one primary, merged into one shard.
  std::vector<resp::value> singles;
  for (std::int64_t slot = 0; slot < slot_count; ++slot) singles.push_back(array({integer(slot), integer(slot), node_at(7000)}));
  const auto one_shard = slot_map::from_slots(array(std::move(singles)));
  ASSERT_TRUE(one_shard);
  EXPECT_EQ(one_shard->shards().size(), 1u);
  EXPECT_EQ(one_shard->shards()[0].ranges.size(), std::size_t{slot_count});
  EXPECT_EQ(one_shard->unassigned_slots(), 0u);
  // Malformed COMMAND replies.
  EXPECT_FALSE(command_keys::from_reply(integer(3)));
  EXPECT_FALSE(command_keys::from_reply(array({array({text("get")})})));
}

// Key specs from a hostile or broken COMMAND reply: find never names an argument outside the call
// (the router hashes args[index]) and its arithmetic cannot overflow. Before, a negative begin index
// was returned as a huge index, a negative keynumidx read before the arguments, and INT64_MAX
// lastkey / keystep overflowed int64 (UBSan).
TEST(CommandKeys, HostileKeySpecsNameNoArgumentOutsideTheCall) {
  const auto integer = [](std::int64_t v) { return std::string(":").append(std::to_string(v)).append("\r\n"); };
  const auto range = [&](std::int64_t index, std::int64_t lastkey, std::int64_t keystep) {
    return std::string("%2\r\n+begin_search\r\n%2\r\n+type\r\n+index\r\n+spec\r\n%1\r\n+index\r\n")
        .append(integer(index))
        .append("+find_keys\r\n%2\r\n+type\r\n+range\r\n+spec\r\n%3\r\n+lastkey\r\n")
        .append(integer(lastkey))
        .append("+keystep\r\n")
        .append(integer(keystep))
        .append("+limit\r\n:0\r\n");
  };
  const auto keynum = [&](std::int64_t keynumidx, std::int64_t firstkey, std::int64_t keystep) {
    return std::string("%2\r\n+begin_search\r\n%2\r\n+type\r\n+index\r\n+spec\r\n%1\r\n+index\r\n:1\r\n")
        .append("+find_keys\r\n%2\r\n+type\r\n+keynum\r\n+spec\r\n%3\r\n+keynumidx\r\n")
        .append(integer(keynumidx))
        .append("+firstkey\r\n")
        .append(integer(firstkey))
        .append("+keystep\r\n")
        .append(integer(keystep));
  };
  // COMMAND INFO of one command: [name, arity, flags, first, last, step, acl, tips, [spec], subcommands].
  const auto keys_of = [](const std::string& spec, std::vector<std::string_view> args, std::vector<std::size_t>& out) {
    const std::string reply = std::string("*1\r\n*10\r\n$3\r\ncmd\r\n:-2\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n*1\r\n")
                                  .append(spec)
                                  .append("*0\r\n");
    const auto table = command_keys::from_reply(test::parse_one(reply));
    EXPECT_TRUE(table);
    out.clear();
    return table ? table->find(args, out) : command_keys::outcome::unknown_command;
  };
  using outcome = command_keys::outcome;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  std::vector<std::size_t> out;
  EXPECT_EQ(keys_of(range(1, 0, 1), {"cmd", "k"}, out), outcome::found);  // the well-formed case
  EXPECT_EQ(out, std::vector<std::size_t>{1});
  EXPECT_EQ(keys_of(range(-5, 0, 1), {"cmd", "a", "b"}, out), outcome::undeterminable);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(keys_of(range(0, 0, 1), {"cmd", "a"}, out), outcome::undeterminable);
  EXPECT_EQ(keys_of(range(1, max, 1), {"cmd", "a", "b", "c"}, out), outcome::found);
  EXPECT_EQ(out, (std::vector<std::size_t>{1, 2, 3}));
  EXPECT_EQ(keys_of(range(1, -1, max), {"cmd", "a", "b", "c"}, out), outcome::found);
  EXPECT_EQ(out, std::vector<std::size_t>{1});
  EXPECT_EQ(keys_of(keynum(-3, 1, 1), {"cmd", "2", "a", "b"}, out), outcome::found);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(keys_of(keynum(0, -9, 1), {"cmd", "2", "a", "b"}, out), outcome::undeterminable);
  EXPECT_EQ(keys_of(keynum(0, 1, max), {"cmd", "2", "a", "b"}, out), outcome::found);
  EXPECT_EQ(out, std::vector<std::size_t>{2});
  EXPECT_EQ(keys_of(keynum(0, max, 1), {"cmd", "2", "a", "b"}, out), outcome::found);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace redring::client
