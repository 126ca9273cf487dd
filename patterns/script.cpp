// SPDX-License-Identifier: MIT
#include "patterns/script.hpp"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace redring::patterns {
namespace {

void append_hex(std::string& out, const unsigned char* data, std::size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 15]);
  }
}

}  // namespace

std::string sha1_hex(std::string_view bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  std::string hex;
  hex.reserve(2 * SHA_DIGEST_LENGTH);
  append_hex(hex, digest, SHA_DIGEST_LENGTH);
  return hex;
}

script::script(std::string_view text) : text_(text), sha_(sha1_hex(text)) {}

task<result<resp::value>> script::run(client::client& c, std::span<const std::string> keys,
                                      std::span<const std::string> args, std::chrono::milliseconds timeout) const {
  const auto numkeys = static_cast<std::int64_t>(keys.size());
  // `command<resp::value>` hands error replies back as values: make them errors.
  const auto checked = [](result<resp::value> r) -> result<resp::value> {
    if (r && resp::is_error(r->data_type)) return resp::error{resp::errc::server_error, std::move(r->text)};
    return r;
  };
  const auto start = net::clock::now();
  auto reply = checked(co_await c.command<resp::value>("EVALSHA", sha_, numkeys, keys, args).with_timeout(timeout));
  // NOSCRIPT: the server's script cache lost it (SCRIPT FLUSH, restart, a replica promoted). EVAL
  // caches it again, so the next call is an EVALSHA hit.
  if (!reply && reply.error().code_word() == "NOSCRIPT") {
    // The timeout is the whole call's: EVAL gets what EVALSHA left of it (a limiter's decision
    // once took up to twice its timeout after a SCRIPT FLUSH).
    auto left = timeout;
    if (timeout.count() > 0) {
      left = timeout - std::chrono::ceil<std::chrono::milliseconds>(net::clock::now() - start);
      if (left.count() <= 0) co_return resp::error{client::errc::timeout, {}};
    }
    reply = checked(co_await c.command<resp::value>("EVAL", text_, numkeys, keys, args).with_timeout(left));
  }
  co_return reply;
}

std::string random_hex(std::size_t bytes, bool* ok) {
  std::vector<unsigned char> raw(bytes);
  const bool good = RAND_bytes(raw.data(), static_cast<int>(raw.size())) == 1;
  if (!good) {
    // Unreachable on a working system; still unique within the process, never a crash.
    static std::atomic<std::uint64_t> counter{0};
    std::uint64_t mix = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                        (counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL);
    for (auto& b : raw) {
      b = static_cast<unsigned char>(mix);
      mix = (mix >> 8) | (mix << 56);
    }
  }
  if (ok) *ok = good;
  std::string out;
  out.reserve(2 * bytes);
  append_hex(out, raw.data(), raw.size());
  return out;
}

std::string ms_argument(std::chrono::milliseconds d, std::int64_t least) {
  return std::to_string(std::clamp<std::int64_t>(d.count(), least, max_script_ms));
}

resp::error refused_argument(std::string what) {
  return resp::error{std::make_error_code(std::errc::invalid_argument), std::move(what)};
}

resp::error unexpected_reply(std::string_view what) {
  return resp::error{std::make_error_code(std::errc::bad_message), "unexpected reply to " + std::string(what)};
}

}  // namespace redring::patterns
