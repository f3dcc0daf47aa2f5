// Copyright 2026 The Outpost Authors.
//
// Fuzz target: the other values the engine decodes from a store (engine/src/keys.h, codec.h). The first
// byte picks the decoder, the rest is the stored value:
//   0  codec::DecodeStoredOp   the server's op records (root wire.Op)
//   1  keys::DecodeDedupe      the server's dedupe records
//   2  keys::DecodeStreamMeta  the device's per-stream state
//   3  keys::Reader            the key reader (Short, BE64, Byte, Bytes) on a stored key
// Properties: never crashes; whatever decodes re-encodes to a value that decodes the same.
#include <cstddef>
#include <cstdint>
#include <string>

#include "codec.h"
#include "fuzz/targets/fuzz_check.h"
#include "keys.h"

namespace {

using outpost::codec::DecodeStoredOp;
using outpost::codec::EncodeStoredOp;
using outpost::codec::FieldsOf;

void StoredOp(const std::string& bytes) {
  auto op = DecodeStoredOp(bytes);
  if (!op.ok()) return;
  const outpost::codec::OpFields f = FieldsOf(**op);
  const std::string again = EncodeStoredOp(f);
  auto op2 = DecodeStoredOp(again);
  FUZZ_CHECK(op2.ok(), "a re-encoded stored op decodes");
  const outpost::codec::OpFields g = FieldsOf(**op2);
  FUZZ_CHECK(f.op_id == g.op_id && f.stream == g.stream && f.kind == g.kind && f.payload == g.payload &&
                 f.device == g.device && f.user == g.user && f.device_counter == g.device_counter &&
                 f.client_time_ms == g.client_time_ms && f.depends_on == g.depends_on && f.skip == g.skip &&
                 f.seq == g.seq,
             "stored op round trip");
}

void Dedupe(const std::string& bytes) {
  outpost::keys::DedupeRecord r;
  if (!outpost::keys::DecodeDedupe(bytes, &r).ok()) return;
  if (r.stream.size() > 255 || r.device.size() > 255) return;  // EncodeDedupe's callers validate these
  outpost::keys::DedupeRecord r2;
  FUZZ_CHECK(outpost::keys::DecodeDedupe(outpost::keys::EncodeDedupe(r), &r2).ok(), "re-encoded dedupe");
  FUZZ_CHECK(r.code == r2.code && r.seq == r2.seq && r.counter == r2.counter &&
                 r.error_code == r2.error_code && r.stream == r2.stream && r.device == r2.device &&
                 r.message == r2.message,
             "dedupe round trip");
}

void StreamMeta(const std::string& bytes) {
  outpost::keys::StreamMeta m;
  if (!outpost::keys::DecodeStreamMeta(bytes, &m).ok()) return;
  outpost::keys::StreamMeta m2;
  FUZZ_CHECK(outpost::keys::DecodeStreamMeta(outpost::keys::EncodeStreamMeta(m), &m2).ok(),
             "re-encoded meta");
  FUZZ_CHECK(m.cursor == m2.cursor && m.next_counter == m2.next_counter && m.high_seq == m2.high_seq &&
                 m.read_seq == m2.read_seq && m.failed == m2.failed && m.outbox == m2.outbox &&
                 m.followed == m2.followed && m.block_on_failure == m2.block_on_failure,
             "stream meta round trip");
}

void KeyReader(const std::string& bytes) {
  outpost::keys::Reader rd(bytes);
  size_t consumed = 0;
  for (size_t step = 0; !rd.empty() && step < 64; ++step) {
    const size_t before = rd.Rest().size();
    std::string_view s;
    uint64_t v;
    uint8_t b;
    bool ok = false;
    switch (step % 3) {
      case 0:
        ok = rd.Short(&s);
        break;
      case 1:
        ok = rd.BE64(&v);
        break;
      default:
        ok = rd.Byte(&b) && rd.Bytes(b % 17, &s);
        break;
    }
    FUZZ_CHECK(rd.Rest().size() <= before, "the reader never grows");
    consumed += before - rd.Rest().size();
    if (!ok) break;
  }
  FUZZ_CHECK(consumed + rd.Rest().size() == bytes.size(), "the reader stays within the key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      StoredOp(bytes);
      break;
    case 1:
      Dedupe(bytes);
      break;
    case 2:
      StreamMeta(bytes);
      break;
    default:
      KeyReader(bytes);
      break;
  }
  return 0;
}
