// SPDX-License-Identifier: MIT
#include "client/error.hpp"

#include <string>

namespace redring::client {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redring.client"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::connection_lost: return "connection lost before the reply arrived";
      case errc::timeout: return "command timed out";
      case errc::offline_queue_full: return "not connected and the offline queue is full";
      case errc::protocol_error: return "protocol error: the server sent invalid RESP";
      case errc::auth_failed: return "authentication failed";
      case errc::handshake_failed: return "connection handshake failed";
      case errc::shutting_down: return "client is shutting down";
      case errc::invalid_url: return "invalid URL";
      case errc::tls_failed: return "TLS could not be set up";
      case errc::connect_failed: return "cannot connect to the server";
      case errc::transaction_aborted: return "transaction aborted: a watched key changed";
      case errc::cross_slot: return "CROSSSLOT: the keys of this command are in different hash slots (not sent)";
      case errc::cluster_topology: return "no usable cluster topology (not a cluster, no node answers, or no primary serves a slot)";
      case errc::slot_unserved: return "no cluster node serves this key's hash slot";
      case errc::invalid_argument: return "invalid argument for this command (not sent)";
      case errc::unsupported_command:
        return "not supported: this command would put the connection's replies out of step (SUBSCRIBE and the other "
               "pub/sub subscriptions: use a client::subscriber; MONITOR, CLIENT REPLY OFF|SKIP, a MULTI alone or left open: use a transaction); "
               "not sent";
    }
    return "unknown redring.client error";
  }
};

}  // namespace

const std::error_category& client_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace redring::client
