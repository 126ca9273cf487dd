// SPDX-License-Identifier: MIT
// End-to-end client throughput against a private redis-server: redring against hiredis and
// redis-benchmark, same server, same pinning, same run (see bench/README.md).
//
// Rows, for GET and SET with 3- and 100-byte values (GET keys preloaded):
//   redring 1                  one coroutine, co_await in a loop: one command at a time.
//   redring explicit D         D raw client::request objects, each resubmitted from its on_done:
//                              exactly D commands outstanding on the connection (a sliding window).
//   redring auto N             N coroutines, each co_await-ing in a loop (auto-pipelining).
//   ... ignore                 the same with `command<ignore_t>`: no reply string is built.
//   hiredis D                  synchronous pipeline: redisAppendCommand D times, redisGetReply D times.
//   redis-benchmark P          `redis-benchmark -c 1 -P P`, its own rps; CPU from wait4's rusage.
//   server ceiling             `redis-benchmark -c 8 -P 512 -t get -d 3`.
// Typed replies are std::optional<std::string> (c.get, c.set) and are compared with the expected
// value (GET) or "OK" (SET); raw requests compare the node; hiredis compares the reply object;
// ignore_t replies are only checked not to be errors.
//
// Measured per row: ops/s over a window of >= --seconds after a warm-up, client CPU (getrusage
// RUSAGE_SELF user+sys over the window), heap allocations per command over the window (malloc is
// interposed, so C and C++ allocations both count), loop turns (= io_uring_enter calls) per command.
// Every row runs --reps times, rows shuffled within each repetition; medians are reported.
#include "client/client.hpp"
#include "client/detached.hpp"
#include "net/loop.hpp"
#include "resp/node.hpp"
#include "resp/writer.hpp"

#include <hiredis/hiredis.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>  // under `valgrind --tool=callgrind --instr-atstart=no`: only windows count
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#include <arpa/inet.h>
#include <execinfo.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

// --- Allocation counter: malloc, calloc and realloc are interposed (operator new calls malloc), so
// every heap allocation of the process counts: the library's, the coroutine frames', hiredis'.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
}
namespace {
std::atomic<std::uint64_t> g_allocations{0};
// --trace-allocs N: the first N allocations inside measurement windows print a backtrace.
std::atomic<int> g_trace_left{0};
std::atomic<bool> g_in_window{false}, g_tracing{false};
inline void count_allocation() noexcept {
  g_allocations.store(g_allocations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (g_in_window.load(std::memory_order_relaxed) && g_trace_left.load(std::memory_order_relaxed) > 0 &&
      !g_tracing.exchange(true)) {
    g_trace_left.fetch_sub(1);
    void* frames[24];
    const int n = ::backtrace(frames, 24);
    static const char head[] = "client_bench: allocation in a measurement window:\n";
    [[maybe_unused]] auto ignored = ::write(2, head, sizeof head - 1);
    ::backtrace_symbols_fd(frames, n, 2);
    g_tracing.store(false);
  }
}
}  // namespace
extern "C" {
void* malloc(std::size_t n) noexcept {
  count_allocation();
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
  count_allocation();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) noexcept {
  count_allocation();
  return __libc_realloc(p, n);
}
void free(void* p) noexcept { __libc_free(p); }
}

namespace {

namespace client = redring::client;
namespace net = redring::net;
namespace resp = redring::resp;
using namespace std::chrono_literals;

[[noreturn]] void die(const std::string& why) { throw std::runtime_error(why); }

double now_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double seconds_of(const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6; }
double cpu_of(const rusage& u) { return seconds_of(u.ru_utime) + seconds_of(u.ru_stime); }

// --- Settings --------------------------------------------------------------------------------------

struct settings {
  bool tcp = false;
  bool cluster = false;          // --cluster: the server serves all 16384 slots; adds "redring cluster" rows
  double seconds = 1.0;          // measured window of each row (at least)
  int reps = 3;
  int server_cpu = 0, client_cpu = 1;
  unsigned timeout_s = 1500;     // the whole run; the server is killed when it passes
  std::string json;              // --json FILE
  std::vector<std::string> filters;  // rows whose name contains one of these (all if empty)
  std::vector<std::size_t> sizes = {3, 100};
  std::vector<std::string> cmds = {"GET", "SET"};
  std::uint64_t seed = 1;
};
settings g_set;

// --- Children: the server and redis-benchmark. Killed on any exit, the watchdog included. ----------

volatile pid_t g_server_pid = -1;
volatile pid_t g_child_pid = -1;   // a running redis-benchmark
char g_dir[64] = {};               // the server's directory
char g_sock[128] = {};
char g_log[128] = {};

void kill_children() noexcept {
  if (g_child_pid > 0) ::kill(g_child_pid, SIGKILL);
  if (g_server_pid > 0) ::kill(g_server_pid, SIGKILL);
}

void remove_dir() noexcept {  // async-signal-safe
  if (g_sock[0] != 0) ::unlink(g_sock);
  if (g_log[0] != 0) ::unlink(g_log);
  if (g_dir[0] != 0) ::rmdir(g_dir);
}

extern "C" void on_fatal_signal(int sig) {
  kill_children();
  remove_dir();
  const char* msg = sig == SIGALRM ? "client_bench: watchdog expired, server killed\n" : "client_bench: interrupted, server killed\n";
  [[maybe_unused]] auto ignored = ::write(2, msg, std::strlen(msg));
  ::_exit(3);
}

// fork + exec with stdout to `out_fd` (or /dev/null) and stderr to /dev/null; the child dies with us.
pid_t spawn(const std::vector<std::string>& args, int out_fd) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(out_fd >= 0 ? out_fd : null, 1);
    ::dup2(null, 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

std::string join(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) {
    if (!s.empty()) s += ' ';
    s += a.empty() ? "\"\"" : a;
  }
  return s;
}

int free_tcp_port() {
  // A cluster node also listens on port + 10000 (its bus): draw below 55536, where that exists.
  for (int attempt = 0; g_set.cluster && attempt < 1000; ++attempt) {
    const int p = 20000 + static_cast<int>(static_cast<long long>(now_s() * 1e6) % 12000);
    bool free = true;
    for (const int q : {p, p + 10000}) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<std::uint16_t>(q));
      free = free && fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      if (fd >= 0) ::close(fd);
    }
    if (free) return p;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    die("cannot find a free TCP port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

struct server {
  std::string dir, sock;
  int port = 0;
  std::vector<std::string> command;

  void start() {
    char tmpl[] = "/tmp/redring-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) die("mkdtemp failed");
    dir = tmpl;
    std::snprintf(g_dir, sizeof g_dir, "%s", dir.c_str());
    std::snprintf(g_log, sizeof g_log, "%s/redis.log", dir.c_str());
    command = {"taskset", "-c", std::to_string(g_set.server_cpu), "redis-server"};
    if (g_set.tcp) {
      port = free_tcp_port();
      command.insert(command.end(), {"--port", std::to_string(port), "--bind", "127.0.0.1"});
    } else {
      sock = dir + "/s.sock";
      std::snprintf(g_sock, sizeof g_sock, "%s", sock.c_str());
      command.insert(command.end(), {"--port", "0", "--unixsocket", sock});
    }
    command.insert(command.end(), {"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", g_log});
    if (g_set.cluster) command.insert(command.end(), {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"});
    g_server_pid = spawn(command, -1);
    const double deadline = now_s() + 10;
    while (now_s() < deadline) {
      int status = 0;
      if (::waitpid(g_server_pid, &status, WNOHANG) == g_server_pid) {
        g_server_pid = -1;
        die("redis-server exited at start: " + join(command));
      }
      if (redisContext* c = connect_hiredis()) {
        const bool ok = c->err == 0 && (!g_set.cluster || serve_every_slot(c));
        redisFree(c);
        if (ok) return;
      }
      ::usleep(5000);
    }
    die("redis-server did not start within 10 s");
  }

  void stop() noexcept {
    if (g_server_pid > 0) {
      const pid_t pid = g_server_pid;
      ::kill(pid, SIGTERM);
      bool gone = false;
      for (int i = 0; i < 300 && !gone; ++i) {
        gone = ::waitpid(pid, nullptr, WNOHANG) == pid;
        if (!gone) ::usleep(10000);
      }
      if (!gone) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
      g_server_pid = -1;
    }
    remove_dir();
  }

  // A one-node cluster: the server takes every slot and waits until it says the cluster is ok.
  static bool serve_every_slot(redisContext* c) {
    if (auto* r = static_cast<redisReply*>(redisCommand(c, "CLUSTER ADDSLOTSRANGE 0 16383"))) freeReplyObject(r);
    for (int i = 0; i < 200; ++i) {
      auto* info = static_cast<redisReply*>(redisCommand(c, "CLUSTER INFO"));
      const bool ok = info != nullptr && info->type == REDIS_REPLY_STRING && std::strstr(info->str, "cluster_state:ok") != nullptr;
      if (info != nullptr) freeReplyObject(info);
      if (ok) return true;
      ::usleep(20000);
    }
    return false;
  }
  [[nodiscard]] redisContext* connect_hiredis() const {
    return g_set.tcp ? redisConnect("127.0.0.1", port) : redisConnectUnix(sock.c_str());
  }
  [[nodiscard]] client::options client_options() const {
    client::options o;
    if (g_set.tcp) {
      o.port = static_cast<std::uint16_t>(port);
    } else {
      o.unix_path = sock;
    }
    return o;
  }
  // redis-benchmark's address arguments.
  [[nodiscard]] std::vector<std::string> bench_address() const {
    if (g_set.tcp) return {"-h", "127.0.0.1", "-p", std::to_string(port)};
    return {"-s", sock};
  }
};
server g_server;

// --- Measurement -----------------------------------------------------------------------------------

struct snapshot {
  double wall = 0, cpu = 0, user = 0;
  std::uint64_t allocs = 0;
};

snapshot take_snapshot() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  snapshot s;
  s.allocs = g_allocations.load(std::memory_order_relaxed);
  s.cpu = cpu_of(u);
  s.user = seconds_of(u.ru_utime);
  s.wall = now_s();
  return s;
}

// One measurement of one row. Per-command figures; negative: not measured for this client.
struct sample {
  double ops_s = 0, cpu_us = 0, user_us = 0, allocs = -1, turns = -1;
  std::uint64_t ops = 0, alloc_count = 0;
  double seconds = 0;
};

// Counts completed commands (every completion calls tick()). The window opens at the `warm_ops`-th
// completion and closes, raising `stop`, at the first multiple of 64 completions past `min_ops` once it
// lasted `seconds`. Clients stop issuing when `stop` is up, so `concurrency` commands stay outstanding
// for the whole window.
struct meter {
  std::uint64_t warm_ops, min_ops;
  double seconds;
  std::uint64_t done = 0, base = 0, errors = 0;
  std::uint64_t turns = 0, turns_base = 0;  // loop turns, counted by the driver
  bool measuring = false, stop = false;
  snapshot start, end;
  std::uint64_t window_ops = 0, window_turns = 0;

  explicit meter(std::uint64_t concurrency)
      : warm_ops(std::max<std::uint64_t>(3 * concurrency, 5000)),
        min_ops(std::max<std::uint64_t>(2 * concurrency, 1000)),
        seconds(g_set.seconds) {}

  void tick() {
    ++done;
    if (!measuring) {
      if (!stop && done == warm_ops) {
        measuring = true;
        base = done;
        turns_base = turns;
        start = take_snapshot();
        g_in_window.store(true, std::memory_order_relaxed);
        CALLGRIND_START_INSTRUMENTATION;
      }
      return;
    }
    const std::uint64_t n = done - base;
    if ((n & 63) != 0 || n < min_ops || now_s() - start.wall < seconds) return;
    CALLGRIND_STOP_INSTRUMENTATION;
    end = take_snapshot();
    g_in_window.store(false, std::memory_order_relaxed);
    window_ops = n;
    window_turns = turns - turns_base;
    measuring = false;
    stop = true;
  }

  [[nodiscard]] sample result(bool with_turns) const {
    if (!stop || window_ops == 0) die("the measurement window did not close");
    sample s;
    s.ops = window_ops;
    s.seconds = end.wall - start.wall;
    const double n = static_cast<double>(window_ops);
    s.ops_s = n / s.seconds;
    s.cpu_us = (end.cpu - start.cpu) * 1e6 / n;
    s.user_us = (end.user - start.user) * 1e6 / n;
    s.alloc_count = end.allocs - start.allocs;
    s.allocs = static_cast<double>(s.alloc_count) / n;
    if (with_turns) s.turns = static_cast<double>(window_turns) / n;
    return s;
  }
};

// --- Rows ------------------------------------------------------------------------------------------

enum class impl { coro, coro_ignore, raw, raw_loop, hiredis, redis_benchmark, ceiling };

struct row {
  std::string cmd;         // "GET" or "SET"
  std::size_t size = 0;    // value bytes
  impl kind = impl::coro;
  std::uint64_t depth = 1; // commands outstanding: coroutines, raw requests, pipeline depth
  std::string label;       // "redring auto 1k ignore"
  std::vector<sample> samples;
  std::uint64_t bench_n = 0;  // redis-benchmark -n, set by a calibration run
  std::vector<std::string> command;  // the last redis-benchmark command line
  bool cluster = false;    // redring in cluster mode (same server: the routing's cost alone)

  [[nodiscard]] std::string name() const {
    return kind == impl::ceiling ? label : cmd + " d=" + std::to_string(size) + " " + label;
  }
  [[nodiscard]] bool is_redring() const { return kind == impl::coro || kind == impl::coro_ignore || kind == impl::raw; }
};

const std::string g_key = "key:__rand_int__";  // redis-benchmark's key without -r, so every client does the same work
std::string value_of(std::size_t size) { return std::string(size, 'x'); }  // redis-benchmark's -d payload

// --- redring ---------------------------------------------------------------------------------------

struct context {
  client::client& c;
  meter& m;
  std::string_view key, value;
  std::uint64_t alive = 0;  // coroutines or raw requests still running
};

client::detached co_get(context& x) {
  while (!x.m.stop) {
    const auto r = co_await x.c.get(x.key);
    if (!r || !*r || **r != x.value) ++x.m.errors;
    x.m.tick();
  }
  --x.alive;
}

client::detached co_set(context& x) {
  while (!x.m.stop) {
    const auto r = co_await x.c.set(x.key, x.value);
    if (!r || !*r || **r != "OK") ++x.m.errors;
    x.m.tick();
  }
  --x.alive;
}

client::detached co_get_ignore(context& x) {
  while (!x.m.stop) {
    const auto r = co_await x.c.command<resp::ignore_t>("GET", x.key);
    if (!r) ++x.m.errors;
    x.m.tick();
  }
  --x.alive;
}

client::detached co_set_ignore(context& x) {
  while (!x.m.stop) {
    const auto r = co_await x.c.command<resp::ignore_t>("SET", x.key, x.value);
    if (!r) ++x.m.errors;
    x.m.tick();
  }
  --x.alive;
}

// A raw request: encodes its command, checks its reply node, and resubmits itself from on_done.
struct raw_command : client::request {
  context* x = nullptr;
  bool ok = false;
};

// The arguments by position, as a request may name them (a cluster client routes by them).
template <bool Set>
bool raw_argument(const client::request& r, std::size_t i, std::string_view& out) {
  const context& x = *static_cast<const raw_command&>(r).x;
  if (i == 0) out = Set ? "SET" : "GET";
  else if (i == 1) out = x.key;
  else if (Set && i == 2) out = x.value;
  else return false;
  return true;
}

template <bool Set>
void raw_encode(client::request& r, resp::writer& w) {
  const context& x = *static_cast<raw_command&>(r).x;
  if constexpr (Set) {
    w.command("SET", x.key, x.value);
  } else {
    w.command("GET", x.key);
  }
}

template <bool Set>
void raw_node(client::request& r, const resp::node& n) {
  auto& self = static_cast<raw_command&>(r);
  if constexpr (Set) {
    self.ok = n.data_type == resp::type::simple_string && n.value == "OK";
  } else {
    self.ok = n.data_type == resp::type::blob_string && n.value == self.x->value;
  }
}

void raw_done(client::request& r, std::error_code ec) {
  auto& self = static_cast<raw_command&>(r);
  context& x = *self.x;
  if (ec || !self.ok) ++x.m.errors;
  self.ok = false;
  x.m.tick();
  if (!x.m.stop) {
    x.c.submit(self);
  } else {
    --x.alive;
  }
}

// Runs loop turns until `done()`; counts them into `m`. Fails after `limit_s` seconds.
template <class Done>
void drive(net::loop& l, meter* m, Done done, double limit_s, const std::string& what) {
  const double deadline = now_s() + limit_s;
  for (std::uint64_t turn = 0; !done(); ++turn) {
    if ((turn & 63) == 0 && now_s() > deadline) die(what + ": timed out");
    l.run_once(10ms);
    if (m != nullptr) ++m->turns;
  }
}

sample run_redring(const row& r) {
  const std::string value = value_of(r.size);
  const bool set = r.cmd == "SET";
  net::loop loop;
  client::options opts = g_server.client_options();
  opts.cluster.enabled = r.cluster;
  client::client c(loop, opts);
  c.start();
  drive(loop, nullptr, [&] { return r.cluster ? c.cluster()->ready() : c.conn().state() == client::connection_state::ready; }, 5,
        r.name() + " connect");
  meter m(r.depth);
  context x{c, m, g_key, value};
  std::vector<raw_command> raws(r.kind == impl::raw ? r.depth : 0);
  for (std::uint64_t i = 0; i < r.depth; ++i) {
    ++x.alive;
    switch (r.kind) {
      case impl::coro: set ? co_set(x) : co_get(x); break;
      case impl::coro_ignore: set ? co_set_ignore(x) : co_get_ignore(x); break;
      case impl::raw: {
        raw_command& q = raws[i];
        q.x = &x;
        q.encode = set ? &raw_encode<true> : &raw_encode<false>;
        q.argument = set ? &raw_argument<true> : &raw_argument<false>;
        q.on_node = set ? &raw_node<true> : &raw_node<false>;
        q.on_done = &raw_done;
        q.borrows_arguments = true;  // key and value outlive every request
        q.key = x.key;               // the only key, as the typed helpers name it (request::key)
        c.submit(q);
        break;
      }
      default: die("not a redring row");
    }
  }
  drive(loop, &m, [&] { return m.stop && x.alive == 0; }, 60 + 3 * g_set.seconds, r.name());
  if (m.errors != 0) die(r.name() + ": " + std::to_string(m.errors) + " wrong or failed replies");
  return m.result(true);
}

// --- hiredis ---------------------------------------------------------------------------------------

sample run_hiredis(const row& r) {
  const std::string value = value_of(r.size);
  const bool set = r.cmd == "SET";
  redisContext* c = g_server.connect_hiredis();
  if (c == nullptr || c->err != 0) die("hiredis cannot connect");
  meter m(r.depth);
  const double deadline = now_s() + 60 + 3 * g_set.seconds;
  while (!m.stop) {
    for (std::uint64_t i = 0; i < r.depth; ++i) {
      const int rc = set ? redisAppendCommand(c, "SET %b %b", g_key.data(), g_key.size(), value.data(), value.size())
                         : redisAppendCommand(c, "GET %b", g_key.data(), g_key.size());
      if (rc != REDIS_OK) die("redisAppendCommand failed");
    }
    for (std::uint64_t i = 0; i < r.depth; ++i) {
      void* p = nullptr;
      if (redisGetReply(c, &p) != REDIS_OK || p == nullptr) die(std::string("redisGetReply: ") + c->errstr);
      const auto* reply = static_cast<const redisReply*>(p);
      const bool ok = set ? reply->type == REDIS_REPLY_STATUS && std::string_view(reply->str, reply->len) == "OK"
                          : reply->type == REDIS_REPLY_STRING && std::string_view(reply->str, reply->len) == value;
      if (!ok) ++m.errors;
      freeReplyObject(p);
      m.tick();
    }
    if (now_s() > deadline) die(r.name() + ": timed out");
  }
  redisFree(c);
  if (m.errors != 0) die(r.name() + ": " + std::to_string(m.errors) + " wrong replies");
  return m.result(false);
}

// --- the floor: a raw loop ------------------------------------------------------------------------

// What a client cannot beat on this machine: one blocking socket, `depth` copies of one pre-built
// request written at once, then read until the exact bytes of `depth` replies are back (compared with
// the expected bytes, so nothing goes unchecked). No parser, no encoder, no event loop.
sample run_raw_loop(const row& r) {
  const std::string value = value_of(r.size);
  const bool set = r.cmd == "SET";
  resp::writer w;
  if (set) {
    w.command("SET", g_key, value);
  } else {
    w.command("GET", g_key);
  }
  const std::string one(w.data());
  const std::string reply = set ? std::string("+OK\r\n") : "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  std::string requests, expected;
  for (std::uint64_t i = 0; i < r.depth; ++i) {
    requests += one;
    expected += reply;
  }
  const int fd = g_set.tcp ? ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("raw loop: socket failed");
  int rc = -1;
  if (g_set.tcp) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(g_server.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    const int one_flag = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_flag, sizeof one_flag);
  } else {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", g_server.sock.c_str());
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  if (rc != 0) die("raw loop: connect failed");
  std::string in(expected.size(), '\0');
  meter m(r.depth);
  const double deadline = now_s() + 60 + 3 * g_set.seconds;
  while (!m.stop) {
    for (std::size_t off = 0; off < requests.size();) {
      const ssize_t n = ::write(fd, requests.data() + off, requests.size() - off);
      if (n <= 0) die("raw loop: write failed");
      off += static_cast<std::size_t>(n);
    }
    for (std::size_t got = 0; got < in.size();) {
      const ssize_t n = ::read(fd, in.data() + got, in.size() - got);
      if (n <= 0) die("raw loop: read failed");
      got += static_cast<std::size_t>(n);
    }
    if (in != expected) ++m.errors;
    for (std::uint64_t i = 0; i < r.depth; ++i) m.tick();
    if (now_s() > deadline) die(r.name() + ": timed out");
  }
  ::close(fd);
  if (m.errors != 0) die(r.name() + ": " + std::to_string(m.errors) + " wrong replies");
  return m.result(false);
}

// --- redis-benchmark -------------------------------------------------------------------------------

struct child_result {
  std::string out;
  rusage usage{};
  int status = 0;
};

// Runs a command with a time limit; its stdout and rusage (wait4).
child_result run_child(const std::vector<std::string>& args, double limit_s) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) die("pipe failed");
  child_result res;
  g_child_pid = spawn(args, p[1]);
  ::close(p[1]);
  const double deadline = now_s() + limit_s;
  char buf[4096];
  for (;;) {
    pollfd pfd{p[0], POLLIN, 0};
    if (::poll(&pfd, 1, 100) > 0) {
      const ssize_t n = ::read(p[0], buf, sizeof buf);
      if (n > 0) {
        res.out.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0 || errno != EINTR) break;
    }
    if (now_s() > deadline) {
      ::kill(g_child_pid, SIGKILL);
      ::close(p[0]);
      ::wait4(g_child_pid, &res.status, 0, &res.usage);
      g_child_pid = -1;
      die("timed out: " + join(args));
    }
  }
  ::close(p[0]);
  ::wait4(g_child_pid, &res.status, 0, &res.usage);
  g_child_pid = -1;
  if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) die("failed: " + join(args));
  return res;
}

sample run_redis_benchmark(row& r, std::uint64_t n) {
  const bool ceiling = r.kind == impl::ceiling;
  const std::string test = ceiling ? "get" : (r.cmd == "SET" ? "set" : "get");
  std::vector<std::string> args = {"taskset", "-c", std::to_string(g_set.client_cpu), "redis-benchmark"};
  for (auto& a : g_server.bench_address()) args.push_back(a);
  args.insert(args.end(), {"-t", test, "-d", std::to_string(ceiling ? 3 : r.size), "-c", ceiling ? "8" : "1", "-P",
                           std::to_string(r.depth), "-n", std::to_string(n), "--csv"});
  const double t0 = now_s();
  const child_result res = run_child(args, 120);
  const double wall = now_s() - t0;
  r.command = args;
  const std::string prefix = "\"" + std::string(test == "set" ? "SET" : "GET") + "\",\"";
  const auto at = res.out.find(prefix);
  if (at == std::string::npos) die("no " + prefix + " line in redis-benchmark's output: " + res.out);
  sample s;
  s.ops = n;
  s.ops_s = std::strtod(res.out.c_str() + at + prefix.size(), nullptr);
  s.seconds = wall;
  s.cpu_us = cpu_of(res.usage) * 1e6 / static_cast<double>(n);
  s.user_us = seconds_of(res.usage.ru_utime) * 1e6 / static_cast<double>(n);
  if (s.ops_s <= 0) die("cannot parse redis-benchmark's rps: " + res.out);
  return s;
}

sample run_benchmark_row(row& r) {
  const std::uint64_t clients = r.kind == impl::ceiling ? 8 : 1;
  const std::uint64_t batch = clients * r.depth;
  if (r.bench_n == 0) {
    // Calibration (and warm-up): a short run sets -n for about --seconds.
    const std::uint64_t n0 = std::min<std::uint64_t>(1'000'000, std::max<std::uint64_t>(10'000, 5'000 * r.depth));
    const sample cal = run_redis_benchmark(r, n0);
    const auto want = static_cast<std::uint64_t>(cal.ops_s * g_set.seconds);
    r.bench_n = std::clamp<std::uint64_t>((want + batch - 1) / batch * batch, 4 * batch, 200'000'000);
  }
  return run_redis_benchmark(r, r.bench_n);
}

// --- Statistics and output -------------------------------------------------------------------------

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 != 0 ? v[h] : (v[h - 1] + v[h]) / 2;
}

struct stats {
  double ops_s = NAN, cpu_us = NAN, user_us = NAN, allocs = NAN, turns = NAN, alloc_count = NAN;
};

stats medians(const row& r) {
  std::vector<double> ops, cpu, user, allocs, turns, alloc_count;
  for (const sample& s : r.samples) {
    ops.push_back(s.ops_s);
    cpu.push_back(s.cpu_us);
    user.push_back(s.user_us);
    if (s.allocs >= 0) allocs.push_back(s.allocs), alloc_count.push_back(static_cast<double>(s.alloc_count));
    if (s.turns >= 0) turns.push_back(s.turns);
  }
  return {median(ops), median(cpu), median(user), median(allocs), median(turns), median(alloc_count)};
}

std::string fmt(const char* f, double v) {
  if (std::isnan(v)) return "–";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string fmt_ops(double v) {
  if (std::isnan(v)) return "–";
  return v >= 1e6 ? fmt("%.2f M", v / 1e6) : fmt("%.1f k", v / 1e3);
}

// Allocations per command; a handful in a whole window (buffer growth, not per command) shows its count.
std::string fmt_allocs(const stats& m) {
  if (std::isnan(m.allocs)) return "–";
  if (m.allocs == 0) return "0";
  if (m.allocs < 1e-3) return fmt("%.0f in window", m.alloc_count);
  return fmt("%.3g", m.allocs);
}

std::string fmt_ratio(double x) { return std::isnan(x) ? "n/a" : x < 1 ? fmt("%.3f×", x) : fmt("%.2f×", x); }

struct target {
  std::string name, detail;
  double ratio = NAN;  // measured / target, oriented so that >= 1 passes
  bool pass = false;
};

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') o += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) {
      o += ' ';
      continue;
    }
    o += ch;
  }
  return o;
}

std::string json_num(double v) { return std::isnan(v) || v < 0 ? "null" : fmt("%.6g", v); }

std::string impl_name(impl k) {
  switch (k) {
    case impl::coro: return "redring_coroutine";
    case impl::coro_ignore: return "redring_coroutine_ignore";
    case impl::raw: return "redring_raw_request";
    case impl::raw_loop: return "raw_loop";
    case impl::hiredis: return "hiredis";
    case impl::redis_benchmark: return "redis-benchmark";
    case impl::ceiling: return "server_ceiling";
  }
  return "?";
}

const row* find_row(const std::vector<row>& rows, const std::string& cmd, std::size_t size, const std::string& label) {
  for (const row& r : rows) {
    if (r.kind != impl::ceiling && r.cmd == cmd && r.size == size && r.label == label && !r.samples.empty()) return &r;
  }
  return nullptr;
}

std::vector<target> evaluate(const std::vector<row>& rows) {
  std::vector<target> out;
  // 1. client CPU <= 0.10 us/op at depth >= 128 (every redring row).
  {
    target t{"redring client CPU ≤ 0.10 µs/op at depth ≥ 128", "", NAN, false};
    const row* worst = nullptr;
    double worst_cpu = -1;
    for (const row& r : rows) {
      if (!r.is_redring() || r.depth < 128 || r.samples.empty()) continue;
      const double cpu = medians(r).cpu_us;
      if (cpu > worst_cpu) worst_cpu = cpu, worst = &r;
    }
    if (worst != nullptr) {
      t.ratio = 0.10 / worst_cpu;
      t.pass = worst_cpu <= 0.10;
      t.detail = "worst: " + worst->name() + " " + fmt("%.3f µs/op", worst_cpu);
    }
    out.push_back(t);
  }
  // 2. One loop reaches >= 0.9x the server's ceiling (GET d=3).
  {
    target t{"one loop ≥ 0.9× server ceiling (GET d=3)", "", NAN, false};
    const row* ceiling = nullptr;
    const row* best = nullptr;
    double best_ops = -1;
    for (const row& r : rows) {
      if (r.kind == impl::ceiling && !r.samples.empty()) ceiling = &r;
      if (r.is_redring() && r.cmd == "GET" && r.size == 3 && !r.samples.empty() && medians(r).ops_s > best_ops) {
        best_ops = medians(r).ops_s, best = &r;
      }
    }
    if (ceiling != nullptr && best != nullptr) {
      const double c = medians(*ceiling).ops_s;
      t.ratio = best_ops / c / 0.9;
      t.pass = best_ops >= 0.9 * c;
      t.detail = best->name() + " " + fmt_ops(best_ops) + "/s vs ceiling " + fmt_ops(c) + "/s = " + fmt_ratio(best_ops / c);
    }
    out.push_back(t);
  }
  for (const std::string& cmd : g_set.cmds) {
    for (std::size_t size : g_set.sizes) {
      const std::string combo = cmd + " d=" + std::to_string(size);
      // 3. Auto-pipelined >= 0.9x explicit (the best explicit depth).
      {
        target t{combo + ": auto-pipelined ≥ 0.9× explicit", "", NAN, false};
        double explicit_best = -1;
        std::string explicit_name;
        for (const row& r : rows) {
          if (r.kind == impl::raw && r.cmd == cmd && r.size == size && !r.samples.empty() && medians(r).ops_s > explicit_best) {
            explicit_best = medians(r).ops_s, explicit_name = r.label;
          }
        }
        double worst = NAN;
        std::string worst_name;
        for (const row& r : rows) {
          if ((r.kind != impl::coro && r.kind != impl::coro_ignore) || r.depth < 1000 || r.cmd != cmd || r.size != size ||
              r.samples.empty()) {
            continue;
          }
          const double x = medians(r).ops_s / explicit_best;
          if (std::isnan(worst) || x < worst) worst = x, worst_name = r.label;
        }
        if (explicit_best > 0 && !std::isnan(worst)) {
          t.ratio = worst / 0.9;
          t.pass = worst >= 0.9;
          t.detail = "worst: " + worst_name + " / " + explicit_name + " = " + fmt_ratio(worst);
        }
        out.push_back(t);
      }
      // 4. One at a time: >= 1.2x hiredis ops/s with <= 0.6x its CPU per op.
      {
        target t{combo + ": one-at-a-time ≥ 1.2× hiredis ops/s, ≤ 0.6× its CPU/op", "", NAN, false};
        const row* rr = find_row(rows, cmd, size, "redring 1");
        const row* hi = find_row(rows, cmd, size, "hiredis 1");
        if (rr != nullptr && hi != nullptr) {
          const stats a = medians(*rr), b = medians(*hi);
          const double speed = a.ops_s / b.ops_s, cpu = a.cpu_us / b.cpu_us;
          t.ratio = std::min(speed / 1.2, 0.6 / cpu);
          t.pass = speed >= 1.2 && cpu <= 0.6;
          t.detail = "ops/s " + fmt_ratio(speed) + " (" + (speed >= 1.2 ? "ok" : "MISS") + "), CPU/op " + fmt_ratio(cpu) +
                     " (" + (cpu <= 0.6 ? "ok" : "MISS") + ")";
        }
        out.push_back(t);
      }
    }
  }
  // 5. No allocation per command in steady state: fewer than 1 per 1000 commands counts as buffer
  // growth late in the warm-up, not a per-command allocation (the count is shown).
  {
    target t{"0 allocations per command (steady state)", "", NAN, false};
    std::string offenders, growth;
    bool any = false;
    for (const row& r : rows) {
      if (!r.is_redring() || r.samples.empty()) continue;
      any = true;
      const stats m = medians(r);
      if (m.allocs >= 1e-3) offenders += (offenders.empty() ? "" : "; ") + r.name() + " " + fmt("%.3g/op", m.allocs);
      else if (m.allocs > 0) growth += (growth.empty() ? "" : "; ") + r.name() + " " + fmt("%.0f", m.alloc_count);
    }
    if (any) {
      t.pass = offenders.empty();
      t.ratio = t.pass ? 1 : 0;
      t.detail = t.pass ? "no row allocates per command" : "per command: " + offenders;
      if (!growth.empty()) t.detail += "; growth only (allocations in the whole window): " + growth;
    }
    out.push_back(t);
  }
  return out;
}

void print_tables(const std::vector<row>& rows) {
  std::printf("Medians of %d runs; ops/s, client CPU (user+sys) µs per command, heap allocations per command, "
              "loop turns (io_uring_enter) per command.\n",
              g_set.reps);
  for (const std::string& cmd : g_set.cmds) {
    for (std::size_t size : g_set.sizes) {
      bool header = false;
      for (const row& r : rows) {
        if (r.kind == impl::ceiling || r.cmd != cmd || r.size != size || r.samples.empty()) continue;
        if (!header) {
          std::printf("\n%s, %zu-byte values:\n\n| client | ops/s | CPU µs/op | allocs/op | turns/op |\n|---|---|---|---|---|\n",
                      cmd.c_str(), size);
          header = true;
        }
        const stats m = medians(r);
        std::printf("| %s | %s | %s | %s | %s |\n", r.label.c_str(), fmt_ops(m.ops_s).c_str(), fmt("%.3f", m.cpu_us).c_str(),
                    fmt_allocs(m).c_str(), fmt("%.3f", m.turns).c_str());
      }
    }
  }
  for (const row& r : rows) {
    if (r.kind != impl::ceiling || r.samples.empty()) continue;
    const stats m = medians(r);
    std::printf("\nServer ceiling (redis-benchmark -c 8 -P 512 -t get -d 3): %s ops/s, %s µs CPU/op.\n",
                fmt_ops(m.ops_s).c_str(), fmt("%.3f", m.cpu_us).c_str());
  }
}

void print_targets(const std::vector<target>& ts) {
  std::printf("\n| target | result | ratio to target |\n|---|---|---|\n");
  for (const target& t : ts) {
    std::printf("| %s | %s%s%s | %s |\n", t.name.c_str(), std::isnan(t.ratio) ? "n/a" : t.pass ? "pass" : "MISS",
                t.detail.empty() ? "" : ": ", t.detail.c_str(), fmt_ratio(t.ratio).c_str());
  }
}

void write_json(const std::string& path, const std::vector<row>& rows, const std::vector<target>& ts,
                const std::string& redis_version) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) die("cannot write " + path);
  std::fprintf(f, "{\n  \"context\": {\"transport\": \"%s\", \"server_cpu\": %d, \"client_cpu\": %d, \"seconds\": %g, "
                  "\"reps\": %d, \"redis_version\": \"%s\", \"server_command\": \"%s\", \"time\": %lld},\n  \"rows\": [\n",
               g_set.tcp ? "tcp" : "unix", g_set.server_cpu, g_set.client_cpu, g_set.seconds, g_set.reps,
               json_escape(redis_version).c_str(), json_escape(join(g_server.command)).c_str(),
               static_cast<long long>(::time(nullptr)));
  bool first = true;
  for (const row& r : rows) {
    if (r.samples.empty()) continue;
    const stats m = medians(r);
    std::fprintf(f, "%s    {\"name\": \"%s\", \"cmd\": \"%s\", \"size\": %zu, \"impl\": \"%s\", \"depth\": %llu, ",
                 first ? "" : ",\n", json_escape(r.name()).c_str(), r.kind == impl::ceiling ? "GET" : r.cmd.c_str(),
                 r.kind == impl::ceiling ? std::size_t{3} : r.size, impl_name(r.kind).c_str(),
                 static_cast<unsigned long long>(r.depth));
    if (!r.command.empty()) std::fprintf(f, "\"command\": \"%s\", ", json_escape(join(r.command)).c_str());
    std::fprintf(f, "\"median\": {\"ops_per_s\": %s, \"cpu_us_per_op\": %s, \"user_us_per_op_tick_sampled\": %s, \"allocs_per_op\": %s, \"turns_per_op\": %s}, \"samples\": [",
                 json_num(m.ops_s).c_str(), json_num(m.cpu_us).c_str(), json_num(m.user_us).c_str(), json_num(m.allocs).c_str(),
                 json_num(m.turns).c_str());
    for (std::size_t i = 0; i < r.samples.size(); ++i) {
      const sample& s = r.samples[i];
      std::fprintf(f,
                   "%s{\"ops_per_s\": %s, \"cpu_us_per_op\": %s, \"user_us_per_op_tick_sampled\": %s, \"allocs_per_op\": %s, "
                   "\"allocs\": %s, \"turns_per_op\": %s, \"ops\": %llu, \"seconds\": %s}",
                   i == 0 ? "" : ", ", json_num(s.ops_s).c_str(), json_num(s.cpu_us).c_str(), json_num(s.user_us).c_str(),
                   json_num(s.allocs).c_str(), s.allocs < 0 ? "null" : std::to_string(s.alloc_count).c_str(),
                   json_num(s.turns).c_str(), static_cast<unsigned long long>(s.ops), json_num(s.seconds).c_str());
    }
    std::fprintf(f, "]}");
    first = false;
  }
  std::fprintf(f, "\n  ],\n  \"targets\": [\n");
  for (std::size_t i = 0; i < ts.size(); ++i) {
    std::fprintf(f, "    {\"name\": \"%s\", \"pass\": %s, \"ratio\": %s, \"detail\": \"%s\"}%s\n", json_escape(ts[i].name).c_str(),
                 ts[i].pass ? "true" : "false", json_num(ts[i].ratio).c_str(), json_escape(ts[i].detail).c_str(),
                 i + 1 == ts.size() ? "" : ",");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
}

// --- Main ------------------------------------------------------------------------------------------

std::vector<row> make_rows() {
  std::vector<row> rows;
  for (const std::string& cmd : g_set.cmds) {
    for (std::size_t size : g_set.sizes) {
      auto add = [&](impl k, std::uint64_t depth, std::string label) {
        row r;
        r.cmd = cmd, r.size = size, r.kind = k, r.depth = depth, r.label = std::move(label);
        rows.push_back(std::move(r));
      };
      add(impl::coro, 1, "redring 1");
      add(impl::coro_ignore, 1, "redring 1 ignore");
      for (std::uint64_t d : {16, 128, 1024}) add(impl::raw, d, "redring explicit " + std::to_string(d));
      if (g_set.cluster) {
        for (std::uint64_t d : {16, 128, 1024}) {
          add(impl::raw, d, "redring cluster explicit " + std::to_string(d));
          rows.back().cluster = true;
        }
        add(impl::coro, 1000, "redring cluster auto 1k");  // typed helpers: routed by the key they name
        rows.back().cluster = true;
        add(impl::coro_ignore, 1000, "redring cluster auto 1k ignore");  // command<ignore_t>: the name cache
        rows.back().cluster = true;
      }
      add(impl::coro, 1000, "redring auto 1k");
      add(impl::coro, 100000, "redring auto 100k");
      add(impl::coro_ignore, 1000, "redring auto 1k ignore");
      add(impl::coro_ignore, 100000, "redring auto 100k ignore");
      for (std::uint64_t d : {1, 16, 128, 1024}) add(impl::raw_loop, d, "raw loop " + std::to_string(d));
      for (std::uint64_t d : {1, 16, 128, 1024}) add(impl::hiredis, d, "hiredis " + std::to_string(d));
      for (std::uint64_t d : {1, 16, 128, 1024}) add(impl::redis_benchmark, d, "redis-benchmark " + std::to_string(d));
    }
  }
  row c;
  c.kind = impl::ceiling, c.cmd = "GET", c.size = 3, c.depth = 512, c.label = "server ceiling";
  rows.push_back(std::move(c));
  std::vector<row> chosen;
  for (row& r : rows) {
    bool keep = g_set.filters.empty();
    for (const std::string& f : g_set.filters) {
      const std::string n = r.name();
      if (!f.empty() && f.back() == '$') {  // "...$": the name must end with it
        keep = keep || (n.size() >= f.size() - 1 && n.compare(n.size() - (f.size() - 1), f.size() - 1, f, 0, f.size() - 1) == 0);
      } else {
        keep = keep || n.find(f) != std::string::npos;
      }
    }
    if (keep) chosen.push_back(std::move(r));
  }
  return chosen;
}

void usage() {
  std::fprintf(stderr,
               "usage: client_bench [--tcp] [--cluster] [--json FILE] [--seconds S] [--reps N] [--filter TEXT]... [--sizes 3,100]\n"
               "                    [--cmds GET,SET] [--server-cpu N] [--client-cpu N] [--timeout S] [--seed N] [--trace-allocs N]\n"
               "  --filter keeps the rows whose name contains TEXT (e.g. 'GET d=3 redring', 'ceiling'), or ends with it if it\n"
               "  ends with '$' ('GET d=3 redring auto 1k$'); repeatable.\n");
  std::exit(2);
}

template <class T, class F>
std::vector<T> split(const std::string& s, F conv) {
  std::vector<T> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    out.push_back(conv(s.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return out;
}

void parse_args(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--tcp") g_set.tcp = true;
    else if (a == "--cluster") g_set.tcp = g_set.cluster = true;
    else if (a == "--json") g_set.json = next();
    else if (a == "--seconds") g_set.seconds = std::stod(next());
    else if (a == "--reps") g_set.reps = std::stoi(next());
    else if (a == "--filter") g_set.filters.push_back(next());
    else if (a == "--sizes") g_set.sizes = split<std::size_t>(next(), [](const std::string& x) { return std::stoul(x); });
    else if (a == "--cmds") g_set.cmds = split<std::string>(next(), [](const std::string& x) { return x; });
    else if (a == "--server-cpu") g_set.server_cpu = std::stoi(next());
    else if (a == "--client-cpu") g_set.client_cpu = std::stoi(next());
    else if (a == "--timeout") g_set.timeout_s = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--seed") g_set.seed = std::stoull(next());
    else if (a == "--trace-allocs") g_trace_left = std::stoi(next());
    else usage();
  }
  for (const std::string& c : g_set.cmds) {
    if (c != "GET" && c != "SET") usage();
  }
  if (g_set.reps < 1 || g_set.seconds <= 0) usage();
}

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) die("cannot pin to CPU " + std::to_string(cpu) + ": " + std::strerror(errno));
}

std::string redis_version(redisContext* admin) {
  auto* reply = static_cast<redisReply*>(redisCommand(admin, "INFO server"));
  std::string v = "?";
  if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
    const std::string_view info(reply->str, reply->len);
    const auto at = info.find("redis_version:");
    if (at != std::string_view::npos) v = std::string(info.substr(at + 14, info.find('\r', at) - at - 14));
  }
  if (reply != nullptr) freeReplyObject(reply);
  return v;
}

void preload(redisContext* admin, std::size_t size) {
  const std::string value = value_of(size);
  auto* reply = static_cast<redisReply*>(redisCommand(admin, "SET %b %b", g_key.data(), g_key.size(), value.data(), value.size()));
  if (reply == nullptr || reply->type != REDIS_REPLY_STATUS) die("preloading the key failed");
  freeReplyObject(reply);
}

int run(int argc, char** argv) {
  parse_args(argc, argv);
  for (int s : {SIGALRM, SIGINT, SIGTERM, SIGHUP}) ::signal(s, on_fatal_signal);
  ::signal(SIGPIPE, SIG_IGN);
  ::alarm(g_set.timeout_s);
  {  // the counter must see operator new's allocations
    const std::uint64_t before = g_allocations.load();
    void* p = ::operator new(64);
    ::operator delete(p);
    if (g_allocations.load() == before) die("the malloc counter does not see operator new");
    void* frames[4];
    ::backtrace(frames, 4);  // loads the unwinder now, not inside a window
  }
  pin_to(g_set.client_cpu);
  std::vector<row> rows = make_rows();
  if (rows.empty()) die("no row matches the filters");
  g_server.start();
  std::fprintf(stderr, "server: %s\n", join(g_server.command).c_str());
  redisContext* admin = g_server.connect_hiredis();
  if (admin == nullptr || admin->err != 0) die("cannot connect to the server");
  const std::string version = redis_version(admin);

  std::mt19937_64 rng(g_set.seed);
  std::vector<std::size_t> order(rows.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  const double t0 = now_s();
  for (int rep = 0; rep < g_set.reps; ++rep) {
    std::shuffle(order.begin(), order.end(), rng);  // interleave the rows, as --benchmark_enable_random_interleaving
    for (std::size_t i : order) {
      row& r = rows[i];
      preload(admin, r.kind == impl::ceiling ? 3 : r.size);
      sample s;
      switch (r.kind) {
        case impl::coro:
        case impl::coro_ignore:
        case impl::raw: s = run_redring(r); break;
        case impl::hiredis: s = run_hiredis(r); break;
        case impl::raw_loop: s = run_raw_loop(r); break;
        case impl::redis_benchmark:
        case impl::ceiling: s = run_benchmark_row(r); break;
      }
      r.samples.push_back(s);
      std::fprintf(stderr, "[%5.0f s] rep %d/%d  %-38s %9s/s  CPU %7.3f µs/op  allocs %s  turns/op %s  ops %llu\n",
                   now_s() - t0, rep + 1, g_set.reps, r.name().c_str(), fmt_ops(s.ops_s).c_str(), s.cpu_us,
                   s.allocs < 0 ? "–" : std::to_string(s.alloc_count).c_str(), fmt("%.3f", s.turns < 0 ? NAN : s.turns).c_str(),
                   static_cast<unsigned long long>(s.ops));
    }
  }
  redisFree(admin);
  g_server.stop();

  std::printf("Server: %s (Redis %s), transport %s; client pinned to CPU %d.\n", join(g_server.command).c_str(),
              version.c_str(), g_set.tcp ? "TCP 127.0.0.1" : "Unix socket", g_set.client_cpu);
  print_tables(rows);
  const std::vector<target> ts = evaluate(rows);
  print_targets(ts);
  for (const row& r : rows) {
    if (!r.command.empty() && (r.kind == impl::ceiling || r.label == "redis-benchmark 1")) {
      std::printf("\n`%s`", join(r.command).c_str());
    }
  }
  std::printf("\n");
  if (!g_set.json.empty()) write_json(g_set.json, rows, ts, version);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "client_bench: %s\n", e.what());
    g_server.stop();
    return 1;
  }
}
