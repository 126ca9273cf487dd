#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the hand-made seeds of the fuzz corpora: fuzz/corpus/<target>/seed-*.

Binary-safe and deterministic; rerun after editing. Files not named seed-* (inputs merged in from
fuzzing runs, named by their SHA-1) are left alone. Usage: python3 fuzz/make_corpus.py
"""
import os
import random
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# Valid replies of every RESP2/RESP3 type, including the examples of the RESP3 specification.
# Variants of one type are pipelined into one file to keep the corpus small.
VALID = {
    "simple": b"+OK\r\n",
    "simple-variants": b"+\r\n+a\rb\nc\r\r\n",
    "errors": b"-ERR x\r\n-MOVED 3999 127.0.0.1:6381\r\n",
    "blob-error": b"!21\r\nSYNTAX invalid syntax\r\n",
    "integers": b":1000\r\n:-9223372036854775808\r\n:9223372036854775807\r\n:+007\r\n:-0\r\n",
    "blob": b"$5\r\nhello\r\n",
    "blob-variants": b"$0\r\n\r\n$6\r\n\x00\xff\r\n\r\n\r\n",
    "nulls": b"_\r\n$-1\r\n*-1\r\n",
    "double": b",1.23\r\n",
    "double-variants": b",-1.5E-3\r\n,10\r\n,inf\r\n,-inf\r\n,nan\r\n,+0.0e+0\r\n",
    "double-extremes": b",1e-400\r\n,1e400\r\n,123456789012345678901234567890.123456789e-10\r\n"
                       b",0.000000000000000000000000000000000000000000000000000001\r\n",
    "booleans": b"#t\r\n#f\r\n",
    "verbatim": b"=15\r\ntxt:Some string\r\n",
    "verbatim-empty-text": b"=4\r\nmkd:\r\n",
    "big-numbers": b"(3492890328409238509324850943850943825024385\r\n(-3492890328409238509324850943850943825024385\r\n",
    "empty-aggregates": b"*0\r\n%0\r\n~0\r\n>0\r\n",
    "array": b"*2\r\n$3\r\nfoo\r\n:42\r\n",
    "array-nested": b"*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n",
    "map": b"%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
    "set": b"~5\r\n+orange\r\n+apple\r\n#t\r\n:100\r\n:999\r\n",
    "attribute": b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
    "attribute-on-element": b"*2\r\n|1\r\n+ttl\r\n:3600\r\n+a\r\n+b\r\n",
    "attribute-chain": b"|1\r\n+a\r\n+b\r\n|0\r\n:1\r\n",
    "attribute-on-attribute-key": b"|1\r\n|1\r\n+x\r\n+y\r\n+k\r\n+v\r\n$1\r\nz\r\n",
    "push": b">3\r\n$7\r\nmessage\r\n$7\r\nchannel\r\n$5\r\nhello\r\n",
    "streamed-string": b"$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n",
    "streamed-string-empty": b"$?\r\n;0\r\n",
    "streamed-array": b"*?\r\n:1\r\n:2\r\n.\r\n",
    "streamed-set": b"~?\r\n+a\r\n$?\r\n;1\r\nb\r\n;0\r\n.\r\n",
    "streamed-map": b"%?\r\n+a\r\n:1\r\n+b\r\n*?\r\n.\r\n.\r\n",
    "streamed-with-attribute": b"*?\r\n|1\r\n+a\r\n+b\r\n:1\r\n.\r\n",
    "mixed-nesting": b"*4\r\n%1\r\n+k\r\n~1\r\n_\r\n$?\r\n;1\r\nx\r\n;0\r\n>1\r\n=5\r\ntxt:a\r\n(1\r\n",
    "pipeline": b"+OK\r\n:1\r\n$3\r\nbar\r\n*-1\r\n>1\r\n+p\r\n",
    "deep-8": b"*1\r\n" * 8 + b":1\r\n",
    "deep-9": b"*1\r\n" * 9 + b":1\r\n",
}

# Malformed or truncated input: each is an error or an incomplete reply.
MALFORMED = {
    "bad-type": b"?\r\n",
    "truncated-blob": b"$3\r\nfo",
    "blob-missing-crlf": b"$3\r\nfooXY",
    "truncated-array": b"*2\r\n:1\r\n",
    "integer-letters": b":12a\r\n",
    "integer-overflow": b":9223372036854775808\r\n",
    "boolean-bad": b"#x\r\n",
    "double-dot": b",1.\r\n",
    "big-number-bad": b"(12a\r\n",
    "verbatim-short": b"=3\r\nab:\r\n",
    "verbatim-no-colon": b"=5\r\ntxt-a\r\n",
    "null-bad": b"_x\r\n",
    "end-outside": b".\r\n",
    "part-outside": b";3\r\nabc\r\n",
    "string-interrupted": b"$?\r\n:1\r\n",
    "map-odd-end": b"%?\r\n+a\r\n.\r\n",
    "attribute-then-end": b"*?\r\n|1\r\n+a\r\n+b\r\n.\r\n",
    "attribute-only": b"|1\r\n+a\r\n+b\r\n",
    "null-bad-length": b"$-2\r\n",
    "push-streamed": b">?\r\n",
    "attribute-streamed": b"|?\r\n",
    "aggregate-huge": b"*4294967295\r\n",
    "bulk-huge": b"$99999999999999999999\r\n",
    "deep-200": b"*1\r\n" * 200 + b":1\r\n",
    "long-line": b"+" + b"x" * 300 + b"\r\n",
    "long-line-open": b"+" + b"y" * 300,
    "stream-part-too-long": b"$?\r\n" + b";40\r\n" + b"z" * 40 + b"\r\n" + b";40\r\n" + b"z" * 40 + b"\r\n;0\r\n",
    "streamed-array-long": b"*?\r\n" + b":1\r\n" * 70 + b".\r\n",
    "after-error": b"+OK\r\n!\r\n+more\r\n",
}

# Aimed at the typed adapters.
CONVERT = {
    "hgetall-resp2": b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
    "zscore-resp2": b"$3\r\n1.5\r\n",
    "zrange-withscores": b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,inf\r\n",
    "scan-reply": b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
    "array-with-nulls": b"*4\r\n:1\r\n$-1\r\n_\r\n$2\r\n42\r\n",
    "integer-text-overflow": b"$20\r\n99999999999999999999\r\n",
    "tuple-shape": b"*2\r\n$3\r\nkey\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
    "map-doubles": b"%2\r\n$1\r\na\r\n,1.5\r\n$1\r\nb\r\n:2\r\n",
    "map-dup-keys": b"%2\r\n+k\r\n+1\r\n+k\r\n+2\r\n",
    "array-of-errors": b"*2\r\n+ok\r\n-WRONGTYPE Operation against a key\r\n",
    "numbers-as-strings": b"*6\r\n$5\r\n12345\r\n$2\r\n-1\r\n$5\r\n65536\r\n$10\r\n2147483648\r\n$3\r\n1e3\r\n+inf\r\n",
    "bool-from-integer": b"*2\r\n:0\r\n:-5\r\n",
    "verbatim-number": b"=7\r\ntxt:123\r\n",
    "bignum-small": b"(42\r\n",
    "double-long-zeros": b",0." + b"0" * 60 + b"1\r\n",
    "double-many-digits-negexp": b",1" + b"0" * 60 + b"e-5\r\n",
}

# Reproducers of bugs found by the fuzzers (fuzz/README.md, "Bugs found"); they fail until fixed.
REGRESSION = {
    # Bug 1: parse_double saturates an out-of-range text the wrong way.
    "bug1-double-underflow-to-inf": b",0." + b"0" * 400 + b"1\r\n",
    "bug1-double-overflow-to-zero": b",1" + b"0" * 400 + b"e-10\r\n",
}


def clean():
    """Removes the seed-* files, so that seeds dropped from this script disappear."""
    for target in ("reader", "reader_split", "roundtrip", "convert"):
        d = os.path.join(ROOT, target)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.startswith("seed-"):
                    os.remove(os.path.join(d, f))


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def split_seed(payload, rng):
    """fuzz_reader_split layout: control byte, k uint16 cut positions, payload."""
    k = rng.randrange(1, 8)
    batch = rng.randrange(0, 32)
    cuts = [rng.randrange(0, len(payload) + 1) for _ in range(k)]
    return bytes([k | (batch << 3)]) + b"".join(struct.pack("<H", c) for c in cuts) + payload


def main():
    rng = random.Random(20240501)
    clean()
    for name, data in {**VALID, **MALFORMED}.items():
        write("reader", name, data)
    for name, data in {**VALID, **CONVERT}.items():
        write("convert", name, data)
    for name, data in REGRESSION.items():
        write("reader", name, data)
        write("convert", name, data)
    # Split seeds: every valid reply cut at random places, plus a few malformed ones.
    for name, data in list(VALID.items()) + list(MALFORMED.items())[:12]:
        write("reader_split", name, split_seed(data, rng))
    write("reader_split", "pipeline-all", split_seed(b"".join(VALID.values()), rng))
    # Roundtrip input is FuzzedDataProvider entropy: pseudo-random bytes of several sizes.
    for i in range(24):
        n = [16, 64, 256, 1024][i % 4] + rng.randrange(0, 64)
        write("roundtrip", "random-%02d" % i, bytes(rng.randrange(256) for _ in range(n)))


if __name__ == "__main__":
    main()
