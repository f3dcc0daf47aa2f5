// Copyright 2026 The Outpost Authors.
//
// JSON output for the command-line tools.
#ifndef OUTPOST_TOOLS_COMMON_JSON_H_
#define OUTPOST_TOOLS_COMMON_JSON_H_

#include <string>
#include <string_view>

namespace outpost::cli {

// `s` as a JSON string literal: quotes, backslashes and control characters escaped, other bytes as they are
// (UTF-8 passes through).
std::string JsonQuote(std::string_view s);

}  // namespace outpost::cli

#endif  // OUTPOST_TOOLS_COMMON_JSON_H_
