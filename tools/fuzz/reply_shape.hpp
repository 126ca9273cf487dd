// SPDX-License-Identifier: MIT
// The reply types a server documents for its commands: from COMMAND DOCS `reply_schema` (Redis 7.2
// and later), else a small built-in table of common commands. Server mode checks each reply of a
// well-formed command against them; an error reply is always acceptable.
#pragma once

#include "resp/type.hpp"
#include "resp/value.hpp"
#include "tools/fuzz/command_table.hpp"
#include "tools/fuzz/fuzz_case.hpp"

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace redring::fuzz {

/// A set of RESP types.
class type_set {
 public:
  constexpr type_set() = default;
  constexpr type_set(std::initializer_list<resp::type> types) {
    for (const resp::type t : types) bits_ |= bit(t);
  }
  [[nodiscard]] constexpr bool contains(resp::type t) const noexcept { return (bits_ & bit(t)) != 0; }
  [[nodiscard]] constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr type_set& operator|=(type_set o) noexcept {
    bits_ |= o.bits_;
    return *this;
  }
  [[nodiscard]] friend constexpr type_set operator|(type_set a, type_set b) noexcept { return a |= b; }
  friend constexpr bool operator==(type_set, type_set) = default;
  /// "integer|null": the members' names, "nothing" for the empty set.
  [[nodiscard]] std::string describe() const;

 private:
  // One bit per type, in the order of `all`.
  static constexpr resp::type all[] = {
      resp::type::simple_string, resp::type::simple_error, resp::type::integer,   resp::type::blob_string,
      resp::type::array,         resp::type::null,         resp::type::double_number, resp::type::boolean,
      resp::type::blob_error,    resp::type::verbatim_string, resp::type::big_number, resp::type::map,
      resp::type::set,           resp::type::attribute,    resp::type::push,      resp::type::stream_part,
      resp::type::end};
  static constexpr std::uint32_t bit(resp::type t) noexcept {
    for (std::uint32_t i = 0; i < std::size(all); ++i) {
      if (all[i] == t) return std::uint32_t{1} << i;
    }
    return 0;
  }
  std::uint32_t bits_ = 0;
};

/// The types a documented reply may take in RESP2 or RESP3 (the connection may have sent HELLO 3).
/// `integer` is exact; the others also admit their other-protocol forms.
namespace shape {
inline constexpr type_set integer{resp::type::integer};
inline constexpr type_set simple{resp::type::simple_string};
/// A bulk string; RESP3 servers send some as verbatim strings (INFO, CLIENT INFO).
inline constexpr type_set bulk{resp::type::blob_string, resp::type::verbatim_string};
/// RESP2 `$-1` and `*-1` and RESP3 `_` (the reader reports all three as null).
inline constexpr type_set null{resp::type::null};
/// A double: a bulk string in RESP2.
inline constexpr type_set number{resp::type::double_number, resp::type::blob_string};
/// Any aggregate: RESP3 turns arrays of pairs into maps and some arrays into sets.
inline constexpr type_set aggregate{resp::type::array, resp::type::set, resp::type::map};
/// RESP3 booleans are RESP2 integers.
inline constexpr type_set boolean{resp::type::boolean, resp::type::integer};
}  // namespace shape

/// True if `head` is an acceptable reply to a command documented as `expected`: one of its types,
/// or an error (a command may always fail).
[[nodiscard]] constexpr bool acceptable(type_set expected, resp::type head) noexcept {
  return resp::is_error(head) || expected.contains(head);
}

/// The types a COMMAND DOCS `reply_schema` (a JSON schema as a RESP map) allows, or nullopt if it
/// says nothing checkable (no `type`, `const`, `oneOf` or `anyOf`; or a branch without one).
[[nodiscard]] std::optional<type_set> types_of_schema(const resp::value& schema);

/// Expected reply types by command name (lower case, "a|b" for subcommands).
class reply_shapes {
 public:
  /// The built-in table only.
  reply_shapes();
  /// The built-in table, overridden by every `reply_schema` in `docs` (a COMMAND DOCS reply, RESP2
  /// or RESP3 form; an empty value for servers without COMMAND DOCS). `table` resolves subcommands.
  reply_shapes(const command_table& table, const resp::value& docs);

  /// The types the reply to `f` may take; nullopt for raw frames and commands not known here
  /// (scripts, modules, commands whose reply depends on their arguments in ways not modelled).
  [[nodiscard]] std::optional<type_set> expected(const frame& f) const;
  /// The same by name.
  [[nodiscard]] std::optional<type_set> expected(std::string_view name) const;
  /// Commands with an expected shape.
  [[nodiscard]] std::size_t size() const noexcept { return by_name_.size(); }
  /// Commands whose shape came from a reply_schema.
  [[nodiscard]] std::size_t from_schema() const noexcept { return from_schema_; }
  /// Every name with its types.
  [[nodiscard]] const std::map<std::string, type_set, std::less<>>& all() const noexcept { return by_name_; }
  /// Sets (or replaces) the shape of `name`.
  void set(std::string name, type_set types) { by_name_[std::move(name)] = types; }

 private:
  const command_table* table_ = nullptr;
  std::map<std::string, type_set, std::less<>> by_name_;
  std::size_t from_schema_ = 0;
};

}  // namespace redring::fuzz
