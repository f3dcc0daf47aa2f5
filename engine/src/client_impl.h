// Copyright 2026 The Outpost Authors.
//
// Client::Impl. Two paths write the store, each in its own transactions (the store serializes them):
//  - the commit thread: Submit* requests, group-committed (client.cc);
//  - the sync side, under step_mu_: connection, flush (flusher.cc), merge (merger.cc), and the API calls
//    that change an op (Retry, Discard, MarkRead).
// They share nothing in memory but the Inbox (what the sync side should look at next), the gauges (Tally,
// put into effect after each commit) and the delivery queue; every read-modify-write of stored state happens
// inside one write transaction. Observer events are queued (Emit) by the thread that committed, under the
// lock that serialized the commit, and delivered (Deliver) once it holds no engine lock (observer.h).
#ifndef OUTPOST_SRC_CLIENT_IMPL_H_
#define OUTPOST_SRC_CLIENT_IMPL_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "codec.h"
#include "keys.h"
#include "outpost/client.h"
#include "outpost/storage.h"

namespace outpost {

enum ClientSpace : SpaceId { kMeta = 0, kStreams, kView, kOpIndex, kOutbox, kFailed, kWatermarks };

class Client::Impl {
 public:
  explicit Impl(ClientOptions options);
  ~Impl();
  Status Init();

  // client.cc — submit path.
  void Enqueue(std::vector<NewOp> ops, std::vector<OpId> ids,
               std::function<void(const Status&, const std::vector<OpId>&)> done);
  Result<std::vector<OpId>> SubmitAndWait(std::vector<NewOp> ops);
  OpIdGenerator& ids() { return ids_; }

  // client.cc — reads and op changes.
  Result<std::vector<OpInfo>> Latest(std::string_view stream, size_t n);
  Result<std::vector<OpInfo>> Before(std::string_view stream, std::string_view position, size_t n);
  Result<OpInfo> Get(const OpId& id);
  Result<std::vector<OpInfo>> Outbox(size_t limit);
  Status Retry(const OpId& id);
  Status Discard(const OpId& id);
  Status Follow(std::string_view stream);
  Status SetStreamPolicy(std::string_view stream, bool block);
  Status MarkRead(std::string_view stream, uint64_t seq);
  Status SetReadReceipts(bool on);
  Result<std::vector<Watermark>> Watermarks(std::string_view stream);
  Result<uint64_t> CursorOf(std::string_view stream);
  Result<std::vector<StreamInfo>> Streams();
  bool read_receipts();
  uint64_t Subscribe(std::string_view stream, ChangeCallback cb);
  void Unsubscribe(uint64_t id);

  // Sync driving.
  Status Step();
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

  const ClientOptions& options() const { return opt_; }
  const std::string& user_id() const { return user_; }

 private:
  struct SubmitRequest {
    std::vector<NewOp> ops;
    std::vector<OpId> ids;
    std::function<void(const Status&, const std::vector<OpId>&)> done;
  };
  // What the sync side should look at next; filled by any thread.
  struct Inbox {
    std::set<std::string> dirty;     // streams that may have something to send
    std::set<std::string> follow;    // newly followed streams
    std::set<std::string> wm_dirty;  // streams whose watermarks to report
    bool disconnect = false;
    bool wake = false;
    bool new_token = false;
    std::string token;
  };
  struct StreamSync {
    bool followed = false;
    uint64_t cursor = 0;
    uint64_t server_high = 0;
    uint64_t sent_upto = 0;  // counters <= this were sent in this epoch: the next batch starts after it
    uint64_t epoch = 0;      // bumped when sending must restart from an earlier counter
    uint32_t inflight = 0;   // batches in flight
    bool renumber = false;   // a Conflict said the server used our counters: renumber after renumber_after
    uint64_t renumber_after = 0;
    // The lowest counter a Conflict named: the outbox entries from it on move after renumber_after; those
    // before it keep their counters, so that an op the server judged under its counter (a rejection a power
    // loss undid here) hears its verdict again rather than being judged afresh, and order is kept.
    uint64_t renumber_from = UINT64_MAX;
    // The server's last counter for this stream as of Welcome. Ops up to it may collide with the ops of an
    // earlier copy of this store (restored from a backup, or rolled back by a power loss): none beyond it is
    // sent while one up to it awaits its answer, so a Conflict renumbers them before any later op applies.
    uint64_t probe_upto = 0;
    bool pull_outstanding = false;
    int64_t pull_sent_at = 0;
    uint64_t high_at_pull = 0;  // server_high when the outstanding pull was sent
    bool wm_dirty = false;
    // Watermarks sent and not yet echoed back by the server (its acknowledgement): resent after a Busy.
    uint64_t wm_sent_delivered = 0;
    uint64_t wm_sent_read = 0;
  };
  struct Inflight {
    std::string stream;
    uint64_t epoch = 0;
    int64_t sent_at = 0;
    uint64_t first_counter = 0;
    std::vector<OpId> ids;
  };
  enum class Session : uint8_t { kOffline, kHelloSent, kReady };

 public:
  // Gauge changes of one write transaction, put into effect only once it committed.
  struct Tally {
    int64_t outbox = 0;                  // entries (ops and skips) added (+) or settled (-)
    int64_t failed = 0;                  // failed ops added (+) or resolved (-)
    std::vector<int64_t> pending_added;  // created_at of ops that became pending
    std::vector<int64_t> pending_gone;   // created_at of ops that stopped being pending
  };

 private:
  // Store helpers (client.cc).
  Status LoadMeta(ReadTxn* txn, std::string_view stream, keys::StreamMeta* meta);
  Status PutMeta(WriteTxn* txn, std::string_view stream, const keys::StreamMeta& meta);
  // Reads, changes and writes one stream's meta in one transaction; `change` returns false to leave it.
  // Returns whether it changed.
  Result<bool> UpdateMeta(std::string_view stream, const std::function<bool(keys::StreamMeta&)>& change);
  // Reads an op by id: its view key and record. NotFound when absent.
  Status LoadOp(ReadTxn* txn, const OpId& id, std::string* view_key, OpInfo* op, uint64_t* local_seq);
  Status PutOp(WriteTxn* txn, const std::string& view_key, const OpInfo& op, uint64_t local_seq);
  // Moves an own op to the sent section at `seq` (no-op when it is sent already).
  // A failed op that the server rejected is never settled (its verdict is final): *refused is set instead.
  // `applied_counter`, when known (a pulled page says it), is the counter the server applied the op under:
  // one other than the refused attempt's is a later attempt (a Retry whose record a power loss undid here),
  // which the server's word settles.
  Status SettleOp(WriteTxn* txn, const std::string& view_key, OpInfo& op, uint64_t local_seq, uint64_t seq,
                  keys::StreamMeta* meta, std::vector<Change>* changes, Tally* tally, bool* refused = nullptr,
                  uint64_t applied_counter = 0);
  Status MarkFailed(WriteTxn* txn, const std::string& view_key, OpInfo& op, uint64_t local_seq, Status why,
                    bool release_counter, keys::StreamMeta* meta, Tally* tally);
  // Puts a committed transaction's gauge changes into effect (Stats reads them).
  void ApplyTally(const Tally& tally);
  void CommitLoop();
  void CompleteLoop();
  void CommitRequests(std::deque<SubmitRequest>& batch);
  // Queues the events of a committed transaction for delivery, in commit order; called under the lock that
  // serialized the commit. Deliver() runs the callbacks once the caller holds no engine lock.
  void Emit(const std::vector<Change>& changes);
  // Runs the queued callbacks on this thread, unless another thread is delivering (then, with `wait`, waits
  // until what was queued before this call is delivered) or this thread is inside a callback of this client
  // (the outer delivery runs them when the callback returns).
  void Deliver(bool wait);
  bool InCallback() const;
  void Post(const std::function<void(Inbox&)>& fn);
  int64_t Backoff(uint32_t failures, int64_t cap_ms);

  // Sync side (step_mu_ held).
  void StepLocked();
  void ApplyInbox();
  void EnsureConnected(int64_t now);
  void OnDisconnected(int64_t now, std::string why);
  void SendHello(int64_t now);
  void Send(std::string frame);
  // Takes every frame waiting on the connection and handles them in order (runs of PushAcks together).
  void ReceiveAll(int64_t now);
  void HandleFrame(const wire::Frame& frame, int64_t now);
  void OnWelcome(const wire::Welcome& w, int64_t now);
  StreamSync& SyncOf(std::string_view stream);
  // flusher.cc
  void CheckTimeouts(int64_t now);
  void Renumber();
  void Flush(int64_t now);
  // Builds and sends one batch for `stream`; false when nothing more can be sent for it now.
  bool SendBatch(const std::string& stream, int64_t now);
  // InvalidArgument saying which limit the server announced (Welcome) `op` exceeds; Ok when none.
  Status OverServerLimits(const OpInfo& op) const;
  // Whether an op of `stream` up to its probe_upto is in flight or in the batch being built (which starts
  // at `batch_first`, 0 when empty): later ops wait for its answer.
  bool ProbeUnanswered(const std::string& stream, uint64_t batch_first);
  // Settles what a run of PushAcks that arrived together answer, in one write transaction (flusher.cc).
  struct AckEffects;
  void OnPushAcks(const std::vector<const wire::PushAck*>& acks, int64_t now);
  Status ApplyAck(WriteTxn* txn, const wire::PushAck& ack, int64_t now, AckEffects* fx);
  void FinishAck(AckEffects& fx, bool committed);
  void ResendUnanswered(const AckEffects& fx);
  // merger.cc
  void SendPulls(int64_t now);
  void OnBatch(const wire::Batch& batch, int64_t now);
  // Whether an op from the server was made on this device: same user and same device id.
  bool IsOwn(const codec::OpFields& f) const;
  void OnWatermark(const wire::Watermark& wm);
  void SendWatermarks();
  void SyncLoop();

  ClientOptions opt_;
  Env* env_;
  std::unique_ptr<Storage> store_;
  std::shared_ptr<Dialer> dialer_;
  OpIdGenerator ids_;
  std::string device_;
  std::string user_;

  // Commit thread.
  std::mutex submit_mu_;
  std::condition_variable submit_cv_;  // the commit thread waits for work
  std::condition_variable space_cv_;   // submitters wait for room
  std::deque<SubmitRequest> queue_;
  size_t queued_ops_ = 0;
  bool commit_stop_ = false;
  uint64_t local_seq_ = 0;  // commit thread only (after Init)
  std::thread committer_;

  // Completion thread: delivers observer events, then runs submit callbacks, after each group commit.
  struct Completion {
    std::deque<SubmitRequest> requests;
    std::vector<Status> verdicts;  // the group's events are queued for delivery already (Emit)
  };
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::deque<Completion> done_queue_;
  bool done_stop_ = false;
  std::thread completer_;

  // Observers. Events wait in deliver_queue_ (commit order) until a thread that holds no engine lock runs
  // them; one thread delivers at a time (delivering_), so callbacks never run concurrently.
  std::mutex obs_mu_;
  std::condition_variable obs_cv_;  // running_observer_ changed
  std::map<uint64_t, std::pair<std::string, ChangeCallback>> observers_;
  uint64_t next_observer_ = 1;
  uint64_t running_observer_ = 0;  // obs_mu_: the observer being called now (0: none)
  std::mutex deliver_mu_;          // a leaf lock: taken last, never held while calling out
  std::condition_variable deliver_cv_;
  std::deque<std::vector<Change>> deliver_queue_;
  uint64_t queued_total_ = 0, delivered_total_ = 0;  // event groups, deliver_mu_
  bool delivering_ = false;

  // Inbox and sync thread signalling.
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  Inbox inbox_;
  bool online_ = true;         // inbox_mu_
  bool read_receipts_ = true;  // inbox_mu_
  bool sync_stop_ = false;     // inbox_mu_
  std::thread sync_thread_;

  std::atomic<int64_t> outbox_depth_{0};
  std::atomic<int64_t> failed_count_{0};
  // created_at of every pending own op (Stats' oldest_pending_ms): kept at each commit, read in O(1).
  std::mutex pending_mu_;
  std::multiset<int64_t> pending_created_;

  // Sync side: step_mu_.
  std::mutex step_mu_;
  std::unique_ptr<Connection> conn_;
  Session session_ = Session::kOffline;
  int64_t hello_sent_at_ = 0;
  int64_t next_connect_at_ = 0;
  uint32_t connect_failures_ = 0;
  uint32_t server_ops_per_batch_max_ = 0;
  uint32_t server_frame_bytes_max_ = 0;
  uint32_t server_payload_bytes_max_ = 0;
  uint32_t server_kind_bytes_max_ = 0;       // 0: not announced
  uint32_t server_stream_id_bytes_max_ = 0;  // 0: not announced
  // A fatal "authentication failed" answer to the Hello: no reconnecting until SetToken (or a new Client).
  bool auth_failed_ = false;
  std::map<std::string, StreamSync> streams_;
  std::set<std::string> dirty_;
  std::map<uint64_t, Inflight> inflight_;
  uint64_t next_batch_id_ = 1;
  int64_t next_wake_ms_ = 0;  // earliest time a waiting op becomes due (0: none)
  ClientStats stats_;         // counters; the gauges are filled by Stats()
  std::mutex stats_mu_;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_IMPL_H_
