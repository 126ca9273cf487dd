// SPDX-License-Identifier: MIT
// A provided buffer ring (io_uring, kernel 5.19+): the kernel picks a buffer for each receive, so
// idle connections hold no receive memory. Recycled by the owner as soon as the bytes are parsed.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <system_error>

namespace redring::net {

class loop;

/// `count` buffers of `size` bytes registered with a loop's ring under `group`. Lifecycle:
/// 1. A receive with IOSQE_BUFFER_SELECT and this group gets a buffer id in its CQE flags.
/// 2. The owner reads `data(id, bytes)` and calls `recycle(id)` when done with those bytes.
/// 3. With every buffer taken, receives fail with -ENOBUFS (backpressure): recycle, then re-arm.
class buffer_ring {
 public:
  /// Registers the ring; `ok()` tells whether the kernel accepted it. `count` is rounded up to a power of two.
  buffer_ring(io_uring& ring, std::uint16_t group, unsigned count, std::size_t size);
  ~buffer_ring();
  buffer_ring(const buffer_ring&) = delete;
  buffer_ring& operator=(const buffer_ring&) = delete;

  /// True if registered (false on kernels without provided buffer rings).
  [[nodiscard]] bool ok() const noexcept { return ring_ != nullptr; }
  /// Why registration failed, if it did.
  [[nodiscard]] std::error_code error() const noexcept { return error_; }
  [[nodiscard]] std::uint16_t group() const noexcept { return group_; }
  /// The first `bytes` of buffer `id`; valid until `recycle(id)`.
  [[nodiscard]] std::string_view data(std::uint16_t id, std::size_t bytes) const noexcept {
    return {memory_.get() + static_cast<std::size_t>(id) * size_, bytes};
  }
  /// Gives buffer `id` back to the kernel.
  void recycle(std::uint16_t id) noexcept;
  /// The buffer id of a CQE (valid when its flags have IORING_CQE_F_BUFFER).
  [[nodiscard]] static std::uint16_t id_of(std::uint32_t cqe_flags) noexcept {
    return static_cast<std::uint16_t>(cqe_flags >> IORING_CQE_BUFFER_SHIFT);
  }

 private:
  io_uring& uring_;
  io_uring_buf_ring* ring_ = nullptr;
  std::unique_ptr<char[]> memory_;
  std::size_t size_;
  unsigned count_;
  std::uint16_t group_;
  std::error_code error_;
};

}  // namespace redring::net
