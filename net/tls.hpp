// SPDX-License-Identifier: MIT
// TLS over any byte stream, without I/O: OpenSSL with memory BIOs. The owner moves ciphertext
// between the socket and the session (so receives and sends stay io_uring's), and plaintext between
// the session and its protocol. Knows nothing of Redis.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

// OpenSSL's types, declared so that this header does not pull in <openssl/ssl.h>.
struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;
struct bio_st;

namespace redring::net {

/// What a TLS client trusts and presents.
struct tls_options {
  bool enabled = false;     ///< Speak TLS on the connection.
  /// PEM file of the CAs to verify the server with. With `ca_path` also empty: the system's default
  /// trust store (Debian: /etc/ssl/certs).
  std::string ca_file;
  std::string ca_path;      ///< A directory of hashed CA certificates (`openssl rehash`), besides `ca_file`.
  /// PEM client certificate (with its chain), for servers that require one (`tls-auth-clients yes`).
  std::string cert_file;
  std::string key_file;     ///< The client certificate's PEM private key ("": read from `cert_file`).
  /// Verify the server's certificate chain and name. false: encrypted but not authenticated, open to
  /// any man in the middle; for tests and closed networks only.
  bool verify_peer = true;
  /// The name the server's certificate must carry, also sent as SNI. "": the host connected to (an
  /// IP address is then matched against the certificate's IP entries, and no SNI is sent).
  std::string server_name;
};

/// A client-side SSL_CTX: the trust store and the client certificate, loaded once and shared by the
/// sessions of a connection across its reconnects. TLS 1.2 at least.
class tls_context {
 public:
  /// Loads what `o` names. On failure (a file that cannot be read or parsed, a key that does not
  /// match its certificate) returns null and sets `error` to say which and why.
  [[nodiscard]] static std::shared_ptr<tls_context> create(const tls_options& o, std::string& error);
  /// As `create`, or a context made from the same settings that is still in use: loading a trust
  /// store takes milliseconds (the system's: ~20 ms here), once per process and settings instead of
  /// once per connection. Thread-safe. A file changed on disk is read again once no one uses it.
  [[nodiscard]] static std::shared_ptr<tls_context> shared(const tls_options& o, std::string& error);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  /// The options it was made from.
  [[nodiscard]] const tls_options& options() const noexcept { return options_; }
  /// The OpenSSL context (valid for this object's life).
  [[nodiscard]] ssl_ctx_st* native() const noexcept { return ctx_; }

 private:
  tls_context(ssl_ctx_st* ctx, const tls_options& o) : ctx_(ctx), options_(o) {}
  ssl_ctx_st* ctx_;
  tls_options options_;
};

/// A TLS session's resumption state (a TLS 1.3 ticket or a 1.2 session), shared (reference counted
/// by OpenSSL): given to the next `tls_stream` to the same server, its handshake skips the
/// certificate exchange. Empty by default.
class tls_session {
 public:
  tls_session() = default;
  /// Takes over one reference to `s` (may be null).
  explicit tls_session(ssl_session_st* s) noexcept : s_(s) {}
  tls_session(const tls_session& o) noexcept;
  tls_session& operator=(const tls_session& o) noexcept;
  tls_session(tls_session&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  tls_session& operator=(tls_session&& o) noexcept;
  ~tls_session();
  /// True if it holds a session.
  explicit operator bool() const noexcept { return s_ != nullptr; }
  /// The OpenSSL session (valid while this holds it).
  [[nodiscard]] ssl_session_st* native() const noexcept { return s_; }

 private:
  ssl_session_st* s_ = nullptr;
};

/// One TLS client session over a stream the owner carries (sans I/O):
/// - ciphertext from the peer goes in with `received`; ciphertext for the peer comes out of
///   `take_output`, which the owner sends (after `handshake`, `write`, and `read`: a session may answer
///   the peer, e.g. a TLS 1.3 key update);
/// - `handshake` until it returns `done`; then plaintext with `read` and `write`.
/// Every outcome other than `ok`/`done`/`want_input` leaves the reason in `error()`.
class tls_stream {
 public:
  /// What a call found.
  enum class result : std::uint8_t {
    done,        ///< The handshake is complete (`handshake` only).
    ok,          ///< Bytes were decrypted (`read`).
    want_input,  ///< More ciphertext from the peer is needed.
    closed,      ///< The peer closed the session (close_notify).
    error,       ///< A TLS failure: certificate verification, an alert, garbage; see `error()`.
  };

  /// A session on `ctx` to `host` (the name or numeric address connected to; see
  /// `tls_options::server_name`), resuming `resume` if it holds one (from an earlier stream to the
  /// same server and name; a server that no longer knows it makes a full handshake). Failure to set
  /// it up is reported by the first `handshake`.
  tls_stream(const tls_context& ctx, const std::string& host, const tls_session& resume = {});
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  /// Advances the handshake with the ciphertext received so far.
  [[nodiscard]] result handshake();
  /// True once `handshake` returned `done`.
  [[nodiscard]] bool established() const noexcept { return established_; }
  /// True if the handshake resumed the session given at construction.
  [[nodiscard]] bool resumed() const noexcept;
  /// The newest resumable session the server gave (TLS 1.2: at the end of the handshake; TLS 1.3:
  /// its tickets, sent after the handshake and read by `read`), handed over once: empty if none came
  /// since the last call.
  [[nodiscard]] tls_session take_new_session() noexcept { return std::move(new_session_); }
  /// True if `take_new_session` has one to give (inline: asked after every receive).
  [[nodiscard]] bool has_new_session() const noexcept { return static_cast<bool>(new_session_); }
  /// Ciphertext from the peer (copied: `bytes` may be released when this returns).
  void received(std::string_view bytes);
  /// Decrypts into `out` (not empty); `n` gets the bytes written. `ok` with n > 0, or why none.
  [[nodiscard]] result read(std::span<char> out, std::size_t& n);
  /// Encrypts the first bytes of `pieces`, at most about `budget` (whole TLS records of them);
  /// returns how many plaintext bytes it took: all of them up to the budget, fewer only on a
  /// failure, which `error()` then names (the session is unusable). After `handshake` returned `done`.
  [[nodiscard]] std::size_t write(std::span<const iovec> pieces, std::size_t budget);
  /// Appends the ciphertext waiting to be sent to `out`; returns how many bytes.
  std::size_t take_output(std::string& out);
  /// True if ciphertext waits to be sent.
  [[nodiscard]] bool has_output() const noexcept;
  /// Why the last call failed ("" if none did).
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 private:
  result failed(int ssl_result);

  friend int on_new_tls_session(ssl_st* ssl, ssl_session_st* session);

  ssl_st* ssl_ = nullptr;
  bio_st* in_ = nullptr;   // ciphertext received, read by the session (owned by ssl_)
  bio_st* out_ = nullptr;  // ciphertext written by the session, to send (owned by ssl_)
  bool established_ = false;
  bool verify_ = true;     // the context verifies the server (else its verify result means nothing)
  tls_session new_session_;  // set by the context's new-session callback
  std::string error_;
};

}  // namespace redring::net
