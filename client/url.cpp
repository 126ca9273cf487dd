// SPDX-License-Identifier: MIT
#include "client/url.hpp"

#include "client/error.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <vector>

namespace redring::client {
namespace {

std::error_code bad(std::string* message, std::string text) {
  if (message != nullptr) *message = std::move(text);
  return errc::invalid_url;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    unsigned value = 0;
    const auto [p, ec] = std::from_chars(in.data() + i + 1, in.data() + i + 3, value, 16);
    if (ec != std::errc{} || p != in.data() + i + 3) return false;
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return true;
}

template <class T>
bool parse_number(std::string_view s, T& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

bool parse_yes_no(const std::string& value, bool& out) {
  if (value == "yes" || value == "true" || value == "1") out = true;
  else if (value == "no" || value == "false" || value == "0") out = false;
  else return false;
  return true;
}

// `tls_option` is set to true if the query names a tls_* option (which only rediss:// takes), and
// `sentinel_option` for a sentinel_* option (redis+sentinel:// only).
std::error_code apply_query(std::string_view query, options& out, std::string* message, bool& tls_option,
                            bool& sentinel_option) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) return bad(message, "option without a value: '" + std::string(pair) + "'");
    const std::string_view key = pair.substr(0, eq), raw = pair.substr(eq + 1);
    std::string value;
    if (!percent_decode(raw, value)) return bad(message, "bad percent-encoding in option '" + std::string(key) + "'");
    long long n = 0;
    if (key == "db") {
      if (!parse_number(value, n) || n < 0 || n > 1000000) return bad(message, "db must be a number >= 0, not '" + value + "'");
      out.database = static_cast<int>(n);
    } else if (key == "timeout" || key == "command_timeout") {
      if (!parse_number(value, n) || n < 0) return bad(message, std::string(key) + " must be milliseconds, not '" + value + "'");
      out.command_timeout = milliseconds(n);
    } else if (key == "connect_timeout") {
      if (!parse_number(value, n) || n < 0) return bad(message, "connect_timeout must be milliseconds, not '" + value + "'");
      out.connect_timeout = milliseconds(n);
    } else if (key == "name" || key == "client_name") {
      out.client_name = value;
    } else if (key == "protocol" || key == "resp") {
      if (value != "2" && value != "3") return bad(message, "protocol must be 2 or 3, not '" + value + "'");
      out.protocol = value[0] - '0';
    } else if (key == "password") {
      out.password = value;
    } else if (key == "user" || key == "username") {
      out.user = value;
    } else if (key == "cluster") {
      if (!parse_yes_no(value, out.cluster.enabled)) return bad(message, "cluster must be yes or no, not '" + value + "'");
    } else if (key == "tracking") {
      out.tracking.optin = value == "optin";
      if (out.tracking.optin) {
        out.tracking.enabled = true;
      } else if (!parse_yes_no(value, out.tracking.enabled)) {
        return bad(message, "tracking must be yes, no or optin, not '" + value + "'");
      }
    } else if (key.starts_with("tls_")) {
      tls_option = true;
      if (key == "tls_ca_file") out.tls.ca_file = value;
      else if (key == "tls_ca_path") out.tls.ca_path = value;
      else if (key == "tls_cert_file") out.tls.cert_file = value;
      else if (key == "tls_key_file") out.tls.key_file = value;
      else if (key == "tls_server_name") out.tls.server_name = value;
      else if (key == "tls_verify") {
        if (!parse_yes_no(value, out.tls.verify_peer)) return bad(message, "tls_verify must be yes or no, not '" + value + "'");
      } else {
        return bad(message, "unknown option '" + std::string(key) + "'");
      }
    } else if (key.starts_with("sentinel_")) {
      sentinel_option = true;
      if (key == "sentinel_role") {
        if (value == "master") out.sentinel.role = sentinel_role::master;
        else if (value == "replica" || value == "slave") out.sentinel.role = sentinel_role::replica;
        else return bad(message, "sentinel_role must be master or replica, not '" + value + "'");
      } else if (key == "sentinel_user" || key == "sentinel_username") {
        out.sentinel.user = value;
      } else if (key == "sentinel_password") {
        out.sentinel.password = value;
      } else if (key == "sentinel_timeout") {
        if (!parse_number(value, n) || n < 0) return bad(message, "sentinel_timeout must be milliseconds, not '" + value + "'");
        out.sentinel.timeout = milliseconds(n);
      } else {
        return bad(message, "unknown option '" + std::string(key) + "'");
      }
    } else if (key == "read_from") {
      if (value == "primary") out.cluster.reads = read_from::primary;
      else if (value == "prefer_replica") out.cluster.reads = read_from::prefer_replica;
      else if (value == "any") out.cluster.reads = read_from::any;
      else return bad(message, "read_from must be primary, prefer_replica or any, not '" + value + "'");
    } else {
      return bad(message, "unknown option '" + std::string(key) + "'");
    }
  }
  return {};
}

// `user[:password]@` at the start of `rest`, removed from it. The userinfo ends at the authority's
// last '@', as in RFC 3986 parsers (WHATWG URL, Python's urllib): an unencoded '@' in a password,
// "redis://u:p@ss@host", belongs to the password rather than making "ss@host" the host name.
std::error_code take_userinfo(std::string_view& rest, std::string_view end_chars, options& out, std::string* message) {
  const auto at = rest.substr(0, rest.find_first_of(end_chars)).rfind('@');
  if (at == std::string_view::npos) return {};
  const std::string_view info = rest.substr(0, at);
  rest.remove_prefix(at + 1);
  const auto colon = info.find(':');
  std::string user, password;
  if (!percent_decode(info.substr(0, colon), user)) return bad(message, "bad percent-encoding in user");
  if (colon != std::string_view::npos) {
    if (!percent_decode(info.substr(colon + 1), password)) return bad(message, "bad percent-encoding in password");
    out.password = password;
  }
  out.user = user;
  return {};
}

// `host[:port]` or `[v6][:port]`: `host` set to the host (may be empty), `port` only if given.
std::error_code parse_host_port(std::string_view authority, std::string& host_out, std::uint16_t& port_out, std::string* message) {
  std::string_view host, port;
  bool port_given = false;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad(message, "unclosed '[' in IPv6 host");
    host = authority.substr(1, close - 1);
    if (host.empty()) return bad(message, "empty IPv6 host '[]'");
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad(message, "unexpected text after IPv6 host: '" + std::string(after) + "'");
      port = after.substr(1);
      port_given = true;
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      port_given = true;
    }
  }
  if (port_given) {
    if (port.empty()) return bad(message, "empty port");
    unsigned p = 0;
    if (!parse_number(port, p) || p == 0 || p > 65535) return bad(message, "port must be 1-65535, not '" + std::string(port) + "'");
    port_out = static_cast<std::uint16_t>(p);
  }
  host_out = std::string(host);
  return {};
}

}  // namespace

namespace {

std::error_code parse_url_into(std::string_view url, options& out, std::string* message) {
  const auto scheme_end = url.find("://");
  // Not quoted: without a scheme nothing says where a password would be (`host?password=...`).
  if (scheme_end == std::string_view::npos) return bad(message, "missing scheme (redis://, rediss://, unix://)");
  std::string scheme(url.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));  // RFC 3986: case-insensitive
  std::string_view rest = url.substr(scheme_end + 3);
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }

  bool tls_option = false, sentinel_option = false;
  if (scheme == "unix") {
    if (auto ec = take_userinfo(rest, "/", out, message)) return ec;
    if (rest.empty() || rest[0] != '/') return bad(message, "unix:// needs an absolute socket path, as unix:///path");
    // What a sockaddr_un holds (sun_path, with its terminating NUL): a longer path could never connect.
    if (rest.size() > max_unix_path) {
      return bad(message, "unix socket path longer than " + std::to_string(max_unix_path) + " bytes");
    }
    out.unix_path = std::string(rest);
    out.tls.enabled = false;
    out.sentinel.master_name.clear();
    if (auto ec = apply_query(query, out, message, tls_option, sentinel_option)) return ec;
    if (sentinel_option) return bad(message, "sentinel_* options need a redis+sentinel:// URL");
    return tls_option ? bad(message, "tls_* options need a rediss:// URL (Redis speaks TLS over TCP only)") : std::error_code();
  }
  const bool sentinel = scheme == "redis+sentinel" || scheme == "rediss+sentinel";
  if (scheme != "redis" && scheme != "rediss" && !sentinel) {
    return bad(message, "unknown scheme '" + scheme + "' (redis://, rediss://, unix://, redis+sentinel://)");
  }
  out.tls.enabled = scheme == "rediss" || scheme == "rediss+sentinel";
  if (!sentinel) out.sentinel.master_name.clear();

  if (auto ec = take_userinfo(rest, "/", out, message)) return ec;
  // In the host, the path or the query (where it would be glued to the last value: a password
  // "pw#x"): percent-encode it as %23 where it belongs to a value.
  if (rest.find('#') != std::string_view::npos || query.find('#') != std::string_view::npos) {
    return bad(message, "a '#' (a fragment) has no meaning in a redis:// URL; in a value, write it as %23");
  }
  std::string_view authority = rest.substr(0, rest.find('/'));
  std::string_view path = rest.substr(authority.size());
  if (sentinel) {
    // host[:port][,host[:port]...]/master_name[/db]
    if (authority.empty()) return bad(message, "no sentinel address before the master name");
    std::vector<sentinel_address> sentinels;
    while (true) {
      const auto comma = authority.find(',');
      sentinel_address a;
      if (auto ec = parse_host_port(authority.substr(0, comma), a.host, a.port, message)) return ec;
      if (a.host.empty()) return bad(message, "empty sentinel host");
      sentinels.push_back(std::move(a));
      if (comma == std::string_view::npos) break;
      authority.remove_prefix(comma + 1);
    }
    path.remove_prefix(path.empty() ? 0 : 1);
    const std::string_view name = path.substr(0, path.find('/'));
    if (name.empty()) return bad(message, "no master name after the sentinels (redis+sentinel://host:port/master_name)");
    if (!percent_decode(name, out.sentinel.master_name)) return bad(message, "bad percent-encoding in the master name");
    out.sentinel.sentinels = std::move(sentinels);
    path.remove_prefix(name.size());
  } else {
    std::string host;
    if (auto ec = parse_host_port(authority, host, out.port, message)) return ec;
    if (!host.empty()) out.host = std::move(host);
  }
  if (path.size() > 1) {
    long long db = 0;
    const std::string_view d = path.substr(1);
    if (!parse_number(d, db) || db < 0 || db > 1000000) return bad(message, "database must be a number, not '" + std::string(d) + "'");
    out.database = static_cast<int>(db);
  }
  if (auto ec = apply_query(query, out, message, tls_option, sentinel_option)) return ec;
  if (tls_option && !out.tls.enabled) return bad(message, "tls_* options need a rediss:// URL");
  if (sentinel_option && !sentinel) return bad(message, "sentinel_* options need a redis+sentinel:// URL");
  if (sentinel && out.cluster.enabled) return bad(message, "cluster=yes with redis+sentinel:// (a cluster has no sentinels)");
  return {};
}

}  // namespace

std::error_code parse_url(std::string_view url, options& out, std::string* message) {
  // Into a copy: a URL refused halfway (a db applied, then an unknown option) leaves `out` as it was.
  options parsed = out;
  const std::error_code ec = parse_url_into(url, parsed, message);
  if (!ec) {
    out = std::move(parsed);
    return ec;
  }
  // A message quotes the part it found wrong. When the URL has an '@' past the authority's end (a
  // password holding an unencoded '/', '?' or '#' ends the authority early, so its text lands in the
  // port, the path or the query), that part may be a password's: say what to do instead.
  bool secret_may_show = url.find('@') != std::string_view::npos;
  if (const auto scheme_end = url.find("://"); scheme_end != std::string_view::npos) {
    const std::string_view rest = url.substr(scheme_end + 3);
    const auto authority_end = rest.find_first_of("/?#");
    secret_may_show = authority_end != std::string_view::npos && rest.find('@', authority_end) != std::string_view::npos;
  }
  if (message != nullptr && ec == errc::invalid_url && secret_may_show) {
    *message = "invalid URL (not shown: it may hold a password; in a password, percent-encode '/', '?' and '#' as %2F, %3F and %23)";
  }
  return ec;
}

std::error_code options_from_env(options& out, std::string* message) {
  const char* url = std::getenv("REDIS_URL");
  if (url == nullptr || *url == '\0') return {};
  return parse_url(url, out, message);
}

std::error_code options_from_command_line(int argc, char** argv, options& out, std::string* message) {
  return argc > 1 ? parse_url(argv[1], out, message) : options_from_env(out, message);
}

}  // namespace redring::client
