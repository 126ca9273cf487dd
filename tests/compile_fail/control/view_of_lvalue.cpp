// Control for compile_fail/view_of_temporary.cpp: the same conversion on an lvalue compiles.
#include "resp/convert.hpp"

int main() {
  const redring::resp::value v;
  auto r = redring::resp::convert<std::string_view>(v);
  return r ? 0 : 1;
}
