// SPDX-License-Identifier: MIT
// Test support: a real Redis Cluster of private redis-servers on loopback ports, joined with
// `redis-cli --cluster create`, stopped and removed on destruction.
#pragma once

#include "tests/support/redis_server.hpp"
#include "tests/support/tls_files.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace redring::test {

/// `primaries` shards with `replicas` replicas each (3 + 3 by default), each node on 127.0.0.1:port
/// (cluster bus on port + 10000) and on a Unix socket for the tests' own blocking connections.
/// The constructor returns once every node reports `cluster_state:ok` and the same topology.
class redis_cluster {
 public:
  /// `node_timeout_ms` is `cluster-node-timeout`: how long until a silent node is failed over.
  /// With `tls`, each node also serves TLS on a port of its own (`tls_port(i)`) with its files, and
  /// the nodes speak TLS to each other (`tls-cluster yes`: only then do they know each other's TLS
  /// ports), on a bus at the TLS port + 10000.
  explicit redis_cluster(int primaries = 3, int replicas = 1, int node_timeout_ms = 2000, const tls_files* tls = nullptr);
  ~redis_cluster();
  redis_cluster(const redis_cluster&) = delete;
  redis_cluster& operator=(const redis_cluster&) = delete;

  /// Every node, in creation order (redis-cli makes the first `primaries` the primaries).
  [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }
  /// Node i's TCP port.
  [[nodiscard]] int port(std::size_t i) const { return ports_[i]; }
  /// Node i's TLS port (made with `tls` only).
  [[nodiscard]] int tls_port(std::size_t i) const { return tls_ports_.at(i); }
  /// Node i's server (its Unix socket, pid, dir).
  [[nodiscard]] redis_server& node(std::size_t i) { return *nodes_[i]; }
  /// The index of the node listening on `port` (throws if none).
  [[nodiscard]] std::size_t index_of_port(int port) const;
  /// Node i's id (CLUSTER MYID).
  [[nodiscard]] std::string node_id(std::size_t i);
  /// The index of the primary serving `key`'s slot (or a sharded channel's: they hash alike), as
  /// the first node that answers sees it: that node itself, or the node its MOVED names.
  [[nodiscard]] std::size_t owner_of_key(std::string_view key);
  /// Moves `slot` (with its keys) from node `from` to node `to` the way `redis-cli --cluster
  /// reshard` does (IMPORTING, MIGRATING, MIGRATE of each batch of keys, then SETSLOT NODE on every
  /// node); `step` runs after each batch (to interleave with load).
  void migrate_slot(std::uint16_t slot, std::size_t from, std::size_t to, const std::function<void()>& step = [] {});

 private:
  std::vector<std::unique_ptr<redis_server>> nodes_;
  std::vector<int> ports_;
  std::vector<int> tls_ports_;
};

/// A port p on 127.0.0.1 such that p and p + 10000 (its cluster bus) were both free a moment ago.
int free_cluster_port();

}  // namespace redring::test
