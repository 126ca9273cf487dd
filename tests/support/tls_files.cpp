// SPDX-License-Identifier: MIT
#include "tests/support/tls_files.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace redring::test {
namespace {

struct key_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct cert_deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_deleter>;
using cert_ptr = std::unique_ptr<X509, cert_deleter>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("tls_files: ") + what);
}

key_ptr new_key() {
  key_ptr k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EC key generation");
  return k;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(e != nullptr, "certificate extension");
  X509_add_ext(cert, e, -1);
  X509_EXTENSION_free(e);
}

// A certificate for `key` named `cn`, signed by `issuer_key` (itself for a CA when issuer is null).
cert_ptr new_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca, const char* alt_names) {
  static long serial = 1;
  cert_ptr x(X509_new());
  check(x != nullptr, "X509_new");
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 365L * 24 * 3600);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(signer));
  add_extension(x.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_extension(x.get(), signer, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add_extension(x.get(), signer, NID_subject_key_identifier, "hash");
  if (!ca) add_extension(x.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  if (alt_names != nullptr) add_extension(x.get(), signer, NID_subject_alt_name, alt_names);
  check(X509_sign(x.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return x;
}

void write_cert(const std::string& path, X509* x) {
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open a certificate file");
  const bool ok = PEM_write_X509(f, x) == 1;
  std::fclose(f);
  check(ok, "PEM_write_X509");
}

void write_key(const std::string& path, EVP_PKEY* k) {
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "open a key file");
  const bool ok = PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  check(ok, "PEM_write_PrivateKey");
}

}  // namespace

tls_files::tls_files() {
  std::string templ = (std::filesystem::temp_directory_path() / "redring-tls-XXXXXX").string();
  check(mkdtemp(templ.data()) != nullptr, "mkdtemp");
  dir = templ;
  ca_cert = dir + "/ca.crt";
  server_cert = dir + "/server.crt";
  server_key = dir + "/server.key";
  client_cert = dir + "/client.crt";
  client_key = dir + "/client.key";
  other_ca_cert = dir + "/other-ca.crt";
  other_server_cert = dir + "/other-server.crt";
  other_server_key = dir + "/other-server.key";

  const key_ptr ca_key = new_key(), server_k = new_key(), client_k = new_key(), other_ca_key = new_key(),
                other_server_k = new_key();
  const cert_ptr ca = new_cert(ca_key.get(), "redring test CA", nullptr, nullptr, true, nullptr);
  const cert_ptr server = new_cert(server_k.get(), "localhost", ca.get(), ca_key.get(), false, "IP:127.0.0.1,DNS:localhost");
  const cert_ptr client = new_cert(client_k.get(), "redring test client", ca.get(), ca_key.get(), false, nullptr);
  const cert_ptr other_ca = new_cert(other_ca_key.get(), "another CA", nullptr, nullptr, true, nullptr);
  const cert_ptr other_server =
      new_cert(other_server_k.get(), "localhost", other_ca.get(), other_ca_key.get(), false, "IP:127.0.0.1,DNS:localhost");
  write_cert(ca_cert, ca.get());
  write_cert(server_cert, server.get());
  write_key(server_key, server_k.get());
  write_cert(client_cert, client.get());
  write_key(client_key, client_k.get());
  write_cert(other_ca_cert, other_ca.get());
  write_cert(other_server_cert, other_server.get());
  write_key(other_server_key, other_server_k.get());
}

tls_files::~tls_files() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

std::vector<std::string> tls_files::server_args(int port, bool client_auth) const {
  return server_args(port, client_auth, server_cert, server_key);
}

std::vector<std::string> tls_files::server_args(int port, bool client_auth, const std::string& cert,
                                                const std::string& key) const {
  return {"--tls-port", std::to_string(port), "--tls-cert-file", cert, "--tls-key-file", key,
          "--tls-ca-cert-file", ca_cert, "--tls-auth-clients", client_auth ? "yes" : "no"};
}

}  // namespace redring::test
