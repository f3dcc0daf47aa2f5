// Copyright 2026 The Outpost Authors.
//
// Client: open (identity, the sync side's state from the store), reads, changes by the application, and the
// sync loop's driver. The parts are in this directory; client_impl.h draws how they connect.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>

#include "client/attachments.h"
#include "client/client_impl.h"
#include "codec.h"
#include "outpost/membership.h"

namespace outpost {

Client::Impl::Impl(ClientOptions options)
    : opt_(std::move(options)), env_(opt_.env ? opt_.env : SystemEnv()) {}

Client::Impl::~Impl() {
  Stop();
  submit_.reset();  // commits what is queued; its threads end
  session_.reset();
}

Status Client::Impl::Init() {
  if (opt_.device.size() > 255) return Status::InvalidArgument("device id must be at most 255 bytes");
  if (opt_.user.size() > 255) return Status::InvalidArgument("user must be at most 255 bytes");
  if (opt_.ops_per_batch_max == 0 || opt_.batches_inflight_max == 0 || opt_.pull_page_max == 0 ||
      opt_.submit_queue_max == 0 || opt_.backoff_base_ms <= 0 || opt_.backoff_cap_ms < opt_.backoff_base_ms ||
      opt_.ack_timeout_ms <= 0) {
    return Status::InvalidArgument("client limits must be positive (and backoff_cap_ms >= backoff_base_ms)");
  }
  if (opt_.protocol_version == 0) opt_.protocol_version = codec::kProtocolVersion;
  if (opt_.protocol_version < codec::kProtocolMin || opt_.protocol_version > codec::kProtocolVersion) {
    return Status::InvalidArgument("protocol_version " + std::to_string(opt_.protocol_version) +
                                   " is not one this build speaks (" + std::to_string(codec::kProtocolMin) +
                                   " to " + std::to_string(codec::kProtocolVersion) + ")");
  }
  StorageOptions so;
  so.spaces = DeviceStore::SpaceNames();
  so.sync = opt_.store_sync;
  // The format first: a store written by a newer build is refused before anything could write to it, and
  // an older one is upgraded in one transaction (docs/storage-format.md, "Compatibility").
  OUTPOST_ASSIGN_OR_RETURN(auto storage,
                           OpenFormattedStorage(opt_.store, so, DeviceStore::Format(), opt_.open_store));
  OUTPOST_RETURN_IF_ERROR(
      MigrateStore(*storage, kMeta, DeviceStore::Format(), opt_.store, DeviceStore::Migrations()));
  store_ = std::make_unique<DeviceStore>(std::move(storage), &observers_);
  if (opt_.dialer) {
    dialer_ = opt_.dialer;
  } else if (!opt_.server.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(auto d, NewDialer(opt_.server));
    dialer_ = std::move(d);
  }
  uint64_t local_seq = 0;
  OUTPOST_RETURN_IF_ERROR(LoadState(&local_seq));
  submit_->Start(local_seq);
  if (opt_.follow_memberships) OUTPOST_RETURN_IF_ERROR(FollowMemberships());
  return Status::OK();
}

Status Client::Impl::FollowMemberships() {
  if (user_.empty()) return Status::InvalidArgument("follow_memberships needs a user (the store has none)");
  const std::string feed = FeedStream(user_);
  OUTPOST_RETURN_IF_ERROR(Follow(feed));
  // Joins merged before this store followed memberships (an app that followed the feed itself) are read
  // once; the mark is kept with the follows, in one transaction.
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string v;
  Status st = txn->Get(kMeta, "follow_memberships", &v);
  if (st.ok()) return Status::OK();
  if (!st.IsNotFound()) return st;
  std::set<std::string> joined;
  const std::string prefix = keys::StreamPrefix(feed);
  auto cur = txn->NewCursor(kView);
  for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
    OpInfo op;
    OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cur->value(), &op, nullptr));
    if (op.kind != kJoinedKind || op.payload.starts_with(kFeedPrefix) ||
        !keys::ValidateStream(op.payload, opt_.stream_id_bytes_max).ok()) {
      continue;
    }
    keys::StreamMeta m;
    OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn.get(), op.payload, &m));
    if (m.followed) continue;
    m.followed = 1;
    OUTPOST_RETURN_IF_ERROR(DeviceStore::PutMeta(txn.get(), op.payload, m));
    joined.insert(op.payload);
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  cur.reset();
  OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "follow_memberships", "1"));
  OUTPOST_RETURN_IF_ERROR(txn->Commit());
  if (!joined.empty()) Post([&](Inbox& in) { in.follow.insert(joined.begin(), joined.end()); });
  return Status::OK();
}

Status Client::Impl::LoadState(uint64_t* local_seq) {
  // Identity: a store belongs to one device and user for life.
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string v;
  // The format was checked (and the store upgraded) at Init: MigrateStore.
  Status st = txn->Get(kMeta, "device", &v);
  if (st.ok()) {
    if (opt_.device.empty()) opt_.device = v;
    if (v != opt_.device) {
      return Status::FailedPrecondition("store " + opt_.store + " belongs to device '" + v + "', not '" +
                                        opt_.device + "'");
    }
    OUTPOST_RETURN_IF_ERROR(txn->Get(kMeta, "user", &user_));
    if (user_.empty() && !opt_.user.empty()) {  // made without a user: the first one given owns it
      OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "user", opt_.user));
      user_ = opt_.user;
    }
    if (!opt_.user.empty() && opt_.user != user_) {
      return Status::FailedPrecondition("store " + opt_.store + " belongs to user '" + user_ + "'");
    }
  } else if (st.IsNotFound()) {
    if (opt_.device.empty()) {
      static constexpr char kHex[] = "0123456789abcdef";
      unsigned char r[8];
      env_->RandomBytes(r, sizeof r);
      opt_.device = "d-";
      for (unsigned char c : r) opt_.device += {kHex[c >> 4], kHex[c & 15]};
    }
    OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "device", opt_.device));
    OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "user", opt_.user));
    user_ = opt_.user;
  } else {
    return st;
  }
  st = txn->Get(kMeta, "local_seq", &v);
  if (st.ok() && v.size() == 8) {
    *local_seq = keys::GetBE64(v);
  } else if (!st.IsNotFound()) {
    return st.ok() ? Status::Corruption("bad local_seq") : st;
  }
  bool read_receipts = opt_.send_read_receipts;
  st = txn->Get(kMeta, "read_receipts", &v);
  if (st.ok()) {
    read_receipts = v == "1";
  } else if (!st.IsNotFound()) {
    return st;
  }

  sync_ = std::make_unique<SyncContext>(opt_, env_, store_.get(), user_, opt_.device);
  session_ = std::make_unique<SyncSession>(*sync_, dialer_, opt_.token, [this] { Post([](Inbox&) {}); });
  flusher_ = std::make_unique<Flusher>(*sync_);
  merger_ = std::make_unique<Merger>(*sync_);
  receipts_ = std::make_unique<Receipts>(*sync_, read_receipts);
  sync_->session = session_.get();
  sync_->flusher = flusher_.get();
  sync_->merger = merger_.get();
  sync_->receipts = receipts_.get();
  sync_->observers = &observers_;
  uploader_ = std::make_unique<Uploader>(*sync_, opt_.token, [this](const std::string& stream) {
    Post([&](Inbox& in) { in.dirty.insert(stream); });
  });
  sync_->media_url_changed = [this] { uploader_->Wake(); };
  submit_ = std::make_unique<SubmitPipeline>(opt_, env_, store_.get(), &observers_, user_, opt_.device,
                                             [this](const std::set<std::string>& streams,
                                                    const std::vector<std::pair<OpId, uint64_t>>& uploads) {
                                               Post([&](Inbox& in) {
                                                 in.dirty.insert(streams.begin(), streams.end());
                                                 in.follow.insert(streams.begin(), streams.end());
                                               });
                                               for (const auto& [id, size] : uploads)
                                                 uploader_->Added(id, size);
                                               if (!uploads.empty()) uploader_->Wake();
                                             });

  // The sync side's view of every stream, and the gauges: one read per stream, none per op (the oldest
  // pending op's age is found when Stats() asks). Read first, then handed to the sync side once the
  // transaction is over: the sync side takes its mutex before the store's writer lock, never after.
  std::vector<std::pair<std::string, keys::StreamMeta>> metas;
  {
    auto cur = txn->NewCursor(kStreams);
    for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
      keys::StreamMeta m;
      OUTPOST_RETURN_IF_ERROR(keys::DecodeStreamMeta(cur->value(), &m));
      metas.emplace_back(std::string(cur->key()), m);
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
  }
  // Every counter below a stream's first outbox entry was answered by the server (its acked_top): one seek
  // per stream with entries.
  std::map<std::string, uint64_t> acked_top;
  {
    auto cur = txn->NewCursor(kOutbox);
    for (const auto& [stream, m] : metas) {
      uint64_t first = m.next_counter;
      if (m.outbox > 0) {
        const std::string prefix = keys::StreamPrefix(stream);
        cur->Seek(prefix);
        if (cur->Valid() && cur->key().starts_with(prefix) && cur->key().size() == prefix.size() + 8) {
          first = std::min(first, keys::GetBE64(cur->key().substr(prefix.size())));
        }
        OUTPOST_RETURN_IF_ERROR(cur->status());
      }
      if (first > 1) acked_top[stream] = first - 1;
    }
  }
  // Ops a rebase set aside that no pull has brought back yet (client/rebase.h), and the server incarnation
  // this device last saw.
  int64_t lost = 0;
  {
    auto cur = txn->NewCursor(kLost);
    for (cur->SeekToFirst(); cur->Valid(); cur->Next()) ++lost;
    OUTPOST_RETURN_IF_ERROR(cur->status());
  }
  std::string incarnation;
  st = txn->Get(kMeta, "incarnation", &incarnation);
  if (!st.ok() && !st.IsNotFound()) return st;
  OUTPOST_RETURN_IF_ERROR(txn->Commit());
  int64_t outbox = 0, failed = 0;
  std::set<std::string> pending;
  MutexLock lock(&sync_->mu);
  sync_->incarnation = std::move(incarnation);
  for (const auto& [stream, m] : metas) {
    StreamSync& ss = sync_->Of(stream);
    ss.followed = m.followed != 0;
    ss.cursor = m.cursor;
    ss.server_high = m.high_seq;
    if (auto it = acked_top.find(stream); it != acked_top.end()) ss.flush.acked_top = it->second;
    if (m.outbox > 0) {
      sync_->dirty.insert(stream);
      pending.insert(stream);
    }
    outbox += static_cast<int64_t>(m.outbox);
    failed += static_cast<int64_t>(m.failed);
  }
  store_->InitGauges(outbox, failed, std::move(pending), lost);
  return uploader_->Init();
}

// ---- reads ----

namespace {

Status ScanBack(std::string_view prefix, Cursor* cur, size_t n, std::vector<OpInfo>* out) {
  for (; cur->Valid() && out->size() < n && cur->key().starts_with(prefix); cur->Prev()) {
    OpInfo op;
    OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cur->value(), &op, nullptr));
    op.position.assign(cur->key());
    out->push_back(std::move(op));
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  std::reverse(out->begin(), out->end());
  return Status::OK();
}

}  // namespace

Status Client::Impl::FillAttachment(ReadTxn* txn, OpInfo* op) const {
  if (!op->has_attachment || !op->own) return Status::OK();
  Attachment& a = op->attachment;
  if (!opt_.media_dir.empty()) a.local_path = opt_.media_dir + "/" + op->op_id.ToString();
  if (!a.blob_id.empty()) return Status::OK();  // uploaded
  codec::UploadRecord u;
  Status st = DeviceStore::LoadUpload(txn, op->op_id, &u);
  if (st.IsNotFound()) return Status::OK();
  OUTPOST_RETURN_IF_ERROR(st);
  a.upload = u.failed ? UploadState::kFailed : UploadState::kPending;
  a.uploaded_bytes = u.offset;
  a.local_path = u.path;
  return Status::OK();
}

Result<std::vector<OpInfo>> Client::Impl::Latest(std::string_view stream, size_t n) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(stream, opt_.stream_id_bytes_max));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::string prefix = keys::StreamPrefix(stream);
  auto cur = txn->NewCursor(kView);
  std::string end = keys::PrefixEnd(prefix);
  cur->Seek(end);
  if (cur->Valid()) {
    cur->Prev();
  } else {
    cur->SeekToLast();
  }
  std::vector<OpInfo> out;
  OUTPOST_RETURN_IF_ERROR(ScanBack(prefix, cur.get(), n, &out));
  for (OpInfo& op : out) OUTPOST_RETURN_IF_ERROR(FillAttachment(txn.get(), &op));
  return out;
}

Result<std::vector<OpInfo>> Client::Impl::Before(std::string_view stream, std::string_view position,
                                                 size_t n) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(stream, opt_.stream_id_bytes_max));
  std::string prefix = keys::StreamPrefix(stream);
  if (!position.starts_with(prefix))
    return Status::InvalidArgument("position does not belong to this stream");
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  auto cur = txn->NewCursor(kView);
  cur->SeekForPrev(position);
  if (cur->Valid() && cur->key() == position) cur->Prev();
  std::vector<OpInfo> out;
  OUTPOST_RETURN_IF_ERROR(ScanBack(prefix, cur.get(), n, &out));
  for (OpInfo& op : out) OUTPOST_RETURN_IF_ERROR(FillAttachment(txn.get(), &op));
  return out;
}

Result<std::vector<OpInfo>> Client::Impl::Since(std::string_view stream, uint64_t after_seq, size_t n) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(stream, opt_.stream_id_bytes_max));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::vector<OpInfo> out;
  auto cur = txn->NewCursor(kView);
  // The sent section from after_seq on (one seek), then the unsent one from its start.
  for (uint8_t section : {keys::kSectionSent, keys::kSectionUnsent}) {
    if (out.size() >= n) break;
    std::string prefix = keys::StreamPrefix(stream);
    prefix.push_back(static_cast<char>(section));
    if (section == keys::kSectionSent) {
      if (after_seq == UINT64_MAX) continue;
      cur->Seek(keys::ViewKey(stream, section, after_seq + 1));
    } else {
      cur->Seek(prefix);
    }
    for (; cur->Valid() && out.size() < n && cur->key().starts_with(prefix); cur->Next()) {
      OpInfo op;
      OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(cur->value(), &op, nullptr));
      op.position.assign(cur->key());
      out.push_back(std::move(op));
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
  }
  for (OpInfo& op : out) OUTPOST_RETURN_IF_ERROR(FillAttachment(txn.get(), &op));
  return out;
}

Result<std::vector<std::string>> Client::Impl::Members(std::string_view stream) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(stream, opt_.stream_id_bytes_max));
  return store_->Members(stream);
}

Result<OpInfo> Client::Impl::Get(const OpId& id) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  StoredOp s;
  Status st = DeviceStore::LoadOp(txn.get(), id, &s);
  if (st.IsNotFound()) return Status::NotFound("no op " + id.ToString());
  OUTPOST_RETURN_IF_ERROR(st);
  OUTPOST_RETURN_IF_ERROR(FillAttachment(txn.get(), &s.op));
  return std::move(s.op);
}

Result<std::vector<OpInfo>> Client::Impl::Outbox(size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::vector<std::pair<uint64_t, OpInfo>> found;
  auto add = [&](const OpId& id) -> Status {
    StoredOp s;
    Status st = DeviceStore::LoadOp(txn.get(), id, &s);
    if (st.IsNotFound()) return Status::OK();
    OUTPOST_RETURN_IF_ERROR(st);
    OUTPOST_RETURN_IF_ERROR(FillAttachment(txn.get(), &s.op));
    found.emplace_back(s.local_seq, std::move(s.op));
    return Status::OK();
  };
  auto cur = txn->NewCursor(kOutbox);
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    OutboxEntry e;
    if (!OutboxEntry::Decode(cur->value(), &e) || e.skip()) continue;
    OUTPOST_RETURN_IF_ERROR(add(e.op_id));
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  // Ops whose attachment is still going up hold no outbox entry yet (a failed one is found below).
  cur = txn->NewCursor(kUploads);
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    codec::UploadRecord u;
    if (!codec::DecodeUpload(cur->value(), &u).ok() || u.failed) continue;
    OUTPOST_RETURN_IF_ERROR(add(u.op_id));
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  cur = txn->NewCursor(kFailed);
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    auto id = OpId::FromBytes(cur->value());
    if (!id.ok()) continue;
    OUTPOST_RETURN_IF_ERROR(add(*id));
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    if ((a.second.state == OpState::kFailed) != (b.second.state == OpState::kFailed)) {
      return a.second.state != OpState::kFailed;
    }
    return a.first < b.first;
  });
  std::vector<OpInfo> out;
  for (auto& [seq, op] : found) {
    if (out.size() >= limit) break;
    out.push_back(std::move(op));
  }
  return out;
}

Result<std::vector<StreamInfo>> Client::Impl::Streams() {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::vector<StreamInfo> out;
  auto cur = txn->NewCursor(kStreams);
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    keys::StreamMeta m;
    OUTPOST_RETURN_IF_ERROR(keys::DecodeStreamMeta(cur->value(), &m));
    out.push_back(
        {std::string(cur->key()), m.cursor, m.high_seq, m.read_seq, m.outbox, m.failed, m.followed != 0});
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  return out;
}

Result<uint64_t> Client::Impl::CursorOf(std::string_view stream) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  keys::StreamMeta m;
  OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn.get(), stream, &m));
  return m.cursor;
}

Result<std::vector<Watermark>> Client::Impl::Watermarks(std::string_view stream) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(stream, opt_.stream_id_bytes_max));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::string prefix = keys::StreamPrefix(stream);
  std::vector<Watermark> out;
  auto cur = txn->NewCursor(kWatermarks);
  for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
    keys::Reader rd(cur->key().substr(prefix.size()));
    std::string_view user, device;
    uint8_t kind;
    if (!rd.Short(&user) || !rd.Short(&device) || !rd.Byte(&kind) || cur->value().size() != 8) {
      return Status::Corruption("bad watermark record");
    }
    out.push_back({std::string(stream), std::string(user), std::string(device),
                   static_cast<WatermarkKind>(kind), keys::GetBE64(cur->value())});
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  return out;
}

uint64_t Client::Impl::SubscribeConnection(ConnectionCallback cb) {
  // Under the sync side's lock: no connection event can be queued between reading the state and
  // subscribing, so the first event is the state and the next one its next change.
  MutexLock lock(&sync_->mu);
  return observers_.SubscribeConnection(std::move(cb), session_->connection());
}

ConnectionEvent Client::Impl::connection() {
  MutexLock lock(&sync_->mu);
  return session_->connection();
}

std::string Client::Impl::media_url() {
  if (!opt_.media_url.empty()) return opt_.media_url;
  MutexLock lock(&sync_->mu);
  return sync_->media_url;
}

Status Client::Impl::FetchAttachment(const OpId& id, const std::string& path,
                                     const std::function<void(uint64_t, uint64_t)>& progress) {
  OUTPOST_ASSIGN_OR_RETURN(OpInfo op, Get(id));
  if (!op.has_attachment) return Status::NotFound("op " + id.ToString() + " has no attachment");
  const Attachment& a = op.attachment;
  if (a.blob_id.empty())
    return Status::NotFound("the attachment of op " + id.ToString() + " is not uploaded yet");
  if (opt_.media == nullptr) return Status::FailedPrecondition("ClientOptions::media is not set");
  MediaEndpoint at;
  at.url = media_url();
  if (at.url.empty())
    return Status::FailedPrecondition("no upload endpoint known yet (connect to the server first)");
  at.token = uploader_->token();
  return DownloadBlob(*opt_.media, at, a.blob_id, a.size, a.sha256, path, progress);
}

// ---- changes by the application ----

Status Client::Impl::ChangeOp(const OpId& id,
                              const std::function<Status(WriteTxn*, StoredOp&, keys::StreamMeta&, Tally*,
                                                         std::vector<Change>*)>& change) {
  std::string stream;
  {
    MutexLock lock(&sync_->mu);
    OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
    StoredOp s;
    Status st = DeviceStore::LoadOp(txn.get(), id, &s);
    if (st.IsNotFound()) return Status::NotFound("no op " + id.ToString());
    OUTPOST_RETURN_IF_ERROR(st);
    stream = s.op.stream;
    keys::StreamMeta m;
    OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn.get(), stream, &m));
    Tally tally;
    std::vector<Change> changes;
    OUTPOST_RETURN_IF_ERROR(change(txn.get(), s, m, &tally, &changes));
    flusher_->Forget(stream, id);
    OUTPOST_RETURN_IF_ERROR(DeviceStore::PutMeta(txn.get(), stream, m));
    OUTPOST_RETURN_IF_ERROR(store_->Commit(txn.get(), tally, changes));
  }
  Post([&](Inbox& in) { in.dirty.insert(stream); });
  observers_.Deliver(/*wait=*/true);
  return Status::OK();
}

Status Client::Impl::Retry(const OpId& id) {
  bool retried_upload = false;
  Status st = ChangeOp(
      id,
      [&](WriteTxn* txn, StoredOp& s, keys::StreamMeta& m, Tally* tally,
          std::vector<Change>* changes) -> Status {
        OpInfo& op = s.op;
        if (!op.own || op.state != OpState::kFailed) {
          return Status::FailedPrecondition("op " + id.ToString() + " is not a failed op of this device");
        }
        codec::UploadRecord u;
        Status ust = DeviceStore::LoadUpload(txn, id, &u);
        if (!ust.ok() && !ust.IsNotFound()) return ust;
        op.state = OpState::kPending;
        op.attempts = 0;
        op.next_attempt_at_ms = env_->NowMs();
        op.last_error.clear();
        op.last_error_code = Status::Code::kOk;
        if (ust.ok()) {
          // Its upload never completed: the upload starts again (from the server's offset), and the op
          // takes a counter only once it is done.
          u.failed = false;
          u.attempts = 0;
          u.next_attempt_at_ms = op.next_attempt_at_ms;
          u.last_error.clear();
          u.last_error_code = Status::Code::kOk;
          OUTPOST_RETURN_IF_ERROR(DeviceStore::PutUpload(txn, u));
          OUTPOST_RETURN_IF_ERROR(DeviceStore::PutOp(txn, s));
          OUTPOST_RETURN_IF_ERROR(txn->Delete(kFailed, keys::FailedKey(s.local_seq)));
          DeviceStore::TakeFailed(&m);
          *tally = {.failed = -1, .pending_added = {{op.stream, op.created_at_ms}}};
          tally->NoteMembers(op, s.local_seq);
          changes->push_back(OpChange(Change::Kind::kUpdated, op));
          retried_upload = true;
          return Status::OK();
        }
        op.device_counter = m.next_counter++;
        OUTPOST_RETURN_IF_ERROR(DeviceStore::PutOp(txn, s));
        // Marked as the user's retry: the server judges a rejected op afresh only then.
        OUTPOST_RETURN_IF_ERROR(
            DeviceStore::PutEntry(txn, op.stream, op.device_counter, {OutboxEntry::Kind::kRetry, op.op_id}));
        OUTPOST_RETURN_IF_ERROR(txn->Delete(kFailed, keys::FailedKey(s.local_seq)));
        DeviceStore::TakeFailed(&m);
        ++m.outbox;
        *tally = {.outbox = 1, .failed = -1, .pending_added = {{op.stream, op.created_at_ms}}};
        tally->NoteMembers(op, s.local_seq);
        changes->push_back(OpChange(Change::Kind::kUpdated, op));
        return Status::OK();
      });
  if (st.ok() && retried_upload) uploader_->Restart(id);
  return st;
}

Status Client::Impl::Discard(const OpId& id) {
  std::string copy;
  Status st = ChangeOp(id,
                       [&](WriteTxn* txn, StoredOp& s, keys::StreamMeta& m, Tally* tally,
                           std::vector<Change>* changes) -> Status {
                         const OpInfo& op = s.op;
                         if (!op.own || op.state == OpState::kSent) {
                           return Status::FailedPrecondition("op " + id.ToString() +
                                                             " was already sent; it cannot be discarded");
                         }
                         if (op.has_attachment) {
                           // Its upload (if any) stops; the server removes the partial file when it expires.
                           OUTPOST_RETURN_IF_ERROR(DeviceStore::DeleteUpload(txn, id));
                           if (!opt_.media_dir.empty()) copy = opt_.media_dir + "/" + id.ToString();
                         }
                         if (op.state == OpState::kPending && op.device_counter == 0) {
                           // Waiting for its upload: it holds no counter, so no skip is owed.
                           tally->pending_gone.push_back({op.stream, op.created_at_ms});
                         } else if (op.state == OpState::kPending) {
                           // Its counter is still ours: the outbox entry becomes a skip.
                           OUTPOST_RETURN_IF_ERROR(DeviceStore::PutEntry(
                               txn, op.stream, op.device_counter, {OutboxEntry::Kind::kSkip, op.op_id}));
                           tally->pending_gone.push_back({op.stream, op.created_at_ms});
                         } else {
                           OUTPOST_RETURN_IF_ERROR(txn->Delete(kFailed, keys::FailedKey(s.local_seq)));
                           DeviceStore::TakeFailed(&m);
                           tally->failed = -1;
                         }
                         OUTPOST_RETURN_IF_ERROR(txn->Delete(kView, s.view_key));
                         OUTPOST_RETURN_IF_ERROR(txn->Delete(kOpIndex, op.op_id.AsBytes()));
                         tally->NoteMembers(op, s.local_seq, /*gone=*/true);
                         changes->push_back(OpChange(Change::Kind::kRemoved, op));
                         return Status::OK();
                       });
  if (st.ok() && !copy.empty()) {
    uploader_->Remove(id);
    RemoveAttachmentCopy(copy);
  }
  return st;
}

Result<bool> Client::Impl::UpdateMeta(std::string_view stream,
                                      const std::function<bool(keys::StreamMeta&)>& change) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(stream, opt_.stream_id_bytes_max));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  keys::StreamMeta m;
  OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadMeta(txn.get(), stream, &m));
  if (!change(m)) return false;
  OUTPOST_RETURN_IF_ERROR(DeviceStore::PutMeta(txn.get(), stream, m));
  OUTPOST_RETURN_IF_ERROR(txn->Commit());
  return true;
}

Status Client::Impl::Follow(std::string_view stream) {
  OUTPOST_ASSIGN_OR_RETURN(bool changed, UpdateMeta(stream, [](keys::StreamMeta& m) {
                             if (m.followed) return false;
                             m.followed = 1;
                             return true;
                           }));
  if (changed) Post([&](Inbox& in) { in.follow.emplace(stream); });
  return Status::OK();
}

Status Client::Impl::SetStreamPolicy(std::string_view stream, bool block) {
  OUTPOST_ASSIGN_OR_RETURN(bool changed, UpdateMeta(stream, [&](keys::StreamMeta& m) {
                             m.block_on_failure = block ? 1 : 2;
                             return true;
                           }));
  if (changed) Post([&](Inbox& in) { in.dirty.emplace(stream); });
  return Status::OK();
}

Status Client::Impl::MarkRead(std::string_view stream, uint64_t seq) {
  OUTPOST_ASSIGN_OR_RETURN(bool changed, UpdateMeta(stream, [&](keys::StreamMeta& m) {
                             seq =
                                 std::min(seq, m.cursor);  // only what this device merged can have been read
                             if (seq <= m.read_seq) return false;
                             m.read_seq = seq;
                             return true;
                           }));
  if (changed) Post([&](Inbox& in) { in.wm_dirty.emplace(stream); });
  return Status::OK();
}

Status Client::Impl::SetReadReceipts(bool on) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, "read_receipts", on ? "1" : "0"));
  OUTPOST_RETURN_IF_ERROR(txn->Commit());
  receipts_->set_read_receipts(on);
  return Status::OK();
}

// ---- sync driver ----

void Client::Impl::Post(const std::function<void(Inbox&)>& fn) {
  MutexLock lock(&inbox_mu_);
  fn(inbox_);
  inbox_.wake = true;
  inbox_cv_.NotifyAll();
}

void Client::Impl::ApplyInbox(int64_t now) {
  Inbox in;
  {
    MutexLock lock(&inbox_mu_);
    std::swap(in, inbox_);
  }
  for (const auto& s : in.dirty) sync_->dirty.insert(s);
  for (const auto& s : in.follow) merger_->Follow(s, now);
  for (const auto& s : in.wm_dirty) sync_->Of(s).receipts.dirty = true;
  // An explicit new token: try again at once, even after an authentication failure.
  if (in.new_token) session_->SetToken(std::move(in.token));
  if (in.resume) session_->Resume();
  if (in.disconnect) {
    session_->Close(now,
                    in.offline ? std::string(SyncSession::kOfflineReason) : "disconnected by the application",
                    in.offline);
  }
}

Status Client::Impl::Step(bool receipts_now) {
  // Caller-driven: one upload request per round (after Start, the uploader has a thread of its own).
  if (!uploader_->running()) (void)uploader_->Step(env_->NowMs());
  StepLocked(receipts_now);
  observers_.Deliver(/*wait=*/true);  // callbacks run outside every engine lock
  return Status::OK();
}

void Client::Impl::StepLocked(bool receipts_now) {
  bool online;
  {
    MutexLock lock(&inbox_mu_);
    online = online_;
  }
  MutexLock lock(&sync_->mu);
  const int64_t now = env_->NowMs();
  ApplyInbox(now);
  session_->Poll(now, online);
  receipts_->StoreReceived(now, receipts_now);
  if (!session_->ready()) return;
  flusher_->CheckTimeouts(now);
  flusher_->Renumber();
  flusher_->Flush(now);
  merger_->SendPulls(now);
  receipts_->Send();
}

Status Client::Impl::AuthStatus() {
  MutexLock lock(&sync_->mu);
  const wire::SessionEnd ended = session_->ended();
  if (ended == wire::SessionEnd::None) return Status::OK();
  MutexLock stats_lock(&sync_->stats_mu);
  if (ended == wire::SessionEnd::UpgradeRequired) {
    return Status::FailedPrecondition(sync_->stats.last_connection_error);
  }
  return Status::PermissionDenied(sync_->stats.last_connection_error);
}

bool Client::Impl::IsIdle() {
  {
    MutexLock lock(&sync_->mu);
    if (!session_->ready() || !flusher_->idle() || store_->outbox_depth() > 0 || !merger_->idle() ||
        !receipts_->idle())
      return false;
  }
  if (!uploader_->Idle(env_->NowMs())) return false;
  MutexLock lock(&inbox_mu_);
  return inbox_.dirty.empty() && inbox_.follow.empty();
}

Status Client::Impl::RunUntilIdle(int64_t timeout_ms) {
  if (!dialer_) return Status::Unavailable("no server configured");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    OUTPOST_RETURN_IF_ERROR(Step(/*receipts_now=*/true));  // the caller waits: nothing to gather
    if (IsIdle()) return Status::OK();
    OUTPOST_RETURN_IF_ERROR(AuthStatus());  // refused credentials: waiting longer cannot help
    if (std::chrono::steady_clock::now() >= deadline) return Status::Timeout("sync not idle in time");
    MutexLock lock(&inbox_mu_);
    // Woken by an arriving frame or a local change; the short bound lets timers (backoff) fire.
    if (!inbox_.wake) inbox_cv_.WaitFor(&inbox_mu_, std::chrono::milliseconds(5));
    inbox_.wake = false;
  }
}

void Client::Impl::SyncLoop() {
  for (;;) {
    (void)Step();
    MutexLock lock(&inbox_mu_);
    if (sync_stop_) return;
    if (inbox_.wake) {
      inbox_.wake = false;
      continue;
    }
    // Timers (backoff, ack timeouts, reconnect) are checked at least this often.
    inbox_cv_.WaitFor(&inbox_mu_, std::chrono::milliseconds(20));
    inbox_.wake = false;
  }
}

void Client::Impl::Start() {
  uploader_->Start();
  MutexLock lock(&inbox_mu_);
  if (sync_thread_.joinable()) return;
  sync_stop_ = false;
  sync_thread_ = std::thread([this] { SyncLoop(); });
}

void Client::Impl::Stop() {
  {
    MutexLock lock(&inbox_mu_);
    sync_stop_ = true;
    inbox_cv_.NotifyAll();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
  if (uploader_) uploader_->Stop();
  if (!sync_ || !receipts_) return;  // never opened
  MutexLock lock(&sync_->mu);
  receipts_->StoreReceived(/*now=*/0, /*now_too=*/true);  // what came in last is kept (env_ may be gone)
}

void Client::Impl::Disconnect() {
  Post([](Inbox& in) { in.disconnect = true; });
}

void Client::Impl::SetToken(std::string token) {
  uploader_->SetToken(token);
  Post([&](Inbox& in) {
    in.new_token = true;
    in.token = std::move(token);
  });
}

void Client::Impl::SetOnline(bool online) {
  {
    MutexLock lock(&inbox_mu_);
    online_ = online;
  }
  uploader_->SetOnline(online);
  Post([&](Inbox& in) {
    if (online) {
      in.resume = true;  // the application asks again: after "upgrade required", one more try
      return;
    }
    in.disconnect = true;
    in.offline = true;
  });
}

ClientStats Client::Impl::Stats() {
  ClientStats s;
  {
    MutexLock lock(&sync_->stats_mu);
    s = sync_->stats;
  }
  {
    MutexLock lock(&sync_->mu);
    s.connected = session_->ready();
    s.connection = session_->connection().state;
  }
  s.outbox_depth = static_cast<uint64_t>(std::max<int64_t>(0, store_->outbox_depth()));
  s.failed = static_cast<uint64_t>(std::max<int64_t>(0, store_->failed_count()));
  s.ops_lost = static_cast<uint64_t>(std::max<int64_t>(0, store_->lost_count()));
  uploader_->FillStats(&s);
  auto oldest = store_->oldest_pending_ms();
  if (oldest.ok()) {
    s.oldest_pending_ms = *oldest;
  } else {
    ++s.store_errors;  // the gauge is left at 0 this time; asked again next time
  }
  return s;
}

// ---- Client ----

Result<std::unique_ptr<Client>> Client::Open(ClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  OUTPOST_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<OpId> Client::Submit(std::string_view stream, std::string_view kind, std::string_view payload,
                            const SubmitOptions& options) {
  std::vector<NewOp> ops(1);
  ops[0] = {std::string(stream), std::string(kind), std::string(payload), options};
  OUTPOST_ASSIGN_OR_RETURN(auto ids, impl_->SubmitAndWait(std::move(ops)));
  return ids[0];
}

void Client::SubmitAsync(std::string_view stream, std::string_view kind, std::string_view payload,
                         const SubmitOptions& options, std::function<void(Result<OpId>)> done) {
  std::vector<NewOp> ops(1);
  ops[0] = {std::string(stream), std::string(kind), std::string(payload), options};
  std::vector<OpId> ids = {impl_->ids().Next()};
  impl_->Enqueue(std::move(ops), std::move(ids),
                 [done = std::move(done)](const Status& st, const std::vector<OpId>& got) {
                   if (st.ok()) {
                     done(got[0]);
                   } else {
                     done(st);
                   }
                 });
}

Result<std::vector<OpId>> Client::SubmitBatch(const std::vector<NewOp>& ops) {
  return impl_->SubmitAndWait(ops);
}
Status Client::Follow(std::string_view stream) { return impl_->Follow(stream); }
Status Client::SetStreamPolicy(std::string_view stream, bool block) {
  return impl_->SetStreamPolicy(stream, block);
}
Result<std::vector<OpInfo>> Client::Latest(std::string_view stream, size_t n) {
  return impl_->Latest(stream, n);
}
Result<std::vector<OpInfo>> Client::Before(std::string_view stream, std::string_view position, size_t n) {
  return impl_->Before(stream, position, n);
}
Result<std::vector<OpInfo>> Client::Since(std::string_view stream, uint64_t after_seq, size_t n) {
  return impl_->Since(stream, after_seq, n);
}
Result<std::vector<std::string>> Client::Members(std::string_view stream) { return impl_->Members(stream); }
Result<OpInfo> Client::Get(const OpId& op_id) { return impl_->Get(op_id); }
Result<std::vector<OpInfo>> Client::Outbox(size_t limit) { return impl_->Outbox(limit); }
Status Client::Retry(const OpId& op_id) { return impl_->Retry(op_id); }
Status Client::Discard(const OpId& op_id) { return impl_->Discard(op_id); }
Status Client::MarkRead(std::string_view stream, uint64_t seq) { return impl_->MarkRead(stream, seq); }
Status Client::SetReadReceipts(bool on) { return impl_->SetReadReceipts(on); }
bool Client::read_receipts() { return impl_->read_receipts(); }
Status Client::FetchAttachment(const OpId& op_id, const std::string& path,
                               const std::function<void(uint64_t, uint64_t)>& progress) {
  return impl_->FetchAttachment(op_id, path, progress);
}
std::string Client::media_url() { return impl_->media_url(); }
Result<std::vector<StreamInfo>> Client::Streams() { return impl_->Streams(); }
Result<std::vector<Watermark>> Client::Watermarks(std::string_view stream) {
  return impl_->Watermarks(stream);
}
Result<uint64_t> Client::Cursor(std::string_view stream) { return impl_->CursorOf(stream); }
uint64_t Client::Subscribe(std::string_view stream, ChangeCallback callback) {
  return impl_->Subscribe(stream, std::move(callback));
}
uint64_t Client::SubscribeConnection(ConnectionCallback callback) {
  return impl_->SubscribeConnection(std::move(callback));
}
void Client::Unsubscribe(uint64_t id) { impl_->Unsubscribe(id); }
ConnectionEvent Client::connection() { return impl_->connection(); }
void Client::Start() { impl_->Start(); }
void Client::Stop() { impl_->Stop(); }
Status Client::Step() { return impl_->Step(); }
Status Client::RunUntilIdle(int64_t timeout_ms) { return impl_->RunUntilIdle(timeout_ms); }
bool Client::IsIdle() { return impl_->IsIdle(); }
void Client::Disconnect() { impl_->Disconnect(); }
void Client::SetOnline(bool online) { impl_->SetOnline(online); }
void Client::SetToken(std::string token) { impl_->SetToken(std::move(token)); }
ClientStats Client::Stats() { return impl_->Stats(); }
const std::string& Client::device() const { return impl_->options().device; }
const std::string& Client::user() const { return impl_->user_id(); }

}  // namespace outpost
