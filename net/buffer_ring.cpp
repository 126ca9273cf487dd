// SPDX-License-Identifier: MIT
#include "net/buffer_ring.hpp"

#include <sys/mman.h>

#include <bit>

namespace redring::net {

buffer_ring::buffer_ring(io_uring& ring, std::uint16_t group, unsigned count, std::size_t size)
    : uring_(ring), size_(size), count_(std::bit_ceil(std::max(count, 1u))), group_(group) {
  // The ring of buffer descriptors must be page aligned: mmap gives that (liburing 2.3 has no
  // io_uring_setup_buf_ring helper).
  // The buffers first: an allocation that throws leaves nothing mapped or registered behind.
  memory_ = std::make_unique_for_overwrite<char[]>(count_ * size_);
  const std::size_t bytes = count_ * sizeof(io_uring_buf);
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) {
    error_.assign(errno, std::system_category());
    return;
  }
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
  reg.ring_entries = count_;
  reg.bgid = group_;
  if (const int rc = io_uring_register_buf_ring(&uring_, &reg, 0); rc != 0) {
    ::munmap(mem, bytes);
    error_.assign(-rc, std::system_category());
    return;
  }
  ring_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(ring_);
  const int mask = io_uring_buf_ring_mask(count_);
  for (unsigned i = 0; i < count_; ++i) {
    io_uring_buf_ring_add(ring_, memory_.get() + i * size_, static_cast<unsigned>(size_), static_cast<unsigned short>(i),
                          mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(ring_, static_cast<int>(count_));
}

buffer_ring::~buffer_ring() {
  if (ring_ == nullptr) return;
  io_uring_unregister_buf_ring(&uring_, group_);
  ::munmap(ring_, count_ * sizeof(io_uring_buf));
}

void buffer_ring::recycle(std::uint16_t id) noexcept {
  io_uring_buf_ring_add(ring_, memory_.get() + static_cast<std::size_t>(id) * size_, static_cast<unsigned>(size_), id,
                        io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(ring_, 1);
}

}  // namespace redring::net
