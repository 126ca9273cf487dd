// SPDX-License-Identifier: MIT
// The RESP2/RESP3 reader: a resumable state machine over caller-owned bytes that emits nodes.
#pragma once

#include "resp/error.hpp"
#include "resp/limits.hpp"
#include "resp/node.hpp"
#include "resp/type.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace redring::resp {

namespace detail {
// Accumulates the decimal digits in [q, stop) into `v` (the caller keeps stop - q <= 18, so it cannot
// wrap); returns the first byte that is not a digit, or `stop`. For the reader's fast paths.
[[gnu::always_inline]] inline const char* scan_digits(const char* q, const char* stop, std::uint64_t& v) noexcept {
  for (; q != stop; ++q) {
    const unsigned d = static_cast<unsigned char>(*q) - unsigned{'0'};
    if (d > 9) break;
    v = v * 10 + d;
  }
  return q;
}
}  // namespace detail

/// The three outcomes of a read.
enum class status : std::uint8_t {
  ok,         ///< The output span is full; call again with the unconsumed input.
  need_more,  ///< Every complete element of the input was emitted; append bytes and call again.
  error,      ///< The stream is not valid RESP; `read_result::error` says why and where. Sticky until `reset()`.
};

/// What one `reader::read` call did.
struct read_result {
  /// How the call ended: the output span full (`ok`), the input used up (`need_more`), or `error`.
  status state = status::need_more;
  /// Nodes written to the output span.
  std::size_t nodes = 0;
  /// Bytes of the input the reader is done with. The next call's input must start at `input[consumed]`
  /// (the same bytes, possibly with more appended). The emitted nodes view `input[0, consumed)`.
  std::size_t consumed = 0;
  /// With `need_more`: bytes the reader must receive beyond the unconsumed input before it can
  /// progress (exact while a blob payload is pending, else 1). Lets a caller grow its buffer once.
  std::uint64_t needed = 0;
  /// With `error`: the reason and the stream offset.
  parse_error error;
};

/// A resumable RESP2/RESP3 parser that emits `node`s viewing the caller's bytes.
///
/// It never copies payloads and allocates only for its stack of open aggregates (which grows to the
/// deepest nesting seen, at most `limits::max_depth` frames, and is then reused). Feeding a stream in
/// any split (one byte at a time included) yields the same nodes as feeding it whole, and no byte is
/// scanned twice beyond a partial line's last byte: a blob's header is consumed as soon as it is
/// complete, so a 512 MiB blob arriving in pieces costs one length check per piece.
///
/// Errors are reported as soon as the bytes that decide them are present: a type byte at once, a line
/// when its CRLF arrives (or when it outgrows `max_line_length`), a blob when its payload and the two
/// bytes after it arrived.
class reader {
 public:
  /// A reader enforcing `lim` (see `limits`).
  explicit reader(const limits& lim = {}) : limits_(lim) {}

  /// Parses as many nodes from `input` as fit in `out`.
  /// `input` must start at the first byte not yet consumed (see `read_result::consumed`).
  /// Emitted nodes view `input`: see `node` for their lifetime.
  [[nodiscard]] read_result read(std::string_view input, std::span<node> out) {
    // Too few bytes to progress (a blob payload or a line still arriving, the common case when a
    // reply trickles in small chunks): answer here, without a call.
    read_result r;
    if (input.size() < wait_ && !out.empty()) {
      r.needed = wait_ - input.size();
      return r;
    }
    if (out.size() > max_nodes_per_read) out = out.first(max_nodes_per_read);
    const progress done = pending_body_                                             ? resume_blob(input, out)
                          : !input.empty() && (input[0] == '$' || input[0] == '*') ? start_header(input, out)
                                                                                   : read_some(input, out);
    r.state = done.state;
    r.nodes = done.nodes;
    r.consumed = done.consumed;
    if (done.state == status::need_more) r.needed = wait_ - (input.size() - done.consumed);
    if (done.state == status::error) r.error = error_;
    return r;
  }

  /// Parses at most one node: `read(input, {&out, 1})`.
  [[nodiscard]] read_result next(std::string_view input, node& out) { return read(input, {&out, 1}); }

  /// True between replies: no aggregate, attribute or blob payload is open. A partial line is not the
  /// reader's to know: the stream is at a reply boundary when this is true and the caller holds no
  /// unconsumed bytes.
  [[nodiscard]] bool at_reply_boundary() const noexcept {
    return stack_.empty() && !pending_body_ && !after_attribute_ && !failed_;
  }

  /// Offset in the stream of the next unconsumed byte (the sum of every `consumed`).
  [[nodiscard]] std::uint64_t stream_offset() const noexcept { return offset_; }

  /// Forgets all state, including a sticky error, keeping the limits and the stack's capacity.
  void reset() noexcept;

  /// The limits in force.
  [[nodiscard]] const limits& limit() const noexcept { return limits_; }

 private:
  struct frame {
    std::uint64_t remaining;  // child values still expected (counted), or child values seen (streamed)
    std::uint64_t bytes;      // streamed string: payload bytes so far
    type kind;
    bool streamed;
  };

  enum class step : std::uint8_t { emitted, need_more, error };

  // What read_some did, small enough to come back in registers; `read` adds `needed` and the error.
  struct progress {
    std::size_t consumed;
    std::uint32_t nodes;
    status state;
  };

  progress read_some(std::string_view input, std::span<node> out);

  // What most calls do when a reply trickles in pieces smaller than its elements (C6: 37-byte chunks,
  // one call per 108-byte element): finish the pending blob string, then consume the next header and
  // stop, the next payload still arriving. Inline in the caller, such a call costs a few dozen
  // instructions instead of read_some's call, frame and general dispatch. Only the plain shapes are
  // handled here: a blob string at top level or inside a counted aggregate, which may close that
  // aggregate if it is the only one open (the end of an array reply); then `$<n>`, or `*<n>` at top
  // level. Anything else, and whatever follows, is read_some's, so nodes, errors and their offsets
  // are the same for every split. (No error check: fail() drops the pending payload.)
  [[gnu::always_inline]] progress resume_blob(std::string_view input, std::span<node> out) {
    const char* const p = input.data();
    const char* const end = p + input.size();
    const std::uint64_t len = body_length_;
    frame* top = stack_.empty() ? nullptr : &stack_.back();
    if (out.empty() || body_type_ != type::blob_string || input.size() < len + 2 || p[len] != '\r' ||
        p[len + 1] != '\n') {
      return read_some(input, out);  // another type, or a payload without its CRLF
    }
    // after_attribute_ is false here (the blob's header began an element), so a reply ends when no
    // aggregate is left open: finish_element's rule.
    bool ends = top == nullptr;
    if (top != nullptr && !top->streamed && top->remaining == 0) {
      // The blob closes its aggregate: here only the outermost, and not an attribute (whose close
      // makes the next value annotated); finish_element does the rest.
      if (stack_.size() != 1 || top->kind == type::attribute) return read_some(input, out);
      stack_.pop_back();
      top = nullptr;
      ends = true;
    }
    node& n = out[0];
    n = node{};
    n.data_type = type::blob_string;
    n.depth = body_depth_;
    n.value = std::string_view(p, len);
    n.ends_reply = ends;
    pending_body_ = false;
    const char* const h = p + len + 2;
    const auto used = static_cast<std::size_t>(h - p);
    if (out.size() == 1 || h == end) {
      wait_ = 1;
      offset_ += used;
      return {used, 1, out.size() == 1 ? status::ok : status::need_more};  // a full output is ok first
    }
    if (top == nullptr) {
      if (*h == '$') return blob_header(input, used, 1, nullptr, 0, out);
      if (*h == '*') return array_header(input, used, 1, out);
    } else if (*h == '$' && !top->streamed) {
      return blob_header(input, used, 1, top, body_depth_, out);
    }
    return read_after(input, used, 1, out);
  }

  // A call that starts at a blob or array header (the one after a header cut by the end of the last
  // input, or after a reply that ended with it): as resume_blob's second half. Not after an error
  // (sticky), nor inside a stream.
  [[gnu::always_inline]] progress start_header(std::string_view input, std::span<node> out) {
    frame* const top = stack_.empty() ? nullptr : &stack_.back();
    if (failed_ || out.empty() || (top != nullptr && (top->streamed || top->remaining == 0))) {
      return read_some(input, out);
    }
    if (input[0] == '$') return blob_header(input, 0, 0, top, static_cast<std::uint32_t>(stack_.size()), out);
    if (top == nullptr) return array_header(input, 0, 0, out);
    return read_some(input, out);
  }

  // The digits after the type byte at h, accumulated into `v`: at most 18 (they cannot wrap; more
  // are read_some's). Returns the first byte after them.
  [[gnu::always_inline]] static const char* header_digits(const char* h, const char* end, std::uint64_t& v) noexcept {
    return detail::scan_digits(h + 1, end - (h + 1) > 18 ? h + 19 : end, v);
  }

  // The blob header `$<digits>\r\n` at input[used], with out[0, emitted) written and `top` (nullptr at
  // top level) the counted aggregate it belongs to, at `depth`: consumes it (begin_element's counting,
  // the limits and line rules as read_some applies them) and stops, or leaves its payload to
  // read_some when that is here too. A header still arriving gets read_some's partial-line state.
  [[gnu::always_inline]] progress blob_header(std::string_view input, std::size_t used, std::uint32_t emitted,
                                              frame* top, std::uint32_t depth, std::span<node> out) {
    const char* const p = input.data();
    const char* const end = p + input.size();
    const char* const h = p + used;
    std::uint64_t v = 0;
    const char* const q = header_digits(h, end, v);
    const auto digits = static_cast<std::uint64_t>(q - h - 1);
    if (end - q < 2 || q[0] != '\r' || q[1] != '\n' || digits == 0 || v > limits_.max_bulk_length ||
        digits > limits_.max_line_length) {
      const auto content = static_cast<std::uint64_t>(end - h - 1);
      if ((q == end || (q + 1 == end && *q == '\r')) && content < limits_.max_line_length + 2) {
        // Digits (and perhaps the CR) so far: wait for the rest of the line, as parse_element does.
        scanned_ = content == 0 ? 0 : content - 1;
        wait_ = content + 2;
        offset_ += used;
        return {used, emitted, status::need_more};
      }
      return read_after(input, used, emitted, out);  // another line, or one read_some refuses
    }
    after_attribute_ = false;
    if (top != nullptr) --top->remaining;  // not zero: the callers checked
    scanned_ = 0;
    body_type_ = type::blob_string;
    body_length_ = v;
    body_depth_ = depth;
    pending_body_ = true;
    const auto header_end = static_cast<std::size_t>(q + 2 - p);
    if (input.size() - header_end < v + 2) {
      wait_ = v + 2;
      offset_ += header_end;
      return {header_end, emitted, status::need_more};
    }
    return read_after(input, header_end, emitted, out);  // the payload is here too: read_some resumes at it
  }

  // The array header `*<digits>\r\n` at input[used], at top level (nothing open), with
  // out[0, emitted) written: opens the array (begin_element and push_frame, as read_some would) and
  // emits its node, then takes a blob header that follows. `*0`, nulls, streams, a count over
  // max_aggregate_size, a header cut short or any other line are read_some's.
  [[gnu::always_inline]] progress array_header(std::string_view input, std::size_t used, std::uint32_t emitted,
                                               std::span<node> out) {
    const char* const p = input.data();
    const char* const end = p + input.size();
    const char* const h = p + used;
    std::uint64_t count = 0;
    const char* const q = header_digits(h, end, count);
    const auto digits = static_cast<std::uint64_t>(q - h - 1);
    if (end - q < 2 || q[0] != '\r' || q[1] != '\n' || count == 0 || count > limits_.max_aggregate_size ||
        digits > limits_.max_line_length || limits_.max_depth == 0) {
      return read_after(input, used, emitted, out);
    }
    after_attribute_ = false;
    scanned_ = 0;
    stack_.push_back(frame{count, 0, type::array, false});  // within max_depth: nothing else is open
    node& n = out[emitted];
    n = node{};
    n.data_type = type::array;
    n.size = count;
    const char* const next = q + 2;
    const auto header_end = static_cast<std::size_t>(next - p);
    if (emitted + 1 == out.size() || next == end) {
      wait_ = 1;
      offset_ += header_end;
      return {header_end, emitted + 1, emitted + 1 == out.size() ? status::ok : status::need_more};
    }
    if (*next == '$') return blob_header(input, header_end, emitted + 1, &stack_.back(), 1, out);
    return read_after(input, header_end, emitted + 1, out);
  }

  progress read_after(std::string_view input, std::size_t used, std::uint32_t emitted, std::span<node> out);
  std::size_t common_elements(const char*& p, const char* end, std::span<node> out, std::size_t n);
  step parse_element(const char*& p, const char* end, node& out);
  step parse_line_element(const char* start, const char* line_end, const char*& p, node& out);
  step parse_body(const char*& p, const char* end, node& out);
  bool begin_element(const char* at);
  void finish_element(node& out);
  bool push_frame(type kind, std::uint64_t count, bool streamed, const char* at);
  [[gnu::cold]] step fail(errc code, const char* at);

  static constexpr std::size_t max_nodes_per_read = 0xFFFFFFFF;  // what progress::nodes holds

  limits limits_;
  std::vector<frame> stack_;
  std::uint64_t offset_ = 0;        // stream offset of the current input's first byte
  const char* input_begin_ = nullptr;  // the current input, for error offsets
  const char* end_ = nullptr;
  // The unconsumed input must hold at least this many bytes before a call can progress: a pending
  // blob's payload + CRLF, a partial line + 1, else 1; 0 after an error (every call reports it).
  std::uint64_t wait_ = 1;
  std::uint64_t scanned_ = 0;       // bytes of a partial line already scanned without a CRLF
  std::uint64_t body_length_ = 0;   // pending blob payload length
  std::uint32_t body_depth_ = 0;
  type body_type_ = type::blob_string;
  bool pending_body_ = false;
  bool after_attribute_ = false;    // an attribute closed; the value it annotates must follow
  bool failed_ = false;
  parse_error error_;
};

}  // namespace redring::resp
