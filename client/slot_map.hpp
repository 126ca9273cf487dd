// SPDX-License-Identifier: MIT
// A Redis Cluster's topology: which shard (primary and replicas) serves each of the 16384 slots, from
// `CLUSTER SHARDS` (Redis 7) or `CLUSTER SLOTS` (older servers).
#pragma once

#include "client/hash_slot.hpp"
#include "resp/result.hpp"
#include "resp/value.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redring::client {

/// One server of a cluster.
struct cluster_node {
  std::string id;          ///< the node id (40 hex characters; may be empty from old CLUSTER SLOTS)
  std::string host;        ///< its preferred endpoint (ip, hostname, per cluster-preferred-endpoint-type)
  std::uint16_t port = 0;  ///< its client port
  bool primary = false;    ///< a primary (else a replica)
  bool healthy = true;     ///< CLUSTER SHARDS health "online" (CLUSTER SLOTS lists only usable nodes)
  friend bool operator==(const cluster_node&, const cluster_node&) = default;
};

/// "host:port": how a cluster client names a node (as MOVED and CLUSTER NODES write it).
[[nodiscard]] std::string endpoint(std::string_view host, std::uint16_t port);

/// A primary, its replicas, and the slot ranges they serve.
struct cluster_shard {
  std::vector<std::pair<std::uint16_t, std::uint16_t>> ranges;  ///< inclusive [first, last] slot ranges
  std::vector<cluster_node> nodes;                              ///< the primary first, then replicas
};

/// Slot -> shard, built from one topology reply.
class slot_map {
 public:
  /// From a `CLUSTER SHARDS` reply (RESP2 or RESP3). An error if its shape is not that of SHARDS, or
  /// if it names two owners for a slot. A node's `tls-port` is taken over its `port` with `tls` (a
  /// TLS client; a node with only one of them has that one). (CLUSTER SLOTS needs no such choice:
  /// the server answers a TLS connection with its TLS ports.)
  [[nodiscard]] static resp::result<slot_map> from_shards(const resp::value& reply, bool tls = false);
  /// From a `CLUSTER SLOTS` reply. An error if its shape is not that of SLOTS, or if it names two
  /// owners for a slot.
  [[nodiscard]] static resp::result<slot_map> from_slots(const resp::value& reply);

  /// The shard serving `slot`, or null if none does (a cluster with unassigned slots).
  [[nodiscard]] const cluster_shard* shard_of(std::uint16_t slot) const noexcept {
    const std::uint16_t i = slot_to_shard_[slot & (slot_count - 1)];
    return i == none ? nullptr : &shards_[i];
  }
  /// The primary serving `slot`, or null.
  [[nodiscard]] const cluster_node* primary_of(std::uint16_t slot) const noexcept {
    const cluster_shard* s = shard_of(slot);
    return s == nullptr || s->nodes.empty() || !s->nodes.front().primary ? nullptr : &s->nodes.front();
  }
  /// Every shard that serves at least one slot.
  [[nodiscard]] std::span<const cluster_shard> shards() const noexcept { return shards_; }
  /// Slots no shard serves.
  [[nodiscard]] std::size_t unassigned_slots() const noexcept;

 private:
  static constexpr std::uint16_t none = 0xFFFF;
  // Adds a shard; false if it serves a slot another shard (or itself) already serves.
  bool add(cluster_shard s);

  std::vector<cluster_shard> shards_;
  std::array<std::uint16_t, slot_count> slot_to_shard_ = filled();
  static constexpr std::array<std::uint16_t, slot_count> filled() {
    std::array<std::uint16_t, slot_count> a{};
    a.fill(none);
    return a;
  }
};

}  // namespace redring::client
