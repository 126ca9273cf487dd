// SPDX-License-Identifier: MIT
// Web sessions: a hash per session under an unguessable id, an idle timeout that each use slides
// forward, an absolute lifetime, and "log out everywhere" per user. Each step is one Lua script.
#pragma once

#include "client/client.hpp"
#include "patterns/task.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace redring::patterns {

/// Settings of a `session_store`.
struct session_options {
  /// Keys: prefix + "{" + tag + "}:" + the id's random part, and prefix + "{" + tag + "}:index"
  /// (the sessions of the users whose tag it is), where tag is the first 16 hex digits of the
  /// user's HMAC-SHA1 keyed by `tag_secret` (random for an anonymous session). A user's sessions
  /// and their index share a slot. Braces in the prefix that would take over the hash tag are
  /// refused (std::invalid_argument).
  std::string prefix = "sess:";
  /// The key of the tags' HMAC: the same for every process sharing the sessions. Empty (the
  /// default) makes the tag a plain SHA1 of the user: anyone who sees an id (a log, a proxy) can
  /// then test a guess of whose it is, and link one user's ids. Set a secret where that matters.
  std::string tag_secret;
  /// A session unused this long ends; each `get` or `set` starts it again (sliding expiration).
  /// 1 ms to 10^13 ms (317 years); values outside are brought within.
  std::chrono::milliseconds idle_timeout{30 * 60 * 1000};
  /// A session ends this long after `create` however much it is used; 0: only the idle timeout.
  /// At most 10^13 ms.
  std::chrono::milliseconds max_lifetime{0};
  /// Random bytes in an id (after its 16-digit tag): 32 gives 256 bits from the CSPRNG.
  std::size_t id_bytes = 32;
  /// Per command (0: the client's default; negative: none).
  std::chrono::milliseconds timeout{1000};
};

/// A session's fields, as the application stored them.
using session_fields = std::map<std::string, std::string, std::less<>>;

/// A live session.
struct session {
  /// The user it was created for ("" for an anonymous session).
  std::string user;
  /// The application's fields (the store's own `redring:` fields left out).
  session_fields fields;
};

/// A session store on a client. Ids are 16 hex digits of tag then `2 * id_bytes` hex digits from
/// the CSPRNG (OpenSSL RAND_bytes); an id of any other shape (a forged or mangled cookie) is no session, answered
/// without a round trip. Field names starting with "redring:" are the store's own (the user, the
/// absolute expiry) and refused. Time is the server's. Loop thread only; the client must outlive
/// the store and every operation in flight. String views passed in must outlive the co_await.
class session_store {
 public:
  /// A store on `c` (`id_bytes` below 16 counts as 16).
  session_store(client::client& c, session_options opts = {});

  /// Starts a session for `user` ("" for anonymous) holding `fields`; returns its id. Fails closed
  /// (an error, no session) if the CSPRNG fails.
  [[nodiscard]] task<resp::result<std::string>> create(std::string_view user, const session_fields& fields = {});
  /// The session, or nullopt if there is none (ended, destroyed, never existed, a malformed id).
  /// Restarts its idle timeout.
  [[nodiscard]] task<resp::result<std::optional<session>>> get(std::string_view id);
  /// Sets one field: true, or false if there is no such session. Restarts its idle timeout.
  [[nodiscard]] task<resp::result<bool>> set(std::string_view id, std::string_view field, std::string_view value);
  /// Gives the session a new id and ends the old one (on login or a privilege change, against session
  /// fixation: an id someone planted or saw before stops working). The fields move to the new id;
  /// `user` makes it that user's session (an anonymous one logging in), with a whole lifetime of its
  /// own, while the same user (or none given) keeps the session's absolute end. Returns the new id,
  /// or nullopt if there was no live session. The same user's rotation is one atomic script (the
  /// new id keeps the tag: one slot). A login is two (the new id is in the user's slot): the old
  /// session is taken atomically, then the new one created; if that fails the error is returned and
  /// no session is left, never two. The fields move as they are: on a login, fields an anonymous
  /// visitor could write are the application's to check.
  [[nodiscard]] task<resp::result<std::optional<std::string>>> rotate(std::string_view id,
                                                                     std::optional<std::string_view> user = std::nullopt);
  /// Ends the session: true if it existed.
  [[nodiscard]] task<resp::result<bool>> destroy(std::string_view id);
  /// Ends every session of `user` (not ""): "log out everywhere". Returns how many there were.
  [[nodiscard]] task<resp::result<std::int64_t>> destroy_all(std::string_view user);

  /// The Redis key of the session `id` (empty for a malformed id).
  [[nodiscard]] std::string key(std::string_view id) const;

 private:
  [[nodiscard]] std::string index_key(std::string_view tag) const;
  task<resp::result<std::optional<std::string>>> start(std::string_view user, const session_fields& fields, std::string expires_at);
  [[nodiscard]] std::string tag_of(std::string_view user) const;
  [[nodiscard]] bool well_formed(std::string_view id) const noexcept;

  client::client& client_;
  session_options opts_;
};

}  // namespace redring::patterns
