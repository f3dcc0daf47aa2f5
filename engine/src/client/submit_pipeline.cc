// Copyright 2026 The Outpost Authors.
#include "client/submit_pipeline.h"

#include <future>
#include <map>

namespace outpost {

namespace {
constexpr size_t kOpsPerCommitMax = 8192;
}  // namespace

SubmitPipeline::SubmitPipeline(const ClientOptions& opt, Env* env, DeviceStore* store, Observers* observers,
                               std::string user, std::string device, OnCommitted on_committed)
    : opt_(opt),
      env_(env),
      store_(store),
      observers_(observers),
      user_(std::move(user)),
      device_(std::move(device)),
      on_committed_(std::move(on_committed)),
      ids_(env) {}

SubmitPipeline::~SubmitPipeline() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    work_cv_.NotifyAll();
    space_cv_.NotifyAll();
  }
  if (committer_.joinable()) committer_.join();
  {
    MutexLock lock(&done_mu_);
    done_stop_ = true;
    done_cv_.NotifyAll();
  }
  if (completer_.joinable()) completer_.join();
}

void SubmitPipeline::Start(uint64_t local_seq) {
  local_seq_ = local_seq;
  committer_ = std::thread([this] { CommitLoop(); });
  completer_ = std::thread([this] { CompleteLoop(); });
}

Result<std::vector<PreparedAttachment>> SubmitPipeline::PrepareAttachments(
    const std::vector<NewOp>& ops, const std::vector<OpId>& ids) const {
  std::vector<PreparedAttachment> files;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].options.attachment.path.empty()) continue;
    Status st;
    if (opt_.media == nullptr) {
      st = Status::FailedPrecondition(
          "this client cannot upload attachments: ClientOptions::media is not set");
    } else if (opt_.media_dir.empty()) {
      st = Status::FailedPrecondition(
          "this client cannot keep attachments: ClientOptions::media_dir is not set");
    } else if (ops[i].options.attachment.content_type.size() > 255 ||
               ops[i].options.attachment.filename.size() > 255) {
      st = Status::InvalidArgument("an attachment's content type and file name must be at most 255 bytes");
    } else if (files.empty()) {
      files.resize(ops.size());
    }
    if (st.ok()) {
      auto copy =
          CopyAttachment(ops[i].options.attachment, opt_.media_dir, ids[i], opt_.attachment_bytes_max);
      if (copy.ok()) {
        files[i] = std::move(*copy);
      } else {
        st = copy.status();
      }
    }
    if (!st.ok()) {
      for (const PreparedAttachment& f : files) RemoveAttachmentCopy(f.path);
      return st;
    }
  }
  return files;
}

void SubmitPipeline::Enqueue(std::vector<NewOp> ops, std::vector<OpId> ids, Done done) {
  auto files = PrepareAttachments(ops, ids);
  if (!files.ok()) {
    done(files.status(), {});
    return;
  }
  {
    MutexLock lock(&mu_);
    // Bounded: a producer faster than the disk waits here instead of growing memory without limit.
    while (queued_ops_ >= opt_.submit_queue_max && !stop_) space_cv_.Wait(&mu_);
    if (!stop_) {
      queued_ops_ += ops.size();
      queue_.push_back({std::move(ops), std::move(ids), std::move(done), std::move(*files)});
      work_cv_.NotifyOne();
      return;
    }
  }
  for (const PreparedAttachment& f : *files) RemoveAttachmentCopy(f.path);
  done(Status::Aborted("client is closing"), {});
}

Result<std::vector<OpId>> SubmitPipeline::SubmitAndWait(std::vector<NewOp> ops) {
  if (observers_->InCallback()) {
    // It would wait for the completion thread, which may be the one running this callback.
    return Status::FailedPrecondition(
        "Submit and SubmitBatch cannot be called from a change callback; use SubmitAsync");
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

void SubmitPipeline::CommitLoop() {
  for (;;) {
    std::deque<Request> batch;
    {
      MutexLock lock(&mu_);
      while (queue_.empty() && !stop_) work_cv_.Wait(&mu_);
      if (queue_.empty()) return;
      size_t ops = 0;
      while (!queue_.empty() && (batch.empty() || ops + queue_.front().ops.size() <= kOpsPerCommitMax)) {
        ops += queue_.front().ops.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_ops_ -= ops;
      space_cv_.NotifyAll();
    }
    CommitRequests(batch);
  }
}

Status SubmitPipeline::Validate(const std::vector<NewOp>& ops) const {
  if (ops.empty()) return Status::InvalidArgument("no ops to submit");
  for (const NewOp& op : ops) {
    OUTPOST_RETURN_IF_ERROR(keys::ValidateStream(op.stream, opt_.stream_id_bytes_max));
    if (op.kind.size() > opt_.kind_bytes_max) {
      return Status::InvalidArgument("kind is " + std::to_string(op.kind.size()) + " bytes (max " +
                                     std::to_string(opt_.kind_bytes_max) + ")");
    }
    if (op.payload.size() > opt_.payload_bytes_max) {
      return Status::InvalidArgument("payload is " + std::to_string(op.payload.size()) + " bytes (max " +
                                     std::to_string(opt_.payload_bytes_max) + ")");
    }
  }
  return Status::OK();
}

void SubmitPipeline::CommitRequests(std::deque<Request>& batch) {
  std::vector<Status> verdicts(batch.size());
  // Validate first: a bad request is answered alone and never touches the store.
  for (size_t r = 0; r < batch.size(); ++r) verdicts[r] = Validate(batch[r].ops);
  std::map<std::string, keys::StreamMeta> metas;
  uint64_t local_seq = local_seq_;
  std::vector<std::pair<OpId, uint64_t>> uploads;
  Status st;
  // A store that ran out of room (LMDB's map) grows before the next transaction: one more try.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt > 0 && st.code() != Status::Code::kFull) break;
    std::vector<Change> changes;
    Tally tally;
    metas.clear();
    local_seq = local_seq_;
    uploads.clear();
    auto txn_or = store_->BeginWrite();
    st = txn_or.status();
    if (!st.ok()) continue;
    WriteTxn* txn = txn_or->get();
    {
      // The store's word, not only ours: a rebase (client/rebase.h) may have given out local seqs too.
      std::string v;
      if (txn->Get(kMeta, "local_seq", &v).ok() && v.size() == 8) {
        local_seq = std::max(local_seq, keys::GetBE64(v));
      }
    }
    const int64_t now = env_->NowMs();
    for (size_t r = 0; r < batch.size() && st.ok(); ++r) {
      if (!verdicts[r].ok()) continue;
      for (size_t i = 0; i < batch[r].ops.size() && st.ok(); ++i) {
        const NewOp& op = batch[r].ops[i];
        auto [it, fresh] = metas.try_emplace(op.stream);
        if (fresh) st = DeviceStore::LoadMeta(txn, op.stream, &it->second);
        if (!st.ok()) break;
        keys::StreamMeta& m = it->second;
        StoredOp s;
        OpInfo& rec = s.op;
        rec.op_id = batch[r].ids[i];
        rec.stream = op.stream;
        rec.kind = op.kind;
        rec.payload = op.payload;
        rec.user = user_;
        rec.device = device_;
        rec.own = true;
        const PreparedAttachment* file = batch[r].files.empty() ? nullptr : &batch[r].files[i];
        if (file != nullptr && !file->present) file = nullptr;
        // An op with an attachment takes no counter until its upload completed (Uploader::Complete): it
        // holds back no later op of its stream meanwhile.
        rec.device_counter = file ? 0 : m.next_counter++;
        rec.client_time_ms = op.options.client_time_ms ? op.options.client_time_ms : now;
        rec.depends_on = op.options.depends_on;
        rec.created_at_ms = now;
        rec.next_attempt_at_ms = now;
        s.local_seq = ++local_seq;
        s.view_key = keys::ViewKey(op.stream, keys::kSectionUnsent, s.local_seq);
        if (file != nullptr) {
          rec.has_attachment = true;
          rec.attachment.size = file->size;
          rec.attachment.content_type = file->content_type;
          rec.attachment.sha256 = file->sha256;
        }
        st = DeviceStore::PutOp(txn, s);
        if (file != nullptr) {
          codec::UploadRecord u;
          u.op_id = rec.op_id;
          u.path = file->path;
          u.size = file->size;
          u.sha256 = file->sha256;
          u.content_type = file->content_type;
          u.filename = file->filename;
          u.next_attempt_at_ms = now;
          u.created_at_ms = now;
          if (st.ok()) st = DeviceStore::PutUpload(txn, u);
          uploads.emplace_back(u.op_id, u.size);
        } else {
          if (st.ok()) st = DeviceStore::PutEntry(txn, op.stream, rec.device_counter, {.op_id = rec.op_id});
          ++m.outbox;
          ++tally.outbox;
        }
        m.followed = 1;
        tally.pending_added.push_back({op.stream, now});
        tally.NoteMembers(rec, s.local_seq);
        changes.push_back(OpChange(Change::Kind::kAdded, rec));
      }
    }
    for (const auto& [stream, m] : metas) {
      if (st.ok()) st = DeviceStore::PutMeta(txn, stream, m);
    }
    if (st.ok()) {
      std::string v;
      keys::PutBE64(&v, local_seq);
      st = txn->Put(kMeta, "local_seq", v);
    }
    // The events are queued before the sync side hears of the ops, so their kAdded comes before any later
    // change.
    if (st.ok()) st = store_->Commit(txn, tally, changes);
    if (st.ok()) break;
  }
  if (st.ok()) {
    local_seq_ = local_seq;
    if (!metas.empty()) {
      std::set<std::string> streams;
      for (const auto& [stream, m] : metas) streams.insert(stream);
      on_committed_(streams, uploads);
    }
  }
  for (size_t r = 0; r < batch.size(); ++r) {
    if (verdicts[r].ok()) verdicts[r] = st;
    // A request that stored nothing leaves no copy behind.
    if (!verdicts[r].ok()) {
      for (const PreparedAttachment& f : batch[r].files) RemoveAttachmentCopy(f.path);
    }
  }
  MutexLock lock(&done_mu_);
  done_queue_.push_back({std::move(batch), std::move(verdicts)});
  done_cv_.NotifyOne();
}

void SubmitPipeline::CompleteLoop() {
  for (;;) {
    Completion c;
    {
      MutexLock lock(&done_mu_);
      while (done_queue_.empty() && !done_stop_) done_cv_.Wait(&done_mu_);
      if (done_queue_.empty()) return;
      c = std::move(done_queue_.front());
      done_queue_.pop_front();
    }
    // Observers see the ops before their submitters return (a callback never waits for a submit: Submit
    // refuses to run in one).
    observers_->Deliver(/*wait=*/true);
    for (size_t r = 0; r < c.requests.size(); ++r) {
      const Status& verdict = c.verdicts[r];
      c.requests[r].done(verdict, verdict.ok() ? c.requests[r].ids : std::vector<OpId>());
    }
  }
}

}  // namespace outpost
