// SPDX-License-Identifier: MIT
#include "net/address.hpp"

#include "net/error.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

namespace redring::net {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redring.net"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::resolve_failed: return "host name could not be resolved";
      case errc::path_too_long: return "unix socket path too long";
      case errc::connect_timeout: return "connect timed out";
      case errc::closed_by_peer: return "connection closed by peer";
      case errc::cancelled: return "operation cancelled";
    }
    return "unknown redring.net error";
  }
};

}  // namespace

const std::error_category& net_category() noexcept {
  static const category instance;
  return instance;
}

std::error_code address::from_unix_path(std::string_view path, address& out) {
  sockaddr_un un{};
  if (path.empty() || path.size() >= sizeof(un.sun_path)) return errc::path_too_long;
  un.sun_family = AF_UNIX;
  std::memcpy(un.sun_path, path.data(), path.size());
  std::memcpy(&out.storage_, &un, sizeof un);
  out.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return {};
}

bool address::from_numeric(std::string_view host, std::uint16_t port, address& out) {
  const std::string h(host);
  sockaddr_in v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(port);
    std::memcpy(&out.storage_, &v4, sizeof v4);
    out.length_ = sizeof v4;
    return true;
  }
  sockaddr_in6 v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(port);
    std::memcpy(&out.storage_, &v6, sizeof v6);
    out.length_ = sizeof v6;
    return true;
  }
  return false;
}

std::error_code address::resolve(const std::string& host, std::uint16_t port, std::vector<address>& out) {
  out.clear();
  address numeric;
  if (from_numeric(host, port, numeric)) {
    out.push_back(numeric);
    return {};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &list) != 0 || list == nullptr) {
    return errc::resolve_failed;
  }
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    address a;
    std::memcpy(&a.storage_, ai->ai_addr, ai->ai_addrlen);
    a.length_ = ai->ai_addrlen;
    out.push_back(a);
  }
  ::freeaddrinfo(list);
  return out.empty() ? std::error_code(errc::resolve_failed) : std::error_code();
}

std::string address::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  switch (storage_.ss_family) {
    case AF_INET: {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage_);
      ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
      return std::string(text) + ":" + std::to_string(ntohs(v4->sin_port));
    }
    case AF_INET6: {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
      ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
      std::string out = "[";
      out.append(text).append("]:").append(std::to_string(ntohs(v6->sin6_port)));
      return out;
    }
    case AF_UNIX: return "unix:" + std::string(reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path);
    default: return "unspecified";
  }
}

}  // namespace redring::net
