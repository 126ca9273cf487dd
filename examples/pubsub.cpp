// SPDX-License-Identifier: MIT
// Pub/sub: a subscriber on a channel and a pattern, and a client that publishes to them once both
// subscriptions are confirmed. The subscriber has a connection of its own and subscribes again by
// itself after a reconnect.
// Usage: pubsub [redis://host:port | unix:///path]   (default: REDIS_URL, else 127.0.0.1:6379)
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/subscriber.hpp"
#include "client/url.hpp"

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
  net::loop loop;
  client::client redis(loop, opts);  // publishes (PUBLISH is an ordinary command)
  client::subscriber sub(loop, opts);
  int received = 0;
  // Publishes once the subscriptions are confirmed: before that, nobody would receive.
  auto publish = [&]() -> client::detached {
    for (const char* channel : {"news", "alerts.disk", "alerts.cpu"}) {
      const auto receivers = co_await redis.publish(channel, std::string("hello from ") + channel);
      if (!receivers) std::fprintf(stderr, "PUBLISH failed: %s\n", receivers.error().what().c_str());
    }
  };
  // Views in the event live during this call only.
  auto on_event = [&](const client::pubsub_event& e) {
    switch (e.kind) {
      case client::pubsub_kind::subscribe:
      case client::pubsub_kind::psubscribe:
        std::printf("subscribed to %.*s (%lld in all)\n", static_cast<int>(e.channel.size()), e.channel.data(),
                    static_cast<long long>(e.count));
        if (e.count == 2) publish();
        break;
      case client::pubsub_kind::message:
      case client::pubsub_kind::pmessage:
        std::printf("%.*s%s%.*s: %.*s\n", static_cast<int>(e.channel.size()), e.channel.data(), e.pattern.empty() ? "" : " via ",
                    static_cast<int>(e.pattern.size()), e.pattern.data(), static_cast<int>(e.payload.size()), e.payload.data());
        if (++received == 3) loop.stop();
        break;
      default:
        break;
    }
  };
  sub.set_handler(on_event);
  sub.subscribe({"news"});
  sub.psubscribe({"alerts.*"});
  sub.start();
  loop.run();
  if (sub.failed()) std::fprintf(stderr, "subscriber: %s\n", sub.last_error().c_str());
  return received == 3 ? 0 : 1;
}
