// SPDX-License-Identifier: MIT
// Test support: run code where io_uring is forbidden, as a container runtime's default seccomp
// profile forbids it (io_uring_setup fails with EPERM), to check that redring then fails clearly.
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace redring::test {

/// Makes io_uring_setup fail with EPERM in this process and in every process it starts from now on.
/// Irreversible: call it in a forked child. False where it cannot (an architecture not listed here,
/// or a kernel without seccomp filters).
inline bool deny_io_uring_setup() {
#if defined(__x86_64__)
  constexpr std::uint32_t arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr std::uint32_t arch = AUDIT_ARCH_AARCH64;
#else
  return false;
#endif
#if defined(__x86_64__) || defined(__aarch64__)
  sock_filter filter[] = {
      // Another architecture's system call numbers mean other calls: let those through.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  // No new privileges: what lets an unprivileged process install a filter (seccomp(2)).
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
#endif
}

/// How a child run by `run_without_io_uring` ended.
struct child_outcome {
  int exit_code = -1;   ///< its exit status, or -1 if a signal ended it
  int signal = 0;       ///< the signal that ended it (SIGABRT: std::terminate), else 0
  std::string output;   ///< what it wrote to stdout and stderr
};

/// The exit code of a child that could not install the filter (the test should skip).
inline constexpr int no_filter = 77;

/// Forks; the child forbids io_uring_setup, runs `body` with stdout and stderr sent to a pipe, and
/// exits with what `body` returns. Call from a test that has started no threads of its own.
template <class Body>
child_outcome run_without_io_uring(Body body) {
  child_outcome r;
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return r;
  std::fflush(nullptr);  // nothing buffered before the fork is written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return r;
  }
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    if (!deny_io_uring_setup()) ::_exit(no_filter);
    const int code = body();
    std::fflush(nullptr);
    ::_exit(code);  // not exit(): the test binary's atexit handlers belong to the parent
  }
  ::close(pipe_fds[1]);
  char buf[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

}  // namespace redring::test
