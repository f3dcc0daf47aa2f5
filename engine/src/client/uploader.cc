// Copyright 2026 The Outpost Authors.
#include "client/uploader.h"

#include <chrono>

#include "client/attachments.h"
#include "outpost/media_transport.h"

namespace outpost {

namespace {

// Failures no retry can mend: the op fails at once with the reason.
bool Permanent(const Status& s) {
  switch (s.code()) {
    case Status::Code::kPermissionDenied:
    case Status::Code::kFull:
    case Status::Code::kInvalidArgument:
    case Status::Code::kFailedPrecondition:
      return true;
    default:
      return false;
  }
}

bool AuthRefused(const Status& s) {
  return s.code() == Status::Code::kPermissionDenied && s.message().starts_with("authentication failed");
}

}  // namespace

Uploader::Uploader(SyncContext& ctx, std::string token, OnReady on_ready)
    : ctx_(ctx), on_ready_(std::move(on_ready)), token_(std::move(token)) {}

Uploader::~Uploader() { Stop(); }

void Uploader::Start() {
  MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Uploader::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    cv_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();
}

bool Uploader::running() {
  MutexLock lock(&mu_);
  return thread_.joinable() && !stop_;
}

void Uploader::Wake() {
  MutexLock lock(&mu_);
  wake_ = true;
  cv_.NotifyAll();
}

void Uploader::SetToken(std::string token) {
  MutexLock lock(&mu_);
  token_ = std::move(token);
  auth_paused_ = false;
  wake_ = true;
  cv_.NotifyAll();
}

std::string Uploader::token() {
  MutexLock lock(&mu_);
  return token_;
}

void Uploader::SetOnline(bool online) {
  MutexLock lock(&mu_);
  online_ = online;
  wake_ = true;
  cv_.NotifyAll();
}

void Uploader::Forget(const OpId& id) {
  MutexLock lock(&mu_);
  confirmed_.erase(id);
}

void Uploader::Remove(const OpId& id) {
  MutexLock lock(&mu_);
  confirmed_.erase(id);
  gauges_.erase(id);
}

void Uploader::Restart(const OpId& id) {
  MutexLock lock(&mu_);
  confirmed_.erase(id);
  auto it = gauges_.find(id);
  if (it != gauges_.end()) it->second.failed = false;
  wake_ = true;
  cv_.NotifyAll();
}

void Uploader::Added(const OpId& id, uint64_t size) {
  MutexLock lock(&mu_);
  gauges_[id] = {0, size};
}

Status Uploader::Init() {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, ctx_.store->BeginRead());
  auto cur = txn->NewCursor(kUploads);
  std::map<OpId, Gauge> found;
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    codec::UploadRecord u;
    if (!codec::DecodeUpload(cur->value(), &u).ok()) continue;
    found[u.op_id] = {u.offset, u.size, u.failed};
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  MutexLock lock(&mu_);
  gauges_ = std::move(found);
  return Status::OK();
}

void Uploader::Loop() {
  for (;;) {
    int64_t next = Step(ctx_.env->NowMs());
    MutexLock lock(&mu_);
    if (stop_) return;
    if (wake_) {
      wake_ = false;
      continue;
    }
    int64_t now = ctx_.env->NowMs();
    if (next <= now) continue;
    // Woken by a change; the bound also covers a clock that is not the wall clock (tests' manual clocks).
    int64_t wait = std::min<int64_t>(next - now, 200);
    cv_.WaitFor(&mu_, std::chrono::milliseconds(wait));
    wake_ = false;
  }
}

std::string Uploader::Endpoint() {
  if (!ctx_.opt.media_url.empty()) return ctx_.opt.media_url;
  MutexLock lock(&ctx_.mu);
  return ctx_.media_url;
}

Uploader::Due Uploader::FindDue(int64_t now) {
  Due due;
  {
    MutexLock lock(&mu_);
    if (gauges_.empty()) return due;  // no upload in the store: nothing to read
  }
  auto txn = ctx_.store->BeginRead();
  if (!txn.ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    due.next_at = now + ctx_.opt.backoff_base_ms;
    return due;
  }
  auto cur = (*txn)->NewCursor(kUploads);
  // The gauges follow what the store holds (a pulled page may settle an op whose upload record a power
  // loss brought back, and remove that record).
  std::map<OpId, Gauge> gauges;
  // Keys are op ids (UUIDv7): the oldest upload comes first, and goes first.
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    codec::UploadRecord u;
    if (!codec::DecodeUpload(cur->value(), &u).ok()) continue;  // unreadable: left alone, never sent
    gauges[u.op_id] = {u.offset, u.size, u.failed};
    if (u.failed) continue;
    if (u.next_attempt_at_ms <= now) {
      if (!due.found) {
        due.found = true;
        due.upload = std::move(u);
      }
    } else {
      due.next_at = std::min(due.next_at, u.next_attempt_at_ms);
    }
  }
  if (!cur->status().ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    return due;
  }
  MutexLock lock(&mu_);
  gauges_ = std::move(gauges);
  return due;
}

bool Uploader::Idle(int64_t now) {
  (void)now;
  MutexLock lock(&mu_);
  for (const auto& [id, g] : gauges_) {
    if (!g.failed) return false;
  }
  return true;
}

int64_t Uploader::Step(int64_t now) {
  {
    MutexLock lock(&mu_);
    if (!online_ || auth_paused_) return INT64_MAX;
  }
  Due due = FindDue(now);
  if (!due.found) return due.next_at;
  std::string endpoint = Endpoint();
  if (endpoint.empty()) return INT64_MAX;  // a Welcome that announces one wakes us
  Act(due.upload, endpoint, now);
  return now;  // more may be due at once
}

void Uploader::Act(codec::UploadRecord& u, const std::string& endpoint, int64_t now) {
  MediaTransport* media = ctx_.opt.media.get();
  MediaEndpoint at;
  at.url = endpoint;
  bool known = false;
  uint64_t offset = 0;
  {
    MutexLock lock(&mu_);
    at.token = token_;
    auto it = confirmed_.find(u.op_id);
    if (it != confirmed_.end()) {
      known = true;
      offset = it->second;
    }
  }
  auto confirm = [&](uint64_t off) {
    MutexLock lock(&mu_);
    confirmed_[u.op_id] = off;
  };
  Status err;
  if (u.upload_url.empty()) {
    UploadSpec spec{u.size, u.content_type, u.sha256, u.filename};
    auto url = media->CreateUpload(at, spec);
    if (url.ok() && BlobIdOfUploadUrl(*url).empty()) {
      url = Status::Corruption("the server's upload URL " + url->substr(0, 200) + " names no blob");
    }
    if (url.ok()) {
      if (Update(u.op_id, [&](codec::UploadRecord& r) {
            r.upload_url = *url;
            r.offset = 0;
          }).ok()) {
        confirm(0);
      }
      if (u.size == 0) {
        u.upload_url = *url;
        Complete(u, now);
      }
      return;
    }
    err = url.status();
  } else if (!known) {
    auto off = media->UploadOffset(at, u.upload_url);
    if (off.ok() && *off > u.size) {
      off = Status::Corruption("the server says " + std::to_string(*off) + " bytes of a " +
                               std::to_string(u.size) + "-byte upload");
    }
    if (off.ok()) {
      if (Update(u.op_id, [&](codec::UploadRecord& r) { r.offset = *off; }).ok()) confirm(*off);
      if (*off == u.size) Complete(u, now);
      return;
    }
    err = off.status();
  } else if (offset >= u.size) {
    Complete(u, now);
    return;
  } else {
    std::string chunk;
    size_t n = static_cast<size_t>(std::min<uint64_t>(ctx_.opt.upload_chunk_bytes, u.size - offset));
    Status rd = ReadAttachment(u.path, offset, n, &chunk);
    if (rd.ok() && chunk.size() != n) {
      rd = Status::Corruption("the attachment's copy " + u.path + " is shorter than " +
                              std::to_string(u.size) + " bytes");
    }
    if (!rd.ok()) {  // the copy is gone or damaged: no retry brings it back
      Fail(u, Status::FromCode(Status::Code::kFailedPrecondition, rd.message()));
      return;
    }
    auto next = media->AppendUpload(at, u.upload_url, offset, chunk);
    if (next.ok() && (*next <= offset || *next > u.size)) {
      next = Status::Corruption("the server moved the upload from " + std::to_string(offset) + " to " +
                                std::to_string(*next));
    }
    if (next.ok()) {
      ctx_.Count([&](ClientStats& s) {
        ++s.upload_chunks;
        s.upload_bytes_sent += *next - offset;
      });
      if (Update(u.op_id, [&](codec::UploadRecord& r) {
            r.offset = *next;
            r.attempts = 0;  // progress: the next failure backs off from the start
            r.last_error.clear();
            r.last_error_code = Status::Code::kOk;
          }).ok()) {
        confirm(*next);
      }
      if (*next == u.size) Complete(u, now);
      return;
    }
    err = next.status();
  }
  // After a failure the server may hold more or less than we think: ask before sending again.
  Forget(u.op_id);
  if (err.IsNotFound()) {
    // The server no longer has the upload (it expired, or was removed): start again from zero. Counted as
    // an attempt, so that a server that keeps losing it cannot make us loop.
    (void)Update(u.op_id, [&](codec::UploadRecord& r) {
      r.upload_url.clear();
      r.offset = 0;
    });
    Backoff(u, err, now);
    return;
  }
  if (AuthRefused(err)) {
    MutexLock lock(&mu_);
    auth_paused_ = true;  // the token is refused: SetToken resumes
    return;
  }
  // A Conflict (the server holds another offset) is asked about (HEAD) at the next step, after a backoff
  // like any failure: a server that keeps answering Conflict cannot make the device loop.
  if (Permanent(err)) {
    Fail(u, err);
    return;
  }
  Backoff(u, err, now);
}

Status Uploader::Update(const OpId& id, const std::function<void(codec::UploadRecord&)>& change) {
  auto begun = ctx_.store->BeginWrite();
  Status st = begun.status();
  std::unique_ptr<WriteTxn> txn = st.ok() ? std::move(begun).value() : nullptr;
  codec::UploadRecord r;
  if (st.ok()) st = DeviceStore::LoadUpload(txn.get(), id, &r);
  if (st.ok()) {
    change(r);
    st = DeviceStore::PutUpload(txn.get(), r);
  }
  if (st.ok()) st = txn->Commit();
  if (st.ok()) {
    MutexLock lock(&mu_);
    gauges_[id] = {r.offset, r.size, r.failed};
  }
  if (!st.ok() && !st.IsNotFound()) ctx_.Count([](ClientStats& s) { ++s.store_errors; });
  if (st.IsNotFound()) Forget(id);
  return st;
}

Status Uploader::Load(const OpId& id, std::unique_ptr<WriteTxn>* txn, codec::UploadRecord* upload,
                      StoredOp* op) {
  OUTPOST_ASSIGN_OR_RETURN(*txn, ctx_.store->BeginWrite());
  OUTPOST_RETURN_IF_ERROR(DeviceStore::LoadUpload(txn->get(), id, upload));
  return DeviceStore::LoadOp(txn->get(), id, op);
}

void Uploader::Complete(const codec::UploadRecord& u, int64_t now) {
  std::string stream;
  Status st;
  {
    MutexLock lock(&ctx_.mu);
    std::unique_ptr<WriteTxn> txn;
    codec::UploadRecord r;
    StoredOp s;
    st = Load(u.op_id, &txn, &r, &s);
    if (st.IsNotFound()) return;  // discarded meanwhile
    std::string blob_id = BlobIdOfUploadUrl(r.upload_url);
    if (st.ok() && s.op.state == OpState::kSent) {
      // Settled by a pull already (a power loss undid this completion once): only the record is left.
      st = DeviceStore::DeleteUpload(txn.get(), u.op_id);
      if (st.ok()) st = txn->Commit();
      if (st.ok()) Remove(u.op_id);
      return;
    }
    if (st.ok() && (s.op.state != OpState::kPending || r.failed || blob_id.empty())) return;
    keys::StreamMeta m;
    if (st.ok()) st = DeviceStore::LoadMeta(txn.get(), s.op.stream, &m);
    if (st.ok()) {
      stream = s.op.stream;
      // Its place in the stream's order is taken now: ops submitted meanwhile went before it.
      s.op.device_counter = m.next_counter++;
      s.op.attachment.blob_id = blob_id;
      s.op.attempts = 0;
      s.op.next_attempt_at_ms = now;
      ++m.outbox;
      st = DeviceStore::PutOp(txn.get(), s);
    }
    if (st.ok()) st = DeviceStore::PutEntry(txn.get(), stream, s.op.device_counter, {.op_id = u.op_id});
    if (st.ok()) st = DeviceStore::PutMeta(txn.get(), stream, m);
    if (st.ok()) st = DeviceStore::DeleteUpload(txn.get(), u.op_id);
    if (st.ok()) {
      Tally tally;
      tally.outbox = 1;
      st = ctx_.store->Commit(txn.get(), tally, {OpChange(Change::Kind::kUpdated, s.op)});
    }
    if (st.ok()) ctx_.dirty.insert(stream);
  }
  if (!st.ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    return;  // the server holds the file: the next step asks its offset again and completes then
  }
  Remove(u.op_id);
  on_ready_(stream);
}

void Uploader::Fail(const codec::UploadRecord& u, const Status& why) {
  Status st;
  {
    MutexLock lock(&ctx_.mu);
    std::unique_ptr<WriteTxn> txn;
    codec::UploadRecord r;
    StoredOp s;
    st = Load(u.op_id, &txn, &r, &s);
    if (st.IsNotFound()) return;
    Status reason = Status::FromCode(why.code(), "upload failed: " + why.message());
    r.failed = true;
    r.last_error = reason.message();
    r.last_error_code = reason.code();
    if (st.ok()) st = DeviceStore::PutUpload(txn.get(), r);
    Tally tally;
    std::vector<Change> changes;
    if (st.ok() && s.op.state == OpState::kPending) {
      keys::StreamMeta m;
      st = DeviceStore::LoadMeta(txn.get(), s.op.stream, &m);
      if (st.ok()) st = DeviceStore::MarkFailed(txn.get(), s, reason, /*release_counter=*/false, &m, &tally);
      if (st.ok()) st = DeviceStore::PutMeta(txn.get(), s.op.stream, m);
      changes.push_back(OpChange(Change::Kind::kUpdated, s.op));
    }
    if (st.ok()) st = ctx_.store->Commit(txn.get(), tally, changes);
  }
  if (!st.ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
  } else {
    MutexLock lock(&mu_);
    auto it = gauges_.find(u.op_id);
    if (it != gauges_.end()) it->second.failed = true;
  }
  Forget(u.op_id);
}

void Uploader::Backoff(const codec::UploadRecord& u, const Status& why, int64_t now) {
  uint32_t attempts = u.attempts + 1;
  bool exhausted = (ctx_.opt.attempts_max > 0 && attempts >= ctx_.opt.attempts_max) ||
                   (ctx_.opt.age_ms_max > 0 && now - u.created_at_ms >= ctx_.opt.age_ms_max);
  if (exhausted) {
    Fail(u, Status::FromCode(why.code(),
                             "exhausted after " + std::to_string(attempts) + " attempts: " + why.message()));
    return;
  }
  int64_t delay = ctx_.Backoff(attempts, ctx_.opt.backoff_cap_ms);
  (void)Update(u.op_id, [&](codec::UploadRecord& r) {
    r.attempts = attempts;
    r.next_attempt_at_ms = now + delay;
    r.last_error = why.message();
    r.last_error_code = why.code();
  });
}

void Uploader::FillStats(ClientStats* s) {
  MutexLock lock(&mu_);
  for (const auto& [id, g] : gauges_) {
    ++s->uploads;
    s->upload_bytes_done += g.offset;
    s->upload_bytes_total += g.size;
  }
}

}  // namespace outpost
