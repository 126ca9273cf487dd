// SPDX-License-Identifier: MIT
// Test support: certificates for a TLS redis-server, made fresh (no files checked in, none expire).
#pragma once

#include <string>
#include <vector>

namespace redring::test {

/// PEM files in a fresh temp dir (removed on destruction): a CA; a server certificate it signed for
/// IP 127.0.0.1 and DNS localhost; a client certificate it signed; a second CA that signed neither,
/// and a server certificate it signed (a server that a client trusting the first CA must refuse).
/// P-256 keys, valid from an hour ago for a year. Throws std::runtime_error on failure.
struct tls_files {
  tls_files();
  ~tls_files();
  tls_files(const tls_files&) = delete;
  tls_files& operator=(const tls_files&) = delete;

  /// redis-server arguments for a TLS port `port` serving `cert`/`key` (the first CA's server
  /// certificate by default), asking clients for a certificate of the first CA if `client_auth`.
  [[nodiscard]] std::vector<std::string> server_args(int port, bool client_auth = false) const;
  [[nodiscard]] std::vector<std::string> server_args(int port, bool client_auth, const std::string& cert,
                                                     const std::string& key) const;

  std::string dir;
  std::string ca_cert;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string other_ca_cert;
  std::string other_server_cert, other_server_key;
};

}  // namespace redring::test
