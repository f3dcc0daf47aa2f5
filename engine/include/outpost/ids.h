// Copyright 2026 The Outpost Authors.
//
// OpId: a UUIDv7 made on the device before anything is sent (RFC 9562 §5.7, "method 1" counter):
//   48 bits unix_ts_ms | 4 bits version (7) | 12 bits counter | 2 bits variant (10) | 62 bits random.
// Ids from one generator strictly increase: ops made in the same millisecond take the next counter value,
// and a clock that steps back is ignored (the last timestamp is kept). Text form: the canonical 36-char
// lowercase "xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx".
#ifndef OUTPOST_IDS_H_
#define OUTPOST_IDS_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "outpost/env.h"
#include "outpost/export.h"
#include "outpost/result.h"

namespace outpost {

struct OUTPOST_EXPORT OpId {
  std::array<uint8_t, 16> bytes{};

  bool IsNil() const;
  int64_t TimestampMs() const;
  std::string ToString() const;
  // The 16 bytes as a string (storage keys, wire).
  std::string_view AsBytes() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  static Result<OpId> Parse(std::string_view text);
  // `raw` must be exactly 16 bytes.
  static Result<OpId> FromBytes(std::string_view raw);

  friend bool operator==(const OpId& a, const OpId& b) { return a.bytes == b.bytes; }
  friend bool operator!=(const OpId& a, const OpId& b) { return a.bytes != b.bytes; }
  friend bool operator<(const OpId& a, const OpId& b) { return a.bytes < b.bytes; }
};

// Makes strictly increasing UUIDv7 ids. Thread-safe.
class OUTPOST_EXPORT OpIdGenerator {
 public:
  explicit OpIdGenerator(Env* env) : env_(env) {}
  OpId Next();

 private:
  Env* env_;
  std::mutex mu_;
  int64_t last_ms_ = 0;
  uint16_t counter_ = 0;  // 12 bits used
};

struct OpIdHash {
  size_t operator()(const OpId& id) const {
    size_t h;
    static_assert(sizeof h <= 16);
    std::memcpy(&h, id.bytes.data() + 8, sizeof h);  // the random half
    return h;
  }
};

}  // namespace outpost

#endif  // OUTPOST_IDS_H_
