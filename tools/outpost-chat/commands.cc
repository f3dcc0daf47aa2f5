// Copyright 2026 The Outpost Authors.
//
// The scriptable subcommands. Each prints its result on stdout (an id, a line per message, or JSON) and
// every failure as one line on stderr with a non-zero exit. Only `sync`, `send-file` and `fetch-media` (and
// `status`, to tell whether the server answers) touch the network.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli.h"
#include "thumbnail_art.h"

namespace outpost::chat_cli {
namespace {

using chat::Chat;
using chat::MessageStatus;

constexpr int64_t kStatusProbeMs = 3'000;

// Opens the store or prints why not (returns nullptr).
std::unique_ptr<Chat> Open(const Context& ctx, bool connect, int* exit_code) {
  auto chat = OpenChat(ctx, connect);
  if (!chat.ok()) {
    *exit_code = Fail(kExitError, chat.status().message());
    return nullptr;
  }
  return std::move(chat).value();
}

int Positional(const Flags& flags, size_t n, std::string_view usage) {
  if (flags.positional().size() == n) return kExitOk;
  return Fail(kExitUsage, fmt::format("expected {} (outpost-chat {} --help)", usage,
                                      std::string(usage.substr(0, usage.find(' ')))));
}

Result<OpId> ParseId(std::string_view text) {
  auto id = OpId::Parse(text);
  if (!id.ok()) return Status::InvalidArgument(fmt::format("'{}' is not a message id", text));
  return id;
}

int Create(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 1, "create CONV --members a,b"); rc != kExitOk) return rc;
  if (!flags.Has("members")) return Fail(kExitUsage, "create: --members a,b is required");
  int rc = kExitOk;
  auto chat = Open(ctx, false, &rc);
  if (!chat) return rc;
  const std::string& conv = flags.positional()[0];
  auto id = chat->CreateConversation(conv, flags.GetList("members"));
  if (!id.ok()) return Fail(kExitError, fmt::format("create {}: {}", conv, id.status().message()));
  fmt::print("{}\n", id->ToString());
  return kExitOk;
}

int Send(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 2, "send CONV TEXT"); rc != kExitOk) return rc;
  int rc = kExitOk;
  auto chat = Open(ctx, false, &rc);
  if (!chat) return rc;
  const std::string& conv = flags.positional()[0];
  chat::SendOptions options;
  if (flags.Has("reply-to")) {
    auto reply = ParseId(flags.Get("reply-to"));
    if (!reply.ok()) return Fail(kExitUsage, fmt::format("send: {}", reply.status().message()));
    options.reply_to = *reply;
  }
  auto id = chat->Send(conv, flags.positional()[1], options);
  if (!id.ok()) return Fail(kExitError, fmt::format("send to {}: {}", conv, id.status().message()));
  fmt::print("{}\n", id->ToString());  // durable: Send returns once the message is in the store
  return kExitOk;
}

// Progress of a transfer on stderr, when it is a terminal: one line rewritten in place, at most every 100 ms.
class Progress {
 public:
  Progress(std::string verb, std::string name)
      : verb_(std::move(verb)), name_(std::move(name)), tty_(isatty(STDERR_FILENO) == 1) {}
  ~Progress() { Done(); }
  void Show(uint64_t done, uint64_t total) {
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && done != total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    shown_ = true;
    std::fprintf(stderr, "\r%s %s: %.1f / %.1f MB\x1b[K", verb_.c_str(), name_.c_str(), done / 1e6,
                 total / 1e6);
    std::fflush(stderr);
  }
  // Ends the line, so that what follows starts on a fresh one.
  void Done() {
    if (!shown_) return;
    shown_ = false;
    std::fputc('\n', stderr);
  }

 private:
  std::string verb_, name_;
  bool tty_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

int SendFile(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 2, "send-file CONV PATH [--caption TEXT]"); rc != kExitOk) return rc;
  uint64_t timeout_s = 0;
  std::string error;
  if (!flags.GetUint("timeout", 30, 86'400, &timeout_s, &error))
    return Fail(kExitUsage, "send-file: " + error);
  chat::SendOptions options;
  if (flags.Has("reply-to")) {
    auto reply = ParseId(flags.Get("reply-to"));
    if (!reply.ok()) return Fail(kExitUsage, fmt::format("send-file: {}", reply.status().message()));
    options.reply_to = *reply;
  }
  options.mime = flags.Get("mime");
  if (ctx.media_dir.empty()) {
    return Fail(kExitError, "send-file: a memory store keeps no files (use --store DIR)");
  }
  int rc = kExitOk;
  auto chat = Open(ctx, !ctx.servers.empty(), &rc);
  if (!chat) return rc;
  const std::string& conv = flags.positional()[0];
  const std::string& path = flags.positional()[1];
  auto id = chat->SendFile(conv, path, flags.Get("caption"), options);
  if (!id.ok()) return Fail(kExitError, fmt::format("send-file to {}: {}", conv, id.status().message()));
  fmt::print("{}\n", id->ToString());  // durable: the message and the file's copy are in the store
  std::fflush(stdout);
  if (ctx.servers.empty()) return kExitOk;  // the next sync uploads and sends it, as for `send`

  // Upload and send now, while the person waits. The deadline moves with every byte that goes up, so a
  // large file on a slow link is not cut off, and a stalled one is.
  Client& client = chat->client();
  client.Start();
  Progress progress("uploading", std::filesystem::path(path).filename().string());
  const auto stall = std::chrono::seconds(timeout_s);
  auto deadline = std::chrono::steady_clock::now() + stall;
  uint64_t offset = 0;
  for (;;) {
    auto m = chat->Get(*id);
    if (!m.ok()) {
      progress.Done();
      return Fail(kExitError, fmt::format("send-file: {}", m.status().message()));
    }
    if (m->media.upload == chat::UploadStatus::kPending)
      progress.Show(m->media.upload_offset, m->media.bytes);
    if (m->status == MessageStatus::kFailed) {
      progress.Done();
      return Fail(kExitError, fmt::format("send-file: {} failed: {} (retry {})", id->ToString(), m->error,
                                          id->ToString()));
    }
    if (m->status != MessageStatus::kPending) {
      progress.Show(m->media.bytes, m->media.bytes);
      progress.Done();
      client.Stop();
      return kExitOk;
    }
    const uint64_t now_offset = m->media.upload_offset;
    if (now_offset > offset) {
      offset = now_offset;
      deadline = std::chrono::steady_clock::now() + stall;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  progress.Done();
  client.Stop();
  const ClientStats s = client.Stats();
  if (s.auth_failed || s.signed_out || s.upgrade_required) {
    return Fail(kExitError, fmt::format("send-file: {}", s.last_connection_error));
  }
  if (s.connects == 0) {
    return Fail(kExitUnreachable,
                fmt::format("send-file: stored, not sent: no server reachable at {} for {} s ({}); the next "
                            "sync sends it",
                            fmt::join(ctx.servers, ", "), timeout_s, s.last_connection_error));
  }
  return Fail(kExitError,
              fmt::format("send-file: stored, not sent: no upload progress for {} s ({} of {} bytes up; does "
                          "the server take files? --media-url names the endpoint); the next sync goes on",
                          timeout_s, offset, s.upload_bytes_total ? s.upload_bytes_total : 0));
}

int FetchMedia(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 1, "fetch-media ID --out PATH"); rc != kExitOk) return rc;
  if (!flags.Has("out") || flags.Get("out").empty())
    return Fail(kExitUsage, "fetch-media: --out PATH is required");
  uint64_t timeout_s = 0;
  std::string error;
  if (!flags.GetUint("timeout", 30, 86'400, &timeout_s, &error))
    return Fail(kExitUsage, "fetch-media: " + error);
  auto id = ParseId(flags.positional()[0]);
  if (!id.ok()) return Fail(kExitUsage, fmt::format("fetch-media: {}", id.status().message()));
  int rc = kExitOk;
  auto chat = Open(ctx, !ctx.servers.empty(), &rc);
  if (!chat) return rc;
  auto m = chat->Get(*id);
  if (!m.ok()) return Fail(kExitError, fmt::format("fetch-media: {}", m.status().message()));
  if (!m->media.attached) {
    return Fail(kExitError, fmt::format("fetch-media: message {} has no attachment", id->ToString()));
  }
  if (m->media.blob_id.empty()) {
    return Fail(kExitError,
                fmt::format("fetch-media: the file of message {} is not uploaded yet{}", id->ToString(),
                            m->status == MessageStatus::kFailed ? " (its upload failed)" : ""));
  }
  if (ctx.media_url.empty() && ctx.servers.empty()) {
    return Fail(kExitUsage, "fetch-media: --server ENDPOINT or --media-url URL is required");
  }
  Client& client = chat->client();
  if (ctx.media_url.empty()) {
    // The endpoint comes with the server's Welcome: connect first, for at most the timeout.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (!client.Stats().connected && std::chrono::steady_clock::now() < deadline) {
      (void)client.RunUntilIdle(100);
    }
    if (!client.Stats().connected) {
      return Fail(kExitUnreachable,
                  fmt::format("fetch-media: no server reachable at {} for {} s: {}",
                              fmt::join(ctx.servers, ", "), timeout_s, client.Stats().last_connection_error));
    }
  }
  const std::string out = flags.Get("out");
  // What an earlier, cut run left: FetchAttachment goes on from there (one bigger than the file is dropped).
  std::error_code ec;
  const uintmax_t part = std::filesystem::file_size(out + ".part", ec);
  const uint64_t resumed_from = !ec && part <= m->media.bytes ? static_cast<uint64_t>(part) : 0;
  Progress progress("downloading", std::filesystem::path(out).filename().string());
  Status st =
      client.FetchAttachment(*id, out, [&](uint64_t done, uint64_t total) { progress.Show(done, total); });
  progress.Done();
  if (st.ok()) {
    fmt::print("{}: {} bytes, sha256 {}", out, m->media.bytes, m->media.sha256);
    if (resumed_from > 0) fmt::print(" (resumed from {} bytes in {}.part)", resumed_from, out);
    fmt::print("\n");
    return kExitOk;
  }
  switch (st.code()) {
    case Status::Code::kNotFound:
      return Fail(kExitError,
                  fmt::format("fetch-media: the server has no file of {} for you (not allowed, or gone): {}",
                              id->ToString(), st.message()));
    case Status::Code::kPermissionDenied:
      return Fail(kExitError, fmt::format("fetch-media: not allowed: {}", st.message()));
    case Status::Code::kCorruption:
      return Fail(kExitError, fmt::format("fetch-media: the download does not match its sha256, removed: {}",
                                          st.message()));
    case Status::Code::kFailedPrecondition:
      return Fail(kExitError, fmt::format("fetch-media: {} (--media-url names the endpoint)", st.message()));
    case Status::Code::kUnavailable:
    case Status::Code::kTimeout:
    case Status::Code::kBusy:
      return Fail(kExitUnreachable,
                  fmt::format("fetch-media: {} (run it again to resume from {}.part)", st.message(), out));
    default:
      return Fail(kExitError, fmt::format("fetch-media: {}", st.message()));
  }
}

int Sync(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 0, "sync [--timeout S]"); rc != kExitOk) return rc;
  if (ctx.servers.empty()) return Fail(kExitUsage, "sync: --server ENDPOINT is required");
  uint64_t timeout_s = 0;
  std::string error;
  if (!flags.GetUint("timeout", 30, 86'400, &timeout_s, &error)) return Fail(kExitUsage, "sync: " + error);
  int rc = kExitOk;
  auto chat = Open(ctx, true, &rc);
  if (!chat) return rc;
  Client& client = chat->client();
  auto before = client.Stats();
  Status st = client.RunUntilIdle(static_cast<int64_t>(timeout_s) * 1000);
  ClientStats after = client.Stats();
  if (after.auth_failed || after.signed_out) {
    // The server refused the credentials (or revoked this device): RunUntilIdle stopped at once, and trying
    // longer cannot help. Messages not sent stay here, never sent under another name.
    std::string_view why = after.last_connection_error;
    if (const size_t at = why.find("authentication failed"); at != std::string_view::npos)
      why.remove_prefix(at);
    return Fail(kExitError, fmt::format("sync: {}{}", after.signed_out ? "signed out: " : "", why));
  }
  if (after.upgrade_required) {
    std::string_view why = after.last_connection_error;
    if (const size_t at = why.find("upgrade required"); at != std::string_view::npos) why.remove_prefix(at);
    return Fail(kExitError, fmt::format("sync: {} ({} messages wait here)", why, after.outbox_depth));
  }
  if (!st.ok() && after.connects == 0) {
    return Fail(kExitUnreachable,
                fmt::format("sync: no server reachable at {} for {} s: {}", fmt::join(ctx.servers, ", "),
                            timeout_s, after.last_connection_error));
  }
  if (!st.ok()) {
    return Fail(kExitError,
                fmt::format("sync: not done within {} s ({} messages still to send; last error: {})",
                            timeout_s, after.outbox_depth,
                            after.last_connection_error.empty() ? "none" : after.last_connection_error));
  }
  // Acks answer sent and refused ops alike; the refused ones are the new failures.
  const uint64_t refused = after.failed > before.failed ? after.failed - before.failed : 0;
  const uint64_t acked = after.acks - before.acks;
  fmt::print("synced: {} sent, {} received, {} waiting, {} failed\n", acked > refused ? acked - refused : 0,
             after.ops_merged - before.ops_merged, after.outbox_depth, after.failed);
  return kExitOk;
}

int History(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 1, "history CONV [--json] [--limit N]"); rc != kExitOk) return rc;
  uint64_t limit = 0;
  std::string error;
  if (!flags.GetUint("limit", 50, 1'000'000, &limit, &error)) return Fail(kExitUsage, "history: " + error);
  int rc = kExitOk;
  auto chat = Open(ctx, false, &rc);
  if (!chat) return rc;
  const std::string& conv = flags.positional()[0];
  if (auto c = chat->GetConversation(conv); !c.ok()) {
    return Fail(kExitError, fmt::format("history: {}", c.status().message()));
  }
  auto messages = chat->History(conv, limit);
  if (!messages.ok())
    return Fail(kExitError, fmt::format("history {}: {}", conv, messages.status().message()));
  const bool json = flags.Has("json");
  for (const chat::Message& m : *messages) {
    fmt::print("{}\n", json ? MessageJson(m) : MessageLine(m, ctx.utf8, chat->user()));
  }
  return kExitOk;
}

int List(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 0, "list"); rc != kExitOk) return rc;
  int rc = kExitOk;
  auto chat = Open(ctx, false, &rc);
  if (!chat) return rc;
  auto convs = chat->Conversations();
  if (!convs.ok()) return Fail(kExitError, fmt::format("list: {}", convs.status().message()));
  for (const chat::Conversation& c : *convs) {
    std::string line = fmt::format(
        "{}  members: {}  unread: {}", c.id,
        c.members.empty() ? "(not synced yet)" : fmt::format("{}", fmt::join(c.members, ",")), c.unread);
    if (c.failed) line += fmt::format("  failed: {}", c.failed);
    if (!c.member) line += "  (you were removed)";
    fmt::print("{}\n", Printable(line, ctx.utf8));  // names are other users' bytes
  }
  return kExitOk;
}

int Read(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 1, "read CONV"); rc != kExitOk) return rc;
  int rc = kExitOk;
  auto chat = Open(ctx, false, &rc);
  if (!chat) return rc;
  const std::string& conv = flags.positional()[0];
  if (auto c = chat->GetConversation(conv); !c.ok())
    return Fail(kExitError, fmt::format("read: {}", c.status().message()));
  if (Status st = chat->MarkRead(conv); !st.ok())
    return Fail(kExitError, fmt::format("read {}: {}", conv, st.message()));
  auto cursor = chat->client().Cursor(conv);
  fmt::print("{}: read up to seq {}{}\n", conv, cursor.ok() ? *cursor : 0,
             chat->read_receipts() ? "" : " (read receipts are off: nobody is told)");
  return kExitOk;
}

int Receipts(const Context& ctx, const Flags& flags) {
  if (flags.positional().size() > 1) return Fail(kExitUsage, "expected receipts [on|off]");
  int rc = kExitOk;
  auto chat = Open(ctx, false, &rc);
  if (!chat) return rc;
  if (flags.positional().size() == 1) {
    const std::string& v = flags.positional()[0];
    if (v != "on" && v != "off")
      return Fail(kExitUsage, fmt::format("receipts: expected on or off, not '{}'", v));
    if (Status st = chat->SetReadReceipts(v == "on"); !st.ok())
      return Fail(kExitError, "receipts: " + st.message());
  }
  fmt::print("read receipts {}\n", chat->read_receipts() ? "on" : "off");
  return kExitOk;
}

// retry and discard: one message of this device, by id.
int OnMessage(const Context& ctx, const Flags& flags, bool retry) {
  const char* name = retry ? "retry" : "discard";
  if (int rc = Positional(flags, 1, retry ? "retry ID" : "discard ID"); rc != kExitOk) return rc;
  auto id = ParseId(flags.positional()[0]);
  if (!id.ok()) return Fail(kExitUsage, fmt::format("{}: {}", name, id.status().message()));
  int rc = kExitOk;
  auto chat = Open(ctx, false, &rc);
  if (!chat) return rc;
  auto m = chat->Get(*id);
  if (!m.ok()) return Fail(kExitError, fmt::format("{}: {}", name, m.status().message()));
  Status st = retry ? chat->Retry(*id) : chat->Discard(*id);
  if (!st.ok()) return Fail(kExitError, fmt::format("{} {}: {}", name, id->ToString(), st.message()));
  fmt::print("{} {}\n", id->ToString(), retry ? "pending again: the next sync sends it" : "discarded");
  return kExitOk;
}
int Retry(const Context& ctx, const Flags& flags) { return OnMessage(ctx, flags, true); }
int Discard(const Context& ctx, const Flags& flags) { return OnMessage(ctx, flags, false); }

int StatusCommand(const Context& ctx, const Flags& flags) {
  if (int rc = Positional(flags, 0, "status"); rc != kExitOk) return rc;
  int rc = kExitOk;
  auto chat = Open(ctx, !ctx.servers.empty(), &rc);
  if (!chat) return rc;
  Client& client = chat->client();
  std::string connection = "offline (no --server given)";
  if (!ctx.servers.empty()) {
    // One bounded attempt to reach the server; whatever is waiting goes out meanwhile.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kStatusProbeMs);
    while (!client.Stats().connected && std::chrono::steady_clock::now() < deadline) {
      (void)client.RunUntilIdle(100);
    }
    ClientStats s = client.Stats();
    if (s.connected) {
      connection = fmt::format("online ({})", fmt::join(ctx.servers, ", "));
    } else if (s.signed_out) {
      connection = fmt::format("signed out: {}", s.last_connection_error);
    } else if (s.upgrade_required) {
      connection = fmt::format("upgrade required: {}", s.last_connection_error);
    } else {
      connection =
          fmt::format("offline: {}", s.last_connection_error.empty() ? "no answer" : s.last_connection_error);
    }
  }
  ClientStats s = client.Stats();
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  fmt::print("user: {}\ndevice: {}\nstore: {}\nconnection: {}\n", chat->user(), client.device(), ctx.store,
             Printable(connection, ctx.utf8));  // the server's words
  fmt::print("outbox: {} waiting\n", s.outbox_depth);
  fmt::print("oldest pending: {}\n", s.oldest_pending_ms ? Age(now - s.oldest_pending_ms) + " ago" : "none");
  fmt::print("failed: {}\n", s.failed);
  if (s.rebases > 0 || s.ops_lost > 0) {
    // The server lost part of its history (restored from an earlier copy): what came of it here.
    fmt::print("server restores seen: {} ({} of mine sent again, {} messages of others missing)\n", s.rebases,
               s.ops_requeued, s.ops_lost);
  }
  const uint64_t retries = s.retries_timeout + s.retries_busy + s.retries_disconnect + s.retries_gap +
                           s.retries_conflict + s.retries_other;
  fmt::print(
      "sends: {} attempts, {} retries (timeout {}, busy {}, disconnect {}, gap {}, conflict {}, other {})\n",
      s.attempts, retries, s.retries_timeout, s.retries_busy, s.retries_disconnect, s.retries_gap,
      s.retries_conflict, s.retries_other);
  if (s.flush_seconds.count > 0) {
    fmt::print("flush latency: p50 {:.0f} ms, p99 {:.0f} ms ({} batches)\n",
               s.flush_seconds.Quantile(0.5) * 1e3, s.flush_seconds.Quantile(0.99) * 1e3,
               s.flush_seconds.count);
  }
  fmt::print("read receipts: {}\n", chat->read_receipts() ? "on" : "off");
  return kExitOk;
}

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command> commands = {
      {"create",
       "create CONV --members a,b\n  Creates conversation CONV (you are always a member), or sets the "
       "members of one you are in.\n",
       {{"members", true, true, "the members, comma-separated or repeated (you are added)", "USERS"}},
       &Create},
      {"send",
       "send CONV TEXT [--reply-to ID]\n  Writes a message; prints its id once it is durable. Sent by "
       "the next sync.\n",
       {{"reply-to", true, false, "the id of the message this one answers", "ID"}},
       &Send},
      {"send-file",
       "send-file CONV PATH [--caption TEXT] [--reply-to ID] [--mime TYPE] [--timeout S]\n  Sends a file "
       "(with a "
       "thumbnail when it is an image); prints its id once it is durable.\n  With --server: uploads it and "
       "sends the message now (progress on a terminal); exit 3 when\n  no server answers, 1 when the upload "
       "fails or makes no progress for S seconds (default 30);\n  the message stays stored: the next sync "
       "goes on.\n",
       {{"caption", true, false, "text sent with the file", "TEXT"},
        {"reply-to", true, false, "the id of the message this one answers", "ID"},
        {"mime", true, false, "the file's type (default: guessed from its bytes)", "TYPE"},
        {"timeout", true, false, "give up after S seconds without upload progress (default 30)", "S"}},
       &SendFile},
      {"fetch-media",
       "fetch-media ID --out PATH [--timeout S]\n  Downloads the file of message ID to PATH (resumes "
       "PATH.part; "
       "checks its sha256).\n  Needs --server (the endpoint comes with its welcome) or --media-url.\n",
       {{"out", true, false, "where to write the file (required)", "PATH"},
        {"timeout", true, false, "give up after S seconds without progress (default 30)", "S"}},
       &FetchMedia},
      {"sync",
       "sync [--timeout S]\n  Sends what waits and receives what is new until nothing is left (default "
       "30 s).\n  Exit 3 if no server answered for the whole timeout.\n",
       {{"timeout", true, false, "give up after S seconds (default 30)", "S"}},
       &Sync},
      {"history",
       "history CONV [--json] [--limit N]\n  The last N messages (default 50), oldest first. --json: "
       "one object per line.\n",
       {{"json", false, false,
         "one JSON object per line (invalid UTF-8 in a message becomes U+FFFD, so each line is valid JSON)"},
        {"limit", true, false, "how many messages (default 50)", "N"}},
       &History},
      {"list", "list\n  Conversations on this device with unread counts.\n", {}, &List},
      {"read", "read CONV\n  Marks everything received in CONV as read.\n", {}, &Read},
      {"receipts",
       "receipts [on|off]\n  Whether this device tells others what you read (shown without an "
       "argument).\n",
       {},
       &Receipts},
      {"retry", "retry ID\n  Sends a failed message again.\n", {}, &Retry},
      {"discard", "discard ID\n  Removes a pending or failed message.\n", {}, &Discard},
      {"status",
       "status\n  Connection, outbox depth, oldest pending message, failed count.\n",
       {},
       &StatusCommand},
  };
  return commands;
}

}  // namespace outpost::chat_cli
