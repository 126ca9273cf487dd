// SPDX-License-Identifier: MIT
// Error codes of the network layer that the system's errno values do not cover.
#pragma once

#include <system_error>

namespace redring::net {

/// Network errors that are not an errno (those use std::system_category()).
enum class errc : int {
  resolve_failed = 1,  ///< getaddrinfo found no address for the host.
  path_too_long,       ///< A Unix socket path does not fit sockaddr_un.
  connect_timeout,     ///< The connection was not established within its timeout.
  closed_by_peer,      ///< The peer closed the connection.
  cancelled,           ///< The operation was cancelled (shutdown, close).
};

/// The "redring.net" category.
[[nodiscard]] const std::error_category& net_category() noexcept;

/// Makes `e` an error_code in `net_category()` (found by ADL).
[[nodiscard]] inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), net_category()}; }

}  // namespace redring::net

template <>
struct std::is_error_code_enum<redring::net::errc> : std::true_type {};
