// SPDX-License-Identifier: MIT
// The client: commands as C++20 coroutines or callbacks, multiplexed and auto-pipelined over a
// connection on an io_uring loop. Typed helpers for the common commands; `command<T>(...)` for all.
#pragma once

#include "client/cluster.hpp"
#include "client/connection.hpp"
#include "client/error.hpp"
#include "client/info.hpp"
#include "client/options.hpp"
#include "client/pipeline.hpp"
#include "client/reply.hpp"
#include "client/request.hpp"
#include "client/url.hpp"
#include "net/loop.hpp"
#include "resp/writer.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <coroutine>
#include <iterator>
#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace redring::client {

class client;

namespace detail {

/// The optional words of a typed helper's command (SET's `PX ms NX XX KEEPTTL GET`, ZRANGE's
/// `BYSCORE REV LIMIT o c WITHSCORES`): a range argument (one bulk string per word) that an
/// awaitable keeps by value, numbers rendered into their word, so such a command allocates nothing
/// and copies none of the caller's key or value.
struct option_words {
  /// One word, its text inside.
  struct word {
    char text[23];
    std::uint8_t size;
    operator std::string_view() const noexcept { return {text, size}; }  // NOLINT: an argument converts
  };
  // The most any helper adds: SET's six (PX, ms, NX, XX, KEEPTTL, GET) and ZRANGE's six (BYSCORE,
  // REV, LIMIT, offset, count, WITHSCORES); a helper needing more raises it.
  static constexpr std::size_t capacity = 6;

  /// Appends a word of at most 23 bytes (the helpers' own: option names).
  void add(std::string_view w) noexcept {
    word& out = items[count++];
    out.size = static_cast<std::uint8_t>(w.copy(out.text, sizeof out.text));
  }
  /// Appends a number's decimal text.
  void add(std::int64_t n) noexcept {
    word& out = items[count++];
    out.size = static_cast<std::uint8_t>(std::to_chars(out.text, out.text + sizeof out.text, n).ptr - out.text);
  }
  [[nodiscard]] const word* begin() const noexcept { return items; }
  [[nodiscard]] const word* end() const noexcept { return items + count; }
  [[nodiscard]] std::size_t size() const noexcept { return count; }

  word items[capacity];
  std::uint8_t count = 0;
};

// How an awaitable keeps an argument until it is encoded: text as a view, numbers by value, ranges
// by reference (option_words, small and built by the helper, by value). All of them live until the
// co_await completes.
template <class T>
inline constexpr bool is_char_array_v = std::is_array_v<T> && std::is_same_v<std::remove_cv_t<std::remove_extent_t<T>>, char>;

template <class T>
using stored_argument_t = std::conditional_t<
    resp::is_literal_v<T> || std::is_same_v<T, option_words>, T,  // a literal is empty: its text is a constant
    std::conditional_t<std::convertible_to<const T&, std::string_view> || is_char_array_v<T>, std::string_view,
                       std::conditional_t<resp::range_argument<T>, const T&, T>>>;

// client::submit for the awaitables' await_suspend: true if the awaiting coroutine must suspend,
// false if `r` completed during the call (request::in_submit: the coroutine goes on at once).
bool submit_and_suspend(client& c, request& r);

// The only key of a command, as its typed helper knows it (see `request::key`).
struct routing_key {
  std::string_view text;
};

// An argument as the awaitable stores it; a char array (a literal command name) without a strlen call.
template <class T>
stored_argument_t<T> store_argument(const T& arg) noexcept {
  if constexpr (is_char_array_v<T>) {
    return resp::array_text(arg);
  } else {
    return arg;
  }
}

// True for commands that may block the connection: BLPOP & co., WAIT, XREAD(GROUP) ... BLOCK.
bool is_blocking_command(std::string_view name) noexcept;
bool is_block_option(std::string_view arg) noexcept;

bool is_stream_read(std::string_view name) noexcept;  // XREAD, XREADGROUP: blocking with BLOCK

// True for commands that would put the connection out of step with its FIFO of requests, so no
// client can share it: (S|P)SUBSCRIBE and (S|P)UNSUBSCRIBE (their confirmations are RESP3 pushes,
// not replies: the request would take the next command's reply; under RESP2 they switch the
// connection to subscribed mode) and MONITOR (a reply per command the server runs, for ever).
bool is_stream_breaking_command(std::string_view name) noexcept;
// CLIENT REPLY OFF|SKIP: the server stops answering, and every later reply goes to the wrong request.
bool is_client_reply_off(std::string_view name, std::string_view sub, std::string_view option) noexcept;

// An argument's text, or "" for one that is not text (a number, a range).
template <class T>
std::string_view text_of_argument(const T& arg) noexcept {
  if constexpr (std::convertible_to<const T&, std::string_view>) {
    return std::string_view(store_argument(arg));
  } else {
    return {};
  }
}

// How a command travels: with the others, on a connection of its own (it may block), or not at all.
// `multi` (MULTI) is not sent alone, which would queue every other caller's commands into its
// transaction; in a pipeline it is sent when an EXEC or DISCARD of the same pipeline ends it (the
// bytes leave together, so nothing comes between), and never inside a `transaction` (nested).
enum class command_class : std::uint8_t { shared, blocking, unsupported, multi };

// What a command's name alone says (out of line: only names the inline filter lets through).
enum class name_kind : std::uint8_t { shared, blocking, unsupported, stream_read, client, multi };
name_kind kind_of_name(std::string_view name) noexcept;

// True if `name` may be one kind_of_name does not call shared: its first letter is one of
// B W X (blocking) or C M P S U (breaking the stream), with a length that such a name has. Inline,
// and for nearly every command one bit test: GET, HSET, LPUSH, INCR ... answer at once.
[[gnu::always_inline]] inline bool may_be_special(std::string_view name) noexcept {
  if (name.empty()) return false;
  const auto c = static_cast<unsigned>((name[0] | 0x20) - 'a');
  constexpr auto bit = [](char l) { return std::uint32_t{1} << (l - 'a'); };
  constexpr std::uint32_t letters = bit('b') | bit('w') | bit('x') | bit('c') | bit('m') | bit('p') | bit('s') | bit('u');
  if (c >= 26 || ((letters >> c) & 1) == 0) [[likely]] return false;
  // The stream-breaking names by length: SUBSCRIBE 9, (S|P)SUBSCRIBE 10, UNSUBSCRIBE 11,
  // (S|P)UNSUBSCRIBE 12, MONITOR 7, MULTI 5, CLIENT 6 (REPLY OFF|SKIP); so SET, SADD, PING ... stop here.
  const std::size_t n = name.size();
  switch (c + 'a') {
    case 's': return n == 9 || n == 10 || n == 12;
    case 'p': return n == 10 || n == 12;
    case 'u': return n == 11;
    case 'm': return n == 7 || n == 5;
    case 'c': return n == 6;
    default: return true;  // b, w, x
  }
}

// Calls f(word) for each word `a` sends: a text argument's text, "" for a number, each element of
// a range (both halves of a pair).
template <class F, class T>
void for_each_word(F& f, const T& a) {
  if constexpr (resp::range_argument<T>) {
    for (const auto& e : a) for_each_word(f, e);
  } else if constexpr (resp::pair_argument<T>) {
    for_each_word(f, std::get<0>(a));
    for_each_word(f, std::get<1>(a));
  } else {
    f(text_of_argument(a));
  }
}

// The class of a command whose name is `name` (may_be_special) and whose other words are those
// `visit(f)` passes to f: XREAD/XREADGROUP block with a BLOCK option, CLIENT breaks the stream
// with REPLY OFF|SKIP.
template <class Visit>
command_class classify_named(std::string_view name, const Visit& visit) {
  switch (kind_of_name(name)) {
    case name_kind::shared: return command_class::shared;
    case name_kind::blocking: return command_class::blocking;
    case name_kind::unsupported: return command_class::unsupported;
    case name_kind::multi: return command_class::multi;
    case name_kind::stream_read: {
      bool block = false;
      auto f = [&block](std::string_view w) { block = block || is_block_option(w); };
      visit(f);
      return block ? command_class::blocking : command_class::shared;
    }
    case name_kind::client: {
      std::string_view words[2];
      std::size_t i = 0;
      auto f = [&](std::string_view w) {
        if (i < 2) words[i] = w;
        ++i;
      };
      visit(f);
      return i >= 2 && is_client_reply_off(name, words[0], words[1]) ? command_class::unsupported : command_class::shared;
    }
  }
  return command_class::shared;
}

// The class of a command whose stored arguments are `first, rest...`. Inline: every awaitable asks,
// and for nearly every command the first letter answers (may_be_special). A command given as a
// range (`command(std::vector<std::string>{"SUBSCRIBE", "ch"})`) is classified by its words too.
template <class First, class... Rest>
[[gnu::always_inline]] inline command_class classify(const First& first, const Rest&... rest) {
  if constexpr (resp::range_argument<First>) {
    auto it = std::ranges::begin(first);
    if (it == std::ranges::end(first)) return command_class::shared;
    if constexpr (!std::convertible_to<const std::ranges::range_value_t<const First>&, std::string_view>) {
      return command_class::shared;  // pairs or numbers: no command name
    } else {
      const std::string_view name(*it);
      if (!may_be_special(name)) [[likely]] return command_class::shared;
      return classify_named(name, [&](auto& f) {
        for (auto w = std::next(it); w != std::ranges::end(first); ++w) for_each_word(f, *w);
        (for_each_word(f, rest), ...);
      });
    }
  } else if constexpr (std::convertible_to<const First&, std::string_view>) {
    const std::string_view name(store_argument(first));
    if (!may_be_special(name)) [[likely]] return command_class::shared;
    return classify_named(name, [&](auto& f) { (for_each_word(f, rest), ...); });
  }
  return command_class::shared;
}

inline command_class classify() { return command_class::shared; }

// The same for a command built at run time (owned_awaitable).
command_class classify_words(const std::vector<std::string>& words) noexcept;

// The command's name: its first argument's text, or the first element of a range of texts; empty
// otherwise.
template <class First, class... Rest>
std::string_view command_name(const First& first, const Rest&...) {
  if constexpr (resp::range_argument<First>) {
    if constexpr (std::convertible_to<const std::ranges::range_value_t<const First>&, std::string_view>) {
      auto it = std::ranges::begin(first);
      if (it != std::ranges::end(first)) return std::string_view(*it);
    }
    return {};
  } else if constexpr (std::convertible_to<const First&, std::string_view>) {
    return std::string_view(store_argument(first));
  } else {
    return {};
  }
}
inline std::string_view command_name() { return {}; }

// EXEC or DISCARD: ends a MULTI opened earlier in the same pipeline.
bool ends_transaction(std::string_view name) noexcept;

// Marks `r` with its command's class: `blocking` for a connection of its own, `unsupported` (and a
// MULTI alone) to be refused unsent (client::submit).
inline void mark(request& r, command_class k) noexcept {
  r.blocking = k != command_class::shared;
  r.unsupported = k == command_class::unsupported || k == command_class::multi;
}

template <class Derived>
template <resp::argument... Args>
Derived& command_batch<Derived>::add(const Args&... args) {
  writer_.command(args...);
  ++count_;
  const command_class k = classify(args...);
  may_block_ = may_block_ || k == command_class::blocking;
  unsupported_ = unsupported_ || k == command_class::unsupported;
  if (k == command_class::multi) {
    if constexpr (std::is_same_v<Derived, transaction>) {
      unsupported_ = true;  // nested: the server refuses it unqueued, one reply short of one per command
    } else {
      open_multi_ = true;
    }
  } else if (open_multi_ && ends_transaction(command_name(args...))) {
    open_multi_ = false;
  }
  return static_cast<Derived&>(*this);
}

}  // namespace detail

namespace detail {

/// What every single-reply awaitable shares: the request, the reply sink, the suspended coroutine,
/// and the modifiers. `Derived` adds the arguments and its `encode`.
template <class Derived, class T>
class reply_awaitable : protected request {
 public:
  /// A per-command timeout instead of the client's default (negative: none).
  [[nodiscard]] Derived with_timeout(std::chrono::milliseconds t) && {
    request::timeout = t;
    return std::move(static_cast<Derived&>(*this));
  }
  /// Cluster: sends the command to the node `host_port` ("127.0.0.1:7001", as `cluster_router::nodes`
  /// lists them) instead of the one its keys map to: for PING, INFO, CLIENT LIST ... on every node.
  /// `host_port` must outlive the co_await. Ignored by a client that is not in cluster mode.
  [[nodiscard]] Derived at_node(std::string_view host_port) && {
    request::node = host_port;
    return std::move(static_cast<Derived&>(*this));
  }
  /// Cluster: routes the command by `key`, which must be its only key (as redis-plus-plus's
  /// `command(cmd, key, args...)` does), instead of looking the command's key positions up: the
  /// cheapest route. A key that is not the command's costs a MOVED redirection. `key` must outlive
  /// the co_await. Ignored by a client that is not in cluster mode.
  [[nodiscard]] Derived routed_by(std::string_view only_key) && {
    request::key = only_key;
    return std::move(static_cast<Derived&>(*this));
  }
  /// Marks the command safe to run twice: if the connection drops after it was sent, it is sent
  /// once more on the next connection instead of failing with `connection_lost`.
  [[nodiscard]] Derived idempotent() && {
    request::idempotent = true;
    return std::move(static_cast<Derived&>(*this));
  }

  bool await_ready() const noexcept { return false; }
  /// Suspends unless the command completed during its submission (a closed client, a full offline
  /// queue): then the coroutine goes on at once, on the same stack frame, instead of being resumed
  /// from inside this call (a frame per command, until a loop of failing co_awaits overflowed it).
  bool await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    return submit_and_suspend(client_, *this);
  }
  /// The reply converted to T, the server's error reply, or why there was no reply.
  result<T> await_resume() {
    if (failure_) return resp::error{failure_, {}};
    return sink_.take();
  }

 protected:
  explicit reply_awaitable(client& c) : client_(c) {
    request::encode = [](request& r, resp::writer& w) { static_cast<Derived&>(r).encode_arguments(w); };
    request::on_node = [](request& r, const resp::node& n) { static_cast<reply_awaitable&>(r).sink_.on_node(n); };
    request::on_done = [](request& r, std::error_code ec) {
      auto& self = static_cast<reply_awaitable&>(r);
      self.failure_ = ec;
      if (!r.completes_in_submit()) self.handle_.resume();
    };
    request::borrows_arguments = true;  // the arguments live in the coroutine until completion
  }
  reply_awaitable(reply_awaitable&&) noexcept = default;  // before submission only

 private:
  client& client_;
  reply_sink<T> sink_;
  std::error_code failure_ = no_error;
  std::coroutine_handle<> handle_;
};

}  // namespace detail

/// What `co_await client.command<T>(...)` waits on. Holds the request, its arguments and the reply
/// sink in the coroutine frame: submitting allocates nothing. Await it at once: the arguments it
/// borrows must outlive the co_await. The coroutine resumes on the loop thread.
template <class T, class... Args>
class [[nodiscard]] command_awaitable : public detail::reply_awaitable<command_awaitable<T, Args...>, T> {
  using base = detail::reply_awaitable<command_awaitable<T, Args...>, T>;
  friend base;

 public:
  explicit command_awaitable(client& c, const Args&... args) : base(c), args_(detail::store_argument(args)...) {
    detail::mark(*this, detail::classify(args...));
    // Each argument is one word unless a range expands: then positions are not the tuple's.
    if constexpr ((!resp::range_argument<Args> && ...)) request::argument = &argument_at;
  }
  /// The same, for a command whose only key is `key` (`request::key`): what the typed helpers build.
  command_awaitable(client& c, detail::routing_key only_key, const Args&... args) : command_awaitable(c, args...) {
    request::key = only_key.text;
  }
  command_awaitable(command_awaitable&&) noexcept = default;

 private:
  static bool argument_at(const request& r, std::size_t index, std::string_view& out) {
    const auto& self = static_cast<const command_awaitable&>(r);
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      bool found = false;
      auto try_one = [&](const auto& a, std::size_t i) {
        if constexpr (resp::is_literal_v<std::decay_t<decltype(a)>>) {
          if (i == index) {
            out = std::decay_t<decltype(a)>::text;
            found = true;
          }
        } else if constexpr (std::is_same_v<std::decay_t<decltype(a)>, std::string_view>) {
          if (i == index) {
            // Copied as two words, never as one 16-byte move: the constructor has just stored `a` as
            // two 8-byte words, which one 16-byte load cannot take from the store buffer (it waits
            // for both stores to reach the cache), and the caller reads `out` back as two words.
            const char* data = a.data();
            std::size_t size = a.size();
            asm("" : "+r"(data), "+r"(size));
            out = std::string_view(data, size);
            found = true;
          }
        }
      };
      (try_one(std::get<I>(self.args_), I), ...);
      return found;
    }(std::index_sequence_for<Args...>{});
  }

  void encode_arguments(resp::writer& w) const {
    std::apply([&w](const auto&... a) { w.command(a...); }, args_);
  }
  std::tuple<detail::stored_argument_t<Args>...> args_;
};

/// What `co_await client.execute(pipeline_or_transaction)` waits on: one request for the batch.
class [[nodiscard]] batch_awaitable : private request {
 public:
  /// `may_block`: a command of the batch may block (see `command_batch::may_block`).
  /// `refused`: a command of the batch would break the reply stream (`command_batch::has_unsupported`):
  /// the batch fails with `errc::unsupported_command`, unsent.
  batch_awaitable(client& c, std::string_view bytes, std::size_t commands, bool transaction, bool may_block,
                  bool refused);
  batch_awaitable(batch_awaitable&&) noexcept = default;
  /// An empty pipeline has nothing to send; an empty transaction still sends MULTI and EXEC, which
  /// ends a WATCH and reports (transaction_aborted) whether a watched key changed.
  bool await_ready() const noexcept { return commands_ == 0 && !transaction_; }
  /// Suspends unless the batch completed during its submission (see `reply_awaitable::await_suspend`).
  bool await_suspend(std::coroutine_handle<> h);
  /// One value per command, in order; see `pipeline` and `transaction` for the errors.
  result<std::vector<resp::value>> await_resume();

 private:
  static void encode_batch(request& r, resp::writer& w);
  static void node_received(request& r, const resp::node& n);
  static void done(request& r, std::error_code ec);

  client& client_;
  std::string_view bytes_;
  std::size_t commands_;
  bool transaction_;
  std::size_t replies_seen_ = 0;
  resp::value_builder builder_;
  std::vector<resp::value> values_;
  std::optional<resp::value> exec_;
  std::error_code failure_;
  std::coroutine_handle<> handle_;
};

/// Like `command_awaitable`, for commands built at run time: owns its arguments (one allocation).
template <class T>
class [[nodiscard]] owned_awaitable : public detail::reply_awaitable<owned_awaitable<T>, T> {
  using base = detail::reply_awaitable<owned_awaitable<T>, T>;
  friend base;

 public:
  owned_awaitable(client& c, std::vector<std::string> args) : base(c), args_(std::move(args)) {
    detail::mark(*this, detail::classify_words(args_));  // a blocking command alone; one that breaks the stream not at all
  }
  owned_awaitable(owned_awaitable&&) noexcept = default;

 private:
  void encode_arguments(resp::writer& w) const {
    w.aggregate_header(resp::type::array, args_.size());
    for (const auto& a : args_) w.bulk(std::string_view(a));
  }
  std::vector<std::string> args_;
};

/// An awaitable whose result goes through `f` (e.g. INFO's text into sections).
template <class Inner, class F>
class [[nodiscard]] mapped_awaitable {
 public:
  mapped_awaitable(Inner&& inner, F f) : inner_(std::move(inner)), f_(std::move(f)) {}
  bool await_ready() const noexcept { return inner_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) { return inner_.await_suspend(h); }
  auto await_resume() { return f_(inner_.await_resume()); }

 private:
  Inner inner_;
  F f_;
};

/// Options of SET.
struct set_options {
  std::optional<std::chrono::milliseconds> expire;  ///< PX (EX when a whole number of seconds is wanted: use PX anyway)
  bool only_if_absent = false;                      ///< NX
  bool only_if_present = false;                     ///< XX
  bool keep_ttl = false;                            ///< KEEPTTL
};

/// Options of SCAN, HSCAN, SSCAN, ZSCAN.
struct scan_options {
  std::string match;       ///< MATCH pattern ("" = all).
  std::int64_t count = 0;  ///< COUNT hint (0 = server default).
  /// TYPE filter ("" = all). SCAN only: Redis refuses TYPE in HSCAN, SSCAN and ZSCAN (with a bare
  /// "ERR syntax error"), so a collection scanner given one sends nothing: its first `next()` fails
  /// with `errc::invalid_argument`, and the scanner is done.
  std::string type;
};

/// Options of ZRANGE.
struct zrange_options {
  bool by_score = false;     ///< BYSCORE: start and stop are scores ("-inf", "(1.5", ...).
  bool reverse = false;      ///< REV
  std::optional<std::pair<std::int64_t, std::int64_t>> limit;  ///< LIMIT offset count (with BYSCORE)
};

/// Iterates a keyspace (SCAN) or a collection (HSCAN, SSCAN, ZSCAN) a page at a time:
/// `while (!s.done()) { auto page = co_await s.next(); ... }`. A key may appear in more than one
/// page, as SCAN guarantees no more. Elements of HSCAN/ZSCAN pages alternate field and value/score.
/// In cluster mode SCAN walks every primary in turn (the primaries of the topology when the scan
/// starts; a page may be empty while the client learns it). Keep the scanner alive across each co_await.
class scanner {
 public:
  class page_awaitable;

  /// `key` is the HSCAN/SSCAN/ZSCAN key (any string, "" included); SCAN has none.
  scanner(client& c, std::string command, std::optional<std::string> key, scan_options opts)
      : client_(&c), command_(std::move(command)), key_(std::move(key)), opts_(std::move(opts)) {}
  /// True once the scan is over: the server returned cursor 0 (in cluster mode, the last primary
  /// did), or the scan failed in a way no retry can mend (see `next`).
  [[nodiscard]] bool done() const noexcept { return done_; }
  /// The next page: its elements, the server's error reply, or why there was none. A timeout, a
  /// lost or not yet established connection, or a server's transient refusal (LOADING, BUSY,
  /// MASTERDOWN, TRYAGAIN, CLUSTERDOWN) keeps the cursor and the scan, so calling `next()` again
  /// asks for the same page. Any other error ends the scan (`done()`): a server error such as
  /// WRONGTYPE or NOPERM, a reply that is not a page, a closed client; so do, without sending
  /// anything, `errc::invalid_argument` for a TYPE filter on HSCAN/SSCAN/ZSCAN (see
  /// `scan_options::type`) and `errc::cluster_topology` for a cluster topology without a primary.
  /// Once `done()`, every `next()` is an empty page and sends nothing (a cursor of 0 sent again
  /// would start the scan over).
  [[nodiscard]] page_awaitable next();

 private:
  // The page in a reply to the command `next` sent; advances the cursor (and the primary).
  result<std::vector<std::string>> take_page(result<resp::value> r, bool every_primary) {
    if (!r) {
      // Only what a retry may mend keeps the scan going: a loop `while (!s.done())` over a
      // WRONGTYPE, NOPERM or invalid-cursor reply would otherwise ask again for ever.
      done_ = !retryable(r.error());
      return r.error();
    }
    // The PING sent while a cluster client learns its topology (nodes_ is filled by next() only).
    if (every_primary && nodes_.empty() && r->data_type == resp::type::simple_string) return std::vector<std::string>{};
    auto page = resp::convert<std::pair<std::string, std::vector<std::string>>>(*r);
    if (!page) {
      done_ = true;  // not a page: the same command would get the same reply
      return page.error();
    }
    cursor_ = std::move(page->first);
    if (cursor_ == "0") done_ = !every_primary || ++node_ >= nodes_.size();  // else: the next primary, from 0
    return std::move(page->second);
  }

  // True for an error that asking again may not repeat: the connection's (lost, timed out, not
  // yet up), the cluster's while it learns its topology, and a server's transient refusals.
  static bool retryable(const resp::error& e) noexcept;

  client* client_;
  std::string command_;
  std::optional<std::string> key_;  // none for SCAN
  scan_options opts_;
  std::string cursor_ = "0";
  bool done_ = false;
  std::vector<std::string> nodes_;  // cluster mode, SCAN: the primaries to walk
  std::size_t node_ = 0;
};

/// What `co_await scanner.next()` waits on: the page's command, or, when there is nothing to send
/// (the scan is over, or cannot be sent), the outcome at once, without suspending.
class [[nodiscard]] scanner::page_awaitable {
 public:
  bool await_ready() const noexcept { return !call_; }
  bool await_suspend(std::coroutine_handle<> h) { return call_->await_suspend(h); }
  /// The page, or why there is none (see `scanner::next`).
  result<std::vector<std::string>> await_resume() {
    if (!call_) return std::move(settled_);
    return owner_->take_page(call_->await_resume(), every_primary_);
  }

 private:
  friend class scanner;
  page_awaitable(scanner& owner, result<std::vector<std::string>> settled) : owner_(&owner), settled_(std::move(settled)) {}
  page_awaitable(scanner& owner, owned_awaitable<resp::value> call, bool every_primary)
      : owner_(&owner), call_(std::in_place, std::move(call)), settled_(std::vector<std::string>{}), every_primary_(every_primary) {}

  scanner* owner_;
  std::optional<owned_awaitable<resp::value>> call_;  // none: settled_ is the outcome
  result<std::vector<std::string>> settled_;
  bool every_primary_ = false;
};

/// A Redis client on one loop. Commands may be sent from any thread (the command helpers,
/// `command`, `command_callback`, `submit`, `execute`, `start`); completions run on the loop thread.
/// Everything else (construction, destruction, `close`, `open_session`, `set_push_handler`,
/// `cluster`) belongs on the loop thread. A command another thread sent before the client's
/// destruction began, still on its way to the loop, completes with `errc::shutting_down`; stop
/// every sending thread (joined, or told and acknowledged) before destroying the client, which
/// it must not touch once destruction has begun. Commands go round-robin over `options::pool_size` connections (1 by default: with
/// auto-pipelining one connection is the cheapest), blocking commands over connections of their own.
class client {
 public:
  /// A client for `opts`; call `start()` (or just submit: the first command starts it).
  client(net::loop& loop, options opts);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Starts connecting. Commands submitted before the handshake ends wait (bounded).
  void start();
  /// Completes every queued command with `shutting_down` and closes. Loop thread.
  void close();

  // --- Any command ---

  /// `co_await c.command<T>("HSET", key, field, value)`: the reply as T (resp::value by default).
  template <class T = resp::value, resp::argument... Args>
  [[nodiscard]] command_awaitable<T, Args...> command(const Args&... args) {
    return command_awaitable<T, Args...>(*this, args...);
  }

  /// `command<T>(args...)` for a command whose only key is `key`: routed by it in cluster mode
  /// without a look-up (`request::key`). The typed helpers of one-key commands use it.
  template <class T = resp::value, resp::argument... Args>
  [[nodiscard]] command_awaitable<T, Args...> keyed(std::string_view key, const Args&... args) {
    return command_awaitable<T, Args...>(*this, detail::routing_key{key}, args...);
  }

  /// Sends a command and calls `callback(result<T>)` on the loop thread. Arguments are copied
  /// while encoding, so they need not outlive the call.
  template <class T = resp::value, class F, resp::argument... Args>
  void command_callback(F&& callback, const Args&... args);

  /// Submits a raw request (see request.hpp). Thread-safe. `on_done` may run before this returns
  /// (a closed client, a full offline queue): a caller that submits again from it should not
  /// recurse without bound (the awaitables do not; see `request::in_submit`).
  void submit(request& r);

  /// Sends the pipeline's commands in one write: `co_await c.execute(p)`. `p` must outlive the co_await.
  [[nodiscard]] batch_awaitable execute(const pipeline& p) {
    return {*this, p.bytes(), p.size(), false, p.may_block(), p.has_unsupported()};
  }
  /// Runs the transaction as MULTI ... EXEC: `co_await c.execute(t)`. `t` must outlive the co_await.
  [[nodiscard]] batch_awaitable execute(const transaction& t) {
    return {*this, t.bytes(), t.size(), true, false, t.has_unsupported()};
  }

  /// A new client on the same loop with the same options and a connection of its own: for WATCH
  /// (whose effect is per connection) and anything else that must not share a connection.
  /// It does not reconnect: a connection that drops takes its WATCHes with it, and a transaction
  /// run on a new one would overwrite the changes they were to detect. After a drop, every command
  /// (queued or later) fails with `errc::connection_lost`; open a new session to start again.
  [[nodiscard]] std::unique_ptr<client> open_session() const {
    options o = opts_;
    o.reconnect.enabled = false;
    o.pool_size = 1;  // one connection: a WATCH and its EXEC must not go round-robin over two
    return std::make_unique<client>(loop_, std::move(o));
  }

  // --- Typed helpers ---

  /// GET key: the value, or nullopt.
  auto get(std::string_view key) { return keyed<std::optional<std::string>>(key, resp::lit<"GET">, key); }
  /// SET key value: true if set (false when NX/XX prevented it).
  auto set(std::string_view key, std::string_view value) {
    return keyed<std::optional<std::string>>(key, resp::lit<"SET">, key, value);
  }
  /// SET key value PX ms.
  auto set(std::string_view key, std::string_view value, std::chrono::milliseconds ttl) {
    return keyed<std::optional<std::string>>(key, resp::lit<"SET">, key, value, resp::lit<"PX">,
                                             static_cast<std::int64_t>(ttl.count()));
  }
  /// SET key value NX [PX ms]: nullopt when the key existed.
  auto set_nx(std::string_view key, std::string_view value) {
    return keyed<std::optional<std::string>>(key, resp::lit<"SET">, key, value, resp::lit<"NX">);
  }
  /// GETDEL key.
  auto getdel(std::string_view key) { return keyed<std::optional<std::string>>(key, resp::lit<"GETDEL">, key); }
  /// MGET keys...: values in order, nullopt for missing keys.
  template <resp::argument Keys>
  auto mget(const Keys& keys) { return command<std::vector<std::optional<std::string>>>(resp::lit<"MGET">, keys); }
  /// INCR key.
  auto incr(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"INCR">, key); }
  /// INCRBY key n.
  auto incrby(std::string_view key, std::int64_t n) { return keyed<std::int64_t>(key, resp::lit<"INCRBY">, key, n); }
  /// DECR key.
  auto decr(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"DECR">, key); }
  /// DEL keys...: how many were removed.
  template <resp::argument... Keys>
  auto del(const Keys&... keys) { return command<std::int64_t>(resp::lit<"DEL">, keys...); }
  /// UNLINK keys...
  template <resp::argument... Keys>
  auto unlink(const Keys&... keys) { return command<std::int64_t>(resp::lit<"UNLINK">, keys...); }
  /// EXISTS keys...: how many exist.
  template <resp::argument... Keys>
  auto exists(const Keys&... keys) { return command<std::int64_t>(resp::lit<"EXISTS">, keys...); }
  /// PEXPIRE key ms: true if the timeout was set.
  auto pexpire(std::string_view key, std::chrono::milliseconds ttl) {
    return keyed<bool>(key, resp::lit<"PEXPIRE">, key, static_cast<std::int64_t>(ttl.count()));
  }
  /// EXPIRE key s.
  auto expire(std::string_view key, std::chrono::seconds ttl) {
    return keyed<bool>(key, resp::lit<"EXPIRE">, key, static_cast<std::int64_t>(ttl.count()));
  }
  /// TTL key (seconds; -1 no expiry, -2 no key).
  auto ttl(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"TTL">, key); }
  /// PTTL key (milliseconds).
  auto pttl(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"PTTL">, key); }
  /// TYPE key.
  auto type(std::string_view key) { return keyed<std::string>(key, resp::lit<"TYPE">, key); }
  /// HSET key field value.
  auto hset(std::string_view key, std::string_view field, std::string_view value) {
    return keyed<std::int64_t>(key, resp::lit<"HSET">, key, field, value);
  }
  /// HGET key field.
  auto hget(std::string_view key, std::string_view field) {
    return keyed<std::optional<std::string>>(key, resp::lit<"HGET">, key, field);
  }
  /// HGETALL key as field -> value.
  auto hgetall(std::string_view key) {
    return keyed<std::vector<std::pair<std::string, std::string>>>(key, resp::lit<"HGETALL">, key);
  }
  /// LPUSH key value.
  auto lpush(std::string_view key, std::string_view value) {
    return keyed<std::int64_t>(key, resp::lit<"LPUSH">, key, value);
  }
  /// RPUSH key value.
  auto rpush(std::string_view key, std::string_view value) {
    return keyed<std::int64_t>(key, resp::lit<"RPUSH">, key, value);
  }
  /// LRANGE key start stop.
  auto lrange(std::string_view key, std::int64_t start, std::int64_t stop) {
    return keyed<std::vector<std::string>>(key, resp::lit<"LRANGE">, key, start, stop);
  }
  /// SADD key member.
  auto sadd(std::string_view key, std::string_view member) {
    return keyed<std::int64_t>(key, resp::lit<"SADD">, key, member);
  }
  /// SMEMBERS key.
  auto smembers(std::string_view key) { return keyed<std::vector<std::string>>(key, resp::lit<"SMEMBERS">, key); }
  /// ZADD key score member.
  auto zadd(std::string_view key, double score, std::string_view member) {
    return keyed<std::int64_t>(key, resp::lit<"ZADD">, key, score, member);
  }
  /// ZSCORE key member.
  auto zscore(std::string_view key, std::string_view member) {
    return keyed<std::optional<double>>(key, resp::lit<"ZSCORE">, key, member);
  }
  /// ZINCRBY key increment member: the new score.
  auto zincrby(std::string_view key, double by, std::string_view member) {
    return keyed<double>(key, resp::lit<"ZINCRBY">, key, by, member);
  }
  /// ZCARD key.
  auto zcard(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"ZCARD">, key); }
  /// PUBLISH channel message: receivers.
  auto publish(std::string_view channel, std::string_view message) {
    return command<std::int64_t>(resp::lit<"PUBLISH">, channel, message);
  }
  /// PING.
  auto ping() { return command<std::string>(resp::lit<"PING">); }
  /// EVALSHA sha numkeys keys... args...: the raw reply.
  template <resp::argument Keys, resp::argument Args>
  auto evalsha(std::string_view sha, const Keys& keys, const Args& args) {
    return command<resp::value>(resp::lit<"EVALSHA">, sha, static_cast<std::int64_t>(std::ranges::size(keys)), keys,
                                args);
  }
  /// EVAL script numkeys keys... args...
  template <resp::argument Keys, resp::argument Args>
  auto eval(std::string_view script, const Keys& keys, const Args& args) {
    return command<resp::value>(resp::lit<"EVAL">, script, static_cast<std::int64_t>(std::ranges::size(keys)), keys,
                                args);
  }
  /// SCRIPT LOAD script: the sha1.
  auto script_load(std::string_view script) {
    return command<std::string>(resp::lit<"SCRIPT">, resp::lit<"LOAD">, script);
  }
  /// SET key value with options: true if set, false if NX/XX prevented it.
  auto set(std::string_view key, std::string_view value, const set_options& o) {
    return mapped_awaitable(keyed<std::optional<std::string>>(key, resp::lit<"SET">, key, value, set_words(o, false)),
                            [](result<std::optional<std::string>> r) -> result<bool> {
                              if (!r) return r.error();
                              return r->has_value();
                            });
  }
  /// SET key value GET [options]: the old value (nullopt if none).
  auto set_get(std::string_view key, std::string_view value, const set_options& o = {}) {
    return keyed<std::optional<std::string>>(key, resp::lit<"SET">, key, value, set_words(o, true));
  }
  /// GETEX key PX ms (or PERSIST when `ttl` is nullopt).
  auto getex(std::string_view key, std::optional<std::chrono::milliseconds> ttl) {
    detail::option_words w;
    if (ttl) {
      w.add("PX");
      w.add(static_cast<std::int64_t>(ttl->count()));
    } else {
      w.add("PERSIST");
    }
    return keyed<std::optional<std::string>>(key, resp::lit<"GETEX">, key, w);
  }
  /// MSET k1 v1 k2 v2 ... from a range of (key, value) pairs (a vector of pairs, a map), borrowed
  /// until the co_await completes like every argument: nothing is copied but into the send buffer.
  template <resp::range_argument Pairs>
    requires resp::pair_argument<std::ranges::range_value_t<const Pairs>>
  auto mset(const Pairs& pairs) { return command<ignore_t>(resp::lit<"MSET">, pairs); }
  /// HDEL key field.
  auto hdel(std::string_view key, std::string_view field) {
    return keyed<std::int64_t>(key, resp::lit<"HDEL">, key, field);
  }
  /// HINCRBY key field n.
  auto hincrby(std::string_view key, std::string_view field, std::int64_t n) {
    return keyed<std::int64_t>(key, resp::lit<"HINCRBY">, key, field, n);
  }
  /// HLEN key.
  auto hlen(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"HLEN">, key); }
  /// LPOP key.
  auto lpop(std::string_view key) { return keyed<std::optional<std::string>>(key, resp::lit<"LPOP">, key); }
  /// RPOP key.
  auto rpop(std::string_view key) { return keyed<std::optional<std::string>>(key, resp::lit<"RPOP">, key); }
  /// LLEN key.
  auto llen(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"LLEN">, key); }
  /// SREM key member.
  auto srem(std::string_view key, std::string_view member) {
    return keyed<std::int64_t>(key, resp::lit<"SREM">, key, member);
  }
  /// SISMEMBER key member.
  auto sismember(std::string_view key, std::string_view member) {
    return keyed<bool>(key, resp::lit<"SISMEMBER">, key, member);
  }
  /// SCARD key.
  auto scard(std::string_view key) { return keyed<std::int64_t>(key, resp::lit<"SCARD">, key); }
  /// ZRANGE key start stop [BYSCORE] [REV] [LIMIT o c]: members in order.
  auto zrange(std::string_view key, std::string_view start, std::string_view stop, const zrange_options& o = {}) {
    return keyed<std::vector<std::string>>(key, resp::lit<"ZRANGE">, key, start, stop, zrange_words(o, false));
  }
  /// ZRANGE ... WITHSCORES: (member, score) pairs in order.
  auto zrange_with_scores(std::string_view key, std::string_view start, std::string_view stop, const zrange_options& o = {}) {
    return mapped_awaitable(keyed<resp::value>(key, resp::lit<"ZRANGE">, key, start, stop, zrange_words(o, true)),
                            [](result<resp::value> r) -> result<std::vector<std::pair<std::string, double>>> {
                              if (!r) return r.error();
                              // RESP3 sends [[member, score], ...]; RESP2 a flat member, score, ... list.
                              if (!r->elements.empty() && r->elements[0].data_type == resp::type::array) {
                                std::vector<std::pair<std::string, double>> out;
                                for (const auto& e : r->elements) {
                                  auto p = resp::convert<std::pair<std::string, double>>(e);
                                  if (!p) return p.error();
                                  out.push_back(std::move(*p));
                                }
                                return out;
                              }
                              return resp::convert<std::vector<std::pair<std::string, double>>>(*r);
                            });
  }
  /// ZRANK key member (nullopt if absent).
  auto zrank(std::string_view key, std::string_view member) {
    return keyed<std::optional<std::int64_t>>(key, resp::lit<"ZRANK">, key, member);
  }
  /// ZREVRANK key member.
  auto zrevrank(std::string_view key, std::string_view member) {
    return keyed<std::optional<std::int64_t>>(key, resp::lit<"ZREVRANK">, key, member);
  }
  /// ZCOUNT key min max.
  auto zcount(std::string_view key, std::string_view min, std::string_view max) {
    return keyed<std::int64_t>(key, resp::lit<"ZCOUNT">, key, min, max);
  }
  /// ZREMRANGEBYSCORE key min max.
  auto zremrangebyscore(std::string_view key, std::string_view min, std::string_view max) {
    return keyed<std::int64_t>(key, resp::lit<"ZREMRANGEBYSCORE">, key, min, max);
  }
  /// INFO [section], parsed into sections.
  auto info(std::string_view section = {}) {
    std::vector<std::string> args = {"INFO"};
    if (!section.empty()) args.emplace_back(section);
    return mapped_awaitable(owned_awaitable<std::string>(*this, std::move(args)),
                            [](result<std::string> r) -> result<server_info> {
                              if (!r) return r.error();
                              return parse_info(*r);
                            });
  }
  /// TIME as a time point (the server's clock).
  auto time() {
    return mapped_awaitable(command<resp::value>(resp::lit<"TIME">),
                            [](result<resp::value> r) { return r ? to_time(*r) : r.error(); });
  }
  /// SLOWLOG GET n.
  auto slowlog_get(std::int64_t n = 10) {
    return mapped_awaitable(command<resp::value>(resp::lit<"SLOWLOG">, resp::lit<"GET">, n),
                            [](result<resp::value> r) { return r ? to_slowlog(*r) : r.error(); });
  }
  /// SCAN over the keyspace, a page at a time.
  [[nodiscard]] scanner scan(scan_options o = {}) { return scanner(*this, "SCAN", std::nullopt, std::move(o)); }
  /// HSCAN key: field, value, field, value, ...
  [[nodiscard]] scanner hscan(std::string_view key, scan_options o = {}) { return scanner(*this, "HSCAN", std::string(key), std::move(o)); }
  /// SSCAN key.
  [[nodiscard]] scanner sscan(std::string_view key, scan_options o = {}) { return scanner(*this, "SSCAN", std::string(key), std::move(o)); }
  /// ZSCAN key: member, score, member, score, ...
  [[nodiscard]] scanner zscan(std::string_view key, scan_options o = {}) { return scanner(*this, "ZSCAN", std::string(key), std::move(o)); }

  // --- State ---

  /// The loop this client runs on.
  [[nodiscard]] net::loop& loop() noexcept { return loop_; }
  /// The first connection of the pool (state, last error, protocol). Not in cluster mode (no pool:
  /// see `cluster()`).
  [[nodiscard]] connection& conn() noexcept { return *pool_.front(); }
  /// Why a connection last failed ("" if none did): the pool's first, or in cluster mode any node's.
  [[nodiscard]] std::string last_error() const {
    return cluster_ ? cluster_->last_error() : pool_.front()->last_error();
  }
  /// The cluster router (topology, nodes, per-node load, statistics), or null when not in cluster
  /// mode. Loop thread.
  [[nodiscard]] cluster_router* cluster() noexcept { return cluster_.get(); }
  /// The options the client was made with.
  [[nodiscard]] const options& settings() const noexcept { return opts_; }
  /// The connections of the pool.
  [[nodiscard]] const std::vector<connection::pointer>& pool() const noexcept { return pool_; }
  /// How many times a connection that carries ordinary commands (the pool's, or in cluster mode the
  /// nodes') stopped being ready: equal at two looks, none was lost in between, so what the server
  /// keeps per connection (CLIENT TRACKING's tracked keys) is all still there. Loop thread.
  [[nodiscard]] std::uint64_t connection_losses() const noexcept {
    if (cluster_) return cluster_->connection_losses();
    std::uint64_t n = 0;
    for (const auto& c : pool_) n += c->losses();
    return n;
  }
  /// Where RESP3 pushes go (pub/sub messages, invalidations). Loop thread.
  void set_push_handler(push_handler h) {
    for (auto& c : pool_) c->set_push_handler(h);
    if (cluster_) cluster_->set_push_handler(h);
  }

 private:
  template <class T, class F>
  struct callback_request;

  connection& blocking_connection();
  // submit(), saying where: true on the loop thread, false when handed over to it.
  bool submit_here(request& r);
  friend bool detail::submit_and_suspend(client& c, request& r);
  static detail::option_words set_words(const set_options& o, bool get) noexcept;
  static detail::option_words zrange_words(const zrange_options& o, bool scores) noexcept;

  // What a command (or start) posted from another thread reaches on the loop thread, instead of
  // the client itself, which may be gone by then (client.cpp).
  struct post_anchor;
  struct anchor_ref {
    explicit anchor_ref(client* c);
    ~anchor_ref();  // the client is gone: tasks still queued complete their requests with shutting_down
    anchor_ref(const anchor_ref&) = delete;
    anchor_ref& operator=(const anchor_ref&) = delete;
    post_anchor* anchor;
  };

  net::loop& loop_;
  anchor_ref anchor_{this};  // first: destroyed after every other member
  options opts_;
  std::vector<connection::pointer> pool_;
  std::size_t next_ = 0;
  // Blocking commands each get a connection of their own, so they never stall other callers;
  // idle ones are reused.
  std::vector<connection::pointer> blocking_;
  std::unique_ptr<cluster_router> cluster_;  // cluster mode: routes instead of the pool
  bool started_ = false;
  bool closed_ = false;
  bool* close_in_progress_ = nullptr;  // set while close() runs: the destructor marks it (see close)
};

inline scanner::page_awaitable scanner::next() {
  if (done_) return page_awaitable(*this, std::vector<std::string>{});
  if (key_ && !opts_.type.empty()) {
    // Sent, it would come back as "ERR syntax error", which does not say that TYPE is the culprit.
    done_ = true;
    return page_awaitable(*this, resp::error{errc::invalid_argument, "TYPE is an option of SCAN only, not of " + command_});
  }
  cluster_router* router = client_->cluster();
  const bool every_primary = router != nullptr && !key_;
  if (every_primary && nodes_.empty() && router->ready()) {
    nodes_ = router->nodes(true);
    if (nodes_.empty()) {
      // A cluster none of whose nodes serves a slot: no primary to walk, and the PING below, meant
      // to wait for the topology, would be answered at once, page after empty page, for ever.
      done_ = true;
      return page_awaitable(*this, resp::error{errc::cluster_topology, "SCAN: the topology has no primary"});
    }
  }
  std::vector<std::string> args;
  if (every_primary && nodes_.empty()) {
    args = {"PING"};  // waits until the client knows the topology: an empty page
  } else {
    args = {command_};
    if (key_) args.push_back(*key_);
    args.push_back(cursor_);
    if (!opts_.match.empty()) args.insert(args.end(), {"MATCH", opts_.match});
    if (opts_.count > 0) args.insert(args.end(), {"COUNT", std::to_string(opts_.count)});
    if (!opts_.type.empty()) args.insert(args.end(), {"TYPE", opts_.type});
  }
  owned_awaitable<resp::value> call(*client_, std::move(args));
  if (every_primary && !nodes_.empty()) return page_awaitable(*this, std::move(call).at_node(nodes_[node_]), true);
  return page_awaitable(*this, std::move(call), every_primary);
}

template <class T, class F>
struct client::callback_request : request {
  F callback;
  reply_sink<T> sink;
  std::string wire;  // pre-encoded command when submitted from another thread

  template <class G>
  explicit callback_request(G&& f) : callback(std::forward<G>(f)) {
    on_node = [](request& r, const resp::node& n) { static_cast<callback_request&>(r).sink.on_node(n); };
    on_done = [](request& r, std::error_code ec) {
      auto* self = static_cast<callback_request*>(&r);
      if (ec) {
        self->callback(result<T>(resp::error{ec, {}}));
      } else {
        self->callback(self->sink.take());
      }
      delete self;
    };
  }
};

template <class T, class F, resp::argument... Args>
void client::command_callback(F&& callback, const Args&... args) {
  using req_t = callback_request<T, std::decay_t<F>>;
  auto* r = new req_t(std::forward<F>(callback));
  // Encode now, into the request: the arguments need not outlive this call, and the command
  // bytes are copied once more into the connection's writer on the loop thread.
  resp::writer w(0);
  w.command(args...);
  r->wire.assign(w.data());
  r->encode = [](request& base, resp::writer& out) { out.raw(static_cast<req_t&>(base).wire); };
  detail::mark(*r, detail::classify(args...));
  submit(*r);
}

}  // namespace redring::client
