// SPDX-License-Identifier: MIT
#include "tools/fuzz/command_table.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <map>

namespace redring::fuzz {
namespace {

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// A map reply (RESP3 map, or RESP2 flat array of key, value, ...) as a lookup by key.
std::map<std::string, const resp::value*> pairs(const resp::value& v) {
  std::map<std::string, const resp::value*> out;
  for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) out[lower(v.elements[i].text)] = &v.elements[i + 1];
  return out;
}

arg_spec::kind kind_of(std::string_view t) {
  if (t == "integer") return arg_spec::kind::integer;
  if (t == "double") return arg_spec::kind::double_number;
  if (t == "key") return arg_spec::kind::key;
  if (t == "pattern") return arg_spec::kind::pattern;
  if (t == "unix-time") return arg_spec::kind::unix_time;
  if (t == "pure-token") return arg_spec::kind::pure_token;
  if (t == "oneof") return arg_spec::kind::oneof;
  if (t == "block") return arg_spec::kind::block;
  return arg_spec::kind::string;
}

std::vector<arg_spec> parse_args(const resp::value& list) {
  std::vector<arg_spec> out;
  for (const resp::value& a : list.elements) {
    const auto m = pairs(a);
    arg_spec s;
    if (auto it = m.find("name"); it != m.end()) s.name = it->second->text;
    if (auto it = m.find("type"); it != m.end()) s.type = kind_of(it->second->text);
    if (auto it = m.find("token"); it != m.end()) s.token = it->second->text;
    if (auto it = m.find("flags"); it != m.end()) {
      for (const auto& f : it->second->elements) {
        s.optional = s.optional || f.text == "optional";
        s.multiple = s.multiple || f.text == "multiple";
        s.multiple_token = s.multiple_token || f.text == "multiple_token";
      }
    }
    if (auto it = m.find("arguments"); it != m.end()) s.children = parse_args(*it->second);
    out.push_back(std::move(s));
  }
  return out;
}

void add_info(command_table& t, const resp::value& entry, const std::map<std::string, const resp::value*>& docs) {
  const auto& e = entry.elements;
  if (e.size() < 6) return;
  command_spec c;
  c.name = lower(e[0].text);
  const std::size_t bar = c.name.find('|');
  if (bar == std::string::npos) {
    c.words = {upper(c.name)};
  } else {
    c.words = {upper(c.name.substr(0, bar)), upper(c.name.substr(bar + 1))};
  }
  c.arity = static_cast<int>(e[1].integer);
  for (const auto& f : e[2].elements) c.flags.push_back(lower(f.text));
  c.first_key = static_cast<int>(e[3].integer);
  c.last_key = static_cast<int>(e[4].integer);
  c.key_step = static_cast<int>(e[5].integer);
  if (e.size() > 6) {
    for (const auto& cat : e[6].elements) c.categories.push_back(lower(cat.text));
  }
  if (auto it = docs.find(c.name); it != docs.end()) {
    c.has_docs = true;
    const auto d = pairs(*it->second);
    if (auto a = d.find("arguments"); a != d.end()) c.args = parse_args(*a->second);
  }
  c.has_subcommands = e.size() > 9 && !e[9].elements.empty();
  classify(c);
  t.commands.push_back(std::move(c));
  if (e.size() > 9) {
    for (const auto& sub : e[9].elements) add_info(t, sub, docs);
  }
}

// Collects every docs entry, subcommands included, by name.
void collect_docs(const resp::value& v, std::map<std::string, const resp::value*>& out) {
  for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    out[lower(v.elements[i].text)] = &v.elements[i + 1];
    const auto d = pairs(v.elements[i + 1]);
    if (auto s = d.find("subcommands"); s != d.end()) collect_docs(*s->second, out);
  }
}

}  // namespace

bool command_spec::has_flag(std::string_view f) const noexcept {
  return std::find(flags.begin(), flags.end(), f) != flags.end();
}

void classify(command_spec& c) {
  static constexpr std::array<std::string_view, 26> never = {
      "shutdown",     "monitor",      "sync",         "psync",       "quit",        "debug",
      "failover",     "replicaof",    "slaveof",      "migrate",     "client|kill", "client|pause",
      "client|reply", "subscribe",    "psubscribe",   "ssubscribe",  "unsubscribe", "punsubscribe",
      "sunsubscribe", "cluster|meet", "cluster|failover", "cluster|replicate", "client|unpause",
      // Turns the connection into a Lua debugger session (SYNC also blocks the whole server).
      "script|debug",
      // Not dangerous, but seconds of CPU each: they would dominate a run.
      "pfselftest", "save"};
  static constexpr std::array<std::string_view, 17> destructive = {
      "flushall",       "flushdb",         "script|flush", "function|flush", "function|delete", "function|restore",
      "swapdb",         "client|no-evict", "config|set",   "acl|setuser",    "acl|deluser",     "module|load",
      // They reach other clients of the server: kill the script one of them runs, wake one that
      // blocks, deliver messages to real subscribers.
      "script|kill",    "function|kill",   "client|unblock", "publish",      "spublish"};
  c.excluded = std::find(never.begin(), never.end(), c.name) != never.end();
  c.dangerous = std::find(destructive.begin(), destructive.end(), c.name) != destructive.end() ||
                std::find(c.categories.begin(), c.categories.end(), "@admin") != c.categories.end() ||
                std::find(c.categories.begin(), c.categories.end(), "@dangerous") != c.categories.end();
}

command_table command_table::from_replies(const resp::value& info, const resp::value& docs) {
  std::map<std::string, const resp::value*> by_name;
  collect_docs(docs, by_name);
  command_table t;
  for (const resp::value& entry : info.elements) add_info(t, entry, by_name);
  std::sort(t.commands.begin(), t.commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return t;
}

const command_spec* command_table::find(std::string_view name) const noexcept {
  const auto it = std::lower_bound(commands.begin(), commands.end(), name,
                                   [](const command_spec& c, std::string_view n) { return c.name < n; });
  return it != commands.end() && it->name == name ? &*it : nullptr;
}

namespace {

// The commands a raw frame's bytes would start, each as its first two words (name, then the word
// after it, which may be a subcommand): the first element after each `*N` header, and the first
// word of each inline line. Array elements after the first are arguments, not commands.
std::vector<std::pair<std::string, std::string>> raw_commands(std::string_view bytes) {
  std::vector<std::string_view> lines;
  for (std::size_t at = 0; at <= bytes.size();) {
    std::size_t lf = bytes.find('\n', at);
    if (lf == std::string_view::npos) lf = bytes.size();
    std::string_view line = bytes.substr(at, lf - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    at = lf + 1;
  }
  auto words_of = [](std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '"' || line[i] == '\'' || line[i] == '\0')) ++i;
      const std::size_t from = i;
      while (i < line.size() && !(line[i] == ' ' || line[i] == '\t' || line[i] == '"' || line[i] == '\'' || line[i] == '\0')) ++i;
      if (i > from) out.push_back(line.substr(from, i - from));
    }
    return out;
  };
  std::vector<std::pair<std::string, std::string>> out;
  std::int64_t remaining = 0;  // elements left in the array being read (0: at the top level)
  bool first = false;          // the next element is a command name
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.empty()) continue;
    if (line[0] == '*') {
      std::int64_t n = 0;
      const auto [end, ec] = std::from_chars(line.data() + 1, line.data() + line.size(), n);
      remaining = ec == std::errc{} ? n : 0;
      first = remaining > 0;
      continue;
    }
    if (line[0] == '$') continue;  // a length: the element is the next line
    if (remaining > 0) {
      --remaining;
      if (!first) continue;
      first = false;
      // The name, and the next element as a possible subcommand.
      std::string_view next;
      for (std::size_t k = i + 1; k < lines.size(); ++k) {
        if (lines[k].empty() || lines[k][0] == '$') continue;
        next = lines[k];
        break;
      }
      out.emplace_back(lower(line), lower(next));
      continue;
    }
    const auto words = words_of(line);  // an inline command
    if (!words.empty()) out.emplace_back(lower(words[0]), words.size() > 1 ? lower(words[1]) : "");
  }
  return out;
}

// Judges one command by its name and the word after it.
std::string judge(const command_table& table, const std::string& name, const std::string& second) {
  const command_spec* spec = table.find(name);
  if (spec == nullptr) return {};
  if (spec->has_subcommands && !second.empty()) {
    if (const command_spec* sub = table.find(name + "|" + second); sub != nullptr) spec = sub;
  }
  return spec->dangerous || spec->excluded ? spec->name : std::string();
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string dangerous_in(const command_table& table, const frame& f) {
  if (f.kind == frame_kind::command) {
    if (f.args.empty()) return {};
    return judge(table, lower(f.args[0]), f.args.size() > 1 ? lower(f.args[1]) : "");
  }
  for (const auto& [name, second] : raw_commands(f.bytes)) {
    if (std::string found = judge(table, name, second); !found.empty()) return found;
  }
  return {};
}

command_table command_table::conservative() {
  // Without the server's table: the never-generated and destructive names of `classify`, whole
  // families whose members include such commands (CONFIG, CLIENT, SCRIPT, FUNCTION, CLUSTER, ACL,
  // MODULE), and the @admin commands of Redis 7 that stop, save or reconfigure the server.
  static constexpr std::array<std::string_view, 33> names = {
      "acl",      "bgrewriteaof", "bgsave",   "client",   "cluster",  "config",    "debug",
      "failover", "flushall",     "flushdb",  "function", "lastsave", "latency",   "migrate",
      "module",   "monitor",      "pfdebug",  "pfselftest", "psubscribe", "psync", "publish",
      "quit",     "replconf",     "replicaof", "save",    "script",   "shutdown",  "slaveof",
      "slowlog",  "spublish",     "ssubscribe", "swapdb", "sync"};
  command_table t;
  for (const auto name : names) {
    command_spec c;
    c.name = std::string(name);
    c.dangerous = true;
    t.commands.push_back(std::move(c));
  }
  std::sort(t.commands.begin(), t.commands.end(), [](const command_spec& a, const command_spec& b) { return a.name < b.name; });
  return t;
}

}  // namespace redring::fuzz
