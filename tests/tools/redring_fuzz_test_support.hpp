// SPDX-License-Identifier: MIT
// Helpers shared by redring-fuzz's tests: a temp dir, running the binary, a real command table.
#pragma once

#include "tests/support/fake_server.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/run_program.hpp"
#include "tools/fuzz/command_table.hpp"
#include "tools/fuzz/generator.hpp"
#include "tools/fuzz/options.hpp"
#include "tools/fuzz/probe.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace redring::fuzz::testing {

/// A fresh temp dir, removed with everything in it at the end of the scope.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/redring-fuzz-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Runs `redring-fuzz <args>` (through the shell) and returns its exit status; stdout and stderr
/// go to `output`.
inline int run_tool(const std::string& args, std::string& output) {
  return test::run_program(std::string(REDRING_FUZZ_PATH) + " " + args, output);
}

/// The command table of a real redis-server (from PATH), read once.
inline const command_table& real_table() {
  static const command_table table = [] {
    test::redis_server server;
    endpoint where;
    where.unix_path = server.socket_path();
    probe_settings s;
    std::string why;
    const auto info = call(where, s, {"COMMAND", "INFO"}, why);
    const auto docs = call(where, s, {"COMMAND", "DOCS"}, why);
    if (!info || !docs) throw std::runtime_error("cannot read the command table: " + why);
    return command_table::from_replies(*info, *docs);
  }();
  return table;
}

/// The whole text of a file ("" if it cannot be read).
inline std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// A proxy in front of a private redis-server: forwards each command (one upstream connection) and
/// returns its raw reply after `edit(command, reply)`, to fake one misbehaving command.
class editing_proxy {
 public:
  using editor = std::function<void(const std::vector<std::string>& command, std::string& reply)>;
  explicit editing_proxy(editor edit)
      : upstream_(real_.socket_path()), proxy_([this, edit = std::move(edit)](const std::vector<std::string>& cmd, int) {
          upstream_.send_command(std::vector<std::string_view>(cmd.begin(), cmd.end()));
          std::string reply = upstream_.read_raw_replies(1);
          edit(cmd, reply);
          return test::fake_reply{reply};
        }) {}
  [[nodiscard]] const std::string& socket_path() const noexcept { return proxy_.socket_path(); }

 private:
  test::redis_server real_;
  test::blocking_connection upstream_;
  test::fake_server proxy_;
};

/// Options for a short server-mode run in a test: seed 1, 150 cases, reproducers in `out_dir`.
inline fuzz_options quick_options(const std::string& out_dir) {
  fuzz_options o;
  o.seed = 1;
  o.iterations = 150;
  o.out_dir = out_dir;
  o.timeout = std::chrono::milliseconds(3000);
  o.minimise_time = std::chrono::seconds(20);
  return o;
}

/// Options for a run against an `editing_proxy`: only the `only` commands, no malformed frames (the
/// proxy parses only well-formed requests), a 2 s timeout, stop at the first finding.
inline fuzz_options proxy_options(const std::string& out_dir, std::vector<std::string> only) {
  fuzz_options o = quick_options(out_dir);
  o.only = std::move(only);
  o.malformed_percent = 0;
  o.timeout = std::chrono::milliseconds(2000);
  o.max_findings = 1;
  return o;
}

/// `count` generated commands of a few common kinds (seeded by `seed`), with each `planted` frame
/// inserted at its index (in order, counted in the result): a needle in a haystack to minimise.
inline fuzz_case hidden_among(std::size_t count, std::uint64_t seed, const std::vector<std::pair<std::size_t, frame>>& planted) {
  const generator gen(real_table(), {.only = {"get", "set", "incr", "hset", "lrange", "sadd", "zadd", "expire"}});
  fuzz_case c;
  rng r(seed);
  for (std::size_t i = 0; i < count; ++i) c.frames.push_back(gen.random_command(r));
  for (const auto& [at, f] : planted) c.frames.insert(c.frames.begin() + static_cast<std::ptrdiff_t>(at), f);
  return c;
}

}  // namespace redring::fuzz::testing
