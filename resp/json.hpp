// SPDX-License-Identifier: MIT
// Canonical JSON for RESP values: the contract of tools/respcat (see README, "respcat").
#pragma once

#include "resp/value.hpp"

#include <string>

namespace redring::resp {

/// Appends the canonical JSON of `v` to `out`, without a newline. Byte strings become JSON strings
/// in which each byte is the code point of equal value (Latin-1); integers are normalised decimal
/// text, doubles and big numbers keep their text. See README "respcat" for the full mapping.
void append_json(std::string& out, const value& v);

}  // namespace redring::resp
