// SPDX-License-Identifier: MIT
#include "tools/bench/embedded_cluster.hpp"

#include "client/sync_client.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

namespace redring::bench {
namespace {

bool can_bind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A port p with p and its cluster bus port p + 10000 free, below the ephemeral range.
int free_port_pair(std::mt19937& rng) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int p = 20000 + static_cast<int>(rng() % 12000);
    if (can_bind(p) && can_bind(p + 10000)) return p;
  }
  return 0;
}

// Runs a program quietly to completion: its exit status, or -1.
int run_quietly(std::vector<std::string> args) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
    }
    ::execvp(args[0].c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::string embedded_cluster::start(int primaries) {
  std::mt19937 rng(static_cast<unsigned>(::getpid()) * 2654435761u);
  for (int i = 0; i < primaries; ++i) {
    const int port = free_port_pair(rng);
    if (port == 0) return "no free port pair for a cluster node";
    auto node = std::make_unique<embedded_server>();
    const std::string why = node->start({"--port", std::to_string(port), "--bind", "127.0.0.1", "--cluster-enabled",
                                         "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"});
    if (!why.empty()) return why;
    nodes_.push_back(std::move(node));
    ports_.push_back(port);
  }
  std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
  for (const int p : ports_) create.push_back("127.0.0.1:" + std::to_string(p));
  create.insert(create.end(), {"--cluster-replicas", "0", "--cluster-yes"});
  if (const int rc = run_quietly(create); rc != 0) {
    return rc == 127 ? "redis-cli is not in PATH: install the Debian package redis-tools"
                     : "redis-cli --cluster create failed (exit " + std::to_string(rc) + ")";
  }
  // Every node must see the whole cluster healthy before the run starts.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (std::size_t i = 0; i < nodes_.size();) {
    client::options o;
    o.unix_path = nodes_[i]->socket_path();
    o.reconnect.enabled = false;
    o.command_timeout = std::chrono::milliseconds(2000);
    client::sync_client c(o);
    const auto info = c.command<std::string>("CLUSTER", "INFO");
    if (info && info->find("cluster_state:ok") != std::string::npos &&
        info->find("cluster_known_nodes:" + std::to_string(nodes_.size()) + "\r\n") != std::string::npos) {
      ++i;
      continue;
    }
    if (std::chrono::steady_clock::now() > deadline) return "the private cluster did not become healthy within 30 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {};
}

}  // namespace redring::bench
