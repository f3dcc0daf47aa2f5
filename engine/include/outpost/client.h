// Copyright 2026 The Outpost Authors.
//
// Client: the device-side engine. Every change is written to the local store and shown before the network
// is touched; a sync loop flushes the outbox to the server and merges what the server orders.
//
//   auto client = Client::Open({.store = "lmdb:/data/outpost", .server = "inproc:main",
//                               .user = "alice", .device = "phone"});
//   auto id = (*client)->Submit("chat-42", "text", "hello");   // durable, queued, visible
//   (*client)->Start();                                       // background sync
//
// Guarantees (docs/design.md has the full list):
//  - Submit returns only once the op is durable in the store, queued in the outbox and visible in the
//    stream view, in one transaction. Ops submitted concurrently share one transaction (group commit).
//  - Each op is applied by the server at most once, ever; each device's ops of a stream get seqs in the
//    order they were submitted; a failed op stays visible with its reason until retried or discarded.
//
// Thread safety: every method may be called from any thread. Start() runs the sync loop on its own
// thread; without it, call Step() (one round, at env->NowMs()) from one thread at a time.
#ifndef OUTPOST_CLIENT_H_
#define OUTPOST_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/env.h"
#include "outpost/export.h"
#include "outpost/histogram.h"
#include "outpost/ids.h"
#include "outpost/media_transport.h"
#include "outpost/observer.h"
#include "outpost/result.h"
#include "outpost/status.h"
#include "outpost/storage.h"
#include "outpost/transport.h"

namespace outpost {

// Where an own op's attachment upload stands.
enum class UploadState : uint8_t {
  kNone,     // no upload: the op has no attachment, is not this device's, or its upload completed
  kPending,  // bytes going up (or waiting for a connection): `uploaded_bytes` of `size`
  kFailed,   // given up; the op is failed with the reason; Retry starts the upload again
};

// An op's attachment: a file whose bytes go to the server's media endpoint apart from the op (docs/media.md).
// The op is sent only once the whole file is uploaded, carrying this reference.
struct Attachment {
  std::string blob_id;  // the server's blob id: empty until the upload completed
  uint64_t size = 0;
  std::string content_type;
  std::string sha256;  // 64 lowercase hex characters
  // Own ops only.
  UploadState upload = UploadState::kNone;
  uint64_t uploaded_bytes = 0;  // as the server last confirmed it
  std::string local_path;       // this device's copy of the file (under ClientOptions::media_dir)
};

struct OpInfo {
  OpId op_id;
  std::string stream;
  std::string kind;
  std::string payload;
  std::string user;    // author
  std::string device;  // author's device
  bool own = false;    // made on this device
  OpState state = OpState::kPending;
  uint64_t seq = 0;             // 0 until sent
  uint64_t device_counter = 0;  // 0 while a failed op holds no counter
  int64_t client_time_ms = 0;   // the author's clock: display only
  OpId depends_on;              // nil when none
  // Outbox fields (own ops).
  int64_t created_at_ms = 0;
  uint32_t attempts = 0;
  int64_t next_attempt_at_ms = 0;
  std::string last_error;
  Status::Code last_error_code = Status::Code::kOk;
  // Opaque place in the stream view; pass to Before() to page back from here.
  std::string position;
  bool has_attachment = false;
  Attachment attachment;  // when has_attachment
};

// A file to attach to an op (SubmitOptions::attachment).
struct AttachmentSource {
  std::string path;          // copied into ClientOptions::media_dir at submit; the original may then change
  std::string content_type;  // e.g. "image/jpeg"; empty: "application/octet-stream"
  std::string filename;      // display only; empty: the path's last component
};

struct SubmitOptions {
  OpId depends_on;             // not sent before this op is sent; fails if it fails
  int64_t client_time_ms = 0;  // 0: the Env's clock
  // With a path: the op carries this file. It is stored (pending, visible) at once with an upload record in
  // the same transaction; it is sent only once the upload completed, and does not hold back the later ops
  // of its stream meanwhile (it takes its place in the stream when it is sent).
  AttachmentSource attachment;
};

struct NewOp {
  std::string stream;
  std::string kind;
  std::string payload;
  SubmitOptions options;
};

struct Watermark {
  std::string stream;
  std::string user;
  std::string device;
  WatermarkKind kind = WatermarkKind::kDelivered;
  uint64_t seq = 0;
};

// The format of the device store this build writes and the newest it reads. Client::Open stamps it into a
// new store (and into one from before formats were kept, which is format 1), and refuses a store of a
// newer format with FailedPrecondition, leaving it untouched. It moves only when a build writes something
// an older build would misread (docs/storage-format.md, "Compatibility").
inline constexpr uint32_t kDeviceStoreFormat = 1;

struct ClientOptions {
  std::string store = "lmdb:outpost-data";  // storage URI (storage.h)
  bool store_sync = true;                   // false: a power loss may undo recent commits
  std::string server;                       // transport URI; empty with no dialer: offline only
  std::shared_ptr<Dialer> dialer;           // overrides `server` (tests inject faulty transports)
  // Opens the store instead of OpenStorage(store, ...) (tests inject fault-injecting storage).
  std::function<Result<std::unique_ptr<Storage>>(std::string_view uri, const StorageOptions&)> open_store;
  std::string user;
  // Stable id of this installation; must match the store's. Empty: the store's own id (a random one is made
  // and kept when the store is new), as Client::device() then tells.
  std::string device;
  std::string token;
  Env* env = nullptr;  // nullptr: SystemEnv()

  // Limits.
  uint32_t stream_id_bytes_max = 128;
  uint32_t kind_bytes_max = 64;
  uint32_t payload_bytes_max = 1 << 20;
  uint32_t ops_per_batch_max = 512;
  uint32_t batches_inflight_max = 8;
  uint32_t pull_page_max = 1000;
  uint32_t submit_queue_max = 1 << 16;  // async submits waiting for the commit thread; beyond: caller waits
  // Retry policy: capped exponential backoff with full jitter (delay = random(0, min(cap, base·2^n))).
  int64_t backoff_base_ms = 250;
  int64_t backoff_cap_ms = 60'000;
  uint32_t attempts_max = 0;  // 0: unlimited; beyond: failed ("exhausted")
  int64_t age_ms_max = 0;     // 0: unlimited; an op older than this when due fails ("exhausted")
  int64_t ack_timeout_ms = 10'000;
  // Reconnecting uses the same jittered backoff, capped at the lower of this and backoff_cap_ms, so that a
  // server back from a restart is found soon.
  int64_t reconnect_cap_ms = 5'000;
  // The wire protocol version to speak (docs/protocol.md "Versions"): 0 is this build's newest. An older
  // one (down to the oldest this build speaks) is for version-skew tests and staged rollouts.
  uint32_t protocol_version = 0;
  // Whether a failed op holds back the later ops of its stream (chat: no). Per-stream override:
  // SetStreamPolicy.
  bool block_stream_on_failure = false;
  // Default for a new store; SetReadReceipts' choice is kept in the store and wins from then on.
  bool send_read_receipts = true;
  // Follow the user's membership feed (membership.h: FeedStream(user)) and, automatically, every stream it
  // says the user joined: the stream is marked followed in the same transaction that merges the kJoinedKind
  // op, so no join is missed across restarts. A stream the user left stays followed (its history remains
  // readable; the server refuses new pulls of it). Needs a server with ServerOptions::membership on, and a
  // user (Open: InvalidArgument without one). Joins merged before the option was first on (an app that
  // followed the feed itself) are followed by that Open. A joined stream whose id this device refuses
  // (stream_id_bytes_max, a feed's id) is skipped.
  bool follow_memberships = false;

  // Attachments (docs/media.md). `media` moves the bytes (OpenTusTransport for a real server); without it,
  // a submit with an attachment is refused. `media_dir` holds this device's copies of attached files (made
  // if missing). `media_url` overrides the upload endpoint the server announces in its Welcome.
  std::shared_ptr<MediaTransport> media;
  std::string media_dir;
  std::string media_url;
  uint64_t attachment_bytes_max = 4ull << 30;
  uint32_t upload_chunk_bytes = 8 << 20;  // bytes per upload request; a restart re-sends at most one
};

// What this device knows of one stream (Client::Streams).
struct StreamInfo {
  std::string stream;
  uint64_t cursor = 0;    // highest seq merged
  uint64_t high_seq = 0;  // highest seq the server announced
  uint64_t read_seq = 0;  // what the user has seen (MarkRead), kept even with read receipts off
  uint64_t outbox = 0;    // own ops waiting for an answer
  uint64_t failed = 0;    // own ops failed
  bool followed = false;
};

// What the client has done since it opened (Client::Stats returns a copy; any thread). Counters only grow
// (from 0 at Open: they are not persisted); gauges say how things stand now.
struct ClientStats {
  bool connected = false;     // Welcome received on a live connection
  // The connection's state now (as Client::connection() tells; its reason and retry time are there).
  ConnectionState connection = ConnectionState::kOffline;
  uint64_t outbox_depth = 0;  // own ops (and skips) waiting for an answer
  uint64_t failed = 0;        // own ops in failed state
  // created_at of the oldest pending op; 0 when none. Kept per stream in memory; Stats() seeks the store
  // once for a stream whose oldest pending op left since the last call.
  int64_t oldest_pending_ms = 0;
  // Counters of the flush: Push batches sent, ops in them (skips included), ops the server answered,
  // Gap answers that restarted a stream, Conflict answers, batches given up for no answer in time.
  uint64_t batches_sent = 0, ops_sent = 0, acks = 0, gaps = 0, conflicts = 0, timeouts = 0;
  // Sends of own ops (skips not included), first sends and resends alike.
  uint64_t attempts = 0;
  // Resends of own ops (part of `attempts`), by why the op was sent again: its batch had no answer in
  // ack_timeout_ms; the server could not make its group durable (Busy); the connection was lost before the
  // answer; the server answered Gap for it or an op before it; a Conflict renumbered it; other (the server
  // asked to retry it, or its answer could not be stored here). An op resent for several reasons in a row
  // counts under the latest.
  uint64_t retries_timeout = 0, retries_busy = 0, retries_disconnect = 0, retries_gap = 0,
           retries_conflict = 0, retries_other = 0;
  uint64_t pulls = 0, ops_merged = 0, connects = 0, bad_frames = 0;
  // Notifies that carried the new ops themselves (live ops) and were merged with no pull.
  uint64_t live_merges = 0;
  // Seconds from sending a Push batch to receiving its PushAck, by the Env's clock (the one ack_timeout_ms
  // uses: in milliseconds, so a faster answer reads 0). One observation per ack of a batch still in flight
  // (a batch given up on and resent is timed from its resend).
  Histogram flush_seconds = Histogram::Latency();
  // Seconds one merge transaction took (pulled page or live ops: begin to commit), by the process's steady
  // clock; one observation per merge that moved the cursor.
  Histogram merge_seconds = Histogram::Latency();
  // Attachments: own ops whose upload has not completed (or failed), and their bytes.
  uint64_t uploads = 0;
  uint64_t upload_bytes_done = 0, upload_bytes_total = 0;
  // Upload requests (each one chunk) that the server answered, and the bytes they carried.
  uint64_t upload_chunks = 0, upload_bytes_sent = 0;
  // Store operations of the sync side that failed (a full disk, an I/O error): each is retried, and none is
  // dropped silently; a count that keeps growing means the store cannot be written.
  uint64_t store_errors = 0;
  std::string last_connection_error;
  // The server refused this device's credentials (a fatal PermissionDenied "authentication failed: ..."
  // answer to the Hello; last_connection_error has it). The client stops reconnecting and RunUntilIdle
  // returns PermissionDenied at once, until SetToken gives new credentials (or the Client is opened again).
  bool auth_failed = false;
  // The server revoked this device (outpostd revoke-device): signed out. No reconnecting; pending ops stay
  // pending (they are never sent under another identity: a store belongs to one user and device) until
  // SetToken gives credentials the server takes again. RunUntilIdle returns PermissionDenied at once.
  bool signed_out = false;
  // The server does not serve this build's protocol version ("upgrade required"): pending ops stay pending,
  // no reconnecting until the application asks (SetOnline(true)), RunUntilIdle returns FailedPrecondition at
  // once. last_connection_error says which versions the server serves.
  bool upgrade_required = false;
  // The server lost part of what it had (restored from an earlier copy; docs/lifecycle.md). Rebases done;
  // own ops the server lost, sent again under their op ids; ops of others taken out of the view because the
  // server no longer vouched for them (each comes back if a pull brings it); and how many of those are still
  // missing now (ops the server lost that no device has sent again: gone).
  uint64_t rebases = 0, ops_requeued = 0, ops_set_aside = 0;
  uint64_t ops_lost = 0;
};

class OUTPOST_EXPORT Client {
 public:
  static Result<std::unique_ptr<Client>> Open(ClientOptions options);
  // Stops the sync thread. Submits already returned are durable; nothing else needs to finish.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Durable + queued + visible, then returns the op id. InvalidArgument for bad input (nothing stored).
  // An op beyond the limits the server announced (payload_bytes_max, frame_bytes_max) is stored, then fails
  // permanently, with the limit named, when the flush reaches it (the server never sees it).
  // FailedPrecondition from inside a change callback (observer.h): use SubmitAsync there.
  Result<OpId> Submit(std::string_view stream, std::string_view kind, std::string_view payload,
                      const SubmitOptions& options = {});
  // Same, without waiting: `done` runs on the commit thread once the op is durable (or failed).
  void SubmitAsync(std::string_view stream, std::string_view kind, std::string_view payload,
                   const SubmitOptions& options, std::function<void(Result<OpId>)> done);
  // Many ops in one transaction: all are stored or none. For bulk imports.
  Result<std::vector<OpId>> SubmitBatch(const std::vector<NewOp>& ops);

  // Follows a stream made elsewhere: its ops are pulled and merged. Own streams are followed on submit.
  Status Follow(std::string_view stream);
  Status SetStreamPolicy(std::string_view stream, bool block_on_failure);

  // The last `n` ops of the view, oldest first: sent ops by seq, then own unsent ops in submit order.
  Result<std::vector<OpInfo>> Latest(std::string_view stream, size_t n);
  // The `n` ops just before `position` (from an OpInfo), oldest first. Never scans the whole stream.
  Result<std::vector<OpInfo>> Before(std::string_view stream, std::string_view position, size_t n);
  // Forward reads, for folds over a stream: the view's ops after seq `after_seq`, oldest first, at most `n`:
  // sent ops by seq (found by one seek, never a scan from the start), then, once the sent ops are
  // exhausted, own unsent ops (pending and failed) in submit order. Read on by passing the seq of the
  // page's last sent op; a page with fewer than `n` ops reached the end of the view. Unsent ops have no
  // seq: a full page that ends in unsent ops may have more after it, which a larger `n` (or Outbox) shows.
  // An op read unsent comes again, at its seq, once it is sent: a fold keys ops by op id. Since(stream, 0,
  // n) reads from the start. InvalidArgument for a malformed stream id.
  Result<std::vector<OpInfo>> Since(std::string_view stream, uint64_t after_seq, size_t n);
  // The members of `stream`: the names of its latest sent kMembersKind op (membership.h), the one the
  // server's membership checks use, or of this device's latest pending one when no members op of the
  // stream was sent yet (a stream being created; a failed one does not count). NotFound when the view
  // holds no members op that counts; InvalidArgument for a malformed stream id. Found by one backwards
  // scan of the stream at its first call, then kept in memory per stream and updated by the commits that
  // change a members op (submits, merges, acks, failures, Retry, Discard): later calls do not read the store.
  Result<std::vector<std::string>> Members(std::string_view stream);
  Result<OpInfo> Get(const OpId& op_id);
  // Own ops not yet sent (pending, then failed), oldest first, at most `limit`.
  Result<std::vector<OpInfo>> Outbox(size_t limit = 1000);
  // Failed → pending, with a fresh counter (it will be ordered after ops submitted before the retry).
  Status Retry(const OpId& op_id);
  // Removes a pending or failed op from the view; its counter is given up with a skip. If the server had
  // already applied it, it comes back as sent: the server's word is final.
  Status Discard(const OpId& op_id);

  // Downloads the attachment of `op_id` (an op that was sent: its blob is on the server) to `path`, through
  // ClientOptions::media, on the caller's thread. Resumes from `path`.part when an earlier call left one;
  // verifies the SHA-256 before renaming the file into place (a mismatch removes the partial file:
  // Corruption). `progress` (optional) is told the bytes held so far and the total. NotFound: no such op, no
  // attachment, not uploaded yet, or the server does not let this user read it; FailedPrecondition: no
  // media transport, or no upload endpoint known yet (none in the options, no Welcome so far). The
  // transport's errors otherwise (Unavailable, Timeout: call again to resume).
  Status FetchAttachment(const OpId& op_id, const std::string& path,
                         const std::function<void(uint64_t done, uint64_t total)>& progress = {});

  // Every stream this device followed or wrote to, by id.
  Result<std::vector<StreamInfo>> Streams();

  // The user has seen the stream up to `seq` (at most the cursor): kept locally, and sent as a read
  // watermark unless read receipts are off.
  Status MarkRead(std::string_view stream, uint64_t seq);
  // Durable: the store remembers the choice across restarts.
  Status SetReadReceipts(bool on);
  bool read_receipts();
  Result<std::vector<Watermark>> Watermarks(std::string_view stream);
  Result<uint64_t> Cursor(std::string_view stream);

  // `stream` empty: every stream. Returns an id for Unsubscribe.
  uint64_t Subscribe(std::string_view stream, ChangeCallback callback);
  // Connection changes (observer.h). The first call the callback gets carries the state at subscription
  // time; it is delivered like every other event (never from inside this call: by the next Step() or
  // round of the sync thread), and no older event follows it. Returns an id for Unsubscribe.
  uint64_t SubscribeConnection(ConnectionCallback callback);
  // No call of this observer starts after this returns, and one running on another thread has returned
  // (observer.h): whatever the callback uses may be released then. From inside a callback it does not wait.
  void Unsubscribe(uint64_t id);

  // Background sync on its own thread / caller-driven sync.
  void Start();
  void Stop();
  Status Step();
  // Steps until nothing is due, in flight or left to pull, or `timeout_ms` of real time passed (then
  // Timeout), or the server refused the credentials (then PermissionDenied at once,
  // ClientStats::auth_failed). Use with a server that runs on its own thread.
  Status RunUntilIdle(int64_t timeout_ms = 10'000);
  bool IsIdle();
  // Drops the connection now (as if the network went away); the sync loop reconnects after backoff.
  void Disconnect();
  // Sets the connection goal: offline stops (re)connecting until SetOnline(true).
  void SetOnline(bool online);
  // New credentials for the next Hello; after an authentication failure (ClientStats::auth_failed), the
  // client connects again at once with them. Takes effect at the next reconnect when connected.
  void SetToken(std::string token);

  ClientStats Stats();
  // The connection's state now (the last ConnectionEvent).
  ConnectionEvent connection();
  // The upload endpoint in use: ClientOptions::media_url, else the one the server announced in its last
  // Welcome; empty when neither (attachments then wait).
  std::string media_url();
  const std::string& device() const;
  const std::string& user() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outpost

#endif  // OUTPOST_CLIENT_H_
