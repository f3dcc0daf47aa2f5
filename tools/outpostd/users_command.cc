// Copyright 2026 The Outpost Authors.
//
// `outpostd add-user`, `outpostd add-device` and `outpostd devices`: issue device tokens and list them. A
// token goes to stdout, alone on one line, so scripts can capture it; it is shown this once (the registry
// keeps only its hash). Users live where `serve` looks for them (registry.h): in a database store given by
// --store (no --data needed, from any host), else in DATA_DIR/auth.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "files.h"
#include "outpost/token_registry.h"

namespace outpostd {
namespace {

constexpr const char* kAddUserUsage =
    R"(Creates user NAME (1..64 bytes of letters, digits, '.', '_', '-') and prints the token of its first
device on stdout. Works while the server runs. Give the token to the device (ClientOptions::token); it is
not stored and cannot be shown again (`add-device` issues another).

A token logs in as one device of one user. --device ID binds it to device ID (1..255 bytes, no control
characters); without it, the token binds to the device id of the first connection that uses it.

Users live where `outpostd serve` with the same --data and --store looks for them: with a database store
(--store postgresql://...) in the database, so that every server on it knows them (no --data needed; run
it from any host); with a key-value store (the default, lmdb:DIR/server) in DIR/auth.)";

constexpr const char* kAddDeviceUsage =
    R"(Prints a new token for another device of the existing user NAME. Works while the server runs.
--device ID binds it to device ID; without it, the token binds to the device of its first connection.
--data and --store as for add-user: a database store keeps the users, else DIR/auth.)";

constexpr const char* kDevicesUsage =
    R"(Lists the tokens of user NAME, one per line: the user, the device id the token is bound to (or '-'), and
'bound' or 'unbound' (an unbound token binds to the device of its first connection).
--data and --store as for add-user: a database store keeps the users, else DIR/auth.)";

using IssueFn = outpost::Result<std::string> (outpost::TokenRegistry::*)(std::string_view, std::string_view);

// Checks --data / --store and the single NAME, creates the data directory when needed (users in
// DATA_DIR/auth) and opens the registry. On failure returns the exit code (with the message printed); on
// success 0 and `*registry`.
int OpenForCommand(const Flags& flags, const char* command, bool create,
                   std::unique_ptr<outpost::TokenRegistry>* registry) {
  const std::string data_dir = flags.Get("data");
  const std::string store = flags.Get("store");
  const bool in_store = outpost::TokenRegistry::UsersMayLiveIn(store);
  if (data_dir.empty() && !in_store) {
    return Fail(kExitUsage,
                fmt::format("{}: --data DIR is required (or --store URI of a database that keeps the users)",
                            command));
  }
  if (flags.positional().size() != 1) {
    return Fail(kExitUsage,
                fmt::format("{}: expected exactly one user NAME (outpostd {} --help)", command, command));
  }
  if (outpost::Status s = outpost::ValidateUserName(flags.positional().front()); !s.ok()) {
    return Fail(kExitUsage, fmt::format("{}: {}", command, s.message()));
  }
  if (!in_store) {
    if (outpost::Status s = create ? EnsureDataDir(data_dir) : RequireDataDir(data_dir); !s.ok()) {
      return Fail(kExitError, fmt::format("{}: {}", command, s.message()));
    }
  }
  auto opened = outpost::TokenRegistry::Open(data_dir, store);
  if (!opened.ok()) {
    return Fail(kExitError,
                fmt::format("{}: cannot open the user registry {}: {}", command,
                            in_store ? outpost::RedactUri(store) : outpost::TokenRegistry::StoreUri(data_dir),
                            opened.status().ToString()));
  }
  *registry = std::move(opened).value();
  return kExitOk;
}

int Issue(const Flags& flags, const char* command, IssueFn issue) {
  const std::string device = flags.Get("device");
  if (flags.Has("device")) {
    if (outpost::Status s = outpost::ValidateDeviceId(device); !s.ok()) {
      return Fail(kExitUsage, fmt::format("{}: --device: {}", command, s.message()));
    }
  }
  std::unique_ptr<outpost::TokenRegistry> registry;
  if (int code = OpenForCommand(flags, command, true, &registry); code != kExitOk) return code;
  auto token = ((*registry).*issue)(flags.positional().front(), device);
  if (!token.ok()) return Fail(kExitError, fmt::format("{}: {}", command, token.status().message()));
  fmt::print("{}\n", *token);
  std::fflush(stdout);
  return kExitOk;
}

int AddUser(const Flags& flags) { return Issue(flags, "add-user", &outpost::TokenRegistry::AddUser); }
int AddDevice(const Flags& flags) { return Issue(flags, "add-device", &outpost::TokenRegistry::AddDevice); }

int Devices(const Flags& flags) {
  std::unique_ptr<outpost::TokenRegistry> registry;
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
          "NAME",
          kAddUserUsage,
          {{"data", true, false, "outpostd's data directory: the users are in DIR/auth (key-value stores)",
            "DIR"},
           {"store", true, false,
            "the server store, when it is a database that keeps the users (postgresql://...)", "URI"},
           {"device", true, false,
            "bind the token to this device id (else to the device of its first connection)", "ID"}},
          &AddUser};
}

Command AddDeviceCommand() {
  return {"add-device",
          "print a token for another device of a user",
          "NAME",
          kAddDeviceUsage,
          {{"data", true, false, "outpostd's data directory: the users are in DIR/auth (key-value stores)",
            "DIR"},
           {"store", true, false,
            "the server store, when it is a database that keeps the users (postgresql://...)", "URI"},
           {"device", true, false,
            "bind the token to this device id (else to the device of its first connection)", "ID"}},
          &AddDevice};
}

Command DevicesCommand() {
  return {"devices",
          "list a user's tokens and the devices they are bound to",
          "NAME",
          kDevicesUsage,
          {{"data", true, false, "outpostd's data directory: the users are in DIR/auth (key-value stores)",
            "DIR"},
           {"store", true, false,
            "the server store, when it is a database that keeps the users (postgresql://...)", "URI"}},
          &Devices};
}

}  // namespace outpostd
