// SPDX-License-Identifier: MIT
// The sans-I/O heart of a connection: the FIFO of requests awaiting replies, the receive buffer and
// reader, the double-buffered writer. It never touches a socket, so it is tested with plain bytes.
#pragma once

#include "client/request.hpp"
#include "net/loop.hpp"
#include "resp/reader.hpp"
#include "resp/writer.hpp"

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace redring::client {

/// Receives out-of-band replies: RESP3 pushes, and replies that no request waits for.
struct push_handler {
  void (*on_node)(void* context, const resp::node& n) = nullptr;
  void* context = nullptr;
};

/// Receives a request whose reply was a Redis Cluster redirection or retry request (`MOVED`, `ASK`,
/// `TRYAGAIN`, `CLUSTERDOWN`) instead of delivering that reply: the request is no longer queued and
/// the handler owns its completion. `error` (the reply's text) is valid during the call only.
struct redirect_handler {
  void (*on_redirect)(void* context, request& r, std::string_view error) = nullptr;
  void* context = nullptr;
  /// A `MOVED` inside a batch's replies (a transaction's queued command): still the batch's reply,
  /// but news of the topology. Optional; `error` is valid during the call only.
  void (*on_moved_in_batch)(void* context, std::string_view error) = nullptr;
};

/// True if `error` (an error reply's text) is one a cluster client acts on instead of returning it.
[[nodiscard]] bool is_cluster_redirect(std::string_view error) noexcept;

/// A Redis Cluster redirection, "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>". Views
/// the error text it was parsed from.
struct cluster_redirection {
  bool ask = false;        ///< ASK (one command, after ASKING), else MOVED (the slot's new owner)
  std::uint16_t slot = 0;  ///< below 16384
  std::string_view host;   ///< empty: the host of the node that answered
  std::uint16_t port = 0;  ///< never 0
};
/// Parses a MOVED or ASK error text; false if it is neither, or malformed (a slot past 16383, a port
/// of 0 or past 65535, no colon).
[[nodiscard]] bool parse_cluster_redirection(std::string_view error, cluster_redirection& out) noexcept;

/// Matches replies to requests in order over one byte stream.
///
/// Write side: `encode(r, deadline)` encodes `r` into the pending writer; `take_output()` hands all
/// pending bytes to the transport (marking their requests sent) and `output_done()` releases them.
/// Read side: `read_space()` / `commit_read(n)` (or `feed(bytes)`) parse and dispatch replies.
/// Faults: `drop_sent(ec)` completes what was sent on a lost connection, keeping unsent requests
/// (with their bytes) for the next connection; `fail_all(ec)` completes everything.
class multiplexer {
 public:
  explicit multiplexer(const resp::limits& lim = {}, std::size_t read_buffer_bytes = 64 * 1024);

  // --- Requests ---

  /// Encodes `r` into the pending output and queues it for replies. `deadline` of `clock::time_point::max()`: none.
  /// With `front`, the request goes before every unsent one (the handshake after a reconnect).
  /// Inline for user requests (every command passes here); the handshake's path is out of line.
  void encode(request& r, net::clock::time_point deadline, bool front = false) {
    if (front) [[unlikely]] {
      encode_front(r, deadline);
      return;
    }
    if (size_ > mask_) [[unlikely]] grow();
    if (deadline < next_deadline_) next_deadline_ = deadline;
    // A request with a deadline may complete (time out) before its bytes are sent, and one that
    // waits for no reply completes at once: then its arguments are gone, so they are copied, never
    // referenced.
    pending_.set_reference_threshold(r.borrows_arguments && deadline == net::clock::time_point::max() && r.replies != 0
                                         ? resp::default_reference_threshold
                                         : 0);
    r.encode(r, pending_);
    if (r.replies != 0) [[likely]] {
      at(size_++) = slot{&r, r.replies, r.replies, false, deadline};
    } else {
      ++unsent_without_reply_;  // nothing to wait for; its bytes are in pending_ until sent
    }
  }
  /// Like `encode`, with the request's bytes already encoded (`encoded`, copied): a cluster client
  /// encodes once to find the keys, then hands the bytes over.
  void encode_as(request& r, net::clock::time_point deadline, std::string_view encoded);
  /// Requests queued (sent or not) and not completed or timed out.
  [[nodiscard]] std::size_t queued() const noexcept { return size_ - zombies_; }
  /// Requests queued but not yet sent.
  [[nodiscard]] std::size_t unsent() const noexcept { return size_ - sent_; }
  /// True if no request waits for a reply and no reply is half read.
  [[nodiscard]] bool idle() const noexcept { return size_ == 0 && !in_reply_; }

  // --- Write side ---

  /// True if there are bytes to send (user bytes only if `user`) and no send is in progress.
  [[nodiscard]] bool has_output(bool user = true) const noexcept {
    return !sending_ && (!front_.empty() || (user && !pending_.empty()));
  }
  /// Hands pending bytes to the transport and counts their requests as sent: the bytes of `front`
  /// requests (the handshake) if any, else, if `user`, every user byte. Valid until written.
  [[nodiscard]] std::span<const iovec> take_output(bool user = true);
  /// The transport wrote `n` more bytes of the output. Returns the rest to write (empty when done).
  [[nodiscard]] std::span<const iovec> output_written(std::size_t n);
  /// True while a `take_output` batch is not fully written.
  [[nodiscard]] bool sending() const noexcept { return sending_; }

  // --- Read side ---

  /// Free space to receive into (at least 4 KiB; more when a large reply is known to be coming).
  [[nodiscard]] std::span<char> read_space();
  /// `n` bytes were received into `read_space()`: parse and dispatch. Returns a protocol error, if any
  /// (the connection must then be reset: call `drop_sent`, which also resets the stream).
  [[nodiscard]] std::error_code commit_read(std::size_t n);
  /// Copies `bytes` into the receive buffer and parses them.
  [[nodiscard]] std::error_code feed(std::string_view bytes);
  /// Parses `bytes` where they are (a kernel-provided buffer), copying into the receive buffer only
  /// what a partial element needs: the tail of an element that continues in the next buffer, and
  /// then exactly the bytes that complete it. `bytes` may be released when this returns.
  [[nodiscard]] std::error_code feed_in_place(std::string_view bytes);
  /// Bytes copied into the receive buffer by `feed_in_place` so far (zero-copy accounting).
  [[nodiscard]] std::uint64_t bytes_copied() const noexcept { return copied_; }
  /// The receive buffer's size. It grows to hold a large reply whole and goes back to its initial
  /// size once 256 reads in a row found it empty with no large reply under way, so one 100 MB GET
  /// does not pin 100 MB to the connection for its life (and a stream of them does not reallocate).
  [[nodiscard]] std::size_t read_capacity() const noexcept { return rcap_; }

  // --- Time and faults ---

  /// Completes with `errc::timeout` every request whose deadline is at or before `now`; their late
  /// replies will be discarded. Returns the next deadline (time_point::max() if none).
  net::clock::time_point expire(net::clock::time_point now);
  /// The earliest deadline of a queued request (may be stale-early; `expire` recomputes it).
  [[nodiscard]] net::clock::time_point next_deadline() const noexcept { return next_deadline_; }
  /// The connection is gone: completes every sent request with `ec` (their replies will never come),
  /// keeps unsent ones and their bytes, and forgets any partial reply.
  void drop_sent(std::error_code ec);
  /// Completes every request, sent or not, with `ec`, and drops all output. Requests that the
  /// completions submit are completed with `ec` too.
  void fail_all(std::error_code ec);

  /// Takes back every queued request that was not sent (for another connection), dropping their
  /// encoded bytes, and passes each to `f(request&)` after the multiplexer is consistent again (so `f`
  /// may submit it anywhere, here included). Only while nothing is sent or being sent (a connection
  /// waiting to reconnect); otherwise takes nothing. Returns how many were taken.
  template <class F>
  std::size_t take_unsent(F&& f) {
    std::vector<request*> taken;
    if (!take_unsent(taken)) return 0;
    for (request* r : taken) f(*r);
    return taken.size();
  }

  /// Drops the requests that timed out before they were sent, bytes and all, so that they never
  /// run (a command whose caller was told `timeout` while the server was down ran minutes later on
  /// reconnect, over newer writes) and no longer count as unsent: the live unsent requests are
  /// encoded again, in order, with their deadlines (`request::encode` writes the same bytes each
  /// time). Only while nothing is sent or being sent (a connection not connected, or connected
  /// with all its replies in); otherwise does nothing. Returns true if it dropped any.
  bool drop_unsent_timeouts();

  /// Where out-of-band replies go.
  void set_push_handler(push_handler h) noexcept { push_ = h; }
  /// Where cluster redirections of single-reply requests go (none: they are ordinary error replies).
  void set_redirect_handler(redirect_handler h) noexcept { redirect_ = h; }
  /// The reader's limits.
  [[nodiscard]] const resp::limits& limits() const noexcept { return reader_.limit(); }

 private:
  struct slot {
    request* req;             // nullptr once completed early (timeout): the reply is discarded
    std::uint32_t replies_left;
    std::uint32_t req_replies;  // replies the request expects in all
    bool front;
    net::clock::time_point deadline;
  };

  slot& at(std::size_t i) noexcept { return ring_[(head_ + i) & mask_]; }
  // at(0) without the mask: head_ is always an index of ring_ (kept masked).
  slot& front_slot() noexcept { return ring_[head_]; }
  void grow();
  void encode_front(request& r, net::clock::time_point deadline);
  void pop_front() noexcept;
  std::error_code parse();
  // Parses [p, p + n); `consumed` gets how far it got. Views dispatched point into that range.
  std::error_code parse_range(const char* p, std::size_t n, std::size_t& consumed);
  void reserve_tail(std::size_t extra);
  void release_grown_buffer();
  void dispatch(const resp::node& n);
  void hold(const resp::node& n);
  void replay_held();
  void complete(slot& s, std::error_code ec);
  bool take_unsent(std::vector<request*>& out);
  bool redirect(slot& s, const resp::node& n);

  // FIFO of requests, oldest first: [0, sent_) were handed to the transport.
  std::vector<slot> ring_;
  std::size_t mask_ = 63;  // ring_.size() - 1, kept: every request and reply indexes the ring
  std::size_t head_ = 0, size_ = 0, sent_ = 0, zombies_ = 0;
  net::clock::time_point next_deadline_ = net::clock::time_point::max();

  // Output: `pending_` collects user commands, `front_` handshake commands (sent first); `take_output`
  // swaps one of them with `out_` for the transport.
  resp::writer pending_, front_, out_;
  std::size_t front_unsent_ = 0;  // unsent `front` requests, right after the sent ones
  std::span<const iovec> out_iov_;
  std::vector<iovec> out_rest_;
  bool sending_ = false;

  // Input.
  resp::reader reader_;
  std::unique_ptr<char[]> rbuf_;
  std::size_t rcap_ = 0, rbeg_ = 0, rend_ = 0;
  std::size_t initial_rcap_ = 0;
  std::uint32_t idle_reads_ = 0;  // reads in a row that left a grown buffer empty (see read_capacity)
  std::array<resp::node, 64> nodes_;
  std::uint64_t needed_ = 1;  // the reader's last need: exact while a blob payload is pending
  std::uint64_t copied_ = 0;
  bool in_reply_ = false;
  std::vector<slot> retry_;  // idempotent requests to send again after a drop
  std::uint64_t epoch_ = 0;  // bumped when the stream resets, so a parse loop under way stops
  // Where the nodes of the reply under way go: the head request, the push handler, or held: a
  // top-level attribute's nodes wait until the value it annotates says which of the two (their
  // texts are copied into held_bytes_; node::value is rebuilt from `offset` on replay).
  enum class route : std::uint8_t { request, push, held };
  route route_ = route::request;
  // Where a reply whose first value node is `n` goes: a push, or any reply nobody waits for
  // (sent_ == 0), goes out of band.
  [[nodiscard]] route route_of(const resp::node& n) const noexcept {
    return n.data_type == resp::type::push || sent_ == 0 ? route::push : route::request;
  }
  struct held_node {
    resp::node n;
    std::size_t offset;
  };
  std::vector<held_node> held_;
  std::string held_bytes_;
  bool held_overflow_ = false;  // held attributes passed limits::max_held_attribute_bytes
  std::uint64_t layout_ = 0;    // bumped when drop_unsent_timeouts rebuilds the queue (see expire)
  std::size_t unsent_without_reply_ = 0;  // requests of no reply whose bytes are in pending_
  push_handler push_;
  redirect_handler redirect_;
};

}  // namespace redring::client
