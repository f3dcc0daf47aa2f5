// Copyright 2026 The Outpost Authors.
#include "client/device_store.h"

#include "base/check.h"
#include "codec.h"
#include "outpost/membership.h"

namespace outpost {

namespace {
constexpr size_t kEntryBytes = 1 + 16;  // kind + op id
}  // namespace

Change OpChange(Change::Kind kind, const OpInfo& op) {
  Change c;
  c.kind = kind;
  c.stream = op.stream;
  c.op_id = op.op_id;
  c.op_kind = op.kind;
  c.state = op.state;
  c.own = op.own;
  c.seq = op.state == OpState::kSent ? op.seq : 0;
  return c;
}

void Tally::NoteMembers(const OpInfo& op, uint64_t local_seq, bool gone) {
  if (op.kind != kMembersKind) return;
  MembersNote n;
  n.stream = op.stream;
  n.op_id = op.op_id;
  if (gone || op.state == OpState::kFailed) {
    n.what = MembersNote::What::kForget;
  } else if (op.state == OpState::kSent) {
    n.what = MembersNote::What::kSent;
    n.order = op.seq;
    n.names = DecodeMembers(op.payload);
  } else {
    n.what = MembersNote::What::kPending;
    n.order = local_seq;
    n.names = DecodeMembers(op.payload);
  }
  members.push_back(std::move(n));
}

std::string OutboxEntry::Encode() const {
  std::string value(1, static_cast<char>(kind));
  value.append(op_id.AsBytes());
  return value;
}

bool OutboxEntry::Decode(std::string_view value, OutboxEntry* entry) {
  if (value.size() != kEntryBytes || static_cast<uint8_t>(value[0]) > static_cast<uint8_t>(Kind::kRetry)) {
    return false;
  }
  auto id = OpId::FromBytes(value.substr(1));
  if (!id.ok()) return false;
  entry->kind = static_cast<Kind>(value[0]);
  entry->op_id = *id;
  return true;
}

const std::vector<std::string>& DeviceStore::SpaceNames() {
  static const std::vector<std::string> names = {"meta",   "streams",    "view",    "opindex", "outbox",
                                                 "failed", "watermarks", "uploads", "lost"};
  return names;
}

const StoreFormat& DeviceStore::Format() {
  static const StoreFormat format = {
      .what = "device store",
      .meta_space = "meta",
      .current = kDeviceStoreFormat,
      .oldest = 1,
      // No format key: a new store (no owner yet: 0) or one written before formats were kept, which is
      // format 1.
      .unstamped = [](ReadTxn& txn, SpaceId meta) -> Result<uint32_t> {
        std::string v;
        Status st = txn.Get(meta, "device", &v);
        if (st.IsNotFound()) return 0u;
        OUTPOST_RETURN_IF_ERROR(st);
        return 1u;
      },
      .newer_hint = "upgrade Outpost",
      .older_hint = "open it with an earlier Outpost first, which upgrades it",
  };
  return format;
}

// Format 1 is the only one so far: no upgrades yet. A step from N goes here when kDeviceStoreFormat moves
// from N to N + 1, and a golden store of format N (tests/golden/) proves it.
const std::vector<MigrationStep>& DeviceStore::Migrations() {
  static const std::vector<MigrationStep> steps;
  return steps;
}

Status DeviceStore::LoadUpload(ReadTxn* txn, const OpId& id, codec::UploadRecord* out) {
  std::string v;
  OUTPOST_RETURN_IF_ERROR(txn->Get(kUploads, id.AsBytes(), &v));
  return codec::DecodeUpload(v, out);
}

Status DeviceStore::PutUpload(WriteTxn* txn, const codec::UploadRecord& u) {
  return txn->Put(kUploads, u.op_id.AsBytes(), codec::EncodeUpload(u));
}

Status DeviceStore::DeleteUpload(WriteTxn* txn, const OpId& id) {
  return txn->Delete(kUploads, id.AsBytes());
}

Status DeviceStore::LoadMeta(ReadTxn* txn, std::string_view stream, keys::StreamMeta* meta) {
  std::string v;
  Status st = txn->Get(kStreams, stream, &v);
  if (st.IsNotFound()) {
    *meta = keys::StreamMeta();
    return Status::OK();
  }
  OUTPOST_RETURN_IF_ERROR(st);
  return keys::DecodeStreamMeta(v, meta);
}

Status DeviceStore::PutMeta(WriteTxn* txn, std::string_view stream, const keys::StreamMeta& meta) {
  return txn->Put(kStreams, stream, keys::EncodeStreamMeta(meta));
}

Status DeviceStore::LoadOp(ReadTxn* txn, const OpId& id, StoredOp* out) {
  OUTPOST_RETURN_IF_ERROR(txn->Get(kOpIndex, id.AsBytes(), &out->view_key));
  std::string v;
  Status st = txn->Get(kView, out->view_key, &v);
  if (st.IsNotFound()) return Status::Corruption("op index points at a missing view record");
  OUTPOST_RETURN_IF_ERROR(st);
  OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(v, &out->op, &out->local_seq));
  out->op.position = out->view_key;
  return Status::OK();
}

Status DeviceStore::PutOp(WriteTxn* txn, const StoredOp& s) {
  OUTPOST_RETURN_IF_ERROR(PutRecord(txn, s.view_key, s.op, s.local_seq));
  return txn->Put(kOpIndex, s.op.op_id.AsBytes(), s.view_key);
}

Status DeviceStore::PutRecord(WriteTxn* txn, std::string_view view_key, const OpInfo& op,
                              uint64_t local_seq) {
  return txn->Put(kView, view_key, codec::EncodeRecord(op, local_seq));
}

Status DeviceStore::GetEntry(ReadTxn* txn, std::string_view stream, uint64_t counter, OutboxEntry* entry) {
  std::string v;
  OUTPOST_RETURN_IF_ERROR(txn->Get(kOutbox, keys::OutboxKey(stream, counter), &v));
  if (!OutboxEntry::Decode(v, entry)) return Status::NotFound("unreadable outbox entry");
  return Status::OK();
}

Status DeviceStore::PutEntry(WriteTxn* txn, std::string_view stream, uint64_t counter,
                             const OutboxEntry& entry) {
  return txn->Put(kOutbox, keys::OutboxKey(stream, counter), entry.Encode());
}

Status DeviceStore::DeleteEntry(WriteTxn* txn, std::string_view stream, uint64_t counter) {
  return txn->Delete(kOutbox, keys::OutboxKey(stream, counter));
}

void DeviceStore::TakeOutbox(keys::StreamMeta* meta, uint64_t n) {
  OUTPOST_DCHECK(meta->outbox >= n);
  meta->outbox = meta->outbox >= n ? meta->outbox - n : 0;
}

void DeviceStore::TakeFailed(keys::StreamMeta* meta) {
  OUTPOST_DCHECK(meta->failed > 0);
  if (meta->failed > 0) --meta->failed;
}

Status DeviceStore::SettleOp(WriteTxn* txn, StoredOp& s, uint64_t seq, keys::StreamMeta* meta,
                             std::vector<Change>* changes, Tally* tally, bool* refused,
                             uint64_t applied_counter) {
  OpInfo& op = s.op;
  if (op.state == OpState::kSent) return Status::OK();
  if (op.state == OpState::kFailed) {
    // A failed op still holding its counter was rejected by the server (MarkFailed releases the counter of
    // every local give-up): that verdict is final, whatever a later answer claims (DESIGN.md invariant 7).
    // Applied under another counter, it is a later attempt's: the user retried it (a power loss undid the
    // Retry here, not on the server).
    if (op.device_counter != 0 && (applied_counter == 0 || applied_counter == op.device_counter)) {
      if (refused) *refused = true;
      return Status::OK();
    }
    // The server applied an op we had given up on (an exhausted op whose skip came too late): its word wins.
    OUTPOST_RETURN_IF_ERROR(txn->Delete(kFailed, keys::FailedKey(s.local_seq)));
    TakeFailed(meta);
    --tally->failed;
  } else {
    tally->pending_gone.push_back({op.stream, op.created_at_ms});
  }
  OUTPOST_RETURN_IF_ERROR(txn->Delete(kView, s.view_key));
  op.state = OpState::kSent;
  op.seq = seq;
  if (applied_counter != 0) op.device_counter = applied_counter;
  op.last_error.clear();
  op.last_error_code = Status::Code::kOk;
  s.view_key = keys::ViewKey(op.stream, keys::kSectionSent, seq);
  OUTPOST_RETURN_IF_ERROR(PutOp(txn, s));
  changes->push_back(OpChange(Change::Kind::kUpdated, op));
  tally->NoteMembers(op, s.local_seq);
  return Status::OK();
}

Status DeviceStore::MarkFailed(WriteTxn* txn, StoredOp& s, const Status& why, bool release_counter,
                               keys::StreamMeta* meta, Tally* tally) {
  OpInfo& op = s.op;
  if (op.state == OpState::kPending) tally->pending_gone.push_back({op.stream, op.created_at_ms});
  if (release_counter) {
    OUTPOST_RETURN_IF_ERROR(
        PutEntry(txn, op.stream, op.device_counter, {OutboxEntry::Kind::kSkip, op.op_id}));
    op.device_counter = 0;
  }
  op.state = OpState::kFailed;
  op.last_error = why.message();
  op.last_error_code = why.code();
  OUTPOST_RETURN_IF_ERROR(PutOp(txn, s));
  OUTPOST_RETURN_IF_ERROR(txn->Put(kFailed, keys::FailedKey(s.local_seq), op.op_id.AsBytes()));
  ++meta->failed;
  ++tally->failed;
  tally->NoteMembers(op, s.local_seq);
  return Status::OK();
}

void Tally::Add(Tally&& other) {
  outbox += other.outbox;
  failed += other.failed;
  lost += other.lost;
  for (auto& p : other.pending_added) pending_added.push_back(std::move(p));
  for (auto& p : other.pending_gone) pending_gone.push_back(std::move(p));
  for (auto& m : other.members) members.push_back(std::move(m));
}

void DeviceStore::InitGauges(int64_t outbox, int64_t failed, std::set<std::string> pending_streams,
                             int64_t lost) {
  outbox_depth_ = outbox;
  failed_count_ = failed;
  lost_count_ = lost;
  MutexLock lock(&pending_mu_);
  oldest_.clear();
  stale_.clear();
  stale_.insert(pending_streams.begin(), pending_streams.end());
}

Status DeviceStore::Commit(WriteTxn* txn, const Tally& tally, const std::vector<Change>& changes) {
  MutexLock lock(&commit_mu_);
  OUTPOST_RETURN_IF_ERROR(txn->Commit());
  Apply(tally);
  observers_->Emit(changes);
  return Status::OK();
}

void DeviceStore::Apply(const Tally& tally) {
  if (!tally.members.empty()) ApplyMembers(tally.members);
  outbox_depth_ += tally.outbox;
  failed_count_ += tally.failed;
  lost_count_ += tally.lost;
  OUTPOST_DCHECK(outbox_depth_.load() >= 0 && failed_count_.load() >= 0);
  if (tally.pending_added.empty() && tally.pending_gone.empty()) return;
  MutexLock lock(&pending_mu_);
  for (const auto& p : tally.pending_added) {
    if (stale_.contains(p.stream)) continue;  // found again when asked
    auto [it, fresh] = oldest_.try_emplace(p.stream, p.created_at_ms);
    if (!fresh) it->second = std::min(it->second, p.created_at_ms);
  }
  for (const auto& p : tally.pending_gone) {
    auto it = oldest_.find(p.stream);
    if (it != oldest_.end() && p.created_at_ms <= it->second) {
      oldest_.erase(it);
      stale_.insert(p.stream);
    }
  }
}

Result<int64_t> DeviceStore::oldest_pending_ms() {
  MutexLock lock(&pending_mu_);
  if (!stale_.empty()) {
    // A commit that lands meanwhile applies its changes after this (it waits for pending_mu_), on top of
    // what this snapshot says; each change is idempotent, so seeing a commit twice is harmless.
    OUTPOST_ASSIGN_OR_RETURN(auto txn, BeginRead());
    for (auto it = stale_.begin(); it != stale_.end(); it = stale_.erase(it)) {
      const std::string prefix = keys::ViewKey(*it, keys::kSectionUnsent, 0).substr(0, it->size() + 2);
      auto cur = txn->NewCursor(kView);
      for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
        OpInfo op;
        OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cur->value(), &op, nullptr));
        if (op.state != OpState::kPending) continue;  // failed: waits for Retry or Discard
        oldest_[*it] = op.created_at_ms;
        break;
      }
      OUTPOST_RETURN_IF_ERROR(cur->status());
    }
  }
  int64_t oldest = 0;
  for (const auto& [stream, t] : oldest_) oldest = oldest == 0 ? t : std::min(oldest, t);
  return oldest;
}

void DeviceStore::ApplyMembers(const std::vector<MembersNote>& notes) {
  MutexLock lock(&members_mu_);
  for (const MembersNote& n : notes) {
    auto it = members_.find(n.stream);
    if (it == members_.end()) continue;  // not asked for yet: a scan finds it
    StreamMembers& m = it->second;
    switch (n.what) {
      case MembersNote::What::kSent:
        if (!m.has_sent || n.order > m.sent_seq) {
          m.has_sent = true;
          m.sent_seq = n.order;
          m.sent = n.names;
        }
        // Sent now: a sent members op wins over every pending one from now on.
        if (m.has_pending && m.pending_id == n.op_id) {
          m.has_pending = false;
          m.pending.clear();
        }
        break;
      case MembersNote::What::kPending:
        if (!m.has_pending || n.order > m.pending_local_seq) {
          m.has_pending = true;
          m.pending_local_seq = n.order;
          m.pending_id = n.op_id;
          m.pending = n.names;
        }
        break;
      case MembersNote::What::kReset:
        members_.erase(it);
        break;
      case MembersNote::What::kForget:
        // The latest pending one went: an earlier pending one may count now, which only a scan finds. Any
        // other pending one is older than the one kept and changes nothing.
        if (m.has_pending && m.pending_id == n.op_id) members_.erase(it);
        break;
    }
  }
}

Status DeviceStore::ScanMembers(std::string_view stream, StreamMembers* out) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, BeginRead());
  const std::string prefix = keys::StreamPrefix(stream);
  auto cur = txn->NewCursor(kView);
  // Backwards through the unsent section (this device's latest pending members op), then through the sent
  // section until its latest members op.
  for (uint8_t section : {keys::kSectionUnsent, keys::kSectionSent}) {
    std::string start = prefix;
    start.push_back(static_cast<char>(section));
    std::string end = prefix;
    end.push_back(static_cast<char>(section + 1));
    cur->SeekForPrev(end);  // no key equals `end`: the section's keys are longer
    for (; cur->Valid() && cur->key().starts_with(start); cur->Prev()) {
      OpInfo op;
      uint64_t local_seq = 0;
      OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cur->value(), &op, &local_seq));
      if (op.kind != kMembersKind) continue;
      if (section == keys::kSectionSent) {
        out->has_sent = true;
        out->sent_seq = op.seq;
        out->sent = DecodeMembers(op.payload);
        break;
      }
      if (op.state != OpState::kPending) continue;  // a failed one does not count
      out->has_pending = true;
      out->pending_local_seq = local_seq;
      out->pending_id = op.op_id;
      out->pending = DecodeMembers(op.payload);
      break;
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
  }
  return Status::OK();
}

Result<std::vector<std::string>> DeviceStore::Members(std::string_view stream) {
  MutexLock lock(&members_mu_);
  auto it = members_.find(stream);
  if (it == members_.end()) {
    StreamMembers found;
    OUTPOST_RETURN_IF_ERROR(ScanMembers(stream, &found));
    it = members_.emplace(std::string(stream), std::move(found)).first;
  }
  const StreamMembers& m = it->second;
  if (m.has_sent) return m.sent;
  if (m.has_pending) return m.pending;
  return Status::NotFound("no members op in stream " + QuoteForMessage(stream));
}

}  // namespace outpost
