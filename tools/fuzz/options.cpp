// SPDX-License-Identifier: MIT
#include "tools/fuzz/options.hpp"

#include "client/url.hpp"
#include "tools/fuzz/command_table.hpp"  // lower

#include <charconv>

namespace redring::fuzz {
namespace {

// The whole of `text` as a number (no sign for unsigned types, no blanks, nothing after).
template <class T>
bool number(std::string_view text, T& out) {
  const char* const end = text.data() + text.size();
  const auto parsed = std::from_chars(text.data(), end, out);
  return !text.empty() && parsed.ec == std::errc{} && parsed.ptr == end;
}

// An option that takes text: `-h HOST`, `--out DIR`...
struct text_option {
  std::string_view short_name, long_name;
  std::string* into;
  const char* what;
  bool may_be_empty;
};

// Walks the arguments: the current option, the value after it, and messages that name it.
class cursor {
 public:
  cursor(const std::vector<std::string>& args, std::size_t at) : args_(args), at_(at) {}
  [[nodiscard]] bool done() const noexcept { return at_ >= args_.size(); }
  void advance() noexcept { ++at_; }
  [[nodiscard]] std::size_t index() const noexcept { return at_; }
  [[nodiscard]] const std::string& option() const { return args_[option_at_ = at_]; }
  /// Takes the next argument as the option's value; false if there is none.
  bool value(std::string& into) {
    if (at_ + 1 >= args_.size()) return false;
    into = last_ = args_[++at_];
    return true;
  }
  [[nodiscard]] std::optional<std::string> need(const char* what) const { return args_[option_at_] + " needs " + what; }
  [[nodiscard]] std::optional<std::string> bad(const char* what) const {
    return args_[option_at_] + " must be " + what + ", not '" + last_ + "'";
  }

 private:
  const std::vector<std::string>& args_;
  std::size_t at_;
  mutable std::size_t option_at_ = 0;
  std::string last_;
};

client::options url_options(const std::string& uri) {
  client::options o;
  if (!uri.empty()) (void)client::parse_url(uri, o);  // validated by parse_options
  return o;
}

}  // namespace

const char* usage() noexcept {
  return "usage: redring-fuzz server [target] [options]     fuzz a RESP server\n"
         "       redring-fuzz client [options] -- COMMAND...  fuzz a client: a hostile server runs COMMAND against it\n"
         "       redring-fuzz replay FILE [target] [-- COMMAND...]\n"
         "Target (server, replay): none starts a private redis-server from PATH and stops it after.\n"
         "  -h, --host HOST          server host (loopback only unless --allow-remote)\n"
         "  -p, --port PORT          server port (client mode: listen on 127.0.0.1:PORT)\n"
         "  -s, --socket PATH        server Unix socket (client mode: listen on PATH)\n"
         "  -u, --uri URL            redis://[user[:pass]@]host[:port][/db] or unix:///path\n"
         "  -a, --password PASS      AUTH password\n"
         "      --user USER          ACL user\n"
         "Run:\n"
         "      --seed N             make the run reproducible (default: from the clock, printed)\n"
         "      --time SECS          stop after SECS seconds (default 60)\n"
         "      --iterations N       stop after N cases (server) or client runs (client)\n"
         "      --timeout MS         a reply's (server) or a client run's (client) time limit (default 3000)\n"
         "      --batch N            generated frames per case (default 24)\n"
         "      --malformed PCT      cases that end with malformed frames (default 20)\n"
         "      --mutate PCT         commands that are mutated (default 25)\n"
         "      --only CMD[,CMD]     generate only these commands (any case, 'config|get')\n"
         "      --allow-dangerous    include commands that destroy, reconfigure or reach other clients, and huge\n"
         "                           counts and offsets (always on for the private server)\n"
         "      --allow-remote       allow a non-loopback target\n"
         "      --replies N          generated replies per client run (client, default 8)\n"
         "      --exit-is-finding    a client's non-zero exit is a finding (client)\n"
         "      --no-shape-checks    do not check reply types against the documented ones (server, replay)\n"
         "Findings:\n"
         "      --out DIR            where reproducers go (default redring-fuzz-findings)\n"
         "      --no-minimise        save findings as found\n"
         "      --minimise-time SECS time limit per minimisation (default 60; a hang's: times --hang-trials)\n"
         "      --hang-trials N      a smaller case counts as hanging if N runs in a row hang (default 2)\n"
         "      --max-findings N     stop after N findings (default 10)\n"
         "      --json FILE          write the final report as JSON\n"
         "      --quiet              no progress line, no seed line\n"
         "Exit: 0 no finding, 1 findings (replay: the finding reproduced), 2 bad usage, 3 target unusable.\n";
}

endpoint fuzz_options::target() const {
  endpoint e;
  const client::options o = url_options(uri);
  if (!uri.empty()) {
    e.unix_path = o.unix_path;
    e.host = o.host;
    e.port = o.port;
  }
  if (!socket.empty()) e.unix_path = socket;
  if (!host.empty()) e.host = host;
  if (port != 0) e.port = static_cast<std::uint16_t>(port);
  return e;
}

std::string fuzz_options::auth_password() const {
  if (!password.empty()) return password;
  return url_options(uri).password.value_or("");
}

std::string fuzz_options::auth_user() const { return !user.empty() ? user : url_options(uri).user; }

int fuzz_options::database() const { return url_options(uri).database; }

std::optional<std::string> parse_options(const std::vector<std::string>& args, fuzz_options& out) {
  if (args.empty()) return std::string("give a mode: server, client or replay");
  if (args[0] == "--help" || args[0] == "help") return "help";
  std::size_t i = 1;
  if (args[0] == "server") {
    out.mode = mode::server;
  } else if (args[0] == "client") {
    out.mode = mode::client;
  } else if (args[0] == "replay") {
    out.mode = mode::replay;
    if (args.size() < 2 || args[1].starts_with("-")) return std::string("replay needs a reproducer file");
    out.replay_file = args[1];
    i = 2;
  } else {
    return "unknown mode '" + args[0] + "': give server, client or replay";
  }
  const text_option texts[] = {
      {"-h", "--host", &out.host, "a host name", false},   {"-s", "--socket", &out.socket, "a socket path", false},
      {"-u", "--uri", &out.uri, "a URL", true},             {"-a", "--password", &out.password, "a password", true},
      {"", "--user", &out.user, "a user name", false},      {"", "--out", &out.out_dir, "a directory", false},
      {"", "--json", &out.json_path, "a file name", false},
  };
  for (cursor c(args, i); !c.done(); c.advance()) {
    const std::string& a = c.option();
    std::string v;
    auto seconds = [&](std::chrono::milliseconds& into) -> std::optional<std::string> {
      if (!c.value(v)) return c.need("seconds");
      double s = 0;
      // !(s >= 0.001): NaN fails every comparison (its conversion below would be undefined), and
      // under a millisecond truncates to 0, which means "no limit given".
      if (!number(v, s) || !(s >= 0.001) || s > 7 * 86400) return c.bad("seconds, 0.001 up to a week");
      into = std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
      return std::nullopt;
    };
    auto percent = [&](unsigned& into) -> std::optional<std::string> {
      if (!c.value(v)) return c.need("a percentage");
      if (!number(v, into) || into > 100) return c.bad("0-100");
      return std::nullopt;
    };
    std::optional<std::string> err;
    if (a == "--") {
      out.client_argv.assign(args.begin() + static_cast<std::ptrdiff_t>(c.index()) + 1, args.end());
      if (out.client_argv.empty()) return std::string("-- needs a command to run");
      break;
    }
    if (a == "--help") return "help";
    // Options whose value is text.
    const text_option* text = nullptr;
    for (const auto& t : texts) {
      if (a == t.long_name || (!t.short_name.empty() && a == t.short_name)) text = &t;
    }
    if (text != nullptr) {
      if (!c.value(*text->into) || (text->into->empty() && !text->may_be_empty)) return c.need(text->what);
      if (text->into == &out.uri) {
        client::options probe;
        std::string why;
        if (client::parse_url(out.uri, probe, &why)) return a + ": " + why;
        // The fuzzer's own sockets speak plain RESP to one address.
        if (probe.tls.enabled || !probe.sentinel.master_name.empty()) {
          return a + ": rediss:// and redis+sentinel:// are not supported (give the server's plain address)";
        }
      }
    } else if (a == "-p" || a == "--port") {
      if (!c.value(v)) return c.need("a port");
      if (!number(v, out.port) || out.port < 1 || out.port > 65535) return c.bad("a port 1-65535");
    } else if (a == "--seed") {
      if (!c.value(v)) return c.need("a number");
      if (!number(v, out.seed)) return c.bad("a number 0-18446744073709551615");
      out.seed_given = true;
    } else if (a == "--time") {
      err = seconds(out.time);
    } else if (a == "--minimise-time") {
      err = seconds(out.minimise_time);
    } else if (a == "--iterations") {
      if (!c.value(v)) return c.need("a number");
      if (!number(v, out.iterations) || out.iterations < 1) return c.bad("a positive number");
    } else if (a == "--batch") {
      if (!c.value(v)) return c.need("a number");
      if (!number(v, out.batch) || out.batch < 1 || out.batch > 100000) return c.bad("1-100000");
    } else if (a == "--timeout") {
      if (!c.value(v)) return c.need("milliseconds");
      int ms = 0;
      if (!number(v, ms) || ms < 10 || ms > 3600000) return c.bad("milliseconds, 10-3600000");
      out.timeout = std::chrono::milliseconds(ms);
    } else if (a == "--malformed") {
      err = percent(out.malformed_percent);
    } else if (a == "--mutate") {
      err = percent(out.mutate_percent);
    } else if (a == "--only") {
      if (!c.value(v) || v.empty()) return c.need("command names");
      for (std::size_t start = 0; start <= v.size();) {
        const std::size_t comma = std::min(v.find(',', start), v.size());
        if (comma > start) out.only.push_back(v.substr(start, comma - start));
        start = comma + 1;
      }
    } else if (a == "--replies") {
      if (!c.value(v)) return c.need("a number");
      if (!number(v, out.replies) || out.replies < 1 || out.replies > 10000) return c.bad("1-10000");
    } else if (a == "--max-findings") {
      if (!c.value(v)) return c.need("a number");
      if (!number(v, out.max_findings) || out.max_findings < 1) return c.bad("a positive number");
    } else if (a == "--hang-trials") {
      if (!c.value(v)) return c.need("a number");
      if (!number(v, out.hang_trials) || out.hang_trials < 1 || out.hang_trials > 100) return c.bad("1-100");
    } else if (a == "--no-shape-checks") {
      out.shape_checks = false;
    } else if (a == "--allow-dangerous") {
      out.allow_dangerous = true;
    } else if (a == "--allow-remote") {
      out.allow_remote = true;
    } else if (a == "--exit-is-finding") {
      out.exit_is_finding = true;
    } else if (a == "--no-minimise") {
      out.minimise = false;
    } else if (a == "--quiet") {
      out.quiet = true;
    } else {
      return "unknown option '" + a + "'";
    }
    if (err) return err;
  }
  // One way to name the target: -u alone, -s alone, or -h and/or -p (each of the others would
  // silently win over a part of it).
  if (!out.socket.empty() && (out.port != 0 || !out.host.empty())) return std::string("give either -s or -h/-p, not both");
  if (!out.uri.empty() && (out.port != 0 || !out.host.empty() || !out.socket.empty())) {
    return std::string("give either -u or -h/-p/-s, not both");
  }
  if (!out.user.empty() && out.auth_password().empty()) return std::string("--user needs a password: give -a PASS too");
  for (auto& name : out.only) name = lower(name);
  if (out.mode == mode::client) {
    if (out.client_argv.empty()) return std::string("client mode needs the client to run: -- COMMAND...");
    if (!out.host.empty() || !out.uri.empty()) return std::string("client mode listens on -s PATH or -p PORT, not -h/-u");
  } else if (out.mode == mode::server && !out.client_argv.empty()) {
    return std::string("server mode runs no command: remove the -- part");
  }
  if (out.mode != mode::replay && out.time.count() == 0 && out.iterations == 0) out.time = std::chrono::seconds(60);
  return std::nullopt;
}

}  // namespace redring::fuzz
