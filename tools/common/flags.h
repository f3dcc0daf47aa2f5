// Copyright 2026 The Outpost Authors.
//
// Command-line flags of one subcommand (outpostd, outpost-chat), declared once (FlagSpec: name, value,
// help) and parsed by CLI11, which also makes the command's --help from the same declaration and answers
// -h, --help and --version. Accepted: `--name VALUE`, `--name=VALUE`, `--switch`, positional arguments,
// and `--` before positional arguments that start with a dash. Every mistake is one line on stderr naming
// the flag it came from, and the exit code kExitUsage.
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
  bool repeatable = false;   // values accumulate in order; else giving it twice is a usage error
  std::string help;          // for --help (may span lines)
  std::string value = "VALUE";  // the value's placeholder in --help (DIR, URI, N, ...)
};

// What --help says around the flags.
struct Usage {
  std::string program;      // "outpostd serve", "outpost-chat history": error lines start with it
  std::string arguments;    // the positional arguments' synopsis ("CONV TEXT"); empty: none taken
  std::string description;  // before the options
  std::string footer;       // after them
  std::string version;      // what --version prints ("outpostd 0.1.0")
};

class Flags {
 public:
  // Parses `args` (the words after the subcommand). Returns -1 when the command should run; otherwise the
  // exit code to return at once with `*message`: kExitOk for -h/--help or --version (the text, for
  // stdout), kExitUsage for a mistake (one line for stderr: "TOOL: --flag: what is wrong (PROGRAM --help)").
  // Prints nothing itself (PrintParseMessage does).
  int Parse(const Usage& usage, const std::vector<FlagSpec>& specs, const std::vector<std::string>& args,
            std::string* message);

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

// Prints Parse's `message` where it belongs (stdout for kExitOk, else stderr) and returns `exit_code`.
int PrintParseMessage(int exit_code, const std::string& message);

// The --help text of `usage` and `specs` (what Parse gives for -h).
std::string HelpText(const Usage& usage, const std::vector<FlagSpec>& specs);

}  // namespace outpost::cli

#endif  // OUTPOST_TOOLS_COMMON_FLAGS_H_
