// SPDX-License-Identifier: MIT
#include "tools/fuzz/generator.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

namespace redring::fuzz {
namespace {

using namespace std::string_view_literals;

constexpr std::array integers = {
    "0"sv, "1"sv, "-1"sv, "2"sv, "3"sv, "10"sv, "100"sv, "127"sv, "128"sv, "255"sv, "256"sv, "1000"sv, "65535"sv,
    "65536"sv, "2147483647"sv, "2147483648"sv, "-2147483648"sv, "-2147483649"sv, "4294967295"sv,
    "4294967296"sv, "9223372036854775807"sv, "-9223372036854775808"sv, "9223372036854775808"sv,
    "-9223372036854775809"sv, "18446744073709551615"sv, "99999999999999999999999"sv, "007"sv, "+1"sv, "-0"sv,
    "1.5"sv, "0x10"sv, " 1"sv, "1 "sv, ""sv, "1e3"sv};
constexpr std::array doubles = {"0"sv,     "1.5"sv,    "-1.5"sv,  "inf"sv,    "-inf"sv,   "+inf"sv,
                                "nan"sv,   "-nan"sv,   "1e308"sv, "1e309"sv,  "-1e309"sv, "4.9e-324"sv,
                                "-0"sv,    "(1"sv,     "[a"sv,    "(a"sv,     "-"sv,      "+"sv,
                                "0.1"sv,   "1e-400"sv, "3."sv,    ".5"sv,     "1,5"sv,    "0.000000000000000000001"sv};
constexpr std::array strings = {
    ""sv,  "a"sv,  "0"sv,   "-1"sv,   "hello"sv,      "OK"sv,       "\xff\xfe\x00\x80"sv, "\r\n"sv,
    "\x00"sv, "*1\r\n$4\r\nPING\r\n"sv, "%s%n%x"sv,      "\xc3\xa9t\xc3\xa9"sv, "\xed\xa0\x80"sv,
    " "sv, "\""sv, "'"sv, "{"sv, "}"sv, "{rf}"sv, "nan"sv, "inf"sv, "1e400"sv, "NX"sv, "XX"sv, "GT"sv,
    "LIMIT"sv, "WITHSCORES"sv, "COUNT"sv, "MATCH"sv, "TYPE"sv, "BYSCORE"sv, "REV"sv, "STORE"sv, "FIELDS"sv};
constexpr std::array patterns = {"*"sv,          "rf:*"sv,   "[a-"sv,      "\\"sv,       "?*?*?*?*?*?*?*?*b"sv,
                                 "*[*[*[*[*"sv, "[^]"sv,    "[\\]"sv,     "rf:?"sv,     "**********x"sv,
                                 "[a-z"sv,      "\\*"sv,    "[]"sv};
constexpr std::array stream_ids = {"*"sv,   "0"sv,   "0-0"sv, "$"sv,     ">"sv,   "+"sv,    "-"sv,
                                   "1-1"sv, "0-1"sv, "1-*"sv, "(0-1"sv, "18446744073709551615-18446744073709551615"sv,
                                   "99999999999999999999"sv, "1-"sv, "-1"sv};
constexpr std::array scripts = {
    "return 1"sv,
    "return redis.call('ping')"sv,
    "return {1,2,{3,'x',{}}}"sv,
    "return redis.status_reply('OK')"sv,
    "return redis.error_reply('E bad')"sv,
    "return 1.5"sv,
    "return nil"sv,
    "return {err='x'}"sv,
    "return redis.call('get',KEYS[1])"sv,
    "return redis.call('set',KEYS[1],ARGV[1])"sv,
    "return redis.pcall('incr',KEYS[1])"sv,
    "return cjson.encode({1,2})"sv,
    "return struct.pack('HH',1,2)"sv,
    "return cmsgpack.unpack(ARGV[1])"sv,
    "return redis.sha1hex(ARGV[1])"sv,
    "return {double=3.14}"sv,
    "return string.rep('x', 100)"sv,
    "#!lua name=rf\nredis.register_function('rf', function(k, a) return #k end)"sv,
    "#!lua name=rf\nredis.register_function{function_name='rfro', callback=function() return 1 end, flags={'no-writes'}}"sv,
    "local t = {} for i=1,100 do t[i]=i end return t"sv,
    "redis.call("sv};
// Keys the set-up creates (suffixes after the prefix), and one that never exists.
constexpr std::array key_suffixes = {"string"sv, "int"sv,    "float"sv, "list"sv,  "hash"sv,   "set"sv,   "intset"sv,
                                     "zset"sv,   "stream"sv, "hll"sv,   "geo"sv,   "bitmap"sv, "missing"sv};

constexpr std::array<std::size_t, 2> long_key_lengths = {513, 4097};

// Bounds on what repetition may make of one command.
constexpr std::size_t max_mutated_args = 4096;
constexpr std::size_t max_mutated_bytes = std::size_t{4} << 20;

std::size_t bytes(const std::vector<std::string>& args) {
  std::size_t n = 0;
  for (const auto& a : args) n += a.size();
  return n;
}

std::string huge(rng& r) {
  // Mostly just over common buffer sizes; a megabyte rarely (it dominates a case's time).
  static constexpr std::array<std::size_t, 20> sizes = {513,   513,   513,   513,   513,    513,    513,
                                                        4097,  4097,  4097,  4097,  4097,   16385,  16385,
                                                        65537, 65537, 65537, 100000, 100000, (1u << 20) + 1};
  const std::size_t n = sizes[static_cast<std::size_t>(r.below(sizes.size()))];
  return std::string(n, static_cast<char>('a' + r.below(26)));
}

std::string pick(rng& r, std::span<const std::string_view> set) { return std::string(r.pick(set)); }

bool named(const arg_spec& a, std::string_view what) { return a.name.find(what) != std::string::npos; }

// Blocking commands and WAIT get short timeouts so that a case is not held up (0 would block forever).
bool is_wait_argument(const arg_spec& a) { return a.name == "timeout" || (a.name == "milliseconds" && !a.token.empty()); }

}  // namespace

generator::generator(const command_table& table, generator_options opts) : table_(table), opts_(std::move(opts)) {
  for (const command_spec& c : table_.commands) {
    if (c.excluded || c.has_subcommands || (c.dangerous && !opts_.allow_dangerous)) continue;
    if (opts_.keep_connection_state && c.name == "reset") continue;  // it would log the connection out
    if (!opts_.only.empty() && std::find(opts_.only.begin(), opts_.only.end(), c.name) == opts_.only.end()) continue;
    eligible_.push_back(&c);
  }
}

frame delete_fuzz_keys(std::string_view prefix) {
  const std::string p(prefix);
  std::vector<std::string> del = {"DEL"};
  for (auto s : key_suffixes) del.push_back(p + std::string(s));
  for (auto s : strings) del.push_back(p + std::string(s));
  for (auto n : long_key_lengths) del.push_back(p + std::string(n, 'k'));
  return command_frame(std::move(del));
}

std::vector<frame> generator::setup_frames() const {
  const std::string& p = opts_.key_prefix;
  std::vector<frame> out;
  out.push_back(delete_fuzz_keys(p));
  out.push_back(command_frame({"SET", p + "string", "hello world"}));
  out.push_back(command_frame({"SET", p + "int", "42"}));
  out.push_back(command_frame({"SET", p + "float", "3.5"}));
  out.push_back(command_frame({"RPUSH", p + "list", "a", "b", "c", "1"}));
  out.push_back(command_frame({"HSET", p + "hash", "f", "v", "n", "7"}));
  out.push_back(command_frame({"SADD", p + "set", "a", "b", "c"}));
  out.push_back(command_frame({"SADD", p + "intset", "1", "2", "3"}));
  out.push_back(command_frame({"ZADD", p + "zset", "1", "a", "2", "b", "2.5", "c"}));
  out.push_back(command_frame({"XADD", p + "stream", "1-1", "f", "v"}));
  out.push_back(command_frame({"XGROUP", "CREATE", p + "stream", "g", "0"}));
  out.push_back(command_frame({"PFADD", p + "hll", "a", "b"}));
  out.push_back(command_frame({"GEOADD", p + "geo", "13.361389", "38.115556", "palermo"}));
  out.push_back(command_frame({"SETBIT", p + "bitmap", "7", "1"}));
  return out;
}

std::string generator::random_key(rng& r) const {
  // A finite set of names, all deleted by the set-up of every case, so that the keyspace of a long
  // run does not grow.
  std::string k = opts_.key_prefix;
  if (r.chance(85)) return k.append(r.pick(std::span<const std::string_view>(key_suffixes)));
  if (r.chance(80)) return k.append(pick(r, strings));
  return k.append(long_key_lengths[static_cast<std::size_t>(r.below(long_key_lengths.size()))], 'k');
}

std::string generator::pick_integer(rng& r) const {
  // Bounded: `integers` without the ones a server takes as counts and offsets that build GiBs
  // (is_huge_count: 2^31-1 ... 2^32). The ones it refuses (beyond int64 or its own bounds) stay.
  static const std::vector<std::string_view> bounded = [] {
    std::vector<std::string_view> out;
    for (const auto v : integers) {
      if (!is_huge_count(v)) out.push_back(v);
    }
    return out;
  }();
  return opts_.bounded_integers ? pick(r, bounded) : pick(r, integers);
}

std::string generator::random_value(rng& r) const {
  switch (r.below(8)) {
    case 0: return pick_integer(r);
    case 1: return pick(r, doubles);
    case 2: return random_key(r);
    case 3: return pick(r, patterns);
    case 4: return pick(r, stream_ids);
    case 5: return r.chance(20) ? huge(r) : pick(r, scripts);
    default: return pick(r, strings);
  }
}

std::string generator::value_for(rng& r, const command_spec& spec, const arg_spec& a) const {
  if (is_wait_argument(a) && (spec.has_flag("blocking") || spec.name == "wait" || spec.name == "waitaof")) {
    return a.type == arg_spec::kind::double_number ? "0.01" : "10";
  }
  if (r.chance(8)) return random_value(r);  // type confusion
  switch (a.type) {
    case arg_spec::kind::key: return random_key(r);
    case arg_spec::kind::integer:
    case arg_spec::kind::unix_time: return pick_integer(r);
    case arg_spec::kind::double_number: return r.chance(70) ? pick(r, doubles) : pick_integer(r);
    case arg_spec::kind::pattern: return pick(r, patterns);
    default: break;
  }
  if (named(a, "script") || named(a, "function-code") || named(a, "body")) return pick(r, scripts);
  if (named(a, "id") && !named(a, "client")) return pick(r, stream_ids);
  if (named(a, "min") || named(a, "max") || named(a, "start") || named(a, "stop") || named(a, "end")) {
    return r.chance(50) ? pick(r, doubles) : pick_integer(r);
  }
  if (r.chance(5)) return huge(r);
  return r.chance(70) ? pick(r, strings) : pick_integer(r);
}

void generator::add_arg(rng& r, const command_spec& spec, const arg_spec& a, std::vector<std::string>& out,
                        int depth) const {
  if (a.optional && r.chance(55)) return;
  const std::uint64_t count = a.multiple ? r.between(1, r.chance(90) ? 3 : 40) : 1;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (!a.token.empty() && (i == 0 || a.multiple_token)) out.push_back(a.token);
    switch (a.type) {
      case arg_spec::kind::pure_token: break;
      case arg_spec::kind::oneof:
        if (!a.children.empty() && depth < 8) {
          const arg_spec& choice = a.children[static_cast<std::size_t>(r.below(a.children.size()))];
          arg_spec forced = choice;
          forced.optional = false;
          add_arg(r, spec, forced, out, depth + 1);
        }
        break;
      case arg_spec::kind::block:
        if (depth < 8) {
          for (const arg_spec& c : a.children) add_arg(r, spec, c, out, depth + 1);
        }
        break;
      default: out.push_back(value_for(r, spec, a));
    }
  }
}

frame generator::generate(rng& r, const command_spec& spec) const {
  std::vector<std::string> args = spec.words;
  if (spec.has_docs) {
    for (const arg_spec& a : spec.args) add_arg(r, spec, a, args, 0);
  } else {
    // No grammar: the arity's worth of arguments (a few more for variadic commands), keys where
    // COMMAND INFO puts them.
    const int need = spec.arity >= 0 ? spec.arity : -spec.arity + static_cast<int>(r.below(4));
    for (int pos = static_cast<int>(args.size()); pos < need; ++pos) {
      const bool key = spec.first_key > 0 && pos >= spec.first_key && spec.key_step > 0 &&
                       (spec.last_key < 0 || pos <= spec.last_key) && (pos - spec.first_key) % spec.key_step == 0;
      args.push_back(key ? random_key(r) : random_value(r));
    }
  }
  return command_frame(std::move(args));
}

frame generator::random_command(rng& r) const {
  if (eligible_.empty()) return command_frame({"PING"});
  return generate(r, *eligible_[static_cast<std::size_t>(r.below(eligible_.size()))]);
}

frame generator::mutate(rng& r, frame f) const {
  auto& a = f.args;
  const std::size_t rounds = r.between(1, 3);
  for (std::size_t round = 0; round < rounds; ++round) {
    const std::size_t i = a.size() > 1 ? static_cast<std::size_t>(r.between(1, a.size() - 1)) : 0;
    switch (r.below(10)) {
      case 0: if (a.size() > 1) a[i] = random_value(r); break;
      case 1: if (a.size() > 1) a.erase(a.begin() + static_cast<std::ptrdiff_t>(i)); break;
      case 2: a.insert(a.begin() + static_cast<std::ptrdiff_t>(i == 0 ? a.size() : i), random_value(r)); break;
      case 3: if (!a[i].empty()) a[i][static_cast<std::size_t>(r.below(a[i].size()))] ^= static_cast<char>(1u << r.below(8)); break;
      case 4: a[i].resize(static_cast<std::size_t>(r.below(a[i].size() + 1))); break;
      case 5: {  // repeat the tail many times (variadic paths, big replies), within bounds: rounds
                 // of this would otherwise grow a megabyte argument exponentially
        const std::size_t times = r.between(2, 64), from = i;
        const std::vector<std::string> tail(a.begin() + static_cast<std::ptrdiff_t>(from), a.end());
        for (std::size_t t = 0; t < times && !tail.empty() && a.size() + tail.size() <= max_mutated_args &&
                                bytes(a) + bytes(tail) <= max_mutated_bytes;
             ++t) {
          a.insert(a.end(), tail.begin(), tail.end());
        }
        break;
      }
      case 6: if (a.size() > 2) std::swap(a[i], a[static_cast<std::size_t>(r.between(1, a.size() - 1))]); break;
      case 7: a[0] = lower(a[0]); break;
      case 8: a.resize(r.chance(50) ? 1 : std::min<std::size_t>(a.size(), 2)); break;
      default: a.push_back(r.chance(30) ? huge(r) : random_value(r)); break;
    }
  }
  if (a.empty()) a.push_back("PING");
  return f;
}

frame generator::malformed(rng& r) const {
  std::string valid;
  append_wire(valid, random_command(r));
  std::string b;
  switch (r.below(14)) {
    case 0:  // truncated frame
      b = valid.substr(0, static_cast<std::size_t>(r.below(valid.size())));
      break;
    case 1: {  // a pipeline cut mid-frame
      for (int i = 0, n = static_cast<int>(r.between(1, 4)); i < n; ++i) append_wire(b, random_command(r));
      b.append(valid.substr(0, static_cast<std::size_t>(r.between(1, valid.size() - 1))));
      break;
    }
    case 2: {  // a bad bulk length
      static constexpr std::array bad = {"$-5"sv, "$abc"sv, "$"sv, "$ 3"sv, "$+3"sv, "$3a"sv, "$-0"sv, "$99999999999999999999"sv};
      b = "*2\r\n$4\r\nECHO\r\n";
      b.append(r.pick(std::span<const std::string_view>(bad))).append("\r\nabc\r\n");
      break;
    }
    case 3: {  // oversized lengths and counts
      static constexpr std::array big = {"*1\r\n$536870913\r\nabc"sv, "*1\r\n$2147483648\r\nabc"sv, "*1048577\r\n"sv,
                                         "*2147483648\r\n"sv, "*1\r\n$9223372036854775807\r\n"sv, "*99999\r\n$4\r\nPING\r\n"sv,
                                         "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\nshort\r\n"sv};
      b = r.pick(std::span<const std::string_view>(big));
      break;
    }
    case 4: {  // inline commands
      static constexpr std::array inl = {"PING\r\n"sv, "\r\n"sv, "\n"sv, "ECHO \"a b\" 'c d'\r\n"sv, "SET \"unbalanced\r\n"sv,
                                         "ECHO \"\\x41\\x4\"\r\n"sv, "ECHO a\x00b\r\n"sv, "   \r\n"sv, "ECHO \"a\"b\r\n"sv};
      b = r.pick(std::span<const std::string_view>(inl));
      if (r.chance(30)) b = std::string(70000, 'A');  // over the 64 KiB inline limit, no newline
      break;
    }
    case 5: {  // a generated command as an inline line
      for (const auto& a : random_command(r).args) b.append(a).append(" ");
      b.append("\r\n");
      break;
    }
    case 6: b = "*1\r\n*1\r\n$4\r\nPING\r\n"; break;  // nested arrays
    case 7: {  // wrong prefix byte where a bulk string belongs
      static constexpr std::string_view prefixes = "+-:%~_,#!=(|>;.x\0 ";
      b = "*1\r\n";
      b.push_back(prefixes[static_cast<std::size_t>(r.below(prefixes.size()))]);
      b.append("4\r\nPING\r\n");
      break;
    }
    case 8: {  // RESP3 aggregates as requests
      static constexpr std::array r3 = {"%1\r\n$1\r\na\r\n$1\r\nb\r\n"sv, "~1\r\n$4\r\nPING\r\n"sv, "_\r\n"sv,
                                        ">1\r\n$4\r\nPING\r\n"sv, "*?\r\n$4\r\nPING\r\n.\r\n"sv};
      b = r.pick(std::span<const std::string_view>(r3));
      break;
    }
    case 9: {  // flipped bytes in a valid frame
      b = valid;
      for (std::size_t i = 0, n = r.between(1, 4); i < n; ++i) b[static_cast<std::size_t>(r.below(b.size()))] ^= static_cast<char>(1u << r.below(8));
      break;
    }
    case 10: {  // a count that does not match the arguments that follow
      b = valid;
      b[1] = static_cast<char>('0' + r.below(10));
      break;
    }
    case 11: b = "*1\r\n$4\r\nPINGxx"; break;  // no CRLF after a bulk
    case 12: b = r.chance(50) ? "*0\r\n" : "*-1\r\n"; break;
    default: b = valid.substr(0, valid.size() - 2).append("\n\n"); break;  // LF where CRLF belongs
  }
  return raw_frame(std::move(b));
}

fuzz_case generator::make_case(std::uint64_t seed, std::uint64_t index) const {
  rng r(rng::derive(seed, index));
  fuzz_case c;
  c.frames = setup_frames();
  bool in_multi = false;
  for (std::size_t i = 0; i < opts_.batch; ++i) {
    frame f = random_command(r);
    // A blocking command, WAIT and WAITAOF keep their short timeouts: mutated to 0 they would hold
    // the case up (WAIT is not flagged blocking).
    const command_spec* spec = table_.find(command_name(table_, f));
    const bool waits = spec != nullptr && (spec->has_flag("blocking") || spec->name == "wait" || spec->name == "waitaof");
    if (!waits && r.chance(opts_.mutate_percent)) f = mutate(r, std::move(f));
    if (opts_.bounded_integers) {
      // A mutation may cut or flip a refused number into a huge count (-92233720).
      for (std::size_t a = 1; a < f.args.size(); ++a) {
        if (is_huge_count(f.args[a])) f.args[a] = f.args[a][0] == '-' ? "-65536" : "65536";
      }
    }
    const std::string name = lower(f.args[0]);
    if (name == "multi") in_multi = true;
    if (name == "exec" || name == "discard" || name == "reset") in_multi = false;
    c.frames.push_back(std::move(f));
  }
  if (in_multi) c.frames.push_back(command_frame({"EXEC"}));
  // Malformed frames go last: the server may close the connection at the first one, and every
  // command before it must still be answered.
  if (r.chance(opts_.malformed_percent)) {
    for (std::uint64_t i = 0, n = r.between(1, 2); i < n; ++i) c.frames.push_back(malformed(r));
  }
  return c;
}

bool is_huge_count(std::string_view a) noexcept {
  if (!a.empty() && (a[0] == '-' || a[0] == '+')) a.remove_prefix(1);
  if (a.empty() || a.size() > 19) return false;  // 20 digits and more: beyond int64, refused
  std::uint64_t v = 0;
  for (const char c : a) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');  // 19 digits cannot wrap
  }
  return v > 65536 && v <= (std::uint64_t{1} << 62) - 1;  // LONG_MAX / 2
}

std::string huge_count_in(const frame& f) {
  if (f.kind == frame_kind::command) {
    for (std::size_t i = 1; i < f.args.size(); ++i) {
      if (is_huge_count(f.args[i])) return f.args[i];
    }
    return {};
  }
  std::string word;
  auto check = [&word]() {
    const bool header = !word.empty() && (word[0] == '*' || word[0] == '$');
    const bool huge = !header && is_huge_count(word);
    if (!huge) word.clear();
    return huge;
  };
  for (const char c : f.bytes) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '"' || c == '\'' || c == '\0') {
      if (check()) return word;
    } else {
      word.push_back(c);
    }
  }
  return check() ? word : std::string();
}

std::string command_name(const command_table& table, const frame& f) {
  if (f.kind != frame_kind::command || f.args.empty()) return {};
  std::string name = lower(f.args[0]);
  if (f.args.size() > 1) {
    const command_spec* spec = table.find(name);
    if (spec != nullptr && spec->has_subcommands) {
      std::string sub = name + "|" + lower(f.args[1]);
      if (table.find(sub) != nullptr) return sub;
    }
  }
  return name;
}

}  // namespace redring::fuzz
