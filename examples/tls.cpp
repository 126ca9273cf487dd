// SPDX-License-Identifier: MIT
// TLS: rediss:// URLs, or the same settings by struct, and what a failed certificate check looks like.
// Usage: tls rediss://host:port?tls_ca_file=/path/ca.crt   (default: REDIS_URL, else rediss://127.0.0.1:6380)
// A plain redis:// or unix:// URL works too (then without TLS).
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/url.hpp"

#include <cstdio>

using namespace redring;

int main(int argc, char** argv) {
  client::options opts;
  // By struct, the same as rediss://127.0.0.1:6380?tls_ca_file=...: with no CA file the system's
  // trust store verifies the server, and the certificate must name the host connected to (or
  // tls.server_name). tls.cert_file and tls.key_file present a client certificate.
  opts.port = 6380;
  opts.tls.enabled = true;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  int status = 1;
  auto work = [&]() -> client::detached {
    if (auto ok = co_await redis.set("over", opts.tls.enabled ? "tls" : "plain"); !ok) {
      // errc::tls_failed for a certificate that fails verification or a file that does not load;
      // the connection's last_error() says which.
      std::fprintf(stderr, "SET failed: %s (%s)\n", ok.error().what().c_str(), redis.conn().last_error().c_str());
      loop.stop();
      co_return;
    }
    const auto value = co_await redis.get("over");
    std::printf("over = %s\n", value && *value ? (*value)->c_str() : "(nil)");
    status = 0;
    loop.stop();
  };
  work();
  loop.run();
  return status;
}
