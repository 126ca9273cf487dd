// SPDX-License-Identifier: MIT
// respcat as a program: output, exit status and chunk invariance.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

struct run_result {
  std::string out;
  std::string err;
  int status = -1;
};

run_result respcat(const std::string& input, const std::string& args = "") {
  char tmpl[] = "/tmp/respcat-test-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  ::close(fd);
  const std::string in = tmpl, out = in + ".out", err = in + ".err";
  std::ofstream(in, std::ios::binary) << input;
  const std::string cmd = std::string(RESPCAT_PATH) + " " + args + " < " + in + " > " + out + " 2> " + err;
  const int raw = std::system(cmd.c_str());
  run_result r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  auto slurp = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  r.out = slurp(out);
  r.err = slurp(err);
  std::remove(in.c_str());
  std::remove(out.c_str());
  std::remove(err.c_str());
  return r;
}

TEST(Respcat, PrintsOneLinePerReply) {
  const auto r = respcat("+OK\r\n*2\r\n:1\r\n$-1\r\n|1\r\n+a\r\n#t\r\n%1\r\n$1\r\nk\r\n=5\r\ntxt:v\r\n");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out,
            "{\"simple\":\"OK\"}\n{\"array\":[{\"integer\":\"1\"},{\"null\":\"bulk\"}]}\n"
            "{\"attribute\":[[{\"simple\":\"a\"},{\"boolean\":true}]],\"value\":{\"map\":[[{\"bulk\":\"k\"},"
            "{\"verbatim\":{\"format\":\"txt\",\"text\":\"v\"}}]]}}\n");
}

TEST(Respcat, ExitStatusAndChunkInvariance) {
  struct c { std::string input; int status; std::size_t lines; };
  const c cases[] = {
      {"", 0, 0},
      {"+OK\r\n$3\r\nabc\r\n", 0, 2},
      {"+OK\r\n:1\r\n*2\r\n:1\r\n", 2, 2},
      {"+OK\r\n$3\r\nab", 2, 1},
      {"+OK\r\n:x\r\n+after\r\n", 1, 1},
      {"$?\r\n;1\r\na\r\n:1\r\n", 1, 0},
      {"*1\r\n\xff", 1, 0},
  };
  for (const auto& k : cases) {
    const auto whole = respcat(k.input);
    EXPECT_EQ(whole.status, k.status) << k.input;
    EXPECT_EQ(static_cast<std::size_t>(std::count(whole.out.begin(), whole.out.end(), '\n')), k.lines) << k.input;
    if (k.status == 1) {
      EXPECT_NE(whole.err.find(" at byte "), std::string::npos) << whole.err;
    }
    for (const char* chunk : {"--chunk 1", "--chunk 2", "--chunk 7", "--chunk 0"}) {
      const auto split = respcat(k.input, chunk);
      EXPECT_EQ(split.status, whole.status) << k.input << " " << chunk;
      EXPECT_EQ(split.out, whole.out) << k.input << " " << chunk;
      EXPECT_EQ(split.err, whole.err) << k.input << " " << chunk;
    }
  }
}

// Output that cannot be written is an error (74, EX_IOERR), not a silent success.
TEST(Respcat, AnUnwritableOutputIsAnError) {
  const std::string cmd = std::string("printf '+OK\\r\\n' | ") + RESPCAT_PATH + " > /dev/full 2>/dev/null";
  const int raw = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(raw));
  EXPECT_EQ(WEXITSTATUS(raw), 74);
  // Also when a protocol error follows the reply that could not be written (it exited 1, the lost
  // output unreported), and when the input ends inside a reply.
  for (const char* input : {"+OK\\r\\nx", "+OK\\r\\n$5\\r\\nab"}) {
    const std::string after = std::string("printf '") + input + "' | " + RESPCAT_PATH + " > /dev/full 2>/dev/null";
    const int status = std::system(after.c_str());
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 74) << input;
  }
}

TEST(Respcat, RejectsBadArguments) {
  EXPECT_EQ(respcat("", "--chunk x").status, 64);
  EXPECT_EQ(respcat("", "--bogus").status, 64);
  EXPECT_EQ(respcat("", "/nonexistent/file").status, 66);
}

}  // namespace
