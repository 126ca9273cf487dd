// SPDX-License-Identifier: MIT
// Test support: decode a byte stream to canonical JSON lines, whole or in pieces, following the
// reader's caller contract (keep unconsumed bytes, append, present from the first unconsumed byte).
#pragma once

#include "resp/json.hpp"
#include "resp/reader.hpp"
#include "resp/value.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace redring::test {

/// What decoding a whole stream gave.
struct decoded {
  std::vector<std::string> json;  // one per completed top-level reply
  resp::status state = resp::status::need_more;
  resp::parse_error error;        // when state == error
  bool boundary = true;           // at a reply boundary at the end (when no error)
  std::vector<resp::node> nodes;  // every node, values copied into `storage` views are not kept

  friend bool operator==(const decoded& a, const decoded& b) {
    return a.json == b.json && a.state == b.state && a.error.code == b.error.code &&
           a.error.offset == b.error.offset && a.boundary == b.boundary;
  }
};

/// Decodes `input` cut at the given increasing offsets.
inline decoded decode_split(std::string_view input, const std::vector<std::size_t>& cuts, const resp::limits& lim = {}) {
  decoded out;
  resp::reader reader(lim);
  resp::value_builder builder;
  std::array<resp::node, 7> nodes;  // small on purpose: exercises the "output full" path
  std::string buffer;
  std::size_t pos = 0;
  std::size_t prev = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (const std::size_t cut : ends) {
    buffer.append(input.substr(prev, cut - prev));
    prev = cut;
    for (;;) {
      const auto r = reader.read(std::string_view(buffer).substr(pos), nodes);
      for (std::size_t i = 0; i < r.nodes; ++i) {
        resp::node copy = nodes[i];
        copy.value = {};
        out.nodes.push_back(copy);
        if (builder.add(nodes[i])) {
          std::string j;
          resp::append_json(j, builder.take());
          out.json.push_back(std::move(j));
        }
      }
      pos += r.consumed;
      if (r.state == resp::status::error) {
        out.state = r.state;
        out.error = r.error;
        out.boundary = false;
        return out;
      }
      if (r.state == resp::status::need_more) break;
    }
  }
  out.boundary = reader.at_reply_boundary() && pos == buffer.size();
  return out;
}

/// Decodes `input` delivered in pieces of `chunk` bytes (0: whole).
inline decoded decode(std::string_view input, std::size_t chunk = 0, const resp::limits& lim = {}) {
  std::vector<std::size_t> cuts;
  if (chunk != 0) {
    for (std::size_t at = chunk; at < input.size(); at += chunk) cuts.push_back(at);
  }
  return decode_split(input, cuts, lim);
}

/// The single reply in `input` as a value; a test failure (and an empty value) if `input` is not
/// exactly one complete reply.
inline resp::value parse_one(std::string_view input) {
  resp::reader reader;
  resp::value_builder builder;
  std::array<resp::node, 16> nodes;
  std::size_t pos = 0;
  for (;;) {
    const auto r = reader.read(input.substr(pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      if (!builder.add(nodes[i])) continue;
      if (i + 1 != r.nodes || pos + r.consumed != input.size()) ADD_FAILURE() << "bytes after the reply";
      return builder.take();
    }
    pos += r.consumed;
    if (r.state != resp::status::ok) {
      ADD_FAILURE() << "not one complete reply: "
                    << (r.state == resp::status::error ? r.error.message() : std::string("incomplete"));
      return {};
    }
  }
}

/// The JSON of the single reply in `input`, or "" if it is not exactly one complete reply.
inline std::string json_of(std::string_view input) {
  const decoded d = decode(input);
  if (d.state == resp::status::error || !d.boundary || d.json.size() != 1) return "";
  return d.json[0];
}

}  // namespace redring::test
