// SPDX-License-Identifier: MIT
// RESP parser and encoder throughput: redring's reader and writer against hiredis (see bench/README.md).
//
//   parse/<corpus>/<impl>  one iteration parses a whole corpus (~2 MiB of back-to-back replies) fed in
//                          chunks; items = replies, bytes = corpus bytes.
//   encode/<cmd>/<impl>    one iteration encodes one command; items = commands, bytes = encoded bytes.
//
// Parse impls:
//   redring          zero-copy window driver: the corpus is one contiguous receive buffer and chunk k
//                    "arrives" by growing the valid window to (k + 1) * chunk bytes (an io_uring client
//                    with a contiguous receive buffer); read() sees [first unconsumed byte, window end).
//   redring_needed   the same window driver, but it skips read() until the window holds the
//                    read_result::needed bytes the reader said it must receive to progress.
//   redring_copy     receive-buffer driver: each chunk is memcpy'd after the unconsumed tail of a
//                    caller-owned buffer, rewound for free when nothing is left unconsumed and
//                    compacted (tail memmoved to the front) only when the next chunk or the element
//                    being waited for would not fit.
//   hiredis          redisReaderFeed(chunk) + redisReaderGetReply until no reply, default reply
//                    objects, freeReplyObject per reply.
//   hiredis_noalloc  the same with redisReplyObjectFunctions that build nothing (a dummy non-NULL
//                    pointer, no-op freeObject): hiredis' parsing cost alone.
#include "resp/node.hpp"
#include "resp/reader.hpp"
#include "resp/writer.hpp"

#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// --- Allocation counter: every C++ allocation in the process (the reader's stack, the writer's
// buffer) goes through here, so the redring benchmarks can report allocations per iteration. hiredis
// allocates with malloc and is not counted.
#if defined(__GNUC__) && !defined(__clang__)
// GCC inlines these replacements and then flags free() of a "new" pointer, which is what they are for.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.store(g_allocations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.store(g_allocations.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using redring::resp::node;
using redring::resp::read_result;
using redring::resp::reader;
using redring::resp::status;
using redring::resp::writer;

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * KiB;
constexpr std::size_t kCorpusTarget = 2 * MiB;  // each corpus: whole replies until at least this many bytes
constexpr std::size_t kNodes = 256;             // the node array a client hands to read()

// --- Corpora ---------------------------------------------------------------------------------------

struct corpus {
  std::string bytes;           // back-to-back whole replies
  std::uint64_t replies = 0;   // how many
  std::size_t max_reply = 0;   // longest reply, in bytes (sizes the copy driver's buffer)
};

// Appends replies made by `one(i, out)` until the corpus holds at least kCorpusTarget bytes.
template <class MakeReply>
corpus build(MakeReply one) {
  corpus c;
  c.bytes.reserve(kCorpusTarget + 128 * KiB);
  std::string reply;
  while (c.bytes.size() < kCorpusTarget) {
    reply.clear();
    one(c.replies, reply);
    c.bytes += reply;
    c.max_reply = std::max(c.max_reply, reply.size());
    ++c.replies;
  }
  return c;
}

std::string payload(std::size_t n, std::uint64_t seed) {
  std::string s(n, 'x');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (seed + i * 7) % 26);
  return s;
}

void append_bulk(std::string& out, std::string_view b) {
  out += '$';
  out += std::to_string(b.size());
  out += "\r\n";
  out += b;
  out += "\r\n";
}

corpus make_c1() {
  return build([](std::uint64_t, std::string& out) { out += "+OK\r\n"; });
}

corpus make_c2() {
  return build([](std::uint64_t i, std::string& out) { append_bulk(out, payload(16, i)); });
}

corpus make_c3() {
  std::array<std::string, 10> elements;
  for (std::size_t i = 0; i < elements.size(); ++i) elements[i] = payload(100, i);
  return build([&](std::uint64_t, std::string& out) {
    out += "*10\r\n";
    for (const std::string& e : elements) append_bulk(out, e);
  });
}

// Integers of 1 to 17 digits (mostly short, as counters and lengths are), about one in eight negative.
corpus make_c4() {
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  return build([&](std::uint64_t, std::string& out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    static constexpr std::array<int, 16> digit_counts = {1, 1, 2, 2, 3, 3, 4, 5, 5, 6, 7, 8, 10, 12, 16, 17};
    const int digits = digit_counts[x & 15];
    std::uint64_t limit = 1;
    for (int d = 0; d < digits; ++d) limit *= 10;
    const auto v = static_cast<std::int64_t>((x >> 8) % limit);
    out += ':';
    out += std::to_string(((x >> 4) & 7) == 0 ? -v : v);
    out += "\r\n";
  });
}

corpus make_c5() {
  const std::string big = payload(64 * KiB, 5);
  return build([&](std::uint64_t, std::string& out) { append_bulk(out, big); });
}

const corpus& c1() { static const corpus c = make_c1(); return c; }
const corpus& c2() { static const corpus c = make_c2(); return c; }
const corpus& c3() { static const corpus c = make_c3(); return c; }
const corpus& c4() { static const corpus c = make_c4(); return c; }
const corpus& c5() { static const corpus c = make_c5(); return c; }

struct corpus_spec {
  const char* name;
  const corpus& (*get)();
  std::size_t chunk;
};

// --- redring drivers -------------------------------------------------------------------------------

// Reports a parse error; false.
[[gnu::cold, gnu::noinline]] bool parse_failed(redring::resp::errc code, std::uint64_t offset) {
  std::fprintf(stderr, "parse error %d at offset %llu\n", static_cast<int>(code),
               static_cast<unsigned long long>(offset));
  return false;
}

// A client's read loop over the bytes it has, [pos, end) of `data`: read() until it needs more bytes,
// looking at every node (a node with ends_reply counts one reply). Advances `pos` past the consumed
// bytes; `needed` gets read_result::needed. False on a parse error.
inline bool drain(reader& rd, const char* data, std::size_t& pos, std::size_t end, std::span<node> nodes,
                  std::uint64_t& replies, std::uint64_t& needed) {
  for (;;) {
    const read_result r = rd.read(std::string_view(data + pos, end - pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) replies += nodes[i].ends_reply ? 1 : 0;
    pos += r.consumed;
    if (r.state == status::ok) continue;
    needed = r.needed;
    if (r.state == status::need_more) return true;
    return parse_failed(r.error.code, r.error.offset);
  }
}

// The corpus is the receive buffer; chunk k arrives by moving the window end to (k + 1) * chunk.
// After each arrival, read() runs until it needs more bytes. With `UseNeeded`, a chunk that leaves the
// window short of the read_result::needed bytes the reader said it must receive to progress is
// received without a read() call.
// Aligned to a cache line, like reader::read_some: the reader's inline paths for trickling replies
// (C6) are compiled into this loop. Unaligned, C6 `redring` ran 4 % slower (4.44 against 4.64 M/s)
// in a build where only the reader's cold code, placed before it, had grown by 55 bytes.
template <bool UseNeeded>
[[gnu::noinline, gnu::aligned(64)]] bool drive_window(reader& rd, std::string_view in, std::size_t chunk, std::span<node> nodes,
                                    std::uint64_t& replies) {
  const char* const data = in.data();
  const std::size_t size = in.size();
  std::size_t pos = 0;
  std::uint64_t ended = 0;  // replies, counted in a register
  std::size_t window_end = std::min(chunk, size);
  for (;;) {
    const read_result r = rd.read(std::string_view(data + pos, window_end - pos), nodes);
    for (std::size_t i = 0; i < r.nodes; ++i) ended += nodes[i].ends_reply ? 1 : 0;
    pos += r.consumed;
    if (r.state == status::need_more) {
      if (window_end == size) break;
      if constexpr (UseNeeded) {
        // Chunks arrive until read() can progress (the corpus ends on a reply boundary: ready_at <= size).
        const std::size_t ready_at = window_end + r.needed;
        do {
          window_end += chunk;
        } while (window_end < ready_at);
      } else {
        window_end += chunk;  // the next chunk arrives
      }
      window_end = std::min(window_end, size);  // the last chunk may be short
    } else if (r.state == status::error) {
      return parse_failed(r.error.code, r.error.offset);
    }
  }
  replies += ended;
  return pos == size;
}

// A caller-owned receive buffer: chunks are appended after the unconsumed tail.
struct receive_buffer {
  std::unique_ptr<char[]> data;
  std::size_t capacity = 0;
  std::size_t pos = 0;  // first unconsumed byte
  std::size_t len = 0;  // end of received bytes

  // Room for the next chunk after any tail (a tail is at most one partial reply).
  receive_buffer(std::size_t chunk, std::size_t max_reply)
      : capacity(std::max<std::size_t>(4 * chunk, 64 * KiB) + max_reply + 2) {
    data = std::make_unique<char[]>(capacity);  // zeroed: the pages are touched before timing
  }

  // Moves the unconsumed tail to the front.
  void compact() noexcept {
    std::memmove(data.get(), data.get() + pos, len - pos);
    len -= pos;
    pos = 0;
  }
};

// Compaction policy: rewind for free when nothing is pending; memmove the tail only when the next
// chunk would not fit, or as soon as the reader says (read_result::needed) that the element it waits
// for will not fit: the tail is smallest then (a blob's header is consumed at once).
[[gnu::noinline, gnu::aligned(64)]] bool drive_copy(reader& rd, std::string_view in, std::size_t chunk, receive_buffer& b, std::span<node> nodes,
                std::uint64_t& replies) {
  for (std::size_t off = 0; off < in.size(); off += chunk) {
    const std::size_t n = std::min(chunk, in.size() - off);
    if (b.pos == b.len) {
      b.pos = b.len = 0;
    } else if (b.len + n > b.capacity) {
      b.compact();
    }
    std::memcpy(b.data.get() + b.len, in.data() + off, n);  // "receive" the chunk
    b.len += n;
    std::size_t pos = 0;
    std::uint64_t needed = 0;
    if (!drain(rd, b.data.get() + b.pos, pos, b.len - b.pos, nodes, replies, needed)) return false;
    b.pos += pos;
    if (b.pos != 0 && b.len + needed > b.capacity) b.compact();
  }
  return b.pos == b.len;
}

enum class rr_driver { window, window_needed, copy };

void bm_parse_redring(benchmark::State& state, corpus_spec spec, rr_driver driver) {
  const corpus& c = spec.get();
  reader rd;
  std::vector<node> nodes(kNodes);
  receive_buffer buf(driver == rr_driver::copy ? spec.chunk : 0, driver == rr_driver::copy ? c.max_reply : 0);
  auto run = [&](std::uint64_t& replies) {
    switch (driver) {
      case rr_driver::window: return drive_window<false>(rd, c.bytes, spec.chunk, nodes, replies);
      case rr_driver::window_needed: return drive_window<true>(rd, c.bytes, spec.chunk, nodes, replies);
      case rr_driver::copy: break;
    }
    return drive_copy(rd, c.bytes, spec.chunk, buf, nodes, replies);
  };
  // One untimed pass: validates the corpus and grows the reader's stack to its steady-state size.
  std::uint64_t check = 0;
  if (!run(check) || check != c.replies || !rd.at_reply_boundary()) {
    state.SkipWithError("redring: warm-up parse failed or miscounted replies");
    return;
  }
  const std::uint64_t allocs_before = g_allocations.load(std::memory_order_relaxed);
  for (auto _ : state) {
    std::uint64_t replies = 0;
    const bool ok = run(replies);
    benchmark::DoNotOptimize(replies);
    if (!ok || replies != c.replies) {
      state.SkipWithError("redring: parse error or wrong reply count");
      break;
    }
  }
  const std::uint64_t allocs = g_allocations.load(std::memory_order_relaxed) - allocs_before;
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(allocs), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * c.replies));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.bytes.size()));
}

// --- hiredis drivers -------------------------------------------------------------------------------

char g_dummy_object;
void* noalloc_string(const redisReadTask*, char*, size_t) { return &g_dummy_object; }
void* noalloc_array(const redisReadTask*, int) { return &g_dummy_object; }
void* noalloc_integer(const redisReadTask*, long long) { return &g_dummy_object; }
void* noalloc_nil(const redisReadTask*) { return &g_dummy_object; }
void noalloc_free(void*) {}
redisReplyObjectFunctions g_noalloc_functions = {noalloc_string, noalloc_array, noalloc_integer, noalloc_nil,
                                                 noalloc_free};

template <bool DefaultObjects>
bool drive_hiredis(redisReader* r, std::string_view in, std::size_t chunk, std::uint64_t& replies) {
  for (std::size_t off = 0; off < in.size(); off += chunk) {
    const std::size_t n = std::min(chunk, in.size() - off);
    if (redisReaderFeed(r, in.data() + off, n) != REDIS_OK) return false;
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(r, &reply) != REDIS_OK) return false;
      if (reply == nullptr) break;
      ++replies;
      if constexpr (DefaultObjects) {
        freeReplyObject(reply);
      } else {
        benchmark::DoNotOptimize(reply);
      }
    }
  }
  return r->pos == r->len;
}

template <bool DefaultObjects>
void bm_parse_hiredis(benchmark::State& state, corpus_spec spec) {
  const corpus& c = spec.get();
  std::unique_ptr<redisReader, void (*)(redisReader*)> r(
      DefaultObjects ? redisReaderCreate() : redisReaderCreateWithFunctions(&g_noalloc_functions), redisReaderFree);
  std::uint64_t check = 0;
  if (!drive_hiredis<DefaultObjects>(r.get(), c.bytes, spec.chunk, check) || check != c.replies) {
    state.SkipWithError("hiredis: warm-up parse failed or miscounted replies");
    return;
  }
  for (auto _ : state) {
    std::uint64_t replies = 0;
    const bool ok = drive_hiredis<DefaultObjects>(r.get(), c.bytes, spec.chunk, replies);
    benchmark::DoNotOptimize(replies);
    if (!ok || replies != c.replies) {
      state.SkipWithError("hiredis: parse error or wrong reply count");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * c.replies));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.bytes.size()));
}

// --- Encoders --------------------------------------------------------------------------------------

constexpr std::size_t kEncodeBatch = 64;  // commands per writer batch (one pipelined write) before clear()

const std::string& set_value() {
  static const std::string v = payload(100, 42);
  return v;
}

template <bool Set>
void bm_encode_redring(benchmark::State& state) {
  const std::string_view cmd = Set ? "SET" : "GET";
  const std::string_view key = "key";
  const std::string_view value = set_value();
  writer w;
  auto encode = [&] {
    if constexpr (Set) {
      w.command(cmd, key, value);
    } else {
      w.command(cmd, key);
    }
  };
  encode();
  const std::size_t per_command = w.size();
  for (std::size_t i = 1; i < kEncodeBatch; ++i) encode();  // grow the buffer to its steady-state size
  w.clear();
  const std::uint64_t allocs_before = g_allocations.load(std::memory_order_relaxed);
  std::size_t in_batch = 0;
  for (auto _ : state) {
    encode();
    if (++in_batch == kEncodeBatch) {
      benchmark::DoNotOptimize(w.data().data());
      w.clear();
      in_batch = 0;
    }
  }
  benchmark::DoNotOptimize(w.data().data());
  const std::uint64_t allocs = g_allocations.load(std::memory_order_relaxed) - allocs_before;
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(allocs), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * per_command));
}

template <bool Set>
void bm_encode_hiredis(benchmark::State& state) {
  const std::string& value = set_value();
  const char* argv[3] = {Set ? "SET" : "GET", "key", value.data()};
  const std::size_t lens[3] = {3, 3, value.size()};
  const int argc = Set ? 3 : 2;
  std::size_t per_command = 0;
  {
    char* cmd = nullptr;
    const int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0) {
      state.SkipWithError("redisFormatCommandArgv failed");
      return;
    }
    per_command = static_cast<std::size_t>(n);
    redisFreeCommand(cmd);
  }
  for (auto _ : state) {
    char* cmd = nullptr;
    const int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    benchmark::DoNotOptimize(cmd);
    benchmark::DoNotOptimize(n);
    redisFreeCommand(cmd);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * per_command));
}

void register_all() {
  static const std::array<corpus_spec, 7> corpora = {{
      {"C1", c1, 16 * KiB},
      {"C2", c2, 16 * KiB},
      {"C3", c3, 16 * KiB},
      {"C4", c4, 16 * KiB},
      {"C5", c5, 16 * KiB},
      {"C6", c3, 37},
      {"C7", c3, 256 * KiB},
  }};
  for (const corpus_spec& s : corpora) {
    const std::string prefix = std::string("parse/") + s.name + "/";
    benchmark::RegisterBenchmark((prefix + "redring").c_str(), bm_parse_redring, s, rr_driver::window);
    benchmark::RegisterBenchmark((prefix + "redring_needed").c_str(), bm_parse_redring, s, rr_driver::window_needed);
    benchmark::RegisterBenchmark((prefix + "redring_copy").c_str(), bm_parse_redring, s, rr_driver::copy);
    benchmark::RegisterBenchmark((prefix + "hiredis").c_str(), bm_parse_hiredis<true>, s);
    benchmark::RegisterBenchmark((prefix + "hiredis_noalloc").c_str(), bm_parse_hiredis<false>, s);
  }
  benchmark::RegisterBenchmark("encode/GET/redring", bm_encode_redring<false>);
  benchmark::RegisterBenchmark("encode/GET/hiredis", bm_encode_hiredis<false>);
  benchmark::RegisterBenchmark("encode/SET/redring", bm_encode_redring<true>);
  benchmark::RegisterBenchmark("encode/SET/hiredis", bm_encode_hiredis<true>);
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
