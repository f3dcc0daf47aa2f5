// Copyright 2026 The Outpost Authors.
#include "codec.h"

#include <cstring>

namespace outpost::codec {

Result<const wire::Frame*> DecodeFrame(std::string_view bytes, size_t frame_bytes_max) {
  if (bytes.size() > frame_bytes_max) {
    return Status::InvalidArgument("frame of " + std::to_string(bytes.size()) +
                                   " bytes exceeds frame_bytes_max " + std::to_string(frame_bytes_max));
  }
  if (bytes.size() < 8) return Status::Corruption("frame too short");
  flatbuffers::Verifier::Options opts;
  opts.max_depth = 16;
  opts.max_tables = 1'000'000;
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), opts);
  if (!wire::VerifyFrameBuffer(verifier)) return Status::Corruption("frame fails verification");
  const wire::Frame* frame = wire::GetFrame(bytes.data());
  if (frame->body_type() == wire::Body::NONE || frame->body() == nullptr) {
    return Status::InvalidArgument("frame has no body");
  }
  return frame;
}

wire::Uuid ToWire(const OpId& id) {
  uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | id.bytes[i];
  for (int i = 8; i < 16; ++i) lo = (lo << 8) | id.bytes[i];
  return wire::Uuid(hi, lo);
}

OpId FromWire(const wire::Uuid* w) {
  OpId id;
  if (w == nullptr) return id;
  uint64_t hi = w->hi(), lo = w->lo();
  for (int i = 7; i >= 0; --i, hi >>= 8) id.bytes[i] = static_cast<uint8_t>(hi);
  for (int i = 15; i >= 8; --i, lo >>= 8) id.bytes[i] = static_cast<uint8_t>(lo);
  return id;
}

OpFields FieldsOf(const wire::Op& op) {
  OpFields f;
  f.op_id = FromWire(op.op_id());
  f.stream = Str(op.stream());
  f.kind = Str(op.kind());
  f.payload = Bytes(op.payload());
  f.device = Str(op.device());
  f.user = Str(op.user());
  f.device_counter = op.device_counter();
  f.client_time_ms = op.client_time_ms();
  f.depends_on = FromWire(op.depends_on());
  f.skip = op.skip();
  f.seq = op.seq();
  f.retry = op.retry();
  if (const wire::BlobRef* blob = op.blob()) {
    f.has_blob = true;
    f.blob = {Str(blob->id()), Str(blob->content_type()), Str(blob->sha256()), blob->size()};
  }
  return f;
}

flatbuffers::Offset<wire::Op> BuildOp(flatbuffers::FlatBufferBuilder& b, const OpFields& f) {
  auto stream = b.CreateString(f.stream.data(), f.stream.size());
  auto kind = f.kind.empty() ? 0 : b.CreateString(f.kind.data(), f.kind.size());
  auto payload = f.payload.empty()
                     ? 0
                     : b.CreateVector(reinterpret_cast<const uint8_t*>(f.payload.data()), f.payload.size());
  auto device = f.device.empty() ? 0 : b.CreateString(f.device.data(), f.device.size());
  auto user = f.user.empty() ? 0 : b.CreateString(f.user.data(), f.user.size());
  flatbuffers::Offset<wire::BlobRef> blob = 0;
  if (f.has_blob) {
    auto id = b.CreateString(f.blob.id.data(), f.blob.id.size());
    auto type = b.CreateString(f.blob.content_type.data(), f.blob.content_type.size());
    auto sha = b.CreateString(f.blob.sha256.data(), f.blob.sha256.size());
    blob = wire::CreateBlobRef(b, id, f.blob.size, type, sha);
  }
  wire::OpBuilder ob(b);
  wire::Uuid id = ToWire(f.op_id);
  ob.add_op_id(&id);
  ob.add_stream(stream);
  if (!kind.IsNull()) ob.add_kind(kind);
  if (!payload.IsNull()) ob.add_payload(payload);
  if (!device.IsNull()) ob.add_device(device);
  if (!user.IsNull()) ob.add_user(user);
  ob.add_device_counter(f.device_counter);
  ob.add_client_time_ms(f.client_time_ms);
  wire::Uuid dep = ToWire(f.depends_on);
  if (!f.depends_on.IsNil()) ob.add_depends_on(&dep);
  if (f.skip) ob.add_skip(true);
  ob.add_seq(f.seq);
  if (f.retry) ob.add_retry(true);
  if (!blob.IsNull()) ob.add_blob(blob);
  return ob.Finish();
}

namespace {
// One builder per thread, cleared per use: a fresh builder per op was a malloc and a free on the hottest
// paths (merge, submit, apply).
flatbuffers::FlatBufferBuilder& ScratchBuilder() {
  thread_local flatbuffers::FlatBufferBuilder b(1024);
  b.Clear();
  return b;
}
}  // namespace

std::string EncodeStoredOp(const OpFields& f) {
  flatbuffers::FlatBufferBuilder& b = ScratchBuilder();
  b.Finish(BuildOp(b, f));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Result<const wire::Op*> DecodeStoredOp(std::string_view bytes) {
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!verifier.VerifyBuffer<wire::Op>(nullptr)) return Status::Corruption("stored op fails verification");
  return flatbuffers::GetRoot<wire::Op>(bytes.data());
}

std::string FinishFrame(flatbuffers::FlatBufferBuilder& b, wire::Body type, flatbuffers::Offset<void> body) {
  b.Finish(wire::CreateFrame(b, type, body));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

std::string EncodeError(Status::Code code, std::string_view message, bool fatal,
                        wire::SessionEnd session_end) {
  flatbuffers::FlatBufferBuilder b(128 + message.size());
  auto msg = b.CreateString(message.data(), message.size());
  auto body = wire::CreateError(b, static_cast<uint16_t>(code), msg, fatal, session_end);
  return FinishFrame(b, wire::Body::Error, body.Union());
}

std::string EncodeNotify(std::string_view stream, uint64_t high_seq) {
  flatbuffers::FlatBufferBuilder b(64 + stream.size());
  auto s = b.CreateString(stream.data(), stream.size());
  return FinishFrame(b, wire::Body::Notify, wire::CreateNotify(b, s, high_seq).Union());
}

Result<std::string> EncodeLiveNotify(std::string_view stream, uint64_t after_seq,
                                     const std::vector<std::string>& stored) {
  flatbuffers::FlatBufferBuilder b(256 + stream.size());
  std::vector<flatbuffers::Offset<wire::Op>> ops;
  ops.reserve(stored.size());
  for (const auto& bytes : stored) {
    OUTPOST_ASSIGN_OR_RETURN(const wire::Op* op, DecodeStoredOp(bytes));
    ops.push_back(BuildOp(b, FieldsOf(*op)));
  }
  auto s = b.CreateString(stream.data(), stream.size());
  auto ov = b.CreateVector(ops);
  return FinishFrame(b, wire::Body::Notify,
                     wire::CreateNotify(b, s, after_seq + stored.size(), after_seq, ov).Union());
}

std::string EncodeEmptyBatch(std::string_view stream, uint64_t after_seq) {
  flatbuffers::FlatBufferBuilder b(128 + stream.size());
  auto sv = b.CreateString(stream.data(), stream.size());
  auto body = wire::CreateBatch(b, sv, after_seq, b.CreateVector<flatbuffers::Offset<wire::Op>>({}),
                                after_seq, false);
  return FinishFrame(b, wire::Body::Batch, body.Union());
}

std::string EncodePull(std::string_view stream, uint64_t after_seq, uint32_t limit) {
  flatbuffers::FlatBufferBuilder b(64 + stream.size());
  auto s = b.CreateString(stream.data(), stream.size());
  return FinishFrame(b, wire::Body::Pull, wire::CreatePull(b, s, after_seq, limit).Union());
}

std::string EncodeWatermark(std::string_view stream, std::string_view user, std::string_view device,
                            WatermarkKind kind, uint64_t seq) {
  flatbuffers::FlatBufferBuilder b(128);
  auto s = b.CreateString(stream.data(), stream.size());
  auto u = user.empty() ? 0 : b.CreateString(user.data(), user.size());
  auto d = device.empty() ? 0 : b.CreateString(device.data(), device.size());
  auto body = wire::CreateWatermark(b, s, u, d, static_cast<wire::WatermarkKind>(kind), seq);
  return FinishFrame(b, wire::Body::Watermark, body.Union());
}

std::string EncodeRecord(const OpInfo& op, uint64_t local_seq) {
  flatbuffers::FlatBufferBuilder& b = ScratchBuilder();
  auto id = b.CreateVector(op.op_id.bytes.data(), 16);
  auto stream = b.CreateString(op.stream);
  auto kind = b.CreateString(op.kind);
  auto payload = b.CreateVector(reinterpret_cast<const uint8_t*>(op.payload.data()), op.payload.size());
  auto device = b.CreateString(op.device);
  auto user = b.CreateString(op.user);
  auto dep = op.depends_on.IsNil() ? 0 : b.CreateVector(op.depends_on.bytes.data(), 16);
  auto err = op.last_error.empty() ? 0 : b.CreateString(op.last_error);
  flatbuffers::Offset<record::Blob> blob = 0;
  if (op.has_attachment) {
    const Attachment& a = op.attachment;
    blob = record::CreateBlob(b, b.CreateString(a.blob_id), a.size, b.CreateString(a.content_type),
                              b.CreateString(a.sha256));
  }
  record::LocalOpBuilder rb(b);
  rb.add_op_id(id);
  rb.add_stream(stream);
  rb.add_kind(kind);
  rb.add_payload(payload);
  rb.add_device(device);
  rb.add_user(user);
  rb.add_device_counter(op.device_counter);
  rb.add_client_time_ms(op.client_time_ms);
  if (!dep.IsNull()) rb.add_depends_on(dep);
  rb.add_seq(op.seq);
  rb.add_local_seq(local_seq);
  rb.add_state(static_cast<record::State>(op.state));
  rb.add_created_at_ms(op.created_at_ms);
  rb.add_attempts(op.attempts);
  rb.add_next_attempt_at_ms(op.next_attempt_at_ms);
  if (!err.IsNull()) rb.add_last_error(err);
  rb.add_last_error_code(static_cast<uint16_t>(op.last_error_code));
  rb.add_own(op.own);
  if (!blob.IsNull()) rb.add_blob(blob);
  b.Finish(rb.Finish());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Status DecodeRecord(std::string_view bytes, OpInfo* op, uint64_t* local_seq) {
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!record::VerifyLocalOpBuffer(verifier)) return Status::Corruption("local op record fails verification");
  const record::LocalOp* r = record::GetLocalOp(bytes.data());
  if (r->op_id() == nullptr || r->op_id()->size() != 16)
    return Status::Corruption("local op record has no id");
  std::memcpy(op->op_id.bytes.data(), r->op_id()->data(), 16);
  op->stream.assign(Str(r->stream()));
  op->kind.assign(Str(r->kind()));
  op->payload.assign(Bytes(r->payload()));
  op->device.assign(Str(r->device()));
  op->user.assign(Str(r->user()));
  op->device_counter = r->device_counter();
  op->client_time_ms = r->client_time_ms();
  op->depends_on = OpId();
  if (r->depends_on() != nullptr && r->depends_on()->size() == 16) {
    std::memcpy(op->depends_on.bytes.data(), r->depends_on()->data(), 16);
  }
  op->seq = r->seq();
  op->state = static_cast<OpState>(r->state());
  if (op->state > OpState::kFailed) return Status::Corruption("local op record has a bad state");
  op->created_at_ms = r->created_at_ms();
  op->attempts = r->attempts();
  op->next_attempt_at_ms = r->next_attempt_at_ms();
  op->last_error.assign(Str(r->last_error()));
  op->last_error_code = static_cast<Status::Code>(r->last_error_code());
  op->own = r->own();
  op->has_attachment = r->blob() != nullptr;
  op->attachment = Attachment();
  if (const record::Blob* blob = r->blob()) {
    op->attachment.blob_id.assign(Str(blob->id()));
    op->attachment.size = blob->size();
    op->attachment.content_type.assign(Str(blob->content_type()));
    op->attachment.sha256.assign(Str(blob->sha256()));
  }
  if (local_seq) *local_seq = r->local_seq();
  return Status::OK();
}

std::string EncodeUpload(const UploadRecord& u) {
  flatbuffers::FlatBufferBuilder& b = ScratchBuilder();
  auto id = b.CreateVector(u.op_id.bytes.data(), 16);
  auto path = b.CreateString(u.path);
  auto sha = b.CreateString(u.sha256);
  auto type = b.CreateString(u.content_type);
  auto name = b.CreateString(u.filename);
  auto url = b.CreateString(u.upload_url);
  auto err = b.CreateString(u.last_error);
  record::UploadBuilder ub(b);
  ub.add_op_id(id);
  ub.add_path(path);
  ub.add_size(u.size);
  ub.add_sha256(sha);
  ub.add_content_type(type);
  ub.add_filename(name);
  ub.add_upload_url(url);
  ub.add_offset(u.offset);
  ub.add_state(u.failed ? record::UploadState::Failed : record::UploadState::Pending);
  ub.add_attempts(u.attempts);
  ub.add_next_attempt_at_ms(u.next_attempt_at_ms);
  ub.add_last_error(err);
  ub.add_last_error_code(static_cast<uint16_t>(u.last_error_code));
  ub.add_created_at_ms(u.created_at_ms);
  b.Finish(ub.Finish());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

Status DecodeUpload(std::string_view bytes, UploadRecord* u) {
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  if (!verifier.VerifyBuffer<record::Upload>(nullptr))
    return Status::Corruption("upload record fails verification");
  const record::Upload* r = flatbuffers::GetRoot<record::Upload>(bytes.data());
  if (r->op_id() == nullptr || r->op_id()->size() != 16) return Status::Corruption("upload record has no id");
  if (r->state() > record::UploadState::Failed) return Status::Corruption("upload record has a bad state");
  std::memcpy(u->op_id.bytes.data(), r->op_id()->data(), 16);
  u->path.assign(Str(r->path()));
  u->size = r->size();
  u->sha256.assign(Str(r->sha256()));
  u->content_type.assign(Str(r->content_type()));
  u->filename.assign(Str(r->filename()));
  u->upload_url.assign(Str(r->upload_url()));
  u->offset = r->offset();
  u->failed = r->state() == record::UploadState::Failed;
  u->attempts = r->attempts();
  u->next_attempt_at_ms = r->next_attempt_at_ms();
  u->last_error.assign(Str(r->last_error()));
  u->last_error_code = static_cast<Status::Code>(r->last_error_code());
  u->created_at_ms = r->created_at_ms();
  return Status::OK();
}

}  // namespace outpost::codec
