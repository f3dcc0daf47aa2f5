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

constexpr const char* kUsage =
    R"(Prints the server's counters as it last wrote them (every second while it runs, and when it stops) and the
number of registered users. --json: stats.json as written, with "users" added. --store: the server's
--store, when it is a database that keeps the users (else they are counted in DIR/auth).)";

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
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  if (text.ok()) {
    doc = nlohmann::ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) return Fail(kExitError, "stats: " + path + " is not a JSON object");
  } else if (!text.status().IsNotFound()) {
    return Fail(kExitError, "stats: " + text.status().message());
  }

  if (flags.Has("json")) {
    nlohmann::ordered_json out;
    out["users"] = users;
    for (const auto& [key, value] : doc.items()) out[key] = value;
    fmt::print("{}", DumpJson(out));
    return kExitOk;
  }
  fmt::print("{:<28} {}\n", "users", users);
  if (doc.empty()) {
    fmt::print("no stats yet: the server has not run on {}\n", data_dir);
    return kExitOk;
  }
  auto text_of = [](const nlohmann::ordered_json& v) {
    return v.is_string() ? v.get<std::string>()
                         : v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  };
  // An object's members print as "object.member" (media.uploads_created).
  for (const auto& [key, value] : doc.items()) {
    if (!value.is_object()) {
      fmt::print("{:<28} {}\n", key, text_of(value));
      continue;
    }
    for (const auto& [name, v] : value.items()) fmt::print("{:<28} {}\n", key + "." + name, text_of(v));
  }
  return kExitOk;
}

}  // namespace

Command StatsCommand() {
  return {"stats",
          "print the server's last stats and the user count",
          "",
          kUsage,
          {{"data", true, false, "the server's data directory (required): DIR/stats.json", "DIR"},
           {"store", true, false, "the server's --store, when it is a database that keeps the users", "URI"},
           {"json", false, false, "print stats.json as written, with \"users\" added"}},
          &Stats};
}

}  // namespace outpostd
