// Copyright 2026 The Outpost Authors.
//
// Uploader: sends own ops' attachments to the server's media endpoint (outpost/media_transport.h), one chunk
// per step, and hands each op to the outbox once the server holds its whole file.
//
//   submit ──► op (pending, no counter) + upload record ──► Uploader: create, [HEAD], PATCH, PATCH, ...
//                        (one transaction)                        │ whole file confirmed
//                                                                 ▼
//                         op gets its counter + outbox entry, upload record removed (one transaction)
//
// The server's offset is the truth: after a start, an error or a Conflict, the next step asks for it (HEAD)
// before sending, so a restart re-sends at most the chunk that was in flight. The offset the store keeps is
// progress for the application. Failures follow the ops' taxonomy: transient ones (no connection, timeout,
// busy, checksum mismatch) back off with jitter and count attempts (ClientOptions::attempts_max,
// age_ms_max: exhausted); permanent ones (forbidden, too large, invalid) fail the op at once with the reason;
// a refused token pauses uploads until SetToken; an upload the server no longer has (expired) starts again.
//
// Thread safety: Step runs on one thread at a time (the uploader's own after Start, else the caller's). It
// does network calls holding no lock, and takes SyncContext::mu only to change an op (Complete, Fail), so
// its events queue in commit order with the sync side's. Lock order: SyncContext::mu, then mu_.
#ifndef OUTPOST_SRC_CLIENT_UPLOADER_H_
#define OUTPOST_SRC_CLIENT_UPLOADER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "base/mutex.h"
#include "client/sync_context.h"
#include "codec.h"
#include "outpost/client.h"

namespace outpost {

class Uploader {
 public:
  // Told the stream of each op handed to the outbox (the sync side then sends it).
  using OnReady = std::function<void(const std::string& stream)>;

  Uploader(SyncContext& ctx, std::string token, OnReady on_ready);
  ~Uploader();  // stops the thread

  void Start() OUTPOST_EXCLUDES(mu_);
  void Stop() OUTPOST_EXCLUDES(mu_);
  bool running() OUTPOST_EXCLUDES(mu_);
  // Something changed (a new upload, an endpoint, a Retry): look again now.
  void Wake() OUTPOST_EXCLUDES(mu_);
  void SetToken(std::string token) OUTPOST_EXCLUDES(mu_);
  std::string token() OUTPOST_EXCLUDES(mu_);
  void SetOnline(bool online) OUTPOST_EXCLUDES(mu_);
  // The op's offset on the server is unknown: ask before sending.
  void Forget(const OpId& id) OUTPOST_EXCLUDES(mu_);
  // The op's failed upload starts again (Retry).
  void Restart(const OpId& id) OUTPOST_EXCLUDES(mu_);
  // The op's upload is gone (Discard, or the op went to the outbox).
  void Remove(const OpId& id) OUTPOST_EXCLUDES(mu_);

  // At most one request to the server (or none: nothing due, offline, no endpoint). Returns when the next
  // upload falls due (INT64_MAX: none until woken).
  int64_t Step(int64_t now) OUTPOST_EXCLUDES(mu_, ctx_.mu);
  // Whether no upload waits to go (IsIdle): only failed ones, or none. One backing off is not idle, as an op
  // backing off is not.
  bool Idle(int64_t now) OUTPOST_EXCLUDES(mu_, ctx_.mu);
  // The gauges (ClientStats::uploads, upload_bytes_done/total) are kept in memory: read from the store once
  // (Init), then told of each change (Added by the submit path, the uploader's own progress, Forget).
  Status Init() OUTPOST_EXCLUDES(mu_);
  void Added(const OpId& id, uint64_t size) OUTPOST_EXCLUDES(mu_);
  void FillStats(ClientStats* s) OUTPOST_EXCLUDES(mu_);

 private:
  struct Due {
    bool found = false;
    codec::UploadRecord upload;
    int64_t next_at = INT64_MAX;  // the earliest later one
  };
  Due FindDue(int64_t now);
  std::string Endpoint() OUTPOST_EXCLUDES(ctx_.mu);
  // One request for `u`.
  void Act(codec::UploadRecord& u, const std::string& endpoint, int64_t now) OUTPOST_EXCLUDES(mu_, ctx_.mu);
  // Read-modify-write of the upload record in one transaction; NotFound when it is gone (discarded).
  Status Update(const OpId& id, const std::function<void(codec::UploadRecord&)>& change);
  // A write transaction with the op's upload record and op record (NotFound: either is gone).
  Status Load(const OpId& id, std::unique_ptr<WriteTxn>* txn, codec::UploadRecord* upload, StoredOp* op)
      OUTPOST_REQUIRES(ctx_.mu);
  // The whole file is on the server: the op takes its counter and goes to the outbox.
  void Complete(const codec::UploadRecord& u, int64_t now) OUTPOST_EXCLUDES(mu_, ctx_.mu);
  // The upload is given up: the op fails with `why`.
  void Fail(const codec::UploadRecord& u, const Status& why) OUTPOST_EXCLUDES(mu_, ctx_.mu);
  // A transient failure: backs off, or fails the op when attempts or age ran out.
  void Backoff(const codec::UploadRecord& u, const Status& why, int64_t now) OUTPOST_EXCLUDES(mu_, ctx_.mu);
  void Loop() OUTPOST_EXCLUDES(mu_);

  SyncContext& ctx_;
  const OnReady on_ready_;

  Mutex mu_;
  CondVar cv_;
  std::string token_ OUTPOST_GUARDED_BY(mu_);
  bool online_ OUTPOST_GUARDED_BY(mu_) = true;
  bool auth_paused_ OUTPOST_GUARDED_BY(mu_) = false;  // the server refused the token: wait for SetToken
  bool wake_ OUTPOST_GUARDED_BY(mu_) = false;
  bool stop_ OUTPOST_GUARDED_BY(mu_) = false;
  // The server's offset of each upload, as its last answer said; absent: ask (HEAD) before sending.
  std::map<OpId, uint64_t> confirmed_ OUTPOST_GUARDED_BY(mu_);
  struct Gauge {
    uint64_t offset = 0, size = 0;
    bool failed = false;
  };
  std::map<OpId, Gauge> gauges_ OUTPOST_GUARDED_BY(mu_);  // every upload in the store
  std::thread thread_;
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_UPLOADER_H_
