// SPDX-License-Identifier: MIT
#include "tests/support/redis_server.hpp"

#include "resp/writer.hpp"

#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace redring::test {
namespace {

int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Why a server failed to start: where its log is and its last lines (the temp dir is kept, as the
// constructor throws before a destructor could remove it).
std::string log_tail(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) {
    if (!line.empty()) lines.push_back(std::move(line));
  }
  if (lines.empty()) return "; its log " + path + " is empty (anything it said is on stderr)";
  std::string out = "; the end of its log " + path + ":";
  for (std::size_t i = lines.size() > 6 ? lines.size() - 6 : 0; i < lines.size(); ++i) out += "\n    " + lines[i];
  return out;
}

}  // namespace

redis_server::redis_server(std::vector<std::string> extra_args, std::string socket_path, std::string config_text) {
  char tmpl[] = "/tmp/redring-test-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  socket_ = socket_path.empty() ? dir_ + "/redis.sock" : std::move(socket_path);
  std::vector<std::string> args = {"redis-server", "--port",    "0",      "--unixsocket", socket_,
                                   "--dir",        dir_,        "--save", "",             "--appendonly",
                                   "no",           "--logfile", dir_ + "/redis.log"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  if (!config_text.empty()) {
    const std::string config = dir_ + "/redis.conf";
    std::ofstream(config) << config_text;
    args.insert(args.begin() + 1, config);  // the config file comes first
  }
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited at start (is the redis-server package installed?)" + log_tail(dir_ + "/redis.log"));
    }
    const int fd = connect_unix(socket_);
    if (fd >= 0) {
      // Answering, not only listening: redis-server listens before it loads its ACL users, and
      // exits if they are invalid. Any reply will do (an error too: a password may be required).
      char byte = 0;
      pollfd p{fd, POLLIN, 0};
      const bool answered = ::write(fd, "PING\r\n", 6) == 6 && ::poll(&p, 1, 1000) == 1 && ::read(fd, &byte, 1) == 1;
      ::close(fd);
      if (answered) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid_, SIGKILL);  // no destructor will
  ::waitpid(pid_, nullptr, 0);
  throw std::runtime_error("redis-server did not start within 10 s" + log_tail(dir_ + "/redis.log"));
}

redis_server::~redis_server() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

blocking_connection::blocking_connection(const std::string& socket_path) : fd_(connect_unix(socket_path)) {
  if (fd_ < 0) throw std::runtime_error("cannot connect to " + socket_path);
}

blocking_connection::~blocking_connection() {
  if (fd_ >= 0) ::close(fd_);
}

void blocking_connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("write: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

void blocking_connection::send_command(const std::vector<std::string_view>& args) {
  resp::writer w(0);
  w.command(std::span<const std::string_view>(args));
  send(w.data());
}

std::string blocking_connection::read_raw_replies(std::size_t n) {
  // One node per read, so that consumption stops exactly at the end of the n-th reply.
  resp::reader reader;
  resp::node node;
  std::size_t pos = 0;
  std::size_t done = 0;
  while (done < n) {
    const auto r = reader.next(std::string_view(pending_).substr(pos), node);
    if (r.state == resp::status::error) throw std::runtime_error("protocol error: " + r.error.message());
    pos += r.consumed;
    if (r.nodes == 1 && node.ends_reply) ++done;
    if (r.state == resp::status::need_more && done < n) {
      char buf[65536];
      const ssize_t got = ::read(fd_, buf, sizeof buf);
      if (got <= 0) throw std::runtime_error("connection closed while reading replies");
      pending_.append(buf, static_cast<std::size_t>(got));
    }
  }
  std::string out = pending_.substr(0, pos);
  pending_.erase(0, pos);
  return out;
}

resp::value blocking_connection::call(const std::vector<std::string_view>& args) {
  send_command(args);
  const std::string raw = read_raw_replies(1);
  resp::reader reader;
  resp::value_builder builder;
  std::array<resp::node, 64> nodes;
  std::size_t pos = 0;
  for (;;) {
    const auto r = reader.read(std::string_view(raw).substr(pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      if (builder.add(nodes[i])) return builder.take();
    }
    pos += r.consumed;
    if (r.state != resp::status::ok) throw std::runtime_error("incomplete reply");
  }
}

}  // namespace redring::test

#include <netinet/in.h>

namespace redring::test {

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("no free loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace redring::test
