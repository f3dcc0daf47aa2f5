// Copyright 2026 The Outpost Authors.
//
// FlatBuffers glue: verified decoding of frames and records, and builders for the frames both sides send.
// Nothing decoded from outside (a peer or the store) is read before its Verifier passed.
#ifndef OUTPOST_SRC_CODEC_H_
#define OUTPOST_SRC_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/client.h"
#include "outpost/ids.h"
#include "outpost/record_generated.h"
#include "outpost/result.h"
#include "outpost/wire_generated.h"

namespace outpost::codec {

// The versions this build speaks (docs/protocol.md "Versions"). A device sends kProtocolVersion; a server
// serves [kProtocolMin, kProtocolVersion] and answers each device in the device's own version.
// 3: incarnations and rebase (a server restored from a copy), Error.session_end, the Welcome's range.
// 2: Op.retry, Welcome's kind_bytes_max and stream_id_bytes_max, a device is (user, device).
constexpr uint32_t kProtocolVersion = 3;
constexpr uint32_t kProtocolMin = 2;

// Size check, then the Verifier. Corruption / InvalidArgument with a reason on failure.
Result<const wire::Frame*> DecodeFrame(std::string_view bytes, size_t frame_bytes_max);

inline std::string_view Str(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}
inline std::string_view Bytes(const flatbuffers::Vector<uint8_t>* v) {
  return v ? std::string_view(reinterpret_cast<const char*>(v->data()), v->size()) : std::string_view();
}
wire::Uuid ToWire(const OpId& id);
OpId FromWire(const wire::Uuid* id);  // nil when absent

// An op's attachment reference (wire.BlobRef), by reference.
struct BlobFields {
  std::string_view id, content_type, sha256;
  uint64_t size = 0;
};

// The fields of a wire Op, by reference.
struct OpFields {
  OpId op_id;
  std::string_view stream, kind, payload, device, user;
  uint64_t device_counter = 0;
  int64_t client_time_ms = 0;
  OpId depends_on;
  bool skip = false;
  uint64_t seq = 0;
  bool retry = false;  // Push only: a user's Retry
  bool has_blob = false;
  BlobFields blob;
};
OpFields FieldsOf(const wire::Op& op);
flatbuffers::Offset<wire::Op> BuildOp(flatbuffers::FlatBufferBuilder& b, const OpFields& f);
// A standalone Op buffer (root wire.Op) for the server store, and its verified reader.
std::string EncodeStoredOp(const OpFields& f);
Result<const wire::Op*> DecodeStoredOp(std::string_view bytes);

// Finishes `b` as a Frame with the given body.
std::string FinishFrame(flatbuffers::FlatBufferBuilder& b, wire::Body type, flatbuffers::Offset<void> body);
std::string EncodeError(Status::Code code, std::string_view message, bool fatal,
                        wire::SessionEnd session_end = wire::SessionEnd::None);
std::string EncodeNotify(std::string_view stream, uint64_t high_seq);
// A Notify carrying the ops after_seq+1 .. after_seq+stored.size() (= high_seq), each as EncodeStoredOp made
// it. Corruption if one of them fails verification.
Result<std::string> EncodeLiveNotify(std::string_view stream, uint64_t after_seq,
                                     const std::vector<std::string>& stored);
// A final page with no ops (high_seq = after_seq): the answer to a refused Pull.
std::string EncodeEmptyBatch(std::string_view stream, uint64_t after_seq);
std::string EncodePull(std::string_view stream, uint64_t after_seq, uint32_t limit);
std::string EncodeWatermark(std::string_view stream, std::string_view user, std::string_view device,
                            WatermarkKind kind, uint64_t seq);

// Local records (the device's view). The record keeps an attachment's reference (blob id, size, type,
// sha256), not its upload state (an UploadRecord).
std::string EncodeRecord(const OpInfo& op, uint64_t local_seq);
Status DecodeRecord(std::string_view bytes, OpInfo* op, uint64_t* local_seq);

// An own op's attachment upload (record.Upload; docs/storage-format.md).
struct UploadRecord {
  OpId op_id;
  std::string path, sha256, content_type, filename, upload_url;
  uint64_t size = 0, offset = 0;
  bool failed = false;
  uint32_t attempts = 0;
  int64_t next_attempt_at_ms = 0, created_at_ms = 0;
  std::string last_error;
  Status::Code last_error_code = Status::Code::kOk;
};
std::string EncodeUpload(const UploadRecord& u);
Status DecodeUpload(std::string_view bytes, UploadRecord* u);

}  // namespace outpost::codec

#endif  // OUTPOST_SRC_CODEC_H_
