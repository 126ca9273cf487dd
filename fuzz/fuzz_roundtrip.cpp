// SPDX-License-Identifier: MIT
// fuzz_roundtrip: random resp::value trees (every type, attributes, streamed forms) are encoded with
// resp::write and read back; the decoded values must equal the originals, and so must their JSON.
// Also: writer::double_number / bulk(double) / bulk(int64) / command() read back to the same numbers
// and arguments.
#include "fuzz_common.hpp"

#include "resp/writer.hpp"

#include <fuzzer/FuzzedDataProvider.h>
#include <sys/uio.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace fuzz;
using resp::type;
using resp::value;

constexpr int max_depth = 16;

class generator {
 public:
  explicit generator(FuzzedDataProvider& fdp) : fdp_(fdp) {}

  value make(int depth) {
    value v;
    if (depth < max_depth - 1 && budget_ > 0 && fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) {
      const int count = fdp_.ConsumeIntegralInRange<int>(1, 2);
      for (int a = 0; a < count; ++a) {
        std::vector<value> attribute;
        const int pairs = fdp_.ConsumeIntegralInRange<int>(0, 3);
        for (int i = 0; i < 2 * pairs; ++i) attribute.push_back(make(depth + 1));
        v.attributes.push_back(std::move(attribute));
      }
    }
    --budget_;
    const bool leaf = depth >= max_depth || budget_ <= 0;
    const int kind = fdp_.ConsumeIntegralInRange<int>(0, leaf ? 12 : 17);
    switch (kind) {
      case 0: v.data_type = type::simple_string, v.text = line_text(); break;
      case 1: v.data_type = type::simple_error, v.text = line_text(); break;
      case 2:
        // The reader keeps the text as sent; write() sends the canonical decimal.
        v.data_type = type::integer;
        v.integer = fdp_.ConsumeIntegral<std::int64_t>();
        v.text = decimal(v.integer);
        break;
      case 3:
        v.data_type = type::double_number;
        v.text = double_text();
        FUZZ_CHECK(oracle::is_double(v.text));
        check_parse_double(v.text);
        break;
      case 4: v.data_type = type::big_number, v.text = big_number_text(); break;
      case 5:
        v.data_type = type::boolean;
        v.integer = fdp_.ConsumeBool() ? 1 : 0;
        v.text = v.integer != 0 ? "t" : "f";
        break;
      case 6: {
        static constexpr type origins[] = {type::null, type::blob_string, type::array};
        v.data_type = type::null;
        v.null_origin = origins[fdp_.ConsumeIntegralInRange<int>(0, 2)];
        break;
      }
      case 7:
      case 8:
        v.data_type = type::blob_string;
        v.streamed = kind == 8;
        v.text = fdp_.ConsumeRandomLengthString(300);
        break;
      case 9: v.data_type = type::blob_error, v.text = fdp_.ConsumeRandomLengthString(100); break;
      case 10: {
        v.data_type = type::verbatim_string;
        std::string format = fdp_.ConsumeBytesAsString(3);
        format.resize(3, 't');  // arbitrary bytes: the reader only requires `:` at index 3
        v.text = format + ":" + fdp_.ConsumeRandomLengthString(100);
        break;
      }
      case 11:
      case 12:
        // Empty aggregates are leaves.
        v.data_type = pick_aggregate(v.streamed);
        break;
      default: {
        v.data_type = pick_aggregate(v.streamed);
        const int count = fdp_.ConsumeIntegralInRange<int>(1, 6);
        const int children = count * static_cast<int>(resp::multiplicity(v.data_type));
        for (int i = 0; i < children && budget_ > 0; ++i) v.elements.push_back(make(depth + 1));
        if (v.data_type == type::map && v.elements.size() % 2 != 0) v.elements.push_back(make(max_depth));
        break;
      }
    }
    return v;
  }

 private:
  type pick_aggregate(bool& streamed) {
    static constexpr type kinds[] = {type::array, type::set, type::map, type::push};
    const type t = kinds[fdp_.ConsumeIntegralInRange<int>(0, 3)];
    streamed = t != type::push && fdp_.ConsumeBool();
    return t;
  }

  // A simple string or error: any bytes except the CRLF that would end the line.
  std::string line_text() {
    std::string s = fdp_.ConsumeRandomLengthString(64);
    for (std::size_t i = 0; i + 1 < s.size(); ++i)
      if (s[i] == '\r' && s[i + 1] == '\n') s[i + 1] = 'n';
    return s;
  }

  std::string digits(int max) {
    std::string s;
    const int n = fdp_.ConsumeIntegralInRange<int>(1, max);
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + fdp_.ConsumeIntegralInRange<int>(0, 9)));
    return s;
  }

  std::string sign() {
    switch (fdp_.ConsumeIntegralInRange<int>(0, 2)) {
      case 1: return "-";
      case 2: return "+";
      default: return "";
    }
  }

  // Any text of the RESP3 double grammar: [+-]?(inf|nan|digits[.digits][(e|E)[+-]digits]).
  std::string double_text() {
    switch (fdp_.ConsumeIntegralInRange<int>(0, 4)) {
      case 0: {
        const double d = fdp_.ConsumeFloatingPoint<double>();
        if (std::isnan(d)) return "nan";
        if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
        char buf[40];
        return std::string(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
      }
      case 1: return sign() + (fdp_.ConsumeBool() ? "inf" : "nan");
      case 2: {
        // Long mantissas: hundreds of zeros before or after the significant digits.
        std::string s = sign();
        const std::string zeros(fdp_.ConsumeIntegralInRange<std::size_t>(0, 400), '0');
        if (fdp_.ConsumeBool()) s += "0." + zeros + digits(20);
        else s += digits(20) + zeros + (fdp_.ConsumeBool() ? "." + digits(5) : "");
        if (fdp_.ConsumeBool()) s += "e" + sign() + digits(3);
        return s;
      }
      default: {
        std::string s = sign() + digits(30);
        if (fdp_.ConsumeBool()) s += "." + digits(30);
        if (fdp_.ConsumeBool()) s += (fdp_.ConsumeBool() ? "e" : "E") + sign() + digits(4);
        return s;
      }
    }
  }

  std::string big_number_text() { return sign() + digits(80); }

  FuzzedDataProvider& fdp_;
  int budget_ = 200;
};

// Reads `bytes` whole with default limits; returns the completed replies, requiring the input to be
// exactly those replies.
std::vector<value> read_back(std::string_view bytes) {
  resp::reader rd;
  shape_checker shape(resp::default_limits);
  reply_collector collector;
  std::vector<resp::node> out(32);
  std::size_t pos = 0;
  for (;;) {
    const std::string_view rest = bytes.substr(pos);
    shape.set_input(rest);
    const resp::read_result r = rd.read(rest, out);
    for (std::size_t i = 0; i < r.nodes; ++i) {
      shape.on_node(out[i]);
      collector.add(out[i]);
    }
    pos += r.consumed;
    if (r.state == resp::status::error) {
      std::fprintf(stderr, "read back failed: %s\n", r.error.message().c_str());
      FUZZ_CHECK(r.state != resp::status::error);
    }
    if (r.state == resp::status::need_more) break;
  }
  FUZZ_CHECK(pos == bytes.size());
  FUZZ_CHECK(rd.at_reply_boundary());
  return std::move(collector.replies);
}

std::string gather(resp::writer& w) {
  std::string s;
  for (const iovec& io : w.iovecs()) s.append(static_cast<const char*>(io.iov_base), io.iov_len);
  return s;
}

// The writer's own number and command encodings read back to what was written.
void check_writer_numbers(FuzzedDataProvider& fdp) {
  const double d = fdp.ConsumeFloatingPoint<double>();
  const double d_bits = std::bit_cast<double>(fdp.ConsumeIntegral<std::uint64_t>());
  const std::int64_t i = fdp.ConsumeIntegral<std::int64_t>();
  const std::uint64_t u = fdp.ConsumeIntegral<std::uint64_t>();
  std::vector<std::string> args;
  const int nargs = fdp.ConsumeIntegralInRange<int>(0, 4);
  for (int k = 0; k < nargs; ++k) args.push_back(fdp.ConsumeRandomLengthString(40));

  resp::writer w(0);
  w.double_number(d);
  w.double_number(d_bits);
  w.bulk(d_bits);
  w.bulk(i);
  w.command("CMD", i, u, d_bits, args);
  const std::vector<value> got = read_back(w.data());
  FUZZ_CHECK(got.size() == 5);

  double parsed = 0;
  FUZZ_CHECK(got[0].data_type == type::double_number && resp::parse_double(got[0].text, parsed));
  FUZZ_CHECK(same_double(parsed, d));
  FUZZ_CHECK(got[1].data_type == type::double_number && resp::parse_double(got[1].text, parsed));
  FUZZ_CHECK(same_double(parsed, d_bits));
  FUZZ_CHECK(got[2].data_type == type::blob_string && resp::parse_double(got[2].text, parsed));
  FUZZ_CHECK(same_double(parsed, d_bits));
  FUZZ_CHECK(got[3].data_type == type::blob_string && got[3].text == decimal(i));

  const value& cmd = got[4];
  FUZZ_CHECK(cmd.data_type == type::array && cmd.elements.size() == 4 + args.size());
  for (const value& e : cmd.elements) FUZZ_CHECK(e.data_type == type::blob_string && !e.streamed);
  FUZZ_CHECK(cmd.elements[0].text == "CMD");
  FUZZ_CHECK(cmd.elements[1].text == decimal(i));
  FUZZ_CHECK(cmd.elements[2].text == std::to_string(u));
  FUZZ_CHECK(resp::parse_double(cmd.elements[3].text, parsed) && same_double(parsed, d_bits));
  for (std::size_t k = 0; k < args.size(); ++k) FUZZ_CHECK(cmd.elements[4 + k].text == args[k]);

  // The span overload writes the same bytes as the variadic one.
  std::vector<std::string_view> views;
  for (const std::string& a : args) views.emplace_back(a);
  resp::writer a(0), b(4);
  a.command(std::span<const std::string_view>(views));
  b.command(args);
  FUZZ_CHECK(a.data() == gather(b));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  check_writer_numbers(fdp);

  generator gen(fdp);
  std::vector<value> originals;
  const int replies = fdp.ConsumeIntegralInRange<int>(1, 3);
  for (int k = 0; k < replies; ++k) originals.push_back(gen.make(0));

  resp::writer contiguous(0);
  resp::writer referencing(fdp.ConsumeIntegralInRange<std::size_t>(1, 64));
  for (const value& v : originals) {
    resp::write(contiguous, v);
    resp::write(referencing, v);
  }
  const std::string_view bytes = contiguous.data();
  FUZZ_CHECK(bytes.size() == contiguous.size());
  FUZZ_CHECK(gather(referencing) == bytes);

  const std::vector<value> decoded = read_back(bytes);
  FUZZ_CHECK(decoded.size() == originals.size());
  for (std::size_t k = 0; k < originals.size(); ++k) {
    const std::string json = to_json(originals[k]);
    FUZZ_CHECK(json_validator::valid(json));
    FUZZ_CHECK(json == to_json(decoded[k]));
    FUZZ_CHECK(decoded[k] == originals[k]);
  }
  return 0;
}
