// Copyright 2026 The Outpost Authors.
//
// The chat adapter: conversations and messages on top of the public engine API (client.h), nothing else.
//
//   auto chat = chat::Chat::Open({.store = "lmdb:/data/alice", .server = "tcp://chat.example:7700",
//                                 .user = "alice", .token = token});
//   (*chat)->CreateConversation("alice-bob", {"alice", "bob"});
//   auto id = (*chat)->Send("alice-bob", "on my way");   // durable and shown (pending) before any network
//   (*chat)->client().Start();                           // background sync
//
// Model:
//  - A conversation is a stream; its members are the latest outpost.members op of the stream (membership.h).
//    1:1 chats and groups differ only in the member count. Conversations made elsewhere are found through
//    the user's membership feed, which the adapter follows, and followed as soon as they appear.
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
#include <unordered_map>
#include <vector>

#include "outpost/client.h"
#include "outpost/ids.h"
#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost::chat {

inline constexpr std::string_view kMessageKind = "chat.message";

enum class MessageStatus : uint8_t { kPending, kSent, kDelivered, kRead, kFailed };

// "pending", "sent", "delivered", "read", "failed".
std::string_view StatusName(MessageStatus status);

struct Media {
  std::string uri;
  std::string mime;
  uint64_t bytes = 0;
  uint32_t width = 0, height = 0;
  std::string thumbnail;  // small JPEG bytes
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
  const Media* media = nullptr;
};

class Chat {
 public:
  // Opens the device's store (and its connection settings) through Client::Open and follows the user's
  // membership feed. Nothing touches the network until client().Start() or a Step.
  static Result<std::unique_ptr<Chat>> Open(ClientOptions options);
  ~Chat();
  Chat(const Chat&) = delete;
  Chat& operator=(const Chat&) = delete;

  // Creates `id` with `members` (this user is always added), or replaces the members of an existing one.
  // Offline-first like a message: pending until the server applies it, refused ("forbidden") when the
  // conversation exists and this user is not a member.
  Result<OpId> CreateConversation(std::string_view id, const std::vector<std::string>& members);
  // Durable, queued and visible (pending) when it returns. InvalidArgument for an empty or oversized text.
  Result<OpId> Send(std::string_view conversation, std::string_view text, const SendOptions& options = {});

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

  // Conversations made elsewhere and listed in the feed are followed by the adapter itself (from the
  // change callback); call this after opening to catch up on the ones the feed already holds.
  Status FollowJoined();

  Client& client() { return *client_; }
  const std::string& user() const { return client_->user(); }

 private:
  explicit Chat(std::unique_ptr<Client> client);
  Result<Message> ToMessage(const OpInfo& op, const std::vector<std::string>& members,
                            const std::vector<Watermark>& marks);
  Result<Conversation> Summarize(const StreamInfo& stream);
  Result<std::vector<std::string>> MembersOf(std::string_view conversation, bool* known);
  void OnChanges(const std::vector<Change>& changes);

  std::unique_ptr<Client> client_;
  uint64_t subscription_ = 0;
  std::mutex mu_;
  // conversation -> members, from the latest members op seen (a scan back through the view on first use).
  struct MembersCache {
    bool known = false;
    std::vector<std::string> members;
  };
  std::unordered_map<std::string, MembersCache> members_;
};

}  // namespace outpost::chat

#endif  // OUTPOST_CHAT_CHAT_H_
