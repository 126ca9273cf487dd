// SPDX-License-Identifier: MIT
#include "tools/fuzz/hostile_server.hpp"

#include "resp/reader.hpp"
#include "resp/value.hpp"
#include "resp/writer.hpp"
#include "tools/fuzz/minimiser.hpp"
#include "tools/fuzz/socket.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>

namespace redring::fuzz {
namespace {

using namespace std::string_view_literals;

constexpr std::array simple_texts = {"OK"sv, "PONG"sv, ""sv, "QUEUED"sv, "x\xff\x01y"sv, "a b c"sv};
constexpr std::array error_texts = {"ERR unknown command"sv, "MOVED 3999 127.0.0.1:1"sv, "ASK 1 127.0.0.1:1"sv,
                                    "WRONGTYPE Operation against a key"sv, ""sv, "NOAUTH"sv, "LOADING"sv, "BUSY"sv};
constexpr std::array<std::int64_t, 8> integer_values = {0, 1, -1, 42, INT64_MAX, INT64_MIN, 2147483648, -2147483649};
constexpr std::array double_texts = {"0"sv, "1.5"sv, "-0"sv, "inf"sv, "-inf"sv, "nan"sv, "1e308"sv, "1.7976931348623157e308"sv,
                                     "4.9e-324"sv, "123456789012345678901234567890"sv, "-1.5E+10"sv, "+3"sv};
constexpr std::array big_numbers = {"0"sv, "-1"sv, "3492890328409238509324850943850943825024385"sv,
                                    "-99999999999999999999999999999999999999999999"sv, "+1"sv};
constexpr std::array malformed_replies = {
    "?x\r\n"sv, ":abc\r\n"sv, ":\r\n"sv, "#x\r\n"sv, ",1.2.3\r\n"sv, "$3\r\nabcd\r\n"sv, "_x\r\n"sv,
    ":99999999999999999999\r\n"sv, "$-2\r\n"sv, "*-2\r\n"sv, "=3\r\nabc\r\n"sv, "(12a\r\n"sv, ";3\r\nabc\r\n"sv,
    ".\r\n"sv, "+OK\n"sv, "\r\n"sv, "$3\rabc\r\n"sv, "%1\r\n+a\r\n.\r\n"sv, "*1\r\n"sv, "$5\r\nab"sv};
constexpr std::array oversized = {"$2147483648\r\nabc"sv, "*4294967295\r\n:1\r\n"sv, "$536870913\r\n"sv,
                                  "%1152921504606846976\r\n"sv, "$9223372036854775807\r\nx"sv, "*99999999\r\n"sv};

void random_value(resp::writer& w, rng& r, bool resp3, int depth);

void random_scalar(resp::writer& w, rng& r, bool resp3) {
  const unsigned pick = static_cast<unsigned>(r.below(resp3 || r.chance(20) ? 14 : 7));
  switch (pick) {
    case 0: w.simple_string(r.pick(std::span<const std::string_view>(simple_texts))); break;
    case 1: w.simple_error(r.pick(std::span<const std::string_view>(error_texts))); break;
    case 2: w.integer(r.pick(std::span<const std::int64_t>(integer_values))); break;
    case 3: {
      static constexpr std::array<std::size_t, 6> sizes = {0, 1, 3, 100, 4096, 70000};
      std::string s(sizes[static_cast<std::size_t>(r.below(sizes.size()))], 'v');
      for (auto& c : s) c = static_cast<char>(r.below(256));
      w.blob_string(s);
      break;
    }
    case 4: w.null_bulk(); break;
    case 5: w.null_array(); break;
    case 6: w.blob_string("value"); break;
    case 7: w.null(); break;
    case 8: w.boolean(r.chance(50)); break;
    case 9: w.double_text(r.pick(std::span<const std::string_view>(double_texts))); break;
    case 10: w.big_number(r.pick(std::span<const std::string_view>(big_numbers))); break;
    case 11: w.blob_error(r.pick(std::span<const std::string_view>(error_texts))); break;
    case 12: w.verbatim_string(r.chance(50) ? "txt" : "mkd", r.chance(50) ? "" : "some\r\ntext"); break;
    default: {  // a streamed string
      w.streamed_header(resp::type::blob_string);
      for (std::size_t i = 0, n = r.below(4); i < n; ++i) w.stream_part(std::string(r.between(1, 5), 's'));
      w.stream_end();
    }
  }
}

void random_aggregate(resp::writer& w, rng& r, bool resp3, int depth) {
  static constexpr std::array r3 = {resp::type::array, resp::type::set, resp::type::map, resp::type::push};
  const resp::type t = resp3 || r.chance(20) ? r3[static_cast<std::size_t>(r.below(r3.size()))] : resp::type::array;
  // Long aggregates only at the top: 200 at every level would be 200^4 values.
  const std::uint64_t count = depth == 0 && r.chance(10) ? r.between(10, 200) : r.below(4);
  const std::uint64_t children = count * resp::multiplicity(t);
  const bool streamed = t != resp::type::push && (resp3 || r.chance(10)) && r.chance(15);
  if (streamed) w.streamed_header(t);
  else w.aggregate_header(t, count);
  for (std::uint64_t i = 0; i < children; ++i) random_value(w, r, resp3, depth + 1);
  if (streamed) w.end();
}

void random_value(resp::writer& w, rng& r, bool resp3, int depth) {
  if ((resp3 || r.chance(10)) && r.chance(8)) {  // an attribute in front of any value, at any depth
    w.aggregate_header(resp::type::attribute, 1);
    w.simple_string("key-popularity");
    random_scalar(w, r, resp3);
  }
  if (depth < 4 && r.chance(30)) random_aggregate(w, r, resp3, depth);
  else random_scalar(w, r, resp3);
}

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string replace_all(std::string s, std::string_view what, std::string_view with) {
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size())) {
    s.replace(at, what.size(), with);
  }
  return s;
}

// One chunk of output and when it may go.
struct chunk {
  std::string bytes;
  clock::time_point at;
  bool close = false;  // close the connection once this chunk is out
};

// True if `bytes` are whole, valid replies (default limits), at least one of them not a push: a
// client that got them is owed nothing more (a push alone is out of band, the reply is still owed).
bool complete_replies(std::string_view bytes) {
  resp::reader reader;
  std::array<resp::node, 256> nodes;
  std::size_t pos = 0;
  bool at_start = true, answered = false;
  for (;;) {
    const auto r = reader.read(bytes.substr(pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      if (at_start && nodes[i].depth == 0 && nodes[i].data_type != resp::type::attribute) {
        answered = answered || nodes[i].data_type != resp::type::push;
        at_start = false;
      }
      if (nodes[i].ends_reply) at_start = true;
    }
    pos += r.consumed;
    if (r.state == resp::status::error) return false;
    if (r.state == resp::status::need_more) return answered && pos == bytes.size() && reader.at_reply_boundary();
  }
}

// Splits a reply frame into timed chunks. Bytes that leave a reply open or are invalid are followed
// by a close: a client may rightly wait for the rest forever, and that is not a hang.
std::vector<chunk> schedule(const frame& f, clock::time_point start) {
  std::vector<chunk> out;
  rng r(f.split_seed);
  const std::string& b = f.bytes;
  auto add = [&](std::size_t from, std::size_t to, clock::time_point at) { out.push_back({b.substr(from, to - from), at}); };
  switch (f.how) {
    case delivery::whole: add(0, b.size(), start); break;
    case delivery::bytewise: {
      const std::size_t n = std::min<std::size_t>(b.size(), 64);
      for (std::size_t i = 0; i < n; ++i) add(i, i + 1, start + std::chrono::milliseconds(i));
      if (n < b.size()) add(n, b.size(), start + std::chrono::milliseconds(n));
      break;
    }
    case delivery::chunks:
    case delivery::trickle: {
      auto at = start;
      for (std::size_t pos = 0; pos < b.size();) {
        const std::size_t len = std::min<std::size_t>(b.size() - pos, r.between(1, std::max<std::size_t>(1, b.size() / 3)));
        add(pos, pos + len, at);
        pos += len;
        if (f.how == delivery::trickle && out.size() < 10) at += std::chrono::milliseconds(r.between(2, 20));
      }
      break;
    }
    case delivery::cut:
      add(0, b.empty() ? 0 : static_cast<std::size_t>(r.below(b.size())), start);
      out.back().close = true;
      break;
  }
  if (out.empty()) out.push_back({{}, start});
  if (f.close_after || !complete_replies(b)) out.back().close = true;
  return out;
}

// The handshake commands and their replies; nullopt for a command to fuzz.
std::optional<std::string> handshake(const std::vector<std::string>& cmd, bool& resp3) {
  const std::string name = upper(cmd[0]);
  if (name == "HELLO") {
    const std::string proto = cmd.size() > 1 ? cmd[1] : "2";
    if (proto != "2" && proto != "3") return std::string("-NOPROTO unsupported protocol version\r\n");
    resp3 = proto == "3";
    resp::writer w;
    w.aggregate_header(resp3 ? resp::type::map : resp::type::array, resp3 ? 3 : 6);
    w.blob_string("server");
    w.blob_string("redis");
    w.blob_string("version");
    w.blob_string("7.0.15");
    w.blob_string("proto");
    w.integer(resp3 ? 3 : 2);
    return std::string(w.data());
  }
  const std::string sub = cmd.size() > 1 ? upper(cmd[1]) : "";
  if (name == "AUTH" || name == "SELECT" || name == "READONLY" ||
      (name == "CLIENT" && (sub == "SETNAME" || sub == "SETINFO"))) {
    return std::string("+OK\r\n");
  }
  return std::nullopt;
}

// One accepted connection.
struct peer {
  std::string in;
  std::size_t pos = 0;
  resp::reader reader;
  resp::value_builder builder;
  bool resp3 = false;
  std::deque<chunk> out;
  bool closing = false;  // close once `out` is sent
  clock::time_point busy_until = clock::now();  // a new reply starts after the previous one's last chunk
};

// Parses the commands available in `p.in` (arrays of bulk strings, or inline lines).
std::vector<std::vector<std::string>> take_commands(peer& p) {
  std::vector<std::vector<std::string>> cmds;
  std::array<resp::node, 64> nodes;
  while (p.pos < p.in.size()) {
    if (p.reader.at_reply_boundary() && p.in[p.pos] != '*') {  // inline command
      const std::size_t nl = p.in.find('\n', p.pos);
      if (nl == std::string::npos) break;
      std::string line = p.in.substr(p.pos, nl - p.pos);
      p.pos = nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::vector<std::string> words;
      for (std::size_t at = 0; at < line.size();) {
        const std::size_t sp = std::min(line.find(' ', at), line.size());
        if (sp > at) words.push_back(line.substr(at, sp - at));
        at = sp + 1;
      }
      if (!words.empty()) cmds.push_back(std::move(words));
      continue;
    }
    const auto r = p.reader.read(std::string_view(p.in).substr(p.pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      if (!p.builder.add(nodes[i])) continue;
      const resp::value v = p.builder.take();
      std::vector<std::string> words;
      for (const auto& e : v.elements) words.push_back(e.text);
      if (!words.empty()) cmds.push_back(std::move(words));
    }
    p.pos += r.consumed;
    if (r.state == resp::status::error) {
      p.closing = true;  // a client sending invalid RESP: end it as Redis would
      p.out.push_back({"-ERR Protocol error\r\n", clock::now()});
      break;
    }
    if (r.state == resp::status::need_more) break;
  }
  if (p.pos == p.in.size()) {
    p.in.clear();
    p.pos = 0;
  }
  return cmds;
}

bool sanitizer_report(const std::string& output, std::string& line) {
  for (std::string_view mark : {"ERROR: AddressSanitizer"sv, "ERROR: LeakSanitizer"sv, "runtime error:"sv,
                                "ERROR: ThreadSanitizer"sv, "WARNING: MemorySanitizer"sv}) {
    const std::size_t at = output.find(mark);
    if (at == std::string::npos) continue;
    const std::size_t start = output.rfind('\n', at);
    const std::size_t from = start == std::string::npos ? 0 : start + 1;
    line = output.substr(from, std::min<std::size_t>(output.find('\n', at) - from, 200));
    return true;
  }
  return false;
}

}  // namespace

frame random_reply(rng& r, bool resp3) {
  frame f;
  f.kind = frame_kind::reply;
  f.split_seed = static_cast<std::uint32_t>(r.next());
  resp::writer w(0);
  const unsigned kind = static_cast<unsigned>(r.below(100));
  if (kind < 60) {
    random_value(w, r, resp3, 0);
  } else if (kind < 70) {  // a push (or two) in front of the reply
    for (std::size_t i = 0, n = r.between(1, 2); i < n; ++i) {
      w.aggregate_header(resp::type::push, 3);
      w.blob_string(r.chance(50) ? "message" : "invalidate");
      w.blob_string("ch");
      random_value(w, r, resp3, 2);
    }
    random_value(w, r, resp3, 0);
  } else if (kind < 75) {  // two replies for one command
    random_value(w, r, resp3, 0);
    random_value(w, r, resp3, 0);
  } else if (kind < 82) {  // deep nesting
    static constexpr std::array<std::size_t, 5> depths = {64, 128, 129, 1000, 100000};
    const std::size_t d = depths[static_cast<std::size_t>(r.below(depths.size()))];
    for (std::size_t i = 0; i < d; ++i) w.raw(resp3 && r.chance(30) ? "~1\r\n" : "*1\r\n");
    w.integer(1);
  } else if (kind < 90) {  // an oversized claimed length: the client must not wait for it
    w.raw(r.pick(std::span<const std::string_view>(oversized)));
    f.close_after = true;
  } else {  // invalid bytes
    w.raw(r.pick(std::span<const std::string_view>(malformed_replies)));
    f.close_after = true;
  }
  f.bytes = std::string(w.data());
  static constexpr std::array<delivery, 10> styles = {delivery::whole,   delivery::whole,   delivery::whole,  delivery::whole,
                                                      delivery::bytewise, delivery::bytewise, delivery::chunks, delivery::chunks,
                                                      delivery::trickle, delivery::cut};
  f.how = styles[static_cast<std::size_t>(r.below(styles.size()))];
  if (r.chance(3)) f.close_after = true;
  return f;
}

fuzz_case make_reply_plan(std::uint64_t seed, std::uint64_t index, std::size_t replies) {
  rng r(rng::derive(seed, index));
  fuzz_case plan;
  const bool resp3 = r.chance(50);
  for (std::size_t i = 0; i < replies; ++i) plan.frames.push_back(random_reply(r, resp3));
  return plan;
}

std::unique_ptr<hostile_server> hostile_server::listen(const std::string& unix_path, int port, std::string& why) {
  std::unique_ptr<hostile_server> s(new hostile_server());
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (port == 0) {
    s->path_ = unix_path;
    if (s->path_.empty()) {
      char tmpl[] = "/tmp/redring-fuzz-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) {
        why = std::string("cannot make a temp dir: ") + std::strerror(errno);
        return nullptr;
      }
      s->dir_ = tmpl;
      s->path_ = s->dir_ + "/hostile.sock";
    }
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    un->sun_family = AF_UNIX;
    if (s->path_.size() >= sizeof(un->sun_path)) {
      why = "socket path too long: " + s->path_;
      return nullptr;
    }
    std::memcpy(un->sun_path, s->path_.c_str(), s->path_.size() + 1);
    // Only a stale socket of a server that is gone may be replaced: -s names a server's socket in
    // the other modes, and a file or a live socket given here by mistake must survive.
    if (struct stat st{}; ::lstat(s->path_.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) {
        why = s->path_ + " exists and is not a socket: give a new path for the hostile server";
        s->path_.clear();  // not ours to unlink
        return nullptr;
      }
      // Stale only if nothing listens there (ECONNREFUSED). Non-blocking: a live server whose
      // backlog is full answers EAGAIN at once instead of holding us; that, success, or any other
      // error (EACCES) leaves the path alone.
      const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      const int rc = probe < 0 ? -1 : ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(sockaddr_un));
      const int err = rc == 0 ? 0 : errno;
      if (probe >= 0) ::close(probe);
      if (probe < 0 || err != ECONNREFUSED) {
        why = s->path_ + (err == 0 || err == EAGAIN || err == EINPROGRESS
                              ? " is a live server's socket: give a new path for the hostile server"
                              : " cannot be checked (" + std::string(std::strerror(err)) + "): give a new path for the hostile server");
        s->path_.clear();  // not ours to unlink
        return nullptr;
      }
      ::unlink(s->path_.c_str());
    }
    len = sizeof(sockaddr_un);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<std::uint16_t>(port));
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
    s->port_ = port;
  }
  s->listen_fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (s->listen_fd_ < 0 || ::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(s->listen_fd_, 64) != 0) {
    why = "cannot listen on " + s->describe() + ": " + std::strerror(errno);
    s->path_.clear();  // nothing of ours at the path
    return nullptr;
  }
  return s;
}

hostile_server::~hostile_server() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (!path_.empty()) ::unlink(path_.c_str());
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string hostile_server::describe() const {
  return port_ != 0 ? "127.0.0.1:" + std::to_string(port_) : "unix:" + path_;
}

client_run hostile_server::run(const std::vector<std::string>& argv, const fuzz_case& plan,
                               std::chrono::milliseconds timeout, bool exit_is_finding) {
  client_run result;
  const std::string port = std::to_string(port_);
  std::vector<std::string> args;
  for (const auto& a : argv) args.push_back(replace_all(replace_all(a, "{socket}", path_), "{port}", port));
  int output[2];
  if (::pipe2(output, O_CLOEXEC) != 0) {
    result.found = {finding_kind::none, "pipe failed"};
    return result;
  }
  ::fcntl(output[0], F_SETFL, O_NONBLOCK);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(output[1], 1);
    ::dup2(output[1], 2);
    const int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::setenv("REDRING_FUZZ_SOCKET", path_.c_str(), 1);
    ::setenv("REDRING_FUZZ_PORT", port.c_str(), 1);
    std::vector<char*> cargv;
    for (auto& a : args) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "redring-fuzz: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(output[1]);
  if (pid < 0) {
    ::close(output[0]);
    result.found = {finding_kind::none, "fork failed"};
    return result;
  }
  ::setpgid(pid, pid);  // also from here, so that a kill below cannot miss the group

  std::map<int, peer> peers;
  std::size_t next_reply = 0;
  const auto deadline = clock::now() + timeout;
  int status = 0;
  bool exited = false, output_open = true;
  auto drop = [&](int fd) {
    ::close(fd);
    peers.erase(fd);
  };
  while (!exited) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    const auto now = clock::now();
    if (now >= deadline || interrupted) break;
    // Send what is due.
    auto wake = std::min(deadline, now + std::chrono::milliseconds(5));
    for (auto it = peers.begin(); it != peers.end();) {
      peer& p = it->second;
      bool gone = false;
      while (!p.out.empty() && p.out.front().at <= now) {
        chunk& c = p.out.front();
        const ssize_t n = c.bytes.empty() ? 0 : ::send(it->first, c.bytes.data(), c.bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) {
          gone = true;
          break;
        }
        c.bytes.erase(0, static_cast<std::size_t>(n));
        if (!c.bytes.empty()) break;
        const bool close = c.close;
        p.out.pop_front();
        if (close) {
          gone = true;
          break;
        }
      }
      if (!gone && p.out.empty() && p.closing) gone = true;
      if (!p.out.empty() && !gone) wake = std::min(wake, std::max(now, p.out.front().at));
      if (gone) {
        const int fd = it->first;
        ++it;
        drop(fd);
      } else {
        ++it;
      }
    }
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {output_open ? output[0] : -1, POLLIN, 0}};
    for (auto& [fd, p] : peers) {
      const bool want_out = !p.out.empty() && p.out.front().at <= now;
      fds.push_back({fd, static_cast<short>(POLLIN | (want_out ? POLLOUT : 0)), 0});
    }
    ::poll(fds.data(), fds.size(), poll_timeout(wake));
    if (fds[0].revents & POLLIN) {
      for (int fd; (fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
        peers[fd];
        ++result.connections;
      }
    }
    if (fds[1].revents != 0) {
      char buf[4096];
      const ssize_t n = ::read(output[0], buf, sizeof buf);
      if (n > 0) {
        result.output.append(buf, static_cast<std::size_t>(n));
        if (result.output.size() > 8192) result.output.erase(0, result.output.size() - 4096);
      } else if (n == 0) {
        output_open = false;
      }
    }
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const int fd = fds[i].fd;
      peer& p = peers[fd];
      char buf[65536];
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(fd);
        continue;
      }
      if (n < 0) continue;
      p.in.append(buf, static_cast<std::size_t>(n));
      for (const auto& cmd : take_commands(p)) {
        if (p.closing) break;
        auto start = std::max(clock::now(), p.busy_until);
        if (auto hs = handshake(cmd, p.resp3)) {
          p.out.push_back({std::move(*hs), start});
          continue;
        }
        if (plan.frames.empty()) {
          p.out.push_back({"+OK\r\n", start});
          continue;
        }
        const frame& f = plan.frames[next_reply % plan.frames.size()];
        ++next_reply;
        for (chunk& c : schedule(f, start)) {
          p.busy_until = c.at;
          p.out.push_back(std::move(c));
        }
        if (p.out.back().close) break;  // nothing after a close
      }
    }
  }
  for (auto& [fd, p] : peers) ::close(fd);
  result.replies_used = next_reply;
  if (!exited) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    // Interrupted (Ctrl-C): the run is cut short, not a hang.
    if (!interrupted) result.found = {finding_kind::hang, "the client did not exit within " + std::to_string(timeout.count()) + " ms"};
    result.exit_code = 128 + SIGKILL;
  } else {
    ::kill(-pid, SIGKILL);  // leftovers of the client's group
  }
  // The rest of its output.
  for (char buf[4096];;) {
    const ssize_t n = ::read(output[0], buf, sizeof buf);
    if (n <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(output[0]);
  if (result.output.size() > 4096) result.output.erase(0, result.output.size() - 4096);
  if (!exited) return result;
  std::string line;
  if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
    result.found = {finding_kind::crash, std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                             ::strsignal(WTERMSIG(status)) + ")"};
  } else {
    result.exit_code = WEXITSTATUS(status);
    if (sanitizer_report(result.output, line)) {
      result.found = {finding_kind::crash, "sanitizer report: " + line};
    } else if (result.exit_code != 0 && exit_is_finding) {
      result.found = {finding_kind::exit_status, "exit status " + std::to_string(result.exit_code)};
    }
  }
  return result;
}

finding_record handle_client_finding(hostile_server& server, const fuzz_options& opts, const fuzz_case& plan,
                                     const client_run& run, clock::time_point deadline) {
  finding_record rec;
  rec.kind = run.found.kind;
  rec.detail = run.found.detail;
  fuzz_case best = plan;
  // Replies the client never got cannot matter.
  if (run.replies_used != 0 && run.replies_used < best.frames.size()) best.frames.resize(run.replies_used);
  rec.frames_found = best.frames.size();
  reproduces same = [&](const fuzz_case& c) {
    return server.run(opts.client_argv, c, opts.timeout, opts.exit_is_finding).found.kind == run.found.kind;
  };
  // A hang is a timeout: a reduction sticks only if it hangs --hang-trials runs in a row (every run
  // is a fresh client process, so there is nothing to settle).
  if (run.found.kind == finding_kind::hang) same = confirmed_by_trials(same, [] { return true; }, opts.hang_trials);
  rec.reproduced = same(best);
  if (!rec.reproduced && best.frames.size() != plan.frames.size()) {
    best = plan;
    rec.reproduced = same(best);
  }
  if (!rec.reproduced) best = plan;
  if (rec.reproduced && opts.minimise) {
    minimise_stats ms;
    const auto time = opts.minimise_time * (run.found.kind == finding_kind::hang ? opts.hang_trials : 1);
    best = minimise(std::move(best), same, {.attempts = 2000, .time = time, .deadline = deadline}, ms);
    rec.attempts = ms.attempts;
  }
  save_finding(rec, std::move(best), "client", opts.client_argv, opts);
  return rec;
}

run_stats fuzz_client(hostile_server& server, const fuzz_options& opts, const std::function<bool(const run_stats&)>& progress) {
  run_stats stats;
  stats.mode = "client";
  stats.seed = opts.seed;
  std::string argv;
  for (const auto& a : opts.client_argv) argv.append(argv.empty() ? "" : " ").append(a);
  stats.target = "'" + argv + "' via " + server.describe();
  run_pacer pacer(opts, stats, progress);
  for (std::uint64_t index = 0; pacer.next(index); ++index) {
    const fuzz_case plan = make_reply_plan(opts.seed, index, opts.replies);
    const client_run run = server.run(opts.client_argv, plan, opts.timeout, opts.exit_is_finding);
    ++stats.cases;
    stats.commands += run.replies_used;
    ++stats.exit_codes[run.exit_code];
    if (run.exit_code == 127 && run.output.find("redring-fuzz: cannot run") != std::string::npos) {
      // The client cannot even start: nothing to fuzz (exit 3), not a finding.
      stats.stopped = run.output.substr(0, run.output.find('\n'));
      stats.unusable = true;
      break;
    }
    if (run.found.kind != finding_kind::none) record_finding(stats, handle_client_finding(server, opts, plan, run, pacer.deadline()));
  }
  pacer.finish();
  return stats;
}

}  // namespace redring::fuzz
