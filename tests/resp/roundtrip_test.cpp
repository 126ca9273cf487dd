// SPDX-License-Identifier: MIT
// Property tests: random values -> encode -> parse gives them back; random streams (valid and
// mutated) decode the same at random split points as whole.
#include "resp/reader.hpp"
#include "resp/value.hpp"
#include "resp/writer.hpp"

#include "tests/support/decode.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace redring::resp {
namespace {

class generator {
 public:
  explicit generator(std::uint32_t seed) : rng_(seed) {}

  value make(int depth = 0) {
    value v;
    if (chance(8)) v.attributes.push_back(pairs(depth + 1, pick(0, 2)));
    const int kind = pick(0, depth >= 5 ? 12 : 18);
    switch (kind) {
      case 0: v.data_type = type::simple_string; v.text = line(); break;
      case 1: v.data_type = type::simple_error; v.text = "ERR "; v.text.append(line()); break;
      case 2: {
        v.data_type = type::integer;
        v.integer = static_cast<std::int64_t>((std::uint64_t{rng_()} << pick(0, 31)) ^ (chance(2) ? ~std::uint64_t{0} : 0));
        v.text = std::to_string(v.integer);
        break;
      }
      case 3: v.data_type = type::blob_string; v.text = bytes(); break;
      case 4: v.data_type = type::blob_error; v.text = bytes(); break;
      case 5: v.data_type = type::verbatim_string; v.text = "txt:"; v.text.append(bytes()); break;
      case 6: v.data_type = type::null; break;
      case 7: v.data_type = type::null; v.null_origin = type::blob_string; break;
      case 8: v.data_type = type::null; v.null_origin = type::array; break;
      case 9:
        v.data_type = type::boolean;
        v.integer = pick(0, 1);
        v.text.assign(1, v.integer != 0 ? 't' : 'f');
        break;
      case 10: {
        static const char* doubles[] = {"1.5", "-0.25", "inf", "-inf", "nan", "1e10", "3.14159E-7", "42"};
        v.data_type = type::double_number;
        v.text = doubles[pick(0, 7)];
        break;
      }
      case 11:
        v.data_type = type::big_number;
        if (chance(2)) v.text.push_back('-');
        v.text.append(static_cast<std::size_t>(pick(1, 60)), '7');
        break;
      case 12: v.data_type = type::blob_string; v.streamed = true; v.text = bytes(); break;
      case 13: case 14: case 15: case 16: {
        static const type kinds[] = {type::array, type::set, type::push, type::array};
        v.data_type = kinds[kind - 13];
        v.streamed = v.data_type != type::push && chance(3);
        const int n = pick(0, 5);
        for (int i = 0; i < n; ++i) v.elements.push_back(make(depth + 1));
        break;
      }
      default:
        v.data_type = type::map;
        v.streamed = chance(3);
        v.elements = pairs(depth + 1, pick(0, 4));
        break;
    }
    return v;
  }

 private:
  std::vector<value> pairs(int depth, int n) {
    std::vector<value> out;
    for (int i = 0; i < 2 * n; ++i) out.push_back(make(depth));
    return out;
  }
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool chance(int one_in) { return pick(1, one_in) == 1; }
  std::string line() {  // any bytes but CR and LF
    std::string s(pick(0, 20), 'a');
    for (char& c : s) {
      do c = static_cast<char>(pick(0, 255)); while (c == '\r' || c == '\n');
    }
    return s;
  }
  std::string bytes() {
    std::string s(chance(10) ? pick(0, 70000) : pick(0, 40), '\0');
    for (char& c : s) c = static_cast<char>(pick(0, 255));
    return s;
  }
  std::mt19937 rng_;
};

using test::parse_one;

TEST(RoundTrip, RandomValuesSurviveEncodeAndParse) {
  generator g(20261123);
  for (int i = 0; i < 3000; ++i) {
    const value v = g.make();
    writer w(i % 2 == 0 ? 0 : 64);  // contiguous, and with references
    write(w, v);
    std::string wire;
    for (const iovec& part : w.iovecs()) wire.append(static_cast<const char*>(part.iov_base), part.iov_len);
    ASSERT_EQ(wire.size(), w.size());
    const value back = parse_one(wire);
    ASSERT_EQ(back, v) << "value " << i;
  }
}

TEST(RoundTrip, RandomStreamsDecodeTheSameInAnySplit) {
  generator g(7);
  std::mt19937 rng(99);
  for (int i = 0; i < 300; ++i) {
    writer w(0);
    const int replies = 1 + static_cast<int>(rng() % 6);
    for (int j = 0; j < replies; ++j) write(w, g.make());
    std::string wire(w.data());
    if (wire.size() > 20000) continue;
    // Half of the streams get a mutation: a flipped byte, a cut, or an inserted CR.
    if (i % 2 == 1 && !wire.empty()) {
      const std::size_t at = rng() % wire.size();
      switch (rng() % 3) {
        case 0: wire[at] = static_cast<char>(rng()); break;
        case 1: wire.resize(at); break;
        default: wire.insert(wire.begin() + static_cast<std::ptrdiff_t>(at), '\r'); break;
      }
    }
    const auto whole = test::decode(wire);
    if (i % 2 == 0) {
      EXPECT_EQ(whole.json.size(), static_cast<std::size_t>(replies));
      EXPECT_TRUE(whole.boundary);
    }
    if (wire.size() < 3000) {
      EXPECT_EQ(test::decode(wire, 1), whole) << i;
    }
    for (int k = 0; k < 5; ++k) {
      std::vector<std::size_t> cuts;
      std::size_t at = 0;
      while (!wire.empty() && at < wire.size()) {
        at += 1 + rng() % 50;
        if (at < wire.size()) cuts.push_back(at);
      }
      ASSERT_EQ(test::decode_split(wire, cuts), whole) << i;
    }
  }
}

}  // namespace
}  // namespace redring::resp
