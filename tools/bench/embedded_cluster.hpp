// SPDX-License-Identifier: MIT
// A private Redis Cluster for redring-bench --cluster: N primaries (no replicas) on free loopback
// ports, each a private redis-server, joined with `redis-cli --cluster create`; stopped and removed
// by the destructor.
#pragma once

#include "tools/bench/embedded_server.hpp"

#include <memory>
#include <string>
#include <vector>

namespace redring::bench {

/// A cluster of private redis-servers. `start` returns an error message, or "" once every node
/// reports `cluster_state:ok`.
class embedded_cluster {
 public:
  [[nodiscard]] std::string start(int primaries);
  /// Node i's TCP port on 127.0.0.1.
  [[nodiscard]] int port(std::size_t i) const { return ports_[i]; }
  [[nodiscard]] std::size_t size() const noexcept { return ports_.size(); }

 private:
  std::vector<std::unique_ptr<embedded_server>> nodes_;
  std::vector<int> ports_;
};

}  // namespace redring::bench
