// SPDX-License-Identifier: MIT
// fuzz_topology: what a cluster client learns from a server it cannot trust. Arbitrary bytes are
// parsed into replies; each reply is read as CLUSTER SHARDS and CLUSTER SLOTS (client/slot_map) and
// as COMMAND (client/command_keys), and every command the table knows is asked for the keys of calls
// built from the input's last bytes.
//
// Input layout: byte 0 = how many bytes at the end are call arguments (0..255, words split on
// spaces); the rest before them is RESP.
//
// Invariants: a topology accepted serves each slot at most once, from a shard whose ranges hold it,
// with valid ports and its primary first; the count of unassigned slots agrees; `find` names only
// arguments of the call (1 <= index < argc), in order for one spec, and `single_key_index` only an
// index `find` would give. Work is bounded: a hostile reply cannot make these quadratic (libFuzzer's
// -timeout catches a slow input).
#include "fuzz_common.hpp"

#include "client/command_keys.hpp"
#include "client/slot_map.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace client = redring::client;
namespace resp = redring::resp;

void check_topology(const client::slot_map& m) {
  std::array<int, client::slot_count> owners{};
  for (const client::cluster_shard& s : m.shards()) {
    FUZZ_CHECK(!s.ranges.empty());
    for (const auto& [first, last] : s.ranges) {
      FUZZ_CHECK(first <= last && last < client::slot_count);
      for (unsigned slot = first; slot <= last; ++slot) ++owners[slot];
    }
    bool replicas = false;
    for (const client::cluster_node& n : s.nodes) {
      FUZZ_CHECK(n.port != 0);
      FUZZ_CHECK(!(replicas && n.primary));  // primaries first
      replicas = replicas || !n.primary;
    }
  }
  std::size_t unassigned = 0;
  for (unsigned slot = 0; slot < client::slot_count; ++slot) {
    FUZZ_CHECK(owners[slot] <= 1);
    const client::cluster_shard* s = m.shard_of(static_cast<std::uint16_t>(slot));
    FUZZ_CHECK((s == nullptr) == (owners[slot] == 0));
    if (s == nullptr) {
      ++unassigned;
      continue;
    }
    bool held = false;
    for (const auto& [first, last] : s->ranges) held = held || (first <= slot && slot <= last);
    FUZZ_CHECK(held);
    const client::cluster_node* p = m.primary_of(static_cast<std::uint16_t>(slot));
    FUZZ_CHECK(p == nullptr || (p == &s->nodes.front() && p->primary));
  }
  FUZZ_CHECK(unassigned == m.unassigned_slots());
}

// The names a COMMAND reply lists (entries and subcommands), as a caller would type them.
void names_of(const resp::value& reply, std::vector<std::vector<std::string>>& out, int depth = 0) {
  if (depth > 2) return;
  for (const resp::value& e : reply.elements) {
    if (e.elements.empty()) continue;
    const std::string& name = e.elements[0].text;
    if (name.empty()) continue;
    const auto bar = name.find('|');
    if (bar == std::string::npos) out.push_back({name});
    else out.push_back({name.substr(0, bar), name.substr(bar + 1)});
    if (e.elements.size() >= 10) names_of(e.elements[9], out, depth + 1);
    if (out.size() > 64) return;
  }
}

void check_keys(const client::command_keys& table, const resp::value& reply, std::string_view words) {
  std::vector<std::vector<std::string>> names;
  names_of(reply, names);
  std::vector<std::string_view> extra;
  for (std::size_t at = 0; at <= words.size();) {
    const auto space = words.find(' ', at);
    const auto end = space == std::string_view::npos ? words.size() : space;
    extra.push_back(words.substr(at, end - at));
    at = end + 1;
  }
  std::vector<std::size_t> out;
  for (const auto& name : names) {
    for (std::size_t n = 0; n <= extra.size(); ++n) {  // every prefix of the words as arguments
      std::vector<std::string_view> args(name.begin(), name.end());
      args.insert(args.end(), extra.begin(), extra.begin() + static_cast<std::ptrdiff_t>(n));
      out.clear();
      const auto result = table.find(args, out);
      FUZZ_CHECK(result != client::command_keys::outcome::unknown_command || out.empty());
      for (const std::size_t k : out) FUZZ_CHECK(k >= 1 && k < args.size());
      const client::command_keys::command* c = table.lookup(args);
      FUZZ_CHECK((c == nullptr) == (result == client::command_keys::outcome::unknown_command));
      if (c == nullptr) continue;
      const int single = client::command_keys::single_key_index(*c);
      if (single > 0 && static_cast<std::size_t>(single) < args.size()) {
        FUZZ_CHECK(result == client::command_keys::outcome::found && out.size() == 1 &&
                   out[0] == static_cast<std::size_t>(single));
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace resp = redring::resp;
  if (size == 0) return 0;
  const std::size_t tail = std::min<std::size_t>(data[0], size - 1);
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1 - tail);
  const std::string_view words(reinterpret_cast<const char*>(data) + size - tail, tail);
  static constexpr resp::limits lim{1 << 16, 1 << 15, 16, 1 << 12};
  resp::reader reader(lim);
  resp::value_builder builder;
  std::array<resp::node, 64> nodes;
  std::size_t pos = 0;
  for (int replies = 0; replies < 8;) {
    const auto r = reader.read(input.substr(pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      if (!builder.add(nodes[i])) continue;
      const resp::value reply = builder.take();
      ++replies;
      if (auto m = client::slot_map::from_shards(reply)) check_topology(*m);
      if (auto m = client::slot_map::from_slots(reply)) check_topology(*m);
      if (auto table = client::command_keys::from_reply(reply)) check_keys(*table, reply, words);
    }
    pos += r.consumed;
    if (r.state != resp::status::ok) break;
  }
  return 0;
}
