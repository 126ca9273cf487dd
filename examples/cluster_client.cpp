// SPDX-License-Identifier: MIT
// The client in Redis Cluster mode: the same calls as on one server, each routed to the node that
// serves its keys; a cross-slot MGET split and merged; a pipeline split per node; a command sent to
// every node with at_node(); where the requests went.
// Usage: cluster_client [redis://host:port]   (any node of the cluster; default REDIS_URL, else 127.0.0.1:6379)
#include "client/client.hpp"
#include "client/detached.hpp"

#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  opts.cluster.enabled = true;  // or `?cluster=yes` in the URL
  opts.command_timeout = std::chrono::seconds(5);
  net::loop loop;
  client::client c(loop, opts);
  int status = 0;
  bool done = false;

  auto session = [&]() -> client::detached {
    // One key, one node.
    if (auto r = co_await c.set("user:1000", "ada"); !r) {
      // Not a cluster (or unreachable): a clear error, nothing sent anywhere else.
      std::printf("cannot use the cluster: %s\n", r.error().what().c_str());
      status = r.error().code == client::errc::cluster_topology ? 0 : 1;
      done = true;
      co_return;
    }
    // Any command may name its only key: routed by it, without looking the command up (the typed
    // helpers such as set() above do this themselves).
    const std::string visits = "visits:user:1000";
    if (auto n = co_await c.command<std::int64_t>("HINCRBY", visits, "home", 1).routed_by(visits)) {
      std::printf("HINCRBY routed by its key: %lld\n", static_cast<long long>(*n));
    }
    // Keys in many slots: split per slot, merged back in the keys' order.
    const std::vector<std::pair<std::string, std::string>> pairs = {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}};
    const std::vector<std::string> keys = {"a", "b", "c", "d", "missing"};
    (void)co_await c.mset(pairs);
    if (auto values = co_await c.mget(keys)) {
      std::printf("MGET across slots:");
      for (const auto& v : *values) std::printf(" %s", v ? v->c_str() : "(nil)");
      std::printf("\n");
    }
    // A {hash tag} keeps related keys in one slot: transactions and scripts need that.
    client::transaction t;
    t.add("HSET", "{user:1000}:profile", "name", "ada");
    t.add("SADD", "{user:1000}:tags", "admin");
    if (auto r = co_await c.execute(t)) std::printf("transaction on one slot: %zu replies\n", r->size());
    // A pipeline goes out per node; replies come back in order.
    client::pipeline p;
    for (int i = 0; i < 6; ++i) p.add("INCR", "counter:" + std::to_string(i));
    if (auto r = co_await c.execute(p)) std::printf("pipeline: %zu replies in order\n", r->size());
    // Every node on request.
    for (const std::string& node : c.cluster()->nodes(false)) {
      auto pong = co_await c.ping().at_node(node);
      std::printf("PING %s: %s\n", node.c_str(), pong ? pong->c_str() : pong.error().what().c_str());
    }
    for (const auto& load : c.cluster()->load()) {
      std::printf("%s (%s): %llu requests\n", load.node.c_str(), load.primary ? "primary" : "replica",
                  static_cast<unsigned long long>(load.sent));
    }
    done = true;
  };
  session();
  while (!done) loop.run_once(std::chrono::milliseconds(100));
  c.close();
  return status;
}
