// Copyright 2026 The Outpost Authors.
//
// Client::Impl: opens the store and wires the parts together, following an op's path:
//
//   Submit ─► SubmitPipeline ─► DeviceStore ◄──────────── Merger ◄─── Batch ────┐
//             (commit thread,   (typed records,           (pulls, pages)          │
//              completion        gauges, commit order)                            │
//              thread)                 │                                          │
//                                      ▼                                          │
//                                   Flusher ─ Push ─► SyncSession ─► Connection ──┘
//                                   (batches, acks,   (connect, Hello,
//                                    timeouts)         backoff, dispatch)   Receipts (watermarks)
//
//   Observers: change events, queued in commit order by DeviceStore::Commit, delivered outside every lock.
//
// Two paths write the store, each in its own transactions (the store serializes them): the commit thread
// (SubmitPipeline), and the sync side under SyncContext::mu (SyncSession, Flusher, Merger, Receipts, and the
// API calls that change an op: Retry, Discard). Besides the store they share only the Inbox (what the sync
// side should look at next), the DeviceStore's gauges and the Observers' queue.
#ifndef OUTPOST_SRC_CLIENT_CLIENT_IMPL_H_
#define OUTPOST_SRC_CLIENT_CLIENT_IMPL_H_

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/mutex.h"
#include "client/device_store.h"
#include "client/flusher.h"
#include "client/merger.h"
#include "client/observers.h"
#include "client/receipts.h"
#include "client/submit_pipeline.h"
#include "client/sync_context.h"
#include "client/sync_session.h"
#include "client/uploader.h"
#include "outpost/client.h"

namespace outpost {

class Client::Impl {
 public:
  explicit Impl(ClientOptions options);
  ~Impl();
  Status Init();

  // Submit path.
  void Enqueue(std::vector<NewOp> ops, std::vector<OpId> ids, SubmitPipeline::Done done) {
    submit_->Enqueue(std::move(ops), std::move(ids), std::move(done));
  }
  Result<std::vector<OpId>> SubmitAndWait(std::vector<NewOp> ops) {
    return submit_->SubmitAndWait(std::move(ops));
  }
  OpIdGenerator& ids() { return submit_->ids(); }

  // Reads.
  Result<std::vector<OpInfo>> Latest(std::string_view stream, size_t n);
  Result<std::vector<OpInfo>> Before(std::string_view stream, std::string_view position, size_t n);
  Result<std::vector<OpInfo>> Since(std::string_view stream, uint64_t after_seq, size_t n);
  Result<std::vector<std::string>> Members(std::string_view stream);
  Result<OpInfo> Get(const OpId& id);
  Result<std::vector<OpInfo>> Outbox(size_t limit);
  Result<std::vector<Watermark>> Watermarks(std::string_view stream);
  Result<uint64_t> CursorOf(std::string_view stream);
  Result<std::vector<StreamInfo>> Streams();
  Status FetchAttachment(const OpId& id, const std::string& path,
                         const std::function<void(uint64_t, uint64_t)>& progress);

  // Changes by the application.
  Status Retry(const OpId& id);
  Status Discard(const OpId& id);
  Status Follow(std::string_view stream);
  Status SetStreamPolicy(std::string_view stream, bool block);
  Status MarkRead(std::string_view stream, uint64_t seq);
  Status SetReadReceipts(bool on);
  bool read_receipts() const { return receipts_->read_receipts(); }
  uint64_t Subscribe(std::string_view stream, ChangeCallback cb) {
    return observers_.Subscribe(stream, std::move(cb));
  }
  uint64_t SubscribeConnection(ConnectionCallback cb);
  void Unsubscribe(uint64_t id) { observers_.Unsubscribe(id); }
  ConnectionEvent connection();

  // Sync driving. `receipts_now`: store the watermarks that came in without waiting (Receipts).
  Status Step(bool receipts_now = false);
  Status RunUntilIdle(int64_t timeout_ms);
  bool IsIdle();
  // PermissionDenied (with the server's message) once the server refused our credentials.
  Status AuthStatus();
  void Start();
  void Stop();
  void Disconnect();
  void SetOnline(bool online);
  void SetToken(std::string token);
  ClientStats Stats();
  std::string media_url();

  const ClientOptions& options() const { return opt_; }
  const std::string& user_id() const { return user_; }

 private:
  // What the sync side should look at next; filled by any thread (Post).
  struct Inbox {
    std::set<std::string> dirty;     // streams that may have something to send
    std::set<std::string> follow;    // newly followed streams
    std::set<std::string> wm_dirty;  // streams whose watermarks to report
    bool disconnect = false;
    bool offline = false;  // the disconnect is SetOnline(false)
    bool resume = false;   // SetOnline(true)
    bool wake = false;
    bool new_token = false;
    std::string token;
  };

  // Identity, the sync side's view of every stream, and the gauges, from the store (Init).
  Status LoadState(uint64_t* local_seq);
  // follow_memberships: follows the user's feed and, once per store, every stream its merged kJoinedKind ops
  // name (later ones are followed as they merge: Merger).
  Status FollowMemberships();
  // Fills an own op's upload state (OpInfo::attachment) from its upload record.
  Status FillAttachment(ReadTxn* txn, OpInfo* op) const;
  // Reads, changes and writes one stream's meta in one transaction; `change` returns false to leave it.
  // Returns whether it changed.
  Result<bool> UpdateMeta(std::string_view stream, const std::function<bool(keys::StreamMeta&)>& change);
  // Changes one own op under the sync side's lock (so its events queue in commit order with the sync
  // side's), then tells the sync side its stream may have something to send.
  Status ChangeOp(const OpId& id, const std::function<Status(WriteTxn*, StoredOp&, keys::StreamMeta&, Tally*,
                                                             std::vector<Change>*)>& change)
      OUTPOST_EXCLUDES(sync_->mu);
  void Post(const std::function<void(Inbox&)>& fn) OUTPOST_EXCLUDES(inbox_mu_);
  void StepLocked(bool receipts_now) OUTPOST_EXCLUDES(sync_->mu);
  void ApplyInbox(int64_t now) OUTPOST_REQUIRES(sync_->mu);
  void SyncLoop();

  ClientOptions opt_;
  Env* env_;
  std::shared_ptr<Dialer> dialer_;
  std::string user_;

  Observers observers_;
  std::unique_ptr<DeviceStore> store_;
  std::unique_ptr<SubmitPipeline> submit_;
  std::unique_ptr<SyncContext> sync_;
  std::unique_ptr<SyncSession> session_;
  std::unique_ptr<Flusher> flusher_;
  std::unique_ptr<Merger> merger_;
  std::unique_ptr<Receipts> receipts_;
  std::unique_ptr<Uploader> uploader_;

  Mutex inbox_mu_;
  CondVar inbox_cv_;
  Inbox inbox_ OUTPOST_GUARDED_BY(inbox_mu_);
  bool online_ OUTPOST_GUARDED_BY(inbox_mu_) = true;
  bool sync_stop_ OUTPOST_GUARDED_BY(inbox_mu_) = false;
  std::thread sync_thread_;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_CLIENT_IMPL_H_
