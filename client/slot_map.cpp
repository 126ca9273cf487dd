// SPDX-License-Identifier: MIT
// Reply shapes: https://redis.io/commands/cluster-shards/ and https://redis.io/commands/cluster-slots/
#include "client/slot_map.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace redring::client {

std::string endpoint(std::string_view host, std::uint16_t port) {
  std::string s(host);
  s += ':';
  s += std::to_string(port);
  return s;
}

namespace {

resp::error bad_shape(const char* what) { return resp::error{resp::errc::unexpected_type, what}; }

bool slot_number(const resp::value& v, std::uint16_t& out) {
  if (v.data_type != resp::type::integer || v.integer < 0 || v.integer >= slot_count) return false;
  out = static_cast<std::uint16_t>(v.integer);
  return true;
}

bool port_number(const resp::value& v, std::uint16_t& out) {
  if (v.data_type != resp::type::integer || v.integer <= 0 || v.integer > 65535) return false;
  out = static_cast<std::uint16_t>(v.integer);
  return true;
}

// A string or integer where a list belongs has no elements: without this check it would read as empty.
bool is_list(const resp::value& v) { return v.data_type == resp::type::array || v.data_type == resp::type::set; }

}  // namespace

bool slot_map::add(cluster_shard s) {
  if (s.ranges.empty()) return true;  // a shard without slots (a new, empty primary) serves nothing
  // The primary first: replicas follow in the server's order.
  std::stable_partition(s.nodes.begin(), s.nodes.end(), [](const cluster_node& n) { return n.primary; });
  const auto index = static_cast<std::uint16_t>(shards_.size());
  for (const auto& [first, last] : s.ranges) {
    for (unsigned slot = first; slot <= last; ++slot) {
      // A slot has one owner in any node's view. Refusing a second one also bounds the work: a
      // hostile reply of many ranges over all 16384 slots stops at its second range.
      if (slot_to_shard_[slot] != none) return false;
      slot_to_shard_[slot] = index;
    }
  }
  shards_.push_back(std::move(s));
  return true;
}

std::size_t slot_map::unassigned_slots() const noexcept {
  return static_cast<std::size_t>(std::count(slot_to_shard_.begin(), slot_to_shard_.end(), none));
}

resp::result<slot_map> slot_map::from_shards(const resp::value& reply, bool tls) {
  if (reply.is_error()) return resp::error{resp::errc::server_error, reply.text};
  if (reply.data_type != resp::type::array) return bad_shape("CLUSTER SHARDS reply is not an array");
  slot_map m;
  for (const resp::value& shard : reply.elements) {
    const resp::value* slots = shard.find("slots");
    const resp::value* nodes = shard.find("nodes");
    if (slots == nullptr || nodes == nullptr || !is_list(*slots) || !is_list(*nodes) || slots->elements.size() % 2 != 0) {
      return bad_shape("CLUSTER SHARDS entry without slots/nodes");
    }
    cluster_shard s;
    for (std::size_t i = 0; i < slots->elements.size(); i += 2) {
      std::uint16_t first = 0, last = 0;
      if (!slot_number(slots->elements[i], first) || !slot_number(slots->elements[i + 1], last) || last < first) {
        return bad_shape("CLUSTER SHARDS slot range out of bounds");
      }
      s.ranges.emplace_back(first, last);
    }
    for (const resp::value& node : nodes->elements) {
      cluster_node n;
      const resp::value* id = node.find("id");
      const resp::value* port = tls ? node.find("tls-port") : node.find("port");
      const resp::value* endpoint = node.find("endpoint");
      const resp::value* ip = node.find("ip");
      const resp::value* role = node.find("role");
      const resp::value* health = node.find("health");
      if (port == nullptr) port = tls ? node.find("port") : node.find("tls-port");
      if (id == nullptr || port == nullptr || role == nullptr || !port_number(*port, n.port)) {
        return bad_shape("CLUSTER SHARDS node without id/port/role");
      }
      n.id = id->text;
      n.host = endpoint != nullptr && !endpoint->text.empty() && endpoint->text != "?" ? endpoint->text
               : ip != nullptr                                                       ? ip->text
                                                                                     : std::string();
      n.primary = role->text == "master" || role->text == "primary";
      n.healthy = health == nullptr || health->text == "online";
      s.nodes.push_back(std::move(n));
    }
    if (!m.add(std::move(s))) return bad_shape("CLUSTER SHARDS serves a slot twice");
  }
  return m;
}

resp::result<slot_map> slot_map::from_slots(const resp::value& reply) {
  if (reply.is_error()) return resp::error{resp::errc::server_error, reply.text};
  if (reply.data_type != resp::type::array) return bad_shape("CLUSTER SLOTS reply is not an array");
  // Each entry is a range of at least one slot, and no slot is served twice (add checks).
  if (reply.elements.size() > slot_count) return bad_shape("CLUSTER SLOTS has more ranges than slots");
  slot_map m;
  // Each entry: [first, last, [host, port, id?, ...] (primary), [host, port, id?] (replicas) ...].
  // A shard with several ranges appears once per range: merge them by primary id/address, found by
  // a map (a linear search over the shards is quadratic in a hostile reply's ranges).
  std::vector<cluster_shard> shards;
  std::unordered_map<std::string, std::size_t> shard_of_primary;
  for (const resp::value& e : reply.elements) {
    if (e.data_type != resp::type::array || e.elements.size() < 3) return bad_shape("CLUSTER SLOTS entry too short");
    std::uint16_t first = 0, last = 0;
    if (!slot_number(e.elements[0], first) || !slot_number(e.elements[1], last) || last < first) {
      return bad_shape("CLUSTER SLOTS slot range out of bounds");
    }
    cluster_shard s;
    s.ranges.emplace_back(first, last);
    for (std::size_t i = 2; i < e.elements.size(); ++i) {
      const resp::value& node = e.elements[i];
      if (node.data_type != resp::type::array || node.elements.size() < 2) return bad_shape("CLUSTER SLOTS node too short");
      cluster_node n;
      n.host = node.elements[0].text;
      if (!port_number(node.elements[1], n.port)) return bad_shape("CLUSTER SLOTS node port out of range");
      if (node.elements.size() >= 3) n.id = node.elements[2].text;
      n.primary = i == 2;
      s.nodes.push_back(std::move(n));
    }
    const cluster_node& primary = s.nodes.front();
    std::string key = primary.id;
    key.append(1, '\0').append(primary.host).append(1, '\0').append(std::to_string(primary.port));
    const auto [at, added] = shard_of_primary.try_emplace(std::move(key), shards.size());
    if (added) {
      shards.push_back(std::move(s));
    } else {
      shards[at->second].ranges.push_back(s.ranges.front());
    }
  }
  for (auto& s : shards) {
    if (!m.add(std::move(s))) return bad_shape("CLUSTER SLOTS serves a slot twice");
  }
  return m;
}

}  // namespace redring::client
