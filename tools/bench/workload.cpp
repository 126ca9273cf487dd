// SPDX-License-Identifier: MIT
#include "tools/bench/workload.hpp"

#include <cctype>

namespace redring::bench {

std::optional<command_spec> parse_command(std::string_view text, std::string& why) {
  command_spec spec;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == '\t') {
      ++i;
      continue;
    }
    std::string word;
    bool quoted = false;
    if (text[i] == '"') {
      quoted = true;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        const char c = text[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < text.size() && (text[i] == '"' || text[i] == '\\')) {
          word += text[i++];
          continue;
        }
        word += c;
      }
      if (!closed) {
        why = "unterminated quote in command '" + std::string(text) + "'";
        return std::nullopt;
      }
    } else {
      while (i < text.size() && text[i] != ' ' && text[i] != '\t') word += text[i++];
    }
    command_spec::part p;
    if (!quoted && word == "__key__") {
      p.kind = command_spec::part_kind::key;
    } else if (!quoted && word == "__data__") {
      p.kind = command_spec::part_kind::data;
    } else {
      p.text = std::move(word);
    }
    spec.parts.push_back(std::move(p));
  }
  if (spec.parts.empty() || spec.parts[0].kind != command_spec::part_kind::literal || spec.parts[0].text.empty()) {
    why = spec.parts.empty() ? "empty command" : "a command must start with its name, not a placeholder";
    return std::nullopt;
  }
  for (const char c : spec.parts[0].text) spec.name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return spec;
}

std::vector<command_spec> default_workload(unsigned set_weight, unsigned get_weight) {
  std::vector<command_spec> out;
  std::string why;
  if (set_weight != 0) {
    out.push_back(*parse_command("SET __key__ __data__", why));
    out.back().weight = set_weight;
    out.back().routes_by_key = true;
  }
  if (get_weight != 0) {
    out.push_back(*parse_command("GET __key__", why));
    out.back().weight = get_weight;
    out.back().routes_by_key = true;
  }
  return out;
}

command_mix::command_mix(const std::vector<command_spec>& specs) {
  for (const command_spec& s : specs) {
    weight_.push_back(s.weight);
    total_ += s.weight;
  }
  current_.assign(weight_.size(), 0);
}

std::size_t command_mix::next() noexcept {
  // Smooth weighted round robin: add each weight, pick the largest, subtract the total from it.
  std::size_t best = 0;
  for (std::size_t i = 0; i < weight_.size(); ++i) {
    current_[i] += weight_[i];
    if (current_[i] > current_[best]) best = i;
  }
  current_[best] -= total_;
  return best;
}

}  // namespace redring::bench
