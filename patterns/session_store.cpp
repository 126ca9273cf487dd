// SPDX-License-Identifier: MIT
#include "patterns/session_store.hpp"

#include "client/hash_slot.hpp"
#include "patterns/script.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace redring::patterns {
namespace {

// A session is a hash: the application's fields, and the store's own "redring:user" (its user, ""
// when anonymous) and "redring:expires_at" (server ms of its absolute end; 0: none). Every script
// reads that end as an integer (floored; not a number: none), so a TTL it computes is one PEXPIRE
// takes (a fractional one was refused after the hash was written: a key that never expired). Its key's TTL
// is the idle timeout, capped by the absolute end. A user's sessions are listed in an index set
// in their slot ({tag}), which outlives each of them (its TTL only grows). Time is the server's.

// KEYS[1] the session, KEYS[2] the index; ARGV[1] idle timeout ms, ARGV[2] max lifetime ms (0:
// none), ARGV[3] the user, ARGV[4] the absolute end in server ms if it is already set (a rotated
// session's; 0: ARGV[2] from now), ARGV[5], ARGV[6], ... field, value pairs. Returns 1, 0 if the key
// exists (an id drawn twice: 2^-256), or -1 if ARGV[4] has passed. Atomic: the session appears
// whole, with its TTL and in its user's index. Prunes up to 16 ended sessions from the index on
// the way.
constexpr std::string_view create_lua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = tonumber(ARGV[1])
local expires = math.floor(tonumber(ARGV[4]) or 0)
if expires > 0 then
  if now >= expires then return -1 end
  ttl = math.min(ttl, expires - now)
elseif tonumber(ARGV[2]) > 0 then
  expires = now + tonumber(ARGV[2])
  ttl = math.min(ttl, tonumber(ARGV[2]))
end
redis.call('HSET', KEYS[1], 'redring:user', ARGV[3], 'redring:expires_at', expires)
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ttl)
if ARGV[3] ~= '' then
  for _, k in ipairs(redis.call('SRANDMEMBER', KEYS[2], 16)) do
    if redis.call('EXISTS', k) == 0 then redis.call('SREM', KEYS[2], k) end
  end
  redis.call('SADD', KEYS[2], KEYS[1])
  if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return 1
)lua";

// KEYS[1] the session, KEYS[2] the index; ARGV[1] idle timeout ms, ARGV[2] "get" or "set", ARGV[3]
// and ARGV[4] the field and value to set. Returns nil if there is no live session (one past its
// absolute end is deleted here), else 1 (set) or the hash's fields and values (get), after
// restarting the idle timeout. Atomic: a session cannot end between the check and the use.
constexpr std::string_view touch_lua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expires = math.floor(tonumber(redis.call('HGET', KEYS[1], 'redring:expires_at') or '0') or 0)
local ttl = tonumber(ARGV[1])
if expires > 0 then
  if now >= expires then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[2], KEYS[1])
    return false
  end
  ttl = math.min(ttl, expires - now)
end
if ARGV[2] == 'set' then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], ttl)
if (redis.call('HGET', KEYS[1], 'redring:user') or '') ~= '' and redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if ARGV[2] == 'set' then return 1 end
return redis.call('HGETALL', KEYS[1])
)lua";

// KEYS[1] the session, KEYS[2] its new key (the same {tag}), KEYS[3] the index; ARGV[1] idle timeout
// ms, ARGV[2] the user the session must have, if ARGV[3] is "check". Returns 1 (moved), 0 (no live
// session), -1 (the new key exists: an id drawn twice) or -2 (another user's session). Atomic: no use
// of the old id, and no destroy_all, sees the session anywhere but under one of its ids; the TTL
// moves with RENAME and restarts, within the absolute end, as any use.
constexpr std::string_view rename_lua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
if ARGV[3] == 'check' and (redis.call('HGET', KEYS[1], 'redring:user') or '') ~= ARGV[2] then return -2 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expires = math.floor(tonumber(redis.call('HGET', KEYS[1], 'redring:expires_at') or '0') or 0)
local ttl = tonumber(ARGV[1])
if expires > 0 then
  if now >= expires then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[3], KEYS[1])
    return 0
  end
  ttl = math.min(ttl, expires - now)
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ttl)
if redis.call('SREM', KEYS[3], KEYS[1]) == 1 then
  redis.call('SADD', KEYS[3], KEYS[2])
  if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
end
return 1
)lua";

// KEYS[1] the session, KEYS[2] the index. Returns nil if there is no live session, else its fields
// and values, having deleted it. Atomic: no use of the id succeeds after this (the first half of a
// rotation to another user, whose id is in another slot: created by create_lua, after).
constexpr std::string_view take_lua = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local expires = math.floor(tonumber(redis.call('HGET', KEYS[1], 'redring:expires_at') or '0') or 0)
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], KEYS[1])
if expires > 0 and now >= expires then return false end
return fields
)lua";

// KEYS[1] the session, KEYS[2] the index. Returns 1 if the session existed. Atomic: it leaves
// the index with it.
constexpr std::string_view destroy_lua = R"lua(
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], KEYS[1])
return n
)lua";

// KEYS[1] the index of the user's tag; ARGV[1] the user. Deletes every live session of the user
// listed there (others of the same tag stay) and forgets ended ones; returns how many it deleted.
// The session keys come from the index, not KEYS: they share its {tag}, so its slot. Atomic: a
// session created meanwhile is either deleted or created after, never half.
constexpr std::string_view destroy_all_lua = R"lua(
local n = 0
for _, k in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local user = redis.call('HGET', k, 'redring:user')
  if user == ARGV[1] then
    n = n + redis.call('DEL', k)
    redis.call('SREM', KEYS[1], k)
  elseif not user then
    redis.call('SREM', KEYS[1], k)
  end
end
return n
)lua";

constexpr std::size_t tag_digits = 16;
constexpr std::string_view reserved_prefix = "redring:";


// The first 16 hex digits of HMAC-SHA1(key, data) (OpenSSL 3's one-shot MAC).
std::string hmac_tag(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t length = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA1", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, sizeof mac, &length) == nullptr) {
    return {};
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex;
  for (std::size_t i = 0; i < 8 && i < length; ++i) {
    hex.push_back(digits[mac[i] >> 4]);
    hex.push_back(digits[mac[i] & 15]);
  }
  return hex;
}

}  // namespace

session_store::session_store(client::client& c, session_options opts) : client_(c), opts_(std::move(opts)) {
  opts_.id_bytes = std::max<std::size_t>(opts_.id_bytes, 16);  // 128 bits at the least
  // Braces in the prefix could make another hash tag than {tag}: a user's sessions and their
  // index in different slots (CROSSSLOT on a cluster).
  const std::string sample(tag_digits + 2 * opts_.id_bytes, 'a');
  if (client::hash_slot(key(sample)) != client::hash_slot(index_key(sample.substr(0, tag_digits)))) {
    throw std::invalid_argument("session_store: braces in the prefix would put a user's sessions and their index in different slots");
  }
}

std::string session_store::tag_of(std::string_view user) const {
  if (opts_.tag_secret.empty()) return sha1_hex(user).substr(0, tag_digits);
  return hmac_tag(opts_.tag_secret, user);
}

bool session_store::well_formed(std::string_view id) const noexcept {
  return id.size() == tag_digits + 2 * opts_.id_bytes &&
         std::all_of(id.begin(), id.end(), [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); });
}

std::string session_store::key(std::string_view id) const {
  if (!well_formed(id)) return {};
  std::string k = opts_.prefix;
  k.append("{").append(id.substr(0, tag_digits)).append("}:").append(id.substr(tag_digits));
  return k;
}

std::string session_store::index_key(std::string_view tag) const {
  std::string k = opts_.prefix;
  k.append("{").append(tag).append("}:index");
  return k;
}

task<resp::result<std::string>> session_store::create(std::string_view user, const session_fields& fields) {
  for (const auto& [field, value] : fields) {
    if (field.starts_with(reserved_prefix)) co_return refused_argument("session_store: field names starting with redring: are the store's");
  }
  auto id = co_await start(user, fields, "0");
  if (!id) co_return id.error();
  if (!*id) co_return unexpected_reply("session_store: create");  // only a rotation passes an end
  co_return std::move(**id);
}

// A new session of `user` with `fields` and the absolute end `expires_at` (server ms; "0": the
// max lifetime from now). Its id, or nullopt if that end has passed.
task<resp::result<std::optional<std::string>>> session_store::start(std::string_view user, const session_fields& fields,
                                                                    std::string expires_at) {
  // The tag puts a user's sessions in one slot with their index; an anonymous session has none to share.
  bool random_ok = true;
  const std::string tag = user.empty() ? random_hex(tag_digits / 2, &random_ok) : tag_of(user);
  if (tag.size() != tag_digits) co_return resp::error{std::make_error_code(std::errc::io_error), "session_store: the tag's HMAC failed"};
  std::vector<std::string> args = {ms_argument(opts_.idle_timeout, 1), ms_argument(opts_.max_lifetime, 0), std::string(user),
                                   std::move(expires_at)};
  for (const auto& [field, value] : fields) {
    args.push_back(field);
    args.push_back(value);
  }
  for (int tries = 0; tries < 3; ++tries) {
    std::string id = tag + random_hex(opts_.id_bytes, &random_ok);
    // An id that is not from the CSPRNG could be guessed: no session rather than a weak one.
    if (!random_ok) co_return resp::error{std::make_error_code(std::errc::io_error), "session_store: the CSPRNG failed (RAND_bytes)"};
    const std::array<std::string, 2> keys = {key(id), index_key(tag)};
    auto reply = co_await script_for<create_lua>().run(client_, keys, args, opts_.timeout);
    if (!reply) co_return reply.error();
    if (reply->data_type != resp::type::integer) co_return unexpected_reply("session_store: create");
    if (reply->integer == 1) co_return std::optional<std::string>(std::move(id));
    if (reply->integer == -1) co_return std::optional<std::string>();
  }
  co_return unexpected_reply("session_store: create (three ids drawn were all taken)");
}

task<resp::result<std::optional<std::string>>> session_store::rotate(std::string_view id, std::optional<std::string_view> user) {
  if (!well_formed(id)) co_return std::optional<std::string>();
  // Copied: `user` is used after the first round trip.
  const std::optional<std::string> new_user = user ? std::optional<std::string>(*user) : std::nullopt;
  const std::string tag(id.substr(0, tag_digits));
  // The same user (or none named): a new id with the same tag, in the same slot, moved in one
  // script, so a concurrent destroy_all finds the session under one id or the other.
  if (!new_user || tag_of(*new_user) == tag) {
    const std::array<std::string, 3> args = {ms_argument(opts_.idle_timeout, 1), new_user.value_or(std::string()),
                                             new_user ? "check" : "any"};
    bool random_ok = true;
    for (int tries = 0; tries < 3; ++tries) {
      std::string fresh = tag + random_hex(opts_.id_bytes, &random_ok);
      if (!random_ok) co_return resp::error{std::make_error_code(std::errc::io_error), "session_store: the CSPRNG failed (RAND_bytes)"};
      const std::array<std::string, 3> keys = {key(id), key(fresh), index_key(tag)};
      auto reply = co_await script_for<rename_lua>().run(client_, keys, args, opts_.timeout);
      if (!reply) co_return reply.error();
      if (reply->data_type != resp::type::integer) co_return unexpected_reply("session_store: rotate");
      if (reply->integer == 1) co_return std::optional<std::string>(std::move(fresh));
      if (reply->integer == 0) co_return std::optional<std::string>();
      if (reply->integer == -2) break;  // another user's (a tag shared by chance): a login, below
    }
  }
  // Another user (a login): the new id is in that user's slot. Two scripts: the old session is taken
  // atomically, then the new one created; if the second fails no session is left, never two. A
  // destroy_all of the new user running between them does not see the session being created: as
  // for any login racing a "log out everywhere", the login comes after.
  const std::array<std::string, 2> keys = {key(id), index_key(tag)};
  auto reply = co_await script_for<take_lua>().run(client_, keys, {}, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->is_null()) co_return std::optional<std::string>();
  if (reply->data_type != resp::type::array || reply->elements.size() % 2 != 0) co_return unexpected_reply("session_store: rotate");
  std::string old_user, expires_at = "0";
  session_fields fields;
  auto& e = reply->elements;
  for (std::size_t i = 0; i < e.size(); i += 2) {
    if (e[i].text == "redring:user") old_user = std::move(e[i + 1].text);
    else if (e[i].text == "redring:expires_at") expires_at = std::move(e[i + 1].text);
    else if (!std::string_view(e[i].text).starts_with(reserved_prefix)) fields.emplace(std::move(e[i].text), std::move(e[i + 1].text));
  }
  // A login starts a session of the user's own, with a whole lifetime; the same user (a tag the
  // secret no longer gives) keeps the absolute end: rotating never extends a session.
  const bool same_user = !new_user || *new_user == old_user;
  // Named, not conditional expressions in the co_await's operands: GCC 12 destroys such a temporary
  // twice in a coroutine (free(): invalid pointer).
  const std::string_view user_after = same_user ? std::string_view(old_user) : std::string_view(*new_user);
  if (!same_user) expires_at = "0";
  auto started = co_await start(user_after, fields, std::move(expires_at));
  co_return started;
}

task<resp::result<std::optional<session>>> session_store::get(std::string_view id) {
  if (!well_formed(id)) co_return std::optional<session>();
  const std::array<std::string, 2> keys = {key(id), index_key(id.substr(0, tag_digits))};
  const std::array<std::string, 2> args = {ms_argument(opts_.idle_timeout, 1), "get"};
  auto reply = co_await script_for<touch_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->is_null()) co_return std::optional<session>();
  if (reply->data_type != resp::type::array || reply->elements.size() % 2 != 0) co_return unexpected_reply("session_store: get");
  session s;
  auto& e = reply->elements;
  for (std::size_t i = 0; i < e.size(); i += 2) {
    if (e[i].text == "redring:user") {
      s.user = std::move(e[i + 1].text);
    } else if (!std::string_view(e[i].text).starts_with(reserved_prefix)) {
      s.fields.emplace(std::move(e[i].text), std::move(e[i + 1].text));
    }
  }
  co_return std::optional<session>(std::move(s));
}

task<resp::result<bool>> session_store::set(std::string_view id, std::string_view field, std::string_view value) {
  if (field.starts_with(reserved_prefix)) co_return refused_argument("session_store: field names starting with redring: are the store's");
  if (!well_formed(id)) co_return false;
  const std::array<std::string, 2> keys = {key(id), index_key(id.substr(0, tag_digits))};
  const std::array<std::string, 4> args = {ms_argument(opts_.idle_timeout, 1), "set", std::string(field), std::string(value)};
  auto reply = co_await script_for<touch_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->is_null()) co_return false;
  if (reply->data_type != resp::type::integer) co_return unexpected_reply("session_store: set");
  co_return true;
}

task<resp::result<bool>> session_store::destroy(std::string_view id) {
  if (!well_formed(id)) co_return false;
  const std::array<std::string, 2> keys = {key(id), index_key(id.substr(0, tag_digits))};
  auto reply = co_await script_for<destroy_lua>().run(client_, keys, {}, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->data_type != resp::type::integer) co_return unexpected_reply("session_store: destroy");
  co_return reply->integer == 1;
}

task<resp::result<std::int64_t>> session_store::destroy_all(std::string_view user) {
  if (user.empty()) co_return refused_argument("session_store: destroy_all needs a user (anonymous sessions have no index)");
  const std::array<std::string, 1> keys = {index_key(tag_of(user))};
  const std::array<std::string, 1> args = {std::string(user)};
  auto reply = co_await script_for<destroy_all_lua>().run(client_, keys, args, opts_.timeout);
  if (!reply) co_return reply.error();
  if (reply->data_type != resp::type::integer) co_return unexpected_reply("session_store: destroy_all");
  co_return reply->integer;
}

}  // namespace redring::patterns
