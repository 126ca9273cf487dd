// SPDX-License-Identifier: MIT
#include "tests/support/redis_sentinel.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

namespace redring::test {
namespace {

using namespace std::chrono_literals;

// The value of `field` in an INFO-style or flat field/value list, "" if absent.
std::string field_of(const resp::value& entry, std::string_view field) {
  const auto& e = entry.elements;
  for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
    if (e[i].text == field) return e[i + 1].text;
  }
  return {};
}

}  // namespace

redis_sentinel::redis_sentinel(int replicas, int sentinels, std::string sentinel_config, const tls_files* tls) {
  // The port: plain, or TLS only (the default arguments' --port 0 then stays).
  const auto listen_on = [tls](int port) {
    if (tls == nullptr) return std::vector<std::string>{"--port", std::to_string(port), "--bind", "127.0.0.1"};
    std::vector<std::string> args = tls->server_args(port);
    args.insert(args.end(), {"--bind", "127.0.0.1", "--tls-replication", "yes"});
    return args;
  };
  for (int i = 0; i <= replicas; ++i) {
    const int port = free_loopback_port();
    // No delay before a full sync (7.0's default waits 5 s for more replicas to share it).
    std::vector<std::string> args = listen_on(port);
    args.insert(args.end(), {"--repl-diskless-sync-delay", "0"});
    if (i > 0) args.insert(args.end(), {"--replicaof", "127.0.0.1", std::to_string(server_ports_[0])});
    servers_.push_back(std::make_unique<redis_server>(std::move(args)));
    server_ports_.push_back(port);
  }
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  const auto wait = [&deadline](const char* what) {
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error(std::string("sentinel setup: ") + what);
    std::this_thread::sleep_for(20ms);
  };
  // The replicas in sync first: a sentinel learns them from the master's INFO.
  for (int i = 1; i <= replicas; ++i) {
    blocking_connection c(servers_[static_cast<std::size_t>(i)]->socket_path());
    while (c.call({"INFO", "replication"}).text.find("master_link_status:up") == std::string::npos) wait("a replica did not sync");
  }
  if (const auto at = sentinel_config.find("requirepass "); at != std::string::npos) {
    password_ = sentinel_config.substr(at + 12, sentinel_config.find('\n', at) - at - 12);
  }
  // Down after 1 s of silence; a failover whose election split the votes is tried again after twice
  // the failover timeout (4 s, not the default's 6 minutes).
  const std::string config = std::string("sentinel monitor ") + master_name() + " 127.0.0.1 " + std::to_string(server_ports_[0]) +
                             " 1\nsentinel down-after-milliseconds " + master_name() +
                             " 1000\nsentinel failover-timeout " + master_name() + " 2000\n" + sentinel_config;
  for (int i = 0; i < sentinels; ++i) {
    const int port = free_loopback_port();
    std::vector<std::string> args = listen_on(port);
    args.push_back("--sentinel");
    sentinels_.push_back(std::make_unique<redis_server>(std::move(args), std::string(), config));
    sentinel_ports_.push_back(port);
  }
  for (std::size_t s = 0; s < sentinels_.size(); ++s) {
    while (true) {
      const resp::value list = call_sentinel(s, {"SENTINEL", "REPLICAS", master_name()});
      std::size_t up = 0;
      for (const auto& r : list.elements) up += field_of(r, "master-link-status") == "ok" ? 1 : 0;
      if (up == static_cast<std::size_t>(replicas)) break;
      wait("the sentinels did not see every replica in sync within 30 s");
    }
  }
}

redis_sentinel::~redis_sentinel() = default;

resp::value redis_sentinel::call_sentinel(std::size_t s, const std::vector<std::string_view>& args) {
  blocking_connection c(sentinels_.at(s)->socket_path());
  if (!password_.empty()) (void)c.call({"AUTH", password_});
  return c.call(args);
}

std::size_t redis_sentinel::index_of_port(int port) const {
  for (std::size_t i = 0; i < server_ports_.size(); ++i) {
    if (server_ports_[i] == port) return i;
  }
  throw std::runtime_error("no server on port " + std::to_string(port));
}

std::size_t redis_sentinel::master_index(std::size_t s) {
  const resp::value addr = call_sentinel(s, {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name()});
  if (addr.elements.size() != 2) throw std::runtime_error("the sentinel names no master");
  return index_of_port(std::stoi(addr.elements[1].text));
}

std::size_t redis_sentinel::failover(std::size_t via, bool only_via) {
  const std::size_t old = master_index(via);
  const resp::value r = call_sentinel(via, {"SENTINEL", "FAILOVER", master_name()});
  if (r.text != "OK") throw std::runtime_error("SENTINEL FAILOVER: " + r.text);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  const std::size_t first = only_via ? via : 0, last = only_via ? via : sentinels_.size() - 1;
  std::size_t now = old;
  for (std::size_t s = first; s <= last;) {
    now = master_index(s);
    if (now != old) {
      blocking_connection c(servers_[now]->socket_path());
      const resp::value role = c.call({"ROLE"});
      if (!role.elements.empty() && role.elements[0].text == "master") {
        ++s;
        continue;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("the failover did not complete within 30 s");
    std::this_thread::sleep_for(20ms);
  }
  return now;
}

}  // namespace redring::test
