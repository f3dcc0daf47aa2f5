// Copyright 2026 The Outpost Authors.
#include "outpost/ids.h"

namespace outpost {
namespace {

constexpr size_t kTextLength = 36;
constexpr size_t kDashPositions[] = {8, 13, 18, 23};
constexpr uint16_t kCounterMax = 0x0FFF;
// A new millisecond starts its counter below half the range, so at least 2048 ids fit in it before the
// generator has to borrow the next millisecond, while the start still hides how many ids a device makes.
constexpr uint64_t kCounterStartBound = 2048;
constexpr int64_t kTimestampMax = (int64_t{1} << 48) - 1;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDashPosition(size_t i) {
  for (size_t d : kDashPositions) {
    if (i == d) return true;
  }
  return false;
}

}  // namespace

bool OpId::IsNil() const {
  for (uint8_t b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

int64_t OpId::TimestampMs() const {
  int64_t ms = 0;
  for (int i = 0; i < 6; ++i) ms = (ms << 8) | bytes[i];
  return ms;
}

std::string OpId::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(kTextLength);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0F]);
  }
  return out;
}

// Accepts any well-formed UUID, not only version 7: ids are opaque once made, and a peer's id is checked
// for shape here, not for how it was generated.
Result<OpId> OpId::Parse(std::string_view text) {
  if (text.size() != kTextLength) {
    return Status::InvalidArgument(
        "op id must be 36 characters (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got " +
        std::to_string(text.size()));
  }
  OpId id;
  size_t nibble = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (IsDashPosition(i)) {
      if (text[i] != '-') {
        return Status::InvalidArgument("op id needs '-' at position " + std::to_string(i) + ": \"" +
                                       std::string(text) + "\"");
      }
      continue;
    }
    int v = HexValue(text[i]);
    if (v < 0) {
      return Status::InvalidArgument("op id has a non-hex character at position " + std::to_string(i) +
                                     ": \"" + std::string(text) + "\"");
    }
    uint8_t& b = id.bytes[nibble / 2];
    b = static_cast<uint8_t>(nibble % 2 == 0 ? v << 4 : b | v);
    ++nibble;
  }
  return id;
}

Result<OpId> OpId::FromBytes(std::string_view raw) {
  OpId id;
  if (raw.size() != id.bytes.size()) {
    return Status::InvalidArgument("op id must be 16 bytes, got " + std::to_string(raw.size()));
  }
  std::memcpy(id.bytes.data(), raw.data(), raw.size());
  return id;
}

OpId OpIdGenerator::Next() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = env_->NowMs();
  if (now > kTimestampMax) now = kTimestampMax;  // year 10889: keep the layout rather than wrap
  if (now > last_ms_) {
    last_ms_ = now;
    counter_ = static_cast<uint16_t>(env_->Uniform(kCounterStartBound));
  } else if (counter_ < kCounterMax) {
    // Same millisecond, or the clock stepped back: stay on last_ms_ so ids keep increasing.
    ++counter_;
  } else {
    // The counter is spent: borrow the next millisecond (RFC 9562 §6.2 allows running ahead of the clock);
    // a real clock catches up within a millisecond or two.
    ++last_ms_;
    counter_ = static_cast<uint16_t>(env_->Uniform(kCounterStartBound));
  }

  uint64_t random = env_->RandomU64();
  OpId id;
  auto ms = static_cast<uint64_t>(last_ms_);
  for (int i = 0; i < 6; ++i) id.bytes[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  id.bytes[6] = static_cast<uint8_t>(0x70 | (counter_ >> 8));  // version 7
  id.bytes[7] = static_cast<uint8_t>(counter_ & 0xFF);
  id.bytes[8] = static_cast<uint8_t>(0x80 | (random & 0x3F));  // variant 10
  random >>= 6;
  for (int i = 9; i < 16; ++i) {
    id.bytes[i] = static_cast<uint8_t>(random & 0xFF);
    random >>= 8;
  }
  return id;
}

}  // namespace outpost
