// SPDX-License-Identifier: MIT
// fuzz_reader: arbitrary bytes through resp::reader under three sets of limits, checking the node
// shape rules, the read_result contract, the builder, the canonical JSON and a write/re-read round trip.
#include "fuzz_common.hpp"

#include "resp/writer.hpp"

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace fuzz;
using resp::status;

struct parse_run {
  std::vector<owned_node> nodes;
  std::vector<resp::value> replies;
  outcome end;
};

bool is_limit_error(resp::errc e) {
  return e == resp::errc::bulk_too_long || e == resp::errc::aggregate_too_large ||
         e == resp::errc::nesting_too_deep || e == resp::errc::line_too_long;
}

bool is_protocol_error(resp::errc e) {
  return static_cast<int>(e) >= static_cast<int>(resp::errc::invalid_type_byte) &&
         static_cast<int>(e) <= static_cast<int>(resp::errc::invalid_stream_part);
}

// Feeds all of `input` (presented from the first unconsumed byte, as the contract says), `batch`
// nodes per call, checking every node and every read_result.
parse_run parse(std::string_view input, const resp::limits& lim, std::size_t batch, resp::reader& rd) {
  FUZZ_CHECK(rd.at_reply_boundary());
  FUZZ_CHECK(rd.stream_offset() == 0);
  shape_checker shape(lim);
  reply_collector collector;
  parse_run run;
  std::vector<resp::node> out(batch);
  std::size_t pos = 0;
  for (;;) {
    const std::string_view rest = input.substr(pos);
    shape.set_input(rest);
    const resp::read_result r = rd.read(rest, out);
    FUZZ_CHECK(r.nodes <= batch);
    FUZZ_CHECK(r.consumed <= rest.size());
    FUZZ_CHECK(r.consumed >= 2 * r.nodes);  // every node consumes at least its own CRLF
    for (std::size_t i = 0; i < r.nodes; ++i) {
      const resp::node& n = out[i];
      // Emitted nodes view input[0, consumed).
      if (!n.value.empty()) FUZZ_CHECK(n.value.data() + n.value.size() <= rest.data() + r.consumed);
      shape.on_node(n);
      collector.add(n);
      run.nodes.emplace_back(n);
    }
    if (batch == 1 && r.nodes == 1) {
      // One node per call: the boundary flag describes the state right after this node.
      FUZZ_CHECK(rd.at_reply_boundary() == shape.at_boundary());
      FUZZ_CHECK(rd.at_reply_boundary() == out[0].ends_reply);
    }
    pos += r.consumed;
    FUZZ_CHECK(rd.stream_offset() == pos);

    if (r.state == status::ok) {
      FUZZ_CHECK(r.nodes == batch);
      continue;
    }
    if (r.state == status::need_more) {
      FUZZ_CHECK(r.nodes < batch);
      FUZZ_CHECK(r.needed >= 1);
      // Every complete element was emitted: the same input again yields nothing and consumes nothing.
      const resp::read_result again = rd.read(input.substr(pos), out);
      FUZZ_CHECK(again.state == status::need_more);
      FUZZ_CHECK(again.nodes == 0 && again.consumed == 0);
      FUZZ_CHECK(again.needed == r.needed);
      if (rd.at_reply_boundary()) FUZZ_CHECK(shape.at_boundary());
      if (shape.at_boundary() && pos == input.size()) {
        // Nothing unconsumed and no element open: only a pending blob payload could keep it open.
        FUZZ_CHECK(rd.at_reply_boundary() || r.needed >= 2);
      }
      run.end = outcome{status::need_more, {}, pos, rd.at_reply_boundary()};
      break;
    }
    FUZZ_CHECK(r.state == status::error);
    FUZZ_CHECK(is_protocol_error(r.error.code));
    // The offending byte lies inside what was given and is not consumed: a refused element, an
    // aggregate header over the depth or size limit included, stays unconsumed (4f5b44c).
    FUZZ_CHECK(r.error.offset >= pos);
    FUZZ_CHECK(r.error.offset <= input.size());
    FUZZ_CHECK(!rd.at_reply_boundary());
    FUZZ_CHECK(!r.error.message().empty());
    // Sticky until reset().
    const resp::read_result again = rd.read(input.substr(pos), out);
    FUZZ_CHECK(again.state == status::error && again.nodes == 0 && again.consumed == 0);
    FUZZ_CHECK(again.error.code == r.error.code && again.error.offset == r.error.offset);
    run.end = outcome{status::error, r.error.code, r.error.offset, false};
    break;
  }
  for (const resp::value& v : collector.replies) {
    const std::string json = to_json(v);
    FUZZ_CHECK(json_validator::valid(json));
  }
  run.replies = std::move(collector.replies);
  return run;
}

// write() of every decoded reply, read back, must give the same values (integer text normalised).
void check_rewrite(const std::vector<resp::value>& replies) {
  if (replies.empty()) return;
  resp::writer contiguous(0);
  resp::writer referencing(8);  // payloads of 8+ bytes become iovecs of their own
  for (const resp::value& v : replies) {
    resp::write(contiguous, v);
    resp::write(referencing, v);
  }
  const std::string_view bytes = contiguous.data();
  FUZZ_CHECK(bytes.size() == contiguous.size());
  std::string gathered;
  for (const iovec& io : referencing.iovecs()) gathered.append(static_cast<const char*>(io.iov_base), io.iov_len);
  FUZZ_CHECK(gathered == bytes);
  FUZZ_CHECK(referencing.size() == bytes.size());

  resp::reader rd;
  const parse_run again = parse(bytes, resp::default_limits, 64, rd);
  FUZZ_CHECK(again.end.state == status::need_more);
  FUZZ_CHECK(again.end.offset == bytes.size());
  FUZZ_CHECK(again.end.at_boundary);
  FUZZ_CHECK(again.replies.size() == replies.size());
  for (std::size_t i = 0; i < replies.size(); ++i) {
    resp::value a = replies[i];
    resp::value b = again.replies[i];
    FUZZ_CHECK(to_json(a) == to_json(b));
    normalise(a);
    normalise(b);
    FUZZ_CHECK(a == b);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  static const resp::limits configs[] = {resp::default_limits, tiny_limits, micro_limits};

  std::vector<parse_run> runs;
  for (const resp::limits& lim : configs) {
    resp::reader rd(lim);
    parse_run one = parse(input, lim, 1, rd);
    // The same reader after reset(), many nodes per call: the same nodes and the same end.
    rd.reset();
    parse_run many = parse(input, lim, 64, rd);
    FUZZ_CHECK(one.nodes == many.nodes);
    FUZZ_CHECK(one.end == many.end);
    FUZZ_CHECK(one.replies == many.replies);
    runs.push_back(std::move(many));
  }

  // Tighter limits only add errors: until the first one the parse is the same, and an error that is
  // not a limit error is the same error at the same place.
  const parse_run& full = runs[0];
  for (std::size_t k = 1; k < runs.size(); ++k) {
    const parse_run& tight = runs[k];
    FUZZ_CHECK(tight.nodes.size() <= full.nodes.size());
    for (std::size_t i = 0; i < tight.nodes.size(); ++i) FUZZ_CHECK(tight.nodes[i] == full.nodes[i]);
    if (!(tight.end.state == status::error && is_limit_error(tight.end.code))) {
      FUZZ_CHECK(tight.nodes.size() == full.nodes.size());
      FUZZ_CHECK(tight.end == full.end);
    }
  }

  check_rewrite(full.replies);
  return 0;
}
