// The control of compile_fail/command_view_reply.cpp: the same with std::string compiles.
#include "client/client.hpp"
#include "client/detached.hpp"

redring::client::detached get(redring::client::client& c) {
  auto r = co_await c.command<std::string>("GET", "k");
  (void)r;
}

int main() {}
