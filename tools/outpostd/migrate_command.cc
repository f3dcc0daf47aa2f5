// Copyright 2026 The Outpost Authors.
//
// `outpostd migrate`: creates the server store's schema or upgrades it to this build's version
// (MigrateServerStore), and prints what it did.
#include <fmt/core.h>

#include <cstdio>
#include <string>

#include "command.h"
#include "files.h"
#include "outpost/server_store.h"
#include "outpost/token_registry.h"

namespace outpostd {
namespace {

constexpr const char* kUsage =
    R"(Creates the schema of the server store named by --store (default lmdb:DIR/server), or upgrades it to this
build's version, and prints what it did. A PostgreSQL store (postgresql://USER:PASSWORD@HOST/DB) is
migrated in one transaction (a failed migration leaves the old schema) and must be, once per upgrade,
before `outpostd serve` opens it: run it from any one host, not from every server. A key-value store is
initialised as `serve` would. Exits 0 when the store is at this build's version, 1 otherwise.

--new-incarnation, after the store was put back from an earlier copy by other means than `outpostd
restore` (a PostgreSQL database restored with pg_restore or from a base backup): records a new
incarnation, so that devices learn that the server went back in time, and prints it (hex). No outpostd may
serve the store meanwhile (docs/operations.md); a key-value store also needs --data, whose lock it takes.)";

int Migrate(const Flags& flags) {
  if (!flags.positional().empty()) {
    return Fail(kExitUsage, "migrate: unexpected argument '" + flags.positional().front() + "'");
  }
  std::string data_dir = flags.Get("data");
  while (data_dir.size() > 1 && data_dir.back() == '/') data_dir.pop_back();
  std::string store = flags.Get("store");
  if (store.empty()) {
    if (data_dir.empty()) return Fail(kExitUsage, "migrate: --store URI or --data DIR is required");
    store = "lmdb:" + data_dir + "/server";
  }
  // The default store lives in DATA_DIR: create it as `serve` would.
  if (!flags.Has("store")) {
    if (outpost::Status s = EnsureDataDir(data_dir); !s.ok())
      return Fail(kExitError, "migrate: " + s.message());
  }
  auto done = outpost::MigrateServerStore(store);
  if (!done.ok()) {
    return Fail(kExitError, "migrate: " + outpost::RedactUri(store) + ": " + done.status().ToString());
  }
  fmt::print("{}\n", outpost::RedactUri(*done));  // the store names itself; never with its password
  if (flags.Has("new-incarnation")) {
    DataDirLock lock;  // a key-value store: no outpostd may serve it meanwhile
    if (!outpost::TokenRegistry::UsersMayLiveIn(store)) {
      if (data_dir.empty())
        return Fail(kExitUsage, "migrate --new-incarnation: a key-value store needs --data DIR");
      if (outpost::Status s = lock.Acquire(data_dir, false); !s.ok()) {
        return Fail(kExitError, "migrate --new-incarnation: " + s.message() + ": stop it first");
      }
    }
    auto id = outpost::NewIncarnation(store);
    if (!id.ok()) {
      return Fail(kExitError,
                  "migrate --new-incarnation: " + outpost::RedactUri(store) + ": " + id.status().ToString());
    }
    std::string hex;
    for (unsigned char c : *id) hex += fmt::format("{:02x}", c);
    fmt::print("new incarnation {}\n", hex);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

Command MigrateCommand() {
  return {"migrate",
          "create or upgrade the server store's schema (a database store: before serving)",
          "",
          kUsage,
          {{"store", true, false, "the server store (postgresql://USER:PASSWORD@HOST/DB, or a key-value URI)",
            "URI"},
           {"data", true, false, "a data directory: its default store lmdb:DIR/server", "DIR"},
           {"new-incarnation", false, false,
            "then record a new incarnation: the store was restored from an earlier copy", ""}},
          &Migrate};
}

}  // namespace outpostd
