// SPDX-License-Identifier: MIT
// Pub/sub: a connection of its own in subscribed mode, its subscriptions restored after a reconnect.
#pragma once

#include "client/connection.hpp"
#include "client/options.hpp"
#include "net/loop.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <set>
#include <span>
#include <string>
#include <string_view>

namespace redring::client {

/// What a subscriber's handler is told.
enum class pubsub_kind : std::uint8_t {
  message,       ///< A message published to a subscribed channel.
  pmessage,      ///< A message published to a channel matching a subscribed pattern.
  subscribe,     ///< The server confirmed a channel subscription.
  psubscribe,    ///< The server confirmed a pattern subscription.
  unsubscribe,   ///< The server confirmed that a channel subscription ended.
  punsubscribe,  ///< The server confirmed that a pattern subscription ended.
  refused,       ///< The server refused a (P|S)SUBSCRIBE (an ACL without that channel: NOPERM; a
                 ///< sharded channel whose slot another node serves: MOVED): the name is dropped
                 ///< from the subscriber's sets; `payload` is the server's error.
  smessage,      ///< A message published (SPUBLISH) to a subscribed sharded channel.
  ssubscribe,    ///< The server confirmed a sharded channel subscription.
  sunsubscribe,  ///< The server confirmed that a sharded channel subscription ended, as asked.
  slot_moved,    ///< The server ended a sharded subscription on its own: the channel's hash slot
                 ///< left the node (a resharding, or a failover that made it a replica). The name
                 ///< is dropped from `shard_channels()`; a `cluster_subscriber` subscribes it again
                 ///< on the slot's new primary. `count` as in a confirmation.
};

/// One pub/sub event. Every view is valid during the handler's call only: copy what you keep.
struct pubsub_event {
  pubsub_kind kind = pubsub_kind::message;
  /// The channel (message, smessage, pmessage, and the channel confirmations) or the pattern
  /// (psubscribe, punsubscribe), or the name refused or moved. Empty in an unsubscribe confirmation sent when nothing
  /// was subscribed.
  std::string_view channel;
  /// pmessage: the pattern that matched `channel`. Otherwise empty.
  std::string_view pattern;
  /// message, smessage, pmessage: the payload, as published (any bytes); refused: the server's error text.
  /// Otherwise empty.
  std::string_view payload;
  /// Confirmations: how many channels and patterns this connection is subscribed to after it.
  std::int64_t count = 0;
};

/// A pub/sub subscriber: SUBSCRIBE and PSUBSCRIBE on a connection of its own (a subscribed
/// connection cannot carry other callers' commands; the client refuses these commands on its
/// shared ones), events delivered to one handler as they arrive, with no allocation per message
/// (the payload is a view into the receive buffer; the channel is copied into a reused string).
///
/// The subscriber keeps the set of channels and patterns asked for: after a reconnect (the
/// connection's backoff and handshake, as `options` say) it subscribes to all of them again, and
/// the server confirms each anew (a name asked for just before a drop may be confirmed twice).
/// Messages published while it was disconnected are lost: that is pub/sub's contract (use a
/// stream or a list where every message must arrive). Each name goes in a command of its own, so
/// a name the server refuses (an ACL: NOPERM) is refused alone, reported as a `refused` event and
/// dropped from the sets, never taking the others down with it.
///
/// RESP3 only (Redis 6 and later): its messages are pushes, told apart from replies by type. With
/// `options::protocol` 2, or a server that answers HELLO 3 with an error (RESP2 only), the
/// subscriber stops with `failed()` true and `last_error()` saying why; it subscribes to nothing.
/// The health check (`options::health_check_interval`) is the subscriber's own: a PING sent
/// without a request waiting for it, whose PONG arrives in the stream like the pushes; a PONG
/// missing for a whole interval drops the connection, which reconnects.
///
/// Sharded channels (SSUBSCRIBE, Redis 7) are kept in a set of their own. A server outside a cluster
/// serves them all; a cluster node serves only those of its slots (others are refused with MOVED) and
/// ends their subscriptions itself when a slot leaves it (`pubsub_kind::slot_moved`): in a cluster,
/// use `cluster_subscriber`, which places each on its slot's primary and follows the moves. Classic
/// messages reach every node of a cluster, so a subscriber connected to any node receives them all.
///
/// Loop thread only, like `connection`. Destroy it before its loop.
class subscriber {
 public:
  /// Receives every event (see `pubsub_event` for the views' lifetime). It may call `subscribe`,
  /// `unsubscribe` and their pattern forms, but not destroy the subscriber.
  using handler_fn = void (*)(void* context, const pubsub_event& e);

  /// A subscriber connecting with `opts` (its host or Unix path, credentials, database, timeouts,
  /// reconnect policy). Not started: call `start()`.
  subscriber(net::loop& loop, const options& opts);
  ~subscriber();
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  /// Where events go: `fn(context, event)`. Set it before `start()`; events with no handler are dropped.
  void set_handler(handler_fn fn, void* context) noexcept {
    handler_ = fn;
    context_ = context;
  }
  /// Where events go: `f(event)`, `f` a callable object that outlives the subscriber (or the next
  /// `set_handler`).
  template <class F>
  void set_handler(F& f) noexcept {
    set_handler([](void* c, const pubsub_event& e) { (*static_cast<F*>(c))(e); }, &f);
  }

  /// Connects, then subscribes to what was asked for so far. Idempotent.
  void start();
  /// Closes the connection for good (no reconnect); nothing more is delivered. From the handler
  /// too: the connection then closes on the next loop turn.
  void close();

  /// Subscribes to `channels` (SUBSCRIBE), now if connected, else once connected; each is
  /// confirmed by a `pubsub_kind::subscribe` event. Channels already subscribed are not sent again.
  void subscribe(std::span<const std::string_view> channels) { change(kind::subscribe, channels); }
  /// The same, for a braced list: `subscribe({"a", "b"})`.
  void subscribe(std::initializer_list<std::string_view> channels) { subscribe(std::span(channels.begin(), channels.size())); }
  /// Subscribes to the glob-style `patterns` (PSUBSCRIBE: `news.*`, `h?llo`, `[ab]*`).
  void psubscribe(std::span<const std::string_view> patterns) { change(kind::psubscribe, patterns); }
  /// The same, for a braced list: `psubscribe({"a", "b"})`.
  void psubscribe(std::initializer_list<std::string_view> patterns) { psubscribe(std::span(patterns.begin(), patterns.size())); }
  /// Subscribes to the sharded `channels` (SSUBSCRIBE, Redis 7; one command per name, so names of
  /// different slots are fine). Each is confirmed by a `pubsub_kind::ssubscribe` event; messages
  /// arrive as `pubsub_kind::smessage`.
  void ssubscribe(std::span<const std::string_view> channels) { change(kind::ssubscribe, channels); }
  /// The same, for a braced list: `ssubscribe({"a", "b"})`.
  void ssubscribe(std::initializer_list<std::string_view> channels) { ssubscribe(std::span(channels.begin(), channels.size())); }
  /// Ends the subscriptions to the sharded `channels` (SUNSUBSCRIBE); names not subscribed are ignored.
  void sunsubscribe(std::span<const std::string_view> channels) { change(kind::sunsubscribe, channels); }
  /// The same, for a braced list: `sunsubscribe({"a", "b"})`.
  void sunsubscribe(std::initializer_list<std::string_view> channels) { sunsubscribe(std::span(channels.begin(), channels.size())); }
  /// Ends the subscriptions to `channels` (UNSUBSCRIBE); names not subscribed are ignored.
  void unsubscribe(std::span<const std::string_view> channels) { change(kind::unsubscribe, channels); }
  /// The same, for a braced list: `unsubscribe({"a", "b"})`.
  void unsubscribe(std::initializer_list<std::string_view> channels) { unsubscribe(std::span(channels.begin(), channels.size())); }
  /// Ends the subscriptions to `patterns` (PUNSUBSCRIBE); patterns not subscribed are ignored.
  void punsubscribe(std::span<const std::string_view> patterns) { change(kind::punsubscribe, patterns); }
  /// The same, for a braced list: `punsubscribe({"a", "b"})`.
  void punsubscribe(std::initializer_list<std::string_view> patterns) { punsubscribe(std::span(patterns.begin(), patterns.size())); }

  /// The channels asked for (subscribed, or to be once connected and confirmed).
  [[nodiscard]] const std::set<std::string, std::less<>>& channels() const noexcept { return channels_; }
  /// The patterns asked for.
  [[nodiscard]] const std::set<std::string, std::less<>>& patterns() const noexcept { return patterns_; }
  /// The sharded channels asked for.
  [[nodiscard]] const std::set<std::string, std::less<>>& shard_channels() const noexcept { return shard_channels_; }
  /// What this connection is subscribed to, as the server's confirmations count it: the count in
  /// the last channel or pattern confirmation (channels plus patterns) plus the count in the last
  /// sharded one (the server counts sharded channels apart). 0 while not connected, and on a new
  /// connection until its first confirmation.
  [[nodiscard]] std::int64_t confirmed() const noexcept { return confirmed_ + shard_confirmed_; }
  /// Messages received so far (message, smessage and pmessage events; none after `close()`).
  [[nodiscard]] std::uint64_t messages() const noexcept { return messages_; }
  /// True once the subscriber stopped because the server speaks only RESP2 (see the class comment).
  [[nodiscard]] bool failed() const noexcept { return failed_; }
  /// Why the subscriber failed; else the latest of why its connection dropped and what the server
  /// last refused ("" if none of these happened).
  [[nodiscard]] const std::string& last_error() const noexcept { return failed_ ? error_ : last_error_; }
  /// The connection (state, connects, protocol).
  [[nodiscard]] connection& conn() noexcept { return *conn_; }

 private:
  enum class kind : std::uint8_t { subscribe, psubscribe, ssubscribe, unsubscribe, punsubscribe, sunsubscribe, ping };
  // The set a kind changes, and the names taken out of it while disconnected.
  std::set<std::string, std::less<>>& set_of(kind k) noexcept;
  std::set<std::string, std::less<>>& dropped_of(kind k) noexcept;

  void change(kind k, std::span<const std::string_view> names);
  void send(kind k, std::string_view name);
  void send_all();
  static void on_state(void* self, connection_state s);
  static void on_push(void* self, const resp::node& n);
  static void on_close_timer(net::timer* t);
  static void on_health_timer(net::timer* t);
  void push_node(const resp::node& n);
  bool confirmed_one(kind k, std::string_view name);  // false: no command of ours waited for it
  void refused_one(std::string_view error);
  void deliver(const pubsub_event& e);

  net::loop& loop_;
  connection::pointer conn_;
  handler_fn handler_ = nullptr;
  void* context_ = nullptr;
  std::set<std::string, std::less<>> channels_;
  std::set<std::string, std::less<>> patterns_;
  std::set<std::string, std::less<>> shard_channels_;
  // Names unsubscribed while not connected after having been connected once. A (P)SUBSCRIBE
  // encoded just before a drop, but never sent, is sent after the next handshake (the connection
  // keeps unsent bytes): these names are then unsubscribed again after send_all, so the server
  // ends with exactly the sets.
  std::set<std::string, std::less<>> dropped_channels_;
  std::set<std::string, std::less<>> dropped_patterns_;
  std::set<std::string, std::less<>> dropped_shard_channels_;
  bool ever_ready_ = false;
  std::int64_t confirmed_ = 0;        // the last channel or pattern confirmation's count
  std::int64_t shard_confirmed_ = 0;  // the last sharded channel confirmation's count
  std::uint64_t messages_ = 0;
  bool failed_ = false;
  bool closed_ = false;       // close() was called: nothing more is delivered
  bool dispatching_ = false;  // in the handler (close() must not close the connection under it)
  std::string error_;       // why it failed
  std::string last_error_;  // the latest drop or refusal

  // The (un)subscription commands sent on this connection and not yet answered, oldest first: each
  // is answered by one confirmation push or one error reply (a refusal), in order. A refusal names
  // no channel: it belongs to the oldest command still unanswered.
  struct pending_command {
    kind what;
    std::string name;
  };
  std::deque<pending_command> unanswered_;

  // The command being encoded (a request that waits for no reply: the server answers with pushes).
  struct command_request : request {
    subscriber* owner = nullptr;
  };
  command_request command_;
  kind sending_ = kind::subscribe;
  std::string_view sending_name_;

  // Closing from inside the connection's state callback would close it under its own feet: a
  // timer due at once closes it on the next turn (a timer, unlike a turn hook, can be cancelled).
  struct owned_timer : net::timer {
    subscriber* owner = nullptr;
  };
  owned_timer close_timer_;
  // The health check: every interval, a PING if nothing arrived since the last tick; a PING still
  // unanswered at the next tick drops the connection.
  owned_timer health_timer_;
  std::chrono::milliseconds health_interval_{0};
  bool ping_outstanding_ = false;
  bool heard_since_tick_ = false;

  // The push being read, node by node (a push's views live during one node's call only, so the
  // first strings are copied).
  enum class push_kind : std::uint8_t { none, message, smessage, pmessage, subscribe, psubscribe, ssubscribe, unsubscribe, punsubscribe, sunsubscribe };
  push_kind push_ = push_kind::none;
  bool reading_ = false;       // a push is being read (false: skip nodes up to the next top-level one)
  std::uint64_t push_size_ = 0;  // its declared element count
  std::uint32_t element_ = 0;  // the next element of the push (depth 1)
  std::string first_;          // element 1: the channel or pattern
  std::string second_;         // pmessage's element 2: the channel
};

}  // namespace redring::client
