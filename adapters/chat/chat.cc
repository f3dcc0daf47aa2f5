// Copyright 2026 The Outpost Authors.
#include "outpost/chat/chat.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <utility>

#include "media/thumbnail/vips_thumbnailer.h"
#include "outpost/chat_generated.h"
#include "outpost/membership.h"

namespace outpost::chat {
namespace {

constexpr size_t kPage = 256;
constexpr uint32_t kTextBytesMax = 64 * 1024;
constexpr uint32_t kMimeBytesMax = 255;

std::string EncodeMessage(std::string_view text, const SendOptions& options) {
  flatbuffers::FlatBufferBuilder b(256 + text.size());
  auto t = b.CreateString(text.data(), text.size());
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> reply;
  if (!options.reply_to.IsNil()) reply = b.CreateVector(options.reply_to.bytes.data(), 16);
  flatbuffers::Offset<fb::Media> media;
  if (options.media != nullptr) {
    const Media& m = *options.media;
    media = fb::CreateMedia(
        b, b.CreateString(m.uri), b.CreateString(m.mime), m.bytes, m.width, m.height,
        b.CreateVector(reinterpret_cast<const uint8_t*>(m.thumbnail.data()), m.thumbnail.size()));
  }
  b.Finish(fb::CreateMessage(b, t, reply, media), fb::MessageIdentifier());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

// False when `payload` is not a well-formed Message (another version's garbage, a hostile peer).
bool DecodeMessage(std::string_view payload, Message* m) {
  auto data = reinterpret_cast<const uint8_t*>(payload.data());
  flatbuffers::Verifier v(data, payload.size(), flatbuffers::Verifier::Options{});
  if (!fb::MessageBufferHasIdentifier(data) || !fb::VerifyMessageBuffer(v)) return false;
  const fb::Message* msg = fb::GetMessage(data);
  if (msg->text()) m->text = msg->text()->str();
  if (msg->reply_to() && msg->reply_to()->size() == 16) {
    auto id = OpId::FromBytes(
        std::string_view(reinterpret_cast<const char*>(msg->reply_to()->data()), msg->reply_to()->size()));
    if (id.ok()) m->reply_to = *id;
  }
  if (const fb::Media* media = msg->media()) {
    m->has_media = true;
    if (media->uri()) m->media.uri = media->uri()->str();
    if (media->mime()) m->media.mime = media->mime()->str();
    m->media.bytes = media->bytes();
    m->media.width = media->width();
    m->media.height = media->height();
    if (media->thumbnail()) {
      m->media.thumbnail.assign(reinterpret_cast<const char*>(media->thumbnail()->data()),
                                media->thumbnail()->size());
    }
  }
  return true;
}

// The MIME type of the file at `path`: from its first bytes when they are a known signature (a photo named
// .bin is still a photo), else from its extension; "application/octet-stream" when neither tells.
std::string GuessMime(std::string_view path) {
  unsigned char head[16] = {};
  size_t n = 0;
  if (std::FILE* f = std::fopen(std::string(path).c_str(), "rb")) {
    n = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
  }
  auto at = [&](size_t offset, std::string_view magic) {
    return n >= offset + magic.size() &&
           std::string_view(reinterpret_cast<const char*>(head) + offset, magic.size()) == magic;
  };
  if (at(0, "\xFF\xD8\xFF")) return "image/jpeg";
  if (at(0, "\x89PNG\r\n\x1A\n")) return "image/png";
  if (at(0, "GIF87a") || at(0, "GIF89a")) return "image/gif";
  if (at(0, "RIFF") && at(8, "WEBP")) return "image/webp";
  if (at(4, "ftypheic") || at(4, "ftypheix") || at(4, "ftypmif1")) return "image/heic";
  if (at(4, "ftypavif")) return "image/avif";
  if (at(4, "ftypqt")) return "video/quicktime";
  if (at(4, "ftyp")) return "video/mp4";
  if (at(0, "%PDF-")) return "application/pdf";
  std::string ext;
  const size_t dot = path.rfind('.');
  if (dot != std::string_view::npos && path.find('/', dot) == std::string_view::npos) {
    for (char c : path.substr(dot + 1)) ext += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static constexpr std::pair<std::string_view, std::string_view> kByExtension[] = {
      {"jpg", "image/jpeg"},  {"jpeg", "image/jpeg"},     {"png", "image/png"},       {"gif", "image/gif"},
      {"webp", "image/webp"}, {"heic", "image/heic"},     {"tif", "image/tiff"},      {"tiff", "image/tiff"},
      {"mp4", "video/mp4"},   {"mov", "video/quicktime"}, {"pdf", "application/pdf"}, {"txt", "text/plain"},
      {"mp3", "audio/mpeg"},  {"m4a", "audio/mp4"},       {"zip", "application/zip"},
  };
  for (const auto& [e, mime] : kByExtension) {
    if (ext == e) return std::string(mime);
  }
  return "application/octet-stream";
}

// The download address of a blob: the endpoint (with a '/' added when it lacks one, as the tus transport
// does) and the id. Empty when either is unknown.
std::string BlobUri(const std::string& endpoint, const std::string& blob_id) {
  if (endpoint.empty() || blob_id.empty()) return {};
  return endpoint + (endpoint.back() == '/' ? "" : "/") + blob_id;
}

// True when every member but `author` has a device whose watermark of `kind` (read also counts as
// delivered) reaches `seq`. False when there is no such other member.
bool Covered(const std::vector<std::string>& members, const std::string& author,
             const std::vector<Watermark>& marks, uint64_t seq, bool read) {
  bool any = false;
  for (const auto& user : members) {
    if (user == author) continue;
    any = true;
    bool covered = false;
    for (const auto& wm : marks) {
      if (wm.user != user || wm.seq < seq) continue;
      if (wm.kind == WatermarkKind::kRead || !read) covered = true;
    }
    if (!covered) return false;
  }
  return any;
}

}  // namespace

std::string_view StatusName(MessageStatus status) {
  switch (status) {
    case MessageStatus::kPending:
      return "pending";
    case MessageStatus::kSent:
      return "sent";
    case MessageStatus::kDelivered:
      return "delivered";
    case MessageStatus::kRead:
      return "read";
    case MessageStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string_view UploadStatusName(UploadStatus status) {
  switch (status) {
    case UploadStatus::kNone:
      return "none";
    case UploadStatus::kPending:
      return "pending";
    case UploadStatus::kFailed:
      return "failed";
    case UploadStatus::kDone:
      return "done";
  }
  return "unknown";
}

Result<std::unique_ptr<Chat>> Chat::Open(ClientOptions options, ChatOptions chat_options) {
  if (chat_options.thumbnail.bytes_max == 0 || chat_options.thumbnail.bytes_max > kThumbnailBytesMax) {
    return Status::InvalidArgument("thumbnail bytes_max must be 1.." + std::to_string(kThumbnailBytesMax));
  }
  if (chat_options.thumbnail.side_px_max == 0) {
    return Status::InvalidArgument("thumbnail side_px_max must be at least 1");
  }
  // Chat never holds later messages back behind a failed one.
  options.block_stream_on_failure = false;
  // Conversations made elsewhere are found through the user's membership feed: the engine follows it and
  // every conversation it names, in the transaction that merges the join. (Client::Open refuses a store
  // without a user then: a chat device needs one.)
  options.follow_memberships = true;
  std::string media_url = options.media_url;
  auto client = Client::Open(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<Chat>(
      new Chat(std::move(client).value(), std::move(chat_options), std::move(media_url)));
}

Chat::Chat(std::unique_ptr<Client> client, ChatOptions options, std::string media_url)
    : client_(std::move(client)), options_(std::move(options)), media_url_(std::move(media_url)) {}

Chat::~Chat() { client_->Stop(); }

Result<OpId> Chat::CreateConversation(std::string_view id, const std::vector<std::string>& members) {
  if (id.empty() || id.starts_with(kFeedPrefix)) {
    return Status::InvalidArgument("conversation id must be non-empty and not start with '" +
                                   std::string(kFeedPrefix) + "'");
  }
  std::vector<std::string> all{user()};
  for (const auto& m : members) {
    if (m.empty() || m.size() > 255 || m.find('\n') != std::string::npos) {
      return Status::InvalidArgument("bad member name '" + m + "'");
    }
    if (std::find(all.begin(), all.end(), m) == all.end()) all.push_back(m);
  }
  return client_->Submit(id, kMembersKind, EncodeMembers(all));
}

Result<OpId> Chat::Send(std::string_view conversation, std::string_view text, const SendOptions& options) {
  if (conversation.starts_with(kFeedPrefix)) {
    return Status::InvalidArgument("'" + std::string(conversation) +
                                   "' is a membership feed, not a conversation");
  }
  if (text.empty() && options.media == nullptr) return Status::InvalidArgument("empty message");
  if (text.size() > kTextBytesMax) {
    return Status::InvalidArgument("message text is " + std::to_string(text.size()) + " bytes, at most " +
                                   std::to_string(kTextBytesMax));
  }
  if (options.media != nullptr && options.media->thumbnail.size() > kThumbnailBytesMax) {
    return Status::InvalidArgument("thumbnail larger than " + std::to_string(kThumbnailBytesMax) + " bytes");
  }
  return client_->Submit(conversation, kMessageKind, EncodeMessage(text, options));
}

Result<Thumbnail> Chat::MakeThumbnail(std::string_view path) {
  std::shared_ptr<Thumbnailer> thumbnailer;
  {
    // libvips starts with the first thumbnail, not with every Open: most runs send no file.
    std::lock_guard<std::mutex> lock(mu_);
    if (!options_.thumbnailer) options_.thumbnailer = OpenVipsThumbnailer();
    thumbnailer = options_.thumbnailer;
  }
  return thumbnailer->Make(path, options_.thumbnail);
}

Result<OpId> Chat::SendFile(std::string_view conversation, std::string_view path, std::string_view caption,
                            const SendOptions& options) {
  if (conversation.starts_with(kFeedPrefix)) {
    return Status::InvalidArgument("'" + std::string(conversation) +
                                   "' is a membership feed, not a conversation");
  }
  if (path.empty()) return Status::InvalidArgument("no file given");
  if (caption.size() > kTextBytesMax) {
    return Status::InvalidArgument("caption is " + std::to_string(caption.size()) + " bytes, at most " +
                                   std::to_string(kTextBytesMax));
  }
  if (options.mime.size() > kMimeBytesMax || options.mime.find_first_of("\r\n") != std::string::npos) {
    return Status::InvalidArgument("bad MIME type '" + options.mime + "'");
  }
  struct stat st;
  if (::stat(std::string(path).c_str(), &st) != 0) {
    return Status::NotFound("no file " + std::string(path));
  }
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(std::string(path) + " is not a regular file");

  Media media;
  media.mime = options.mime.empty() ? GuessMime(path) : options.mime;
  media.bytes = static_cast<uint64_t>(st.st_size);
  // Any thumbnail failure leaves the message without one: a preview is never worth a refused send.
  // NotFound means "not an image"; Corruption, IOError, Full and the rest mean this image has none.
  if (auto thumb = MakeThumbnail(path); thumb.ok() && thumb->bytes.size() <= kThumbnailBytesMax) {
    media.width = thumb->source_width;
    media.height = thumb->source_height;
    media.thumbnail = std::move(thumb->bytes);
  }
  SendOptions encode;
  encode.reply_to = options.reply_to;
  encode.media = &media;
  SubmitOptions submit;
  submit.attachment.path = std::string(path);
  submit.attachment.content_type = media.mime;
  submit.attachment.filename = options.filename;
  return client_->Submit(conversation, kMessageKind, EncodeMessage(caption, encode), submit);
}

Result<std::vector<std::string>> Chat::MembersOf(std::string_view conversation, bool* known) {
  // The engine keeps each stream's members (Client::Members): no scan here.
  auto members = client_->Members(conversation);
  *known = members.ok();
  if (members.status().IsNotFound()) return std::vector<std::string>();
  return members;
}

Result<Message> Chat::ToMessage(const OpInfo& op, const std::vector<std::string>& members,
                                const std::vector<Watermark>& marks) {
  Message m;
  m.id = op.op_id;
  m.conversation = op.stream;
  m.seq = op.seq;
  m.sender = op.user;
  m.sender_device = op.device;
  m.own = op.own;
  m.client_time_ms = op.client_time_ms;
  m.attempts = op.attempts;
  m.position = op.position;
  m.unreadable = !DecodeMessage(op.payload, &m);
  if (op.has_attachment) {
    // The engine's record of the file wins over what the payload claims: its size and hash are the bytes'.
    const Attachment& a = op.attachment;
    m.has_media = true;
    m.media.attached = true;
    m.media.blob_id = a.blob_id;
    m.media.sha256 = a.sha256;
    m.media.bytes = a.size;
    if (!a.content_type.empty()) m.media.mime = a.content_type;
    if (m.media.uri.empty()) m.media.uri = BlobUri(media_url_, a.blob_id);
    if (op.own) {
      switch (a.upload) {
        case UploadState::kPending:
          m.media.upload = UploadStatus::kPending;
          m.media.upload_offset = a.uploaded_bytes;
          break;
        case UploadState::kFailed:
          m.media.upload = UploadStatus::kFailed;
          m.media.upload_offset = a.uploaded_bytes;
          break;
        case UploadState::kNone:  // completed: the op goes (or went) with its blob id
          m.media.upload = UploadStatus::kDone;
          m.media.upload_offset = a.size;
          break;
      }
    }
  }
  switch (op.state) {
    case OpState::kPending:
      m.status = MessageStatus::kPending;
      break;
    case OpState::kFailed:
      m.status = MessageStatus::kFailed;
      m.error = op.last_error.empty() ? "failed" : op.last_error;
      break;
    case OpState::kSent:
      m.status = Covered(members, op.user, marks, op.seq, true)    ? MessageStatus::kRead
                 : Covered(members, op.user, marks, op.seq, false) ? MessageStatus::kDelivered
                                                                   : MessageStatus::kSent;
      break;
  }
  // The engine fails the op with its upload; should the two ever disagree, the upload's failure shows.
  if (m.media.upload == UploadStatus::kFailed && m.status != MessageStatus::kFailed) {
    m.status = MessageStatus::kFailed;
    m.error = op.last_error.empty() ? "upload failed" : op.last_error;
  }
  return m;
}

Result<std::vector<Message>> Chat::History(std::string_view conversation, size_t limit,
                                           std::string_view before) {
  bool known = false;
  OUTPOST_ASSIGN_OR_RETURN(auto members, MembersOf(conversation, &known));
  OUTPOST_ASSIGN_OR_RETURN(auto marks, client_->Watermarks(conversation));
  std::vector<Message> out;  // newest first while collecting
  std::string position(before);
  while (out.size() < limit) {
    auto page = position.empty() ? client_->Latest(conversation, kPage)
                                 : client_->Before(conversation, position, kPage);
    OUTPOST_RETURN_IF_ERROR(page.status());
    for (auto it = page->rbegin(); it != page->rend() && out.size() < limit; ++it) {
      if (it->kind != kMessageKind) continue;
      OUTPOST_ASSIGN_OR_RETURN(auto m, ToMessage(*it, members, marks));
      out.push_back(std::move(m));
    }
    if (page->size() < kPage) break;
    position = page->front().position;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

Result<Message> Chat::Get(const OpId& id) {
  OUTPOST_ASSIGN_OR_RETURN(auto op, client_->Get(id));
  if (op.kind != kMessageKind) return Status::NotFound("op " + id.ToString() + " is not a chat message");
  bool known = false;
  OUTPOST_ASSIGN_OR_RETURN(auto members, MembersOf(op.stream, &known));
  OUTPOST_ASSIGN_OR_RETURN(auto marks, client_->Watermarks(op.stream));
  return ToMessage(op, members, marks);
}

Result<Conversation> Chat::Summarize(const StreamInfo& s) {
  Conversation c;
  c.id = s.stream;
  bool known = false;
  OUTPOST_ASSIGN_OR_RETURN(c.members, MembersOf(s.stream, &known));
  c.member = !known || std::find(c.members.begin(), c.members.end(), user()) != c.members.end();
  c.pending = s.outbox;
  c.failed = s.failed;
  OUTPOST_ASSIGN_OR_RETURN(auto marks, client_->Watermarks(s.stream));
  // From the newest back to the read position: the last message, and the others' messages not yet seen.
  std::string position;
  for (bool stop = false; !stop;) {
    auto page =
        position.empty() ? client_->Latest(s.stream, kPage) : client_->Before(s.stream, position, kPage);
    OUTPOST_RETURN_IF_ERROR(page.status());
    for (auto it = page->rbegin(); it != page->rend() && !stop; ++it) {
      const OpInfo& op = *it;
      const bool seen = op.state == OpState::kSent && op.seq <= s.read_seq;
      if (op.kind == kMessageKind) {
        if (!c.has_last) {
          OUTPOST_ASSIGN_OR_RETURN(c.last, ToMessage(op, c.members, marks));
          c.has_last = true;
        }
        if (!seen && op.state == OpState::kSent && op.user != user()) ++c.unread;
      }
      stop = c.has_last && (seen || c.unread >= kUnreadMax);
    }
    if (page->size() < kPage) break;
    position = page->front().position;
  }
  return c;
}

Result<Conversation> Chat::GetConversation(std::string_view id) {
  OUTPOST_ASSIGN_OR_RETURN(auto streams, client_->Streams());
  for (const StreamInfo& s : streams) {
    if (s.stream == id) return Summarize(s);
  }
  return Status::NotFound("no conversation '" + std::string(id) + "' on this device");
}

Result<std::vector<Conversation>> Chat::Conversations() {
  OUTPOST_ASSIGN_OR_RETURN(auto streams, client_->Streams());
  std::vector<Conversation> out;
  for (const StreamInfo& s : streams) {
    if (s.stream.starts_with(kFeedPrefix)) continue;
    OUTPOST_ASSIGN_OR_RETURN(auto c, Summarize(s));
    out.push_back(std::move(c));
  }
  std::stable_sort(out.begin(), out.end(), [](const Conversation& a, const Conversation& b) {
    int64_t ta = a.has_last ? a.last.client_time_ms : 0, tb = b.has_last ? b.last.client_time_ms : 0;
    return ta > tb;
  });
  return out;
}

Status Chat::MarkRead(std::string_view conversation) {
  OUTPOST_ASSIGN_OR_RETURN(uint64_t cursor, client_->Cursor(conversation));
  if (cursor == 0) return Status::OK();
  return client_->MarkRead(conversation, cursor);
}

Status Chat::SetReadReceipts(bool on) { return client_->SetReadReceipts(on); }
bool Chat::read_receipts() { return client_->read_receipts(); }
Status Chat::Retry(const OpId& id) { return client_->Retry(id); }
Status Chat::Discard(const OpId& id) { return client_->Discard(id); }

}  // namespace outpost::chat
