// Copyright 2026 The Outpost Authors.
//
// outpost-inspect: looks into a device store or a server store without changing it (read-only opens, safe
// while an app or outpostd holds the store open and writes). The command line is declared once here with
// CLI11, which makes --help of the tool and of every subcommand; docs/tools.md describes the output.
// Exit codes: 0 ok, 1 the store could not be read, 2 the command line was wrong.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "inspect.h"
#include "outpost/version.h"

namespace {

using outpost::inspect::Json;

constexpr const char* kDescription =
    "outpost-inspect: shows what an Outpost store holds, read-only (safe on a store another process has "
    "open and writes: nothing is created, written or locked for writing).\n"
    "Store URIs: lmdb:DIR, sqlite:FILE, rocksdb:DIR; a bare directory is lmdb:DIR and a bare SQLite file "
    "sqlite:FILE (as outpost-chat's --store takes them).\n"
    "Output: aligned text (times in UTC, control characters and invalid UTF-8 shown as \\xNN), or --json "
    "(one JSON document; invalid UTF-8 in strings becomes U+FFFD).\n"
    "Exit codes: 0 ok, 1 the store could not be read, 2 usage error.";

// A --store given as a bare path, as outpost-chat takes it: a directory is an LMDB store (outpost-chat's
// default), a file that starts as SQLite databases do is a SQLite store. Anything else is left as given
// (the opener then says what it expected).
std::string BarePathToUri(std::string store) {
  if (store.find(':') != std::string::npos) return store;
  std::error_code ec;
  if (!std::filesystem::exists(store, ec)) {
    throw CLI::ValidationError("no store at " + store +
                               " (nothing there; a URI needs its scheme: "
                               "lmdb:DIR, sqlite:FILE, rocksdb:DIR)");
  }
  if (std::filesystem::is_directory(store, ec)) return "lmdb:" + store;
  std::ifstream file(store, std::ios::binary);
  char magic[16] = {};
  if (file.read(magic, sizeof magic) &&
      std::string_view(magic, sizeof magic) == std::string_view("SQLite format 3\0", 16)) {
    return "sqlite:" + store;
  }
  return store;
}

int Print(const outpost::Result<Json>& result, bool json) {
  if (!result.ok()) {
    std::fprintf(stderr, "outpost-inspect: %s\n",
                 outpost::inspect::Printable(result.status().message()).c_str());
    return result.status().code() == outpost::Status::Code::kInvalidArgument ? outpost::inspect::kExitUsage
                                                                             : outpost::inspect::kExitFailed;
  }
  const std::string text =
      json ? outpost::inspect::RenderJson(*result) : outpost::inspect::RenderText(*result);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return std::fflush(stdout) == 0 ? outpost::inspect::kExitOk : outpost::inspect::kExitFailed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "outpost-inspect");
  app.set_version_flag("--version", std::string("outpost-inspect ") + outpost::Version());
  app.require_subcommand(1);

  outpost::inspect::DeviceQuery device;
  bool device_json = false;
  CLI::App* dev = app.add_subcommand(
      "device",
      "a device store (an app's Client store, e.g. outpost-chat's); without a section: the metadata and the "
      "number of records of each kind");
  dev->fallthrough();
  dev->add_option("--store", device.store, "the device store's URI, or its directory (LMDB)")
      ->required()
      ->transform([](std::string store) { return BarePathToUri(std::move(store)); });
  dev->add_flag("--json", device_json, "print JSON instead of text");
  dev->require_subcommand(0, 1);
  struct Section {
    const char* name;
    const char* help;
  };
  const std::vector<Section> device_sections = {
      {"meta", "format version, user, device, last local seq"},
      {"streams", "per stream: cursor, high seq, read seq, unread, followed, outbox and failed counts"},
      {"view", "one stream's ops, newest first (own unsent ops, then sent ops by seq), a page at a time"},
      {"outbox", "every outbox entry with its op: status, created_at, attempts, next_attempt_at, last error"},
      {"failed", "failed own ops with their reasons"},
      {"watermarks", "delivered and read watermarks per stream, user and device"},
  };
  std::vector<CLI::App*> device_subs;
  for (const Section& section : device_sections) {
    CLI::App* sub = dev->add_subcommand(section.name, section.help);
    sub->fallthrough();
    device_subs.push_back(sub);
    if (std::string(section.name) == "view") {
      sub->add_option("--stream", device.stream, "the stream to show")->required();
      sub->add_option("--limit", device.limit, "ops per page (1..100000)")
          ->capture_default_str()
          ->check(CLI::Range(uint64_t{1}, uint64_t{100'000}));
      sub->add_option("--offset", device.offset, "newest ops to skip: the page is offset/limit")
          ->capture_default_str();
    }
  }

  outpost::inspect::ServerQuery server;
  bool server_json = false;
  CLI::App* srv = app.add_subcommand(
      "server",
      "a key-value server store (outpostd's), its users and stats; give --store, --data or both; without a "
      "section: the format and the number of records");
  srv->fallthrough();
  srv->add_option("--store", server.store, "the server store's URI (default lmdb:DATA_DIR/server)")
      ->transform([](std::string store) { return BarePathToUri(std::move(store)); });
  srv->add_option("--data", server.data_dir,
                  "outpostd's data directory: its store, users registry (DIR/auth) and DIR/stats.json");
  srv->add_flag("--json", server_json, "print JSON instead of text");
  srv->require_subcommand(0, 1);
  const std::vector<Section> server_sections = {
      {"streams", "per stream: high seq and member count"},
      {"members", "the members of every stream"},
      {"devices", "devices seen in the store, with their tokens' state in the registry (needs --data)"},
      {"counters", "each device's last counter per stream"},
      {"stats", "DATA_DIR/stats.json as outpostd last wrote it (needs --data)"},
  };
  std::vector<CLI::App*> server_subs;
  for (const Section& section : server_sections) {
    CLI::App* sub = srv->add_subcommand(section.name, section.help);
    sub->fallthrough();
    server_subs.push_back(sub);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? outpost::inspect::kExitOk : outpost::inspect::kExitUsage;
  }

  if (dev->parsed()) {
    device.section = "summary";
    for (CLI::App* sub : device_subs) {
      if (sub->parsed()) device.section = sub->get_name();
    }
    return Print(outpost::inspect::InspectDevice(device), device_json);
  }
  server.section = "summary";
  for (CLI::App* sub : server_subs) {
    if (sub->parsed()) server.section = sub->get_name();
  }
  if (server.store.empty() && server.data_dir.empty()) {
    std::fprintf(stderr, "outpost-inspect server: give --store URI or --data DIR\n");
    return outpost::inspect::kExitUsage;
  }
  return Print(outpost::inspect::InspectServer(server), server_json);
}
