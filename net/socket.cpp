// SPDX-License-Identifier: MIT
#include "net/socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

namespace redring::net {

int open_stream_socket(const address& a, const socket_options& opts, std::error_code& ec) {
  const int fd = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec.assign(errno, std::system_category());
    return -1;
  }
  if (a.family() == AF_INET || a.family() == AF_INET6) {
    const int one = 1;
    if (opts.no_delay) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opts.keepalive_s > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &opts.keepalive_s, sizeof opts.keepalive_s);
    }
  }
  ec.clear();
  return fd;
}

}  // namespace redring::net
