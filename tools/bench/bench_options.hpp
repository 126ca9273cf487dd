// SPDX-License-Identifier: MIT
// redring-bench's command line: options named like redis-benchmark and memtier where they overlap.
#pragma once

#include "client/options.hpp"
#include "tools/bench/workload.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace redring::bench {

/// How keys are drawn from [key_minimum, key_maximum].
enum class key_pattern { random, sequential, gaussian };

/// The longest `--key-prefix`: keys are built per request in a fixed buffer (prefix + 20 digits).
inline constexpr std::size_t kMaxKeyPrefix = 64;

/// Everything the command line can say.
struct bench_options {
  // Target: none of these means "start a private redis-server"; at most one of -h/-p, -s and -u
  // (parse_options refuses the others).
  std::string host;             ///< -h/--host
  int port = 0;                 ///< -p/--port (with -h; 6379 if only -h)
  std::string socket;           ///< -s/--socket
  std::string uri;              ///< -u/--uri
  std::string password;         ///< -a/--password
  std::string user;             ///< --user

  int threads = 1;              ///< -t/--threads: one io_uring loop each
  int clients = 1;              ///< -c/--clients: connections per thread
  int pipeline = 1;             ///< -P/--pipeline: requests in flight per connection
  std::uint64_t requests = 0;   ///< -n/--requests (total); 0 with --test-time
  std::chrono::milliseconds test_time{0};  ///< --test-time seconds
  std::chrono::milliseconds warmup{0};     ///< --warmup seconds, not recorded
  unsigned set_ratio = 1, get_ratio = 10;  ///< --ratio SET:GET
  std::size_t data_size = 3;    ///< -d/--data-size
  std::string key_prefix = "key:";  ///< --key-prefix
  std::uint64_t key_minimum = 0, key_maximum = 9999;  ///< --key-minimum/--key-maximum
  key_pattern pattern = key_pattern::random;           ///< --key-pattern R|S|G (random, sequential, gaussian)
  std::vector<command_spec> commands;  ///< --command TEMPLATE (repeatable), weights by --command-ratio; empty: --ratio's SET/GET
  bool auto_pipeline = false;   ///< --auto: c x P coroutines per thread share the thread's client (auto-pipelining)
  double rate = 0;              ///< --rate N: open loop, N requests/s in all (0: closed loop)
  std::vector<int> cpus;        ///< --cpu LIST: thread i runs on cpus[i % size] (e.g. "1" or "2,3" or "0-3")
  std::string json_path;        ///< --json FILE
  std::string svg_path;         ///< --svg FILE
  bool quiet = false;           ///< --quiet
  bool progress = false;        ///< --progress: the progress line even when stderr is not a terminal
  bool cluster = false;         ///< --cluster: the target is a Redis Cluster (routes by slot; per-node figures)
  int cluster_shards = 3;       ///< --cluster-shards N: primaries of the private cluster (implies --cluster)

  /// The command mix: `commands`, or SET/GET by `--ratio`.
  [[nodiscard]] std::vector<command_spec> workload() const;

  /// True if no target was given: run a private redis-server.
  [[nodiscard]] bool embedded() const noexcept { return host.empty() && port == 0 && socket.empty() && uri.empty(); }
  /// The client options for the target (after `parse`).
  [[nodiscard]] client::options client_options() const;
};

/// Parses argv into `out`. Returns an error message naming the bad option, or nullopt. `--help`
/// gives the message "help".
[[nodiscard]] std::optional<std::string> parse_options(const std::vector<std::string>& args, bench_options& out);

/// The usage text.
[[nodiscard]] const char* usage() noexcept;

}  // namespace redring::bench
