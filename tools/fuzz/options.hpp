// SPDX-License-Identifier: MIT
// redring-fuzz's command line: `server`, `client` and `replay` modes, target options named like
// redring-bench's (-h/-p/-s/-u/-a/--user).
#pragma once

#include "tools/fuzz/socket.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace redring::fuzz {

/// The three modes.
enum class mode : std::uint8_t { server, client, replay };

/// Everything the command line can say.
struct fuzz_options {
  fuzz::mode mode = mode::server;

  // Target (server and replay): none of these means "start a private redis-server".
  std::string host;       ///< -h/--host
  int port = 0;           ///< -p/--port (server, replay: target port; client: the loopback port to listen on)
  std::string socket;     ///< -s/--socket (server, replay: target; client: the path to listen on)
  std::string uri;        ///< -u/--uri
  std::string password;   ///< -a/--password
  std::string user;       ///< --user

  std::uint64_t seed = 0;         ///< --seed (default: from the clock, printed)
  bool seed_given = false;
  std::chrono::milliseconds time{0};     ///< --time SECS
  std::uint64_t iterations = 0;          ///< --iterations N (cases, or client runs)
  std::size_t batch = 24;                ///< --batch N: generated frames per case
  std::chrono::milliseconds timeout{3000};  ///< --timeout MS: a reply (server) or a client run (client)
  unsigned malformed_percent = 20;       ///< --malformed PCT: cases that end with malformed frames
  unsigned mutate_percent = 25;          ///< --mutate PCT
  bool allow_dangerous = false;          ///< --allow-dangerous
  bool allow_remote = false;             ///< --allow-remote
  std::vector<std::string> only;         ///< --only CMD[,CMD...]
  std::size_t replies = 8;               ///< --replies N: generated replies per client run (client)
  bool exit_is_finding = false;          ///< --exit-is-finding (client)
  bool shape_checks = true;              ///< --no-shape-checks turns off reply type checks (server, replay)
  unsigned hang_trials = 2;              ///< --hang-trials N: runs in a row a minimisation step of a hang must hang
  bool minimise = true;                  ///< --no-minimise turns it off
  std::chrono::milliseconds minimise_time{60000};  ///< --minimise-time SECS
  std::size_t max_findings = 10;         ///< --max-findings N: stop after this many
  std::string out_dir = "redring-fuzz-findings";  ///< --out DIR
  std::string json_path;                 ///< --json FILE
  bool quiet = false;                    ///< --quiet
  std::string replay_file;               ///< replay: the reproducer
  std::vector<std::string> client_argv;  ///< client, replay: after `--`

  /// True if no target was given: run a private redis-server (server and replay modes).
  [[nodiscard]] bool embedded() const noexcept { return host.empty() && port == 0 && socket.empty() && uri.empty(); }
  /// The target endpoint (after `parse_options`), and the AUTH preamble's user and password.
  [[nodiscard]] endpoint target() const;
  /// Password from -a or the URL.
  [[nodiscard]] std::string auth_password() const;
  /// User from --user or the URL.
  [[nodiscard]] std::string auth_user() const;
  /// The URL's database (`/db` or `?db=`), selected on every connection; 0 without one.
  [[nodiscard]] int database() const;
};

/// Parses argv (without the program name) into `out`. Returns an error message naming the bad
/// option, or nullopt. `--help` gives the message "help".
[[nodiscard]] std::optional<std::string> parse_options(const std::vector<std::string>& args, fuzz_options& out);

/// The usage text.
[[nodiscard]] const char* usage() noexcept;

}  // namespace redring::fuzz
