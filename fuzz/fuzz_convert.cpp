// SPDX-License-Identifier: MIT
// fuzz_convert: arbitrary bytes are parsed into values, and every value of every reply (elements and
// attribute values included) goes through resp::convert<T> for many T. Checks: errors are non-zero
// codes of resp_category(); an error reply converts to server_error with its own text; successes
// agree with the value (and numbers with strtoll/strtod as oracles); the typed results agree with
// each other (int32 vs int64, vector vs elementwise, ...). A double reply is never an integer; a
// number that overflows its type is out_of_range.
#include "fuzz_common.hpp"

#include "resp/convert.hpp"
#include "resp/error.hpp"

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using namespace fuzz;
using resp::errc;
using resp::type;
using resp::value;

// Texts of the error values in a subtree (not in attributes: convert ignores them).
void error_texts(const value& v, std::vector<const std::string*>& out) {
  if (v.is_error()) out.push_back(&v.text);
  for (const value& e : v.elements) error_texts(e, out);
}

// The checks every failed conversion of `v` must pass.
void check_error(const resp::error& e, const value& v) {
  FUZZ_CHECK(e.code.value() != 0);
  FUZZ_CHECK(&e.code.category() == &resp::resp_category());
  FUZZ_CHECK(e.code.value() >= static_cast<int>(errc::server_error) &&
             e.code.value() <= static_cast<int>(errc::unexpected_size));
  FUZZ_CHECK(!e.what().empty());
  if (v.is_error()) {
    FUZZ_CHECK(e.code == errc::server_error);
    FUZZ_CHECK(e.message == v.text);
    FUZZ_CHECK(e.code_word() == v.error_code());
  }
  if (e.code == errc::server_error) {
    // The message is the text of an error reply somewhere in the value.
    std::vector<const std::string*> texts;
    error_texts(v, texts);
    bool found = false;
    for (const std::string* t : texts) found = found || *t == e.message;
    FUZZ_CHECK(found);
    FUZZ_CHECK(e.code_word() == resp::error_code_word(e.message));
  } else {
    FUZZ_CHECK(e.code_word().empty());
  }
  if (v.is_null() && e.code != errc::server_error) FUZZ_CHECK(e.code == errc::unexpected_null);
}

template <class T>
resp::result<T> conv(const value& v) {
  resp::result<T> r = resp::convert<T>(v);
  if (!r) check_error(r.error(), v);
  return r;
}

// The payload text_of() would give: string-like types; verbatim without its format.
std::optional<std::string_view> text_like(const value& v) {
  switch (v.data_type) {
    case type::simple_string:
    case type::blob_string:
    case type::big_number:
    case type::double_number:
    case type::integer: return std::string_view(v.text);
    case type::verbatim_string: return v.verbatim_text();
    default: return std::nullopt;
  }
}

bool plain_integer_text(std::string_view s) {
  std::size_t i = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return true;
}

void check_scalars(const value& v) {
  const bool plain = !v.is_error() && !v.is_null();
  const std::optional<std::string_view> text = text_like(v);

  // int64_t, with strtoll as the oracle for texts.
  const auto i64 = conv<std::int64_t>(v);
  if (plain && v.data_type == type::integer) {
    FUZZ_CHECK(i64 && *i64 == v.integer);
  } else if (plain && v.data_type == type::double_number) {
    FUZZ_CHECK(!i64 && i64.error().code == errc::unexpected_type);  // however it is spelled
  } else if (plain && text) {
    if (plain_integer_text(*text)) {
      const std::string z(*text);
      errno = 0;
      const long long want = std::strtoll(z.c_str(), nullptr, 10);
      if (errno == ERANGE) {
        FUZZ_CHECK(!i64 && i64.error().code == errc::out_of_range);
      } else {
        FUZZ_CHECK(i64 && *i64 == want);
      }
    } else {
      FUZZ_CHECK(!i64 && i64.error().code == errc::unexpected_type);
    }
  } else if (plain) {
    FUZZ_CHECK(!i64 && i64.error().code == errc::unexpected_type);
  }

  // Narrower integers agree with int64_t.
  const auto i32 = conv<std::int32_t>(v);
  const auto u16 = conv<std::uint16_t>(v);
  if (i64) {
    const bool fits32 = *i64 >= INT32_MIN && *i64 <= INT32_MAX;
    FUZZ_CHECK(fits32 ? (i32 && *i32 == *i64) : (!i32 && i32.error().code == errc::out_of_range));
    const bool fits16 = *i64 >= 0 && *i64 <= UINT16_MAX;
    FUZZ_CHECK(fits16 ? (u16 && *u16 == *i64) : (!u16 && u16.error().code == errc::out_of_range));
  } else {
    FUZZ_CHECK(!i32 && i32.error() == i64.error());
    FUZZ_CHECK(!u16 && u16.error() == i64.error());
  }

  // double, with strtod as the oracle: both are correctly rounded; a text that overflows (inf
  // without saying "inf") is out_of_range.
  const auto d = conv<double>(v);
  if (plain && v.data_type == type::integer) {
    FUZZ_CHECK(d && same_double(*d, static_cast<double>(v.integer)));
  } else if (plain && text) {
    if (oracle::is_double(*text)) {
      check_parse_double(*text);  // against strtod
      double want = 0;
      FUZZ_CHECK(resp::parse_double(*text, want));
      if (std::isinf(want) && text->find_first_of("iI") == std::string_view::npos) {
        FUZZ_CHECK(!d && d.error().code == errc::out_of_range);
      } else {
        FUZZ_CHECK(d && same_double(*d, want));
      }
    } else {
      FUZZ_CHECK(!d && d.error().code == errc::unexpected_type);
    }
  } else if (plain) {
    FUZZ_CHECK(!d && d.error().code == errc::unexpected_type);
  }
  const auto od = conv<std::optional<double>>(v);
  if (v.is_null()) FUZZ_CHECK(od && !*od);
  else FUZZ_CHECK(d ? (od && *od && same_double(**od, *d)) : (!od && od.error() == d.error()));

  // bool: booleans and integers only.
  const auto b = conv<bool>(v);
  if (plain && (v.data_type == type::boolean || v.data_type == type::integer)) {
    FUZZ_CHECK(b && *b == (v.integer != 0));
  } else if (plain) {
    FUZZ_CHECK(!b && b.error().code == errc::unexpected_type);
  }

  // Strings.
  const auto s = conv<std::string>(v);
  const auto sv = conv<std::string_view>(v);  // on an lvalue: views v.text
  const auto os = conv<std::optional<std::string>>(v);
  if (plain && text) {
    FUZZ_CHECK(s && *s == *text);
    FUZZ_CHECK(sv && *sv == *text);
    FUZZ_CHECK(sv->data() >= v.text.data() && sv->data() + sv->size() <= v.text.data() + v.text.size());
  } else if (plain) {
    FUZZ_CHECK(!s && s.error().code == errc::unexpected_type);
    FUZZ_CHECK(!sv && sv.error() == s.error());
  }
  if (v.is_null()) FUZZ_CHECK(os && !*os);
  else FUZZ_CHECK(s ? (os && *os && **os == *s) : (!os && os.error() == s.error()));

  // ignore_t accepts anything but an error reply; value copies the reply as it is, errors included.
  const auto ig = conv<resp::ignore_t>(v);
  FUZZ_CHECK(bool(ig) == !v.is_error());
  const auto same = conv<value>(v);
  FUZZ_CHECK(same && *same == v);
  const auto opt_same = conv<std::optional<value>>(v);
  FUZZ_CHECK(opt_same && (v.is_null() ? !*opt_same : (*opt_same && **opt_same == v)));
}

bool is_list(const value& v) { return resp::is_aggregate(v.data_type) && v.data_type != type::attribute; }

void check_aggregates(const value& v) {
  const bool plain = !v.is_error() && !v.is_null();

  const auto strings = conv<std::vector<std::string>>(v);
  if (strings) {
    FUZZ_CHECK(is_list(v) && strings->size() == v.elements.size());
    for (std::size_t i = 0; i < v.elements.size(); ++i) {
      const auto e = resp::convert<std::string>(v.elements[i]);
      FUZZ_CHECK(e && *e == (*strings)[i]);
    }
  } else if (plain && !is_list(v)) {
    FUZZ_CHECK(strings.error().code == errc::unexpected_type);
  }

  const auto opt_ints = conv<std::vector<std::optional<std::int64_t>>>(v);
  if (opt_ints) {
    FUZZ_CHECK(is_list(v) && opt_ints->size() == v.elements.size());
    for (std::size_t i = 0; i < v.elements.size(); ++i) {
      const value& e = v.elements[i];
      if (e.is_null()) {
        FUZZ_CHECK(!(*opt_ints)[i]);
      } else {
        const auto n = resp::convert<std::int64_t>(e);
        FUZZ_CHECK(n && (*opt_ints)[i] && *(*opt_ints)[i] == *n);
      }
    }
  }

  const bool flat_ok = v.data_type == type::map ||
                       ((v.data_type == type::array || v.data_type == type::set || v.data_type == type::push) &&
                        v.elements.size() % 2 == 0);
  const auto map = conv<std::map<std::string, std::string>>(v);
  if (map) {
    FUZZ_CHECK(flat_ok && map->size() <= v.elements.size() / 2);
    for (std::size_t i = 0; i + 1 < v.elements.size(); i += 2) {
      const auto k = resp::convert<std::string>(v.elements[i]);
      FUZZ_CHECK(k && map->count(*k) == 1);
    }
    // The last pair with a key wins.
    if (v.elements.size() >= 2) {
      const auto k = resp::convert<std::string>(v.elements[v.elements.size() - 2]);
      const auto m = resp::convert<std::string>(v.elements.back());
      FUZZ_CHECK(k && m && map->at(*k) == *m);
    }
  } else if (plain && !flat_ok) {
    FUZZ_CHECK(map.error().code == errc::unexpected_type);
  }
  const auto umap = conv<std::unordered_map<std::string, std::int64_t>>(v);
  if (umap) FUZZ_CHECK(flat_ok && umap->size() <= v.elements.size() / 2);

  const auto pairs = conv<std::vector<std::pair<std::string, double>>>(v);
  if (pairs) {
    FUZZ_CHECK(flat_ok && pairs->size() == v.elements.size() / 2);
    for (std::size_t i = 0; i < pairs->size(); ++i) {
      const auto k = resp::convert<std::string>(v.elements[2 * i]);
      const auto x = resp::convert<double>(v.elements[2 * i + 1]);
      FUZZ_CHECK(k && x && (*pairs)[i].first == *k && same_double((*pairs)[i].second, *x));
    }
  }

  const auto tup = conv<std::tuple<std::string, std::vector<std::string>>>(v);
  if (tup) {
    FUZZ_CHECK(is_list(v) && v.elements.size() == 2);
    const auto first = resp::convert<std::string>(v.elements[0]);
    FUZZ_CHECK(first && *first == std::get<0>(*tup));
    FUZZ_CHECK(std::get<1>(*tup).size() == v.elements[1].elements.size());
  } else if (plain && is_list(v) && v.elements.size() != 2) {
    FUZZ_CHECK(tup.error().code == errc::unexpected_size);
  }
  const auto pr = conv<std::pair<std::string, std::int64_t>>(v);
  if (pr) FUZZ_CHECK(is_list(v) && v.elements.size() == 2);

  const auto nested = conv<std::vector<std::vector<std::optional<std::string>>>>(v);
  if (nested) FUZZ_CHECK(is_list(v) && nested->size() == v.elements.size());
}

// Every value in the tree, attribute values included, up to a budget.
void visit(const value& v, int& budget) {
  if (budget-- <= 0) return;
  check_scalars(v);
  check_aggregates(v);
  for (const auto& attribute : v.attributes)
    for (const value& e : attribute) visit(e, budget);
  for (const value& e : v.elements) visit(e, budget);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  resp::reader rd;
  reply_collector collector;
  std::vector<resp::node> out(64);
  std::size_t pos = 0;
  for (;;) {
    const resp::read_result r = rd.read(input.substr(pos), out);
    for (std::size_t i = 0; i < r.nodes; ++i) collector.add(out[i]);
    pos += r.consumed;
    if (r.state != resp::status::ok) break;
  }
  int budget = 256;
  for (const value& v : collector.replies) visit(v, budget);
  return 0;
}
