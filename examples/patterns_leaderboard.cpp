// SPDX-License-Identifier: MIT
// A game's leaderboard: best scores, the top three, a player's standing and neighbours, with ties
// sharing a rank.
// Usage: patterns_leaderboard [redis://host:port | unix:///path]
#include "client/client.hpp"
#include "client/detached.hpp"
#include "client/url.hpp"
#include "patterns/leaderboard.hpp"
#include "patterns/script.hpp"

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

using namespace redring;
using namespace std::chrono_literals;

namespace {

void print(const char* title, const std::vector<patterns::standing>& list) {
  std::printf("%s\n", title);
  for (const auto& s : list) std::printf("  #%lld %-6s %g\n", static_cast<long long>(s.rank), s.member.c_str(), s.score);
}

}  // namespace

int main(int argc, char** argv) {
  client::options opts;
  std::string why;
  if (client::options_from_command_line(argc, argv, opts, &why)) {
    std::fprintf(stderr, "bad URL: %s\n", why.c_str());
    return 2;
  }
  net::loop loop;
  client::client redis(loop, opts);
  // A board per run (it expires a minute after its last score), keeping each player's best.
  patterns::leaderboard board(redis, "game-" + patterns::random_hex(4), {.expire_after = 60s});
  int status = 1;
  auto work = [&]() -> client::detached {
    const std::pair<const char*, double> games[] = {{"ada", 310}, {"bo", 450}, {"cy", 450}, {"di", 120},
                                                    {"ada", 480}, {"di", 90}, {"ed", 200}};
    for (const auto& [player, score] : games) {
      const auto s = co_await board.submit(player, score);
      if (!s) {
        std::fprintf(stderr, "submit failed: %s\n", s.error().what().c_str());
        loop.stop();
        co_return;
      }
    }
    const auto top = co_await board.top(3);
    const auto di = co_await board.rank("di");
    const auto near = co_await board.around("cy", 1);
    if (top && di && *di && near) {
      print("top 3:", *top);  // ada 480, then bo and cy tied at 450 (both #2)
      std::printf("di: #%lld with %g (a worse score did not replace the best)\n", static_cast<long long>((*di)->rank),
                  (*di)->score);
      print("around cy:", *near);
      status = top->size() == 3 && (*top)[1].rank == 2 && (*top)[2].rank == 2 && (*di)->score == 120 ? 0 : 1;
    }
    (void)co_await redis.del(board.key());
    loop.stop();
  };
  work();
  loop.run();
  return status;
}
