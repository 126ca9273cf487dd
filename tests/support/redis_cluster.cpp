// SPDX-License-Identifier: MIT
#include "tests/support/redis_cluster.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <stdexcept>
#include <thread>

namespace redring::test {
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

// Runs a program to completion; its exit status (-1 if it could not run).
int run(std::vector<std::string> args) {
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Quiet: redis-cli prints the whole plan.
    const int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) {
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

int free_cluster_port() {
  // Below 55535 so that the bus port exists; away from the ephemeral range (32768-60999) below it.
  static std::mt19937 rng(static_cast<unsigned>(::getpid()) * 2654435761u);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int p = 20000 + static_cast<int>(rng() % 12000);
    if (can_bind(p) && can_bind(p + 10000)) return p;
  }
  throw std::runtime_error("no free port pair for a cluster node");
}

redis_cluster::redis_cluster(int primaries, int replicas, int node_timeout_ms, const tls_files* tls) {
  const int total = primaries * (1 + replicas);
  for (int i = 0; i < total; ++i) {
    const int p = free_cluster_port();
    ports_.push_back(p);
    std::vector<std::string> args = {"--port", std::to_string(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                                     "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
                                     std::to_string(node_timeout_ms)};
    if (tls != nullptr) {
      tls_ports_.push_back(free_cluster_port());
      const auto tls_args = tls->server_args(tls_ports_.back());
      args.insert(args.end(), tls_args.begin(), tls_args.end());
      // Nodes learn each other's TLS ports (what CLUSTER SHARDS and SLOTS tell clients) only when
      // they speak TLS to each other: the bus is then TLS too, on the TLS port + 10000.
      args.insert(args.end(), {"--tls-cluster", "yes", "--tls-replication", "yes"});
    }
    nodes_.push_back(std::make_unique<redis_server>(std::move(args)));
  }
  std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
  for (const int p : tls != nullptr ? tls_ports_ : ports_) create.push_back("127.0.0.1:" + std::to_string(p));
  if (tls != nullptr) create.insert(create.end(), {"--tls", "--cacert", tls->ca_cert});
  create.insert(create.end(), {"--cluster-replicas", std::to_string(replicas), "--cluster-yes"});
  if (run(create) != 0) throw std::runtime_error("redis-cli --cluster create failed");
  // Wait until every node sees a healthy cluster with every node in it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (std::size_t i = 0; i < nodes_.size();) {
    blocking_connection c(nodes_[i]->socket_path());
    const resp::value info = c.call({"CLUSTER", "INFO"});
    const bool ok = info.text.find("cluster_state:ok") != std::string::npos &&
                    info.text.find("cluster_known_nodes:" + std::to_string(total) + "\r\n") != std::string::npos;
    const resp::value slots = c.call({"CLUSTER", "SLOTS"});
    std::size_t listed = 0;
    for (const auto& e : slots.elements) listed += e.elements.size() >= 2 ? e.elements.size() - 2 : 0;
    if (ok && listed == static_cast<std::size_t>(total)) {
      ++i;
      continue;
    }
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("the cluster did not become healthy within 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

redis_cluster::~redis_cluster() = default;

std::size_t redis_cluster::index_of_port(int port) const {
  for (std::size_t i = 0; i < ports_.size(); ++i) {
    if (ports_[i] == port) return i;
  }
  throw std::runtime_error("no cluster node on port " + std::to_string(port));
}

std::string redis_cluster::node_id(std::size_t i) {
  blocking_connection c(nodes_.at(i)->socket_path());
  return c.call({"CLUSTER", "MYID"}).text;
}

std::size_t redis_cluster::owner_of_key(std::string_view key) {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    std::unique_ptr<blocking_connection> c;
    try {
      c = std::make_unique<blocking_connection>(nodes_[i]->socket_path());
    } catch (const std::runtime_error&) {
      continue;  // a node the test killed
    }
    const resp::value r = c->call({"EXISTS", key});
    if (!r.is_error()) return i;
    // "MOVED <slot> <host>:<port>"; a replica answers so too
    const std::size_t colon = r.text.rfind(':');
    if (r.text.rfind("MOVED ", 0) != 0 || colon == std::string::npos) throw std::runtime_error("EXISTS: " + r.text);
    return index_of_port(std::stoi(r.text.substr(colon + 1)));
  }
  throw std::runtime_error("no cluster node answers");
}

void redis_cluster::migrate_slot(std::uint16_t slot, std::size_t from, std::size_t to, const std::function<void()>& step) {
  const std::string from_id = node_id(from), to_id = node_id(to), s = std::to_string(slot);
  blocking_connection src(nodes_.at(from)->socket_path()), dst(nodes_.at(to)->socket_path());
  dst.call({"CLUSTER", "SETSLOT", s, "IMPORTING", from_id});
  src.call({"CLUSTER", "SETSLOT", s, "MIGRATING", to_id});
  const std::string port = std::to_string(ports_.at(to));
  for (;;) {
    const resp::value keys = src.call({"CLUSTER", "GETKEYSINSLOT", s, "5"});
    if (keys.elements.empty()) break;
    std::vector<std::string_view> migrate = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS"};
    for (const auto& k : keys.elements) migrate.push_back(k.text);
    const resp::value r = src.call(migrate);
    if (r.is_error()) throw std::runtime_error("MIGRATE: " + r.text);
    step();
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    blocking_connection n(nodes_[i]->socket_path());
    n.call({"CLUSTER", "SETSLOT", s, "NODE", to_id});
  }
}

}  // namespace redring::test
