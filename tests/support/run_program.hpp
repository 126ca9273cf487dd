// SPDX-License-Identifier: MIT
// Test support: runs a program through the shell and collects what it prints.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace redring::test {

/// Runs `command` through the shell (`/bin/sh -c`) with stderr joined to stdout, stores what it
/// printed in `output`, and returns its exit status (-1 if it could not run or did not exit).
inline int run_program(const std::string& command, std::string& output) {
  output.clear();
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) output.append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace redring::test
