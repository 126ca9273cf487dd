// SPDX-License-Identifier: MIT
#include "client/multiplexer.hpp"

#include "client/error.hpp"

#include <algorithm>
#include <charconv>
#include <utility>
#include <cstring>

namespace redring::client {

namespace {
constexpr std::size_t min_read_space = 4096;
}

multiplexer::multiplexer(const resp::limits& lim, std::size_t read_buffer_bytes)
    : ring_(64), reader_(lim), rbuf_(std::make_unique_for_overwrite<char[]>(std::max(read_buffer_bytes, 2 * min_read_space))),
      rcap_(std::max(read_buffer_bytes, 2 * min_read_space)), initial_rcap_(rcap_) {}

// --- The FIFO: a power-of-two ring of slots that grows and never shrinks. ---

void multiplexer::grow() {
  std::vector<slot> bigger(ring_.size() * 2);
  for (std::size_t i = 0; i < size_; ++i) bigger[i] = at(i);
  ring_.swap(bigger);
  mask_ = ring_.size() - 1;
  head_ = 0;
}

void multiplexer::pop_front() noexcept {
  head_ = (head_ + 1) & mask_;
  --size_;
  if (sent_ > 0) --sent_;
}

void multiplexer::encode_front(request& r, net::clock::time_point deadline) {
  if (size_ > mask_) grow();
  const slot s{&r, r.replies, r.replies, true, deadline};
  if (deadline < next_deadline_) next_deadline_ = deadline;
  // Handshake commands go after the sent requests and the unsent handshake ones, before user ones.
  front_.set_reference_threshold(0);
  r.encode(r, front_);
  const std::size_t pos = sent_ + front_unsent_;
  head_ = (head_ + mask_) & mask_;
  ++size_;
  for (std::size_t i = 0; i < pos; ++i) at(i) = at(i + 1);
  at(pos) = s;
  ++front_unsent_;
}

void multiplexer::encode_as(request& r, net::clock::time_point deadline, std::string_view encoded) {
  if (size_ > mask_) grow();
  if (deadline < next_deadline_) next_deadline_ = deadline;
  pending_.raw(encoded);
  if (r.replies != 0) {
    at(size_++) = slot{&r, r.replies, r.replies, false, deadline};
  } else {
    ++unsent_without_reply_;
  }
}

// --- Write side ---

std::span<const iovec> multiplexer::take_output(bool user) {
  if (sending_) return {};
  if (!front_.empty()) {
    std::swap(front_, out_);
    sent_ += front_unsent_;
    front_unsent_ = 0;
  } else if (user && !pending_.empty()) {
    std::swap(pending_, out_);
    sent_ = size_;
    unsent_without_reply_ = 0;
  } else {
    return {};
  }
  sending_ = true;
  out_iov_ = out_.iovecs();
  return out_iov_;
}

std::span<const iovec> multiplexer::output_written(std::size_t n) {
  std::size_t i = 0;
  while (i < out_iov_.size() && n >= out_iov_[i].iov_len) n -= out_iov_[i++].iov_len;
  if (i == out_iov_.size()) {
    out_.clear();
    out_iov_ = {};
    sending_ = false;
    return {};
  }
  // A short write: keep the rest (iovecs are copied so the first one can be advanced). After an
  // earlier short write out_iov_ already views out_rest_: drop its written prefix in place
  // (assign from a range of the vector itself is undefined behaviour).
  if (!out_rest_.empty() && out_iov_.data() == out_rest_.data()) {
    out_rest_.erase(out_rest_.begin(), out_rest_.begin() + static_cast<std::ptrdiff_t>(i));
  } else {
    out_rest_.assign(out_iov_.begin() + static_cast<std::ptrdiff_t>(i), out_iov_.end());
  }
  out_rest_[0].iov_base = static_cast<char*>(out_rest_[0].iov_base) + n;
  out_rest_[0].iov_len -= n;
  out_iov_ = out_rest_;
  return out_iov_;
}

// --- Read side ---

std::span<char> multiplexer::read_space() {
  if (rbeg_ == rend_) rbeg_ = rend_ = 0;
  if (rcap_ > 4 * initial_rcap_) [[unlikely]] release_grown_buffer();
  if (rcap_ - rend_ < min_read_space) {
    // Make room: move the unconsumed tail (a partial element) to the front, once.
    const std::size_t tail = rend_ - rbeg_;
    if (rbeg_ > 0) {
      std::memmove(rbuf_.get(), rbuf_.get() + rbeg_, tail);
      rbeg_ = 0;
      rend_ = tail;
    }
    if (rcap_ - rend_ < min_read_space) {
      const std::size_t bigger = std::max(rcap_ * 2, rend_ + min_read_space);
      auto grown = std::make_unique_for_overwrite<char[]>(bigger);
      std::memcpy(grown.get(), rbuf_.get(), rend_);
      rbuf_ = std::move(grown);
      rcap_ = bigger;
    }
  }
  return {rbuf_.get() + rend_, rcap_ - rend_};
}

std::error_code multiplexer::commit_read(std::size_t n) {
  rend_ += n;
  return parse();
}

std::error_code multiplexer::feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const std::span<char> space = read_space();
    const std::size_t n = std::min(space.size(), bytes.size());
    std::memcpy(space.data(), bytes.data(), n);
    bytes.remove_prefix(n);
    if (auto ec = commit_read(n)) return ec;
  }
  return {};
}

std::error_code multiplexer::parse_range(const char* p, std::size_t n, std::size_t& consumed) {
  consumed = 0;
  const std::uint64_t epoch = epoch_;
  for (;;) {
    const auto r = reader_.read(std::string_view(p + consumed, n - consumed), nodes_);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      dispatch(nodes_[i]);
      // A completion reset the stream (the connection failed or closed): the rest is void.
      if (epoch_ != epoch) {
        consumed = n;
        return {};
      }
    }
    consumed += r.consumed;
    if (held_overflow_) [[unlikely]] return errc::protocol_error;  // see hold()
    switch (r.state) {
      case resp::status::ok: continue;
      case resp::status::need_more: needed_ = r.needed; return {};
      case resp::status::error: return errc::protocol_error;
    }
  }
}

// Room for `extra` more bytes after the unconsumed tail, moving the tail to the front if that helps.
void multiplexer::reserve_tail(std::size_t extra) {
  const std::size_t tail = rend_ - rbeg_;
  if (rcap_ - rend_ >= extra) return;
  if (rcap_ - tail >= extra) {
    std::memmove(rbuf_.get(), rbuf_.get() + rbeg_, tail);
  } else {
    const std::size_t bigger = std::max(rcap_ * 2, tail + extra + min_read_space);
    auto grown = std::make_unique_for_overwrite<char[]>(bigger);
    std::memcpy(grown.get(), rbuf_.get() + rbeg_, tail);
    rbuf_ = std::move(grown);
    rcap_ = bigger;
  }
  rbeg_ = 0;
  rend_ = tail;
}

std::error_code multiplexer::parse() {
  std::size_t consumed = 0;
  const std::uint64_t epoch = epoch_;
  const std::error_code ec = parse_range(rbuf_.get() + rbeg_, rend_ - rbeg_, consumed);
  if (epoch_ != epoch) return {};
  rbeg_ += consumed;
  if (ec) return ec;
  // A large blob is coming: make the buffer hold it whole, so it is received in place.
  if (needed_ > min_read_space) reserve_tail(static_cast<std::size_t>(needed_) + min_read_space);
  return {};
}

std::error_code multiplexer::feed_in_place(std::string_view bytes) {
  const std::uint64_t epoch = epoch_;
  // 1. An element began in an earlier buffer: complete it in the receive buffer, copying only what
  //    it needs (a blob's exact remainder; a line up to its LF), so the rest can be parsed in place.
  while (rbeg_ != rend_ && !bytes.empty()) {
    std::size_t take;
    if (needed_ > 1) {
      take = static_cast<std::size_t>(std::min<std::uint64_t>(needed_, bytes.size()));
    } else {
      const auto lf = bytes.find('\n');
      take = lf == std::string_view::npos ? bytes.size() : lf + 1;
    }
    reserve_tail(take);
    std::memcpy(rbuf_.get() + rend_, bytes.data(), take);
    rend_ += take;
    copied_ += take;
    bytes.remove_prefix(take);
    if (auto ec = parse()) return ec;
    if (epoch_ != epoch) return {};
    if (rbeg_ == rend_) rbeg_ = rend_ = 0;
  }
  if (bytes.empty()) return {};
  // 2. At an element boundary: parse the buffer where it is.
  std::size_t consumed = 0;
  if (auto ec = parse_range(bytes.data(), bytes.size(), consumed)) return ec;
  if (epoch_ != epoch) return {};
  // 3. Keep the partial element at the end for the next buffer.
  const std::size_t rest = bytes.size() - consumed;
  if (rest != 0) {
    reserve_tail(rest + (needed_ > 1 ? static_cast<std::size_t>(needed_) : 0));
    std::memcpy(rbuf_.get() + rend_, bytes.data() + consumed, rest);
    rend_ += rest;
    copied_ += rest;
  } else if (rcap_ > 4 * initial_rcap_) [[unlikely]] {
    release_grown_buffer();
  }
  return {};
}

// The receive buffer grew for a large reply (reserve_tail): back to its initial size after 256 reads
// in a row left it empty with nothing large under way. Called only where the buffer is empty and no
// receive is armed into it (read_space, before the caller arms one; the end of feed_in_place).
void multiplexer::release_grown_buffer() {
  if (rbeg_ != rend_ || needed_ > initial_rcap_) {
    idle_reads_ = 0;
    return;
  }
  if (++idle_reads_ < 256) return;
  idle_reads_ = 0;
  rbuf_ = std::make_unique_for_overwrite<char[]>(initial_rcap_);
  rcap_ = initial_rcap_;
  rbeg_ = rend_ = 0;
}

void multiplexer::complete(slot& s, std::error_code ec) {
  request* r = s.req;
  s.req = nullptr;
  r->on_done(*r, ec);  // may destroy r, or enqueue more (which may move the ring)
}

void multiplexer::dispatch(const resp::node& n) {
  bool annotated = false;
  if (!in_reply_) {
    in_reply_ = true;
    route_ = route_of(n);
    if (n.data_type == resp::type::attribute) [[unlikely]] route_ = route::held;
  }
  if (route_ != route::request) [[unlikely]] {
    if (route_ == route::held) {
      // RESP3 lets an attribute precede any value, a push too: where the reply goes is decided by
      // the value the attribute annotates, so the attribute is held (copied) until that value's
      // first node (the next one at depth 0 that is not another attribute) arrives, then replayed.
      if (n.depth != 0 || n.data_type == resp::type::attribute || held_overflow_) {
        hold(n);
        return;
      }
      route_ = route_of(n);
      annotated = true;
      replay_held();
    }
    if (route_ == route::push) {
      if (push_.on_node != nullptr) push_.on_node(push_.context, n);
      if (n.ends_reply) in_reply_ = false;
      return;
    }
  }
  // A cluster redirection is an error reply: one node, so the request has seen nothing yet (unless
  // an attribute came first: then the error is the request's reply like any other).
  if ((n.data_type == resp::type::simple_error || n.data_type == resp::type::blob_error) && n.depth == 0 &&
      !annotated && redirect_.on_redirect != nullptr && redirect(front_slot(), n)) [[unlikely]] {
    return;
  }
  // The head slot is looked up after each callback, never kept across one: a callback may enqueue
  // (the cluster router sends CLUSTER SLOTS from on_moved_in_batch), and a full ring then grows and
  // moves every slot (test CallbacksThatEnqueuePastTheRingsCapacityKeepTheReplyCount).
  if (request* head = front_slot().req; head != nullptr) head->on_node(*head, n);
  if (!n.ends_reply) return;
  in_reply_ = false;
  slot& s = front_slot();
  if (--s.replies_left != 0) return;
  request* r = s.req;
  if (r == nullptr) --zombies_;
  pop_front();
  if (r != nullptr) r->on_done(*r, no_error);
}

void multiplexer::hold(const resp::node& n) {
  // Bounded (limits::max_held_attribute_bytes): past it every node is dropped, and parse_range fails
  // the stream once this batch of nodes is dispatched.
  if (held_overflow_) return;
  constexpr std::size_t per_node = 64;
  if (held_bytes_.size() + n.value.size() + (held_.size() + 1) * per_node > reader_.limit().max_held_attribute_bytes) {
    held_overflow_ = true;
    return;
  }
  held_.push_back(held_node{n, held_bytes_.size()});
  held_bytes_.append(n.value);
}

void multiplexer::replay_held() {
  for (held_node& h : held_) {
    resp::node n = h.n;
    n.value = std::string_view(held_bytes_).substr(h.offset, n.value.size());
    if (route_ == route::push) {
      if (push_.on_node != nullptr) push_.on_node(push_.context, n);
    } else if (request* r = at(0).req; r != nullptr) {
      r->on_node(*r, n);
    }
  }
  held_.clear();
  held_bytes_.clear();
  held_overflow_ = false;
}

bool is_cluster_redirect(std::string_view error) noexcept {
  // Redis Cluster specification, "Redirection and resharding" and "Client handling of -TRYAGAIN";
  // CLUSTERDOWN while the cluster is failing over or a slot is unserved.
  return error.starts_with("MOVED ") || error.starts_with("ASK ") || error.starts_with("TRYAGAIN") ||
         error.starts_with("CLUSTERDOWN");
}

bool parse_cluster_redirection(std::string_view error, cluster_redirection& out) noexcept {
  const bool moved = error.starts_with("MOVED ");
  if (!moved && !error.starts_with("ASK ")) return false;
  const std::string_view rest = error.substr(moved ? 6 : 4);
  const auto space = rest.find(' ');
  if (space == std::string_view::npos) return false;
  const std::string_view where = rest.substr(space + 1);
  const auto colon = where.rfind(':');  // the host may be an IPv6 address
  if (colon == std::string_view::npos) return false;
  const auto number = [](std::string_view text, unsigned limit, unsigned& v) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    return ec == std::errc() && end == text.data() + text.size() && v < limit;
  };
  unsigned slot = 0, port = 0;
  // Port 0 is no port: a node there could never be reached.
  if (!number(rest.substr(0, space), 16384, slot) || !number(where.substr(colon + 1), 65536, port) || port == 0) return false;
  out = {.ask = !moved, .slot = static_cast<std::uint16_t>(slot), .host = where.substr(0, colon), .port = static_cast<std::uint16_t>(port)};
  return true;
}

bool multiplexer::redirect(slot& s, const resp::node& n) {
  request* r = s.req;
  if (r != nullptr && s.req_replies != 1 && redirect_.on_moved_in_batch != nullptr && n.value.starts_with("MOVED ")) {
    redirect_.on_moved_in_batch(redirect_.context, n.value);
    return false;
  }
  if (r == nullptr || s.req_replies != 1 || !n.ends_reply || !is_cluster_redirect(n.value)) return false;
  in_reply_ = false;
  pop_front();
  redirect_.on_redirect(redirect_.context, *r, n.value);
  return true;
}

bool multiplexer::take_unsent(std::vector<request*>& out) {
  if (sending_ || sent_ != 0 || front_unsent_ != 0 || in_reply_) return false;
  while (size_ > 0) {
    const slot s = at(0);
    pop_front();
    if (s.req != nullptr) {
      s.req->carried_deadline = s.deadline;  // kept wherever it goes next (see request)
      out.push_back(s.req);
    } else {
      --zombies_;
    }
  }
  pending_.clear();
  unsent_without_reply_ = 0;
  next_deadline_ = net::clock::time_point::max();
  return true;
}

bool multiplexer::drop_unsent_timeouts() {
  // While nothing is sent every zombie is unsent (drop_sent forgot the sent ones). Not while a
  // request waiting for no reply is unsent: its bytes have no slot to be encoded again from.
  if (zombies_ == 0 || sending_ || sent_ != 0 || front_unsent_ != 0 || in_reply_ || unsent_without_reply_ != 0) {
    return false;
  }
  ++layout_;  // an expire() walking the queue by index starts over (see expire)
  std::vector<slot> live;
  live.reserve(size_ - zombies_);
  while (size_ > 0) {
    const slot s = at(0);
    pop_front();
    if (s.req != nullptr) live.push_back(s);
  }
  zombies_ = 0;
  pending_.clear();
  next_deadline_ = net::clock::time_point::max();
  for (const slot& s : live) encode(*s.req, s.deadline);  // completes nothing: no callback runs
  return true;
}

net::clock::time_point multiplexer::expire(net::clock::time_point now) {
  const std::uint64_t epoch = epoch_;
  // Kept apart from next_deadline_ until the end: a completion may enqueue, and encode lowers
  // next_deadline_ to the new deadline even when this loop then expires that request (it visits
  // new slots too), which returned a deadline already past (found by fuzz_multiplexer).
  auto next = net::clock::time_point::max();
  std::uint64_t layout = layout_;
  for (std::size_t i = 0; i < size_; ++i) {
    slot& s = at(i);
    if (s.req == nullptr) continue;
    if (s.deadline <= now) {
      ++zombies_;
      complete(s, errc::timeout);  // may enqueue: indexes stay valid, new slots go last
      if (epoch_ != epoch) return next_deadline_ = net::clock::time_point::min();  // the stream was reset
      if (layout_ != layout) [[unlikely]] {
        // A completion submitted at the offline limit, and the timed-out requests were dropped: the
        // queue was rebuilt, live requests only, so walk it again from its start (else one due
        // request was skipped, to time out a whole timeout late).
        layout = layout_;
        next = net::clock::time_point::max();
        i = static_cast<std::size_t>(-1);
      }
    } else if (s.deadline < next) {
      next = s.deadline;
    }
  }
  return next_deadline_ = next;
}

void multiplexer::drop_sent(std::error_code ec) {
  needed_ = 1;
  // A request that has seen part of its replies cannot start again: its sink holds them.
  bool head_started = in_reply_ && route_ == route::request;  // held nodes were not delivered
  ++epoch_;
  reader_.reset();
  rbeg_ = rend_ = 0;
  in_reply_ = false;
  route_ = route::request;
  held_.clear();
  held_bytes_.clear();
  held_overflow_ = false;
  // The bytes handed to the transport are gone with the connection; so are handshake leftovers.
  out_.clear();
  out_iov_ = {};
  sending_ = false;
  front_.clear();
  retry_.clear();
  // Completions run last, once the multiplexer is consistent and the retries are queued again: a
  // completion may re-enter (close() -> fail_all -> drop_sent) and must then see the retries.
  std::vector<request*> failed;
  while (sent_ + front_unsent_ > 0 && size_ > 0) {
    slot s = at(0);
    const bool was_front_unsent = sent_ == 0;
    pop_front();
    if (was_front_unsent) --front_unsent_;
    const bool untouched = !std::exchange(head_started, false) && s.replies_left == s.req_replies;
    if (s.req == nullptr) {
      --zombies_;
    } else if (s.req->idempotent && !s.req->retried && !s.front && untouched) {
      s.req->retried = true;  // re-encoded below, after the unsent ones, for the next connection
      retry_.push_back(s);
    } else {
      failed.push_back(s.req);
    }
  }
  sent_ = 0;
  front_unsent_ = 0;
  for (const slot& s : retry_) encode(*s.req, s.deadline);
  retry_.clear();
  for (request* r : failed) r->on_done(*r, ec);
}

void multiplexer::fail_all(std::error_code ec) {
  drop_sent(ec);
  while (size_ > 0) {
    slot s = at(0);
    pop_front();
    if (s.req != nullptr) {
      s.req->on_done(*s.req, ec);  // may submit again: this loop fails that request too
    } else {
      --zombies_;
    }
  }
  // Output is dropped after the completions, with whatever they encoded: bytes left here would be
  // sent later with no request to take their replies, and the next request would get them (found
  // by fuzz_multiplexer).
  pending_.clear();
  unsent_without_reply_ = 0;
  front_.clear();
  front_unsent_ = 0;
  sent_ = 0;
}

}  // namespace redring::client
