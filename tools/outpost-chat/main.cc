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
#include "outpost/version.h"

namespace outpost::chat_cli {
namespace {

constexpr const char* kDescription =
    R"(An offline-first chat client. Everything but `sync` works with no server at all: messages are written to
the device's store at once and sent by the next sync (or by the interactive screen while it runs).

With no command: the interactive screen (conversations, messages, input line; /help lists its commands).
The common options go before the command (or after it). Text output never shows another user's control
characters raw: they and invalid UTF-8 are shown as U+FFFD; --json output replaces invalid UTF-8 by U+FFFD
too, so that every line is valid JSON.)";

constexpr uint64_t kChunkBytesMin = 16 << 10;
constexpr uint64_t kChunkBytesMax = 64 << 20;

constexpr std::string_view kSchemes[] = {"lmdb:", "sqlite:", "rocksdb:", "memory:"};

std::vector<FlagSpec> CommonFlags() {
  return {{"store", true, false,
           "the device's store: a directory (LMDB) or lmdb:DIR, sqlite:FILE, rocksdb:DIR (default: "
           "$OUTPOST_CHAT_STORE, else ~/.local/share/outpost-chat); its parent directory must exist",
           "DIR|URI"},
          {"server", true, true,
           "outpostd's endpoint, tcp://HOST:PORT or ipc://PATH (e.g. tcp://127.0.0.1:7700); repeat for "
           "fallbacks",
           "ENDPOINT"},
          {"user", true, false, "who this device belongs to (needed the first time a store is used)", "NAME"},
          {"token", true, false,
           "the device's token from `outpostd add-user/add-device` (default: $OUTPOST_TOKEN)", "TOKEN"},
          {"media-url", true, false,
           "the server's upload endpoint for files, e.g. http://127.0.0.1:7780/files/ (default: the one the "
           "server announces when the device connects)",
           "URL"},
          {"chunk-bytes", true, false,
           "bytes per upload request of a file (default 4194304; 16384 to 67108864): a cut upload sends at "
           "most this again; smaller suits a slow or flaky link",
           "N"}};
}

std::string VersionLine() { return std::string("outpost-chat ") + outpost::Version(); }

std::string CommandsFooter() {
  std::string out = "commands (outpost-chat COMMAND --help tells more):\n";
  for (const Command& c : Commands()) out += "  " + c.usage.substr(0, c.usage.find('\n')) + "\n";
  out += "\nExit codes: 0 done, 1 failed, 2 bad usage, 3 server unreachable (sync, send-file, fetch-media).";
  return out;
}

// The usage of `command` (nullptr: the tool itself): its synopsis line and description from its usage text.
cli::Usage UsageOf(const Command* command) {
  if (command == nullptr)
    return {"outpost-chat", "[COMMAND [ARGS]]", kDescription, CommandsFooter(), VersionLine()};
  const std::string& u = command->usage;
  const size_t eol = u.find('\n');
  std::string synopsis = u.substr(0, eol);
  synopsis = synopsis.size() > command->name.size() ? synopsis.substr(command->name.size() + 1) : "";
  // The options are listed by --help itself: the synopsis keeps the positional arguments only.
  if (const size_t opt = synopsis.find(" ["); opt != std::string::npos && synopsis[opt + 2] == '-') {
    synopsis.resize(opt);
  }
  if (const size_t opt = synopsis.find(" --"); opt != std::string::npos) synopsis.resize(opt);
  if (synopsis.starts_with("[-") || synopsis.starts_with("--")) synopsis.clear();
  std::string description = eol == std::string::npos ? "" : u.substr(eol + 1);
  // The description's lines are indented by two in the usage text.
  std::string flat;
  for (size_t i = 0; i < description.size(); ++i) {
    if ((i == 0 || description[i - 1] == '\n') && description.compare(i, 2, "  ") == 0) i += 2;
    flat.push_back(description[i]);
  }
  while (!flat.empty() && flat.back() == '\n') flat.pop_back();
  return {"outpost-chat " + command->name, synopsis.empty() ? "" : synopsis, flat, "", VersionLine()};
}

// A --server endpoint a device can dial; else why not.
bool ValidServer(const std::string& uri, std::string* why) {
  if (uri.starts_with("tcp://") || uri.starts_with("ipc://")) {
    if (uri.size() > 6) return true;
    *why = "'" + uri + "' names no address";
    return false;
  }
  *why = "'" + uri + "' is not an outpostd endpoint: give tcp://HOST:PORT or ipc://PATH";
  if (uri.starts_with("http://") || uri.starts_with("https://")) {
    *why += " (an http:// URL is the media endpoint: --media-url)";
  }
  return false;
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

// The store URI for --store: a bare directory means LMDB there (made if missing, 0700; its parent must
// exist). `data_dir` is told the directory that holds the store (for its media copies): the LMDB or RocksDB
// directory, the SQLite file's directory, or empty for a memory store. `created` is told the path this
// call made (empty when the store's directory or file existed), for OpenChat to remove again when the open
// fails.
Result<std::string> StoreUri(std::string value, std::string* data_dir, std::string* created) {
  namespace fs = std::filesystem;
  bool defaulted = false;
  if (value.empty()) {
    defaulted = true;
    if (const char* env = std::getenv("OUTPOST_CHAT_STORE"); env && *env) {
      value = env;
    } else if (const char* home = std::getenv("HOME"); home && *home) {
      value = std::string(home) + "/.local/share/outpost-chat";
    } else {
      return Status::InvalidArgument("no --store given and neither $OUTPOST_CHAT_STORE nor $HOME is set");
    }
  }
  std::string dir;
  std::string path = value;
  for (std::string_view scheme : kSchemes) {
    if (value.starts_with(scheme)) {
      path = value.substr(scheme.size());
      if (scheme == "memory:") return value;
      if (scheme == "sqlite:") {
        const fs::path file(path);
        *data_dir = file.has_parent_path() ? file.parent_path().string() : ".";
      } else {
        dir = path;
      }
      break;
    }
  }
  if (value.find(':') == std::string::npos) {
    dir = value;
    value = "lmdb:" + value;
  } else if (dir.empty() && data_dir->empty()) {
    return Status::InvalidArgument("--store: unknown scheme in '" + value +
                                   "': give a directory, lmdb:DIR, sqlite:FILE or rocksdb:DIR");
  }
  // A mistyped path must not become a tree of new directories: the parent must exist (the default one,
  // ~/.local/share, is made as the XDG convention has it).
  std::error_code ec;
  const fs::path target = fs::absolute(path, ec);
  if (!defaulted && !fs::is_directory(target.parent_path(), ec)) {
    return Status::InvalidArgument("--store: " + target.parent_path().string() +
                                   " does not exist (make it first, or give another path)");
  }
  if (dir.empty()) {
    if (!fs::exists(target, ec)) *created = target.string();
    return value;
  }
  if (!fs::exists(target, ec)) *created = target.string();
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
    if (!ctx.created.empty()) {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm", "-journal"})
        std::filesystem::remove_all(ctx.created + suffix, ec);
    }
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
  std::string message;
  if (int rc = flags.Parse(UsageOf(command), specs, rest, &message); rc >= 0) {
    return cli::PrintParseMessage(rc, message);
  }
  for (const std::string& server : flags.GetList("server")) {
    if (std::string why; !ValidServer(server, &why)) return Fail(kExitUsage, "--server: " + why);
  }
  std::string data_dir;
  auto store = StoreUri(flags.Get("store"), &data_dir, &ctx.created);
  if (!store.ok()) {
    return Fail(store.status().code() == Status::Code::kInvalidArgument ? kExitUsage : kExitError,
                store.status().message());
  }
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
