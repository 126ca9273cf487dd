// SPDX-License-Identifier: MIT
#include "patterns/local_cache.hpp"

#include "patterns/script.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <utility>

namespace redring::patterns {

namespace {

// The commands `read` keeps (see `cacheable`), upper case, sorted for binary search. Each is
// read-only, its reply depends only on the value of its one key, and Redis tracks that key for the
// reading connection (tracking.c trackingRememberKeys runs for every read-only command; checked for
// each of these against redis-server 7.0 in tests/patterns/local_cache_test.cpp).
constexpr std::array<std::string_view, 45> cacheable_names = {
    "BITCOUNT",       "BITFIELD_RO", "BITPOS",    "EXISTS",      "GEODIST",  "GEOHASH",          "GEOPOS",
    "GEOSEARCH",      "GET",         "GETBIT",    "GETRANGE",    "HEXISTS",  "HGET",             "HGETALL",
    "HKEYS",          "HLEN",        "HMGET",     "HSTRLEN",     "HVALS",    "LINDEX",           "LLEN",
    "LPOS",           "LRANGE",      "SCARD",     "SISMEMBER",   "SMEMBERS", "SMISMEMBER",       "STRLEN",
    "TYPE",           "XLEN",        "XRANGE",    "XREVRANGE",   "ZCARD",    "ZCOUNT",           "ZLEXCOUNT",
    "ZMSCORE",        "ZRANGE",      "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE",       "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE", "ZREVRANK",  "ZSCORE"};
static_assert(std::ranges::is_sorted(cacheable_names));

constexpr std::size_t max_name = 16;  // ZREVRANGEBYSCORE, the longest

// `name` in upper case into `out`; false if it is longer than every cacheable name.
bool upper_name(std::string_view name, std::array<char, max_name>& out, std::size_t& n) noexcept {
  if (name.size() > max_name) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char ch = name[i];
    out[i] = ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch;
  }
  n = name.size();
  return true;
}

bool same_name(std::string_view upper, std::string_view name) noexcept {
  if (upper.size() != name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char ch = name[i];
    if ((ch >= 'a' && ch <= 'z' ? static_cast<char>(ch - 'a' + 'A') : ch) != upper[i]) return false;
  }
  return true;
}

// True if `words` (see kept_reply::words) are those of `args`.
bool same_words(std::string_view words, std::span<const std::string_view> args) noexcept {
  const std::size_t n = static_cast<unsigned char>(words[0]);
  if (!same_name(words.substr(1, n), args[0])) return false;
  std::size_t at = 1 + n;
  for (std::size_t i = 2; i < args.size(); ++i) {
    std::uint32_t len = 0;
    if (words.size() - at < sizeof len) return false;
    std::memcpy(&len, words.data() + at, sizeof len);
    at += sizeof len;
    if (len != args[i].size() || words.substr(at, len) != args[i]) return false;
    at += len;
  }
  return at == words.size();
}

// `args` as kept_reply::words; `payload` gets the bytes of the words after the key.
std::string encode_words(std::span<const std::string_view> args, std::size_t& payload) {
  std::array<char, max_name> upper{};
  std::size_t n = 0;
  (void)upper_name(args[0], upper, n);  // cacheable: it fits
  std::size_t size = 1 + n;
  for (std::size_t i = 2; i < args.size(); ++i) size += sizeof(std::uint32_t) + args[i].size();
  std::string words;
  words.reserve(size);
  words.push_back(static_cast<char>(n));
  words.append(upper.data(), n);
  payload = 0;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const auto len = static_cast<std::uint32_t>(args[i].size());  // a word is at most 512 MiB (proto-max-bulk-len)
    char bytes[sizeof len];
    std::memcpy(bytes, &len, sizeof len);
    words.append(bytes, sizeof len).append(args[i]);
    payload += args[i].size();
  }
  return words;
}

// GET of one key, in any case: kept in an entry's own fields.
bool is_get(std::span<const std::string_view> args) noexcept { return args.size() == 2 && same_name("GET", args[0]); }

// A reply's payload and elements against max_bytes (its own record: reply_overhead, by the caller).
std::size_t reply_bytes(const resp::value& v) noexcept {
  std::size_t n = v.text.size();
  for (const resp::value& e : v.elements) n += local_cache::element_overhead + reply_bytes(e);
  for (const auto& list : v.attributes) {
    for (const resp::value& e : list) n += local_cache::element_overhead + reply_bytes(e);
  }
  return n;
}

// A string reply (GET's value, an invalidated key's name).
bool is_text(resp::type t) noexcept { return t == resp::type::blob_string || t == resp::type::simple_string; }

// GET's reply as `get` returns it: a copy of a kept reply's text, or a fetched one's moved out.
template <class Value>
resp::result<std::optional<std::string>> get_reply(Value&& v) {
  if (is_text(v.data_type)) {
    return std::optional<std::string>(std::forward<Value>(v).text);
  }
  if (v.is_null()) return std::optional<std::string>();
  return unexpected_reply("local_cache: GET");
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

bool local_cache::cacheable(std::span<const std::string_view> args) noexcept {
  if (args.size() < 2) return false;
  std::array<char, max_name> upper{};
  std::size_t n = 0;
  if (!upper_name(args[0], upper, n)) return false;
  const std::string_view name(upper.data(), n);
  if (!std::ranges::binary_search(cacheable_names, name)) return false;
  return name != "EXISTS" || args.size() == 2;  // EXISTS k1 k2 ... reads several keys
}

std::span<const std::string_view> local_cache::cacheable_commands() noexcept { return cacheable_names; }

task<resp::result<std::optional<std::string>>> local_cache::get(std::string_view key) {
  const std::array<std::string_view, 2> args = {"GET", key};
  check_connections();
  if (const std::optional<std::string>* held = held_value(key)) co_return *held;
  auto fetched = co_await fetch(args);
  if (!fetched) co_return fetched.error();
  co_return get_reply(std::move(*fetched));
}

// Hits are answered here; only misses cost a task (run together by when_all: each sends its read
// before the first suspends, so they leave in one write per connection).
task<resp::result<std::vector<std::optional<std::string>>>> local_cache::mget(std::span<const std::string_view> keys) {
  check_connections();
  std::vector<std::optional<std::string>> values(keys.size());
  std::vector<std::size_t> missing;
  std::vector<task<resp::result<std::optional<std::string>>>> reads;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (const std::optional<std::string>* held = held_value(keys[i])) {
      values[i] = *held;
    } else {
      missing.push_back(i);
      reads.push_back(get(keys[i]));
    }
  }
  if (reads.empty()) co_return values;
  auto got = co_await when_all(std::move(reads));
  for (std::size_t j = 0; j < got.size(); ++j) {
    if (got[j]) {
      values[missing[j]] = std::move(*got[j]);
    } else if (got[j].error().code_word() != "WRONGTYPE") {  // another type: nil, as MGET says
      co_return got[j].error();
    }
  }
  co_return values;
}

const std::optional<std::string>* local_cache::held_value(std::string_view key) {
  const auto found = index_.find(key);
  if (found == index_.end() || !found->second->has_value) return nullptr;
  const lru::iterator it = found->second;
  if (!servable(it->stored, it->expires)) {
    drop_value(it);  // too old to serve, or past the key's TTL
    return nullptr;
  }
  ++stats_.hits;
  entries_.splice(entries_.begin(), entries_, it);
  return &it->value;
}

task<resp::result<resp::value>> local_cache::read(std::span<const std::string_view> args) {
  if (!cacheable(args)) {
    co_return resp::error{client::errc::invalid_argument,
                          "local_cache: not a read-only command about one key that the cache can keep: " +
                              std::string(args.empty() ? std::string_view("(no words)") : args[0])};
  }
  if (is_get(args)) {  // kept as get() keeps it
    auto got = co_await get(args[1]);
    if (!got) co_return got.error();
    resp::value v;  // RESP3's null, or the bulk string
    if (*got) {
      v.data_type = resp::type::blob_string;
      v.text = std::move(**got);
    }
    co_return v;
  }
  check_connections();
  if (const resp::value* held = lookup(args)) co_return *held;
  co_return co_await fetch(args);
}

bool local_cache::servable(net::clock::time_point stored, net::clock::time_point expires) const noexcept {
  const auto now = net::clock::now();
  return now < expires && (opts_.max_age.count() <= 0 || now - stored <= opts_.max_age);
}

const resp::value* local_cache::lookup(std::span<const std::string_view> args) {
  const auto found = index_.find(args[1]);
  if (found == index_.end()) return nullptr;
  const lru::iterator it = found->second;
  for (auto r = it->replies.begin(); r != it->replies.end(); ++r) {
    if (!same_words(r->words, args)) continue;
    if (servable(r->stored, r->expires)) {
      ++stats_.hits;
      entries_.splice(entries_.begin(), entries_, it);
      return &r->reply;
    }
    drop_reply(it, r);  // too old to serve, or past the key's TTL
    return nullptr;
  }
  return nullptr;
}

task<resp::result<resp::value>> local_cache::fetch(std::span<const std::string_view> args) {
  ++stats_.misses;
  // The read is kept only if nothing happened meanwhile that the invalidations would not cover: a
  // connection lost (its tracked keys with it), or a local write forgotten (the read may have been
  // answered before it; the write's own invalidation comes only after the write's reply).
  const std::uint64_t changes = client_.connection_losses();
  const std::uint64_t forgets = forgets_;
  const auto mark = taking_off(args[1]);
  const auto sent = net::clock::now();
  // PTTL in the same write: Redis invalidates an expiring key only when it deletes it (lazily, or by
  // its sampling expiry cycle, which may lag far behind on a server with many volatile keys), so
  // the local copy keeps the key's own deadline. Counted from the send, it ends no later than the
  // server's. (A review proved a value served 300 ms past its TTL with active expiry off.)
  // With OPTIN tracking the server tracks only a read that follows CLIENT CACHING yes on its
  // connection. In a MULTI the flag holds until EXEC (networking.c resetClient keeps it while the
  // client is in MULTI), and a transaction travels whole to one node, where a cluster client's
  // pipeline is split per command and CLIENT CACHING (keyless) would go to any node.
  const bool optin = client_.settings().tracking.optin;
  resp::result<std::vector<resp::value>> replies = std::vector<resp::value>{};
  if (optin) {
    client::transaction tx;
    tx.add("CLIENT", "CACHING", "YES").add(args).add("PTTL", args[1]);
    replies = co_await client_.execute(tx);
  } else {
    client::pipeline batch;
    batch.add(args).add("PTTL", args[1]);
    replies = co_await client_.execute(batch);
  }
  const bool invalidated = landed(args[1], mark);
  if (!replies) co_return replies.error();
  const std::size_t first = optin ? 1 : 0;
  if (optin && !replies->empty() && replies->front().is_error()) {  // CLIENT CACHING refused
    co_return resp::error{resp::errc::server_error, std::move(replies->front().text)};
  }
  if (replies->size() != first + 2) co_return unexpected_reply("local_cache: a read and PTTL");
  resp::value& got = (*replies)[first];
  const resp::value& ttl = (*replies)[first + 1];
  if (got.is_error()) co_return resp::error{resp::errc::server_error, std::move(got.text)};
  auto expires = net::clock::time_point::max();
  if (ttl.data_type == resp::type::integer && ttl.integer >= 0) expires = sent + std::chrono::milliseconds(ttl.integer);
  if (ttl.data_type != resp::type::integer) expires = sent;  // unknown: not kept
  const bool kept_unseen = !invalidated && client_.connection_losses() == changes && forgets_ == forgets;
  if (kept_unseen && trackable(args[1]) && expires > sent) {
    store(args, got, sent, expires);
  }
  co_return std::move(got);
}

std::pair<std::uint64_t, std::uint64_t> local_cache::taking_off(std::string_view key) {
  auto found = in_flight_.find(key);
  if (found == in_flight_.end()) found = in_flight_.emplace(std::string(key), in_flight{}).first;
  ++found->second.reads;
  return {found->second.invalidations, flush_pushes_};
}

bool local_cache::landed(std::string_view key, std::pair<std::uint64_t, std::uint64_t> mark) {
  const auto found = in_flight_.find(key);  // there: registered by taking_off, erased at its last landing
  const bool invalidated = found->second.invalidations != mark.first || flush_pushes_ != mark.second;
  if (--found->second.reads == 0) in_flight_.erase(found);
  return invalidated;
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
  replies_ = 0;
}

local_cache_stats local_cache::stats() const noexcept {
  local_cache_stats s = stats_;
  s.entries = index_.size();
  s.replies = replies_;
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
  replies_ = 0;
  ++stats_.flushes;
}

void local_cache::store(std::span<const std::string_view> args, resp::value reply, net::clock::time_point sent,
                        net::clock::time_point expires) {
  const std::string_view key = args[1];
  const auto found = index_.find(key);
  if (is_get(args)) {
    std::optional<std::string> value;
    if (is_text(reply.data_type)) {
      value = std::move(reply.text);
    } else if (!reply.is_null()) {
      return;  // not a GET reply: get() refuses it, nothing to keep
    }
    // A reply already held goes (two reads in flight at once: the later one stays).
    if (found != index_.end() && found->second->has_value) drop_value(found->second);
    const std::size_t size = value ? value->size() : 0;
    const lru::iterator it = place(key, size);
    if (it == entries_.end()) return;
    it->value = std::move(value);
    it->stored = sent;
    it->expires = expires;
    it->has_value = true;
    bytes_ += size;
    ++replies_;
    return;
  }
  kept_reply kept{{}, std::move(reply), sent, expires, 0};
  kept.words = encode_words(args, kept.bytes);
  kept.bytes += reply_overhead + reply_bytes(kept.reply);
  if (found != index_.end()) {
    const lru::iterator it = found->second;
    bool dropped = false;
    for (auto r = it->replies.begin(); r != it->replies.end(); ++r) {
      if (r->words == kept.words) {
        drop_reply(it, r);  // as above
        dropped = true;
        break;
      }
    }
    // At the bound of replies per key the oldest goes (the vector keeps them in the order stored).
    if (!dropped && !it->replies.empty() && it->replies.size() >= opts_.max_replies_per_key) {
      drop_reply(it, it->replies.begin());
    }
  }
  if (opts_.max_replies_per_key == 0) return;
  const lru::iterator it = place(key, kept.bytes);
  if (it == entries_.end()) return;
  bytes_ += kept.bytes;
  ++replies_;
  it->replies.push_back(std::move(kept));
}

local_cache::lru::iterator local_cache::place(std::string_view key, std::size_t bytes) {
  if (key.size() + bytes > opts_.max_bytes || opts_.max_entries == 0) return entries_.end();  // would not fit alone
  const auto found = index_.find(key);
  lru::iterator it = found == index_.end() ? entries_.end() : found->second;
  if (it != entries_.end()) entries_.splice(entries_.begin(), entries_, it);
  const auto room = [&] {
    const bool fresh = it == entries_.end();
    return (!fresh || index_.size() < opts_.max_entries) && bytes_ + bytes + (fresh ? key.size() : 0) <= opts_.max_bytes;
  };
  while (!room() && !entries_.empty()) {
    const lru::iterator last = std::prev(entries_.end());
    if (last != it) {
      erase(last);
    } else if (it->replies.size() > 1 || (it->has_value && !it->replies.empty())) {
      drop_reply(it, it->replies.begin());  // only this key is left: its oldest reply gives way
    } else {
      it = entries_.end();  // its last reply (or GET's value) goes, and the entry with it
      erase(last);
    }
    ++stats_.evictions;
  }
  if (it == entries_.end()) {
    entries_.push_front(entry{.key = std::string(key)});
    index_.emplace(entries_.front().key, entries_.begin());
    bytes_ += key.size();
    it = entries_.begin();
  }
  return it;
}

void local_cache::drop_value(lru::iterator it) {
  bytes_ -= it->value ? it->value->size() : 0;
  --replies_;
  it->has_value = false;
  it->value.reset();
  if (it->empty()) erase(it);
}

void local_cache::drop_reply(lru::iterator it, std::vector<kept_reply>::iterator r) {
  bytes_ -= r->bytes;
  --replies_;
  it->replies.erase(r);
  if (it->empty()) erase(it);
}

void local_cache::erase(lru::iterator it) {
  bytes_ -= it->key.size();
  if (it->has_value) {
    bytes_ -= it->value ? it->value->size() : 0;
    --replies_;
  }
  for (const kept_reply& r : it->replies) bytes_ -= r.bytes;
  replies_ -= it->replies.size();
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
      in_invalidation_ = is_text(n.data_type) && n.value == "invalidate";
    } else if (n.data_type == resp::type::null) {
      in_invalidation_ = false;
      ++flush_pushes_;
      drop_all();
    } else {
      in_invalidation_ = n.data_type == resp::type::array || n.data_type == resp::type::set;
    }
  } else if (in_invalidation_ && n.depth == 2 && is_text(n.data_type)) {
    if (!in_flight_.empty()) {
      if (const auto f = in_flight_.find(n.value); f != in_flight_.end()) ++f->second.invalidations;
    }
    if (const auto it = index_.find(n.value); it != index_.end()) {
      erase(it->second);
      ++stats_.invalidations;
    }
  }
  if (next_.on_node != nullptr) next_.on_node(next_.context, n);
}

}  // namespace redring::patterns
