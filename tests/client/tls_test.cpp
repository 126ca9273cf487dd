// SPDX-License-Identifier: MIT
// The client over TLS (rediss://) against a real redis-server's TLS port, with certificates made by
// the fixture: commands, pipelines and a large value both ways, with and without the buffer ring;
// a client certificate; reconnection; and every way the setup can fail, each a clear error.
#include "client/client.hpp"
#include "client/detached.hpp"

#include "tests/support/alloc_counter.hpp"
#include "tests/support/redis_cluster.hpp"
#include "tests/support/redis_server.hpp"
#include "tests/support/run_until.hpp"
#include "tests/support/tls_files.hpp"

#include <openssl/crypto.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

namespace redring::client {
namespace {

using namespace std::chrono_literals;

using test::run_until;

// OpenSSL's own allocations (it calls malloc, not operator new), counted from before its first use.
std::atomic<std::uint64_t> openssl_allocations{0};
void* counting_malloc(std::size_t n, const char*, int) {
  openssl_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* counting_realloc(void* p, std::size_t n, const char*, int) {
  openssl_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void counting_free(void* p, const char*, int) { std::free(p); }
const bool counting_openssl = CRYPTO_set_mem_functions(counting_malloc, counting_realloc, counting_free) == 1;

// A redis-server with a TLS port (and its Unix socket, for the fixture's own checks).
struct tls_server {
  explicit tls_server(const test::tls_files& files, bool client_auth = false)
      : port(test::free_loopback_port()), server(files.server_args(port, client_auth)) {}
  tls_server(const test::tls_files& files, const std::string& cert, const std::string& key)
      : port(test::free_loopback_port()), server(files.server_args(port, false, cert, key)) {}
  std::string url(const std::string& host = "127.0.0.1") const { return "rediss://" + host + ":" + std::to_string(port); }
  int port;
  test::redis_server server;
};

options tls_options_for(const std::string& url, const test::tls_files& files) {
  options o;
  std::string why;
  EXPECT_FALSE(parse_url(url, o, &why)) << why;
  if (o.tls.ca_file.empty() && o.tls.verify_peer) o.tls.ca_file = files.ca_cert;
  o.connect_timeout = 2000ms;
  o.command_timeout = 5000ms;
  return o;
}

// PING through a client with `o`: "PONG", or the error and the connection's last error.
std::string ping_with(const options& o) {
  net::loop loop;
  client c(loop, o);
  std::optional<std::string> out;
  auto body = [&]() -> detached {
    const auto r = co_await c.ping();
    out = r ? *r : r.error().what() + " | " + c.conn().last_error();
  };
  body();
  if (!run_until(loop, [&] { return out.has_value(); })) return "no answer";
  if (*out != "PONG") std::printf("  %s\n", out->c_str());  // what a user would read
  return *out;
}

TEST(Tls, CommandsPipelinesAndLargeValues) {
  const test::tls_files files;
  const tls_server s(files);
  for (const bool ring : {true, false}) {
    SCOPED_TRACE(ring ? "buffer ring" : "plain recv");
    options o = tls_options_for(s.url(), files);
    o.use_buffer_ring = ring;
    net::loop loop;
    client c(loop, o);
    bool finished = false;
    const std::string big(8 * 1024 * 1024 + 13, 'x');  // many TLS records, several sends of ciphertext
    auto body = [&]() -> detached {
      EXPECT_TRUE(co_await c.set("k", "v"));
      EXPECT_EQ(*co_await c.get("k"), std::optional<std::string>("v"));
      EXPECT_TRUE(co_await c.set("big", big));
      const auto back = co_await c.get("big");
      EXPECT_TRUE(back && *back == big);
      pipeline p;
      for (int i = 0; i < 10000; ++i) p.add("INCR", "n");
      const auto replies = co_await c.execute(p);
      EXPECT_TRUE(replies && replies->size() == 10000 && replies->back().integer == 10000);
      EXPECT_EQ(*co_await c.command<long long>("GET", "n"), 10000);
      EXPECT_EQ(*co_await c.del("k", "big", "n"), 3);
      finished = true;
    };
    body();
    ASSERT_TRUE(run_until(loop, [&] { return finished; }, 60s));
    EXPECT_EQ(c.conn().protocol(), 3);
    EXPECT_EQ(c.conn().connects(), 1u);
    EXPECT_FALSE(c.conn().tls_resumed());  // a first connection has nothing to resume
  }
}

// In steady state a command over TLS allocates nothing of ours (operator new: the memory BIOs,
// tls_out_ and the receive buffers keep their size). OpenSSL 3.0 allocates a few bookkeeping
// structs per record it writes (WPACKET, crypto/packet.c: 40 bytes, freed at once); bounded here so
// that anything per command beyond them (a session, a context, a growing buffer) shows.
TEST(Tls, SteadyStateAllocatesNothing) {
  ASSERT_TRUE(counting_openssl);
  const test::tls_files files;
  const tls_server s(files);
  for (const bool ring : {true, false}) {
    SCOPED_TRACE(ring ? "buffer ring" : "plain recv");
    options o = tls_options_for(s.url(), files);
    o.use_buffer_ring = ring;
    net::loop loop;
    client c(loop, o);
    bool finished = false;
    std::uint64_t ours = ~std::uint64_t{0}, openssl = ~std::uint64_t{0};
    int right = 0;
    auto body = [&]() -> detached {
      for (int pass = 0; pass < 2; ++pass) {  // the first warms the buffers up
        const std::uint64_t before = test::allocations();
        const std::uint64_t before_openssl = openssl_allocations.load();
        right = 0;
        for (int i = 0; i < 200; ++i) {
          const auto set = co_await c.set("k", "v");
          right += set && *set ? 1 : 0;
          const auto got = co_await c.get("k");
          right += got && *got == std::optional<std::string>("v") ? 1 : 0;
        }
        ours = test::allocations() - before;
        openssl = openssl_allocations.load() - before_openssl;
      }
      finished = true;
    };
    body();
    ASSERT_TRUE(run_until(loop, [&] { return finished; }));
    EXPECT_EQ(right, 400);
    EXPECT_EQ(ours, 0u);
    EXPECT_LE(openssl, 8u * 400) << "OpenSSL allocations over 400 commands";
    std::printf("  OpenSSL allocations per command: %.1f\n", static_cast<double>(openssl) / 400);
  }
}

TEST(Tls, ServerNameByDnsNameOrOption) {
  const test::tls_files files;
  const tls_server s(files);
  EXPECT_EQ(ping_with(tls_options_for(s.url("localhost"), files)), "PONG");  // the certificate's DNS entry
  options o = tls_options_for(s.url(), files);
  o.tls.server_name = "localhost";
  EXPECT_EQ(ping_with(o), "PONG");
}

TEST(Tls, ClientCertificate) {
  const test::tls_files files;
  const tls_server s(files, /*client_auth=*/true);
  options o = tls_options_for(s.url() + "?tls_cert_file=" + files.client_cert + "&tls_key_file=" + files.client_key, files);
  EXPECT_EQ(ping_with(o), "PONG");
  // Without one, the server refuses the session (in TLS 1.3, after the client's handshake is done).
  options none = tls_options_for(s.url(), files);
  none.reconnect.max_delay = 60000ms;  // a refusal waits this long before it is tried again
  const std::string refused = ping_with(none);
  EXPECT_NE(refused.find("TLS could not be set up"), std::string::npos) << refused;
  EXPECT_NE(refused.find("refused"), std::string::npos) << refused;
}

TEST(Tls, UntrustedOrMisnamedServersAreRefused) {
  const test::tls_files files;
  const tls_server other(files, files.other_server_cert, files.other_server_key);  // signed by another CA
  const std::string untrusted = ping_with(tls_options_for(other.url(), files));
  EXPECT_NE(untrusted.find("TLS could not be set up"), std::string::npos) << untrusted;
  EXPECT_NE(untrusted.find("certificate verification failed"), std::string::npos) << untrusted;
  // Encrypted without verification: explicitly asked for.
  EXPECT_EQ(ping_with(tls_options_for(other.url() + "?tls_verify=no", files)), "PONG");

  const tls_server s(files);
  options misnamed = tls_options_for(s.url(), files);
  misnamed.tls.server_name = "redis.example.com";  // not in the certificate
  const std::string wrong_name = ping_with(misnamed);
  EXPECT_NE(wrong_name.find("certificate verification failed"), std::string::npos) << wrong_name;
  EXPECT_NE(wrong_name.find("mismatch"), std::string::npos) << wrong_name;
}

// With verification off, a failure is not blamed on the certificate it did not check (OpenSSL
// still records the chain's result): here TLS 1.2 and a server that wants a client certificate.
TEST(Tls, WithoutVerificationTheRealReasonIsGiven) {
  const test::tls_files files;
  const int port = test::free_loopback_port();
  auto args = files.server_args(port, /*client_auth=*/true, files.other_server_cert, files.other_server_key);
  args.insert(args.end(), {"--tls-protocols", "TLSv1.2"});
  const test::redis_server server(args);
  options o = tls_options_for("rediss://127.0.0.1:" + std::to_string(port) + "?tls_verify=no", files);
  o.reconnect.max_delay = 60000ms;
  const std::string r = ping_with(o);
  EXPECT_NE(r.find("TLS could not be set up"), std::string::npos) << r;
  EXPECT_EQ(r.find("certificate verification failed"), std::string::npos) << r;
  EXPECT_NE(r.find("alert"), std::string::npos) << r;
}

TEST(Tls, FilesThatDoNotLoadAreNamed) {
  const test::tls_files files;
  const tls_server s(files);
  options o = tls_options_for(s.url(), files);
  o.tls.ca_file = files.dir + "/missing-ca.pem";
  const std::string no_ca = ping_with(o);
  EXPECT_NE(no_ca.find("TLS could not be set up"), std::string::npos) << no_ca;
  EXPECT_NE(no_ca.find("missing-ca.pem"), std::string::npos) << no_ca;
  options wrong_key = tls_options_for(s.url(), files);
  wrong_key.tls.cert_file = files.client_cert;
  wrong_key.tls.key_file = files.server_key;  // not the certificate's key
  const std::string mismatch = ping_with(wrong_key);
  EXPECT_NE(mismatch.find("server.key"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("mismatch"), std::string::npos) << mismatch;
}

TEST(Tls, PlainServerIsNotMistakenForTls) {
  const int port = test::free_loopback_port();
  test::redis_server plain({"--port", std::to_string(port)});
  const test::tls_files files;
  options o = tls_options_for("rediss://127.0.0.1:" + std::to_string(port), files);
  o.connect_timeout = 500ms;
  o.command_timeout = 3000ms;
  // The server reads the ClientHello as an inline command: either it answers with an error (not
  // TLS: refused) or it waits for a newline (the handshake times out). Never a reply to PING.
  const std::string r = ping_with(o);
  EXPECT_EQ(r.find("PONG"), std::string::npos) << r;
  EXPECT_NE(r.find("TLS"), std::string::npos) << r;
}

TEST(Tls, ReconnectsWithANewSession) {
  const test::tls_files files;
  const tls_server s(files);
  options o = tls_options_for(s.url(), files);
  o.reconnect.initial_delay = 10ms;
  net::loop loop;
  client c(loop, o);
  bool finished = false;
  auto body = [&]() -> detached {
    EXPECT_TRUE(co_await c.set("k", "before"));
    test::blocking_connection admin(s.server.socket_path());
    EXPECT_EQ(admin.call({"CLIENT", "KILL", "TYPE", "normal"}).integer, 1);
    // The command sent on the dead connection fails (or is sent after the reconnect); retry until
    // the new session answers.
    for (int i = 0; i < 200; ++i) {
      const auto r = co_await c.get("k");
      if (r) {
        EXPECT_EQ(*r, std::optional<std::string>("before"));
        break;
      }
      EXPECT_EQ(r.error().code, errc::connection_lost) << r.error().what();
    }
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }, 20s));
  EXPECT_EQ(c.conn().connects(), 2u);
  EXPECT_TRUE(c.conn().tls_resumed());  // the first session's ticket: no certificate exchange
}

// Each ticket is used once (RFC 8446 C.4), and each connection's own tickets resume the next, in
// TLS 1.3 and in TLS 1.2 (whose session comes with the handshake).
TEST(Tls, EveryReconnectResumesWithTheLastConnectionsTicket) {
  const test::tls_files files;
  for (const char* protocols : {"TLSv1.3", "TLSv1.2"}) {
    SCOPED_TRACE(protocols);
    const int port = test::free_loopback_port();
    auto args = files.server_args(port);
    args.insert(args.end(), {"--tls-protocols", protocols});
    const test::redis_server server(args);
    options o = tls_options_for("rediss://127.0.0.1:" + std::to_string(port), files);
    o.reconnect.initial_delay = 10ms;
    net::loop loop;
    client c(loop, o);
    test::blocking_connection admin(server.socket_path());
    int resumed = 0;
    bool finished = false;
    auto body = [&]() -> detached {
      for (int round = 0; round < 4; ++round) {
        for (int i = 0; i < 200; ++i) {
          if (co_await c.ping()) break;  // the first after a kill may fail: retried
        }
        resumed += c.conn().tls_resumed() ? 1 : 0;
        (void)admin.call({"CLIENT", "KILL", "TYPE", "normal"});
      }
      finished = true;
    };
    body();
    ASSERT_TRUE(run_until(loop, [&] { return finished; }, 20s));
    EXPECT_EQ(resumed, 3);  // every connection but the first
  }
}

// A cluster client seeded with a TLS port reaches every node on its TLS port (CLUSTER SHARDS lists
// both: the TLS one is taken), verified by the IP entry of the nodes' certificate.
TEST(Tls, ClusterNodesAreReachedOverTls) {
  const test::tls_files files;
  test::redis_cluster cluster(3, 0, 2000, &files);
  const options o = tls_options_for("rediss://127.0.0.1:" + std::to_string(cluster.tls_port(0)) + "?cluster=yes", files);
  net::loop loop;
  client c(loop, o);
  bool finished = false;
  auto body = [&]() -> detached {
    for (int i = 0; i < 60; ++i) {
      const auto r = co_await c.set("key:" + std::to_string(i), std::to_string(i * i));
      EXPECT_TRUE(r) << (r ? std::string() : r.error().what());
    }
    for (int i = 0; i < 60; ++i) {
      const auto v = co_await c.get("key:" + std::to_string(i));
      EXPECT_TRUE(v && *v == std::optional<std::string>(std::to_string(i * i))) << (v ? "nil" : v.error().what());
    }
    finished = true;
  };
  body();
  ASSERT_TRUE(run_until(loop, [&] { return finished; }, 30s));
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    test::blocking_connection admin(cluster.node(i).socket_path());
    const std::string clients = admin.call({"CLIENT", "LIST"}).text;
    EXPECT_NE(clients.find("laddr=127.0.0.1:" + std::to_string(cluster.tls_port(i)) + " "), std::string::npos) << clients;
    EXPECT_EQ(clients.find("laddr=127.0.0.1:" + std::to_string(cluster.port(i)) + " "), std::string::npos) << clients;
  }
}

}  // namespace
}  // namespace redring::client
