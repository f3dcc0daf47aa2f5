// Copyright 2026 The Outpost Authors.
//
// Stream membership, as a server with ServerOptions::membership on enforces it. Membership is carried by
// ordinary ops, so it is durable, ordered and offline-first like everything else:
//
//  - A stream exists once an op of kind kMembersKind is applied to it. Its payload lists the members, one
//    user name per line (EncodeMembers); the author is always a member of a stream it creates.
//  - Only members may push to, pull, be notified about or set watermarks on a stream. Anyone else, or
//    any op on a stream that does not exist, gets a permanent PermissionDenied ("forbidden: USER is not a
//    member of STREAM", the same words in both cases, so that names are not probed);
//    nothing is stored and the op fails visibly on the device.
//  - A member may push another kMembersKind op: it replaces the member list (a user who leaves the list
//    loses access from the next op on).
//  - Each user has a membership feed, the stream FeedStream(user), that only the server writes and only
//    that user reads: when a user is added to a stream the server appends an op of kind kJoinedKind (and
//    kLeftKind on removal) whose payload is the stream id. A device follows its user's feed to discover
//    conversations it did not create. Stream ids starting with kFeedPrefix are reserved for feeds. Devices
//    may not push kJoinedKind or kLeftKind ops to any stream.
//
// Grammar (docs/protocol.md):
//   user name    1..64 bytes of [A-Za-z0-9._-]                    (ValidateUserName)
//   device id    1..255 bytes of UTF-8, no control bytes (< 0x20, 0x7f)   (ValidateDeviceId)
//   member list  name *( "\n" name ) [ "\n" ]: user names, one per line, a final newline allowed,
//                a name listed twice counts once, at most ServerOptions::members_max names (ParseMembers)
#ifndef OUTPOST_MEMBERSHIP_H_
#define OUTPOST_MEMBERSHIP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {

inline constexpr std::string_view kMembersKind = "outpost.members";
inline constexpr std::string_view kJoinedKind = "outpost.joined";
inline constexpr std::string_view kLeftKind = "outpost.left";
inline constexpr std::string_view kFeedPrefix = "@";

inline std::string FeedStream(std::string_view user) { return std::string(kFeedPrefix) + std::string(user); }

inline constexpr size_t kUserNameBytesMax = 64;
inline constexpr size_t kDeviceIdBytesMax = 255;

// `text` with bytes outside printable ASCII, quotes and backslashes escaped, cut after 64 bytes: safe to
// put in an error message.
inline std::string QuoteForMessage(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (text.size() > 64) out += "...";
  out.push_back('"');
  return out;
}

// Ok for 1..64 bytes of [A-Za-z0-9._-]; InvalidArgument saying what is wrong otherwise.
inline Status ValidateUserName(std::string_view name) {
  if (name.empty() || name.size() > kUserNameBytesMax) {
    return Status::InvalidArgument("user name " + QuoteForMessage(name) + " must be 1.." +
                                   std::to_string(kUserNameBytesMax) + " bytes");
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) {
      return Status::InvalidArgument("user name " + QuoteForMessage(name) +
                                     " may hold only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::OK();
}

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
inline bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    const size_t n = (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2 : (b & 0xf8) == 0xf0 ? 3 : 0;
    if (n == 0 || s.size() - i <= n) return false;  // a stray continuation or 5+ byte lead; truncated
    uint32_t cp = b & (0x3fu >> n);
    for (size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xc0) != 0x80) return false;
      cp = cp << 6 | (c & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

// Ok for 1..255 bytes of UTF-8 without control bytes; InvalidArgument saying what is wrong otherwise.
// (Databases keep device ids as text: bytes that are not UTF-8 would fail every write that carries them.)
inline Status ValidateDeviceId(std::string_view device) {
  if (device.empty() || device.size() > kDeviceIdBytesMax) {
    return Status::InvalidArgument("device id must be 1.." + std::to_string(kDeviceIdBytesMax) + " bytes");
  }
  for (char c : device) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return Status::InvalidArgument("device id " + QuoteForMessage(device) + " holds a control byte");
    }
  }
  if (!IsUtf8(device))
    return Status::InvalidArgument("device id " + QuoteForMessage(device) + " is not UTF-8");
  return Status::OK();
}

// The names of a member list (grammar above), in order, each once. InvalidArgument naming the first bad
// line (an empty line inside the list, or a name outside the user-name grammar: " bob\r" is refused, not
// trimmed), or the list's size when it holds more than `members_max` distinct names. Linear in the payload
// and stops at the first error.
inline Result<std::vector<std::string>> ParseMembers(std::string_view payload, size_t members_max) {
  std::vector<std::string> users;
  std::unordered_set<std::string_view> seen;  // views into the caller's bytes
  size_t line = 0;
  if (!payload.empty() && payload.back() == '\n') payload.remove_suffix(1);
  if (payload.empty()) return Status::InvalidArgument("member list is empty: a stream needs a member");
  while (true) {
    ++line;
    size_t nl = payload.find('\n');
    std::string_view name = payload.substr(0, nl);
    Status st = ValidateUserName(name);
    if (!st.ok()) {
      return Status::InvalidArgument("member list line " + std::to_string(line) + ": " + st.message());
    }
    if (seen.insert(name).second) {
      if (users.size() >= members_max) {
        return Status::InvalidArgument("member list names more than " + std::to_string(members_max) +
                                       " users (members_max)");
      }
      users.emplace_back(name);
    }
    if (nl == std::string_view::npos) break;
    payload.remove_prefix(nl + 1);
  }
  return users;
}

// One name per line, in the given order. Names are 1..255 bytes without '\n' (others are dropped).
inline std::string EncodeMembers(const std::vector<std::string>& users) {
  std::string out;
  for (const auto& u : users) {
    if (u.empty() || u.size() > 255 || u.find('\n') != std::string::npos) continue;
    if (!out.empty()) out.push_back('\n');
    out += u;
  }
  return out;
}

// The names of a stored kMembersKind payload (one the server applied, so well-formed), empty lines skipped,
// duplicates kept once, in order. Lenient: for readers of applied ops; the server uses ParseMembers.
// Linear in the payload: a member may send payload_bytes_max of distinct names (a quadratic scan took the
// server 73 s for 1 MiB).
inline std::vector<std::string> DecodeMembers(std::string_view payload) {
  std::vector<std::string> users;
  std::unordered_set<std::string_view> seen;  // views into the caller's bytes
  while (!payload.empty()) {
    size_t nl = payload.find('\n');
    std::string_view name = payload.substr(0, nl);
    if (!name.empty() && name.size() <= 255 && seen.insert(name).second) users.emplace_back(name);
    if (nl == std::string_view::npos) break;
    payload.remove_prefix(nl + 1);
  }
  return users;
}

}  // namespace outpost

#endif  // OUTPOST_MEMBERSHIP_H_
