// Copyright 2026 The Outpost Authors.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli.h"
#include "common/time_format.h"
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

std::string ClockTime(int64_t ms) { return cli::LocalClock(ms); }

std::string IsoTime(int64_t ms) { return cli::UtcIso(ms); }

std::string Age(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 60'000) return fmt::format("{} s", ms / 1000);
  if (ms < 3'600'000) return fmt::format("{} min", ms / 60'000);
  return fmt::format("{} h", ms / 3'600'000);
}

namespace {

// The length of the valid UTF-8 sequence at the start of `s` and its code point; 0 when invalid (overlong,
// a surrogate, past U+10FFFF, cut short).
size_t Utf8Sequence(std::string_view s, uint32_t* cp) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  size_t n = 0;
  uint32_t v = 0, min = 0;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    n = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i) & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

}  // namespace

std::string Printable(std::string_view s, bool utf8) {
  const std::string_view replacement = utf8 ? "\xEF\xBF\xBD" : "?";
  std::string out;
  out.reserve(s.size());
  while (!s.empty()) {
    uint32_t cp = 0;
    const size_t n = Utf8Sequence(s, &cp);
    if (n == 0) {
      out += replacement;  // one per invalid byte
      s.remove_prefix(1);
      continue;
    }
    if (cp == '\n') {
      out += utf8 ? "\xE2\x86\xB5" : " ";  // ↵: a message stays on its line
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || (cp != ' ' && !utf8 && cp >= 0x80)) {
      out += replacement;  // C0, DEL, C1: what a terminal would obey rather than show
    } else {
      out.append(s.substr(0, n));
    }
    s.remove_prefix(n);
  }
  return out;
}

std::string MessageLine(const chat::Message& m, bool utf8, std::string_view viewer) {
  std::string text = m.unreadable ? "(unreadable message)" : Printable(m.text, utf8);
  if (m.has_media) text = MediaText(m, utf8) + (text.empty() ? "" : " " + text);
  std::string line = fmt::format("{} {}: {}", ClockTime(m.client_time_ms), Printable(m.sender, utf8), text);
  if (m.sender != viewer) return line;
  line += fmt::format("  {} {}", Glyph(m.status, utf8), chat::StatusName(m.status));
  if (m.status == MessageStatus::kRead) line += " (seen)";
  if (m.status == MessageStatus::kFailed) {
    line += fmt::format(": {} (retry {})", Printable(m.error, utf8), m.id.ToString());
  }
  return line;
}

std::string MessageJson(const chat::Message& m) {
  nlohmann::ordered_json out;
  out["id"] = m.id.ToString();
  out["seq"] = m.seq ? nlohmann::ordered_json(m.seq) : nlohmann::ordered_json(nullptr);
  out["conversation"] = m.conversation;
  out["sender"] = m.sender;
  out["device"] = m.sender_device;
  out["own"] = m.own;
  out["text"] = m.unreadable ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(m.text);
  out["status"] = chat::StatusName(m.status);
  out["client_time"] = IsoTime(m.client_time_ms);
  out["client_time_ms"] = m.client_time_ms;
  if (!m.reply_to.IsNil()) out["reply_to"] = m.reply_to.ToString();
  if (m.status == MessageStatus::kFailed) out["error"] = m.error;
  if (m.own) out["attempts"] = m.attempts;
  if (!m.has_media) {
    out["media"] = nullptr;
  } else {
    const chat::Media& media = m.media;
    nlohmann::ordered_json j;
    j["uri"] = media.uri.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(media.uri);
    j["mime"] = media.mime;
    j["size"] = media.bytes;
    j["width"] = media.width;
    j["height"] = media.height;
    j["sha256"] =
        media.sha256.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(media.sha256);
    j["thumbnail_bytes"] = media.thumbnail.size();
    if (m.own && media.upload != chat::UploadStatus::kNone) {
      j["upload"] = {{"state", chat::UploadStatusName(media.upload)}, {"offset", media.upload_offset}};
    }
    out["media"] = std::move(j);
  }
  // Message text is another user's bytes: invalid UTF-8 becomes U+FFFD, so the line is always valid JSON.
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
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
