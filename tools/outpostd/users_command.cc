// Copyright 2026 The Outpost Authors.
//
// `outpostd add-user` and `outpostd add-device`: issue device tokens. The token goes to stdout, alone on
// one line, so scripts can capture it; it is shown this once (the registry keeps only its hash).
#include <fmt/core.h>

#include <string>

#include "command.h"
#include "files.h"
#include "registry.h"

namespace outpostd {
namespace {

constexpr const char* kAddUserUsage = R"(usage: outpostd add-user --data DIR NAME

Creates user NAME (1..64 bytes of letters, digits, '.', '_', '-') and prints the token of its first
device on stdout. Works while the server runs. Give the token to the device (ClientOptions::token); it is
not stored and cannot be shown again (`add-device` issues another).
)";

constexpr const char* kAddDeviceUsage = R"(usage: outpostd add-device --data DIR NAME

Prints a new token for another device of the existing user NAME. Works while the server runs.
)";

using IssueFn = outpost::Result<std::string> (Registry::*)(std::string_view);

int Issue(const Flags& flags, const char* command, IssueFn issue) {
  const std::string data_dir = flags.Get("data");
  if (data_dir.empty()) return Fail(kExitUsage, fmt::format("{}: --data DIR is required", command));
  if (flags.positional().size() != 1) {
    return Fail(kExitUsage,
                fmt::format("{}: expected exactly one user NAME (outpostd {} --help)", command, command));
  }
  const std::string& name = flags.positional().front();
  if (outpost::Status s = ValidateUserName(name); !s.ok()) {
    return Fail(kExitUsage, fmt::format("{}: {}", command, s.message()));
  }
  if (outpost::Status s = EnsureDataDir(data_dir); !s.ok()) {
    return Fail(kExitError, fmt::format("{}: {}", command, s.message()));
  }
  auto registry = Registry::Open(data_dir);
  if (!registry.ok()) {
    return Fail(kExitError, fmt::format("{}: cannot open the user registry {}: {}", command,
                                        Registry::StoreUri(data_dir), registry.status().ToString()));
  }
  auto token = ((**registry).*issue)(name);
  if (!token.ok()) return Fail(kExitError, fmt::format("{}: {}", command, token.status().message()));
  fmt::print("{}\n", *token);
  std::fflush(stdout);
  return kExitOk;
}

int AddUser(const Flags& flags) { return Issue(flags, "add-user", &Registry::AddUser); }
int AddDevice(const Flags& flags) { return Issue(flags, "add-device", &Registry::AddDevice); }

}  // namespace

Command AddUserCommand() {
  return {"add-user",
          "create a user and print its first device token",
          kAddUserUsage,
          {{"data", true, false}},
          &AddUser};
}

Command AddDeviceCommand() {
  return {"add-device",
          "print a token for another device of a user",
          kAddDeviceUsage,
          {{"data", true, false}},
          &AddDevice};
}

}  // namespace outpostd
