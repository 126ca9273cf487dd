// SPDX-License-Identifier: MIT
#include "tools/fuzz/reply_shape.hpp"

#include "tools/fuzz/generator.hpp"

#include <cctype>
#include <utility>

namespace redring::fuzz {
namespace {

using namespace shape;

// Redis 7.0's COMMAND DOCS has no reply_schema: the common commands' documented replies (redis.io
// command pages, "RESP2/RESP3 Reply"), each widened to what any argument list can make of it
// (SET ... GET is a bulk or null, LPOP k 2 an array, ZADD ... INCR a double or null). Commands whose
// reply type depends on their arguments beyond that (SORT, GEORADIUS ... STORE, OBJECT, EVAL) and
// containers are not listed: not checked.
constexpr std::pair<std::string_view, type_set> builtin[] = {
      // Integers.
      {"append", integer}, {"bitcount", integer}, {"bitpos", integer}, {"copy", integer},
      {"dbsize", integer}, {"decr", integer}, {"decrby", integer}, {"del", integer},
      {"exists", integer}, {"expire", integer}, {"expireat", integer}, {"expiretime", integer},
      {"geoadd", integer}, {"geosearchstore", integer}, {"getbit", integer}, {"hdel", integer},
      {"hexists", integer}, {"hincrby", integer}, {"hlen", integer}, {"hset", integer},
      {"hsetnx", integer}, {"hstrlen", integer}, {"incr", integer}, {"incrby", integer},
      {"linsert", integer}, {"llen", integer}, {"lpush", integer}, {"lpushx", integer},
      {"lrem", integer}, {"msetnx", integer}, {"persist", integer}, {"pexpire", integer},
      {"pexpireat", integer}, {"pexpiretime", integer}, {"pfadd", integer}, {"pfcount", integer},
      {"pttl", integer}, {"publish", integer}, {"renamenx", integer}, {"rpush", integer},
      {"rpushx", integer}, {"sadd", integer}, {"scard", integer}, {"sdiffstore", integer},
      {"setbit", integer}, {"setnx", integer}, {"setrange", integer}, {"sintercard", integer},
      {"sinterstore", integer}, {"sismember", integer}, {"smove", integer}, {"srem", integer},
      {"strlen", integer}, {"sunionstore", integer}, {"touch", integer}, {"ttl", integer},
      {"unlink", integer}, {"xack", integer}, {"xdel", integer}, {"xlen", integer},
      {"xtrim", integer}, {"zcard", integer}, {"zcount", integer}, {"zdiffstore", integer},
      {"zintercard", integer}, {"zinterstore", integer}, {"zlexcount", integer}, {"zrangestore", integer},
      {"zrem", integer}, {"zremrangebylex", integer}, {"zremrangebyrank", integer},
      {"zremrangebyscore", integer}, {"zunionstore", integer}, {"spublish", integer},
      {"lastsave", integer}, {"wait", integer},
      // An integer or a null.
      {"zrank", integer | null}, {"zrevrank", integer | null}, {"memory|usage", integer | null},
      // ZADD: the number added, or with INCR the new score (null when NX/XX/GT/LT forbade it).
      {"zadd", integer | number | null},
      // Bulk strings, maybe null.
      {"echo", bulk}, {"getrange", bulk}, {"substr", bulk}, {"incrbyfloat", bulk | number},
      {"hincrbyfloat", bulk | number}, {"info", bulk}, {"client|info", bulk},
      {"get", bulk | null}, {"getdel", bulk | null}, {"getex", bulk | null}, {"getset", bulk | null},
      {"hget", bulk | null}, {"lindex", bulk | null}, {"dump", bulk | null}, {"randomkey", bulk | null},
      {"lmove", bulk | null}, {"rpoplpush", bulk | null}, {"blmove", bulk | null}, {"brpoplpush", bulk | null},
      {"xadd", bulk | null}, {"object|encoding", bulk | null},
      // Doubles (bulk strings in RESP2), maybe null.
      {"zscore", number | null}, {"zincrby", number | null}, {"geodist", number | null},
      // Status replies. SET answers OK, or with GET the old value, or null when NX/XX forbade it.
      {"set", simple | bulk | null}, {"mset", simple}, {"rename", simple}, {"lset", simple},
      {"ltrim", simple}, {"setex", simple}, {"psetex", simple}, {"pfmerge", simple},
      {"select", simple}, {"flushdb", simple}, {"flushall", simple}, {"restore", simple},
      {"multi", simple}, {"watch", simple}, {"unwatch", simple}, {"discard", simple},
      {"swapdb", simple}, {"type", simple}, {"xsetid", simple}, {"hmset", simple},
      // PING: PONG, or its argument as a bulk.
      {"ping", simple | bulk},
      // One element, or with a count an array (null in 7.0 when the key is missing).
      {"lpop", bulk | null | aggregate}, {"rpop", bulk | null | aggregate},
      {"spop", bulk | null | aggregate}, {"srandmember", bulk | null | aggregate},
      {"hrandfield", bulk | null | aggregate}, {"zrandmember", bulk | null | aggregate},
      {"lpos", integer | null | aggregate},
      // Aggregates.
      {"keys", aggregate}, {"mget", aggregate}, {"hkeys", aggregate}, {"hvals", aggregate},
      {"hgetall", aggregate}, {"hmget", aggregate}, {"lrange", aggregate}, {"smembers", aggregate},
      {"sinter", aggregate}, {"sunion", aggregate}, {"sdiff", aggregate}, {"smismember", aggregate},
      {"zrange", aggregate}, {"zrangebyscore", aggregate}, {"zrangebylex", aggregate},
      {"zrevrange", aggregate}, {"zrevrangebyscore", aggregate}, {"zrevrangebylex", aggregate},
      {"zmscore", aggregate}, {"zpopmin", aggregate}, {"zpopmax", aggregate}, {"scan", aggregate},
      {"sscan", aggregate}, {"hscan", aggregate}, {"zscan", aggregate}, {"xrange", aggregate},
      {"xrevrange", aggregate}, {"time", aggregate}, {"geopos", aggregate}, {"geohash", aggregate},
      {"geosearch", aggregate}, {"bitfield", aggregate}, {"bitfield_ro", aggregate}, {"zdiff", aggregate},
      {"zinter", aggregate}, {"zunion", aggregate}, {"hello", aggregate},
      // Aggregates, or null when nothing came (a timeout, an empty key, an aborted transaction).
      {"lmpop", aggregate | null}, {"zmpop", aggregate | null}, {"blpop", aggregate | null},
      {"brpop", aggregate | null}, {"blmpop", aggregate | null}, {"bzmpop", aggregate | null},
      {"bzpopmin", aggregate | null}, {"bzpopmax", aggregate | null}, {"xread", aggregate | null},
      {"xreadgroup", aggregate | null}, {"exec", aggregate | null},
};

// A map reply (RESP3 map, or RESP2 flat array of key, value, ...): the value under `key`, or null.
const resp::value* field(const resp::value& v, std::string_view key) {
  for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    if (lower(v.elements[i].text) == key) return &v.elements[i + 1];
  }
  return nullptr;
}

// Every docs entry with a reply_schema, subcommands included, by name.
void collect_schemas(const resp::value& docs, reply_shapes& out, std::size_t& count) {
  for (std::size_t i = 0; i + 1 < docs.elements.size(); i += 2) {
    const resp::value& entry = docs.elements[i + 1];
    if (const resp::value* schema = field(entry, "reply_schema")) {
      if (const auto types = types_of_schema(*schema)) {
        out.set(lower(docs.elements[i].text), *types);
        ++count;
      }
    }
    if (const resp::value* subs = field(entry, "subcommands")) collect_schemas(*subs, out, count);
  }
}

}  // namespace

std::string type_set::describe() const {
  std::string out;
  for (const resp::type t : all) {
    if (!contains(t)) continue;
    if (!out.empty()) out.push_back('|');
    out.append(resp::to_string(t));
  }
  return out.empty() ? "nothing" : out;
}

std::optional<type_set> types_of_schema(const resp::value& schema) {
  // JSON schema keywords Redis uses (src/commands/*.json): oneOf/anyOf of branches, `type`, `const`.
  for (std::string_view group : {"oneof", "anyof"}) {
    if (const resp::value* branches = field(schema, group)) {
      type_set all;
      for (const resp::value& b : branches->elements) {
        const auto t = types_of_schema(b);
        if (!t) return std::nullopt;
        all |= *t;
      }
      return all.empty() ? std::nullopt : std::optional(all);
    }
  }
  if (const resp::value* type = field(schema, "type")) {
    const std::string t = lower(type->text);
    if (t == "integer") return integer;
    if (t == "string") return simple | bulk;
    if (t == "null") return null;
    if (t == "number") return number | integer;
    if (t == "boolean") return shape::boolean;
    if (t == "array") return aggregate;
    if (t == "object") return aggregate;
    return std::nullopt;
  }
  if (field(schema, "const") != nullptr) return simple | bulk | integer;
  return std::nullopt;
}

reply_shapes::reply_shapes() {
  for (const auto& [name, types] : builtin) by_name_.emplace(name, types);
}

reply_shapes::reply_shapes(const command_table& table, const resp::value& docs) : reply_shapes() {
  table_ = &table;
  collect_schemas(docs, *this, from_schema_);
}

std::optional<type_set> reply_shapes::expected(std::string_view name) const {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::optional<type_set> reply_shapes::expected(const frame& f) const {
  if (f.kind != frame_kind::command || f.args.empty()) return std::nullopt;
  if (table_ != nullptr) return expected(command_name(*table_, f));
  std::string name = lower(f.args[0]);
  if (f.args.size() > 1 && (name == "memory" || name == "object" || name == "client")) {
    name.append("|").append(lower(f.args[1]));
  }
  return expected(name);
}

}  // namespace redring::fuzz
