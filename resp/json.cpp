// SPDX-License-Identifier: MIT
#include "resp/json.hpp"

#include <charconv>

namespace redring::resp {
namespace {

// Each byte is the code point of equal value: ASCII as is (escaped where JSON needs it), 0x80-0xFF
// as two-byte UTF-8.
void append_string(std::string& out, std::string_view bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else if (c < 0x80) {
          out.push_back(static_cast<char>(c));
        } else {
          out.push_back(static_cast<char>(0xC0 | (c >> 6)));
          out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
  }
  out.push_back('"');
}

void append_pairs(std::string& out, const std::vector<value>& flat) {
  out.push_back('[');
  for (std::size_t i = 0; i + 1 < flat.size(); i += 2) {
    if (i != 0) out.push_back(',');
    out.push_back('[');
    append_json(out, flat[i]);
    out.push_back(',');
    append_json(out, flat[i + 1]);
    out.push_back(']');
  }
  out.push_back(']');
}

void append_list(std::string& out, const std::vector<value>& elements) {
  out.push_back('[');
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (i != 0) out.push_back(',');
    append_json(out, elements[i]);
  }
  out.push_back(']');
}

void append_tagged(std::string& out, std::string_view tag) {
  out += "{\"";
  out += tag;
  out += "\":";
}

void append_plain(std::string& out, const value& v) {
  switch (v.data_type) {
    case type::simple_string: append_tagged(out, "simple"); append_string(out, v.text); break;
    case type::simple_error: append_tagged(out, "error"); append_string(out, v.text); break;
    case type::blob_string: append_tagged(out, "bulk"); append_string(out, v.text); break;
    case type::blob_error: append_tagged(out, "bulkerror"); append_string(out, v.text); break;
    case type::double_number: append_tagged(out, "double"); append_string(out, v.text); break;
    case type::big_number: append_tagged(out, "bignum"); append_string(out, v.text); break;
    case type::integer: {
      char digits[24];
      const auto end = std::to_chars(digits, digits + sizeof digits, v.integer).ptr;
      append_tagged(out, "integer");
      append_string(out, std::string_view(digits, static_cast<std::size_t>(end - digits)));
      break;
    }
    case type::boolean:
      append_tagged(out, "boolean");
      out += v.integer != 0 ? "true" : "false";
      break;
    case type::null:
      append_tagged(out, "null");
      out += v.null_origin == type::blob_string ? "\"bulk\"" : v.null_origin == type::array ? "\"array\"" : "\"null\"";
      break;
    case type::verbatim_string:
      append_tagged(out, "verbatim");
      out += "{\"format\":";
      append_string(out, v.verbatim_format());
      out += ",\"text\":";
      append_string(out, v.verbatim_text());
      out.push_back('}');
      break;
    case type::array: append_tagged(out, "array"); append_list(out, v.elements); break;
    case type::set: append_tagged(out, "set"); append_list(out, v.elements); break;
    case type::push: append_tagged(out, "push"); append_list(out, v.elements); break;
    case type::map:
    case type::attribute: append_tagged(out, "map"); append_pairs(out, v.elements); break;
    case type::stream_part:
    case type::end: append_tagged(out, "null"); out += "\"null\""; break;  // never stored in a value
  }
  out.push_back('}');
}

}  // namespace

void append_json(std::string& out, const value& v) {
  // A chain of attributes nests: {"attribute":A1,"value":{"attribute":A2,"value":V}}. Written with a
  // loop, so a long chain costs no recursion.
  for (const auto& attribute : v.attributes) {
    append_tagged(out, "attribute");
    append_pairs(out, attribute);
    out += ",\"value\":";
  }
  append_plain(out, v);
  out.append(v.attributes.size(), '}');
}

}  // namespace redring::resp
