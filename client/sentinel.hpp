// SPDX-License-Identifier: MIT
// Redis Sentinel discovery: asks the sentinels where a named master, or one of its replicas, is.
// Follows the Sentinel client guidelines (redis.io, "Sentinel client spec"): sentinels are tried in
// order, each within a short timeout, the first to answer moves to the front of the list, and the
// server named is then checked with ROLE by the connection (connection::on_role).
#pragma once

#include "client/connection.hpp"
#include "client/options.hpp"
#include "client/request.hpp"
#include "net/loop.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace redring::client {

/// Where a sentinel says the server is.
struct sentinel_answer {
  std::string host;  ///< As the sentinel announces it: an address, or a name with `announce-hostnames`.
  std::uint16_t port = 0;
};

/// One lookup at a time through the sentinels of `options::sentinel`, on the loop thread. A
/// connection in Sentinel mode owns one and starts it before every connect and reconnect, so a
/// failover is followed at the next connect (Sentinel closes the clients of an instance it
/// reconfigures, `CLIENT KILL TYPE normal`, which makes every client reconnect).
///
/// Each sentinel gets a connection of its own (the server's TLS settings, the sentinel's credentials,
/// no reconnect) and one command, `SENTINEL GET-MASTER-ADDR-BY-NAME <name>` or, for
/// `sentinel_role::replica`, `SENTINEL REPLICAS <name>` (a replica chosen at random among those
/// with no `s_down`, `o_down` or `disconnected` flag and a master link `ok`), all within
/// `sentinel_options::timeout`. With it goes `SENTINEL SENTINELS <name>`: after an answer, the
/// sentinels that one knows and the list lacks are added to its end (the spec's optional refresh;
/// at most 64 sentinels in all). A sentinel that cannot be reached, refuses, does not know the name
/// or knows no healthy replica is skipped for the next; the connection is closed either way.
class sentinel_lookup {
 public:
  /// Called once per `start()` unless cancelled, on the loop thread, outside any connection's
  /// callback: with no error and the answer, or with `errc::connect_failed` and, in `why`, each
  /// sentinel's reason. The lookup may be started again from inside it.
  using done_fn = void (*)(void* context, std::error_code ec, const sentinel_answer& where, const std::string& why);

  /// A lookup for the server `server` describes (its `sentinel` settings, its TLS settings).
  sentinel_lookup(net::loop& loop, const options& server, done_fn done, void* context);
  ~sentinel_lookup();
  sentinel_lookup(const sentinel_lookup&) = delete;
  sentinel_lookup& operator=(const sentinel_lookup&) = delete;

  /// Starts a lookup (no-op while one runs).
  void start();
  /// Stops a lookup in progress; its `done` is not called.
  void cancel() noexcept;
  /// True between `start()` and `done`.
  [[nodiscard]] bool running() const noexcept { return running_; }
  /// The sentinels in the order the next lookup tries them: the last that answered first.
  [[nodiscard]] const std::vector<sentinel_address>& order() const noexcept { return order_; }

 private:
  struct query : request {
    sentinel_lookup* owner = nullptr;
  };
  // SENTINEL REPLICAS and SENTINEL SENTINELS answer alike: an array of maps (RESP3) or of flat
  // field/value arrays (RESP2), each an aggregate at depth 1 with its fields and values alternating
  // at depth 2. Keeps the fields a client uses, of the first `max` entries (a hostile sentinel's
  // 4-byte entries must not cost 100 bytes each).
  struct entry_list {
    struct entry {
      std::string ip, port, flags, link;  // link: master-link-status
    };
    std::vector<entry> entries;
    std::size_t seen = 0;
    std::string key;  // the field whose value comes next
    bool key_next = true;
    void add(const resp::node& n, std::size_t max);
    void clear() noexcept;
  };
  // SENTINEL SENTINELS <name>, sent with the question: the other sentinels this one knows.
  struct peers_query : request {
    sentinel_lookup* owner = nullptr;
    entry_list peers;
  };
  struct settle_timer : net::timer {
    sentinel_lookup* owner = nullptr;
  };

  void ask(std::size_t index);
  void on_reply_node(const resp::node& n);
  void settle();
  std::string answer_from_reply(sentinel_answer& out);
  void finish(std::error_code ec, const sentinel_answer& where, const std::string& why);
  static void on_settle(net::timer* t);

  net::loop& loop_;
  sentinel_options settings_;
  options sentinel_options_;  // for the connections to the sentinels
  done_fn done_;
  void* context_;
  std::vector<sentinel_address> order_;
  std::size_t index_ = 0;     // the sentinel being asked
  bool running_ = false;
  connection::pointer conn_;
  query query_;
  peers_query peers_;
  int outstanding_ = 0;  // of query_ and peers_
  settle_timer settle_timer_;
  std::error_code query_error_;  // how the query completed (connection lost, timeout ...)
  // The reply to the current query.
  std::string reply_error_;
  bool reply_null_ = false;
  bool reply_aggregate_ = false;
  std::vector<std::string> master_fields_;  // GET-MASTER-ADDR-BY-NAME: ip, port
  entry_list replicas_;                     // REPLICAS
  std::string reasons_;  // why each sentinel asked so far did not answer
  std::minstd_rand rng_;
};

/// Listens to one sentinel at a time for `+switch-master` (Sentinel's Pub/Sub event for a finished
/// failover) and reports those of `options::sentinel.master_name`. A master connection in Sentinel
/// mode runs one while it is up, to leave the old master at once: Sentinel closes the clients of
/// the old master only when it turns it into a replica, which for a master still up (a manual
/// failover, a partition healing) comes seconds later, and writes there until then are lost.
/// Once subscribed, it also asks that sentinel where the master is and reports that address as a
/// switch from an unknown `from` (the failover may have happened before the subscription: the
/// owner compares it with where it is). Needs RESP3 on the sentinel (pushes); a sentinel that lacks
/// it, or a watch that drops or leaves a PING unanswered for a second (a frozen sentinel), moves on to
/// the next sentinel a second later. Loop thread only.
class sentinel_watch {
 public:
  /// Called on the loop thread for each failover of the watched master, with the old and new master
  /// (`from.host` empty: the master's address as asked once subscribed).
  using switch_fn = void (*)(void* context, const sentinel_answer& from, const sentinel_answer& to);

  sentinel_watch(net::loop& loop, const options& server, switch_fn on_switch, void* context);
  ~sentinel_watch();
  sentinel_watch(const sentinel_watch&) = delete;
  sentinel_watch& operator=(const sentinel_watch&) = delete;

  /// Subscribes on the first of `order` (no-op while watching).
  void start(const std::vector<sentinel_address>& order);
  /// Unsubscribes (closes the connection to the sentinel).
  void stop() noexcept;
  /// True while subscribed (the sentinel confirmed).
  [[nodiscard]] bool subscribed() const noexcept { return subscribed_; }

 private:
  struct subscribe_request : request {
    sentinel_watch* owner = nullptr;
  };
  struct check_request : request {
    sentinel_watch* owner = nullptr;
    std::vector<std::string> fields;  // GET-MASTER-ADDR-BY-NAME: ip, port
  };
  struct retry_timer : net::timer {
    sentinel_watch* owner = nullptr;
  };

  void open();
  static void on_state(void* self, connection_state s);
  static void on_push(void* self, const resp::node& n);
  static void on_retry(net::timer* t);
  void on_event(std::string_view payload);
  void report(const sentinel_answer& from, const sentinel_answer& to);

  net::loop& loop_;
  std::string master_name_;
  options sentinel_options_;
  switch_fn on_switch_;
  void* context_;
  std::vector<sentinel_address> order_;
  std::size_t index_ = 0;
  bool running_ = false;
  bool subscribed_ = false;
  connection::pointer conn_;
  subscribe_request subscribe_;
  check_request check_;
  bool check_in_flight_ = false;
  bool reporting_ = false;  // inside on_switch_ (called from the connection's dispatch)
  retry_timer retry_timer_;
  std::vector<std::string> push_;  // the strings of the push being received
};

}  // namespace redring::client
