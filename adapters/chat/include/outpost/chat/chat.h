// Copyright 2026 The Outpost Authors.
//
// The chat adapter: conversations and messages on top of the public engine API (client.h), nothing else.
//
//   auto chat = chat::Chat::Open({.store = "lmdb:/data/alice", .server = "tcp://chat.example:7700",
//                                 .user = "alice", .token = token});
//   (*chat)->CreateConversation("alice-bob", {"alice", "bob"});
//   auto id = (*chat)->Send("alice-bob", "on my way");   // durable and shown (pending) before any network
//   (*chat)->SendFile("alice-bob", "/sdcard/DCIM/beach.jpg", "look");  // thumbnail made here, bytes upload
//   (*chat)->client().Start();                           // background sync
//
// Model:
//  - A conversation is a stream; its members are those of Client::Members: the latest sent outpost.members
//    op of the stream (membership.h), or this device's latest pending one while none was sent. 1:1 chats
//    and groups differ only in the member count. Conversations made elsewhere are found through the user's
//    membership feed: the engine follows it and every conversation it names (follow_memberships).
//  - A message is an op of kind kMessageKind whose payload is a chat.fbs Message (text, reply-to, media).
//  - Status, for the author's eyes, is derived and never stored:
//      pending   stored on this device, not yet acknowledged by the server;
//      sent      the server has it (a seq);
//      delivered every other member has a device whose delivered (or read) watermark covers its seq;
//      read      every other member has a device whose read watermark covers its seq;
//      failed    the server refused it or it gave up: `error` says why; Retry or Discard.
//    "Other members" are the current members other than the author. A conversation with no other member
//    never goes past sent.
//  - Order is the server's: sent messages by seq, then this device's unsent ones in the order they were
//    written. Clocks never order anything; `client_time_ms` is the author's clock, for display.
//  - Files: SendFile attaches the file to the message op (SubmitOptions::attachment): the engine uploads it
//    through ClientOptions::media and sends the op once the whole file is on the server (docs/media.md). A
//    small thumbnail, made on this device when the file is an image, travels inside the message, so that
//    every member sees a preview before (or without) downloading. An own message whose upload failed is
//    failed, with the reason; Retry starts the upload again, Discard drops both.
//  - Read receipts: MarkRead always moves the local read position (unread counts); with receipts off the
//    device sends no read watermark. The switch is kept in the store.
//
// Thread safety: as Client: any method from any thread.
#ifndef OUTPOST_CHAT_CHAT_H_
#define OUTPOST_CHAT_CHAT_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/client.h"
#include "outpost/export.h"
#include "outpost/ids.h"
#include "outpost/result.h"
#include "outpost/status.h"
#include "outpost/thumbnailer.h"

namespace outpost::chat {

inline constexpr std::string_view kMessageKind = "chat.message";

enum class MessageStatus : uint8_t { kPending, kSent, kDelivered, kRead, kFailed };

// "pending", "sent", "delivered", "read", "failed".
OUTPOST_EXPORT std::string_view StatusName(MessageStatus status);

// Where an own message's file upload stands (Media::upload).
enum class UploadStatus : uint8_t {
  kNone,     // no upload on this device: another member's message, or no file attached
  kPending,  // going up (or waiting for a connection): Media::upload_offset bytes are on the server
  kFailed,   // given up: the message is failed with the reason (Retry, Discard)
  kDone,     // the whole file is on the server
};

// "none", "pending", "failed", "done".
OUTPOST_EXPORT std::string_view UploadStatusName(UploadStatus status);

// A message's file. The first six fields travel in the message (chat.fbs Media); the rest come from the
// engine's attachment record (OpInfo::attachment) and are empty for a message that has no attached file.
struct Media {
  // Where the bytes can be downloaded: the upload endpoint + the blob id, once both are known on this device
  // (the endpoint from ClientOptions::media_url); else empty. FetchAttachment needs no uri.
  std::string uri;
  std::string mime;
  uint64_t bytes = 0;
  uint32_t width = 0, height = 0;  // of the source image (EXIF orientation applied); 0 when not an image
  std::string thumbnail;           // a small JPEG made by the sender; empty when none
  // From the attachment record.
  bool attached = false;  // the message op carries the file: Client::FetchAttachment can fetch it
  std::string blob_id;    // the server's blob id: empty until the upload completed
  std::string sha256;     // 64 lowercase hex characters of the file
  // Own messages only.
  UploadStatus upload = UploadStatus::kNone;
  uint64_t upload_offset = 0;  // bytes the server confirmed (== bytes once done)
};

struct Message {
  OpId id;
  std::string conversation;
  uint64_t seq = 0;  // 0 while pending or failed
  std::string sender;
  std::string sender_device;
  bool own = false;  // written on this device
  std::string text;
  OpId reply_to;  // nil when none
  bool has_media = false;
  Media media;
  bool unreadable = false;  // the payload could not be decoded (text is empty)
  MessageStatus status = MessageStatus::kPending;
  int64_t client_time_ms = 0;  // the author's clock: display only
  std::string error;           // why it failed
  uint32_t attempts = 0;
  std::string position;  // pass to History() to page back from here
};

struct Conversation {
  std::string id;
  std::vector<std::string> members;  // empty until the members op is known here
  bool member = true;                // false once this user was removed
  uint64_t unread = 0;               // messages of others after the read position (capped at kUnreadMax)
  uint64_t pending = 0, failed = 0;  // own messages
  bool has_last = false;
  Message last;  // the latest message, when has_last
};

inline constexpr uint64_t kUnreadMax = 999;

struct SendOptions {
  OpId reply_to;
  const Media* media = nullptr;  // Send only: a Media made by the caller (SendFile makes its own)
  // SendFile only. The file's MIME type; empty: from its first bytes (JPEG, PNG, GIF, WebP, HEIC, PDF, MP4)
  // or its extension, else "application/octet-stream".
  std::string mime;
  std::string filename;  // display only; empty: the path's last component
};

// The adapter's own settings (Chat::Open), beside the engine's.
struct ChatOptions {
  // Makes SendFile's thumbnails. nullptr: OpenVipsThumbnailer (libvips), made on the first SendFile.
  std::shared_ptr<Thumbnailer> thumbnailer;
  // Longest side and encoded size cap of a thumbnail. bytes_max may be at most kThumbnailBytesMax (Open
  // refuses more: InvalidArgument), as every member's device stores each thumbnail in the message.
  ThumbnailOptions thumbnail;
};

// The largest thumbnail a message may carry.
inline constexpr uint32_t kThumbnailBytesMax = 64 * 1024;

class OUTPOST_EXPORT Chat {
 public:
  // Opens the device's store (and its connection settings) through Client::Open with follow_memberships
  // on (the store needs a user: InvalidArgument otherwise). Nothing touches the network until
  // client().Start() or a Step.
  static Result<std::unique_ptr<Chat>> Open(ClientOptions options, ChatOptions chat_options = {});
  ~Chat();
  Chat(const Chat&) = delete;
  Chat& operator=(const Chat&) = delete;

  // Creates `id` with `members` (this user is always added), or replaces the members of an existing one.
  // Offline-first like a message: pending until the server applies it, refused ("forbidden") when the
  // conversation exists and this user is not a member.
  Result<OpId> CreateConversation(std::string_view id, const std::vector<std::string>& members);
  // Durable, queued and visible (pending) when it returns. InvalidArgument for an empty or oversized text.
  Result<OpId> Send(std::string_view conversation, std::string_view text, const SendOptions& options = {});
  // Sends the file at `path` with an optional caption: durable, queued and visible (pending, upload
  // pending) when it returns; the engine copies the file into ClientOptions::media_dir, uploads it and then
  // sends the message. When the file is an image, a thumbnail (ChatOptions::thumbnail) and the image's
  // dimensions go in the message; a file that is not an image, or one the thumbnailer cannot read (corrupt,
  // too large, any thumbnailer error), is sent without them. Errors, nothing stored: the engine's for the
  // attachment (NotFound: no such file; InvalidArgument: not a regular file, too large; FailedPrecondition:
  // no ClientOptions::media) and Send's for the caption.
  Result<OpId> SendFile(std::string_view conversation, std::string_view path, std::string_view caption = {},
                        const SendOptions& options = {});

  // The last `limit` messages, oldest first; with `before` (a Message::position), those just before it.
  Result<std::vector<Message>> History(std::string_view conversation, size_t limit,
                                       std::string_view before = {});
  Result<Message> Get(const OpId& id);
  // Every conversation this device knows, most recent activity first.
  Result<std::vector<Conversation>> Conversations();
  Result<Conversation> GetConversation(std::string_view id);

  // Everything merged so far counts as seen.
  Status MarkRead(std::string_view conversation);
  Status SetReadReceipts(bool on);
  bool read_receipts();
  Status Retry(const OpId& id);
  Status Discard(const OpId& id);

  Client& client() { return *client_; }
  const std::string& user() const { return client_->user(); }

 private:
  Chat(std::unique_ptr<Client> client, ChatOptions options, std::string media_url);
  Result<Thumbnail> MakeThumbnail(std::string_view path);
  Result<Message> ToMessage(const OpInfo& op, const std::vector<std::string>& members,
                            const std::vector<Watermark>& marks);
  Result<Conversation> Summarize(const StreamInfo& stream);
  // The conversation's members (Client::Members); *known is false (and the list empty) before its first
  // members op is here.
  Result<std::vector<std::string>> MembersOf(std::string_view conversation, bool* known);

  std::unique_ptr<Client> client_;
  ChatOptions options_;
  std::string media_url_;  // ClientOptions::media_url: where blobs are downloaded (Media::uri)
  std::mutex mu_;          // guards options_.thumbnailer (made on first use)
};

}  // namespace outpost::chat

#endif  // OUTPOST_CHAT_CHAT_H_
