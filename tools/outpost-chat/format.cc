// Copyright 2026 The Outpost Authors.
#include <fmt/format.h>

#include <ctime>

#include "cli.h"
#include "common/json.h"
#include "thumbnail_art.h"

namespace outpost::chat_cli {

using chat::MessageStatus;

std::string_view Glyph(MessageStatus status, bool utf8) {
  switch (status) {
    case MessageStatus::kPending:
      return utf8 ? "🕓" : "[.]";
    case MessageStatus::kSent:
      return utf8 ? "✓" : "[v]";
    case MessageStatus::kDelivered:
      return utf8 ? "✓✓" : "[vv]";
    case MessageStatus::kRead:
      return utf8 ? "✓✓" : "[vv]";
    case MessageStatus::kFailed:
      return utf8 ? "❗" : "[!]";
  }
  return "?";
}

std::string ClockTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  return fmt::format("{:02}:{:02}", tm.tm_hour, tm.tm_min);
}

std::string IsoTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     static_cast<int>(((ms % 1000) + 1000) % 1000));
}

std::string Age(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 60'000) return fmt::format("{} s", ms / 1000);
  if (ms < 3'600'000) return fmt::format("{} min", ms / 60'000);
  return fmt::format("{} h", ms / 3'600'000);
}

std::string MessageLine(const chat::Message& m, bool utf8, std::string_view viewer) {
  std::string text = m.unreadable ? "(unreadable message)" : m.text;
  if (m.has_media) text = MediaText(m, utf8) + (text.empty() ? "" : " " + text);
  std::string line = fmt::format("{} {}: {}", ClockTime(m.client_time_ms), m.sender, text);
  if (m.sender != viewer) return line;
  line += fmt::format("  {} {}", Glyph(m.status, utf8), chat::StatusName(m.status));
  if (m.status == MessageStatus::kRead) line += " (seen)";
  if (m.status == MessageStatus::kFailed) line += fmt::format(": {} (retry {})", m.error, m.id.ToString());
  return line;
}

std::string MessageJson(const chat::Message& m) {
  using cli::JsonQuote;
  std::string out = fmt::format("{{\"id\":{},\"seq\":{},\"conversation\":{},\"sender\":{},\"device\":{},",
                                JsonQuote(m.id.ToString()), m.seq ? std::to_string(m.seq) : "null",
                                JsonQuote(m.conversation), JsonQuote(m.sender), JsonQuote(m.sender_device));
  out += fmt::format("\"own\":{},\"text\":{},\"status\":{},\"client_time\":{},\"client_time_ms\":{}",
                     m.own ? "true" : "false", m.unreadable ? "null" : JsonQuote(m.text),
                     JsonQuote(chat::StatusName(m.status)), JsonQuote(IsoTime(m.client_time_ms)),
                     m.client_time_ms);
  if (!m.reply_to.IsNil()) out += fmt::format(",\"reply_to\":{}", JsonQuote(m.reply_to.ToString()));
  if (m.status == MessageStatus::kFailed) out += fmt::format(",\"error\":{}", JsonQuote(m.error));
  if (m.own) out += fmt::format(",\"attempts\":{}", m.attempts);
  if (!m.has_media) {
    out += ",\"media\":null}";
    return out;
  }
  const chat::Media& media = m.media;
  out += fmt::format(
      ",\"media\":{{\"uri\":{},\"mime\":{},\"size\":{},\"width\":{},\"height\":{},\"sha256\":{},"
      "\"thumbnail_bytes\":{}",
      media.uri.empty() ? "null" : JsonQuote(media.uri), JsonQuote(media.mime), media.bytes, media.width,
      media.height, media.sha256.empty() ? "null" : JsonQuote(media.sha256), media.thumbnail.size());
  if (m.own && media.upload != chat::UploadStatus::kNone) {
    out += fmt::format(",\"upload\":{{\"state\":{},\"offset\":{}}}",
                       JsonQuote(chat::UploadStatusName(media.upload)), media.upload_offset);
  }
  out += "}}";
  return out;
}

std::string MediaText(const chat::Message& m, bool utf8) {
  const chat::Media& media = m.media;
  std::string text =
      media.mime.starts_with("image/")
          ? ImageLabel(media.width, media.height, media.bytes, utf8)
          : fmt::format("[file {}, {}]", media.mime.empty() ? "?" : media.mime, HumanBytes(media.bytes));
  if (m.own && media.upload == chat::UploadStatus::kPending) {
    text += " " + ProgressBar(media.upload_offset, media.bytes, 10, utf8);
  }
  return text;
}

}  // namespace outpost::chat_cli
