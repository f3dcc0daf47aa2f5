// Copyright 2026 The Outpost Authors.
//
// SubmitPipeline: the submit path. Submitters queue requests (bounded: a producer faster than the disk
// waits); the commit thread takes what is queued, up to kOpsPerCommitMax ops, and stores it in one write
// transaction (group commit: durable + outbox + visible); the completion thread then delivers the change
// events and runs the submitters' callbacks, so the next group's transaction starts at once.
#ifndef OUTPOST_SRC_CLIENT_SUBMIT_PIPELINE_H_
#define OUTPOST_SRC_CLIENT_SUBMIT_PIPELINE_H_

#include <deque>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "client/attachments.h"
#include "client/device_store.h"
#include "client/observers.h"
#include "outpost/client.h"

namespace outpost {

class SubmitPipeline {
 public:
  using Done = std::function<void(const Status&, const std::vector<OpId>&)>;
  // Told, after each commit, which streams got ops (the sync side sends and follows them).
  // `uploads`: the attachment uploads the commit stored (op id, size): the uploader has work.
  using OnCommitted = std::function<void(const std::set<std::string>& streams,
                                         const std::vector<std::pair<OpId, uint64_t>>& uploads)>;

  SubmitPipeline(const ClientOptions& opt, Env* env, DeviceStore* store, Observers* observers,
                 std::string user, std::string device, OnCommitted on_committed);
  ~SubmitPipeline();  // commits what is queued (later Enqueues get Aborted), then joins the threads

  // `local_seq`: the store's last local seq. Starts the threads.
  void Start(uint64_t local_seq);
  // Copies the ops' attachments (client/attachments.h) on the caller's thread, then queues them.
  void Enqueue(std::vector<NewOp> ops, std::vector<OpId> ids, Done done) OUTPOST_EXCLUDES(mu_);
  // Enqueue, then wait until durable. FailedPrecondition from inside a change callback.
  Result<std::vector<OpId>> SubmitAndWait(std::vector<NewOp> ops);
  OpIdGenerator& ids() { return ids_; }

 private:
  struct Request {
    std::vector<NewOp> ops;
    std::vector<OpId> ids;
    Done done;
    std::vector<PreparedAttachment> files;  // by op; empty when none has an attachment
  };
  struct Completion {
    std::deque<Request> requests;
    std::vector<Status> verdicts;  // the group's events are queued for delivery already
  };

  void CommitLoop() OUTPOST_EXCLUDES(mu_);
  void CompleteLoop() OUTPOST_EXCLUDES(done_mu_);
  void CommitRequests(std::deque<Request>& batch);
  // InvalidArgument naming the first limit an op of `ops` exceeds; Ok when none.
  Status Validate(const std::vector<NewOp>& ops) const;
  // The copies of the attachments of `ops` (none: empty), or the first error (no copy is left then).
  Result<std::vector<PreparedAttachment>> PrepareAttachments(const std::vector<NewOp>& ops,
                                                             const std::vector<OpId>& ids) const;

  const ClientOptions& opt_;
  Env* const env_;
  DeviceStore* const store_;
  Observers* const observers_;
  const std::string user_, device_;
  const OnCommitted on_committed_;
  OpIdGenerator ids_;
  uint64_t local_seq_ = 0;  // the commit thread's (after Start)

  Mutex mu_;
  CondVar work_cv_;   // the commit thread waits for work
  CondVar space_cv_;  // submitters wait for room
  std::deque<Request> queue_ OUTPOST_GUARDED_BY(mu_);
  size_t queued_ops_ OUTPOST_GUARDED_BY(mu_) = 0;
  bool stop_ OUTPOST_GUARDED_BY(mu_) = false;
  std::thread committer_;

  Mutex done_mu_;
  CondVar done_cv_;
  std::deque<Completion> done_queue_ OUTPOST_GUARDED_BY(done_mu_);
  bool done_stop_ OUTPOST_GUARDED_BY(done_mu_) = false;
  std::thread completer_;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_SUBMIT_PIPELINE_H_
