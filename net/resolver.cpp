// SPDX-License-Identifier: MIT
#include "net/resolver.hpp"

#include <algorithm>
#include <system_error>
#include <utility>

namespace redring::net {

struct resolver::query {
  std::string host;
  std::uint16_t port = 0;
  done_fn done = nullptr;
  void* context = nullptr;  // null once cancelled (loop thread only)
  std::error_code ec;
  std::vector<address> addresses;
};

resolver::resolver(loop& l, lookup_fn fn) : loop_(l), lookup_(fn) {
  results_task_.fn = &resolver::on_results;
  results_task_.owner = this;
}

resolver::~resolver() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& w : workers_) w.join();
  // Nothing runs after the join: what is left was never handed back. results_task_ may still be
  // queued on the loop, which is why a loop destroys its resolver after its last turn.
  for (query* q : pending_) delete q;
  for (query* q : finished_) delete q;
}

resolver::query* resolver::lookup(std::string host, std::uint16_t port, done_fn done, void* context) {
  auto* q = new query{std::move(host), port, done, context, {}, {}};
  {
    const std::lock_guard lock(mutex_);
    pending_.push_back(q);
    // Started on demand, up to max_workers: a program that never looks up a name runs no extra
    // thread, and a name whose DNS does not answer (seconds per try) holds one worker, not every
    // other connect of the loop.
    if (idle_ < pending_.size() && workers_.size() < max_workers) {
      try {
        workers_.emplace_back([this] { work(); });
      } catch (const std::system_error& e) {
        // No thread for it (a process at its thread limit). A worker already running takes it in
        // turn; with none, it would wait for ever: it fails now, through the loop like any result
        // (the caller holds `q` until its callback, which must not run inside this call).
        if (workers_.empty()) {
          pending_.pop_back();
          q->ec = e.code();
          finished_.push_back(q);
          if (!posted_) {
            posted_ = true;
            loop_.post(results_task_);
          }
        }
      }
    }
  }
  wake_.notify_one();
  return q;
}

void resolver::cancel(query* q) noexcept {
  {
    const std::lock_guard lock(mutex_);
    const auto it = std::find(pending_.begin(), pending_.end(), q);
    if (it != pending_.end()) {  // not started: forget it now
      pending_.erase(it);
      delete q;
      return;
    }
  }
  // Running or finished: on_results drops it (both run on the loop thread, so this store is seen).
  q->context = nullptr;
}

void resolver::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    --idle_;
    if (stopping_) return;
    query* q = pending_.front();
    pending_.erase(pending_.begin());
    lock.unlock();
    q->ec = lookup_(q->host, q->port, q->addresses);
    lock.lock();
    finished_.push_back(q);
    if (stopping_) return;  // the destructor frees it
    if (!posted_) {
      posted_ = true;
      loop_.post(results_task_);  // one task for any number of results
    }
  }
}

void resolver::on_results(task* t) {
  resolver* self = static_cast<owned_task*>(t)->owner;
  std::vector<query*> ready;
  {
    const std::lock_guard lock(self->mutex_);
    self->posted_ = false;
    ready.swap(self->finished_);
  }
  for (query* q : ready) {
    if (q->context != nullptr) q->done(q->context, q->ec, q->addresses);
    delete q;
  }
}

}  // namespace redring::net
