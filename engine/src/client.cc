// Copyright 2026 The Outpost Authors.
//
// Client: open, the submit path (group commit on one commit thread), reads, op changes by the API,
// observers, and the sync loop's driver (connection, Hello/Welcome, frame dispatch). Flushing lives in
// flusher.cc, merging in merger.cc.
#include <algorithm>
#include <future>

#include "client_impl.h"

namespace outpost {

namespace {

const std::vector<std::string>& SpaceNames() {
  static const std::vector<std::string> names = {"meta",   "streams", "view",      "opindex",
                                                 "outbox", "failed",  "watermarks"};
  return names;
}

constexpr size_t kOpsPerCommitMax = 8192;

}  // namespace

Client::Impl::Impl(ClientOptions options)
    : opt_(std::move(options)), env_(opt_.env ? opt_.env : SystemEnv()), ids_(env_) {}

Client::Impl::~Impl() {
  Stop();
  {
    std::lock_guard<std::mutex> lock(submit_mu_);
    commit_stop_ = true;
    submit_cv_.notify_all();
  }
  if (committer_.joinable()) committer_.join();
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done_stop_ = true;
    done_cv_.notify_all();
  }
  if (completer_.joinable()) completer_.join();
  std::lock_guard<std::mutex> lock(step_mu_);
  if (conn_) conn_->SetWakeup(nullptr);
}

Status Client::Impl::Init() {
  if (opt_.device.size() > 255) return Status::InvalidArgument("device id must be at most 255 bytes");
  if (opt_.user.size() > 255) return Status::InvalidArgument("user must be at most 255 bytes");
  if (opt_.ops_per_batch_max == 0 || opt_.batches_inflight_max == 0 || opt_.pull_page_max == 0 ||
      opt_.submit_queue_max == 0 || opt_.backoff_base_ms <= 0 || opt_.backoff_cap_ms < opt_.backoff_base_ms ||
      opt_.ack_timeout_ms <= 0) {
    return Status::InvalidArgument("client limits must be positive (and backoff_cap_ms >= backoff_base_ms)");
  }
  StorageOptions so;
  so.spaces = SpaceNames();
  so.sync = opt_.store_sync;
  OUTPOST_ASSIGN_OR_RETURN(store_,
                           opt_.open_store ? opt_.open_store(opt_.store, so) : OpenStorage(opt_.store, so));
  if (opt_.dialer) {
    dialer_ = opt_.dialer;
  } else if (!opt_.server.empty()) {
    OUTPOST_ASSIGN_OR_RETURN(auto d, NewDialer(opt_.server));
    dialer_ = std::move(d);
  }
  // Identity: a store belongs to one device and user for life.
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string v;
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
  device_ = opt_.device;
  st = txn->Get(kMeta, "local_seq", &v);
  if (st.ok() && v.size() == 8) {
    local_seq_ = keys::GetBE64(v);
  } else if (!st.IsNotFound()) {
    return st.ok() ? Status::Corruption("bad local_seq") : st;
  }
  // The sync side's view of every stream.
  int64_t outbox = 0, failed = 0;
  auto cur = txn->NewCursor(kStreams);
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    keys::StreamMeta m;
    OUTPOST_RETURN_IF_ERROR(keys::DecodeStreamMeta(cur->value(), &m));
    StreamSync& ss = streams_[std::string(cur->key())];
    ss.followed = m.followed != 0;
    ss.cursor = m.cursor;
    ss.server_high = m.high_seq;
    if (m.outbox > 0) dirty_.emplace(cur->key());
    outbox += static_cast<int64_t>(m.outbox);
    failed += static_cast<int64_t>(m.failed);
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  cur.reset();
  // Pending ops' ages, from one scan: Stats() keeps them up to date from here on without reading the store.
  cur = txn->NewCursor(kOutbox);
  for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
    std::string_view ov = cur->value();
    if (ov.size() != 17 || ov[0] == static_cast<char>(keys::kOutboxSkip)) continue;
    auto id = OpId::FromBytes(ov.substr(1));
    if (!id.ok()) continue;
    std::string vkey;
    OpInfo op;
    if (LoadOp(txn.get(), *id, &vkey, &op, nullptr).ok() && op.state == OpState::kPending) {
      pending_created_.insert(op.created_at_ms);
    }
  }
  OUTPOST_RETURN_IF_ERROR(cur->status());
  cur.reset();
  read_receipts_ = opt_.send_read_receipts;
  st = txn->Get(kMeta, "read_receipts", &v);
  if (st.ok()) {
    read_receipts_ = v == "1";
  } else if (!st.IsNotFound()) {
    return st;
  }
  OUTPOST_RETURN_IF_ERROR(txn->Commit());
  outbox_depth_ = outbox;
  failed_count_ = failed;
  committer_ = std::thread([this] { CommitLoop(); });
  completer_ = std::thread([this] { CompleteLoop(); });
  return Status::OK();
}

// ---- store helpers ----

Status Client::Impl::LoadMeta(ReadTxn* txn, std::string_view stream, keys::StreamMeta* meta) {
  std::string v;
  Status st = txn->Get(kStreams, stream, &v);
  if (st.IsNotFound()) {
    *meta = keys::StreamMeta();
    return Status::OK();
  }
  OUTPOST_RETURN_IF_ERROR(st);
  return keys::DecodeStreamMeta(v, meta);
}

Status Client::Impl::PutMeta(WriteTxn* txn, std::string_view stream, const keys::StreamMeta& meta) {
  return txn->Put(kStreams, stream, keys::EncodeStreamMeta(meta));
}

Status Client::Impl::LoadOp(ReadTxn* txn, const OpId& id, std::string* view_key, OpInfo* op,
                            uint64_t* local_seq) {
  OUTPOST_RETURN_IF_ERROR(txn->Get(kOpIndex, id.AsBytes(), view_key));
  std::string v;
  Status st = txn->Get(kView, *view_key, &v);
  if (st.IsNotFound()) return Status::Corruption("op index points at a missing view record");
  OUTPOST_RETURN_IF_ERROR(st);
  OUTPOST_RETURN_IF_ERROR(codec::DecodeRecord(v, op, local_seq));
  op->position = *view_key;
  return Status::OK();
}

Status Client::Impl::PutOp(WriteTxn* txn, const std::string& view_key, const OpInfo& op, uint64_t local_seq) {
  OUTPOST_RETURN_IF_ERROR(txn->Put(kView, view_key, codec::EncodeRecord(op, local_seq)));
  return txn->Put(kOpIndex, op.op_id.AsBytes(), view_key);
}

Status Client::Impl::SettleOp(WriteTxn* txn, const std::string& view_key, OpInfo& op, uint64_t local_seq,
                              uint64_t seq, keys::StreamMeta* meta, std::vector<Change>* changes,
                              Tally* tally, bool* refused, uint64_t applied_counter) {
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
    OUTPOST_RETURN_IF_ERROR(txn->Delete(kFailed, keys::FailedKey(local_seq)));
    if (meta->failed > 0) --meta->failed;
    --tally->failed;
  } else {
    tally->pending_gone.push_back(op.created_at_ms);
  }
  OUTPOST_RETURN_IF_ERROR(txn->Delete(kView, view_key));
  op.state = OpState::kSent;
  op.seq = seq;
  if (applied_counter != 0) op.device_counter = applied_counter;
  op.last_error.clear();
  op.last_error_code = Status::Code::kOk;
  std::string key = keys::ViewKey(op.stream, keys::kSectionSent, seq);
  OUTPOST_RETURN_IF_ERROR(PutOp(txn, key, op, local_seq));
  changes->push_back({Change::Kind::kUpdated, op.stream, op.op_id});
  return Status::OK();
}

Status Client::Impl::MarkFailed(WriteTxn* txn, const std::string& view_key, OpInfo& op, uint64_t local_seq,
                                Status why, bool release_counter, keys::StreamMeta* meta, Tally* tally) {
  if (op.state == OpState::kPending) tally->pending_gone.push_back(op.created_at_ms);
  if (release_counter) {
    // The server never judged it: its counter becomes a skip so the ops after it are not held up.
    std::string okey = keys::OutboxKey(op.stream, op.device_counter);
    std::string value(1, static_cast<char>(keys::kOutboxSkip));
    value.append(op.op_id.AsBytes());
    OUTPOST_RETURN_IF_ERROR(txn->Put(kOutbox, okey, value));
    op.device_counter = 0;
  }
  op.state = OpState::kFailed;
  op.last_error = why.message();
  op.last_error_code = why.code();
  OUTPOST_RETURN_IF_ERROR(PutOp(txn, view_key, op, local_seq));
  OUTPOST_RETURN_IF_ERROR(txn->Put(kFailed, keys::FailedKey(local_seq), op.op_id.AsBytes()));
  ++meta->failed;
  ++tally->failed;
  return Status::OK();
}

void Client::Impl::ApplyTally(const Tally& tally) {
  outbox_depth_ += tally.outbox;
  failed_count_ += tally.failed;
  if (tally.pending_added.empty() && tally.pending_gone.empty()) return;
  std::lock_guard<std::mutex> lock(pending_mu_);
  for (int64_t t : tally.pending_added) pending_created_.insert(t);
  for (int64_t t : tally.pending_gone) {
    auto it = pending_created_.find(t);
    if (it != pending_created_.end()) pending_created_.erase(it);
  }
}

int64_t Client::Impl::Backoff(uint32_t failures, int64_t cap_ms) {
  int64_t ceiling = cap_ms;
  if (failures < 40) ceiling = std::min<int64_t>(cap_ms, opt_.backoff_base_ms << std::min(failures, 30u));
  return static_cast<int64_t>(env_->Uniform(static_cast<uint64_t>(ceiling) + 1));  // full jitter
}

namespace {
// The client whose callback this thread is running (nullptr: none).
thread_local const Client::Impl* tl_in_callback = nullptr;
}  // namespace

bool Client::Impl::InCallback() const { return tl_in_callback == this; }

void Client::Impl::Emit(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  std::lock_guard<std::mutex> lock(deliver_mu_);
  deliver_queue_.push_back(changes);
  ++queued_total_;
}

void Client::Impl::Deliver(bool wait) {
  if (InCallback()) return;  // the delivery this callback is part of runs them when it returns
  std::unique_lock<std::mutex> lock(deliver_mu_);
  const uint64_t upto = queued_total_;
  while (delivering_) {
    if (!wait || delivered_total_ >= upto) return;
    deliver_cv_.wait(lock);
  }
  delivering_ = true;
  const Impl* outer = tl_in_callback;
  while (!deliver_queue_.empty()) {
    std::vector<Change> changes = std::move(deliver_queue_.front());
    deliver_queue_.pop_front();
    lock.unlock();
    std::vector<std::pair<uint64_t, std::string>> targets;
    {
      std::lock_guard<std::mutex> olock(obs_mu_);
      for (const auto& [id, obs] : observers_) targets.emplace_back(id, obs.first);
    }
    for (const auto& [id, stream] : targets) {
      std::vector<Change> mine;
      if (!stream.empty()) {
        for (const auto& c : changes) {
          if (c.stream == stream) mine.push_back(c);
        }
        if (mine.empty()) continue;
      }
      ChangeCallback cb;
      {
        std::lock_guard<std::mutex> olock(obs_mu_);
        auto it = observers_.find(id);
        if (it == observers_.end()) continue;  // unsubscribed meanwhile: no call starts after Unsubscribe
        cb = it->second.second;
        running_observer_ = id;
      }
      tl_in_callback = this;
      cb(stream.empty() ? changes : mine);
      tl_in_callback = outer;
      {
        std::lock_guard<std::mutex> olock(obs_mu_);
        running_observer_ = 0;
        obs_cv_.notify_all();
      }
    }
    lock.lock();
    ++delivered_total_;
    deliver_cv_.notify_all();
  }
  delivering_ = false;
  deliver_cv_.notify_all();
}

void Client::Impl::Post(const std::function<void(Inbox&)>& fn) {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  fn(inbox_);
  inbox_.wake = true;
  inbox_cv_.notify_all();
}

// ---- submit path ----

void Client::Impl::Enqueue(std::vector<NewOp> ops, std::vector<OpId> ids,
                           std::function<void(const Status&, const std::vector<OpId>&)> done) {
  std::unique_lock<std::mutex> lock(submit_mu_);
  // Bounded: a producer faster than the disk waits here instead of growing memory without limit.
  space_cv_.wait(lock, [&] { return queued_ops_ < opt_.submit_queue_max || commit_stop_; });
  if (commit_stop_) {
    lock.unlock();
    done(Status::Aborted("client is closing"), {});
    return;
  }
  queued_ops_ += ops.size();
  queue_.push_back({std::move(ops), std::move(ids), std::move(done)});
  submit_cv_.notify_one();
}

Result<std::vector<OpId>> Client::Impl::SubmitAndWait(std::vector<NewOp> ops) {
  if (InCallback()) {
    // It would wait for the completion thread, which may be the one running this callback.
    return Status::FailedPrecondition(
        "Submit and SubmitBatch cannot be called from a change callback; use "
        "SubmitAsync");
  }
  std::vector<OpId> ids;
  ids.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) ids.push_back(ids_.Next());
  std::promise<Status> done;
  auto fut = done.get_future();
  Enqueue(std::move(ops), ids, [&done](const Status& st, const std::vector<OpId>&) { done.set_value(st); });
  Status st = fut.get();
  if (!st.ok()) return st;
  return ids;
}

void Client::Impl::CommitLoop() {
  for (;;) {
    std::deque<SubmitRequest> batch;
    {
      std::unique_lock<std::mutex> lock(submit_mu_);
      submit_cv_.wait(lock, [&] { return !queue_.empty() || commit_stop_; });
      if (queue_.empty()) return;
      size_t ops = 0;
      while (!queue_.empty() && (batch.empty() || ops + queue_.front().ops.size() <= kOpsPerCommitMax)) {
        ops += queue_.front().ops.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_ops_ -= ops;
      space_cv_.notify_all();
    }
    CommitRequests(batch);
  }
}

void Client::Impl::CommitRequests(std::deque<SubmitRequest>& batch) {
  std::vector<Status> verdicts(batch.size());
  // Validate first: a bad request is answered alone and never touches the store.
  for (size_t r = 0; r < batch.size(); ++r) {
    for (const NewOp& op : batch[r].ops) {
      Status st = keys::ValidateStream(op.stream, opt_.stream_id_bytes_max);
      if (st.ok() && op.kind.size() > opt_.kind_bytes_max) {
        st = Status::InvalidArgument("kind is " + std::to_string(op.kind.size()) + " bytes (max " +
                                     std::to_string(opt_.kind_bytes_max) + ")");
      }
      if (st.ok() && op.payload.size() > opt_.payload_bytes_max) {
        st = Status::InvalidArgument("payload is " + std::to_string(op.payload.size()) + " bytes (max " +
                                     std::to_string(opt_.payload_bytes_max) + ")");
      }
      if (!st.ok()) {
        verdicts[r] = st;
        break;
      }
    }
    if (batch[r].ops.empty()) verdicts[r] = Status::InvalidArgument("no ops to submit");
  }
  std::vector<Change> changes;
  std::map<std::string, keys::StreamMeta> metas;
  int64_t added = 0;
  std::vector<int64_t> created;
  uint64_t local_seq = local_seq_;
  Status st;
  // A store that ran out of room (LMDB's map) grows before the next transaction: one more try.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt > 0) {
      if (st.code() != Status::Code::kFull) break;
      changes.clear();
      metas.clear();
      added = 0;
      created.clear();
      local_seq = local_seq_;
    }
    auto txn_or = store_->BeginWrite();
    st = txn_or.status();
    if (st.ok()) {
      WriteTxn* txn = txn_or->get();
      int64_t now = env_->NowMs();
      for (size_t r = 0; r < batch.size() && st.ok(); ++r) {
        if (!verdicts[r].ok()) continue;
        for (size_t i = 0; i < batch[r].ops.size() && st.ok(); ++i) {
          const NewOp& op = batch[r].ops[i];
          auto [it, fresh] = metas.try_emplace(op.stream);
          if (fresh) st = LoadMeta(txn, op.stream, &it->second);
          if (!st.ok()) break;
          keys::StreamMeta& m = it->second;
          OpInfo rec;
          rec.op_id = batch[r].ids[i];
          rec.stream = op.stream;
          rec.kind = op.kind;
          rec.payload = op.payload;
          rec.user = user_;
          rec.device = device_;
          rec.own = true;
          rec.device_counter = m.next_counter++;
          rec.client_time_ms = op.options.client_time_ms ? op.options.client_time_ms : now;
          rec.depends_on = op.options.depends_on;
          rec.created_at_ms = now;
          rec.next_attempt_at_ms = now;
          ++local_seq;
          std::string vkey = keys::ViewKey(op.stream, keys::kSectionUnsent, local_seq);
          st = PutOp(txn, vkey, rec, local_seq);
          if (st.ok()) {
            std::string value(1, '\0');
            value.append(rec.op_id.AsBytes());
            st = txn->Put(kOutbox, keys::OutboxKey(op.stream, rec.device_counter), value);
          }
          ++m.outbox;
          m.followed = 1;
          ++added;
          created.push_back(now);
          changes.push_back({Change::Kind::kAdded, op.stream, rec.op_id});
        }
      }
      for (const auto& [stream, m] : metas) {
        if (st.ok()) st = PutMeta(txn, stream, m);
      }
      if (st.ok()) {
        std::string v;
        keys::PutBE64(&v, local_seq);
        st = txn->Put(kMeta, "local_seq", v);
      }
      if (st.ok()) st = txn->Commit();
    }
    if (st.ok()) break;
  }
  if (st.ok()) {
    local_seq_ = local_seq;
    ApplyTally({.outbox = added, .pending_added = std::move(created)});
    // Queued before the sync side can see the ops, so that their kAdded comes before any later change.
    Emit(changes);
    if (!metas.empty()) {
      Post([&](Inbox& in) {
        for (const auto& [stream, m] : metas) {
          in.dirty.insert(stream);
          in.follow.insert(stream);
        }
      });
    }
  }
  for (auto& v : verdicts) {
    if (v.ok()) v = st;
  }
  // Callbacks and observers run on the completion thread, so the next group's transaction starts at once.
  std::lock_guard<std::mutex> lock(done_mu_);
  done_queue_.push_back({std::move(batch), std::move(verdicts)});
  done_cv_.notify_one();
}

void Client::Impl::CompleteLoop() {
  for (;;) {
    Completion c;
    {
      std::unique_lock<std::mutex> lock(done_mu_);
      done_cv_.wait(lock, [&] { return !done_queue_.empty() || done_stop_; });
      if (done_queue_.empty()) return;
      c = std::move(done_queue_.front());
      done_queue_.pop_front();
    }
    // Observers see the ops before their submitters return (a callback never waits for a submit: Submit
    // refuses to run in one).
    Deliver(/*wait=*/true);
    for (size_t r = 0; r < c.requests.size(); ++r) {
      const Status& verdict = c.verdicts[r];
      c.requests[r].done(verdict, verdict.ok() ? c.requests[r].ids : std::vector<OpId>());
    }
  }
}

// ---- reads ----

namespace {

Status ScanBack(ReadTxn* txn, std::string_view prefix, Cursor* cur, size_t n, std::vector<OpInfo>* out) {
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
  OUTPOST_RETURN_IF_ERROR(ScanBack(txn.get(), prefix, cur.get(), n, &out));
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
  OUTPOST_RETURN_IF_ERROR(ScanBack(txn.get(), prefix, cur.get(), n, &out));
  return out;
}

Result<OpInfo> Client::Impl::Get(const OpId& id) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::string vkey;
  OpInfo op;
  Status st = LoadOp(txn.get(), id, &vkey, &op, nullptr);
  if (st.IsNotFound()) return Status::NotFound("no op " + id.ToString());
  OUTPOST_RETURN_IF_ERROR(st);
  return op;
}

Result<std::vector<OpInfo>> Client::Impl::Outbox(size_t limit) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::vector<std::pair<uint64_t, OpInfo>> found;
  auto collect = [&](SpaceId space, size_t id_offset) -> Status {
    auto cur = txn->NewCursor(space);
    for (cur->SeekToFirst(); cur->Valid(); cur->Next()) {
      std::string_view v = cur->value();
      if (v.size() != id_offset + 16) continue;
      if (space == kOutbox && v[0] == static_cast<char>(keys::kOutboxSkip)) continue;
      auto id = OpId::FromBytes(v.substr(id_offset));
      if (!id.ok()) continue;
      std::string vkey;
      OpInfo op;
      uint64_t local_seq = 0;
      Status st = LoadOp(txn.get(), *id, &vkey, &op, &local_seq);
      if (st.IsNotFound()) continue;
      OUTPOST_RETURN_IF_ERROR(st);
      found.emplace_back(local_seq, std::move(op));
    }
    return cur->status();
  };
  OUTPOST_RETURN_IF_ERROR(collect(kOutbox, 1));
  OUTPOST_RETURN_IF_ERROR(collect(kFailed, 0));
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
  OUTPOST_RETURN_IF_ERROR(LoadMeta(txn.get(), stream, &m));
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

// ---- op changes from the API ----

Status Client::Impl::Retry(const OpId& id) {
  std::string stream;
  {
    // Under the sync side's lock, so that its events queue in commit order with the sync side's.
    std::lock_guard<std::mutex> step_lock(step_mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
    std::string vkey;
    OpInfo op;
    uint64_t local_seq = 0;
    Status st = LoadOp(txn.get(), id, &vkey, &op, &local_seq);
    if (st.IsNotFound()) return Status::NotFound("no op " + id.ToString());
    OUTPOST_RETURN_IF_ERROR(st);
    if (!op.own || op.state != OpState::kFailed) {
      return Status::FailedPrecondition("op " + id.ToString() + " is not a failed op of this device");
    }
    keys::StreamMeta m;
    OUTPOST_RETURN_IF_ERROR(LoadMeta(txn.get(), op.stream, &m));
    op.state = OpState::kPending;
    op.device_counter = m.next_counter++;
    op.attempts = 0;
    op.next_attempt_at_ms = env_->NowMs();
    op.last_error.clear();
    op.last_error_code = Status::Code::kOk;
    OUTPOST_RETURN_IF_ERROR(PutOp(txn.get(), vkey, op, local_seq));
    // Marked as the user's retry: the server judges a rejected op afresh only then.
    std::string value(1, static_cast<char>(keys::kOutboxRetry));
    value.append(op.op_id.AsBytes());
    OUTPOST_RETURN_IF_ERROR(txn->Put(kOutbox, keys::OutboxKey(op.stream, op.device_counter), value));
    OUTPOST_RETURN_IF_ERROR(txn->Delete(kFailed, keys::FailedKey(local_seq)));
    if (m.failed > 0) --m.failed;
    ++m.outbox;
    OUTPOST_RETURN_IF_ERROR(PutMeta(txn.get(), op.stream, m));
    OUTPOST_RETURN_IF_ERROR(txn->Commit());
    ApplyTally({.outbox = 1, .failed = -1, .pending_added = {op.created_at_ms}});
    stream = op.stream;
    Emit({{Change::Kind::kUpdated, op.stream, op.op_id}});
  }
  Post([&](Inbox& in) { in.dirty.insert(stream); });
  Deliver(/*wait=*/true);
  return Status::OK();
}

Status Client::Impl::Discard(const OpId& id) {
  std::string stream;
  {
    std::lock_guard<std::mutex> step_lock(step_mu_);
    OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
    std::string vkey;
    OpInfo op;
    uint64_t local_seq = 0;
    Status st = LoadOp(txn.get(), id, &vkey, &op, &local_seq);
    if (st.IsNotFound()) return Status::NotFound("no op " + id.ToString());
    OUTPOST_RETURN_IF_ERROR(st);
    if (!op.own || op.state == OpState::kSent) {
      return Status::FailedPrecondition("op " + id.ToString() + " was already sent; it cannot be discarded");
    }
    keys::StreamMeta m;
    OUTPOST_RETURN_IF_ERROR(LoadMeta(txn.get(), op.stream, &m));
    if (op.state == OpState::kPending) {
      // Its counter is still ours: turn the outbox entry into a skip.
      std::string okey = keys::OutboxKey(op.stream, op.device_counter);
      std::string value(1, static_cast<char>(keys::kOutboxSkip));
      value.append(op.op_id.AsBytes());
      OUTPOST_RETURN_IF_ERROR(txn->Put(kOutbox, okey, value));
    } else {
      OUTPOST_RETURN_IF_ERROR(txn->Delete(kFailed, keys::FailedKey(local_seq)));
      if (m.failed > 0) --m.failed;
    }
    OUTPOST_RETURN_IF_ERROR(txn->Delete(kView, vkey));
    OUTPOST_RETURN_IF_ERROR(txn->Delete(kOpIndex, op.op_id.AsBytes()));
    OUTPOST_RETURN_IF_ERROR(PutMeta(txn.get(), op.stream, m));
    OUTPOST_RETURN_IF_ERROR(txn->Commit());
    Tally tally;
    if (op.state == OpState::kFailed) {
      tally.failed = -1;
    } else {
      tally.pending_gone.push_back(op.created_at_ms);
    }
    ApplyTally(tally);
    stream = op.stream;
    Emit({{Change::Kind::kRemoved, op.stream, op.op_id}});
  }
  Post([&](Inbox& in) { in.dirty.insert(stream); });
  Deliver(/*wait=*/true);
  return Status::OK();
}

Result<bool> Client::Impl::UpdateMeta(std::string_view stream,
                                      const std::function<bool(keys::StreamMeta&)>& change) {
  OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(stream, opt_.stream_id_bytes_max));
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  keys::StreamMeta m;
  OUTPOST_RETURN_IF_ERROR(LoadMeta(txn.get(), stream, &m));
  if (!change(m)) return false;
  OUTPOST_RETURN_IF_ERROR(PutMeta(txn.get(), stream, m));
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
  std::lock_guard<std::mutex> lock(inbox_mu_);
  read_receipts_ = on;
  return Status::OK();
}

bool Client::Impl::read_receipts() {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  return read_receipts_;
}

uint64_t Client::Impl::Subscribe(std::string_view stream, ChangeCallback cb) {
  std::lock_guard<std::mutex> lock(obs_mu_);
  uint64_t id = next_observer_++;
  observers_.emplace(id, std::make_pair(std::string(stream), std::move(cb)));
  return id;
}

void Client::Impl::Unsubscribe(uint64_t id) {
  std::unique_lock<std::mutex> lock(obs_mu_);
  observers_.erase(id);
  // Callbacks run one at a time on the delivering thread: from inside one, the running call is this
  // thread's own and must not be waited for.
  if (InCallback()) return;
  obs_cv_.wait(lock, [&] { return running_observer_ != id; });
}

// ---- sync driver ----

Client::Impl::StreamSync& Client::Impl::SyncOf(std::string_view stream) {
  auto it = streams_.find(std::string(stream));
  if (it == streams_.end()) it = streams_.emplace(std::string(stream), StreamSync()).first;
  return it->second;
}

void Client::Impl::ApplyInbox() {
  Inbox in;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    std::swap(in, inbox_);
  }
  for (const auto& s : in.dirty) dirty_.insert(s);
  for (const auto& s : in.follow) {
    StreamSync& ss = SyncOf(s);
    if (!ss.followed) {
      ss.followed = true;
      // Already connected: the server learns of the stream from our first pull of it.
      // Not yet connected: OnWelcome pulls it.
      if (session_ == Session::kReady && !ss.pull_outstanding) {
        Send(codec::EncodePull(s, ss.cursor, opt_.pull_page_max));
        ss.pull_outstanding = true;
        ss.pull_sent_at = env_->NowMs();
        ss.high_at_pull = ss.server_high;
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.pulls;
      }
    }
  }
  for (const auto& s : in.wm_dirty) SyncOf(s).wm_dirty = true;
  if (in.new_token) {
    // An explicit new token: try again at once, even after an authentication failure.
    opt_.token = std::move(in.token);
    auth_failed_ = false;
    connect_failures_ = 0;
    next_connect_at_ = 0;
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.auth_failed = false;
  }
  if (in.disconnect && conn_) {
    conn_->Close();
    OnDisconnected(env_->NowMs(), "disconnected by the application");
  }
}

void Client::Impl::Send(std::string frame) {
  if (!conn_) return;
  (void)conn_->Send(frame);  // a closed connection shows up as !IsOpen() on the next step
}

void Client::Impl::OnDisconnected(int64_t now, std::string why) {
  if (conn_) conn_->SetWakeup(nullptr);
  conn_.reset();
  session_ = Session::kOffline;
  inflight_.clear();
  for (auto& [stream, ss] : streams_) {
    ss.sent_upto = 0;
    ++ss.epoch;
    ss.inflight = 0;
    ss.pull_outstanding = false;
    if (outbox_depth_ > 0) dirty_.insert(stream);
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.last_connection_error = std::move(why);
  }
  next_connect_at_ = now + Backoff(connect_failures_++, std::min(opt_.reconnect_cap_ms, opt_.backoff_cap_ms));
}

void Client::Impl::EnsureConnected(int64_t now) {
  if (conn_ && !conn_->IsOpen()) {
    // The server's last words (a fatal Error saying why it closed) arrive before the close: read them.
    ReceiveAll(now);
    if (conn_) OnDisconnected(now, "connection lost");
  }
  bool online;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    online = online_;
  }
  if (conn_ || !online || !dialer_ || auth_failed_ || now < next_connect_at_) return;
  auto c = dialer_->Connect();
  if (!c.ok()) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      stats_.last_connection_error = c.status().ToString();
    }
    next_connect_at_ =
        now + Backoff(connect_failures_++, std::min(opt_.reconnect_cap_ms, opt_.backoff_cap_ms));
    return;
  }
  conn_ = std::move(c).value();
  conn_->SetWakeup([this] { Post([](Inbox&) {}); });
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.connects;
  }
  SendHello(now);
}

void Client::Impl::SendHello(int64_t now) {
  flatbuffers::FlatBufferBuilder b(1024);
  std::vector<flatbuffers::Offset<wire::StreamCursor>> cursors;
  for (const auto& [stream, ss] : streams_) {
    if (ss.followed) cursors.push_back(wire::CreateStreamCursor(b, b.CreateString(stream), ss.cursor));
  }
  auto cv = b.CreateVector(cursors);
  auto hello = wire::CreateHello(b, b.CreateString(user_), b.CreateString(device_),
                                 b.CreateString(opt_.token), codec::kProtocolVersion, cv);
  Send(codec::FinishFrame(b, wire::Body::Hello, hello.Union()));
  session_ = Session::kHelloSent;
  hello_sent_at_ = now;
}

void Client::Impl::OnWelcome(const wire::Welcome& w, int64_t now) {
  if (session_ != Session::kHelloSent) return;
  if (w.protocol_version() != codec::kProtocolVersion) {
    if (conn_) conn_->Close();
    OnDisconnected(now, "server speaks protocol " + std::to_string(w.protocol_version()) + ", this client " +
                            std::to_string(codec::kProtocolVersion));
    return;
  }
  session_ = Session::kReady;
  connect_failures_ = 0;
  server_ops_per_batch_max_ = w.ops_per_batch_max();
  server_frame_bytes_max_ = w.frame_bytes_max();
  server_payload_bytes_max_ = w.payload_bytes_max();
  server_kind_bytes_max_ = w.kind_bytes_max();
  server_stream_id_bytes_max_ = w.stream_id_bytes_max();
  // Queued ops beyond these limits fail when the flush reaches them (SendBatch), each with its reason.
  for (auto& [stream, ss] : streams_) {
    if (outbox_depth_ > 0) dirty_.insert(stream);
  }
  std::set<std::string_view> known;  // streams the server follows for this session
  if (w.counters()) {
    for (const auto* dc : *w.counters()) {
      std::string_view stream = codec::Str(dc->stream());
      if (!keys::ValidateStream(stream, 255).ok()) continue;
      known.insert(stream);
      StreamSync& ss = SyncOf(stream);
      ss.server_high = std::max(ss.server_high, dc->high_seq());
      ss.probe_upto = dc->counter();
    }
  }
  for (auto& [stream, ss] : streams_) {
    if (!ss.followed) continue;
    ss.wm_dirty = true;
    // Followed after the Hello left (or refused by the server): the first pull tells the server about it.
    if (!known.contains(stream) && !ss.pull_outstanding) {
      Send(codec::EncodePull(stream, ss.cursor, opt_.pull_page_max));
      ss.pull_outstanding = true;
      ss.pull_sent_at = now;
      ss.high_at_pull = ss.server_high;
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.pulls;
    }
  }
}

void Client::Impl::ReceiveAll(int64_t now) {
  std::vector<std::string> frames;
  std::string frame;
  for (int i = 0; i < 4096 && conn_ && conn_->Receive(&frame); ++i) frames.push_back(std::move(frame));
  std::vector<const wire::PushAck*> acks;  // a run of acks, settled in one transaction
  for (const std::string& bytes : frames) {
    auto decoded = codec::DecodeFrame(bytes, std::max<uint32_t>(server_frame_bytes_max_, 64u << 20));
    if (!decoded.ok()) {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.bad_frames;
      continue;
    }
    const wire::Frame* f = *decoded;
    if (f->body_type() == wire::Body::PushAck && session_ == Session::kReady) {
      acks.push_back(f->body_as_PushAck());
      continue;
    }
    if (!acks.empty()) {
      OnPushAcks(acks, now);
      acks.clear();
    }
    HandleFrame(*f, now);
  }
  if (!acks.empty()) OnPushAcks(acks, now);
}

void Client::Impl::HandleFrame(const wire::Frame& frame, int64_t now) {
  const wire::Frame* f = &frame;
  switch (f->body_type()) {
    case wire::Body::Welcome:
      OnWelcome(*f->body_as_Welcome(), now);
      break;
    case wire::Body::PushAck:
      if (session_ == Session::kReady) OnPushAcks({f->body_as_PushAck()}, now);
      break;
    case wire::Body::Batch:
      if (session_ == Session::kReady) OnBatch(*f->body_as_Batch(), now);
      break;
    case wire::Body::Notify: {
      std::string_view stream = codec::Str(f->body_as_Notify()->stream());
      if (!keys::ValidateStream(stream, 255).ok()) break;
      StreamSync& ss = SyncOf(stream);
      ss.server_high = std::max(ss.server_high, f->body_as_Notify()->high_seq());
      break;
    }
    case wire::Body::Watermark:
      OnWatermark(*f->body_as_Watermark());
      break;
    case wire::Body::Error: {
      const wire::Error* e = f->body_as_Error();
      const auto code = static_cast<Status::Code>(e->code());
      std::string_view message = codec::Str(e->message());
      std::string why = std::string(Status::CodeName(code)) + ": " + std::string(message);
      // The server refused our credentials: retrying with them cannot help (Client::SetToken).
      const bool auth_failed = e->fatal() && code == Status::Code::kPermissionDenied &&
                               message.starts_with("authentication failed");
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        stats_.last_connection_error = why;
        if (auth_failed) stats_.auth_failed = true;
      }
      if (auth_failed) auth_failed_ = true;
      if (e->fatal()) {
        if (conn_) conn_->Close();
        OnDisconnected(now, why);
      } else if (code == Status::Code::kBusy) {
        // The server could not make a group durable: everything in it must be asked again. Pushes in flight
        // time out now (and back off), watermarks not yet echoed are resent, pulls not yet answered too.
        for (auto& [id, b] : inflight_) b.sent_at = now - opt_.ack_timeout_ms;
        for (auto& [stream, ss] : streams_) {
          if (ss.wm_sent_delivered > 0 || ss.wm_sent_read > 0) ss.wm_dirty = true;
          if (ss.pull_outstanding) ss.pull_sent_at = now - opt_.ack_timeout_ms;
        }
      }
      break;
    }
    default: {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.bad_frames;
    }
  }
}

Status Client::Impl::Step() {
  StepLocked();
  Deliver(/*wait=*/true);  // callbacks run outside every engine lock
  return Status::OK();
}

void Client::Impl::StepLocked() {
  std::lock_guard<std::mutex> lock(step_mu_);
  int64_t now = env_->NowMs();
  ApplyInbox();
  EnsureConnected(now);
  ReceiveAll(now);
  if (conn_ && !conn_->IsOpen()) OnDisconnected(now, "connection lost");
  if (session_ == Session::kHelloSent && now - hello_sent_at_ >= opt_.ack_timeout_ms) {
    if (conn_) conn_->Close();
    OnDisconnected(now, "no Welcome in time");
  }
  if (session_ != Session::kReady) return;
  CheckTimeouts(now);
  Renumber();
  Flush(now);
  SendPulls(now);
  SendWatermarks();
}

Status Client::Impl::AuthStatus() {
  std::lock_guard<std::mutex> lock(step_mu_);
  if (!auth_failed_) return Status::OK();
  std::lock_guard<std::mutex> stats_lock(stats_mu_);
  return Status::PermissionDenied(stats_.last_connection_error);
}

bool Client::Impl::IsIdle() {
  std::lock_guard<std::mutex> lock(step_mu_);
  if (session_ != Session::kReady || !inflight_.empty() || outbox_depth_ > 0) return false;
  for (const auto& [stream, ss] : streams_) {
    if (ss.followed && (ss.pull_outstanding || ss.cursor < ss.server_high)) return false;
  }
  std::lock_guard<std::mutex> in_lock(inbox_mu_);
  return inbox_.dirty.empty() && inbox_.follow.empty();
}

Status Client::Impl::RunUntilIdle(int64_t timeout_ms) {
  if (!dialer_) return Status::Unavailable("no server configured");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    OUTPOST_RETURN_IF_ERROR(Step());
    if (IsIdle()) return Status::OK();
    OUTPOST_RETURN_IF_ERROR(AuthStatus());  // refused credentials: waiting longer cannot help
    if (std::chrono::steady_clock::now() >= deadline) return Status::Timeout("sync not idle in time");
    std::unique_lock<std::mutex> lock(inbox_mu_);
    // Woken by an arriving frame or a local change; the short bound lets timers (backoff) fire.
    inbox_cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return inbox_.wake; });
    inbox_.wake = false;
  }
}

void Client::Impl::SyncLoop() {
  for (;;) {
    (void)Step();
    std::unique_lock<std::mutex> lock(inbox_mu_);
    if (sync_stop_) return;
    if (inbox_.wake) {
      inbox_.wake = false;
      continue;
    }
    // Timers (backoff, ack timeouts, reconnect) are checked at least this often.
    inbox_cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return inbox_.wake || sync_stop_; });
    inbox_.wake = false;
  }
}

void Client::Impl::Start() {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  if (sync_thread_.joinable()) return;
  sync_stop_ = false;
  sync_thread_ = std::thread([this] { SyncLoop(); });
}

void Client::Impl::Stop() {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    sync_stop_ = true;
    inbox_cv_.notify_all();
  }
  if (sync_thread_.joinable()) sync_thread_.join();
}

void Client::Impl::Disconnect() {
  Post([](Inbox& in) { in.disconnect = true; });
}

void Client::Impl::SetToken(std::string token) {
  Post([&](Inbox& in) {
    in.new_token = true;
    in.token = std::move(token);
  });
}

void Client::Impl::SetOnline(bool online) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    online_ = online;
  }
  if (!online) Disconnect();
  Post([](Inbox&) {});
}

ClientStats Client::Impl::Stats() {
  ClientStats s;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    s = stats_;
  }
  {
    std::lock_guard<std::mutex> lock(step_mu_);
    s.connected = session_ == Session::kReady;
  }
  s.outbox_depth = static_cast<uint64_t>(std::max<int64_t>(0, outbox_depth_.load()));
  s.failed = static_cast<uint64_t>(std::max<int64_t>(0, failed_count_.load()));
  std::lock_guard<std::mutex> lock(pending_mu_);
  if (!pending_created_.empty()) s.oldest_pending_ms = *pending_created_.begin();
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
Result<OpInfo> Client::Get(const OpId& op_id) { return impl_->Get(op_id); }
Result<std::vector<OpInfo>> Client::Outbox(size_t limit) { return impl_->Outbox(limit); }
Status Client::Retry(const OpId& op_id) { return impl_->Retry(op_id); }
Status Client::Discard(const OpId& op_id) { return impl_->Discard(op_id); }
Status Client::MarkRead(std::string_view stream, uint64_t seq) { return impl_->MarkRead(stream, seq); }
Status Client::SetReadReceipts(bool on) { return impl_->SetReadReceipts(on); }
bool Client::read_receipts() { return impl_->read_receipts(); }
Result<std::vector<StreamInfo>> Client::Streams() { return impl_->Streams(); }
Result<std::vector<Watermark>> Client::Watermarks(std::string_view stream) {
  return impl_->Watermarks(stream);
}
Result<uint64_t> Client::Cursor(std::string_view stream) { return impl_->CursorOf(stream); }
uint64_t Client::Subscribe(std::string_view stream, ChangeCallback callback) {
  return impl_->Subscribe(stream, std::move(callback));
}
void Client::Unsubscribe(uint64_t id) { impl_->Unsubscribe(id); }
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
