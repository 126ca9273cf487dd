// SPDX-License-Identifier: MIT
// Evaluates key specifications the way the server does (Redis 7 src/db.c getKeysUsingKeySpecs).
#include "client/command_keys.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace redring::client {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// RESP3 sends some of COMMAND's lists as sets.
bool is_list(const resp::value& v) { return v.data_type == resp::type::array || v.data_type == resp::type::set; }

// Key-spec numbers are small (argument positions and steps); a hostile reply's are clamped to
// +-2^31 so that find's sums and products of them cannot overflow int64.
constexpr std::int64_t spec_bound = std::int64_t{1} << 31;
std::int64_t clamp_spec(std::int64_t v) { return std::clamp(v, -spec_bound, spec_bound); }

std::int64_t integer_field(const resp::value& m, std::string_view key, std::int64_t fallback) {
  const resp::value* v = m.find(key);
  return v != nullptr && v->data_type == resp::type::integer ? clamp_spec(v->integer) : fallback;
}

}  // namespace

bool command_keys::parse_command(const resp::value& info, std::unordered_map<std::string, command>& into) {
  // [name, arity, flags, first, last, step, acl categories, tips, key specs, subcommands]
  if (info.data_type != resp::type::array || info.elements.size() < 6) return false;
  const auto& e = info.elements;
  if (e[0].text.empty()) return false;
  command c;
  if (is_list(e[2])) {
    c.readonly = std::any_of(e[2].elements.begin(), e[2].elements.end(),
                             [](const resp::value& f) { return f.text == "readonly"; });
  }
  if (e.size() >= 9 && is_list(e[8]) && !e[8].elements.empty()) {
    for (const resp::value& spec : e[8].elements) {
      key_spec k;
      if (const resp::value* bs = spec.find("begin_search")) {
        const resp::value* type = bs->find("type");
        const resp::value* s = bs->find("spec");
        if (type != nullptr && s != nullptr && type->text == "index") {
          k.begin_kind = key_spec::begin::index;
          k.index = integer_field(*s, "index", 0);
        } else if (type != nullptr && s != nullptr && type->text == "keyword") {
          k.begin_kind = key_spec::begin::keyword;
          if (const resp::value* kw = s->find("keyword")) k.keyword = kw->text;
          k.start_from = integer_field(*s, "startfrom", 1);
        }
      }
      if (const resp::value* fk = spec.find("find_keys")) {
        const resp::value* type = fk->find("type");
        const resp::value* s = fk->find("spec");
        if (type != nullptr && s != nullptr && type->text == "range") {
          k.find_kind = key_spec::find::range;
          k.last_key = integer_field(*s, "lastkey", 0);
          k.key_step = integer_field(*s, "keystep", 1);
          k.limit = integer_field(*s, "limit", 0);
        } else if (type != nullptr && s != nullptr && type->text == "keynum") {
          k.find_kind = key_spec::find::keynum;
          k.keynum_index = integer_field(*s, "keynumidx", 0);
          k.first_key = integer_field(*s, "firstkey", 1);
          k.key_step = integer_field(*s, "keystep", 1);
        }
      }
      c.specs.push_back(std::move(k));
    }
  } else if (e[3].integer > 0) {
    // Before key specs (Redis < 7): first, last (negative: from the end), step.
    key_spec k;
    k.begin_kind = key_spec::begin::index;
    const std::int64_t first = clamp_spec(e[3].integer), last = clamp_spec(e[4].integer);
    k.index = first;
    k.find_kind = key_spec::find::range;
    k.last_key = last < 0 ? last : last - first;
    k.key_step = std::max<std::int64_t>(1, clamp_spec(e[5].integer));
    c.specs.push_back(k);
  }
  if (e.size() >= 10 && is_list(e[9]) && !e[9].elements.empty()) {
    c.has_subcommands = true;
    for (const resp::value& sub : e[9].elements) {
      if (!parse_command(sub, into)) return false;
    }
  }
  into[lower(e[0].text)] = std::move(c);
  return true;
}

resp::result<command_keys> command_keys::from_reply(const resp::value& reply) {
  if (reply.is_error()) return resp::error{resp::errc::server_error, reply.text};
  if (!is_list(reply)) return resp::error{resp::errc::unexpected_type, "COMMAND reply is not an array"};
  command_keys t;
  for (const resp::value& info : reply.elements) {
    if (info.is_null()) continue;  // COMMAND INFO of an unknown name
    if (!parse_command(info, t.commands_)) return resp::error{resp::errc::unexpected_type, "COMMAND entry of an unknown shape"};
  }
  return t;
}

const command_keys::command* command_keys::lookup(std::span<const std::string_view> args) const {
  if (args.empty()) return nullptr;
  std::string name = lower(args[0]);
  auto it = commands_.find(name);
  if (it == commands_.end()) return nullptr;
  if (it->second.has_subcommands && args.size() > 1) {
    name += '|';
    name += lower(args[1]);
    const auto sub = commands_.find(name);
    if (sub != commands_.end()) it = sub;
  }
  return &it->second;
}

int command_keys::single_key_index(const command& c) noexcept {
  if (c.specs.size() != 1) return -1;
  const key_spec& k = c.specs.front();
  const bool one = k.begin_kind == key_spec::begin::index && k.find_kind == key_spec::find::range && k.last_key == 0;
  return one && k.index > 0 && k.index < 100 ? static_cast<int>(k.index) : -1;
}

command_keys::outcome command_keys::find(std::span<const std::string_view> args, std::vector<std::size_t>& out) const {
  const command* c = lookup(args);
  return c == nullptr ? outcome::unknown_command : find(*c, args, out);
}

command_keys::outcome command_keys::find(const command& c, std::span<const std::string_view> args,
                                         std::vector<std::size_t>& out) {
  const auto argc = static_cast<std::int64_t>(args.size());
  for (const key_spec& k : c.specs) {
    std::int64_t first = 0;
    switch (k.begin_kind) {
      case key_spec::begin::index:
        // Argument 0 is the command's name: a spec that points at or before it is not one the
        // server would send, and its keys cannot be known (a negative index read out of bounds).
        if (k.index < 1) return outcome::undeterminable;
        first = k.index;
        break;
      case key_spec::begin::keyword: {
        // Search forwards from start_from, or backwards from argc + start_from when it is negative.
        const std::int64_t start = k.start_from > 0 ? k.start_from : argc + k.start_from;
        const std::int64_t stop = k.start_from > 0 ? argc - 1 : 1;
        const std::int64_t dir = k.start_from > 0 ? 1 : -1;
        first = -1;
        for (std::int64_t i = start; dir > 0 ? i <= stop : i >= stop; i += dir) {
          if (i < 1 || i >= argc) break;
          if (equals_ignore_case(args[static_cast<std::size_t>(i)], k.keyword)) {
            first = i + 1;
            break;
          }
        }
        if (first < 0) continue;  // the keyword is absent: this spec finds no keys
        break;
      }
      case key_spec::begin::unknown:
        return outcome::undeterminable;
    }
    if (first >= argc) continue;
    std::int64_t last = 0;
    std::int64_t step = std::max<std::int64_t>(1, k.key_step);
    switch (k.find_kind) {
      case key_spec::find::range:
        if (k.last_key >= 0) {
          last = first + k.last_key;
        } else if (k.limit <= 1) {
          last = argc + k.last_key;
        } else {
          last = first + ((argc - first) / k.limit + k.last_key);
        }
        break;
      case key_spec::find::keynum: {
        const std::int64_t at = first + k.keynum_index;
        if (at < 1 || at >= argc) continue;
        const std::string_view text = args[static_cast<std::size_t>(at)];
        std::int64_t count = 0;
        const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
        if (ec != std::errc{} || p != text.data() + text.size() || count < 0) continue;  // the server will refuse it
        count = std::min(count, argc);  // no more keys than arguments: keeps (count - 1) * step from overflowing
        first += k.first_key;
        if (first < 1) return outcome::undeterminable;  // as for a begin index
        last = first + (count - 1) * step;
        break;
      }
      case key_spec::find::unknown:
        return outcome::undeterminable;
    }
    for (std::int64_t i = first; i <= last && i < argc; i += step) out.push_back(static_cast<std::size_t>(i));
  }
  return outcome::found;
}

}  // namespace redring::client
