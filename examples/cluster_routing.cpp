// SPDX-License-Identifier: MIT
// Where a call goes in a Redis Cluster: its keys (from the server's COMMAND key specs), their hash
// slots, and the primary serving each slot (from CLUSTER SHARDS). Against a server without cluster
// mode it shows the keys and slots and says so.
// Usage: cluster_routing [redis://host:port | unix:///path]   (default: REDIS_URL, else 127.0.0.1:6379)
#include "client/command_keys.hpp"
#include "client/hash_slot.hpp"
#include "client/slot_map.hpp"
#include "client/sync_client.hpp"
#include "client/url.hpp"

#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  client::sync_client redis(opts);
  const auto command = redis.command<resp::value>("COMMAND");
  if (!command) {
    std::fprintf(stderr, "COMMAND failed: %s\n", command.error().what().c_str());
    return 1;
  }
  const auto keys = client::command_keys::from_reply(*command);
  if (!keys) {
    std::fprintf(stderr, "unexpected COMMAND reply: %s\n", keys.error().what().c_str());
    return 1;
  }
  std::printf("%zu commands known\n", keys->size());

  std::optional<client::slot_map> map;
  if (const auto shards = redis.command<resp::value>("CLUSTER", "SHARDS"); shards && !shards->is_error()) {
    if (auto m = client::slot_map::from_shards(*shards)) map = std::move(*m);
  } else {
    std::printf("not a cluster (%s): slots only\n", shards ? shards->text.c_str() : shards.error().what().c_str());
  }

  const std::vector<std::vector<std::string_view>> calls = {
      {"GET", "user:1000"},
      {"MGET", "{user:1000}:name", "{user:1000}:email"},
      {"EVAL", "return redis.call('GET', KEYS[1])", "1", "counter", "arg"},
      {"XREAD", "COUNT", "10", "STREAMS", "events:a", "events:b", "0", "0"},
      {"PING"},
  };
  for (const auto& call : calls) {
    std::vector<std::size_t> at;
    if (keys->find(call, at) != client::command_keys::outcome::found) {
      std::printf("%s: keys unknown\n", std::string(call[0]).c_str());
      continue;
    }
    std::printf("%s:%s\n", std::string(call[0]).c_str(), at.empty() ? " no keys (any node)" : "");
    for (const std::size_t i : at) {
      const std::uint16_t slot = client::hash_slot(call[i]);
      std::printf("  %-20s slot %5u", std::string(call[i]).c_str(), slot);
      if (map) {
        if (const client::cluster_node* n = map->primary_of(slot)) std::printf("  -> %s:%u", n->host.c_str(), n->port);
      }
      std::printf("\n");
    }
  }
  return 0;
}
