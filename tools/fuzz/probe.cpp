// SPDX-License-Identifier: MIT
#include "tools/fuzz/probe.hpp"

#include "resp/reader.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

namespace redring::fuzz {
namespace {

// Reads top-level replies from a connection, one at a time, under strict limits.
class reply_stream {
 public:
  explicit reply_stream(const resp::limits& lim) : reader_(lim) {}

  enum class event : std::uint8_t { reply, eof, timeout, error, invalid };

  /// Waits for the next complete top-level reply that is not a push; `head` is its first node's type,
  /// `text` its payload if it is a scalar.
  event next(connection& conn, clock::time_point deadline, resp::type& head, std::string& text) {
    for (;;) {
      // One node per read: the node views buffer_, which stays unchanged while we look at it.
      while (pos_ < buffer_.size()) {
        const auto r = reader_.read(std::string_view(buffer_).substr(pos_), {&node_, 1});
        if (r.state == resp::status::error) {
          error_ = r.error;
          return event::invalid;
        }
        if (r.nodes == 1) {
          if (at_start_ && node_.depth == 0 && node_.data_type != resp::type::attribute) {
            head_ = node_.data_type;
            text_.assign(node_.value);
            at_start_ = false;
          }
        }
        pos_ += r.consumed;
        if (r.nodes == 1 && node_.ends_reply) {
          at_start_ = true;
          if (head_ != resp::type::push) {
            head = head_;
            text = text_;
            return event::reply;
          }
        }
        if (r.state == resp::status::need_more) break;
      }
      if (pos_ == buffer_.size()) {
        base_ += buffer_.size();
        buffer_.clear();
        pos_ = 0;
      }
      const io_status s = conn.receive(buffer_, deadline);
      if (s == io_status::eof) return event::eof;
      if (s == io_status::timeout) return event::timeout;
      if (s == io_status::error) return event::error;
    }
  }

  std::string& buffer() { return buffer_; }
  [[nodiscard]] const resp::parse_error& error() const { return error_; }
  /// The bytes around a protocol error, for the finding's detail.
  [[nodiscard]] std::string context() const {
    const std::size_t at = static_cast<std::size_t>(error_.offset - base_);
    const std::size_t from = at > 16 ? at - 16 : 0;
    return quote(std::string_view(buffer_).substr(std::min(from, buffer_.size()), 48));
  }

 private:
  resp::reader reader_;
  resp::node node_{};
  std::string buffer_;
  std::size_t pos_ = 0;
  std::uint64_t base_ = 0;  // stream offset of buffer_[0]
  bool at_start_ = true;
  resp::type head_ = resp::type::null;
  std::string text_;
  resp::parse_error error_;
};

bool equal_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

std::string preview(resp::type head, const std::string& text) {
  std::string out(resp::to_string(head));
  if (!text.empty()) out.append(" ").append(quote(text.substr(0, 40)));
  return out;
}

}  // namespace

liveness check_alive(const endpoint& where, const probe_settings& s, std::string& why) {
  const auto deadline = clock::now() + s.timeout;
  int err = 0;
  connection conn = connection::open(where, deadline, err);
  if (!conn.is_open()) {
    why = std::string("cannot connect: ") + std::strerror(err);
    return err == ETIMEDOUT ? liveness::stalled : liveness::dead;
  }
  std::string out, in;
  for (const frame& f : s.preamble) append_wire(out, f);
  append_wire(out, command_frame({"PING"}));
  if (conn.send(out, in, deadline) == io_status::timeout) {
    why = "PING could not be sent within the timeout";
    return liveness::stalled;
  }
  reply_stream replies(s.limits);
  replies.buffer() = std::move(in);
  resp::type head{};
  std::string text;
  for (std::size_t i = 0; i <= s.preamble.size(); ++i) {
    switch (replies.next(conn, deadline, head, text)) {
      case reply_stream::event::reply: break;
      case reply_stream::event::timeout: why = "a fresh connection's PING got no reply within the timeout"; return liveness::stalled;
      case reply_stream::event::invalid: return liveness::alive;  // it answers; run_case reports the bytes
      default: why = "a fresh connection was closed before PING was answered"; return liveness::dead;
    }
  }
  return liveness::alive;
}

probe_result run_case(const endpoint& where, const fuzz_case& c, const probe_settings& s, std::string_view nonce) {
  probe_result result;
  result.succeeded.assign(c.frames.size(), false);
  const auto start = clock::now();
  int err = 0;
  connection conn = connection::open(where, start + s.timeout, err);
  auto judge_silence = [&](const char* what) {
    std::string why;
    switch (check_alive(where, s, why)) {
      case liveness::dead: result.found = {finding_kind::crash, std::string(what) + "; then " + why}; break;
      case liveness::stalled: result.found = {finding_kind::hang, std::string(what) + "; then " + why}; break;
      case liveness::alive: return false;
    }
    return true;
  };
  if (!conn.is_open()) {
    result.found = {err == ETIMEDOUT ? finding_kind::hang : finding_kind::crash,
                    std::string("cannot connect: ") + std::strerror(err)};
    return result;
  }
  bool strict = true;
  std::vector<std::size_t> command_frames;  // reply index (after the preamble) -> frame index
  std::size_t before_raw = s.preamble.size();  // replies owed before the first raw frame
  std::size_t closes_by_design = 0;  // replies up to the first command that closes the connection (0: none)
  // Per command frame: the reply types it documents, if checked. Not after the first raw frame (its
  // replies may be missing) nor after a MULTI (+QUEUED, then an EXEC array of anything).
  std::vector<std::optional<type_set>> shapes;
  bool checking = s.shapes != nullptr;
  std::string out;
  for (const frame& f : s.preamble) append_wire(out, f);
  for (std::size_t i = 0; i < c.frames.size(); ++i) {
    const frame& f = c.frames[i];
    append_wire(out, f);
    if (f.kind == frame_kind::command) {
      // QUIT and CLIENT KILL (replayed with --allow-dangerous; never generated) close the
      // connection after their reply by design: nothing after them is owed.
      if (!closes_by_design && !f.args.empty() &&
          (equal_nocase(f.args[0], "QUIT") || (equal_nocase(f.args[0], "CLIENT") && f.args.size() > 1 && equal_nocase(f.args[1], "KILL")))) {
        closes_by_design = s.preamble.size() + command_frames.size() + 1;
      }
      command_frames.push_back(i);
      before_raw += strict ? 1 : 0;
      if (!f.args.empty() && equal_nocase(f.args[0], "MULTI")) checking = false;
      shapes.push_back(checking ? s.shapes->expected(f) : std::nullopt);
    } else {
      strict = false;
      checking = false;
    }
  }
  std::optional<outcome> wrong_shape;  // the first reply of an undocumented type
  // DISCARD first: a MULTI the case left open (or mutated its EXEC away) must not queue the
  // sentinel. Outside a transaction it is one error reply, inside one OK: one reply either way.
  append_wire(out, command_frame({"DISCARD"}));
  append_wire(out, command_frame({"ECHO", std::string(nonce)}));
  const std::size_t expected = s.preamble.size() + command_frames.size() + 1;

  reply_stream replies(s.limits);
  const io_status sent = conn.send(out, replies.buffer(), start + s.timeout);
  if (sent == io_status::timeout) {
    // The server stopped reading (it may wait for a huge declared length, or be slow): fine if it
    // still answers a fresh connection.
    if (!judge_silence("the server stopped reading the request")) result.slow = true;
    return result;
  }
  auto last_reply = clock::now();
  resp::type head{};
  std::string text;
  // Every way out of the loop below: a reply of the wrong type is reported when nothing worse was
  // (a desync explains it; a closed connection after a raw frame does not).
  auto done = [&]() -> probe_result {
    if (result.found.kind == finding_kind::none && wrong_shape) {
      result.found = std::move(*wrong_shape);
      result.slow = false;
    }
    return std::move(result);
  };
  for (;;) {
    // Until the commands before the first raw frame are answered, any case waits the full timeout.
    const bool owed = strict || result.replies < before_raw;
    const auto deadline = owed ? start + s.timeout : std::min(start + s.timeout, last_reply + s.quiet);
    const auto ev = replies.next(conn, deadline, head, text);
    switch (ev) {
      case reply_stream::event::reply: {
        if (head == resp::type::blob_string && text == nonce) {
          if (strict && result.replies != expected) {
            result.found = {finding_kind::desync, "the sentinel came back as reply " + std::to_string(result.replies + 1) +
                                                      ", expected reply " + std::to_string(expected + 1)};
          }
          return done();
        }
        if (result.replies >= s.preamble.size() && result.replies - s.preamble.size() < command_frames.size()) {
          const std::size_t k = result.replies - s.preamble.size();
          if (strict && !resp::is_error(head)) result.succeeded[command_frames[k]] = true;
          result.shape_checked += shapes[k] ? 1 : 0;
          if (shapes[k] && !acceptable(*shapes[k], head) && !wrong_shape) {
            const frame& f = c.frames[command_frames[k]];
            wrong_shape = outcome{finding_kind::reply_shape,
                                  "reply " + std::to_string(k + 1) + " (to " + f.args[0] + ") is " + preview(head, text) +
                                      ", documented as " + shapes[k]->describe()};
          }
        }
        ++result.replies;
        last_reply = clock::now();
        if (strict && result.replies > expected) {
          result.found = {finding_kind::desync, "reply " + std::to_string(result.replies) +
                                                    " should be the sentinel ECHO, got " + preview(head, text)};
          return done();
        }
        break;
      }
      case reply_stream::event::invalid:
        result.found = {finding_kind::protocol_error, replies.error().message() + " near " + replies.context()};
        return done();
      case reply_stream::event::eof:
      case reply_stream::event::error: {
        const std::string what = "connection closed after " + std::to_string(result.replies) + " of " +
                                 std::to_string(expected + 1) + " replies (the sentinel's included)";
        // A case of commands only owes every reply, DISCARD's and the sentinel's included: a server
        // that answers the case and then drops the connection has lost the sentinel.
        std::size_t owed_replies = strict ? expected + 1 : before_raw;
        if (closes_by_design != 0) owed_replies = std::min(owed_replies, closes_by_design);
        if (!judge_silence(what.c_str()) && result.replies < owed_replies) {
          result.found = {finding_kind::disconnect, strict ? what : what + " (" + std::to_string(before_raw) +
                                                                       " owed before the first raw frame)"};
        }
        return done();
      }
      case reply_stream::event::timeout: {
        const std::string what = "no reply within the timeout after " + std::to_string(result.replies) + " replies";
        if (!judge_silence(what.c_str())) result.slow = owed;
        return done();
      }
    }
  }
}

std::optional<resp::value> call(const endpoint& where, const probe_settings& s, const std::vector<std::string>& args,
                                std::string& why) {
  const auto deadline = clock::now() + s.timeout * 4;
  int err = 0;
  connection conn = connection::open(where, deadline, err);
  if (!conn.is_open()) {
    why = "cannot connect to " + where.describe() + ": " + std::strerror(err);
    return std::nullopt;
  }
  std::string out, in;
  for (const frame& f : s.preamble) append_wire(out, f);
  append_wire(out, command_frame(args));
  if (conn.send(out, in, deadline) != io_status::ok) {
    why = "cannot send to " + where.describe();
    return std::nullopt;
  }
  resp::reader reader;  // default limits: COMMAND DOCS is large and deep
  resp::value_builder builder;
  std::array<resp::node, 256> nodes;
  std::size_t pos = 0, seen = 0;
  for (;;) {
    const auto r = reader.read(std::string_view(in).substr(pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      if (!builder.add(nodes[i])) continue;
      resp::value v = builder.take();
      if (seen++ == s.preamble.size()) return v;
    }
    pos += r.consumed;
    if (r.state == resp::status::error) {
      why = "invalid reply to " + args[0] + ": " + r.error.message();
      return std::nullopt;
    }
    if (r.state == resp::status::ok) continue;
    if (conn.receive(in, deadline) != io_status::ok) {
      why = "no reply to " + args[0] + " from " + where.describe();
      return std::nullopt;
    }
  }
}

}  // namespace redring::fuzz
