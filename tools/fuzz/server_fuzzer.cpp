// SPDX-License-Identifier: MIT
#include "tools/fuzz/server_fuzzer.hpp"

#include <algorithm>
#include <chrono>

namespace redring::fuzz {
namespace {

std::string info_field(const std::string& info, std::string_view field) {
  const std::size_t at = info.find(std::string(field).append(":"));
  if (at == std::string::npos) return {};
  const std::size_t from = at + field.size() + 1;
  return info.substr(from, info.find_first_of("\r\n", from) - from);
}

}  // namespace

server_fuzzer::server_fuzzer(server_target& target, const fuzz_options& opts) : target_(target), opts_(opts) {
  settings_.timeout = opts.timeout;
  const std::string password = opts.auth_password();
  if (!password.empty()) {
    const std::string user = opts.auth_user();
    settings_.preamble.push_back(user.empty() ? command_frame({"AUTH", password}) : command_frame({"AUTH", user, password}));
  }
  if (const int db = opts.database(); db != 0) settings_.preamble.push_back(command_frame({"SELECT", std::to_string(db)}));
}

std::optional<std::string> server_fuzzer::prepare() {
  std::string why;
  const auto info = call(target_.where, settings_, {"COMMAND", "INFO"}, why);
  if (!info) return why;
  if (info->is_error()) return "COMMAND INFO failed: " + info->text;
  auto docs = call(target_.where, settings_, {"COMMAND", "DOCS"}, why);
  if (!docs || docs->is_error()) docs = resp::value{};  // before 7.0: arity and key positions only
  if (const auto server = call(target_.where, settings_, {"INFO", "server"}, why); server && !server->is_error()) {
    version_ = info_field(server->text, "redis_version");
  }
  table_ = command_table::from_replies(*info, *docs);
  if (opts_.shape_checks) {
    shapes_ = reply_shapes(table_, *docs);
    settings_.shapes = &shapes_;
  }
  generator_options g;
  g.allow_dangerous = opts_.allow_dangerous;
  g.malformed_percent = opts_.malformed_percent;
  g.mutate_percent = opts_.mutate_percent;
  g.batch = opts_.batch;
  g.only = opts_.only;
  g.bounded_integers = !opts_.allow_dangerous;
  g.keep_connection_state = !settings_.preamble.empty();
  gen_ = std::make_unique<generator>(table_, g);
  if (gen_->eligible().empty()) return std::string("no command left to generate (see --only)");
  return std::nullopt;
}

probe_result server_fuzzer::run_once(const fuzz_case& c) {
  std::string why;
  if (target_.restart && check_alive(target_.where, settings_, why) != liveness::alive) {
    if (!target_.restart(target_.where, why)) {
      // Not the case's finding: the run cannot go on (run() stops, the tool exits 3).
      lost_ = "cannot restart the private server: " + why;
      probe_result r;
      r.found = {finding_kind::none, lost_};
      r.succeeded.assign(c.frames.size(), false);
      return r;
    }
  }
  probe_result r = run_case(target_.where, c, settings_, "redring-fuzz-sentinel-" + std::to_string(++nonce_));
  if ((r.found.kind == finding_kind::crash || r.found.kind == finding_kind::hang) && target_.restart) {
    if (!target_.restart(target_.where, why)) {
      r.found.detail.append("; cannot restart the server: ").append(why);
      lost_ = "cannot restart the private server: " + why;
    }
  }
  return r;
}

void server_fuzzer::reset_keys() {
  // Shortening arguments makes key names outside the generator's ("", "rf:in"): only FLUSHALL
  // catches those, and it is allowed only where destructive commands are (the private server).
  std::string why;
  (void)call(target_.where, settings_, opts_.allow_dangerous ? std::vector<std::string>{"FLUSHALL"} : delete_fuzz_keys().args,
             why);
}

bool server_fuzzer::settle() {
  std::string why;
  const auto until = clock::now() + settle_limit;
  for (;;) {
    const liveness now = check_alive(target_.where, settings_, why);
    if (now == liveness::alive) return true;
    if (target_.restart) return target_.restart(target_.where, why) && check_alive(target_.where, settings_, why) == liveness::alive;
    if (now == liveness::dead || clock::now() >= until) return false;
  }
}

finding_record server_fuzzer::handle(const fuzz_case& c, const outcome& found, const std::deque<fuzz_case>& history,
                                     clock::time_point deadline) {
  finding_record rec;
  rec.kind = found.kind;
  rec.detail = found.detail;
  rec.frames_found = c.frames.size();
  fuzz_case best = c;
  // A crash can be re-run only on a server we restart; a hang also on one that recovers by itself.
  const bool can_rerun = target_.restart || found.kind != finding_kind::crash;
  // Each run starts from the same keyspace: the set-up (DEL, then a key of every type) is minimised
  // like any frame, and without this a candidate that lost it could still reproduce on keys left by
  // the previous run, giving a reproducer that fails on a fresh server.
  reproduces same = [&](const fuzz_case& candidate) {
    reset_keys();
    return run_once(candidate).found.kind == found.kind;
  };
  if (found.kind == finding_kind::hang) same = confirmed_by_trials(same, [this] { return settle(); }, opts_.hang_trials);
  if (can_rerun) {
    if (same(c)) {
      rec.reproduced = true;
    } else if (!history.empty()) {
      // It may need state an earlier case left: try the recent cases and this one on one connection.
      fuzz_case joined;
      for (const fuzz_case& h : history) joined.frames.insert(joined.frames.end(), h.frames.begin(), h.frames.end());
      joined.frames.insert(joined.frames.end(), c.frames.begin(), c.frames.end());
      if (same(joined)) {
        rec.reproduced = true;
        best = std::move(joined);
        rec.frames_found = best.frames.size();
      }
    }
  }
  if (rec.reproduced && opts_.minimise) {
    minimise_stats ms;
    // Every accepted step of a hang costs --hang-trials runs that each wait out the timeout twice
    // (the reply, then the liveness PING): it gets that many times the time.
    const auto time = opts_.minimise_time * (found.kind == finding_kind::hang ? opts_.hang_trials : 1);
    best = minimise(std::move(best), same, {.attempts = 5000, .time = time, .deadline = deadline}, ms);
    rec.attempts = ms.attempts;
    // The detail of the minimal case, which is what the reproducer shows.
    const probe_result again = run_once(best);
    if (again.found.kind == found.kind) rec.detail = again.found.detail;
  }
  save_finding(rec, std::move(best), "server", {}, opts_);
  return rec;
}

run_stats server_fuzzer::run(const std::function<bool(const run_stats&)>& progress) {
  stats_.mode = "server";
  stats_.target = target_.description + (version_.empty() ? "" : " (redis " + version_ + ")");
  stats_.seed = opts_.seed;
  stats_.eligible = gen_->eligible().size();
  stats_.shape_commands = settings_.shapes != nullptr ? shapes_.size() : 0;
  const std::size_t setup = gen_->setup_frames().size();
  std::deque<fuzz_case> history;
  run_pacer pacer(opts_, stats_, progress);
  for (std::uint64_t index = 0; pacer.next(index); ++index) {
    const fuzz_case c = gen_->make_case(opts_.seed, index);
    const probe_result r = run_once(c);
    if (!lost_.empty() && r.found.kind == finding_kind::none) break;  // the server is gone for good
    ++stats_.cases;
    stats_.commands += c.frames.size() + 2 + settings_.preamble.size();  // + DISCARD and the sentinel
    stats_.slow += r.slow ? 1 : 0;
    stats_.shape_checked += r.shape_checked;
    for (std::size_t i = setup; i < c.frames.size(); ++i) {
      if (c.frames[i].kind == frame_kind::raw) {
        ++stats_.raw_frames;
        continue;
      }
      const std::string name = command_name(table_, c.frames[i]);
      const command_spec* spec = table_.find(name);
      if (spec == nullptr || std::find(gen_->eligible().begin(), gen_->eligible().end(), spec) == gen_->eligible().end()) {
        continue;  // a mutation made another name of it
      }
      distinct_.insert(name);
      if (r.succeeded[i]) distinct_ok_.insert(name);
    }
    stats_.distinct = distinct_.size();
    stats_.distinct_ok = distinct_ok_.size();
    if (r.found.kind != finding_kind::none) {
      finding_record rec = handle(c, r.found, history, pacer.deadline());
      record_finding(stats_, std::move(rec));
      // An external server we cannot restart: nothing more to learn once it is gone, or hung for good.
      if (!target_.restart && r.found.kind == finding_kind::crash) {
        stats_.stopped = "the server is gone (" + r.found.detail + ")";
        break;
      }
      if (!target_.restart && r.found.kind == finding_kind::hang && !settle()) {
        stats_.stopped = "the server did not answer a PING within " +
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(settle_limit).count()) +
                         " s of the hang";
        break;
      }
    }
    if (!lost_.empty()) break;
    history.push_back(c);
    if (history.size() > 8) history.pop_front();
  }
  if (!lost_.empty()) {
    stats_.stopped = lost_;
    stats_.unusable = true;
  }
  pacer.finish();
  return stats_;
}

}  // namespace redring::fuzz
