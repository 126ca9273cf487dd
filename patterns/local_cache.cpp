// SPDX-License-Identifier: MIT
#include "patterns/local_cache.hpp"

#include "patterns/script.hpp"

#include <stdexcept>
#include <utility>

namespace redring::patterns {

namespace {

std::size_t size_of(std::string_view key, const std::optional<std::string>& value) noexcept {
  return key.size() + (value ? value->size() : 0);
}

bool is_text(const resp::node& n) noexcept {
  return n.data_type == resp::type::blob_string || n.data_type == resp::type::simple_string;
}

}  // namespace

local_cache::local_cache(client::client& c, local_cache_options opts, client::push_handler next)
    : client_(c), opts_(opts), next_(next) {
  if (!c.settings().tracking.enabled) {
    throw std::invalid_argument("local_cache: the client must be made with options::tracking.enabled (URL: tracking=yes)");
  }
  seen_losses_ = client_.connection_losses();
  client_.set_push_handler({&local_cache::on_push, this});
}

local_cache::~local_cache() { client_.set_push_handler(next_); }

// Broadcasting mode with prefixes: the server invalidates only keys under them, read or not; a key
// outside them would never be invalidated, so it is never kept.
bool local_cache::trackable(std::string_view key) const noexcept {
  const client::tracking_options& t = client_.settings().tracking;
  if (!t.broadcast || t.prefixes.empty()) return true;
  for (const std::string& p : t.prefixes) {
    if (key.starts_with(p)) return true;
  }
  return false;
}

task<resp::result<std::optional<std::string>>> local_cache::get(std::string_view key) {
  check_connections();
  if (const auto it = index_.find(key); it != index_.end()) {
    const entry& e = *it->second;
    const auto now = net::clock::now();
    if (now < e.expires && (opts_.max_age.count() <= 0 || now - e.stored <= opts_.max_age)) {
      ++stats_.hits;
      entries_.splice(entries_.begin(), entries_, it->second);
      co_return e.value;
    }
    erase(it->second);  // too old to serve, or past the key's TTL
  }
  ++stats_.misses;
  // The read is kept only if nothing happened meanwhile that the invalidations would not cover: a
  // connection lost (its tracked keys with it), or a local write forgotten (the GET may have been
  // answered before it; the write's own invalidation comes only after the write's reply).
  const std::uint64_t changes = client_.connection_losses();
  const std::uint64_t forgets = forgets_;
  const auto sent = net::clock::now();
  // PTTL in the same write: Redis invalidates an expiring key only when it deletes it (lazily, or by
  // its sampling expiry cycle, which may lag far behind on a server with many volatile keys), so
  // the local copy keeps the key's own deadline. Counted from the send, it ends no later than the
  // server's. (A review proved a value served 300 ms past its TTL with active expiry off.)
  client::pipeline batch;
  batch.add("GET", key).add("PTTL", key);
  auto replies = co_await client_.execute(batch);
  if (!replies) co_return replies.error();
  if (replies->size() != 2) co_return unexpected_reply("local_cache: GET and PTTL");
  resp::value& got = (*replies)[0];
  const resp::value& ttl = (*replies)[1];
  if (got.is_error()) co_return resp::error{resp::errc::server_error, std::move(got.text)};
  std::optional<std::string> value;
  if (got.data_type == resp::type::blob_string || got.data_type == resp::type::simple_string) {
    value = std::move(got.text);
  } else if (!got.is_null()) {
    co_return unexpected_reply("local_cache: GET");
  }
  auto expires = net::clock::time_point::max();
  if (ttl.data_type == resp::type::integer && ttl.integer >= 0) expires = sent + std::chrono::milliseconds(ttl.integer);
  if (ttl.data_type != resp::type::integer) expires = sent;  // unknown: not kept
  if (client_.connection_losses() == changes && forgets_ == forgets && trackable(key) && expires > sent) {
    store(key, value, sent, expires);
  }
  co_return value;
}

// Forgotten before the SET, and again after its reply: a GET on another connection of the pool,
// answered before the SET ran, may have stored the old value meanwhile, and this connection's own
// invalidation arrives only after the reply. (A review proved it with pool_size 2.)
task<resp::result<bool>> local_cache::set(std::string_view key, std::string_view value) {
  forget(key);
  auto reply = co_await client_.set(key, value);
  forget(key);
  if (!reply) co_return reply.error();
  co_return reply->has_value();
}

void local_cache::forget(std::string_view key) {
  ++forgets_;
  if (const auto it = index_.find(key); it != index_.end()) erase(it->second);
}

void local_cache::clear() {
  ++forgets_;
  entries_.clear();
  index_.clear();
  bytes_ = 0;
}

local_cache_stats local_cache::stats() const noexcept {
  local_cache_stats s = stats_;
  s.entries = index_.size();
  s.bytes = bytes_;
  return s;
}

bool local_cache::holds(std::string_view key) const { return index_.find(key) != index_.end(); }

void local_cache::check_connections() {
  const std::uint64_t now = client_.connection_losses();
  if (now == seen_losses_) return;
  seen_losses_ = now;
  if (!index_.empty()) drop_all();
}

void local_cache::drop_all() {
  entries_.clear();
  index_.clear();
  bytes_ = 0;
  ++stats_.flushes;
}

void local_cache::store(std::string_view key, std::optional<std::string> value, net::clock::time_point sent,
                        net::clock::time_point expires) {
  const std::size_t size = size_of(key, value);
  if (const auto it = index_.find(key); it != index_.end()) erase(it->second);
  if (size > opts_.max_bytes || opts_.max_entries == 0) return;  // would evict everything and still not fit
  while (!entries_.empty() && (index_.size() >= opts_.max_entries || bytes_ + size > opts_.max_bytes)) {
    erase(std::prev(entries_.end()));
    ++stats_.evictions;
  }
  entries_.push_front(entry{std::string(key), std::move(value), sent, expires});
  index_.emplace(entries_.front().key, entries_.begin());
  bytes_ += size;
}

void local_cache::erase(lru::iterator it) {
  bytes_ -= size_of(it->key, it->value);
  index_.erase(std::string_view(it->key));
  entries_.erase(it);
}

void local_cache::on_push(void* self, const resp::node& n) { static_cast<local_cache*>(self)->push_node(n); }

// An invalidation is the push ["invalidate", [key, ...]], or ["invalidate", null] when the database
// was flushed (FLUSHALL, FLUSHDB); every other node is only passed on.
void local_cache::push_node(const resp::node& n) {
  if (n.depth == 0) {
    in_invalidation_ = n.data_type == resp::type::push && n.size == 2;
    element_ = 0;
  } else if (in_invalidation_ && n.depth == 1 && n.data_type != resp::type::attribute) {
    const std::uint32_t index = element_++;
    if (index == 0) {
      in_invalidation_ = is_text(n) && n.value == "invalidate";
    } else if (n.data_type == resp::type::null) {
      in_invalidation_ = false;
      drop_all();
    } else {
      in_invalidation_ = n.data_type == resp::type::array || n.data_type == resp::type::set;
    }
  } else if (in_invalidation_ && n.depth == 2 && is_text(n)) {
    if (const auto it = index_.find(n.value); it != index_.end()) {
      erase(it->second);
      ++stats_.invalidations;
    }
  }
  if (next_.on_node != nullptr) next_.on_node(next_.context, n);
}

}  // namespace redring::patterns
