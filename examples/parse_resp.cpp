// SPDX-License-Identifier: MIT
// The RESP layer alone: parse bytes into nodes (zero copy), into values, into C++ types; encode.
#include "resp/convert.hpp"
#include "resp/json.hpp"
#include "resp/reader.hpp"
#include "resp/value.hpp"
#include "resp/writer.hpp"

#include <array>
#include <cstdio>
#include <map>

using namespace redring;

int main() {
  // Encode a command; payloads of 16 KiB or more would be referenced by iovec, not copied.
  resp::writer w;
  w.command("HSET", "user:1", "name", "ada", "visits", 3);
  std::printf("encoded %zu bytes\n", w.size());

  // A reply arriving in two pieces: the reader resumes where it stopped.
  const std::string wire = "%2\r\n$4\r\nname\r\n$3\r\nada\r\n$6\r\nvisits\r\n:3\r\n";
  resp::reader reader;
  resp::value_builder builder;
  std::array<resp::node, 16> nodes;
  std::string buffer;
  std::size_t pos = 0;
  for (const std::string_view piece : {std::string_view(wire).substr(0, 20), std::string_view(wire).substr(20)}) {
    buffer.append(piece);
    for (;;) {
      const auto r = reader.read(std::string_view(buffer).substr(pos), nodes);
      for (std::size_t i = 0; i < r.nodes; ++i) {
        if (!builder.add(nodes[i])) continue;
        const resp::value v = builder.take();
        std::string json;
        resp::append_json(json, v);
        std::printf("%s\n", json.c_str());
        const auto m = resp::convert<std::map<std::string, std::string>>(v);
        std::printf("name=%s visits=%s\n", m->at("name").c_str(), m->at("visits").c_str());
      }
      pos += r.consumed;
      if (r.state == resp::status::error) {
        std::printf("error: %s\n", r.error.message().c_str());
        return 1;
      }
      if (r.state == resp::status::need_more) break;
    }
  }
  return 0;
}
