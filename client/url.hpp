// SPDX-License-Identifier: MIT
// Configuration from URLs: redis://, rediss:// (TLS), unix://, redis+sentinel://, and REDIS_URL.
#pragma once

#include "client/options.hpp"

#include <string_view>
#include <system_error>

namespace redring::client {

/// Parses `url` into `out` (other fields of `out` are kept as defaults to build on):
/// - `redis://[user[:password]@]host[:port][/db][?option=value&...]`; host may be `[v6]`.
/// - `unix:///path/to/socket[?db=N&...]`, also with `user[:password]@` before the path.
/// - `rediss://...`: as redis://, over TLS (`options::tls`); redis:// and unix:// turn TLS off.
/// - `redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master_name[/db][?...]`: Sentinel
///   mode (`options::sentinel`): the hosts are sentinels (port 26379 by default), the userinfo and db
///   are the servers'; `rediss+sentinel://` speaks TLS to both. Its own options: `sentinel_role`
///   (`master`, `replica`), `sentinel_user`, `sentinel_password` and `sentinel_timeout` (milliseconds).
///   Not with `cluster=yes`. The other schemes turn Sentinel mode off.
/// Options: `db`; `timeout` or `command_timeout`, and `connect_timeout` (milliseconds); `name` or
/// `client_name`; `protocol` or `resp` (2 or 3); `user` or `username`, and `password` (both override
/// the userinfo); `cluster` (`yes`, `no`, `true`, `false`, `1`, `0`: `cluster.enabled`); `read_from`
/// (`primary`, `prefer_replica`, `any`: `cluster.reads`); `tracking` (yes/no: `tracking.enabled`,
/// client-side caching's CLIENT TRACKING ON; `optin`: enabled with `tracking.optin`); with rediss:// only, `tls_ca_file`,
/// `tls_ca_path`, `tls_cert_file`, `tls_key_file`, `tls_server_name` and `tls_verify` (`yes`/`no`),
/// the fields of `net::tls_options`. User, password and option values are
/// percent-decoded.
/// The scheme is case-insensitive. A unix socket path may be up to `max_unix_path` bytes.
/// Errors: `errc::invalid_url` (an unknown option or a bad value included, an empty `[]` host, a
/// `#` after a redis:// userinfo: in a value it is written %23), with `message` naming the bad part,
/// except where that part may be a password's (an '@' after the host: a password with an unencoded
/// '/', '?' or '#'; a URL without a scheme), which is not quoted. On error `out` is left as it was.
/// The longest unix socket path a URL may name: what a sockaddr_un's sun_path holds before its NUL.
inline constexpr std::size_t max_unix_path = 107;

[[nodiscard]] std::error_code parse_url(std::string_view url, options& out, std::string* message = nullptr);

/// Reads `REDIS_URL` from the environment into `out`. Returns `errc::invalid_url` for a bad URL and
/// no error (leaving `out` alone) if the variable is unset or empty.
[[nodiscard]] std::error_code options_from_env(options& out, std::string* message = nullptr);

/// For command-line programs: the URL in `argv[1]` if there is one, else `REDIS_URL`, else `out`
/// unchanged (127.0.0.1:6379 by default). Errors as `parse_url`.
[[nodiscard]] std::error_code options_from_command_line(int argc, char** argv, options& out, std::string* message = nullptr);

}  // namespace redring::client
