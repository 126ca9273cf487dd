// SPDX-License-Identifier: MIT
#include "tools/fuzz/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace redring::fuzz {
namespace {

// Resolves `where` (TCP) to its first address; false with errno-like `err`.
bool resolve(const endpoint& where, sockaddr_storage& addr, socklen_t& len, int& err) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string port = std::to_string(where.port);
  if (::getaddrinfo(where.host.c_str(), port.c_str(), &hints, &list) != 0 || list == nullptr) {
    err = EHOSTUNREACH;
    return false;
  }
  std::memcpy(&addr, list->ai_addr, list->ai_addrlen);
  len = list->ai_addrlen;
  ::freeaddrinfo(list);
  return true;
}

}  // namespace

std::string endpoint::describe() const {
  if (!unix_path.empty()) return "unix:" + unix_path;
  // An IPv6 address in brackets, so that its port reads apart: [::1]:6379.
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out.append(":").append(std::to_string(port));
  return out;
}

int poll_timeout(clock::time_point deadline) noexcept {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  // Round up so that a wait never ends just before its deadline and spins.
  return left <= 0 ? 0 : static_cast<int>(left) + 1;
}

connection connection::open(const endpoint& where, clock::time_point deadline, int& err) {
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_UNIX;
  if (!where.unix_path.empty()) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    un->sun_family = AF_UNIX;
    if (where.unix_path.size() >= sizeof(un->sun_path)) {
      err = ENAMETOOLONG;
      return {};
    }
    std::memcpy(un->sun_path, where.unix_path.c_str(), where.unix_path.size() + 1);
    len = sizeof(sockaddr_un);
  } else {
    if (!resolve(where, addr, len, err)) return {};
    family = addr.ss_family;
  }
  connection c(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!c.is_open()) {
    err = errno;
    return {};
  }
  if (family != AF_UNIX) {
    const int one = 1;
    ::setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), len) == 0) return c;
  if (errno != EINPROGRESS && errno != EAGAIN) {
    err = errno;
    return {};
  }
  pollfd p{c.fd_, POLLOUT, 0};
  if (::poll(&p, 1, poll_timeout(deadline)) <= 0) {
    err = ETIMEDOUT;
    return {};
  }
  int so_error = 0;
  socklen_t so_len = sizeof so_error;
  ::getsockopt(c.fd_, SOL_SOCKET, SO_ERROR, &so_error, &so_len);
  if (so_error != 0) {
    err = so_error;
    return {};
  }
  return c;
}

io_status connection::send(std::string_view out, std::string& in, clock::time_point deadline) {
  while (!out.empty()) {
    pollfd p{fd_, POLLOUT | POLLIN, 0};
    const int ready = ::poll(&p, 1, poll_timeout(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return io_status::timeout;
    if (p.revents & POLLIN) {
      const io_status s = receive(in, clock::now());
      if (s == io_status::error) return s;
      // EOF while sending: the peer may still have sent replies we keep; the rest cannot go out.
      if (s == io_status::eof) return s;
    }
    if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
      const ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return errno == EPIPE || errno == ECONNRESET ? io_status::eof : io_status::error;
      }
      out.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  return io_status::ok;
}

io_status connection::receive(std::string& in, clock::time_point deadline) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      return io_status::ok;
    }
    if (n == 0) return io_status::eof;
    if (errno == ECONNRESET) return io_status::eof;
    if (errno != EAGAIN && errno != EINTR) return io_status::error;
    pollfd p{fd_, POLLIN, 0};
    const int timeout = poll_timeout(deadline);
    if (timeout == 0) return io_status::timeout;
    const int ready = ::poll(&p, 1, timeout);
    if (ready == 0) return io_status::timeout;
  }
}

void connection::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool is_loopback(endpoint& where, std::string& why) {
  if (!where.unix_path.empty()) return true;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (::getaddrinfo(where.host.c_str(), nullptr, &hints, &list) != 0 || list == nullptr) {
    why = "cannot resolve " + where.host;
    return false;
  }
  bool loop = true;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      const auto ip = ntohl(reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr.s_addr);
      loop = loop && (ip >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      loop = loop && IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr);
    }
  }
  // Every later connection goes to the address checked here, not to a fresh lookup of the name
  // (which could answer differently).
  char numeric[NI_MAXHOST];
  const bool pinned = loop && ::getnameinfo(list->ai_addr, list->ai_addrlen, numeric, sizeof numeric, nullptr, 0, NI_NUMERICHOST) == 0;
  ::freeaddrinfo(list);
  if (!loop) {
    why = where.host + " is not a loopback address: pass --allow-remote to fuzz a remote server";
    return false;
  }
  if (!pinned) {
    why = "cannot take the address of " + where.host;
    return false;
  }
  where.host = numeric;
  return true;
}

}  // namespace redring::fuzz
