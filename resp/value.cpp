// SPDX-License-Identifier: MIT
#include "resp/value.hpp"

#include "resp/error.hpp"
#include "resp/writer.hpp"

namespace redring::resp {

std::string_view value::error_code() const noexcept { return error_code_word(text); }

void value_builder::reset() noexcept {
  stack_.clear();
  top_pending_.clear();
  done_ = value{};
}

bool value_builder::add(const node& n) {
  switch (n.data_type) {
    case type::end: {  // closes a streamed string or aggregate
      if (stack_.empty()) return false;
      value v = std::move(stack_.back().v);
      stack_.pop_back();
      return complete(std::move(v));
    }
    case type::stream_part:
      if (!stack_.empty()) stack_.back().v.text.append(n.value);
      return false;
    default: break;
  }
  value v;
  v.data_type = n.data_type;
  v.null_origin = n.null_origin;
  v.streamed = n.streamed;
  if (n.streamed || (is_aggregate(n.data_type) && n.size != 0)) {
    // Reserve from what is known to have arrived, never from the claimed count.
    stack_.push_back(frame{std::move(v), n.size * multiplicity(n.data_type), n.data_type == type::attribute, {}});
    return false;
  }
  if (n.data_type == type::attribute) {  // `|0`: an empty attribute
    pending().emplace_back();
    return false;
  }
  v.integer = n.integer;
  v.text.assign(n.value);
  return complete(std::move(v));
}

bool value_builder::complete(value v) {
  for (;;) {
    auto& attrs = pending();
    if (!attrs.empty()) v.attributes = std::move(attrs), attrs.clear();
    if (stack_.empty()) {
      done_ = std::move(v);
      return true;
    }
    frame& parent = stack_.back();
    parent.v.elements.push_back(std::move(v));
    if (parent.v.streamed || --parent.remaining != 0) return false;
    value finished = std::move(parent.v);
    const bool attribute = parent.attribute;
    stack_.pop_back();
    if (attribute) {
      pending().push_back(std::move(finished.elements));
      return false;
    }
    v = std::move(finished);
  }
}

void write(writer& w, const value& v) {
  for (const auto& attribute : v.attributes) {
    w.aggregate_header(type::attribute, attribute.size() / 2);
    for (const value& e : attribute) write(w, e);
  }
  switch (v.data_type) {
    case type::simple_string: w.simple_string(v.text); return;
    case type::simple_error: w.simple_error(v.text); return;
    case type::integer: w.integer(v.integer); return;
    case type::double_number: w.double_text(v.text); return;
    case type::big_number: w.big_number(v.text); return;
    case type::boolean: w.boolean(v.integer != 0); return;
    case type::blob_error: w.blob_error(v.text); return;
    case type::verbatim_string: w.verbatim_string(v.verbatim_format(), v.verbatim_text()); return;
    case type::null:
      if (v.null_origin == type::blob_string) w.null_bulk();
      else if (v.null_origin == type::array) w.null_array();
      else w.null();
      return;
    case type::blob_string:
      if (v.streamed) {
        w.streamed_header(type::blob_string);
        if (!v.text.empty()) w.stream_part(v.text);
        w.stream_end();
      } else {
        w.bulk(v.text);
      }
      return;
    case type::array:
    case type::set:
    case type::map:
    case type::push:
    case type::attribute:
      if (v.streamed) {
        w.streamed_header(v.data_type);
      } else {
        w.aggregate_header(v.data_type, v.elements.size() / multiplicity(v.data_type));
      }
      for (const value& e : v.elements) write(w, e);
      if (v.streamed) w.end();
      return;
    case type::stream_part:
    case type::end: return;  // never stored in a value
  }
}

}  // namespace redring::resp

#include "resp/convert.hpp"

#include <fmt/format.h>

namespace redring::resp::detail {

error type_error(const value& v, std::string_view wanted) {
  return error{errc::unexpected_type, fmt::format("cannot convert {} to {}", to_string(v.data_type), wanted)};
}

error error_of(const value& v) { return error{errc::server_error, v.text}; }

bool text_of(const value& v, std::string_view& out) {
  switch (v.data_type) {
    case type::simple_string:
    case type::blob_string:
    case type::big_number:
    case type::double_number:
      out = v.text;
      return true;
    case type::verbatim_string:
      out = v.verbatim_text();
      return true;
    case type::integer:
      out = v.text;
      return !v.text.empty();
    default: return false;
  }
}

}  // namespace redring::resp::detail
