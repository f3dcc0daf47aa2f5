// Copyright 2026 The Outpost Authors.
#include "keys.h"

#include <cstring>

namespace outpost::keys {

void PutBE64(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 8);
}

uint64_t GetBE64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void PutShort(std::string* out, std::string_view s) {
  out->push_back(static_cast<char>(static_cast<uint8_t>(s.size())));
  out->append(s);
}

bool Reader::BE64(uint64_t* v) {
  if (in_.size() < 8) return false;
  *v = GetBE64(in_);
  in_.remove_prefix(8);
  return true;
}

bool Reader::Short(std::string_view* s) {
  uint8_t n;
  if (!Byte(&n)) return false;
  return Bytes(n, s);
}

bool Reader::Byte(uint8_t* b) {
  if (in_.empty()) return false;
  *b = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return true;
}

bool Reader::Bytes(size_t n, std::string_view* s) {
  if (in_.size() < n) return false;
  *s = in_.substr(0, n);
  in_.remove_prefix(n);
  return true;
}

Status ValidateStream(std::string_view stream, size_t max_bytes) {
  if (stream.empty()) return Status::InvalidArgument("stream id is empty");
  if (stream.size() > max_bytes || stream.size() > 255) {
    return Status::InvalidArgument("stream id is " + std::to_string(stream.size()) + " bytes (max " +
                                   std::to_string(max_bytes < 255 ? max_bytes : 255) + ")");
  }
  if (stream.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("stream id contains a NUL byte");
  }
  return Status::OK();
}

std::string StreamPrefix(std::string_view stream) {
  std::string k;
  PutShort(&k, stream);
  return k;
}

std::string ViewKey(std::string_view stream, uint8_t section, uint64_t n) {
  std::string k;
  k.reserve(stream.size() + 10);
  PutShort(&k, stream);
  k.push_back(static_cast<char>(section));
  PutBE64(&k, n);
  return k;
}

std::string OutboxKey(std::string_view stream, uint64_t counter) {
  std::string k;
  k.reserve(stream.size() + 9);
  PutShort(&k, stream);
  PutBE64(&k, counter);
  return k;
}

std::string FailedKey(uint64_t local_seq) {
  std::string k;
  PutBE64(&k, local_seq);
  return k;
}

std::string WatermarkKey(std::string_view stream, std::string_view user, std::string_view device,
                         uint8_t kind) {
  std::string k;
  PutShort(&k, stream);
  PutShort(&k, user);
  PutShort(&k, device);
  k.push_back(static_cast<char>(kind));
  return k;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<uint8_t>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

namespace {
void PutLE64(std::string* out, uint64_t v) {
  char buf[8];
  std::memcpy(buf, &v, 8);
  out->append(buf, 8);
}
uint64_t GetLE64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
constexpr size_t kStreamMetaBytes = 6 * 8 + 2;
}  // namespace

std::string EncodeStreamMeta(const StreamMeta& m) {
  std::string out;
  out.reserve(kStreamMetaBytes);
  PutLE64(&out, m.cursor);
  PutLE64(&out, m.next_counter);
  PutLE64(&out, m.high_seq);
  PutLE64(&out, m.read_seq);
  PutLE64(&out, m.failed);
  PutLE64(&out, m.outbox);
  out.push_back(static_cast<char>(m.followed));
  out.push_back(static_cast<char>(m.block_on_failure));
  return out;
}

Status DecodeStreamMeta(std::string_view in, StreamMeta* m) {
  if (in.size() < kStreamMetaBytes) return Status::Corruption("stream meta record too short");
  const char* p = in.data();
  m->cursor = GetLE64(p);
  m->next_counter = GetLE64(p + 8);
  m->high_seq = GetLE64(p + 16);
  m->read_seq = GetLE64(p + 24);
  m->failed = GetLE64(p + 32);
  m->outbox = GetLE64(p + 40);
  m->followed = static_cast<uint8_t>(p[48]);
  m->block_on_failure = static_cast<uint8_t>(p[49]);
  return Status::OK();
}

std::string ServerOpKey(std::string_view stream, uint64_t seq) { return OutboxKey(stream, seq); }

std::string DevicePrefix(std::string_view user, std::string_view device) {
  std::string k;
  PutShort(&k, user);
  PutShort(&k, device);
  return k;
}

std::string DeviceCounterKey(std::string_view user, std::string_view device, std::string_view stream) {
  std::string k = DevicePrefix(user, device);
  PutShort(&k, stream);
  return k;
}

std::string EncodeDedupe(const DedupeRecord& r) {
  std::string out;
  out.push_back(static_cast<char>(r.code));
  PutBE64(&out, r.seq);
  PutBE64(&out, r.counter);
  out.push_back(static_cast<char>(r.error_code >> 8));
  out.push_back(static_cast<char>(r.error_code & 0xff));
  PutShort(&out, r.stream);
  PutShort(&out, r.device);
  PutShort(&out, r.user);
  out.append(r.message);
  return out;
}

Status DecodeDedupe(std::string_view in, DedupeRecord* r) {
  Reader rd(in);
  uint8_t hi, lo;
  std::string_view stream, device, user;
  if (!rd.Byte(&r->code) || !rd.BE64(&r->seq) || !rd.BE64(&r->counter) || !rd.Byte(&hi) || !rd.Byte(&lo) ||
      !rd.Short(&stream) || !rd.Short(&device) || !rd.Short(&user)) {
    return Status::Corruption("dedupe record truncated");
  }
  r->error_code = static_cast<uint16_t>((hi << 8) | lo);
  r->stream.assign(stream);
  r->device.assign(device);
  r->user.assign(user);
  r->message.assign(rd.Rest());
  return Status::OK();
}

}  // namespace outpost::keys
