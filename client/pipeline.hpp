// SPDX-License-Identifier: MIT
// Explicit batches: a pipeline (N commands, N replies, sent together) and a MULTI/EXEC transaction.
#pragma once

#include "resp/value.hpp"
#include "resp/writer.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace redring::client {

namespace detail {

/// What pipelines and transactions share: commands encoded (and copied) as they are added.
template <class Derived>
class command_batch {
 public:
  /// Appends a command; arguments are copied, so they need not outlive the call. Defined in
  /// client/client.hpp, next to the blocking-command rules it applies.
  template <resp::argument... Args>
  Derived& add(const Args&... args);
  /// True if a command added may block its connection (BLPOP, XREAD ... BLOCK): a pipeline holding
  /// one runs on a connection of its own, as the command alone would.
  [[nodiscard]] bool may_block() const noexcept { return may_block_; }
  /// True if a command added would put the connection out of step (SUBSCRIBE, MONITOR, CLIENT
  /// REPLY OFF; see `request::unsupported`), if a MULTI is not ended by an EXEC or DISCARD later in
  /// the same pipeline (the other callers' commands would be queued into it), or if a `transaction`
  /// holds a MULTI (nested): executing the batch fails with `errc::unsupported_command`, and
  /// nothing of it is sent.
  [[nodiscard]] bool has_unsupported() const noexcept { return unsupported_ || open_multi_; }
  /// Commands added.
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  /// Forgets the commands, keeping the buffer.
  void clear() noexcept {
    writer_.clear();
    count_ = 0;
    may_block_ = false;
    unsupported_ = false;
    open_multi_ = false;
  }
  /// The encoded commands.
  [[nodiscard]] std::string_view bytes() const noexcept { return writer_.data(); }

 private:
  resp::writer writer_{0};  // never references: the bytes are owned
  std::size_t count_ = 0;
  bool may_block_ = false;
  bool unsupported_ = false;
  bool open_multi_ = false;  // a MULTI added and no EXEC or DISCARD after it yet
};

}  // namespace detail

/// A batch of commands sent in one write; `co_await client.execute(p)` returns one `resp::value` per
/// command, in order (an error reply is a value whose `is_error()` is true; the others still run).
/// Reusable after `clear()`.
class pipeline : public detail::command_batch<pipeline> {};

/// A MULTI/EXEC transaction: the commands run atomically on the server, on one connection.
/// `co_await client.execute(t)` returns the EXEC reply's elements, one per command (an error
/// reply of one command is an error value there). A command the server refuses to queue fails the
/// whole transaction with the server's EXECABORT error; a WATCHed key that changed (EXEC replies
/// null) fails it with `errc::transaction_aborted`. `bytes()` holds the commands without MULTI and
/// EXEC: the client adds them.
class transaction : public detail::command_batch<transaction> {};

}  // namespace redring::client
