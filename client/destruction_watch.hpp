// SPDX-License-Identifier: MIT
// Lets a member function that runs callbacks (close(), which completes every queued command) learn
// that one of them destroyed its object, so it stops touching it.
#pragma once

namespace redring::client::detail {

/// Watches, for one call, whether the object owning `slot` (a `bool*` member, null when no call
/// watches) is destroyed: the owner's destructor calls `destroyed(slot)`. Calls nest (a completion
/// closes the object again): the destructor marks the innermost watch, and each passes it outwards
/// from `gone()`. On leaving the call (return or exception) with the owner alive, the outer watch,
/// if any, is restored.
class destruction_watch {
 public:
  explicit destruction_watch(bool*& slot) noexcept : slot_(slot), outer_(slot) { slot_ = &destroyed_; }
  destruction_watch(const destruction_watch&) = delete;
  destruction_watch& operator=(const destruction_watch&) = delete;
  ~destruction_watch() {
    if (!destroyed_) slot_ = outer_;  // the owner, and so `slot_`, alive
  }
  /// True once the owner was destroyed: the caller must return without touching it.
  [[nodiscard]] bool gone() noexcept {
    if (!destroyed_) return false;
    if (outer_ != nullptr) *outer_ = true;
    return true;
  }
  /// For the owner's destructor: marks the watch under way, if any.
  static void destroyed(bool*& slot) noexcept {
    if (slot != nullptr) *slot = true;
    slot = nullptr;
  }

 private:
  bool*& slot_;
  bool* const outer_;
  bool destroyed_ = false;
};

}  // namespace redring::client::detail
