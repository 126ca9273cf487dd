// SPDX-License-Identifier: MIT
// result<T>: a value or an error, for the typed adapters and the client's replies.
#pragma once

#include "resp/error.hpp"

#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

namespace redring::resp {

/// Why an operation produced no value: an error code, and a message. For a server error reply
/// (`code == errc::server_error`) the message is the server's text, e.g. "WRONGTYPE Operation
/// against a key holding the wrong kind of value".
struct error {
  /// What went wrong: a `resp::errc` (`server_error` for an error reply), a `client::errc`, a
  /// `patterns::errc`, or another category's code (the rate limiter's `std::errc::invalid_argument`).
  std::error_code code;
  /// The server's text for `server_error`; otherwise details, or empty (then `code.message()` says
  /// it all: see `what()`).
  std::string message;

  /// For server errors: the code word ("MOVED", "ASK", "NOSCRIPT", "WRONGTYPE", "ERR"). Views `message`.
  [[nodiscard]] std::string_view code_word() const noexcept {
    return code == errc::server_error ? error_code_word(message) : std::string_view();
  }
  /// "<code message>: <message>", or just the code's message when there is no text.
  [[nodiscard]] std::string what() const {
    return message.empty() ? code.message() : code.message() + ": " + message;
  }
  friend bool operator==(const error&, const error&) = default;
};

/// Either a T or an `error`. Check with `if (r)` or `r.has_value()`, then use `*r` or `r.error()`.
template <class T>
class [[nodiscard]] result {
 public:
  /// A result holding a value.
  result(T v) : state_(std::in_place_index<0>, std::move(v)) {}  // NOLINT: implicit by design
  /// A result holding a T constructed from `args` where it will stay (no move of a finished T).
  template <class... A>
  explicit result(std::in_place_t, A&&... args) : state_(std::in_place_index<0>, std::forward<A>(args)...) {}
  /// A result holding an error.
  result(resp::error e) : state_(std::in_place_index<1>, std::move(e)) {}  // NOLINT: implicit by design

  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value. Precondition: `has_value()`.
  T& operator*() & noexcept { return *std::get_if<0>(&state_); }
  const T& operator*() const& noexcept { return *std::get_if<0>(&state_); }
  T&& operator*() && noexcept { return std::move(*std::get_if<0>(&state_)); }
  T* operator->() noexcept { return std::get_if<0>(&state_); }
  const T* operator->() const noexcept { return std::get_if<0>(&state_); }
  /// The value, or `fallback` if this holds an error.
  T value_or(T fallback) const& { return has_value() ? **this : std::move(fallback); }

  /// The error. Precondition: `!has_value()`.
  [[nodiscard]] const resp::error& error() const& noexcept { return *std::get_if<1>(&state_); }

 private:
  std::variant<T, resp::error> state_;
};

}  // namespace redring::resp
