// Copyright 2026 The Outpost Authors.
//
// Stream membership, as a server with ServerOptions::membership on enforces it. Membership is carried by
// ordinary ops, so it is durable, ordered and offline-first like everything else:
//
//  - A stream exists once an op of kind kMembersKind is applied to it. Its payload lists the members, one
//    user name per line (EncodeMembers); the author is always a member of a stream it creates.
//  - Only members may push to, pull, be notified about or set watermarks on a stream. Anyone else, or
//    any op on a stream that does not exist, gets a permanent PermissionDenied ("forbidden: ...");
//    nothing is stored and the op fails visibly on the device.
//  - A member may push another kMembersKind op: it replaces the member list (a user who leaves the list
//    loses access from the next op on).
//  - Each user has a membership feed, the stream FeedStream(user), that only the server writes and only
//    that user reads: when a user is added to a stream the server appends an op of kind kJoinedKind (and
//    kLeftKind on removal) whose payload is the stream id. A device follows its user's feed to discover
//    conversations it did not create. Stream ids starting with kFeedPrefix are reserved for feeds.
#ifndef OUTPOST_MEMBERSHIP_H_
#define OUTPOST_MEMBERSHIP_H_

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace outpost {

inline constexpr std::string_view kMembersKind = "outpost.members";
inline constexpr std::string_view kJoinedKind = "outpost.joined";
inline constexpr std::string_view kLeftKind = "outpost.left";
inline constexpr std::string_view kFeedPrefix = "@";

inline std::string FeedStream(std::string_view user) { return std::string(kFeedPrefix) + std::string(user); }

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

// The names of a kMembersKind payload, empty lines skipped, duplicates kept once, in order.
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
