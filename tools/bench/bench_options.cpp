// SPDX-License-Identifier: MIT
#include "tools/bench/bench_options.hpp"

#include "client/url.hpp"

#include <charconv>

namespace redring::bench {
namespace {

template <class T>
bool number(const std::string& s, T& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

const char* usage() noexcept {
  return "usage: redring-bench [options]\n"
         "With no -h/-p/-s/-u, starts a private redis-server (from PATH) on a Unix socket and stops it after.\n"
         "Give the server one way only: -h/-p, -s or -u.\n"
         "  -h, --host HOST          server host (port 6379 unless -p)\n"
         "  -p, --port PORT          server port\n"
         "  -s, --socket PATH        server Unix socket\n"
         "  -u, --uri URL            redis://[user[:pass]@]host[:port][/db], rediss://... (TLS), unix:///path or\n"
         "                           redis+sentinel://sentinel[:port][,...]/master_name (the master a sentinel names)\n"
         "  -a, --password PASS      AUTH password\n"
         "      --user USER          ACL user\n"
         "  -t, --threads N          io_uring loops, one per thread (default 1)\n"
         "  -c, --clients N          connections per thread (default 1)\n"
         "  -P, --pipeline N         requests in flight per connection (default 1)\n"
         "  -n, --requests N         total requests (default 100000 unless --test-time)\n"
         "      --test-time SECS     run for SECS seconds instead of -n\n"
         "      --warmup SECS        run SECS seconds first, not recorded\n"
         "      --ratio SET:GET      command mix (default 1:10)\n"
         "      --command TEMPLATE   send this command instead, e.g. \"HSET h __key__ __data__\"; repeatable\n"
         "      --command-ratio N    weight of the preceding --command in the mix (default 1)\n"
         "      --auto               c x P coroutines per thread each await their own command on one client\n"
         "                           (auto-pipelining) instead of c connections with P requests in flight\n"
         "      --rate N             open loop: start N requests/s in all, latency from the scheduled time\n"
         "  -d, --data-size BYTES    SET value size (default 3)\n"
         "      --key-prefix TEXT    (default key:)\n"
         "      --key-minimum N      (default 0)\n"
         "      --key-maximum N      (default 9999)\n"
         "      --key-pattern R|S|G  random, sequential or gaussian (around the middle) keys (default R)\n"
         "      --cpu LIST           pin the loop threads to these CPUs, e.g. 1 or 2,3 or 0-3\n"
         "      --json FILE          write the report, with histograms, as JSON\n"
         "      --svg FILE           write latency-percentile and throughput-over-time plots as SVG\n"
         "      --progress           a progress line on stderr every second even if it is not a terminal\n"
         "      --cluster            the target is a Redis Cluster: route each key to its node, report per node;\n"
         "                           with no target, start a private cluster of --cluster-shards primaries\n"
         "      --cluster-shards N   primaries of the private cluster (default 3; implies --cluster)\n"
         "      --quiet              print only the summary line\n";
}

std::vector<command_spec> bench_options::workload() const {
  return commands.empty() ? default_workload(set_ratio, get_ratio) : commands;
}

client::options bench_options::client_options() const {
  client::options o;
  if (!uri.empty()) (void)client::parse_url(uri, o);  // validated by parse_options
  if (!socket.empty()) o.unix_path = socket;
  if (!host.empty()) o.host = host;
  if (port != 0) o.port = static_cast<std::uint16_t>(port);
  if (!password.empty()) o.password = password;
  if (!user.empty()) o.user = user;
  o.connect_timeout = std::chrono::milliseconds(3000);
  o.command_timeout = std::chrono::milliseconds(10000);  // a stalled server ends the run, it does not hang it
  o.reconnect.enabled = false;  // a benchmark reports a dead server, it does not wait for it
  o.set_lib_info = false;
  o.cluster.enabled = cluster;
  return o;
}

std::optional<std::string> parse_options(const std::vector<std::string>& args, bench_options& out) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& v) -> bool {
      if (i + 1 >= args.size()) return false;
      v = args[++i];
      return true;
    };
    std::string v;
    auto need = [&](const char* what) { return std::optional<std::string>(a + " needs " + what); };
    auto bad = [&](const char* what) { return std::optional<std::string>(a + " must be " + what + ", not '" + v + "'"); };
    if (a == "--help") return "help";
    if (a == "-h" || a == "--host") {
      if (!value(out.host) || out.host.empty()) return need("a host name");
    } else if (a == "-p" || a == "--port") {
      if (!value(v)) return need("a port");
      if (!number(v, out.port) || out.port < 1 || out.port > 65535) return bad("a port 1-65535");
    } else if (a == "-s" || a == "--socket") {
      if (!value(out.socket) || out.socket.empty()) return need("a socket path");
    } else if (a == "-u" || a == "--uri") {
      if (!value(out.uri)) return need("a URL");
      client::options probe;
      std::string why;
      if (client::parse_url(out.uri, probe, &why)) return a + ": " + why;
    } else if (a == "-a" || a == "--password") {
      if (!value(out.password)) return need("a password");
    } else if (a == "--user") {
      if (!value(out.user) || out.user.empty()) return need("a user name");
    } else if (a == "-t" || a == "--threads") {
      if (!value(v)) return need("a number");
      if (!number(v, out.threads) || out.threads < 1 || out.threads > 256) return bad("1-256");
    } else if (a == "-c" || a == "--clients") {
      if (!value(v)) return need("a number");
      if (!number(v, out.clients) || out.clients < 1 || out.clients > 10000) return bad("1-10000");
    } else if (a == "-P" || a == "--pipeline") {
      if (!value(v)) return need("a number");
      if (!number(v, out.pipeline) || out.pipeline < 1 || out.pipeline > 1000000) return bad("1-1000000");
    } else if (a == "-n" || a == "--requests") {
      if (!value(v)) return need("a number");
      if (!number(v, out.requests) || out.requests < 1) return bad("a positive number");
    } else if (a == "--test-time" || a == "--warmup") {
      if (!value(v)) return need("seconds");
      double s = 0;
      // --warmup 0 is "no warm-up" (scripts pass it explicitly); a test time must be positive.
      const bool warmup = a == "--warmup";
      // !(s >= 0): NaN fails every comparison, and its conversion below would be undefined. A test
      // time is at least 1 ms: a shorter one truncated to 0 and turned into the default -n.
      if (!number(v, s) || !(s >= 0) || (!warmup && s < 0.001) || s > 86400) {
        return bad(warmup ? "seconds, 0-86400" : "seconds, 0.001-86400");
      }
      (a == "--warmup" ? out.warmup : out.test_time) = std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
    } else if (a == "--ratio") {
      if (!value(v)) return need("SET:GET");
      const auto colon = v.find(':');
      // Each weight at most 1000000, as --command-ratio's: their sum cannot wrap.
      if (colon == std::string::npos || !number(v.substr(0, colon), out.set_ratio) ||
          !number(v.substr(colon + 1), out.get_ratio) || out.set_ratio > 1000000 || out.get_ratio > 1000000 ||
          out.set_ratio + out.get_ratio == 0) {
        return bad("SET:GET, two weights 0-1000000, not both 0");
      }
    } else if (a == "-d" || a == "--data-size") {
      if (!value(v)) return need("a size");
      if (!number(v, out.data_size) || out.data_size > (512u << 20)) return bad("a size up to 512 MiB");
    } else if (a == "--key-prefix") {
      if (!value(out.key_prefix)) return need("a prefix");
      // A key is built in a fixed buffer per request: prefix + up to 20 digits.
      if (out.key_prefix.size() > kMaxKeyPrefix) return a + " must be at most " + std::to_string(kMaxKeyPrefix) + " bytes";
    } else if (a == "--key-minimum") {
      if (!value(v)) return need("a number");
      if (!number(v, out.key_minimum)) return bad("a number");
    } else if (a == "--key-maximum") {
      if (!value(v)) return need("a number");
      if (!number(v, out.key_maximum)) return bad("a number");
    } else if (a == "--key-pattern") {
      if (!value(v)) return need("R or S");
      if (v == "R" || v == "random") out.pattern = key_pattern::random;
      else if (v == "S" || v == "sequential") out.pattern = key_pattern::sequential;
      else if (v == "G" || v == "gaussian") out.pattern = key_pattern::gaussian;
      else return bad("R (random), S (sequential) or G (gaussian)");
    } else if (a == "--cpu") {
      if (!value(v)) return need("a CPU list");
      out.cpus.clear();
      std::size_t start = 0;
      while (start <= v.size()) {
        const std::size_t comma = std::min(v.find(',', start), v.size());
        const std::string item = v.substr(start, comma - start);
        const std::size_t dash = item.find('-');
        int lo = 0, hi = 0;
        if (dash == std::string::npos ? !number(item, lo) : (!number(item.substr(0, dash), lo) || !number(item.substr(dash + 1), hi))) {
          return bad("a CPU list like 1 or 2,3 or 0-3");
        }
        if (dash == std::string::npos) hi = lo;
        if (lo < 0 || hi < lo || hi > 4095) return bad("a CPU list like 1 or 2,3 or 0-3");
        for (int c = lo; c <= hi; ++c) out.cpus.push_back(c);
        start = comma + 1;
      }
    } else if (a == "--command") {
      if (!value(v)) return need("a command");
      std::string why;
      auto spec = parse_command(v, why);
      if (!spec) return a + ": " + why;
      out.commands.push_back(std::move(*spec));
    } else if (a == "--command-ratio") {
      if (!value(v)) return need("a weight");
      if (out.commands.empty()) return a + " must follow a --command";
      if (!number(v, out.commands.back().weight) || out.commands.back().weight > 1000000) return bad("a weight 0-1000000");
    } else if (a == "--auto") {
      out.auto_pipeline = true;
    } else if (a == "--rate") {
      if (!value(v)) return need("requests per second");
      // At least 0.001/s (one request in 1000 s): slower rates scheduled requests past the end of
      // any run, and the schedule's nanoseconds overflowed.
      if (!number(v, out.rate) || !(out.rate >= 0.001) || out.rate > 1e9) return bad("requests per second, 0.001-1e9");
    } else if (a == "--svg") {
      if (!value(out.svg_path) || out.svg_path.empty()) return need("a file name");
    } else if (a == "--progress") {
      out.progress = true;
    } else if (a == "--json") {
      if (!value(out.json_path) || out.json_path.empty()) return need("a file name");
    } else if (a == "--quiet") {
      out.quiet = true;
    } else if (a == "--cluster") {
      out.cluster = true;
    } else if (a == "--cluster-shards") {
      if (!value(v)) return need("a number of primaries");
      if (!number(v, out.cluster_shards) || out.cluster_shards < 1 || out.cluster_shards > 16) return bad("1-16 primaries");
      out.cluster = true;
    } else {
      return "unknown option '" + a + "'";
    }
  }
  if (out.key_minimum > out.key_maximum) return std::string("--key-minimum must not exceed --key-maximum");
  // One target. With two, `client_options` let one override the other without a word: -s over -h,
  // and -s, -h, -p each over the part of a -u URL they name.
  if (out.port != 0 && !out.socket.empty()) return std::string("give either -p or -s, not both");
  if (!out.host.empty() && !out.socket.empty()) return std::string("give either -h or -s, not both");
  if (!out.uri.empty() && !out.socket.empty()) return std::string("give either -u or -s, not both");
  if (!out.uri.empty() && (!out.host.empty() || out.port != 0)) return std::string("give either -u or -h/-p, not both");
  if (out.requests != 0 && out.test_time.count() != 0) return std::string("give either -n or --test-time, not both");
  if (out.requests == 0 && out.test_time.count() == 0) out.requests = 100000;
  if (!out.commands.empty()) {
    bool any = false;
    for (const auto& c : out.commands) any = any || c.weight != 0;
    if (!any) return std::string("every --command has weight 0");
  }
  return std::nullopt;
}

}  // namespace redring::bench
