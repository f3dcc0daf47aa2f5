// Copyright 2026 The Outpost Authors.
//
// Fuzz target: codec::DecodeRecord, the decoder of the device store's LocalOp envelopes (schemas/record.fbs),
// which the engine reads back on every view, outbox and Get. Properties: never crashes or reads outside the
// bytes (the Verifier runs first); a record that decodes re-encodes to one that decodes to the same fields.
#include <cstddef>
#include <cstdint>
#include <string>

#include "codec.h"
#include "fuzz/targets/fuzz_check.h"

namespace {

bool SameOp(const outpost::OpInfo& a, const outpost::OpInfo& b) {
  return a.op_id == b.op_id && a.stream == b.stream && a.kind == b.kind && a.payload == b.payload &&
         a.device == b.device && a.user == b.user && a.device_counter == b.device_counter &&
         a.client_time_ms == b.client_time_ms && a.depends_on == b.depends_on && a.seq == b.seq &&
         a.state == b.state && a.created_at_ms == b.created_at_ms && a.attempts == b.attempts &&
         a.next_attempt_at_ms == b.next_attempt_at_ms && a.last_error == b.last_error &&
         a.last_error_code == b.last_error_code && a.own == b.own;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A store hands values back at any alignment; copy to an exact-size heap block so ASan sees overreads.
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  outpost::OpInfo op;
  uint64_t local_seq = 0;
  if (!outpost::codec::DecodeRecord(bytes, &op, &local_seq).ok()) return 0;
  FUZZ_CHECK(op.state <= outpost::OpState::kFailed, "a decoded record has a known state");
  const std::string again = outpost::codec::EncodeRecord(op, local_seq);
  outpost::OpInfo op2;
  uint64_t local_seq2 = 0;
  FUZZ_CHECK(outpost::codec::DecodeRecord(again, &op2, &local_seq2).ok(), "a re-encoded record decodes");
  FUZZ_CHECK(SameOp(op, op2) && local_seq == local_seq2, "decode/encode/decode keeps every field");
  return 0;
}
