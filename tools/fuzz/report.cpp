// SPDX-License-Identifier: MIT
#include "tools/fuzz/report.hpp"

#include <fmt/format.h>

namespace redring::fuzz {
namespace {

double per_second(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0.0; }

}  // namespace

std::string json_string(std::string_view bytes) {
  std::string out = "\"";
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c >= 0x7f) {
      out.append(fmt::format("\\u{:04x}", c));
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
  return out;
}

bool run_pacer::next(std::uint64_t index) {
  const auto now = clock::now();
  stats_.seconds = std::chrono::duration<double>(now - start_).count();
  if (interrupted) return false;
  if (opts_.iterations != 0 && index >= opts_.iterations) return false;
  if (opts_.time.count() != 0 && now - start_ >= opts_.time) return false;
  if (stats_.findings.size() >= opts_.max_findings) return false;
  if (now - last_ >= std::chrono::seconds(1)) {
    last_ = now;
    if (progress_ && !progress_(stats_)) return false;
  }
  return true;
}

std::string progress_line(const run_stats& s) {
  if (s.mode == "client") {
    return fmt::format("{:.0f} s: {} client runs ({:.1f}/s), {} replies, {} findings", s.seconds, s.cases,
                       per_second(s.cases, s.seconds), s.commands, s.findings.size());
  }
  return fmt::format("{:.0f} s: {} cases, {} commands ({:.0f}/s), {} distinct commands, {} findings", s.seconds,
                     s.cases, s.commands, per_second(s.commands, s.seconds), s.distinct, s.findings.size());
}

std::string format_report(const run_stats& s) {
  std::string out;
  if (s.mode == "client") {
    out.append(fmt::format("{} client runs in {:.1f} s ({:.1f}/s) against {}, seed {}\n", s.cases, s.seconds,
                           per_second(s.cases, s.seconds), s.target, s.seed));
    out.append(fmt::format("replies sent: {}\nexit statuses:", s.commands));
    for (const auto& [code, n] : s.exit_codes) out.append(fmt::format(" {}x{}", code, n));
    out.append("\n");
  } else {
    out.append(fmt::format("{} cases, {} commands in {:.1f} s ({:.0f} commands/s) against {}, seed {}\n", s.cases,
                           s.commands, s.seconds, per_second(s.commands, s.seconds), s.target, s.seed));
    out.append(fmt::format("distinct commands: {} sent of {} eligible, {} with a non-error reply; "
                           "malformed frames: {}; slow cases: {}\n",
                           s.distinct, s.eligible, s.distinct_ok, s.raw_frames, s.slow));
    if (s.shape_commands != 0) {
      out.append(fmt::format("reply types checked: {} replies, of {} commands with a documented type\n", s.shape_checked,
                             s.shape_commands));
    }
  }
  if (!s.stopped.empty()) out.append("stopped early: ").append(s.stopped).append("\n");
  if (s.findings.empty()) {
    out.append("findings: none\n");
    return out;
  }
  out.append(fmt::format("findings: {}\n", s.findings.size()));
  for (const auto& f : s.findings) {
    out.append(fmt::format("  {}: {}\n", to_string(f.kind), f.detail));
    out.append(fmt::format("    {} -> {} frames{}{}, seen {} time(s){}\n", f.frames_found, f.frames_minimal,
                           f.reproduced ? "" : " (did not reproduce: saved as found)",
                           f.attempts != 0 ? fmt::format(" after {} runs", f.attempts) : std::string(),
                           f.occurrences, f.file.empty() ? std::string() : ": " + f.file));
    if (!f.summary.empty()) out.append(fmt::format("    {}\n", f.summary));
  }
  return out;
}

std::string format_json(const run_stats& s) {
  std::string out = fmt::format(
      "{{\"mode\":{},\"target\":{},\"seed\":{},\"seconds\":{:.3f},\"cases\":{},\"commands\":{},"
      "\"commands_per_second\":{:.1f},\"malformed_frames\":{},\"slow_cases\":{},\"eligible_commands\":{},"
      "\"distinct_commands\":{},\"distinct_commands_ok\":{},\"shape_commands\":{},\"shape_checked_replies\":{},"
      "\"stopped\":{},\"exit_codes\":{{",
      json_string(s.mode), json_string(s.target), s.seed, s.seconds, s.cases, s.commands,
      per_second(s.commands, s.seconds), s.raw_frames, s.slow, s.eligible, s.distinct, s.distinct_ok,
      s.shape_commands, s.shape_checked, s.stopped.empty() ? std::string("null") : json_string(s.stopped));
  bool first = true;
  for (const auto& [code, n] : s.exit_codes) {
    out.append(fmt::format("{}\"{}\":{}", first ? "" : ",", code, n));
    first = false;
  }
  out.append("},\"findings\":[");
  first = true;
  for (const auto& f : s.findings) {
    out.append(fmt::format("{}{{\"kind\":{},\"detail\":{},\"file\":{},\"frames_found\":{},\"frames_minimal\":{},"
                           "\"minimise_runs\":{},\"reproduced\":{},\"occurrences\":{},\"summary\":{}}}",
                           first ? "" : ",", json_string(to_string(f.kind)), json_string(f.detail), json_string(f.file),
                           f.frames_found, f.frames_minimal, f.attempts, f.reproduced, f.occurrences,
                           json_string(f.summary)));
    first = false;
  }
  out.append("]}\n");
  return out;
}

}  // namespace redring::fuzz

#include <filesystem>
#include <fstream>

namespace redring::fuzz {

std::string save_reproducer(const std::string& dir, const reproducer& r, std::string& why) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    why = "cannot create " + dir + ": " + ec.message();
    return {};
  }
  for (int n = 1; n < 100000; ++n) {
    const std::string path = fmt::format("{}/{}-{}.repro", dir, to_string(r.kind), n);
    if (std::filesystem::exists(path, ec)) continue;
    std::ofstream f(path, std::ios::binary);
    f << format_reproducer(r);
    if (!f) {
      why = "cannot write " + path;
      return {};
    }
    return path;
  }
  why = "too many reproducers in " + dir;
  return {};
}

void record_finding(run_stats& stats, finding_record rec) {
  for (auto& f : stats.findings) {
    if (f.kind == rec.kind && f.fingerprint == rec.fingerprint) {
      ++f.occurrences;
      std::error_code ec;
      if (!rec.file.empty()) std::filesystem::remove(rec.file, ec);  // the first one's file stands for both
      return;
    }
  }
  stats.findings.push_back(std::move(rec));
}

void save_finding(finding_record& rec, fuzz_case best, std::string_view mode, const std::vector<std::string>& argv,
                  const fuzz_options& opts) {
  rec.frames_minimal = best.frames.size();
  rec.summary = summarize(best);
  for (const frame& f : best.frames) {
    // Kind, then each argument (or the bytes) with its length: no two different cases agree.
    rec.fingerprint.append(std::to_string(static_cast<int>(f.kind))).append(":");
    if (f.kind == frame_kind::command) {
      for (const auto& a : f.args) rec.fingerprint.append(std::to_string(a.size())).append(":").append(a);
    } else {
      rec.fingerprint.append(std::to_string(static_cast<int>(f.how))).append(":").append(std::to_string(f.close_after));
      rec.fingerprint.append(":").append(std::to_string(f.split_seed));
      rec.fingerprint.append(":").append(std::to_string(f.bytes.size())).append(":").append(f.bytes);
    }
    rec.fingerprint.append(";");
  }
  reproducer r;
  r.mode = std::string(mode);
  r.kind = rec.kind;
  r.detail = rec.detail;
  r.seed = opts.seed;
  r.client_argv = argv;
  r.steps = std::move(best);
  std::string why;
  rec.file = save_reproducer(opts.out_dir, r, why);
  if (rec.file.empty()) rec.detail.append(" (not saved: ").append(why).append(")");
}

std::string summarize(const fuzz_case& c) {
  std::string out;
  for (const frame& f : c.frames) {
    if (!out.empty()) out.append("; ");
    if (out.size() > 240) {
      out.append("...");
      break;
    }
    switch (f.kind) {
      case frame_kind::command:
        for (std::size_t i = 0; i < f.args.size(); ++i) {
          if (i != 0) out.push_back(' ');
          out.append(i == 0 ? f.args[i] : quote(std::string_view(f.args[i]).substr(0, 24)));
        }
        break;
      case frame_kind::raw: out.append("raw ").append(quote(std::string_view(f.bytes).substr(0, 40))); break;
      case frame_kind::reply:
        out.append("reply ").append(to_string(f.how)).append(" ").append(quote(std::string_view(f.bytes).substr(0, 40)));
        break;
    }
  }
  return out;
}

}  // namespace redring::fuzz
