// SPDX-License-Identifier: MIT
// net::tls_stream against an OpenSSL server held in memory (what a real redis-server never does:
// renegotiate), and tls_context's sharing.
#include "net/tls.hpp"

#include "tests/support/tls_files.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <string>

namespace redring::net {
namespace {

// A TLS server over memory BIOs, driven by the test.
struct memory_server {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  memory_server(const test::tls_files& f, int max_version) {
    ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_max_proto_version(ctx, max_version);
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx, f.server_cert.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, f.server_key.c_str(), SSL_FILETYPE_PEM), 1);
    ssl = SSL_new(ctx);
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl, in, out);
    SSL_set_accept_state(ssl);
  }
  ~memory_server() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  memory_server(const memory_server&) = delete;
  memory_server& operator=(const memory_server&) = delete;
  std::string take() {
    std::string s;
    char buf[16384];
    int n = 0;
    while ((n = BIO_read(SSL_get_wbio(ssl), buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
    return s;
  }
  void give(const std::string& s) { BIO_write(SSL_get_rbio(ssl), s.data(), static_cast<int>(s.size())); }
  std::string read_plaintext() {
    std::string s;
    char buf[4096];
    std::size_t n = 0;
    while (SSL_read_ex(ssl, buf, sizeof buf, &n) == 1) s.append(buf, n);
    return s;
  }
};

// Moves the handshake's messages between `c` and `s` until both are done.
bool handshake(tls_stream& c, memory_server& s) {
  for (int i = 0; i < 10; ++i) {
    const auto r = c.handshake();
    std::string to_server;
    c.take_output(to_server);
    s.give(to_server);
    SSL_do_handshake(s.ssl);
    c.received(s.take());
    if (r == tls_stream::result::done && SSL_is_init_finished(s.ssl)) return true;
  }
  return false;
}

std::shared_ptr<tls_context> context_for(const test::tls_files& files) {
  tls_options o;
  o.enabled = true;
  o.ca_file = files.ca_cert;
  std::string why;
  auto ctx = tls_context::shared(o, why);
  EXPECT_TRUE(ctx) << why;
  return ctx;
}

TEST(TlsStream, PlaintextBothWays) {
  const test::tls_files files;
  const auto ctx = context_for(files);
  memory_server s(files, TLS1_3_VERSION);
  tls_stream c(*ctx, "127.0.0.1");
  ASSERT_TRUE(handshake(c, s)) << c.error();
  const std::string ping = "*1\r\n$4\r\nPING\r\n";
  const iovec pieces[] = {{const_cast<char*>(ping.data()), 5}, {const_cast<char*>(ping.data()) + 5, ping.size() - 5}};
  EXPECT_EQ(c.write(pieces, 1 << 20), ping.size());
  EXPECT_EQ(c.write(pieces, 3), 3u);  // the budget: 3 bytes of the first piece
  std::string wire;
  c.take_output(wire);
  EXPECT_EQ(wire.find("PING"), std::string::npos);  // encrypted
  s.give(wire);
  EXPECT_EQ(s.read_plaintext(), ping + "*1\r");
  SSL_write(s.ssl, "+PONG\r\n", 7);
  c.received(s.take());
  char buf[64];
  std::size_t n = 0;
  ASSERT_EQ(c.read(buf, n), tls_stream::result::ok);
  EXPECT_EQ(std::string(buf, n), "+PONG\r\n");
  EXPECT_EQ(c.read(buf, n), tls_stream::result::want_input);
  SSL_shutdown(s.ssl);  // close_notify
  c.received(s.take());
  EXPECT_EQ(c.read(buf, n), tls_stream::result::closed);
}

// A TLS 1.2 server (or a proxy) asking to renegotiate: refused, and the write goes on. (Accepted,
// the session's next write waited for the server's answer and failed with no reason given.)
TEST(TlsStream, RenegotiationIsRefusedAndWritesGoOn) {
  const test::tls_files files;
  const auto ctx = context_for(files);
  memory_server s(files, TLS1_2_VERSION);
  tls_stream c(*ctx, "127.0.0.1");
  ASSERT_TRUE(handshake(c, s)) << c.error();
  ASSERT_EQ(SSL_renegotiate(s.ssl), 1);
  ASSERT_EQ(SSL_do_handshake(s.ssl), 1);  // sends HelloRequest
  c.received(s.take());
  char buf[256];
  std::size_t n = 0;
  EXPECT_EQ(c.read(buf, n), tls_stream::result::want_input);
  const std::string ping = "*1\r\n$4\r\nPING\r\n";
  const iovec v{const_cast<char*>(ping.data()), ping.size()};
  EXPECT_EQ(c.write(std::span<const iovec>(&v, 1), 256 * 1024), ping.size()) << c.error();
  std::string wire;
  c.take_output(wire);
  s.give(wire);
  // The client's answer reached the server: "no renegotiation" (an OpenSSL server then gives up, and
  // the connection ends with the server's alert, a reason the client reports).
  ERR_clear_error();
  EXPECT_EQ(s.read_plaintext(), "");
  const char* reason = ERR_reason_error_string(ERR_peek_last_error());
  EXPECT_STREQ(reason != nullptr ? reason : "", "no renegotiation");
  ERR_clear_error();
}

TEST(TlsContext, SharedBySettings) {
  const test::tls_files files;
  const auto a = context_for(files);
  const auto b = context_for(files);
  EXPECT_EQ(a, b);  // loaded once
  tls_options other;
  other.enabled = true;
  other.ca_file = files.ca_cert;
  other.server_name = "localhost";
  std::string why;
  const auto c = tls_context::shared(other, why);
  ASSERT_TRUE(c) << why;
  EXPECT_NE(a, c);
  other.ca_file = files.dir + "/nothing.pem";
  EXPECT_EQ(tls_context::shared(other, why), nullptr);
  EXPECT_NE(why.find("nothing.pem"), std::string::npos) << why;
}

}  // namespace
}  // namespace redring::net
