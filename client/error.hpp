// SPDX-License-Identifier: MIT
// Error codes of the client: why a command completed without a reply.
#pragma once

#include <system_error>

namespace redring::client {

/// Why a command produced no reply, or why a client could not be set up. Server error replies are
/// not here: they arrive as `resp::errc::server_error` with the server's text.
enum class errc : int {
  connection_lost = 1,   ///< The connection dropped after the command was sent; it may or may not have run.
  timeout,               ///< No reply within the command's timeout; the connection stays in sync.
  offline_queue_full,    ///< Not connected, and the offline queue is at its bound.
  protocol_error,        ///< The server sent bytes that are not RESP; the connection was reset.
  auth_failed,           ///< The server refused the credentials (or the ACL user); no retry.
  handshake_failed,      ///< HELLO/SELECT/SETNAME failed for another reason.
  shutting_down,         ///< The client is closing; the command was not sent.
  invalid_url,           ///< A URL could not be parsed; the message names the bad part.
  tls_failed,            ///< TLS could not be set up: a certificate or key file that does not load, a server certificate that fails verification, a TLS alert (the message says which).
  connect_failed,        ///< The server could not be reached (the message says why).
  transaction_aborted,   ///< EXEC returned null: a WATCHed key changed, nothing ran.
  cross_slot,            ///< Cluster: the command's keys are in different slots and it cannot be split; not sent.
  cluster_topology,      ///< Cluster: no usable topology (the server is not a cluster, no node answers, or it has no primary).
  slot_unserved,         ///< Cluster: no node serves the key's slot (after the retries allow).
  invalid_argument,      ///< A helper was given arguments its command refuses (the message says which); not sent.
  unsupported_command,   ///< A command that would break the connection's reply stream (SUBSCRIBE: use `subscriber`; MONITOR, CLIENT REPLY OFF, MULTI alone or left open by a pipeline; see request::unsupported); not sent.
};

/// The "redring.client" category.
[[nodiscard]] const std::error_category& client_category() noexcept;

/// The error_code of a success, made once: `std::error_code{}` calls `std::system_category()`, an
/// out-of-line call, each time, and every completed command passes one.
inline const std::error_code no_error{};

/// Makes `e` an error_code in `client_category()` (found by ADL).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), client_category()}; }

}  // namespace redring::client

template <>
struct std::is_error_code_enum<redring::client::errc> : std::true_type {};
