// Copyright 2026 The Outpost Authors.
#include "stats_json.h"

#include <fmt/core.h>

#include "log.h"

namespace outpostd {
namespace {

// Every ServerStats field, in the header's order: the one list the writer walks. (clang-format 14 does not
// settle on one layout for an X-macro list, so it is left as written.)
// clang-format off
#define OUTPOSTD_SERVER_STATS_FIELDS(X) \
  X(connections)                        \
  X(connections_total)                  \
  X(connections_refused)                \
  X(forbidden)                          \
  X(busy)                               \
  X(ops_applied)                        \
  X(duplicates)                         \
  X(gaps)                               \
  X(conflicts)                          \
  X(rejected)                           \
  X(skips)                              \
  X(pulls)                              \
  X(bad_frames)                         \
  X(auth_failures)                      \
  X(hello_timeouts)                     \
  X(commits)                            \
  X(commit_errors)
// Every MediaServerStats field, in the header's order.
#define OUTPOSTD_MEDIA_STATS_FIELDS(X) \
  X(uploads_created)                   \
  X(uploads_completed)                 \
  X(upload_bytes_received)             \
  X(chunks)                            \
  X(checksum_mismatches)               \
  X(downloads)                         \
  X(download_bytes_sent)               \
  X(refused_auth)                      \
  X(not_found)                         \
  X(rejected_other)                    \
  X(server_errors)                     \
  X(connections_refused)
// clang-format on

class FlatParser {
 public:
  explicit FlatParser(std::string_view text) : t_(text) {}

  bool Parse(std::vector<JsonMember>* members, std::string* error) {
    if (!Object(members, /*nested=*/false, error)) return false;
    return End(error);
  }

 private:
  // `{ members }`; a member's value may be an object only when not `nested` (one level).
  bool Object(std::vector<JsonMember>* members, bool nested, std::string* error) {
    members->clear();
    if (!Expect('{')) return Fail("expected '{'", error);
    Skip();
    if (Peek() == '}') {
      ++i_;
      return true;
    }
    for (;;) {
      JsonMember m;
      Skip();
      if (!String(&m.key)) return Fail("expected a string key", error);
      if (!Expect(':')) return Fail("expected ':'", error);
      Skip();
      m.is_string = Peek() == '"';
      m.is_object = Peek() == '{';
      if (m.is_string) {
        if (!String(&m.value)) return Fail("bad string value", error);
      } else if (m.is_object) {
        if (nested) return Fail("objects nest one level only", error);
        if (!Object(&m.members, /*nested=*/true, error)) return false;
      } else if (!Number(&m.value)) {
        return Fail("expected a string, a number or an object", error);
      }
      members->push_back(std::move(m));
      Skip();
      if (Peek() == ',') {
        ++i_;
        continue;
      }
      if (!Expect('}')) return Fail("expected ',' or '}'", error);
      return true;
    }
  }
  char Peek() const { return i_ < t_.size() ? t_[i_] : '\0'; }
  void Skip() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t')) ++i_;
  }
  bool Expect(char c) {
    Skip();
    if (Peek() != c) return false;
    ++i_;
    return true;
  }
  bool String(std::string* out) {
    if (Peek() != '"') return false;
    ++i_;
    while (i_ < t_.size()) {
      char c = t_[i_++];
      if (c == '"') return true;
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (i_ >= t_.size()) return false;
      c = t_[i_++];
      switch (c) {
        case 'n':
          out->push_back('\n');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          if (i_ + 4 > t_.size()) return false;
          unsigned v = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = t_[i_++];
            v <<= 4;
            if (h >= '0' && h <= '9') {
              v |= static_cast<unsigned>(h - '0');
            } else if (h >= 'a' && h <= 'f') {
              v |= static_cast<unsigned>(h - 'a' + 10);
            } else if (h >= 'A' && h <= 'F') {
              v |= static_cast<unsigned>(h - 'A' + 10);
            } else {
              return false;
            }
          }
          if (v > 0x7f) return false;  // the writer escapes control characters only
          out->push_back(static_cast<char>(v));
          break;
        }
        default:
          out->push_back(c);  // \" \\ \/
      }
    }
    return false;
  }
  bool Number(std::string* out) {
    const size_t start = i_;
    if (Peek() == '-') ++i_;
    while (i_ < t_.size() && ((t_[i_] >= '0' && t_[i_] <= '9') || t_[i_] == '.')) ++i_;
    if (i_ == start) return false;
    *out = std::string(t_.substr(start, i_ - start));
    return true;
  }
  bool End(std::string* error) {
    Skip();
    if (i_ != t_.size()) return Fail("trailing bytes after '}'", error);
    return true;
  }
  bool Fail(std::string_view what, std::string* error) {
    *error = fmt::format("{} at byte {}", what, i_);
    return false;
  }

  std::string_view t_;
  size_t i_ = 0;
};

}  // namespace

std::string StatsToJson(const StatsSnapshot& stats) {
  std::string out = "{\n";
  out += fmt::format("  \"state\": {},\n", JsonQuote(stats.state));
  out += fmt::format("  \"time\": {},\n", JsonQuote(UtcNow()));
  out += fmt::format("  \"pid\": {},\n", stats.pid);
  out += fmt::format("  \"uptime_s\": {},\n", stats.uptime_s);
  out += fmt::format("  \"endpoint\": {},\n", JsonQuote(stats.endpoint));
  out += fmt::format("  \"media_url\": {}", JsonQuote(stats.media_url));
#define OUTPOSTD_FIELD(name) out += fmt::format(",\n  \"" #name "\": {}", stats.server.name);
  OUTPOSTD_SERVER_STATS_FIELDS(OUTPOSTD_FIELD)
#undef OUTPOSTD_FIELD
  // The transport's budgets (docs/protocol.md, Limits): what it holds for slow peers and from busy ones.
  out += fmt::format(",\n  \"transport_queued_bytes\": {}", stats.transport.queued_bytes);
  out += fmt::format(",\n  \"transport_held_bytes\": {}", stats.transport.held_bytes);
  out += fmt::format(",\n  \"transport_inbound_bytes\": {}", stats.transport.inbound_bytes);
  out += fmt::format(",\n  \"connections_paused\": {}", stats.transport.connections_paused);
  out += fmt::format(",\n  \"connections_dropped_slow\": {}", stats.transport.connections_dropped_slow);
  if (stats.has_media) {
    // The media server's own counters (--http), apart: some names (connections_refused) are the sync
    // server's too.
    out += ",\n  \"media\": {";
    const char* sep = "\n";
#define OUTPOSTD_MEDIA_FIELD(name)                                      \
  out += fmt::format("{}    \"" #name "\": {}", sep, stats.media.name); \
  sep = ",\n";
    OUTPOSTD_MEDIA_STATS_FIELDS(OUTPOSTD_MEDIA_FIELD)
#undef OUTPOSTD_MEDIA_FIELD
    out += "\n  }";
  }
  out += "\n}\n";
  return out;
}

bool ParseFlatJson(std::string_view text, std::vector<JsonMember>* members, std::string* error) {
  return FlatParser(text).Parse(members, error);
}

}  // namespace outpostd
