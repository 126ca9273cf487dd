// SPDX-License-Identifier: MIT
// `detached`: the smallest coroutine type, for fire-and-forget coroutines that co_await commands.
#pragma once

#include <coroutine>
#include <exception>

namespace redring::client {

/// Return type of a coroutine that starts at once and frees itself when it ends. An exception that
/// escapes it terminates the program (commands report errors as values, so none should).
struct detached {
  struct promise_type {
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

}  // namespace redring::client
