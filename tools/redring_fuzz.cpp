// SPDX-License-Identifier: MIT
// redring-fuzz: a protocol fuzzer for RESP servers (`server`), a hostile server for fuzzing clients
// (`client`), and `replay FILE` for its reproducers. See docs/redring-fuzz.md.
#include "tools/bench/embedded_server.hpp"
#include "tools/fuzz/hostile_server.hpp"
#include "tools/fuzz/options.hpp"
#include "tools/fuzz/report.hpp"
#include "tools/fuzz/server_fuzzer.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

using namespace redring;

void on_signal(int) { fuzz::interrupted = true; }

// Exit statuses (see usage()).
constexpr int exit_clean = 0, exit_findings = 1, exit_usage = 2, exit_unusable = 3;

bool report_progress(const fuzz::fuzz_options& opts, const fuzz::run_stats& s) {
  if (!opts.quiet) std::fprintf(stderr, "%s\n", fuzz::progress_line(s).c_str());
  return !fuzz::interrupted;
}

int finish(const fuzz::fuzz_options& opts, const fuzz::run_stats& stats) {
  std::fputs(fuzz::format_report(stats).c_str(), stdout);
  if (!opts.json_path.empty()) {
    std::ofstream f(opts.json_path);
    f << fuzz::format_json(stats);
    if (!f) {
      std::fprintf(stderr, "redring-fuzz: cannot write %s\n", opts.json_path.c_str());
      return exit_unusable;
    }
  }
  if (stats.unusable) return exit_unusable;
  return stats.findings.empty() ? exit_clean : exit_findings;
}

// The server to fuzz or replay against: the given one, or a private redis-server in `owned`.
std::optional<fuzz::server_target> make_target(fuzz::fuzz_options& opts, bench::embedded_server& owned, int& code) {
  fuzz::server_target t;
  if (!opts.embedded()) {
    t.where = opts.target();
    std::string why;
    if (!opts.allow_remote && !fuzz::is_loopback(t.where, why)) {
      std::fprintf(stderr, "redring-fuzz: %s\n", why.c_str());
      code = exit_usage;
      return std::nullopt;
    }
    t.description = t.where.describe();
    return t;
  }
  // Our own server: dangerous commands are fine, and it is restarted after a crash. Its bulk limit
  // is lowered to 32 MiB so that SETBIT/SETRANGE at huge offsets cannot take 512 MiB each, and a
  // connection's output to 256 MiB so that ZRANDMEMBER k -2147483649 cannot queue tens of GiB.
  opts.allow_dangerous = true;
  auto start = [&owned](fuzz::endpoint& where, std::string& why) {
    owned.stop();
    why = owned.start();
    if (!why.empty()) return false;
    where.unix_path = owned.socket_path();
    fuzz::probe_settings s;
    (void)fuzz::call(where, s, {"CONFIG", "SET", "proto-max-bulk-len", "32mb"}, why);
    (void)fuzz::call(where, s, {"CONFIG", "SET", "client-output-buffer-limit", "normal 256mb 0 0"}, why);
    return true;
  };
  std::string why;
  if (!start(t.where, why)) {
    std::fprintf(stderr, "redring-fuzz: %s\n", why.c_str());
    code = exit_unusable;
    return std::nullopt;
  }
  t.description = "private redis-server at " + t.where.describe();
  t.restart = start;
  return t;
}

int run_server(fuzz::fuzz_options& opts) {
  bench::embedded_server owned;
  int code = 0;
  auto target = make_target(opts, owned, code);
  if (!target) return code;
  fuzz::server_fuzzer fuzzer(*target, opts);
  if (auto err = fuzzer.prepare()) {
    std::fprintf(stderr, "redring-fuzz: %s\n", err->c_str());
    return exit_unusable;
  }
  const auto stats = fuzzer.run([&](const fuzz::run_stats& s) { return report_progress(opts, s); });
  return finish(opts, stats);
}

int run_client(fuzz::fuzz_options& opts) {
  std::string why;
  auto server = fuzz::hostile_server::listen(opts.socket, opts.port, why);
  if (!server) {
    std::fprintf(stderr, "redring-fuzz: %s\n", why.c_str());
    return exit_unusable;
  }
  if (!opts.quiet) std::fprintf(stderr, "hostile server on %s\n", server->describe().c_str());
  const auto stats = fuzz::fuzz_client(*server, opts, [&](const fuzz::run_stats& s) { return report_progress(opts, s); });
  return finish(opts, stats);
}

int run_replay(fuzz::fuzz_options& opts) {
  std::ifstream in(opts.replay_file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "redring-fuzz: cannot read %s\n", opts.replay_file.c_str());
    return exit_usage;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string why;
  const auto repro = fuzz::parse_reproducer(text.str(), why);
  if (!repro) {
    std::fprintf(stderr, "redring-fuzz: %s: %s\n", opts.replay_file.c_str(), why.c_str());
    return exit_usage;
  }
  std::printf("replaying %s: %zu frames, expecting %s: %s\n", opts.replay_file.c_str(), repro->steps.frames.size(),
              std::string(fuzz::to_string(repro->kind)).c_str(), repro->detail.c_str());
  fuzz::outcome got;
  if (repro->mode == "client") {
    if (opts.client_argv.empty()) opts.client_argv = repro->client_argv;
    if (opts.client_argv.empty()) {
      std::fprintf(stderr, "redring-fuzz: the reproducer names no client: give -- COMMAND...\n");
      return exit_usage;
    }
    auto server = fuzz::hostile_server::listen(opts.socket, opts.port, why);
    if (!server) {
      std::fprintf(stderr, "redring-fuzz: %s\n", why.c_str());
      return exit_unusable;
    }
    const auto run = server->run(opts.client_argv, repro->steps, opts.timeout,
                                 opts.exit_is_finding || repro->kind == fuzz::finding_kind::exit_status);
    got = run.found;
    if (!run.output.empty()) std::printf("client output:\n%s\n", run.output.c_str());
  } else {
    bench::embedded_server owned;
    int code = 0;
    auto target = make_target(opts, owned, code);
    if (!target) return code;
    fuzz::server_fuzzer fuzzer(*target, opts);
    if (fuzz::check_alive(target->where, fuzzer.settings(), why) != fuzz::liveness::alive) {
      std::fprintf(stderr, "redring-fuzz: %s does not answer: %s\n", target->description.c_str(), why.c_str());
      return exit_unusable;
    }
    // The server's own command table: to refuse what --allow-dangerous guards (a reproducer found
    // on the private server may hold FLUSHALL or CONFIG SET), and to judge a reply type.
    const bool check_safety = !opts.allow_dangerous;
    const bool need_docs = repro->kind == fuzz::finding_kind::reply_shape && opts.shape_checks;
    std::optional<std::string> unread;  // why the server's table could not be read
    if (check_safety || need_docs) unread = fuzzer.prepare();
    if (unread && need_docs) {
      std::fprintf(stderr, "redring-fuzz: %s\n", unread->c_str());
      return exit_unusable;
    }
    if (check_safety) {
      // A user whose ACL refuses COMMAND still gets a replay, judged by a stricter built-in list.
      const fuzz::command_table fallback = unread ? fuzz::command_table::conservative() : fuzz::command_table{};
      const fuzz::command_table& table = unread ? fallback : fuzzer.table();
      for (const fuzz::frame& f : repro->steps.frames) {
        if (const std::string name = fuzz::dangerous_in(table, f); !name.empty()) {
          std::fprintf(stderr, "redring-fuzz: the reproducer sends %s, which destroys, reconfigures or stops the server "
                               "or reaches its other clients%s: pass --allow-dangerous to replay it against %s\n",
                       name.c_str(),
                       unread ? (" (judged without the server's command table: " + *unread + ")").c_str() : "",
                       target->description.c_str());
          return exit_usage;
        }
        if (const std::string n = fuzz::huge_count_in(f); !n.empty()) {
          std::fprintf(stderr, "redring-fuzz: the reproducer sends %s, a count or an offset that can make the server "
                               "build gigabytes: pass --allow-dangerous to replay it against %s\n",
                       n.c_str(), target->description.c_str());
          return exit_usage;
        }
      }
    }
    fuzzer.reset_keys();  // as every minimisation run did
    got = fuzzer.run_once(repro->steps).found;
  }
  if (got.kind == fuzz::finding_kind::none) {
    std::printf("no finding: it did not reproduce\n");
    return exit_clean;
  }
  if (got.kind != repro->kind) {
    std::printf("it did not reproduce; found another kind instead: %s: %s\n", std::string(fuzz::to_string(got.kind)).c_str(),
                got.detail.c_str());
    return exit_clean;
  }
  std::printf("reproduced %s: %s\n", std::string(fuzz::to_string(got.kind)).c_str(), got.detail.c_str());
  return exit_findings;
}

}  // namespace

int main(int argc, char** argv) {
  fuzz::fuzz_options opts;
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (auto err = fuzz::parse_options(args, opts)) {
    if (*err == "help") {
      std::fputs(fuzz::usage(), stdout);
      return exit_clean;
    }
    std::fprintf(stderr, "redring-fuzz: %s\n%s", err->c_str(), fuzz::usage());
    return exit_usage;
  }
  if (!opts.seed_given) {
    opts.seed = static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) ^
                static_cast<std::uint64_t>(::getpid());
  }
  if (opts.mode != fuzz::mode::replay && !opts.quiet) {
    std::fprintf(stderr, "seed %llu\n", static_cast<unsigned long long>(opts.seed));
  }
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  switch (opts.mode) {
    case fuzz::mode::server: return run_server(opts);
    case fuzz::mode::client: return run_client(opts);
    case fuzz::mode::replay: return run_replay(opts);
  }
  return exit_usage;
}
