// SPDX-License-Identifier: MIT
// Typed adapters: a `value` to int64, double, bool, strings, optional, vector, map, pair, tuple.
#pragma once

#include "resp/error.hpp"
#include "resp/number.hpp"
#include "resp/result.hpp"
#include "resp/value.hpp"

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdlib>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace redring::resp {

/// Accepts any non-error reply and keeps nothing: `convert<ignore_t>(v)`.
struct ignore_t {
  friend bool operator==(ignore_t, ignore_t) = default;
};

namespace detail {

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_pair : std::false_type {};
template <class A, class B> struct is_pair<std::pair<A, B>> : std::true_type {};
template <class T> struct is_tuple : std::false_type {};
template <class... Ts> struct is_tuple<std::tuple<Ts...>> : std::true_type {};
template <class T> struct is_map : std::false_type {};
template <class K, class V, class C, class A> struct is_map<std::map<K, V, C, A>> : std::true_type {};
template <class K, class V, class H, class E, class A> struct is_map<std::unordered_map<K, V, H, E, A>> : std::true_type {};
// std::vector<std::pair<K, V>>: a map that keeps the reply's order.
template <class T> struct is_pair_vector : std::false_type {};
template <class A, class B, class Al> struct is_pair_vector<std::vector<std::pair<A, B>, Al>> : std::true_type {};

error type_error(const value& v, std::string_view wanted);
error error_of(const value& v);
bool text_of(const value& v, std::string_view& out);  // string-like payload; verbatim without its format

}  // namespace detail

/// Converts a reply to T. Errors: the reply's own error (`errc::server_error` with the server's
/// text, e.g. "NOSCRIPT ..."); `unexpected_null` for a null unless T is optional; `unexpected_type`
/// (naming both types) on a mismatch; `out_of_range` when a number does not fit T; `unexpected_size`
/// when a tuple's arity differs. Strings convert to numbers when their text is a valid number (RESP2
/// sends `ZSCORE` as a bulk string), integers to doubles and to bool (non-zero is true); a double
/// reply never converts to an integer, however it is spelled. A number beyond an integer type, or
/// an overflowing text such as "1e400" for a double ("inf" itself converts), is `out_of_range`.
///
/// `T = value` copies the reply as it is, error replies included.
/// `T = std::string_view` views `v.text` and lives as long as `v`; it does not bind to a temporary.
template <class T>
result<T> convert(const value& v);

/// Deleted: a view into a temporary value would dangle. Convert to `std::string` instead.
template <class T>
  requires std::same_as<T, std::string_view>
result<T> convert(const value&& v) = delete;

template <class T>
result<T> convert(const value& v) {
  if constexpr (detail::is_optional<T>::value) {
    if (v.is_null()) return T{};
    auto inner = convert<typename T::value_type>(v);
    if (!inner) return inner.error();
    return T{std::move(*inner)};
  } else if constexpr (std::same_as<T, value>) {
    return v;  // error replies included: the caller asked for the reply as it is
  } else {
    if (v.is_error()) return detail::error_of(v);
    if constexpr (std::same_as<T, ignore_t>) {
      return ignore_t{};
    } else {
      if (v.is_null()) return error{errc::unexpected_null, "reply is null"};
      if constexpr (std::same_as<T, bool>) {
        if (v.data_type == type::boolean || v.data_type == type::integer) return v.integer != 0;
        return detail::type_error(v, "bool");
      } else if constexpr (std::integral<T>) {
        std::int64_t n = 0;
        std::string_view text;
        if (v.data_type == type::integer) {
          n = v.integer;
        } else if (v.data_type != type::double_number && detail::text_of(v, text)) {
          // Text (RESP2 sends numbers as bulk strings); a double reply is not an integer, however
          // it is spelled (`,5` as much as `,1e3`).
          const int64_result r = parse_int64(text);
          if (r.code == errc::integer_overflow) {
            if constexpr (std::is_unsigned_v<T>) {
              // Above INT64_MAX: an unsigned target may still hold it.
              std::uint64_t u = 0;
              const std::string_view digits = text.starts_with('+') ? text.substr(1) : text;  // from_chars takes no '+'
              const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), u);
              if (ec == std::errc{} && end == digits.data() + digits.size() && u <= std::numeric_limits<T>::max()) {
                return static_cast<T>(u);
              }
            }
            return error{errc::out_of_range, "reply integer does not fit the requested type"};
          }
          if (r.code != errc{}) return error{errc::unexpected_type, "reply text is not an integer"};
          n = r.value;
        } else {
          return detail::type_error(v, "integer");
        }
        if constexpr (std::is_signed_v<T>) {
          if (n < std::numeric_limits<T>::min() || n > std::numeric_limits<T>::max()) {
            return error{errc::out_of_range, "integer does not fit the requested type"};
          }
        } else {
          if (n < 0 || static_cast<std::uint64_t>(n) > std::numeric_limits<T>::max()) {
            return error{errc::out_of_range, "integer does not fit the requested type"};
          }
        }
        return static_cast<T>(n);
      } else if constexpr (std::floating_point<T>) {
        if (v.data_type == type::integer) return static_cast<T>(v.integer);
        std::string_view text;
        double d = 0;
        if (detail::text_of(v, text) && parse_double(text, d)) {
          // inf only when the text says so: "1e400" overflows a double, ",1e300" a float.
          const bool said_infinite = std::isinf(d) && text.find_first_of("iI") != std::string_view::npos;
          T t = static_cast<T>(d);
          if constexpr (std::same_as<T, long double>) {
            // Wider than a double: "1e400" fits. The text passed parse_double's grammar.
            if (std::isinf(t) && !said_infinite) t = std::strtold(std::string(text).c_str(), nullptr);
          }
          if (std::isinf(t) && !said_infinite) return error{errc::out_of_range, "reply number does not fit the requested type"};
          return t;
        }
        return detail::type_error(v, "double");
      } else if constexpr (std::same_as<T, std::string> || std::same_as<T, std::string_view>) {
        std::string_view text;
        if (detail::text_of(v, text)) return T(text);
        return detail::type_error(v, "string");
      } else if constexpr (detail::is_map<T>::value || detail::is_pair_vector<T>::value) {
        // A map, or RESP2's flat key, value, ... array (HGETALL).
        const bool flat = v.data_type == type::array || v.data_type == type::set || v.data_type == type::push;
        if (v.data_type != type::map && !(flat && v.elements.size() % 2 == 0)) return detail::type_error(v, "map");
        T out;
        for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) {
          using key_type = std::remove_const_t<typename T::value_type::first_type>;
          using mapped_type = typename T::value_type::second_type;
          auto key = convert<key_type>(v.elements[i]);
          if (!key) return key.error();
          auto mapped = convert<mapped_type>(v.elements[i + 1]);
          if (!mapped) return mapped.error();
          if constexpr (detail::is_map<T>::value) {
            out.insert_or_assign(std::move(*key), std::move(*mapped));
          } else {
            out.emplace_back(std::move(*key), std::move(*mapped));
          }
        }
        return out;
      } else if constexpr (detail::is_vector<T>::value) {
        if (!is_aggregate(v.data_type) || v.data_type == type::attribute) return detail::type_error(v, "array");
        T out;
        out.reserve(v.elements.size());
        for (const value& e : v.elements) {
          auto element = convert<typename T::value_type>(e);
          if (!element) return element.error();
          out.push_back(std::move(*element));
        }
        return out;
      } else if constexpr (detail::is_pair<T>::value || detail::is_tuple<T>::value) {
        constexpr std::size_t arity = std::tuple_size_v<T>;
        if (!is_aggregate(v.data_type) || v.data_type == type::attribute) return detail::type_error(v, "array");
        if (v.elements.size() != arity) return error{errc::unexpected_size, "reply has the wrong number of elements"};
        T out;
        std::optional<error> failure;
        [&]<std::size_t... I>(std::index_sequence<I...>) {
          (([&] {
             if (failure) return;
             auto element = convert<std::tuple_element_t<I, T>>(v.elements[I]);
             if (element) std::get<I>(out) = std::move(*element);
             else failure = element.error();
           }()),
           ...);
        }(std::make_index_sequence<arity>{});
        if (failure) return *failure;
        return out;
      } else {
        static_assert(sizeof(T) == 0, "resp::convert: unsupported target type");
      }
    }
  }
}

}  // namespace redring::resp
