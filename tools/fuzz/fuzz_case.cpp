// SPDX-License-Identifier: MIT
#include "tools/fuzz/fuzz_case.hpp"

#include "resp/writer.hpp"

#include <array>
#include <charconv>

namespace redring::fuzz {
namespace {

constexpr std::array<std::string_view, 8> finding_names = {"none",       "crash",          "hang",        "desync",
                                                            "disconnect", "protocol_error", "exit_status", "reply_shape"};
constexpr std::array<std::string_view, 5> delivery_names = {"whole", "bytewise", "chunks", "trickle", "cut"};

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads one quoted literal at `line[pos]` (after blanks) into `out`; false if there is none or it is bad.
bool unquote(std::string_view line, std::size_t& pos, std::string& out) {
  while (pos < line.size() && line[pos] == ' ') ++pos;
  if (pos >= line.size() || line[pos] != '"') return false;
  out.clear();
  for (++pos; pos < line.size(); ++pos) {
    const char c = line[pos];
    if (c == '"') {
      ++pos;
      return true;
    }
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++pos >= line.size()) return false;
    switch (line[pos]) {
      case 'r': out.push_back('\r'); break;
      case 'n': out.push_back('\n'); break;
      case 't': out.push_back('\t'); break;
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case 'x': {
        if (pos + 2 >= line.size()) return false;
        const int hi = hex_digit(line[pos + 1]), lo = hex_digit(line[pos + 2]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<char>(hi * 16 + lo));
        pos += 2;
        break;
      }
      default: return false;
    }
  }
  return false;
}

// The rest of `line` as quoted literals.
bool unquote_all(std::string_view line, std::size_t pos, std::vector<std::string>& out) {
  std::string item;
  for (;;) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    if (pos >= line.size()) return true;
    if (!unquote(line, pos, item)) return false;
    out.push_back(item);
  }
}

void append_quoted_list(std::string& out, const std::vector<std::string>& items) {
  for (const auto& a : items) {
    out.push_back(' ');
    out.append(quote(a));
  }
}

}  // namespace

void append_wire(std::string& out, const frame& f) {
  if (f.kind != frame_kind::command) {
    out.append(f.bytes);
    return;
  }
  std::vector<std::string_view> views(f.args.begin(), f.args.end());
  resp::writer w(0);
  w.command(views);
  out.append(w.data());
}

frame command_frame(std::vector<std::string> args) {
  frame f;
  f.args = std::move(args);
  return f;
}

frame raw_frame(std::string bytes) {
  frame f;
  f.kind = frame_kind::raw;
  f.bytes = std::move(bytes);
  return f;
}

std::string_view to_string(finding_kind k) noexcept { return finding_names[static_cast<std::size_t>(k)]; }

std::optional<finding_kind> finding_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < finding_names.size(); ++i) {
    if (finding_names[i] == name) return static_cast<finding_kind>(i);
  }
  return std::nullopt;
}

std::string_view to_string(delivery d) noexcept { return delivery_names[static_cast<std::size_t>(d)]; }

std::optional<delivery> delivery_from_string(std::string_view name) noexcept {
  for (std::size_t i = 0; i < delivery_names.size(); ++i) {
    if (delivery_names[i] == name) return static_cast<delivery>(i);
  }
  return std::nullopt;
}

std::string quote(std::string_view bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\r': out.append("\\r"); break;
      case '\n': out.append("\\n"); break;
      case '\t': out.append("\\t"); break;
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(static_cast<char>(c));
        } else {
          out.append("\\x");
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string format_reproducer(const reproducer& r) {
  std::string out = "redring-fuzz reproducer 1\n";
  out.append("mode ").append(r.mode).append("\n");
  out.append("finding ").append(to_string(r.kind)).append("\n");
  out.append("detail ").append(quote(r.detail)).append("\n");
  out.append("seed ").append(std::to_string(r.seed)).append("\n");
  if (!r.client_argv.empty()) {
    out.append("argv");
    append_quoted_list(out, r.client_argv);
    out.append("\n");
  }
  for (const frame& f : r.steps.frames) {
    switch (f.kind) {
      case frame_kind::command:
        out.append("command");
        append_quoted_list(out, f.args);
        break;
      case frame_kind::raw:
        out.append("raw ").append(quote(f.bytes));
        break;
      case frame_kind::reply:
        out.append("reply ").append(to_string(f.how)).append(" ").append(std::to_string(f.split_seed));
        out.append(f.close_after ? " close " : " keep ").append(quote(f.bytes));
        break;
    }
    out.append("\n");
  }
  return out;
}

std::optional<reproducer> parse_reproducer(std::string_view text, std::string& why) {
  reproducer r;
  std::size_t line_no = 0;
  bool header = false;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto fail = [&](const char* what) {
      why = "line " + std::to_string(line_no) + ": " + what;
      return std::nullopt;
    };
    if (line.empty() || line[0] == '#') continue;
    if (!header) {
      if (line != "redring-fuzz reproducer 1") return fail("not a redring-fuzz reproducer (version 1)");
      header = true;
      continue;
    }
    const std::size_t sp = line.find(' ');
    const std::string_view key = line.substr(0, sp);
    const std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    std::size_t pos = 0;
    if (key == "mode") {
      if (rest != "server" && rest != "client") return fail("mode must be server or client");
      r.mode = std::string(rest);
    } else if (key == "finding") {
      const auto k = finding_from_string(rest);
      if (!k) return fail("unknown finding kind");
      r.kind = *k;
    } else if (key == "detail") {
      if (!unquote(rest, pos, r.detail)) return fail("bad quoted detail");
    } else if (key == "seed") {
      const auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), r.seed);
      if (ec != std::errc{} || p != rest.data() + rest.size()) return fail("bad seed");
    } else if (key == "argv") {
      if (!unquote_all(rest, 0, r.client_argv)) return fail("bad quoted argv");
    } else if (key == "command") {
      frame f;
      if (!unquote_all(rest, 0, f.args) || f.args.empty()) return fail("a command needs quoted arguments");
      r.steps.frames.push_back(std::move(f));
    } else if (key == "raw") {
      frame f;
      f.kind = frame_kind::raw;
      if (!unquote(rest, pos, f.bytes)) return fail("bad quoted raw bytes");
      r.steps.frames.push_back(std::move(f));
    } else if (key == "reply") {
      // reply <delivery> <split seed> <close|keep> "bytes"
      frame f;
      f.kind = frame_kind::reply;
      const std::size_t a = rest.find(' ');
      const std::size_t b = a == std::string_view::npos ? a : rest.find(' ', a + 1);
      const std::size_t c = b == std::string_view::npos ? b : rest.find(' ', b + 1);
      if (c == std::string_view::npos) return fail("reply needs: delivery split-seed close|keep \"bytes\"");
      const auto how = delivery_from_string(rest.substr(0, a));
      const std::string_view seed = rest.substr(a + 1, b - a - 1), close = rest.substr(b + 1, c - b - 1);
      const auto [p, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), f.split_seed);
      if (!how || ec != std::errc{} || p != seed.data() + seed.size() || (close != "close" && close != "keep")) {
        return fail("reply needs: delivery split-seed close|keep \"bytes\"");
      }
      f.how = *how;
      f.close_after = close == "close";
      pos = c + 1;
      if (!unquote(rest, pos, f.bytes)) return fail("bad quoted reply bytes");
      r.steps.frames.push_back(std::move(f));
    } else {
      return fail("unknown line");
    }
  }
  if (!header) {
    why = "empty file";
    return std::nullopt;
  }
  return r;
}

}  // namespace redring::fuzz
