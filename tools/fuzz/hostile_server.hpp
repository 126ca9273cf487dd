// SPDX-License-Identifier: MIT
// Client mode: a hostile RESP server. It answers the handshake well enough that a client proceeds,
// then answers each command with the next generated reply (valid RESP2/RESP3 of every type,
// attributes and pushes in odd places, streamed types, oversized lengths, deep nesting, invalid
// bytes), delivered whole, byte by byte, in chunks, in a slow trickle or cut mid-reply; and it runs
// the client under test against itself and judges how it ended.
#pragma once

#include "tools/fuzz/fuzz_case.hpp"
#include "tools/fuzz/options.hpp"
#include "tools/fuzz/report.hpp"
#include "tools/fuzz/rng.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace redring::fuzz {

/// One generated reply's bytes (valid or not): `resp3` allows RESP3 types freely (a RESP2 client
/// still gets some); `close_after` is set when the bytes may leave a reply open.
[[nodiscard]] frame random_reply(rng& r, bool resp3);

/// Client-run `index` of a run seeded `seed`: `replies` reply frames, used in turn by the commands.
[[nodiscard]] fuzz_case make_reply_plan(std::uint64_t seed, std::uint64_t index, std::size_t replies);

/// How one run of the client ended.
struct client_run {
  outcome found;
  int exit_code = 0;             ///< the exit status, or 128 + signal number
  std::size_t replies_used = 0;  ///< plan replies sent (the plan is reused in turn when it runs out)
  std::size_t connections = 0;
  std::string output;            ///< the client's stdout and stderr, last 4 KiB
};

/// A hostile server listening on a Unix socket or a loopback port.
class hostile_server {
 public:
  /// Listens on `unix_path` (a temp dir's socket when empty and `port` is 0) or 127.0.0.1:`port`.
  /// nullptr with `why` on failure.
  [[nodiscard]] static std::unique_ptr<hostile_server> listen(const std::string& unix_path, int port, std::string& why);
  ~hostile_server();
  hostile_server(const hostile_server&) = delete;
  hostile_server& operator=(const hostile_server&) = delete;

  /// "unix:/path" or "127.0.0.1:port".
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] const std::string& socket_path() const noexcept { return path_; }
  [[nodiscard]] int port() const noexcept { return port_; }

  /// Runs `argv` ({socket} and {port} replaced; also in the environment as REDRING_FUZZ_SOCKET and
  /// REDRING_FUZZ_PORT) in its own process group and serves it `plan` until it exits or `timeout`
  /// passes (then its group is killed). A signal or a sanitizer report is a crash, the timeout a
  /// hang, a non-zero exit an `exit_status` finding if `exit_is_finding`.
  client_run run(const std::vector<std::string>& argv, const fuzz_case& plan, std::chrono::milliseconds timeout,
                 bool exit_is_finding);

 private:
  hostile_server() = default;
  int listen_fd_ = -1;
  std::string dir_, path_;
  int port_ = 0;
};

/// Client mode's loop: runs the client against generated plans until --time / --iterations /
/// --max-findings or until `progress` returns false; minimises and saves findings.
run_stats fuzz_client(hostile_server& server, const fuzz_options& opts, const std::function<bool(const run_stats&)>& progress);

/// Reproduces, minimises (if `opts.minimise`, until `deadline` at the latest) and saves a
/// client-mode finding of `plan`.
[[nodiscard]] finding_record handle_client_finding(hostile_server& server, const fuzz_options& opts,
                                                   const fuzz_case& plan, const client_run& run,
                                                   clock::time_point deadline = clock::time_point::max());

}  // namespace redring::fuzz
