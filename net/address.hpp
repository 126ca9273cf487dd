// SPDX-License-Identifier: MIT
// Socket addresses: IPv4, IPv6 and Unix paths, and name resolution.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace redring::net {

/// A socket address (sockaddr_storage) that any of AF_INET, AF_INET6, AF_UNIX fits in.
class address {
 public:
  address() = default;
  /// A Unix socket path; `errc::path_too_long` if it does not fit.
  [[nodiscard]] static std::error_code from_unix_path(std::string_view path, address& out);
  /// A numeric IPv4 or IPv6 address and port ("127.0.0.1", "::1"); false if `host` is not numeric.
  [[nodiscard]] static bool from_numeric(std::string_view host, std::uint16_t port, address& out);
  /// Resolves `host` (numeric, or a name through getaddrinfo: blocking, so call it at configuration
  /// time or off the loop thread). Addresses come in getaddrinfo's order.
  [[nodiscard]] static std::error_code resolve(const std::string& host, std::uint16_t port, std::vector<address>& out);

  [[nodiscard]] const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  [[nodiscard]] socklen_t length() const noexcept { return length_; }
  [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
  /// "127.0.0.1:6379", "[::1]:6379" or "unix:/path".
  [[nodiscard]] std::string to_string() const;

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

/// Looks up a host name: fills `out` (in the order to try) or returns an error. Blocking: a loop
/// runs it on its resolver's thread (`loop::name_resolver`). `address::resolve` by default
/// (`loop_options::lookup`); another one may ask a service registry or a test's table.
using lookup_fn = std::error_code (*)(const std::string& host, std::uint16_t port, std::vector<address>& out);

}  // namespace redring::net
