// SPDX-License-Identifier: MIT
// Pub/sub on a Redis Cluster: sharded channels (SSUBSCRIBE, Redis 7), each subscribed on the primary
// that serves its slot, beside a classic channel; a cluster client publishes to them (SPUBLISH is
// routed by its channel like a key) once every subscription is confirmed.
// Usage: cluster_pubsub [redis://host:port]   (any node of the cluster; default REDIS_URL, else 127.0.0.1:6379)
#include "client/client.hpp"
#include "client/cluster_subscriber.hpp"
#include "client/detached.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  opts.cluster.enabled = true;
  opts.command_timeout = std::chrono::seconds(5);
  net::loop loop;
  client::client redis(loop, opts);
  client::cluster_subscriber sub(loop, opts);

  // The hash tags put each region's channel in a slot of its own (the node depends on the cluster).
  const std::array<std::string, 3> orders = {"orders:{eu}", "orders:{us}", "orders:{asia}"};
  int confirmed = 0, received = 0, status = 0;
  auto publish = [&]() -> client::detached {
    for (std::size_t i = 0; i < orders.size(); ++i) {
      auto n = co_await redis.command<std::int64_t>("SPUBLISH", orders[i], "order " + std::to_string(i + 1));
      if (!n) std::fprintf(stderr, "SPUBLISH failed: %s\n", n.error().what().c_str());
    }
    if (auto n = co_await redis.publish("news", "hello"); !n) std::fprintf(stderr, "PUBLISH failed: %s\n", n.error().what().c_str());
  };
  // Views in the event live during this call only.
  auto on_event = [&](const client::pubsub_event& e) {
    const std::string channel(e.channel);
    switch (e.kind) {
      case client::pubsub_kind::ssubscribe:
      case client::pubsub_kind::subscribe:
        if (++confirmed == 4) publish();
        break;
      case client::pubsub_kind::smessage:
        std::printf("%s: %.*s (sharded, on %.*s)\n", channel.c_str(), static_cast<int>(e.payload.size()), e.payload.data(),
                    static_cast<int>(sub.node_of(channel).size()), sub.node_of(channel).data());
        ++received;
        break;
      case client::pubsub_kind::message:
        std::printf("%s: %.*s (classic)\n", channel.c_str(), static_cast<int>(e.payload.size()), e.payload.data());
        ++received;
        break;
      case client::pubsub_kind::refused:
        std::fprintf(stderr, "refused %s: %.*s\n", channel.c_str(), static_cast<int>(e.payload.size()), e.payload.data());
        status = 1;
        break;
      default:  // a move (slot_moved, sunsubscribe then ssubscribe elsewhere) needs nothing from us
        break;
    }
  };
  sub.set_handler(on_event);
  sub.ssubscribe({orders[0], orders[1], orders[2]});
  sub.subscribe({"news"});
  // Is it a cluster? Against a single server the topology is refused: say so and stop.
  bool cluster = false, checked = false;
  auto check = [&]() -> client::detached {
    auto pong = co_await redis.command<std::string>("PING");
    if (!pong) {
      std::printf("cannot use the cluster: %s\n", pong.error().what().c_str());
      status = pong.error().code == client::errc::cluster_topology ? 0 : 1;
    }
    cluster = pong.has_value();
    checked = true;
  };
  check();
  while (!checked) loop.run_once(std::chrono::milliseconds(100));
  if (!cluster) return status;
  sub.start();
  // Unreachable nodes: say so instead of waiting for ever.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (received < 4 && status == 0 && std::chrono::steady_clock::now() < give_up) loop.run_once(std::chrono::milliseconds(100));
  if (received < 4 && status == 0) {
    std::fprintf(stderr, "no messages within 10 s: %s\n", sub.last_error().c_str());
    status = 1;
  }
  return status;
}
