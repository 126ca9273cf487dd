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

/// The three outcomes of a read.
enum class status : std::uint8_t {
  ok,         ///< The output span is full; call again with the unconsumed input.
  need_more,  ///< Every complete element of the input was emitted; append bytes and call again.
  error,      ///< The stream is not valid RESP; `read_result::error` says why and where. Sticky until `reset()`.
};

/// What one `reader::read` call did.
struct read_result {
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
    const progress done = read_some(input, out);
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
