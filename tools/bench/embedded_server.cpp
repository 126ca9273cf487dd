// SPDX-License-Identifier: MIT
#include "tools/bench/embedded_server.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <thread>
#include <vector>

namespace redring::bench {
namespace {

// Why a server that failed to start did, to append to the message: "; the end of its log:" and
// its last `lines` lines (from its last 4 KiB), each on a line of its own, indented; or a note
// that the log is empty. Read now because `stop` removes the temp dir, and the log with it.
std::string log_tail(const std::string& path, std::size_t lines = 6) {
  std::ifstream f(path, std::ios::binary);
  std::string text;
  if (f) {
    f.seekg(0, std::ios::end);
    const std::streamoff size = f.tellg();
    const std::streamoff from = size > 4096 ? size - 4096 : 0;
    f.seekg(from);
    text.assign(std::istreambuf_iterator<char>(f), {});
    if (from > 0) text.erase(0, text.find('\n') + 1);  // a cut first line
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  // Before it opens its log (a bad option, say) redis-server writes to its stderr, which is ours.
  if (text.empty()) return " (its log is empty; anything it said is on stderr above)";
  std::vector<std::string_view> all;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t nl = std::min(text.find('\n', at), text.size());
    if (nl > at) all.emplace_back(text.data() + at, nl - at);
    at = nl + 1;
  }
  std::string out = "; the end of its log:";
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out.append("\n    ").append(all[i]);
  return out;
}

}  // namespace

std::string embedded_server::start(const std::vector<std::string>& extra_args) {
  char tmpl[] = "/tmp/redring-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return std::string("cannot make a temp dir: ") + std::strerror(errno);
  dir_ = tmpl;
  socket_ = dir_ + "/redis.sock";
  int report[2];  // the child writes errno here if exec fails
  if (::pipe2(report, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  pid_ = ::fork();
  if (pid_ < 0) return std::string("fork: ") + std::strerror(errno);
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::close(report[0]);
    std::vector<std::string> args = {"redis-server", "--port", "0", "--unixsocket", socket_, "--dir", dir_,
                                     "--save", "", "--appendonly", "no", "--logfile", dir_ + "/redis.log"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("redis-server", argv.data());
    const int e = errno;
    [[maybe_unused]] auto n = ::write(report[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(report[1]);
  int exec_errno = 0;
  const auto got = ::read(report[0], &exec_errno, sizeof exec_errno);
  ::close(report[0]);
  if (got == sizeof exec_errno) {
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return exec_errno == ENOENT ? "redis-server is not in PATH: install the Debian package redis-server"
                                : std::string("cannot run redis-server: ") + std::strerror(exec_errno);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return "redis-server exited at start" + log_tail(dir_ + "/redis.log");
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_.c_str(), sizeof(addr.sun_path) - 1);
    const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (up) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return "redis-server did not open its socket within 10 s" + log_tail(dir_ + "/redis.log");
}

void embedded_server::stop() noexcept {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 500 && ::waitpid(pid_, nullptr, WNOHANG) != pid_; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (i == 499) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
    pid_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

}  // namespace redring::bench
