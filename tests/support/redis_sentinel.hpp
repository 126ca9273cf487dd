// SPDX-License-Identifier: MIT
// Test support: a real Sentinel deployment of private redis-servers on loopback ports: a master,
// its replicas, and sentinels monitoring it. Stopped and removed on destruction.
#pragma once

#include "tests/support/redis_server.hpp"
#include "tests/support/tls_files.hpp"

#include <memory>
#include <string>
#include <vector>

namespace redring::test {

/// Server 0 is the first master; servers 1..replicas replicate it. Each sentinel monitors it with
/// quorum 1. Every process listens on 127.0.0.1:port and on a Unix socket (for the tests' own
/// blocking connections). The constructor returns once every sentinel lists every replica with its
/// master link up.
class redis_sentinel {
 public:
  /// `sentinel_config` is appended to each sentinel's config file (e.g. "requirepass secret\n").
  /// With `tls`, every server and sentinel serves TLS only (with tls's files) on its port, and they
  /// speak TLS to each other (`tls-replication yes`): the sentinels name the TLS ports.
  explicit redis_sentinel(int replicas = 1, int sentinels = 2, std::string sentinel_config = {}, const tls_files* tls = nullptr);
  ~redis_sentinel();
  redis_sentinel(const redis_sentinel&) = delete;
  redis_sentinel& operator=(const redis_sentinel&) = delete;

  /// The name the sentinels monitor.
  [[nodiscard]] static const char* master_name() noexcept { return "mymaster"; }
  [[nodiscard]] std::size_t servers() const noexcept { return servers_.size(); }
  [[nodiscard]] redis_server& server(std::size_t i) { return *servers_.at(i); }
  [[nodiscard]] int server_port(std::size_t i) const { return server_ports_.at(i); }
  /// The index of the server listening on `port` (throws if none).
  [[nodiscard]] std::size_t index_of_port(int port) const;
  [[nodiscard]] std::size_t sentinels() const noexcept { return sentinels_.size(); }
  [[nodiscard]] redis_server& sentinel(std::size_t i) { return *sentinels_.at(i); }
  [[nodiscard]] int sentinel_port(std::size_t i) const { return sentinel_ports_.at(i); }
  /// The index of the server sentinel `s` names as the master.
  [[nodiscard]] std::size_t master_index(std::size_t s = 0);
  /// Forces a failover (SENTINEL FAILOVER on sentinel `via`, no agreement needed) and returns the
  /// new master's index once it reports the master role and every sentinel names it (with
  /// `only_via`, sentinel `via`: the others may be stopped).
  std::size_t failover(std::size_t via = 0, bool only_via = false);
  /// A command to sentinel `s` (authenticated if the sentinels require a password).
  resp::value call_sentinel(std::size_t s, const std::vector<std::string_view>& args);

 private:
  std::vector<std::unique_ptr<redis_server>> servers_;
  std::vector<int> server_ports_;
  std::vector<std::unique_ptr<redis_server>> sentinels_;
  std::vector<int> sentinel_ports_;
  std::string password_;  // the sentinels' requirepass, if the config set one
};

}  // namespace redring::test
