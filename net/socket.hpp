// SPDX-License-Identifier: MIT
// Stream sockets for the loop: creation with the options a Redis client wants.
#pragma once

#include "net/address.hpp"

#include <system_error>

namespace redring::net {

/// Socket options for a new connection.
struct socket_options {
  bool no_delay = true;    ///< TCP_NODELAY: pipelined commands leave at once.
  int keepalive_s = 60;    ///< TCP keepalive idle seconds (0: off). TCP only.
};

/// Creates a stream socket for `a`'s family with `opts` applied (close-on-exec). Returns the fd, or
/// -1 with `ec` set. Connecting is the loop's job (IORING_OP_CONNECT).
[[nodiscard]] int open_stream_socket(const address& a, const socket_options& opts, std::error_code& ec);

}  // namespace redring::net
