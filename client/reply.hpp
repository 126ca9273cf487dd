// SPDX-License-Identifier: MIT
// Reply sinks: turn the nodes of one reply into result<T> as they arrive. Scalars are captured
// without building a tree (no allocation for integers, statuses and short strings); aggregates go
// through resp::value_builder and resp::convert.
#pragma once

#include "resp/convert.hpp"
#include "resp/node.hpp"
#include "resp/result.hpp"
#include "resp/value.hpp"

#include <concepts>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace redring::client {

using resp::ignore_t;
using resp::result;

namespace detail {
template <class T> struct unwrap_optional { using type = T; };
template <class T> struct unwrap_optional<std::optional<T>> { using type = T; };

// True if T holds a view (std::string_view), directly or in an optional, container, pair or tuple:
// such a reply type would point into the reply sink, which is gone once the reply is handed over.
template <class T> struct holds_view : std::false_type {};
template <> struct holds_view<std::string_view> : std::true_type {};
template <class T> struct holds_view<std::optional<T>> : holds_view<T> {};
template <class T, class A> struct holds_view<std::vector<T, A>> : holds_view<T> {};
template <class A, class B> struct holds_view<std::pair<A, B>> : std::bool_constant<holds_view<A>::value || holds_view<B>::value> {};
template <class... Ts> struct holds_view<std::tuple<Ts...>> : std::bool_constant<(holds_view<Ts>::value || ...)> {};
template <class K, class V, class C, class A>
struct holds_view<std::map<K, V, C, A>> : std::bool_constant<holds_view<K>::value || holds_view<V>::value> {};
template <class K, class V, class H, class E, class A>
struct holds_view<std::unordered_map<K, V, H, E, A>> : std::bool_constant<holds_view<K>::value || holds_view<V>::value> {};
}  // namespace detail

/// True for reply types that one top-level node decides: numbers, bool, strings, ignore, and
/// optionals of those.
template <class T>
concept scalar_reply = std::integral<typename detail::unwrap_optional<T>::type> ||
                       std::floating_point<typename detail::unwrap_optional<T>::type> ||
                       std::same_as<typename detail::unwrap_optional<T>::type, std::string> ||
                       std::same_as<T, ignore_t>;

/// Collects one reply for conversion to T. Feed every node with `on_node`, then call `take`.
/// T must own its data: a `std::string_view` (or a container of them) would view the sink's copy of
/// the reply, which dies with the awaitable or callback that holds it, so it does not compile.
template <class T>
class reply_sink {
  static_assert(!detail::holds_view<T>::value,
                "a command's reply lives only until it is handed over: ask for std::string (or resp::value), not a view");

 public:
  void on_node(const resp::node& n) {
    if (builder_.add(n)) value_ = builder_.take();
  }
  [[nodiscard]] result<T> take() { return resp::convert<T>(value_); }

 private:
  resp::value_builder builder_;
  resp::value value_;
};

/// The scalar case: keeps the first depth-0 node that is not an attribute. Attribute contents are
/// always deeper than the value they annotate, so they are skipped without counting.
template <class T>
  requires(scalar_reply<T> && !std::same_as<T, std::string> && !std::same_as<T, std::optional<std::string>> &&
           !std::same_as<T, ignore_t> && !std::same_as<T, std::optional<ignore_t>>)
class reply_sink<T> {
 public:
  void on_node(const resp::node& n) {
    if (n.depth != 0 || n.data_type == resp::type::attribute || seen_) return;
    seen_ = true;
    value_.data_type = n.data_type;
    value_.null_origin = n.null_origin;
    value_.integer = n.integer;
    if constexpr (std::same_as<T, ignore_t>) {
      if (resp::is_error(n.data_type)) value_.text.assign(n.value);
    } else {
      value_.text.assign(n.value);
    }
  }
  [[nodiscard]] result<T> take() { return resp::convert<T>(value_); }

 private:
  resp::value value_;
  bool seen_ = false;
};

/// Replies whose value is not wanted (`ignore_t`; `std::optional<ignore_t>` tells null apart): only
/// an error's text is kept, so nothing is built or copied for a success.
template <class T>
  requires std::same_as<T, ignore_t> || std::same_as<T, std::optional<ignore_t>>
class reply_sink<T> {
 public:
  void on_node(const resp::node& n) {
    if (n.depth != 0 || n.data_type == resp::type::attribute || seen_) return;
    seen_ = true;
    null_ = n.data_type == resp::type::null;
    if (resp::is_error(n.data_type)) error_.emplace(n.value);
  }
  [[nodiscard]] result<T> take() {
    if (error_) return resp::error{resp::errc::server_error, std::move(*error_)};
    if constexpr (std::same_as<T, std::optional<ignore_t>>) {
      if (null_) return T();
    }
    return T(ignore_t{});
  }

 private:
  std::optional<std::string> error_;
  bool seen_ = false;
  bool null_ = false;
};

/// Strings (GET, HGET ...): the payload goes straight into the result, with no intermediate value.
/// Copies once; no allocation for payloads within the small-string buffer.
template <class T>
  requires std::same_as<T, std::string> || std::same_as<T, std::optional<std::string>>
class reply_sink<T> {
 public:
  void on_node(const resp::node& n) {
    if (n.depth != 0 || n.data_type == resp::type::attribute || state_ != state::empty) return;
    switch (n.data_type) {
      case resp::type::simple_string:
      case resp::type::blob_string:
      case resp::type::big_number:
      case resp::type::double_number:
      case resp::type::integer:
        text_.emplace(n.value);
        state_ = state::text;
        return;
      case resp::type::verbatim_string:
        text_.emplace(n.verbatim_text());
        state_ = state::text;
        return;
      case resp::type::null: state_ = state::null; return;
      case resp::type::simple_error:
      case resp::type::blob_error:
        text_.emplace(n.value);
        state_ = state::error;
        return;
      default:
        wrong_ = n.data_type;
        state_ = state::wrong_type;
        return;
    }
  }
  [[nodiscard]] result<T> take() {
    switch (state_) {
      case state::text:
        // Built in the result: the string moves once, from the sink.
        if constexpr (std::same_as<T, std::string>) {
          return result<T>(std::in_place, std::move(*text_));
        } else {
          return result<T>(std::in_place, std::move(text_));
        }
      case state::null:
        if constexpr (std::same_as<T, std::string>) {
          return resp::error{resp::errc::unexpected_null, "reply is null"};
        } else {
          return T();
        }
      case state::error: return resp::error{resp::errc::server_error, std::move(*text_)};
      case state::wrong_type:
      case state::empty: break;
    }
    return resp::error{resp::errc::unexpected_type,
                       std::string("cannot convert ") + std::string(resp::to_string(wrong_)) + " to string"};
  }

 private:
  enum class state : std::uint8_t { empty, text, null, error, wrong_type };
  std::optional<std::string> text_;
  state state_ = state::empty;
  resp::type wrong_ = resp::type::null;
};

}  // namespace redring::client
