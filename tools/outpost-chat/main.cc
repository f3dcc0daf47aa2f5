// Copyright 2026 The Outpost Authors.
//
// outpost-chat [COMMON OPTIONS] [COMMAND ARGS...]: with no command, the interactive screen.
#include <fmt/format.h>
#include <langinfo.h>
#include <sys/stat.h>

#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "cli.h"
#include "media/client/tus_transport.h"

namespace outpost::chat_cli {
namespace {

constexpr const char* kUsage = R"(usage: outpost-chat [COMMON OPTIONS] [COMMAND [ARGS]]

An offline-first chat client. Everything but `sync` works with no server at all: messages are written to
the device's store at once and sent by the next sync (or by the interactive screen while it runs).

Common options:
  --store DIR|URI    the device's store: a directory (LMDB) or lmdb:DIR, sqlite:FILE, rocksdb:DIR
                     (default: $OUTPOST_CHAT_STORE, else ~/.local/share/outpost-chat)
  --server ENDPOINT  outpostd's endpoint, e.g. tcp://127.0.0.1:7700; repeat for fallbacks
  --user NAME        who this device belongs to (needed the first time a store is used)
  --token TOKEN      the device's token from `outpostd add-user/add-device` (default: $OUTPOST_TOKEN)
  --media-url URL    the server's upload endpoint for files, e.g. http://127.0.0.1:7780/files/
                     (default: the one the server announces when the device connects)
  --chunk-bytes N    bytes per upload request of a file (default 4194304; 16384 to 67108864): a cut
                     upload sends at most this again; smaller suits a slow or flaky link

With no command: the interactive screen (conversations, messages, input line; /help lists its commands).

Commands:
)";

constexpr uint64_t kChunkBytesMin = 16 << 10;
constexpr uint64_t kChunkBytesMax = 64 << 20;

constexpr std::string_view kSchemes[] = {"lmdb:", "sqlite:", "rocksdb:", "memory:"};

std::vector<FlagSpec> CommonFlags() {
  return {{"store", true, false}, {"server", true, true},     {"user", true, false},
          {"token", true, false}, {"media-url", true, false}, {"chunk-bytes", true, false},
          {"help", false, false}};
}

void PrintUsage(std::FILE* to) {
  std::fputs(kUsage, to);
  for (const Command& c : Commands()) {
    std::string first = c.usage.substr(0, c.usage.find('\n'));
    std::fprintf(to, "  %s\n", first.c_str());
  }
  std::fputs(
      "\n`outpost-chat COMMAND --help` tells more. Exit codes: 0 done, 1 failed, 2 bad usage, 3 server "
      "unreachable (sync, send-file, fetch-media).\n",
      to);
}

}  // namespace

// Makes `dir` and its missing parents 0700, and takes group and other access off `dir` itself: it holds a
// user's messages and token-bearing store, like ~/.ssh.
Status MakePrivateDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path path = fs::absolute(dir, ec);
  if (ec) return Status::IOError("cannot make the store directory " + dir + ": " + ec.message());
  fs::path made;
  for (const fs::path& part : path) {
    made /= part;
    if (::mkdir(made.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::IOError("cannot make the store directory " + made.string() + ": " +
                             std::strerror(errno));
    }
  }
  if (!fs::is_directory(path, ec)) return Status::IOError("the store path " + dir + " is not a directory");
  fs::permissions(path, fs::perms::group_all | fs::perms::others_all, fs::perm_options::remove, ec);
  if (ec) return Status::IOError("cannot make the store directory " + dir + " private: " + ec.message());
  return Status::OK();
}

namespace {

// The store URI for --store: a bare directory means LMDB there (made if missing, 0700). `data_dir` is told
// the directory that holds the store (for its media copies): the LMDB or RocksDB directory, the SQLite
// file's directory, or empty for a memory store.
Result<std::string> StoreUri(std::string value, std::string* data_dir) {
  if (value.empty()) {
    if (const char* env = std::getenv("OUTPOST_CHAT_STORE"); env && *env) {
      value = env;
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      value = std::string(home) + "/.local/share/outpost-chat";
    } else {
      return Status::InvalidArgument("no --store given and neither $OUTPOST_CHAT_STORE nor $HOME is set");
    }
  }
  std::string dir;
  for (std::string_view scheme : kSchemes) {
    if (value.starts_with(scheme)) {
      if (scheme == "sqlite:") {
        const std::filesystem::path file(value.substr(scheme.size()));
        *data_dir = file.has_parent_path() ? file.parent_path().string() : ".";
      }
      if (scheme != "lmdb:" && scheme != "rocksdb:") return value;
      dir = value.substr(scheme.size());
      break;
    }
  }
  if (dir.empty()) {
    dir = value;
    value = "lmdb:" + value;
  }
  OUTPOST_RETURN_IF_ERROR(MakePrivateDir(dir));
  *data_dir = dir;
  return value;
}

}  // namespace

int Fail(int exit_code, std::string_view message) {
  std::fprintf(stderr, "outpost-chat: %.*s\n", static_cast<int>(message.size()), message.data());
  return exit_code;
}

Result<std::unique_ptr<chat::Chat>> OpenChat(const Context& ctx, bool connect) {
  ClientOptions o;
  o.store = ctx.store;
  o.user = ctx.user;
  o.token = ctx.token;
  if (connect) {
    for (const auto& s : ctx.servers) o.server += (o.server.empty() ? "" : ",") + s;
  }
  o.media = OpenTusTransport();
  if (!ctx.media_dir.empty()) {
    // The copies of the files sent are as private as the messages.
    if (Status st = MakePrivateDir(ctx.media_dir); !st.ok()) return st;
  }
  o.media_dir = ctx.media_dir;
  o.media_url = ctx.media_url;
  if (ctx.upload_chunk_bytes != 0) o.upload_chunk_bytes = ctx.upload_chunk_bytes;
  // A person is waiting: find a server that comes back soon, and retry refused sends on a human scale.
  o.reconnect_cap_ms = 2'000;
  o.ack_timeout_ms = 5'000;
  auto chat = chat::Chat::Open(std::move(o));
  if (!chat.ok()) {
    const Status& st = chat.status();
    return Status::FromCode(st.code(), "cannot open the store " + ctx.store + ": " + st.message());
  }
  return chat;
}

int Main(int argc, char** argv) {
  std::setlocale(LC_ALL, "");
  Context ctx;
  ctx.utf8 = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;

  // The command is the first word that is neither an option nor an option's value.
  std::vector<std::string> args(argv + 1, argv + argc);
  const Command* command = nullptr;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (command == nullptr && !a.starts_with("-")) {
      for (const Command& c : Commands()) {
        if (c.name == a) command = &c;
      }
      if (command == nullptr)
        return Fail(kExitUsage, fmt::format("unknown command '{}' (outpost-chat --help)", a));
      continue;
    }
    rest.push_back(a);
    const bool common_with_value = a == "--store" || a == "--server" || a == "--user" || a == "--token" ||
                                   a == "--media-url" || a == "--chunk-bytes";
    if (command == nullptr && common_with_value && i + 1 < args.size()) rest.push_back(args[++i]);
  }
  std::vector<FlagSpec> specs = CommonFlags();
  if (command) specs.insert(specs.end(), command->flags.begin(), command->flags.end());
  Flags flags;
  std::string error;
  if (!flags.Parse(specs, rest, &error)) {
    return Fail(kExitUsage,
                fmt::format("{} (outpost-chat {}--help)", error, command ? command->name + " " : ""));
  }
  if (flags.Has("help")) {
    if (command) {
      std::fputs(("usage: outpost-chat [COMMON OPTIONS] " + command->usage).c_str(), stdout);
    } else {
      PrintUsage(stdout);
    }
    return kExitOk;
  }
  std::string data_dir;
  auto store = StoreUri(flags.Get("store"), &data_dir);
  if (!store.ok()) return Fail(kExitError, store.status().message());
  ctx.store = *store;
  if (!data_dir.empty()) ctx.media_dir = (std::filesystem::path(data_dir) / "media").string();
  ctx.media_url = flags.Get("media-url");
  if (!ctx.media_url.empty() && !ctx.media_url.starts_with("http://") &&
      !ctx.media_url.starts_with("https://")) {
    return Fail(kExitUsage,
                fmt::format("--media-url must be an http:// or https:// URL, not '{}'", ctx.media_url));
  }
  if (flags.Has("chunk-bytes")) {
    uint64_t chunk = 0;
    std::string chunk_error;
    if (!flags.GetUint("chunk-bytes", 0, kChunkBytesMax, &chunk, &chunk_error) || chunk < kChunkBytesMin) {
      return Fail(kExitUsage, fmt::format("--chunk-bytes must be a number of bytes from {} to {}, not '{}'",
                                          kChunkBytesMin, kChunkBytesMax, flags.Get("chunk-bytes")));
    }
    ctx.upload_chunk_bytes = static_cast<uint32_t>(chunk);
  }
  ctx.servers = flags.GetList("server");
  ctx.user = flags.Get("user");
  ctx.token = flags.Get("token");
  if (ctx.token.empty()) {
    if (const char* t = std::getenv("OUTPOST_TOKEN")) ctx.token = t;
  }
  if (!command) {
    if (!flags.positional().empty()) return Fail(kExitUsage, "unexpected arguments (outpost-chat --help)");
    return RunTui(ctx);
  }
  return command->run(ctx, flags);
}

}  // namespace outpost::chat_cli

int main(int argc, char** argv) { return outpost::chat_cli::Main(argc, argv); }
