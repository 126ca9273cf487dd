// SPDX-License-Identifier: MIT
#include "resp/error.hpp"

#include "resp/type.hpp"

#include <fmt/format.h>

namespace redring::resp {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redring.resp"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_type_byte: return "invalid type byte";
      case errc::invalid_length: return "invalid length";
      case errc::bulk_too_long: return "bulk length over limit";
      case errc::aggregate_too_large: return "aggregate size over limit";
      case errc::nesting_too_deep: return "nesting too deep";
      case errc::line_too_long: return "line too long";
      case errc::missing_crlf: return "payload not followed by CRLF";
      case errc::invalid_boolean: return "invalid boolean";
      case errc::invalid_integer: return "invalid integer";
      case errc::integer_overflow: return "integer overflows int64";
      case errc::invalid_double: return "invalid double";
      case errc::invalid_big_number: return "invalid big number";
      case errc::invalid_verbatim: return "invalid verbatim string";
      case errc::invalid_null: return "invalid null";
      case errc::unexpected_end: return "unexpected end of aggregate";
      case errc::unexpected_stream_part: return "stream part outside a streamed string";
      case errc::invalid_stream_part: return "streamed string interrupted";
      case errc::server_error: return "server replied with an error";
      case errc::unexpected_type: return "reply has an unexpected type";
      case errc::unexpected_null: return "reply is null";
      case errc::out_of_range: return "reply number out of range";
      case errc::unexpected_size: return "reply has an unexpected number of elements";
    }
    return "unknown redring.resp error";
  }
};

}  // namespace

const std::error_category& resp_category() noexcept {
  static const category instance;
  return instance;
}

std::string parse_error::message() const {
  return fmt::format("{} at byte {}", make_error_code(code).message(), offset);
}

std::string_view error_code_word(std::string_view text) noexcept {
  return text.substr(0, text.find(' '));
}

std::string_view to_string(type t) noexcept {
  switch (t) {
    case type::simple_string: return "simple_string";
    case type::simple_error: return "simple_error";
    case type::integer: return "integer";
    case type::blob_string: return "blob_string";
    case type::array: return "array";
    case type::null: return "null";
    case type::double_number: return "double";
    case type::boolean: return "boolean";
    case type::blob_error: return "blob_error";
    case type::verbatim_string: return "verbatim_string";
    case type::big_number: return "big_number";
    case type::map: return "map";
    case type::set: return "set";
    case type::attribute: return "attribute";
    case type::push: return "push";
    case type::stream_part: return "stream_part";
    case type::end: return "end";
  }
  return "unknown";
}

}  // namespace redring::resp
