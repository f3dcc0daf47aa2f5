// Copyright 2026 The Outpost Authors.
//
// Command-line flags of one subcommand (outpostd, outpost-chat): `--name VALUE`, `--name=VALUE` and
// `--switch`, then positional arguments. Every mistake is reported as one line naming the flag (the caller
// prints it and exits with kExitUsage).
#ifndef OUTPOST_TOOLS_COMMON_FLAGS_H_
#define OUTPOST_TOOLS_COMMON_FLAGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace outpost::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the command was understood but failed
inline constexpr int kExitUsage = 2;  // the command line was wrong

struct FlagSpec {
  std::string name;          // without the leading "--"
  bool takes_value = false;  // false: a switch
  bool repeatable = false;   // values accumulate in order
};

class Flags {
 public:
  // Parses `args` (the words after the subcommand). On error returns false and sets `*error`.
  bool Parse(const std::vector<FlagSpec>& specs, const std::vector<std::string>& args, std::string* error);

  bool Has(std::string_view name) const;
  // The last value given, or `fallback`.
  std::string Get(std::string_view name, std::string_view fallback = {}) const;
  // Every value given, in order, with comma-separated lists split.
  std::vector<std::string> GetList(std::string_view name) const;
  // An unsigned integer flag, `fallback` when absent. False (with `*error`) for junk or a value > `max`.
  bool GetUint(std::string_view name, uint64_t fallback, uint64_t max, uint64_t* out,
               std::string* error) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::vector<std::string> positional_;
};

}  // namespace outpost::cli

#endif  // OUTPOST_TOOLS_COMMON_FLAGS_H_
