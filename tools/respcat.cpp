// SPDX-License-Identifier: MIT
// respcat: decodes a RESP byte stream and prints one line of canonical JSON per top-level reply.
// Exit status: 0 input ended on a reply boundary, 1 protocol error, 2 input ended inside a reply,
// 64 usage, 66 unreadable input, 74 output not written (it wins over 1 and 2).
#include "resp/json.hpp"
#include "resp/reader.hpp"
#include "resp/value.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace {

constexpr const char* usage = "usage: respcat [--chunk N] [FILE]\n"
                              "Prints one line of canonical JSON per RESP reply read from FILE or stdin (FILE '-').\n"
                              "  --chunk N  feed the parser N bytes at a time (0, the default: each read as it came, up to 64 KiB)\n"
                              "Exit: 0 input ended on a reply boundary, 1 protocol error, 2 input ended inside a reply,\n"
                              "      64 bad usage, 66 unreadable input, 74 output not written (it wins over 1 and 2).\n";

struct decoder {
  redring::resp::reader reader;
  redring::resp::value_builder builder;
  std::array<redring::resp::node, 256> nodes;
  std::string buffer;   // unconsumed input
  std::size_t pos = 0;  // first unconsumed byte of buffer
  std::string out;

  // Feeds bytes; returns false at a protocol error (already reported).
  bool feed(std::string_view bytes) {
    buffer.append(bytes);
    for (;;) {
      const auto r = reader.read(std::string_view(buffer).substr(pos), nodes);
      for (std::size_t i = 0; i < r.nodes; ++i) {
        if (builder.add(nodes[i])) {
          redring::resp::append_json(out, builder.take());
          out.push_back('\n');
        }
      }
      pos += r.consumed;
      flush_if_large();
      if (r.state == redring::resp::status::error) {
        flush();
        std::fprintf(stderr, "respcat: %s\n", r.error.message().c_str());
        return false;
      }
      if (r.state == redring::resp::status::need_more) break;
    }
    // The builder copied what it keeps, so consumed bytes can go; compact only when it is cheap.
    if (pos > buffer.size() / 2) {
      buffer.erase(0, pos);
      pos = 0;
    }
    return true;
  }

  void flush_if_large() {
    if (out.size() > (1u << 16)) flush();
  }
  void flush() {
    if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) write_failed = true;
    out.clear();
  }
  bool write_failed = false;  // stdout refused bytes (a full disk, /dev/full): exit 74, not 0
};

}  // namespace

int main(int argc, char** argv) {
  std::size_t chunk = 0;
  const char* path = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--chunk" && i + 1 < argc) {
      const std::string_view n = argv[++i];
      const auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), chunk);
      if (ec != std::errc{} || p != n.data() + n.size()) {
        std::fprintf(stderr, "respcat: --chunk takes a whole number, not '%s'\n%s", argv[i], usage);
        return 64;
      }
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(usage, stdout);
      return 0;
    } else if (path == nullptr && (arg == "-" || !arg.starts_with("-"))) {
      path = argv[i];
    } else {
      std::fprintf(stderr, "respcat: unexpected argument '%s'\n%s", argv[i], usage);
      return 64;
    }
  }
  int fd = STDIN_FILENO;
  if (path != nullptr && std::string_view(path) != "-") {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "respcat: cannot open %s: %s\n", path, std::strerror(errno));
      return 66;
    }
  }

  decoder d;
  std::string block(1 << 16, '\0');
  for (;;) {
    const ssize_t got = ::read(fd, block.data(), block.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      d.flush();
      std::fprintf(stderr, "respcat: read error: %s\n", std::strerror(errno));
      return 66;
    }
    if (got == 0) break;
    if (d.write_failed) break;
    std::string_view bytes(block.data(), static_cast<std::size_t>(got));
    const std::size_t step = chunk == 0 ? bytes.size() : chunk;
    while (!bytes.empty()) {
      const std::size_t n = std::min(step, bytes.size());
      if (!d.feed(bytes.substr(0, n))) {
        // The replies before the error are printed first; output that could not be written wins
        // (74), as it does at the end.
        d.flush();
        if (d.write_failed) {
          std::fprintf(stderr, "respcat: cannot write the output: %s\n", std::strerror(errno));
          return 74;
        }
        return 1;
      }
      bytes.remove_prefix(n);
    }
  }
  d.flush();
  if (d.write_failed) {
    std::fprintf(stderr, "respcat: cannot write the output: %s\n", std::strerror(errno));
    return 74;  // EX_IOERR
  }
  // Unconsumed bytes are a partial line the reader is waiting to complete.
  if (!d.reader.at_reply_boundary() || d.pos != d.buffer.size()) {
    std::fprintf(stderr, "respcat: input ended inside a reply at byte %llu\n",
                 static_cast<unsigned long long>(d.reader.stream_offset() + (d.buffer.size() - d.pos)));
    return 2;
  }
  return 0;
}
