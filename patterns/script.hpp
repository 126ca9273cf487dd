// SPDX-License-Identifier: MIT
// A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) only when the server does not know it:
// one round trip in the steady state, and recovery from SCRIPT FLUSH, restarts and fail-overs.
#pragma once

#include "client/client.hpp"
#include "patterns/task.hpp"

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace redring::patterns {

using resp::result;

/// A Lua script and its SHA1 (computed here, so no SCRIPT LOAD round trip is needed).
class script {
 public:
  /// `text` must outlive the script (a named `constexpr std::string_view` does).
  explicit script(std::string_view text);

  /// The Lua source.
  [[nodiscard]] std::string_view text() const noexcept { return text_; }
  /// The lowercase hex SHA1 of the source, as EVALSHA wants it.
  [[nodiscard]] std::string_view sha() const noexcept { return sha_; }

  /// Runs the script with `keys` and `args`: EVALSHA, then EVAL if the server answers NOSCRIPT.
  /// Returns the script's reply, the server's error reply (a Lua error is `ERR ...`), or why there
  /// was no reply. `timeout` (for the whole call, EVALSHA and EVAL together): 0 uses the client's
  /// default (per command), negative none. The spans must outlive the co_await.
  [[nodiscard]] task<result<resp::value>> run(client::client& c, std::span<const std::string> keys,
                                              std::span<const std::string> args,
                                              std::chrono::milliseconds timeout = {}) const;

 private:
  std::string_view text_;
  std::string sha_;
};

/// The script of `Text` (a named `constexpr std::string_view` with static storage), its SHA1
/// computed once: `script_for<enqueue_lua>().run(...)`.
template <const std::string_view& Text>
[[nodiscard]] const script& script_for() {
  static const script s(Text);
  return s;
}

/// The error for a script's reply that is not of the shape the script returns (a server that is
/// not Redis, or a different script loaded under the same name): `std::errc::bad_message`, naming
/// `what` ("job_queue: reserve").
[[nodiscard]] resp::error unexpected_reply(std::string_view what);

/// The longest duration a pattern's script takes, in ms (10^13: 317 years). Below it, server times
/// plus a duration stay exact in Lua's numbers, and so does the text Redis makes of them for
/// PEXPIRE (%.17g; from 10^17 up it is `1e+17`, which PEXPIRE refuses, after earlier writes).
inline constexpr std::int64_t max_script_ms = 10'000'000'000'000;

/// `d` in whole ms, brought within [`least`, `max_script_ms`], as a script argument.
[[nodiscard]] std::string ms_argument(std::chrono::milliseconds d, std::int64_t least = 0);

/// The error value for an argument a pattern refuses (`std::errc::invalid_argument`, `what` says why).
[[nodiscard]] resp::error refused_argument(std::string what);

/// The lowercase hex SHA1 of `bytes` (40 digits).
[[nodiscard]] std::string sha1_hex(std::string_view bytes);

/// `bytes` random bytes from the operating system's CSPRNG (OpenSSL RAND_bytes), as lowercase hex:
/// lock tokens and unique members. Never fails in practice; if RAND_bytes does, the hex of a
/// time and counter mix is returned instead and `ok` (when given) is set to false.
[[nodiscard]] std::string random_hex(std::size_t bytes = 16, bool* ok = nullptr);

}  // namespace redring::patterns
