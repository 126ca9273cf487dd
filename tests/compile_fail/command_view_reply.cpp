// Must not compile: command<std::string_view> would return a view of the awaitable's copy of the
// reply, which is destroyed when the co_await ends (control: control/command_string_reply.cpp).
#include "client/client.hpp"
#include "client/detached.hpp"

redring::client::detached get(redring::client::client& c) {
  auto r = co_await c.command<std::string_view>("GET", "k");
  (void)r;
}

int main() {}
