// SPDX-License-Identifier: MIT
#include "net/tls.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <climits>
#include <mutex>
#include <vector>

namespace redring::net {
namespace {

// OpenSSL's error queue (thread-local) as one line, emptied; `fallback` if it holds nothing.
std::string take_openssl_errors(std::string fallback) {
  std::string text;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? fallback : text;
}

// `host` without an IPv6 zone ("fe80::1%eth0": the zone is local, not in any certificate) if it is an
// IP address, else "".
std::string ip_address(const std::string& host) {
  const std::string address = host.substr(0, host.find('%'));
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, address.c_str(), buf) == 1 || inet_pton(AF_INET6, address.c_str(), buf) == 1) return address;
  return {};
}

bool same_settings(const tls_options& a, const tls_options& b) {
  return a.ca_file == b.ca_file && a.ca_path == b.ca_path && a.cert_file == b.cert_file && a.key_file == b.key_file &&
         a.verify_peer == b.verify_peer && a.server_name == b.server_name;
}

}  // namespace

// OpenSSL's new-session callback (SSL_SESS_CACHE_CLIENT): the stream keeps the newest. Returning 1
// keeps the reference OpenSSL passed.
int on_new_tls_session(SSL* ssl, SSL_SESSION* session) {
  auto* stream = static_cast<tls_stream*>(SSL_get_app_data(ssl));
  if (stream == nullptr || SSL_SESSION_is_resumable(session) != 1) return 0;
  stream->new_session_ = tls_session(session);
  return 1;
}

tls_session::tls_session(const tls_session& o) noexcept : s_(o.s_) {
  if (s_ != nullptr) SSL_SESSION_up_ref(s_);
}

tls_session& tls_session::operator=(const tls_session& o) noexcept {
  if (o.s_ != nullptr) SSL_SESSION_up_ref(o.s_);
  SSL_SESSION_free(s_);
  s_ = o.s_;
  return *this;
}

tls_session& tls_session::operator=(tls_session&& o) noexcept {
  if (this != &o) {
    SSL_SESSION_free(s_);
    s_ = o.s_;
    o.s_ = nullptr;
  }
  return *this;
}

tls_session::~tls_session() { SSL_SESSION_free(s_); }

std::shared_ptr<tls_context> tls_context::create(const tls_options& o, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    error = take_openssl_errors("cannot create a TLS context");
    return nullptr;
  }
  auto fail = [&](std::string what) {
    error = what + ": " + take_openssl_errors("unknown error");
    SSL_CTX_free(ctx);
    return nullptr;
  };
  // TLS 1.0 and 1.1 are deprecated (RFC 8996); Redis 6+ speaks 1.2 and 1.3.
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return fail("cannot require TLS 1.2");
  // A TLS 1.2 server (or a proxy) asking to renegotiate would make a write wait for the peer, which
  // a session over memory buffers cannot; Redis never asks. Refused (RFC 5746 allows it).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Sessions are kept by their connection for its reconnects (tls_session), not in an internal
  // cache: the callback hands each new one to its stream.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_tls_session);
  if (o.verify_peer) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!o.ca_file.empty() || !o.ca_path.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, o.ca_file.empty() ? nullptr : o.ca_file.c_str(),
                                        o.ca_path.empty() ? nullptr : o.ca_path.c_str()) != 1) {
        return fail("cannot load the CA certificates (" + (o.ca_file.empty() ? o.ca_path : o.ca_file) + ")");
      }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return fail("cannot load the system's CA certificates");
    }
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
      return fail("cannot load the client certificate " + o.cert_file);
    }
    const std::string& key = o.key_file.empty() ? o.cert_file : o.key_file;
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail("cannot load the client key " + key);
    }
    if (SSL_CTX_check_private_key(ctx) != 1) return fail("the client key " + key + " does not match its certificate");
  } else if (!o.key_file.empty()) {
    error = "a client key (" + o.key_file + ") without a client certificate";
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return std::shared_ptr<tls_context>(new tls_context(ctx, o));
}

std::shared_ptr<tls_context> tls_context::shared(const tls_options& o, std::string& error) {
  // Loading a trust store takes ~20 ms (the system's: 140+ CAs parsed): once per option set, not per
  // connection (a cluster's nodes, a client's pool, its blocking connections and subscriber).
  static std::mutex mutex;
  static std::vector<std::weak_ptr<tls_context>> contexts;
  const std::lock_guard<std::mutex> lock(mutex);
  std::erase_if(contexts, [](const std::weak_ptr<tls_context>& w) { return w.expired(); });
  for (const auto& w : contexts) {
    if (auto c = w.lock(); c && same_settings(c->options(), o)) return c;
  }
  auto c = create(o, error);
  if (c) contexts.push_back(c);
  return c;
}

tls_context::~tls_context() { SSL_CTX_free(ctx_); }

tls_stream::tls_stream(const tls_context& ctx, const std::string& host, const tls_session& resume) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx.native());
  if (ssl_ == nullptr) {
    error_ = take_openssl_errors("cannot create a TLS session");
    return;
  }
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    in_ = out_ = nullptr;
    SSL_free(ssl_);
    ssl_ = nullptr;
    error_ = "out of memory for a TLS session";
    return;
  }
  // Empty: "retry later" (want_input), not end of stream.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both now
  SSL_set_connect_state(ssl_);
  SSL_set_app_data(ssl_, this);
  if (resume) (void)SSL_set_session(ssl_, resume.native());  // a session it refuses: a full handshake
  const tls_options& o = ctx.options();
  verify_ = o.verify_peer;
  const std::string& name = o.server_name.empty() ? host : o.server_name;
  if (name.empty()) return;  // a Unix socket without server_name: the chain alone is verified
  bool ok = true;
  if (const std::string ip = ip_address(name); !ip.empty()) {
    // An address is matched against the certificate's IP entries (RFC 6125 6.2.1) and is no SNI
    // (RFC 6066 3: literal addresses are not permitted in "HostName").
    if (o.verify_peer) ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), ip.c_str()) == 1;
  } else {
    ok = SSL_set_tlsext_host_name(ssl_, name.c_str()) == 1;
    if (ok && o.verify_peer) ok = SSL_set1_host(ssl_, name.c_str()) == 1;
  }
  if (!ok) {
    error_ = take_openssl_errors("cannot set the server name '" + name + "'");
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
}

tls_stream::~tls_stream() {
  // A connection is mostly closed without close_notify (the peer gone, a reconnect): marked shut
  // down, SSL_free keeps its session resumable, as TLS 1.1+ allows (RFC 5246 7.2.1: failure to close
  // properly no longer forbids resumption). A fatal alert has already made it non-resumable.
  if (ssl_ != nullptr) SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl_);
}

bool tls_stream::resumed() const noexcept { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

tls_stream::result tls_stream::failed(int ssl_result) {
  switch (SSL_get_error(ssl_, ssl_result)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // memory BIOs grow: only if the session wants input first
      return result::want_input;
    case SSL_ERROR_ZERO_RETURN:
      error_ = "the server closed the TLS session";
      return result::closed;
    default:
      break;
  }
  // Without verification OpenSSL still records the chain's check: not the reason for anything then.
  const long verify = SSL_get_verify_result(ssl_);
  if (verify_ && !established_ && verify != X509_V_OK) {
    ERR_clear_error();
    error_ = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
  } else {
    error_ = take_openssl_errors("TLS error");
  }
  return result::error;
}

tls_stream::result tls_stream::handshake() {
  if (ssl_ == nullptr) return result::error;  // error_ says why
  if (established_) return result::done;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    established_ = true;
    // TLS 1.2: the session is known now, and a resumed handshake whose ticket the server renewed
    // does not call the new-session callback (OpenSSL 3.0 ssl_update_cache), while the renewal
    // makes the old session non-resumable: hand over the one in use. (TLS 1.3 tickets come later.)
    if (SSL_version(ssl_) < TLS1_3_VERSION && !new_session_) {
      SSL_SESSION* current = SSL_get1_session(ssl_);
      if (current != nullptr && SSL_SESSION_is_resumable(current) == 1) new_session_ = tls_session(current);
      else SSL_SESSION_free(current);
    }
    return result::done;
  }
  return failed(r);
}

void tls_stream::received(std::string_view bytes) {
  if (in_ == nullptr) return;
  while (!bytes.empty()) {
    const int n = BIO_write(in_, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), INT_MAX)));
    if (n <= 0) return;  // out of memory: the session then wants input for ever; the owner's timeout ends it
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

tls_stream::result tls_stream::read(std::span<char> out, std::size_t& n) {
  n = 0;
  if (ssl_ == nullptr || !established_) return result::error;
  ERR_clear_error();
  const int r = SSL_read_ex(ssl_, out.data(), out.size(), &n);
  return r == 1 ? result::ok : failed(r);
}

std::size_t tls_stream::write(std::span<const iovec> pieces, std::size_t budget) {
  if (ssl_ == nullptr || !established_) return 0;
  std::size_t total = 0;
  for (const iovec& piece : pieces) {
    std::size_t done = 0;
    while (done < piece.iov_len && total < budget) {
      const std::size_t want = std::min<std::size_t>({piece.iov_len - done, budget - total, INT_MAX});
      std::size_t n = 0;
      ERR_clear_error();
      // A memory BIO takes every record: the whole of `want` is written, unless memory runs out.
      if (SSL_write_ex(ssl_, static_cast<const char*>(piece.iov_base) + done, want, &n) != 1) {
        if (failed(0) == result::want_input) error_ = "the TLS session cannot write before it receives";
        return total;
      }
      done += n;
      total += n;
    }
    if (total >= budget) break;
  }
  return total;
}

std::size_t tls_stream::take_output(std::string& out) {
  if (out_ == nullptr) return 0;
  // Read out, not BIO_reset: a memory BIO's reset zeroes its whole allocation (OpenSSL 3.0
  // mem_ctrl), 256 KiB and more after a large send, on every flush.
  const std::size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return 0;
  const std::size_t at = out.size();
  out.resize(at + pending);
  std::size_t n = 0;
  if (BIO_read_ex(out_, out.data() + at, pending, &n) != 1) n = 0;
  out.resize(at + n);
  return n;
}

bool tls_stream::has_output() const noexcept { return out_ != nullptr && BIO_ctrl_pending(out_) > 0; }

}  // namespace redring::net
