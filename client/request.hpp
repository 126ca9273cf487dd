// SPDX-License-Identifier: MIT
// A request: what the multiplexer needs from whoever waits for replies (an awaitable, a callback,
// a pipeline). Caller-owned and intrusive, so submitting one allocates nothing.
#pragma once

#include "net/loop.hpp"
#include "resp/node.hpp"
#include "resp/writer.hpp"

#include <chrono>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace redring::client {

/// One submission: one or more commands whose replies go, node by node, to `on_node`, and then a
/// single `on_done`. Lifecycle:
/// 1. The owner fills `encode`, `on_node`, `on_done`, `replies` and submits it to a client.
/// 2. On the loop thread `encode` writes the command(s) into the connection's writer (so arguments
///    must stay alive until then: until completion is the simple rule). `encode` must write the same
///    bytes each time it is called: a cluster client calls it again to route, and to resend a
///    command the server redirected (MOVED, ASK) or asked to retry (TRYAGAIN, CLUSTERDOWN).
/// 3. Each node of each reply goes to `on_node` (views valid during the call only). It may submit
///    other requests, but not close the connection or the client.
/// 4. `on_done` is called exactly once: with no error after the last reply, or with the reason
///    (timeout, connection lost, ...). After it returns the multiplexer never touches the request,
///    so `on_done` may destroy it or resume a coroutine that does.
struct request {
  using encode_fn = void (*)(request&, resp::writer&);
  using node_fn = void (*)(request&, const resp::node&);
  using done_fn = void (*)(request&, std::error_code);

  /// Optional, for single-command requests: sets `out` to argument `index` (0: the command's name)
  /// and returns true, or returns false (no such argument, or not held as text). Lets a cluster
  /// client find a key without encoding the command first; the view must stay valid until completion.
  using argument_fn = bool (*)(const request&, std::size_t index, std::string_view& out);

  encode_fn encode = nullptr;
  node_fn on_node = nullptr;
  done_fn on_done = nullptr;
  argument_fn argument = nullptr;
  /// How many replies complete the request (a pipeline of N commands: N).
  std::uint32_t replies = 1;
  /// Per-request timeout: 0 uses the client's `command_timeout`; negative means none.
  std::chrono::milliseconds timeout{0};
  /// Set by the client when the command must not share a connection (blocking commands).
  bool blocking = false;
  /// Set by the client (with `blocking`) for a command that would put any connection out of step
  /// with its requests: the pub/sub subscription commands ((S|P)SUBSCRIBE, (S|P)UNSUBSCRIBE), whose
  /// confirmations are pushes and not replies, MONITOR, CLIENT REPLY OFF|SKIP, and a MULTI alone
  /// (every other caller's commands would be queued into its transaction; see detail::command_class). The client
  /// completes such a request with `errc::unsupported_command` without sending it. A request built
  /// by hand is not checked: its `replies` must be what the server really sends.
  bool unsupported = false;
  /// May be sent again once if the connection drops after it was sent (the caller vouches that
  /// running it twice is harmless: GET, SET without GET/INCR ...). The retry goes on the next connection.
  bool idempotent = false;
  /// Set when the one retry was used.
  bool retried = false;
  /// Cluster: redirections and retries this request has had (bounded by `cluster_options::max_redirects`).
  std::uint8_t redirects = 0;
  /// Cluster: the node ("host:port") to send this request to instead of the one its keys map to;
  /// empty: routed by its keys. Must outlive the request.
  std::string_view node;
  /// Cluster: the command's only key, when its sender knows it (the typed helpers such as `get`,
  /// `hset` and `incr` set it; so does `routed_by`): the request is routed by its hash slot without
  /// looking the command up (a null `data()`: not given; the router then finds the keys itself).
  /// A wrong key costs a MOVED redirection, not a wrong result. Must outlive the request.
  std::string_view key;
  /// The deadline a request keeps when it moves, unsent, from one connection to another (a cluster
  /// client rerouting the commands queued on a node that is down): set by `multiplexer::take_unsent`,
  /// used and cleared by the next `connection::submit`, so that moving does not restart the timeout;
  /// `client::submit` clears it (a fresh submission). The default (the clock's epoch): none carried,
  /// the timeout starts at submit.
  net::clock::time_point carried_deadline{};
  /// True if the arguments outlive the request's completion (an awaitable's do): large payloads
  /// are then referenced, not copied, until sent. False copies everything when encoding.
  bool borrows_arguments = false;
  /// Set by an awaitable while its `await_suspend` submits the request on the loop thread: a
  /// completion during that call (a closed client, a full offline queue) then sets
  /// `completed_in_submit` instead of resuming the coroutine inside its own `await_suspend` (one
  /// stack frame more per command: a loop of failing co_awaits overflowed the stack). The client
  /// clears it when it hands the request over to the loop thread, where the completion resumes.
  bool in_submit = false;
  bool completed_in_submit = false;
  /// For an awaitable's `on_done`: true (and noted) if it runs inside the submission, where the
  /// coroutine must not be resumed; false when the completion must resume it.
  bool completes_in_submit() noexcept {
    if (!in_submit) return false;
    completed_in_submit = true;
    return true;
  }
  /// Used by the client to hand the request to the loop thread.
  net::task hop;
  void* hop_target = nullptr;
};

/// The timeout `r` runs under: its own, or `fallback` (the client's `command_timeout`) when it has
/// none; zero or negative means no deadline.
[[nodiscard]] inline std::chrono::milliseconds timeout_of(const request& r, std::chrono::milliseconds fallback) noexcept {
  return r.timeout.count() != 0 ? r.timeout : fallback;
}

}  // namespace redring::client
