// SPDX-License-Identifier: MIT
#include "patterns/error.hpp"

#include <string>

namespace redring::patterns {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "redring.patterns"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::not_acquired: return "lock not acquired";
      case errc::load_failed: return "cache loader failed";
      case errc::decode_failed: return "cache value could not be decoded";
    }
    return "unknown patterns error";
  }
};

}  // namespace

const std::error_category& patterns_category() noexcept {
  static const category instance;
  return instance;
}

}  // namespace redring::patterns
