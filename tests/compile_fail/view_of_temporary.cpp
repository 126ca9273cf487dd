// Must not compile: convert<std::string_view> on a temporary value would return a dangling view.
#include "resp/convert.hpp"

int main() {
  auto r = redring::resp::convert<std::string_view>(redring::resp::value{});
  return r ? 0 : 1;
}
