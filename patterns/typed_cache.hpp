// SPDX-License-Identifier: MIT
// A cache of typed values: the byte `cache` plus a user-supplied codec that turns a T into bytes and
// back. A stored value the codec cannot decode is reported and reloaded, never a crash.
#pragma once

#include "patterns/cache.hpp"
#include "patterns/error.hpp"

#include <concepts>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace redring::patterns {

/// A codec for T: `encode(const T&)` gives the bytes stored in Redis; `decode(bytes)` gives the T
/// back, or an error when the bytes are not a valid encoding (corrupt, or written by another
/// version of the program). Both are called on the loop thread; neither may throw.
template <class C, class T>
concept codec_for = requires(const C& c, const T& value, std::string_view bytes) {
  { c.encode(value) } -> std::convertible_to<std::string>;
  { c.decode(bytes) } -> std::same_as<resp::result<T>>;
};

/// The identity codec: values are the bytes themselves (what the byte `cache` stores).
struct bytes_codec {
  [[nodiscard]] std::string encode(const std::string& v) const { return v; }
  [[nodiscard]] resp::result<std::string> decode(std::string_view bytes) const { return std::string(bytes); }
};

/// The outcome of `typed_cache<T>::get_or_load`.
template <class T>
struct typed_cached {
  std::optional<T> value;  ///< nullopt: the thing does not exist (possibly a negative hit).
  cache_source source = cache_source::hit;
  /// Set when Redis failed (the value is the loader's, `degraded`), or when the stored bytes did not
  /// decode (`errc::decode_failed` with the codec's message: the value was reloaded, `loaded`, or
  /// `waited` when another process reloaded it first).
  std::optional<resp::error> failure;
};

/// `cache` for values of type T, stored as `Codec`'s bytes. Everything else (keys, TTLs, single-flight,
/// stampede lock, stale-while-revalidate, tags, versions, fail-open) is the byte cache's. Loop thread
/// only; the client must outlive it, and it must outlive every operation and refresh (`refreshing()`).
template <class T, codec_for<T> Codec = bytes_codec>
class typed_cache {
 public:
  /// What a loader returns: the value, nullopt when it does not exist, or an error (not cached).
  using load_result = resp::result<std::optional<T>>;
  /// Loads a value from the source of truth.
  using loader = std::function<task<load_result>()>;

  /// A cache on `c` with `opts`, encoding with `codec`.
  typed_cache(client::client& c, cache_options opts, Codec codec = {})
      : bytes_(c, std::move(opts)), codec_(std::move(codec)) {}

  /// The value of `key`, as `cache::get_or_load` (one round trip on a hit, plus decoding). When the
  /// stored bytes do not decode, the key is deleted and loaded again (through single-flight and the
  /// stampede lock) and `failure` says why (`errc::decode_failed`). An error when the loader
  /// failed with nothing to serve, or when the loader's own value does not decode (a codec bug).
  /// `key` and `tags` (as `cache::get_or_load`'s) must outlive the co_await; `load` is copied.
  [[nodiscard]] task<resp::result<typed_cached<T>>> get_or_load(std::string_view key, loader load,
                                                                std::span<const std::string> tags = {}) {
    const patterns::loader encoded = [this, load]() -> task<patterns::load_result> {
      auto v = co_await load();
      if (!v) co_return v.error();
      if (!*v) co_return patterns::load_result(std::nullopt);
      co_return patterns::load_result(std::optional<std::string>(codec_.encode(**v)));
    };
    auto r = co_await bytes_.get_or_load(key, encoded, tags);
    if (!r) co_return r.error();
    auto typed = decoded(std::move(*r));
    if (typed || r->source == cache_source::loaded || r->source == cache_source::degraded) co_return typed;
    // Corrupt (or foreign) bytes in Redis: drop them and load afresh, reporting the decode error.
    const resp::error corrupt = typed.error();
    (void)co_await bytes_.invalidate(key);
    auto again = co_await bytes_.get_or_load(key, encoded, tags);
    if (!again) co_return again.error();
    auto reloaded = decoded(std::move(*again));
    if (reloaded && !reloaded->failure) reloaded->failure = corrupt;
    co_return reloaded;
  }

  /// Write-through: stores `value` encoded, fresh for the TTL, and adds it to `tags`. `value` must
  /// outlive the co_await (name it: GCC 12 mishandles a temporary in a co_await expression).
  [[nodiscard]] task<resp::result<bool>> set(std::string_view key, const T& value, std::span<const std::string> tags = {}) {
    const std::string bytes = codec_.encode(value);
    co_return co_await bytes_.set(key, bytes, tags);
  }
  /// Delete-on-write: removes `key`.
  [[nodiscard]] task<resp::result<bool>> invalidate(std::string_view key) { return bytes_.invalidate(key); }
  /// Removes every key stored with `tag`, atomically: how many.
  [[nodiscard]] task<resp::result<std::int64_t>> invalidate_tag(std::string_view tag) { return bytes_.invalidate_tag(tag); }
  /// Switches the namespace's version (see `cache::set_version`).
  void set_version(std::string version) { bytes_.set_version(std::move(version)); }

  /// The Redis key holding `key`'s encoded value.
  [[nodiscard]] std::string value_key(std::string_view key) const { return bytes_.value_key(key); }
  /// The Redis key of `tag`'s set of keys.
  [[nodiscard]] std::string tag_key(std::string_view tag) const { return bytes_.tag_key(tag); }
  /// The Redis key of `key`'s tag list (see `cache::tag_list_key`).
  [[nodiscard]] std::string tag_list_key(std::string_view key) const { return bytes_.tag_list_key(key); }
  /// The Redis key of `key`'s stampede lock.
  [[nodiscard]] std::string lock_key(std::string_view key) const { return bytes_.lock_key(key); }
  /// Background refreshes still running (see `cache::refreshing`).
  [[nodiscard]] std::size_t refreshing() const noexcept { return bytes_.refreshing(); }
  /// How many times a loader ran.
  [[nodiscard]] std::uint64_t loads() const noexcept { return bytes_.loads(); }
  /// The codec.
  [[nodiscard]] const Codec& codec() const noexcept { return codec_; }

 private:
  resp::result<typed_cached<T>> decoded(cached c) const {
    typed_cached<T> out{std::nullopt, c.source, std::move(c.failure)};
    if (!c.value) return out;
    auto v = codec_.decode(*c.value);
    if (!v) return resp::error{make_error_code(errc::decode_failed), v.error().what()};
    out.value.emplace(std::move(*v));
    return out;
  }

  cache bytes_;
  Codec codec_;
};

}  // namespace redring::patterns
