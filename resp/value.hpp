// SPDX-License-Identifier: MIT
// The convenient layer: a reply as an owning tree (`value`), built from the reader's nodes
// (`value_builder`), and re-encoded by `write`.
#pragma once

#include "resp/node.hpp"
#include "resp/type.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace redring::resp {

class writer;

/// A whole reply that owns its bytes: scalars keep their payload, aggregates their children.
/// Built by `value_builder`; convert it with `resp::convert` (see convert.hpp). It allocates: the
/// hot path uses nodes instead.
struct value {
  /// The type. Streamed strings arrive as `blob_string`, streamed aggregates as their plain type.
  type data_type = type::null;
  /// For `type::null`: the wire type that carried it (`blob_string` for `$-1`, `array` for `*-1`, `null`).
  type null_origin = type::null;
  /// True if it arrived streamed (`$?`, `*?`, `~?`, `%?`); the content is the same either way.
  bool streamed = false;
  /// `type::integer`: the number; `type::boolean`: 1 or 0.
  std::int64_t integer = 0;
  /// Scalars: the payload (streamed strings joined; verbatim as `fmt:text`; numbers as sent).
  std::string text;
  /// Aggregates: the children in order; for map and attribute, key, value, key, value, ...
  std::vector<value> elements;
  /// The attributes sent in front of this value, outermost first; each is a flat key, value, ... list.
  std::vector<std::vector<value>> attributes;

  /// True for the null types (RESP3 `_`, RESP2 `$-1` and `*-1`).
  [[nodiscard]] bool is_null() const noexcept { return data_type == type::null; }
  /// True for simple and blob errors.
  [[nodiscard]] bool is_error() const noexcept { return resp::is_error(data_type); }
  /// For errors: the code word ("MOVED", "WRONGTYPE", "ERR"). Views `text`.
  [[nodiscard]] std::string_view error_code() const noexcept;
  /// For verbatim strings: the format ("txt", "mkd"). Views `text`.
  [[nodiscard]] std::string_view verbatim_format() const noexcept { return std::string_view(text).substr(0, 3); }
  /// For verbatim strings: the text after `fmt:` (empty if a hand-built value is shorter). Views `text`.
  [[nodiscard]] std::string_view verbatim_text() const noexcept {
    return text.size() < 4 ? std::string_view() : std::string_view(text).substr(4);
  }
  /// For a map, or an array read as key, value, key, value (RESP2's maps): the value after the first
  /// key whose text is `key`; null if there is none or this is neither. Points into `elements`.
  [[nodiscard]] const value* find(std::string_view key) const noexcept {
    if (data_type != type::map && data_type != type::array) return nullptr;
    for (std::size_t i = 0; i + 1 < elements.size(); i += 2) {
      if (elements[i].text == key) return &elements[i + 1];
    }
    return nullptr;
  }

  friend bool operator==(const value&, const value&) = default;
};

/// Assembles `value`s from a reader's nodes, one top-level reply at a time.
/// Needs the nodes of one reply in order; copies what it needs from each node's view, so the input
/// may be released as soon as `add` returns.
class value_builder {
 public:
  /// Adds the next node. Returns true when it completed a top-level reply, which `take()` then returns.
  bool add(const node& n);
  /// The completed reply (moved out). Call once after `add` returned true.
  [[nodiscard]] value take() { return std::move(done_); }
  /// Drops any partly built reply.
  void reset() noexcept;

 private:
  struct frame {
    value v;
    std::uint64_t remaining;  // child values still expected (when not streamed)
    bool attribute;
    std::vector<std::vector<value>> pending_attributes;  // for this frame's next child
  };
  bool complete(value v);
  std::vector<std::vector<value>>& pending() { return stack_.empty() ? top_pending_ : stack_.back().pending_attributes; }

  std::vector<frame> stack_;
  std::vector<std::vector<value>> top_pending_;
  value done_;
};

/// Appends the RESP encoding of `v` (attributes, streamed forms and RESP2 nulls included) to `w`.
void write(writer& w, const value& v);

}  // namespace redring::resp
