// SPDX-License-Identifier: MIT
// Host name lookups off the loop thread.
#pragma once

#include "net/address.hpp"
#include "net/loop.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace redring::net {

/// Runs host name lookups on a worker thread and hands each result back on the loop's thread:
/// getaddrinfo blocks for as long as DNS takes (seconds when a server does not answer), and a loop
/// blocked in it stalls every connection it serves. Up to `max_workers` lookups run at once, each on
/// a worker started when a lookup finds none idle (a name whose DNS does not answer holds one, not
/// the others). Not thread-safe: call it on the loop's thread.
class resolver {
 public:
  /// Called on the loop's thread with the lookup's outcome; `addresses` may be moved from.
  using done_fn = void (*)(void* context, std::error_code ec, std::vector<address>& addresses);
  struct query;
  /// Lookups that may run at once.
  static constexpr std::size_t max_workers = 4;

  explicit resolver(loop& l, lookup_fn fn = &address::resolve);
  /// Waits for the lookups in progress, if any (a worker cannot be interrupted inside getaddrinfo:
  /// with a DNS server that does not answer, that is its timeout); calls no callback.
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  /// Starts looking up `host`; `done(context, ...)` runs on a later loop turn, unless cancelled
  /// first. The handle is valid until then or until `cancel`. When no worker thread can be started
  /// (none running, and the process at its thread limit), `done` gets that error on a later turn.
  [[nodiscard]] query* lookup(std::string host, std::uint16_t port, done_fn done, void* context);
  /// `done` will not be called for `q` (a lookup still running finishes and is dropped).
  void cancel(query* q) noexcept;

 private:
  void work();
  static void on_results(task* t);

  loop& loop_;
  lookup_fn lookup_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<query*> pending_;   // guarded by mutex_: waiting for the worker, oldest first
  std::vector<query*> finished_;  // guarded by mutex_: looked up, for the loop thread
  bool posted_ = false;           // guarded by mutex_: results_task_ is queued on the loop
  bool stopping_ = false;         // guarded by mutex_
  std::size_t idle_ = 0;          // guarded by mutex_: workers waiting for a lookup
  struct owned_task : task {
    resolver* owner = nullptr;
  };
  owned_task results_task_;
  std::vector<std::thread> workers_;  // guarded by mutex_ (joined by the destructor)
};

}  // namespace redring::net
