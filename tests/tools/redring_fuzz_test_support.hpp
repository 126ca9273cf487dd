// SPDX-License-Identifier: MIT
// Helpers shared by redring-fuzz's tests: a temp dir, and running the binary.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace redring::fuzz::testing {

/// A fresh temp dir, removed with everything in it at the end of the scope.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/redring-fuzz-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Runs `redring-fuzz <args>` (through the shell) and returns its exit status; stdout and stderr
/// go to `output`.
inline int run_tool(const std::string& args, std::string& output) {
  const std::string cmd = std::string(REDRING_FUZZ_PATH) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  output.clear();
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) output.append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace redring::fuzz::testing
