// Copyright 2026 The Outpost Authors.
//
// outpost-inspect device: the sections of a device store (docs/storage-format.md, "Device store"), read in
// one read transaction of a read-only open, so a live store (an app holding it open and writing) is shown
// as one consistent snapshot and is never changed.
#include <charconv>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/device_store.h"
#include "codec.h"
#include "inspect.h"
#include "keys.h"
#include "outpost/client.h"
#include "outpost/storage.h"

namespace outpost::inspect {
namespace {

constexpr uint64_t kViewLimitMax = 100'000;

std::string StateName(OpState state) {
  switch (state) {
    case OpState::kPending:
      return "pending";
    case OpState::kSent:
      return "sent";
    case OpState::kFailed:
      return "failed";
  }
  return "unknown";
}

std::string BlockName(uint8_t policy) { return policy == 1 ? "block" : policy == 2 ? "no-block" : "default"; }

// Opens `uri` read-only as a device store. A store written before the `uploads` space existed lacks it;
// nothing here reads it, so it is opened without.
Result<std::unique_ptr<Storage>> OpenDeviceStore(const std::string& uri) {
  StorageOptions options;
  options.read_only = true;
  options.spaces = DeviceStore::SpaceNames();
  Result<std::unique_ptr<Storage>> storage = OpenStorage(uri, options);
  if (!storage.ok() && storage.status().IsNotFound()) {
    options.spaces.resize(kUploads);
    storage = OpenStorage(uri, options);
  }
  if (!storage.ok() && storage.status().IsNotFound()) {
    return Status::FailedPrecondition("'" + uri + "' is not an Outpost device store (" +
                                      storage.status().message() +
                                      "); expected the store of an app's Client, e.g. outpost-chat's");
  }
  return storage;
}

Result<std::string> GetMeta(ReadTxn* txn, std::string_view key) {
  std::string value;
  Status st = txn->Get(kMeta, key, &value);
  if (st.IsNotFound()) return std::string();
  OUTPOST_RETURN_IF_ERROR(st);
  return value;
}

// The format check of Client::Open, without the stamping: a newer format is refused naming both numbers.
Status CheckFormat(ReadTxn* txn, const std::string& uri, Json* meta) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, GetMeta(txn, "format"));
  uint64_t format = 1;  // no key: written before formats were kept
  if (!text.empty()) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), format);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return Status::Corruption("device store '" + uri + "' has an unreadable format number");
    }
  }
  if (format > kDeviceStoreFormat) {
    return Status::FailedPrecondition("device store '" + uri + "' is format " + std::to_string(format) +
                                      ", newer than this build reads (" + std::to_string(kDeviceStoreFormat) +
                                      "): use an outpost-inspect as new as the app that wrote it");
  }
  (*meta)["format"] = format;
  return Status::OK();
}

Result<Json> Meta(ReadTxn* txn, const std::string& uri) {
  Json meta = Json::object();
  meta["store"] = uri;
  OUTPOST_RETURN_IF_ERROR(CheckFormat(txn, uri, &meta));
  OUTPOST_ASSIGN_OR_RETURN(meta["user"], GetMeta(txn, "user"));
  OUTPOST_ASSIGN_OR_RETURN(meta["device"], GetMeta(txn, "device"));
  OUTPOST_ASSIGN_OR_RETURN(std::string local_seq, GetMeta(txn, "local_seq"));
  meta["local_seq"] = local_seq.size() == 8 ? keys::GetBE64(local_seq) : 0;
  // Other meta keys a newer build may add, shown as they are.
  auto cursor = txn->NewCursor(kMeta);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    const std::string key(cursor->key());
    if (key == "format" || key == "user" || key == "device" || key == "local_seq") continue;
    meta[key] = std::string(cursor->value());
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return meta;
}

Result<Json> Streams(ReadTxn* txn) {
  Json rows = Json::array();
  auto cursor = txn->NewCursor(kStreams);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    keys::StreamMeta m;
    OUTPOST_RETURN_IF_ERROR(keys::DecodeStreamMeta(cursor->value(), &m));
    Json row;
    row["stream"] = std::string(cursor->key());
    row["cursor"] = m.cursor;
    row["high_seq"] = m.high_seq;
    row["read_seq"] = m.read_seq;
    row["unread"] = m.high_seq > m.read_seq ? m.high_seq - m.read_seq : 0;
    row["followed"] = m.followed != 0;
    row["outbox"] = m.outbox;
    row["failed"] = m.failed;
    row["next_counter"] = m.next_counter;
    row["block_on_failure"] = BlockName(m.block_on_failure);
    rows.push_back(std::move(row));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return rows;
}

Json OpRow(const OpInfo& op, uint64_t local_seq) {
  Json row;
  row["seq"] = op.seq;
  row["local_seq"] = local_seq;
  row["state"] = StateName(op.state);
  row["kind"] = op.kind;
  row["user"] = op.user;
  row["device"] = op.device;
  row["own"] = op.own;
  row["device_counter"] = op.device_counter;
  row["client_time_ms"] = op.client_time_ms;
  row["op_id"] = op.op_id.ToString();
  row["depends_on"] = op.depends_on.IsNil() ? "" : op.depends_on.ToString();
  row["attachment"] = op.has_attachment
                          ? op.attachment.content_type + " " + std::to_string(op.attachment.size) + " bytes"
                          : "";
  return row;
}

// Outbox fields of an own op (OpInfo's "Outbox fields").
void AddOutboxFields(const OpInfo& op, Json* row) {
  (*row)["created_at_ms"] = op.created_at_ms;
  (*row)["attempts"] = op.attempts;
  (*row)["next_attempt_at_ms"] = op.next_attempt_at_ms;
  (*row)["last_error_code"] =
      op.last_error_code == Status::Code::kOk ? "" : std::string(Status::CodeName(op.last_error_code));
  (*row)["last_error"] = op.last_error;
}

// The newest `limit` ops of `stream` after skipping `offset`: the unsent section (own ops not yet sent,
// newest local seq first), then the sent section (highest seq first), which is reverse key order.
Result<Json> View(ReadTxn* txn, const DeviceQuery& query) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(query.stream, 255));
  const std::string prefix = keys::StreamPrefix(query.stream);
  const std::string end = keys::PrefixEnd(prefix);
  Json rows = Json::array();
  auto cursor = txn->NewCursor(kView);
  if (end.empty()) {
    cursor->SeekToLast();
  } else {
    cursor->SeekForPrev(end);
    if (cursor->Valid() && cursor->key() == end) cursor->Prev();
  }
  uint64_t skipped = 0;
  for (; cursor->Valid() && cursor->key().starts_with(prefix) && rows.size() < query.limit; cursor->Prev()) {
    if (skipped < query.offset) {
      ++skipped;
      continue;
    }
    OpInfo op;
    uint64_t local_seq = 0;
    OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cursor->value(), &op, &local_seq));
    Json row = OpRow(op, local_seq);
    AddOutboxFields(op, &row);    // zeros for others' ops: every row has the same columns
    row["payload"] = op.payload;  // last: the widest column
    rows.push_back(std::move(row));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return rows;
}

std::string EntryKind(const OutboxEntry& entry) {
  switch (entry.kind) {
    case OutboxEntry::Kind::kOp:
      return "op";
    case OutboxEntry::Kind::kSkip:
      return "skip";
    case OutboxEntry::Kind::kRetry:
      return "retry";
  }
  return "unknown";
}

Result<Json> Outbox(ReadTxn* txn) {
  Json rows = Json::array();
  auto cursor = txn->NewCursor(kOutbox);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    keys::Reader reader(cursor->key());
    std::string_view stream;
    uint64_t counter = 0;
    if (!reader.Short(&stream) || !reader.BE64(&counter)) return Status::Corruption("unreadable outbox key");
    Json row;
    row["stream"] = std::string(stream);
    row["counter"] = counter;
    OutboxEntry entry;
    if (!OutboxEntry::Decode(cursor->value(), &entry)) return Status::Corruption("unreadable outbox entry");
    row["entry"] = EntryKind(entry);
    row["op_id"] = entry.op_id.ToString();
    StoredOp stored;
    Status st = entry.skip() ? Status::NotFound("skip") : DeviceStore::LoadOp(txn, entry.op_id, &stored);
    if (!st.ok() && !st.IsNotFound()) return st;
    const OpInfo& op = stored.op;
    row["status"] = st.ok() ? StateName(op.state) : "";
    row["kind"] = op.kind;
    AddOutboxFields(op, &row);
    row["payload"] = op.payload;
    rows.push_back(std::move(row));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return rows;
}

Result<Json> Failed(ReadTxn* txn) {
  Json rows = Json::array();
  auto cursor = txn->NewCursor(kFailed);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    if (cursor->key().size() != 8) return Status::Corruption("unreadable failed key");
    OUTPOST_ASSIGN_OR_RETURN(OpId id, OpId::FromBytes(cursor->value()));
    StoredOp stored;
    OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadOp(txn, id, &stored));
    const OpInfo& op = stored.op;
    Json row;
    row["local_seq"] = keys::GetBE64(cursor->key());
    row["stream"] = op.stream;
    row["kind"] = op.kind;
    row["op_id"] = id.ToString();
    row["device_counter"] = op.device_counter;
    AddOutboxFields(op, &row);
    row["payload"] = op.payload;
    rows.push_back(std::move(row));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return rows;
}

Result<Json> Watermarks(ReadTxn* txn) {
  Json rows = Json::array();
  auto cursor = txn->NewCursor(kWatermarks);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    keys::Reader reader(cursor->key());
    std::string_view stream, user, device;
    uint8_t kind = 0;
    if (!reader.Short(&stream) || !reader.Short(&user) || !reader.Short(&device) || !reader.Byte(&kind) ||
        cursor->value().size() != 8) {
      return Status::Corruption("unreadable watermark record");
    }
    Json row;
    row["stream"] = std::string(stream);
    row["user"] = std::string(user);
    row["device"] = std::string(device);
    row["kind"] = kind == static_cast<uint8_t>(WatermarkKind::kRead) ? "read" : "delivered";
    row["seq"] = keys::GetBE64(cursor->value());
    rows.push_back(std::move(row));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return rows;
}

uint64_t CountOf(ReadTxn* txn, SpaceId space) {
  uint64_t n = 0;
  auto cursor = txn->NewCursor(space);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++n;
  return n;
}

}  // namespace

Result<Json> InspectDevice(const DeviceQuery& query) {
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Storage> storage, OpenDeviceStore(query.store));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<ReadTxn> txn, storage->BeginRead());
  // Every section checks the format first: nothing of a newer store is read.
  OUTPOST_ASSIGN_OR_RETURN(Json meta, Meta(txn.get(), query.store));
  const std::string& section = query.section;
  if (section == "meta") return meta;
  if (section == "streams") return Streams(txn.get());
  if (section == "view") {
    if (query.limit == 0 || query.limit > kViewLimitMax) {
      return Status::InvalidArgument("--limit must be 1 to " + std::to_string(kViewLimitMax));
    }
    return View(txn.get(), query);
  }
  if (section == "outbox") return Outbox(txn.get());
  if (section == "failed") return Failed(txn.get());
  if (section == "watermarks") return Watermarks(txn.get());
  // summary: the metadata and the size of each part.
  meta["streams"] = CountOf(txn.get(), kStreams);
  meta["ops"] = CountOf(txn.get(), kView);
  meta["outbox"] = CountOf(txn.get(), kOutbox);
  meta["failed"] = CountOf(txn.get(), kFailed);
  meta["watermarks"] = CountOf(txn.get(), kWatermarks);
  return meta;
}

}  // namespace outpost::inspect
