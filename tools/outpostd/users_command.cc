// Copyright 2026 The Outpost Authors.
//
// `outpostd add-user`, `add-device`, `devices`, `revoke-device` and `remove-user`: issue device tokens,
// list devices, end them. A token goes to stdout, alone on one line, so scripts can capture it; it is
// shown this once (the registry keeps only its hash). Users live where `serve` looks for them (registry.h):
// in a database store given by
// --store (no --data needed, from any host), else in DATA_DIR/auth.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "common/time_format.h"
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
--replace (with --device) retires the device's other tokens at once: they stop working at their next
connection (a connection open now stays until it ends; revoke-device cuts it). A revoked device id takes
no token again.
--data and --store as for add-user: a database store keeps the users, else DIR/auth.)";

constexpr const char* kDevicesUsage =
    R"(Lists the devices of user NAME, one per line, tab-separated: the user, the device id, its state
('bound', or 'revoked'), when it got its first token, when it last connected, the address it last
connected from, and when it was revoked (times in UTC, ISO 8601; '-' for unknown or never). A token not
bound to a device yet is a line with device '-' and state 'unbound'.
--json prints one JSON object instead: {"user", "devices": [{"device", "state", "created", "last_seen",
"last_address", "revoked"}], "unbound_tokens"} (times as ISO strings or null).
Works while the server runs. --data and --store as for add-user: a database store keeps the users, else
DIR/auth.)";

constexpr const char* kRevokeDeviceUsage =
    R"(Revokes device DEVICE of user NAME, for good: its tokens stop working at once, every server on the
store closes its live connections within a second (the device hears "device revoked" and stops: signed
out, its local data kept), and later connections are refused. The device id takes no token again.
Idempotent. Works while the server runs. --data and --store as for add-user.)";

constexpr const char* kRemoveUserUsage =
    R"(Removes user NAME: its tokens and device records go, and its connected devices are ended as if revoked.
What it wrote stays: its ops in history, and its memberships (the streams' members remove it with a
membership change, as for anyone who leaves). The name may be created again (a new user, new tokens).
Works while the server runs. --data and --store as for add-user.)";

using IssueFn = outpost::Result<std::string> (outpost::TokenRegistry::*)(std::string_view, std::string_view);

// Checks --data / --store and the single NAME, creates the data directory when needed (users in
// DATA_DIR/auth) and opens the registry. On failure returns the exit code (with the message printed); on
// success 0 and `*registry`.
int OpenForCommand(const Flags& flags, const char* command, bool create,
                   std::unique_ptr<outpost::TokenRegistry>* registry, size_t positional = 1) {
  const std::string data_dir = flags.Get("data");
  const std::string store = flags.Get("store");
  const bool in_store = outpost::TokenRegistry::UsersMayLiveIn(store);
  if (data_dir.empty() && !in_store) {
    return Fail(kExitUsage,
                fmt::format("{}: --data DIR is required (or --store URI of a database that keeps the users)",
                            command));
  }
  if (flags.positional().size() != positional) {
    return Fail(kExitUsage,
                fmt::format("{}: expected {} (outpostd {} --help)", command,
                            positional == 1 ? "exactly one user NAME" : "a user NAME and a DEVICE", command));
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

int Issue(const Flags& flags, const char* command, bool first) {
  const std::string device = flags.Get("device");
  if (flags.Has("device")) {
    if (outpost::Status s = outpost::ValidateDeviceId(device); !s.ok()) {
      return Fail(kExitUsage, fmt::format("{}: --device: {}", command, s.message()));
    }
  }
  const bool replace = flags.Has("replace");
  if (replace && !flags.Has("device")) {
    return Fail(kExitUsage,
                fmt::format("{}: --replace needs --device ID (the device whose tokens it retires)", command));
  }
  std::unique_ptr<outpost::TokenRegistry> registry;
  if (int code = OpenForCommand(flags, command, true, &registry); code != kExitOk) return code;
  const std::string& user = flags.positional().front();
  auto token = first ? registry->AddUser(user, device) : registry->AddDevice(user, device, replace);
  if (!token.ok()) return Fail(kExitError, fmt::format("{}: {}", command, token.status().message()));
  fmt::print("{}\n", *token);
  std::fflush(stdout);
  return kExitOk;
}

int AddUser(const Flags& flags) { return Issue(flags, "add-user", true); }
int AddDevice(const Flags& flags) { return Issue(flags, "add-device", false); }

std::string TimeOrDash(int64_t ms) { return ms == 0 ? "-" : outpost::cli::UtcIso(ms); }
nlohmann::json TimeOrNull(int64_t ms) {
  return ms == 0 ? nlohmann::json(nullptr) : nlohmann::json(outpost::cli::UtcIso(ms));
}

int Devices(const Flags& flags) {
  std::unique_ptr<outpost::TokenRegistry> registry;
  if (int code = OpenForCommand(flags, "devices", false, &registry); code != kExitOk) return code;
  const std::string& user = flags.positional().front();
  // The tokens first: an entry of unknown form fails the listing rather than hide a token.
  auto tokens = registry->Devices(user);
  if (!tokens.ok()) return Fail(kExitError, "devices: " + tokens.status().message());
  auto devices = registry->DeviceRecords(user);
  if (!devices.ok()) return Fail(kExitError, "devices: " + devices.status().message());
  size_t unbound = 0;
  for (const auto& t : *tokens) unbound += t.device.empty() ? 1 : 0;
  if (flags.Has("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& d : *devices) {
      list.push_back({{"device", d.device},
                      {"state", d.revoked_ms != 0 ? "revoked" : "bound"},
                      {"created", TimeOrNull(d.created_ms)},
                      {"last_seen", TimeOrNull(d.last_seen_ms)},
                      {"last_address",
                       d.last_address.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.last_address)},
                      {"revoked", TimeOrNull(d.revoked_ms)}});
    }
    nlohmann::json out = {{"user", user}, {"devices", std::move(list)}, {"unbound_tokens", unbound}};
    // Device ids are any UTF-8 the device chose: replaced, not refused, if a byte is not.
    fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
    std::fflush(stdout);
    return kExitOk;
  }
  for (const auto& d : *devices) {
    // Device ids hold no control characters (ValidateDeviceId): a tab cannot split a column.
    fmt::print("{}\t{}\t{}\t{}\t{}\t{}\t{}\n", user, d.device, d.revoked_ms != 0 ? "revoked" : "bound",
               TimeOrDash(d.created_ms), TimeOrDash(d.last_seen_ms),
               d.last_address.empty() ? "-" : d.last_address, TimeOrDash(d.revoked_ms));
  }
  for (size_t i = 0; i < unbound; ++i) fmt::print("{}\t-\tunbound\t-\t-\t-\t-\n", user);
  std::fflush(stdout);
  return kExitOk;
}

int RevokeDevice(const Flags& flags) {
  std::unique_ptr<outpost::TokenRegistry> registry;
  if (int code = OpenForCommand(flags, "revoke-device", false, &registry, 2); code != kExitOk) return code;
  const std::string& user = flags.positional()[0];
  const std::string& device = flags.positional()[1];
  if (outpost::Status s = outpost::ValidateDeviceId(device); !s.ok()) {
    return Fail(kExitUsage, "revoke-device: " + s.message());
  }
  if (outpost::Status s = registry->RevokeDevice(user, device); !s.ok()) {
    return Fail(kExitError, "revoke-device: " + s.message());
  }
  fmt::print("revoked device {} of user {}: its tokens no longer work and servers close its connections\n",
             outpost::QuoteForMessage(device), outpost::QuoteForMessage(user));
  std::fflush(stdout);
  return kExitOk;
}

int RemoveUser(const Flags& flags) {
  std::unique_ptr<outpost::TokenRegistry> registry;
  if (int code = OpenForCommand(flags, "remove-user", false, &registry); code != kExitOk) return code;
  const std::string& user = flags.positional().front();
  if (outpost::Status s = registry->RemoveUser(user); !s.ok()) {
    return Fail(kExitError, "remove-user: " + s.message());
  }
  fmt::print("removed user {}: its tokens no longer work and servers close its devices' connections\n",
             outpost::QuoteForMessage(user));
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
            "bind the token to this device id (else to the device of its first connection)", "ID"},
           {"replace", false, false, "retire the device's other tokens (needs --device)", ""}},
          &AddDevice};
}

Command DevicesCommand() {
  return {"devices",
          "list a user's devices: created, last seen, last address, revoked",
          "NAME",
          kDevicesUsage,
          {{"data", true, false, "outpostd's data directory: the users are in DIR/auth (key-value stores)",
            "DIR"},
           {"store", true, false,
            "the server store, when it is a database that keeps the users (postgresql://...)", "URI"},
           {"json", false, false, "print one JSON object", ""}},
          &Devices};
}

Command RevokeDeviceCommand() {
  return {"revoke-device",
          "revoke a device: its tokens stop working and its connections close",
          "NAME DEVICE",
          kRevokeDeviceUsage,
          {{"data", true, false, "outpostd's data directory: the users are in DIR/auth (key-value stores)",
            "DIR"},
           {"store", true, false,
            "the server store, when it is a database that keeps the users (postgresql://...)", "URI"}},
          &RevokeDevice};
}

Command RemoveUserCommand() {
  return {"remove-user",
          "remove a user: its tokens and devices end",
          "NAME",
          kRemoveUserUsage,
          {{"data", true, false, "outpostd's data directory: the users are in DIR/auth (key-value stores)",
            "DIR"},
           {"store", true, false,
            "the server store, when it is a database that keeps the users (postgresql://...)", "URI"}},
          &RemoveUser};
}

}  // namespace outpostd
