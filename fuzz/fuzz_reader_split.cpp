// SPDX-License-Identifier: MIT
// fuzz_reader_split: the same bytes fed whole, cut at fuzzer-chosen points, and one byte at a time
// must give the same nodes, the same replies (canonical JSON) and the same final outcome.
//
// Input layout: byte 0 = control (low 3 bits: number k of cut points; high 5 bits: nodes per read
// call, 1..32), then k little-endian uint16 cut positions (taken modulo the payload size + 1), then
// the RESP payload. An input shorter than its header is used whole as payload with no cuts.
#include "fuzz_common.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace fuzz;
using resp::status;

struct feed_result {
  std::vector<owned_node> nodes;
  std::vector<std::string> replies;  // canonical JSON of each completed reply
  outcome end;
};

// The caller's side of the contract: keep the unconsumed bytes, append the next piece, and present
// the buffer from the first unconsumed byte. `cuts` are ascending offsets into `payload`.
feed_result feed(std::string_view payload, const std::vector<std::size_t>& cuts, const resp::limits& lim,
                 std::size_t batch) {
  resp::reader rd(lim);
  shape_checker shape(lim);
  reply_collector collector;
  feed_result res;
  std::vector<resp::node> out(batch);
  std::string buffer;  // unconsumed bytes; reallocates and moves as it grows: the reader keeps no pointers
  std::size_t fed = 0;
  std::uint64_t consumed_total = 0;
  bool failed = false;
  for (std::size_t piece = 0; piece <= cuts.size() && !failed; ++piece) {
    const std::size_t to = piece < cuts.size() ? cuts[piece] : payload.size();
    buffer.append(payload.substr(fed, to - fed));
    fed = to;
    for (;;) {
      shape.set_input(buffer);
      const resp::read_result r = rd.read(buffer, out);
      FUZZ_CHECK(r.consumed <= buffer.size());
      for (std::size_t i = 0; i < r.nodes; ++i) {
        shape.on_node(out[i]);
        collector.add(out[i]);
        res.nodes.emplace_back(out[i]);
      }
      consumed_total += r.consumed;
      FUZZ_CHECK(rd.stream_offset() == consumed_total);
      buffer.erase(0, r.consumed);  // the nodes' views die here; everything needed was copied
      if (r.state == status::ok) continue;
      if (r.state == status::error) {
        FUZZ_CHECK(r.error.offset >= consumed_total);  // the refused element stays unconsumed
        FUZZ_CHECK(r.error.offset <= fed);
        res.end = outcome{status::error, r.error.code, r.error.offset, false};
        failed = true;
        break;
      }
      FUZZ_CHECK(r.needed >= 1);
      res.end = outcome{status::need_more, {}, consumed_total, rd.at_reply_boundary()};
      break;
    }
  }
  for (const resp::value& v : collector.replies) res.replies.push_back(to_json(v));
  return res;
}

void compare(const feed_result& a, const feed_result& b) {
  FUZZ_CHECK(a.replies == b.replies);
  FUZZ_CHECK(a.end == b.end);
  FUZZ_CHECK(a.nodes == b.nodes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::size_t k = 0;
  std::size_t batch = 1;
  std::string_view header;
  if (!in.empty()) {
    const auto control = static_cast<unsigned char>(in[0]);
    k = control & 7;
    batch = 1 + (control >> 3);
    if (in.size() >= 1 + 2 * k) {
      header = in.substr(1, 2 * k);
      in.remove_prefix(1 + 2 * k);
    } else {
      k = 0;
      in.remove_prefix(1);
    }
  }
  const std::string_view payload = in;
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < k; ++i) {
    const std::size_t v = static_cast<unsigned char>(header[2 * i]) | (static_cast<std::size_t>(static_cast<unsigned char>(header[2 * i + 1])) << 8);
    cuts.push_back(v % (payload.size() + 1));
  }
  std::sort(cuts.begin(), cuts.end());

  std::vector<std::size_t> byte_cuts;
  if (payload.size() < 512) {
    for (std::size_t i = 1; i < payload.size(); ++i) byte_cuts.push_back(i);
  }

  static const resp::limits configs[] = {resp::default_limits, micro_limits};
  for (const resp::limits& lim : configs) {
    const feed_result whole = feed(payload, {}, lim, 256);
    compare(whole, feed(payload, cuts, lim, batch));
    if (payload.size() < 512) compare(whole, feed(payload, byte_cuts, lim, batch));
  }
  return 0;
}
