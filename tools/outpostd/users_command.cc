// Copyright 2026 The Outpost Authors.
//
// `outpostd add-user`, `outpostd add-device` and `outpostd devices`: issue device tokens and list them. A
// token goes to stdout, alone on one line, so scripts can capture it; it is shown this once (the registry
// keeps only its hash).
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "files.h"
#include "registry.h"

namespace outpostd {
namespace {

constexpr const char* kAddUserUsage = R"(usage: outpostd add-user --data DIR NAME [--device ID]

Creates user NAME (1..64 bytes of letters, digits, '.', '_', '-') and prints the token of its first
device on stdout. Works while the server runs. Give the token to the device (ClientOptions::token); it is
not stored and cannot be shown again (`add-device` issues another).

A token logs in as one device of one user. --device ID binds it to device ID (1..255 bytes, no control
characters); without it, the token binds to the device id of the first connection that uses it.
)";

constexpr const char* kAddDeviceUsage = R"(usage: outpostd add-device --data DIR NAME [--device ID]

Prints a new token for another device of the existing user NAME. Works while the server runs.
--device ID binds it to device ID; without it, the token binds to the device of its first connection.
)";

constexpr const char* kDevicesUsage = R"(usage: outpostd devices --data DIR NAME

Lists the tokens of user NAME, one per line: the user, the device id the token is bound to (or '-'), and
'bound' or 'unbound' (an unbound token binds to the device of its first connection).
)";

using IssueFn = outpost::Result<std::string> (Registry::*)(std::string_view, std::string_view);

// Checks --data and the single NAME, creates the data directory when needed and opens the registry. On
// failure returns the exit code (with the message printed); on success 0 and `*registry`.
int OpenForCommand(const Flags& flags, const char* command, bool create,
                   std::unique_ptr<Registry>* registry) {
  const std::string data_dir = flags.Get("data");
  if (data_dir.empty()) return Fail(kExitUsage, fmt::format("{}: --data DIR is required", command));
  if (flags.positional().size() != 1) {
    return Fail(kExitUsage,
                fmt::format("{}: expected exactly one user NAME (outpostd {} --help)", command, command));
  }
  if (outpost::Status s = ValidateUserName(flags.positional().front()); !s.ok()) {
    return Fail(kExitUsage, fmt::format("{}: {}", command, s.message()));
  }
  if (outpost::Status s = create ? EnsureDataDir(data_dir) : RequireDataDir(data_dir); !s.ok()) {
    return Fail(kExitError, fmt::format("{}: {}", command, s.message()));
  }
  auto opened = Registry::Open(data_dir);
  if (!opened.ok()) {
    return Fail(kExitError, fmt::format("{}: cannot open the user registry {}: {}", command,
                                        Registry::StoreUri(data_dir), opened.status().ToString()));
  }
  *registry = std::move(opened).value();
  return kExitOk;
}

int Issue(const Flags& flags, const char* command, IssueFn issue) {
  const std::string device = flags.Get("device");
  if (flags.Has("device")) {
    if (outpost::Status s = ValidateDeviceId(device); !s.ok()) {
      return Fail(kExitUsage, fmt::format("{}: --device: {}", command, s.message()));
    }
  }
  std::unique_ptr<Registry> registry;
  if (int code = OpenForCommand(flags, command, true, &registry); code != kExitOk) return code;
  auto token = ((*registry).*issue)(flags.positional().front(), device);
  if (!token.ok()) return Fail(kExitError, fmt::format("{}: {}", command, token.status().message()));
  fmt::print("{}\n", *token);
  std::fflush(stdout);
  return kExitOk;
}

int AddUser(const Flags& flags) { return Issue(flags, "add-user", &Registry::AddUser); }
int AddDevice(const Flags& flags) { return Issue(flags, "add-device", &Registry::AddDevice); }

int Devices(const Flags& flags) {
  std::unique_ptr<Registry> registry;
  if (int code = OpenForCommand(flags, "devices", false, &registry); code != kExitOk) return code;
  auto tokens = registry->Devices(flags.positional().front());
  if (!tokens.ok()) return Fail(kExitError, "devices: " + tokens.status().message());
  for (const auto& t : *tokens) {
    fmt::print("{}\t{}\t{}\n", t.user, t.device.empty() ? "-" : t.device,
               t.device.empty() ? "unbound" : "bound");
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

Command AddUserCommand() {
  return {"add-user",
          "create a user and print its first device token",
          kAddUserUsage,
          {{"data", true, false}, {"device", true, false}},
          &AddUser};
}

Command AddDeviceCommand() {
  return {"add-device",
          "print a token for another device of a user",
          kAddDeviceUsage,
          {{"data", true, false}, {"device", true, false}},
          &AddDevice};
}

Command DevicesCommand() {
  return {"devices",
          "list a user's tokens and the devices they are bound to",
          kDevicesUsage,
          {{"data", true, false}},
          &Devices};
}

}  // namespace outpostd
