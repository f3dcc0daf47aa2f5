// Copyright 2026 The Outpost Authors.
//
// `outpostd stats`: what the server last wrote to DATA_DIR/stats.json, plus the number of users.
#include <fmt/core.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "command.h"
#include "files.h"
#include "outpost/token_registry.h"
#include "stats_json.h"

namespace outpostd {
namespace {

constexpr const char* kUsage = R"(usage: outpostd stats --data DIR [--store URI] [--json]

Prints the server's counters as it last wrote them (every second while it runs, and when it stops) and the
number of registered users. --json: stats.json as written, with "users" added. --store: the server's
--store, when it is a database that keeps the users (else they are counted in DIR/auth).
)";

// The user count, or -1 when there is no registry yet or it cannot be read (the reason in `*why`).
int64_t UserCount(const std::string& data_dir, const std::string& store, std::string* why) {
  struct stat st {};
  const bool in_store = outpost::TokenRegistry::UsersMayLiveIn(store);
  if (!in_store && ::stat((data_dir + "/auth").c_str(), &st) != 0) return 0;  // no user was ever added
  auto registry = outpost::TokenRegistry::Open(data_dir, store);
  if (!registry.ok()) {
    *why = registry.status().ToString();
    return -1;
  }
  auto n = (*registry)->UserCount();
  if (!n.ok()) {
    *why = n.status().ToString();
    return -1;
  }
  return static_cast<int64_t>(*n);
}

int Stats(const Flags& flags) {
  const std::string data_dir = flags.Get("data");
  if (data_dir.empty()) return Fail(kExitUsage, "stats: --data DIR is required");
  if (!flags.positional().empty())
    return Fail(kExitUsage, "stats: unexpected argument '" + flags.positional()[0] + "'");
  if (outpost::Status s = RequireDataDir(data_dir); !s.ok()) return Fail(kExitError, "stats: " + s.message());

  std::string why;
  const int64_t users = UserCount(data_dir, flags.Get("store"), &why);
  if (users < 0) return Fail(kExitError, "stats: cannot read the user registry: " + why);

  const std::string path = data_dir + "/" + std::string(kStatsFileName);
  auto text = ReadFile(path);
  std::vector<JsonMember> members;
  if (text.ok()) {
    std::string error;
    if (!ParseFlatJson(*text, &members, &error)) return Fail(kExitError, "stats: " + path + ": " + error);
  } else if (!text.status().IsNotFound()) {
    return Fail(kExitError, "stats: " + text.status().message());
  }

  auto value = [](const JsonMember& m) { return m.is_string ? JsonQuote(m.value) : m.value; };
  if (flags.Has("json")) {
    fmt::print("{{\n  \"users\": {}", users);
    for (const auto& m : members) {
      if (!m.is_object) {
        fmt::print(",\n  {}: {}", JsonQuote(m.key), value(m));
        continue;
      }
      fmt::print(",\n  {}: {{", JsonQuote(m.key));
      for (size_t i = 0; i < m.members.size(); ++i) {
        fmt::print("{}\n    {}: {}", i == 0 ? "" : ",", JsonQuote(m.members[i].key), value(m.members[i]));
      }
      fmt::print("{}}}", m.members.empty() ? "" : "\n  ");
    }
    fmt::print("\n}}\n");
    return kExitOk;
  }
  fmt::print("{:<28} {}\n", "users", users);
  if (members.empty()) {
    fmt::print("no stats yet: the server has not run on {}\n", data_dir);
    return kExitOk;
  }
  // An object's members print as "object.member" (media.uploads_created).
  for (const auto& m : members) {
    if (!m.is_object) {
      fmt::print("{:<28} {}\n", m.key, m.value);
      continue;
    }
    for (const auto& n : m.members) fmt::print("{:<28} {}\n", m.key + "." + n.key, n.value);
  }
  return kExitOk;
}

}  // namespace

Command StatsCommand() {
  return {"stats",
          "print the server's last stats and the user count",
          kUsage,
          {{"data", true, false}, {"store", true, false}, {"json", false, false}},
          &Stats};
}

}  // namespace outpostd
