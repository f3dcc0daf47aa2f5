// Copyright 2026 The Outpost Authors.
//
// Byte encodings of storage keys and small values. Every key that starts with a stream id starts with
// its length (1 byte, streams are 1..255 bytes) so that one stream's keys never interleave another's.
// docs/storage-format.md has the full layout.
#ifndef OUTPOST_SRC_KEYS_H_
#define OUTPOST_SRC_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "outpost/server_store.h"
#include "outpost/status.h"

namespace outpost::keys {

void PutBE64(std::string* out, uint64_t v);
uint64_t GetBE64(std::string_view in);  // in.size() >= 8
// Appends len (1 byte) + bytes. `s` must be 1..255 bytes (checked by the callers' validation).
void PutShort(std::string* out, std::string_view s);

// A bounds-checked reader for the encodings above.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool BE64(uint64_t* v);
  bool Short(std::string_view* s);
  bool Byte(uint8_t* b);
  bool Bytes(size_t n, std::string_view* s);
  bool empty() const { return in_.empty(); }
  std::string_view Rest() const { return in_; }

 private:
  std::string_view in_;
};

// Checks a stream id: 1..max bytes, no NUL.
Status ValidateStream(std::string_view stream, size_t max_bytes);

// ---- Device store ----
// view:    Short(stream) + section(1: 0 sent, 1 own unsent) + BE64(seq or local_seq)  -> LocalOp record
// opindex: op_id(16)                                                                   -> view key
// outbox:  Short(stream) + BE64(counter)                                               -> flags(1) +
// op_id(16) failed:  BE64(local_seq)                                                             -> op_id(16)
// streams: stream                                                                      -> StreamMeta
// wm:      Short(stream) + Short(user) + Short(device) + kind(1)                       -> BE64(seq)
// meta:    name                                                                        -> value
constexpr uint8_t kSectionSent = 0;
constexpr uint8_t kSectionUnsent = 1;
std::string StreamPrefix(std::string_view stream);
std::string ViewKey(std::string_view stream, uint8_t section, uint64_t n);
std::string OutboxKey(std::string_view stream, uint64_t counter);
std::string FailedKey(uint64_t local_seq);
std::string WatermarkKey(std::string_view stream, std::string_view user, std::string_view device,
                         uint8_t kind);
// The first key after every key that starts with `prefix` (for reverse scans); empty if none exists.
std::string PrefixEnd(std::string_view prefix);

// Outbox entry values (kind byte + op id) are read and written by OutboxEntry (client/device_store.h) only.

// Per-stream state of a device, fixed-size little encoding (grows by appending fields).
struct StreamMeta {
  uint64_t cursor = 0;        // highest seq merged
  uint64_t next_counter = 1;  // device_counter for the next own op
  uint64_t high_seq = 0;      // highest seq the server announced
  uint64_t read_seq = 0;      // what the user has seen (local)
  uint64_t failed = 0;        // own ops failed in this stream
  uint64_t outbox = 0;        // outbox entries in this stream
  uint8_t followed = 0;
  uint8_t block_on_failure = 0;  // 0 default, 1 block, 2 don't block
};
std::string EncodeStreamMeta(const StreamMeta& m);
Status DecodeStreamMeta(std::string_view in, StreamMeta* m);

// ---- Server store (format kServerFormat) ----
// s_ops:    Short(stream) + BE64(seq)                 -> Op FlatBuffer (root wire.Op)
// s_dedupe: op_id(16)                                 -> DedupeRecord
// s_devctr: Short(user) + Short(device) + Short(stream) -> BE64(last counter)
// s_streams: stream                                   -> BE64(high seq)
// s_wm:     Short(stream) + Short(user) + Short(device) + kind(1) -> BE64(seq)
// s_members: Short(stream) + Short(user)              -> ""
// s_meta:   "format"                                  -> decimal format number
// s_incarnations: BE64(n)                             -> 16-byte incarnation id (n = 0: the store's first)
// s_bases:  BE64(n) + stream                          -> BE64(the stream's high seq when incarnation n began)
// Format 1 (before 2026-12) keyed s_devctr by Short(device) + Short(stream) and had no user in
// DedupeRecord and no s_meta: one user could use another's device counters. Format 3 (issue 19) adds
// s_incarnations and s_bases; a format 2 store gets its first incarnation at open.
constexpr uint32_t kServerFormat = 3;
std::string ServerOpKey(std::string_view stream, uint64_t seq);
// The prefix of every counter of one device (user, device), then the key of one stream's counter.
std::string DevicePrefix(std::string_view user, std::string_view device);
std::string DeviceCounterKey(std::string_view user, std::string_view device, std::string_view stream);

// The dedupe record: what the server remembers of an op id (outpost/server_store.h).
using DedupeRecord = OpRecord;
std::string EncodeDedupe(const DedupeRecord& r);
Status DecodeDedupe(std::string_view in, DedupeRecord* r);

}  // namespace outpost::keys

#endif  // OUTPOST_SRC_KEYS_H_
