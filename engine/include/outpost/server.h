// Copyright 2026 The Outpost Authors.
//
// The server core: authenticates devices, dedupes ops by id (forever), applies each device's ops in
// counter order, assigns per-stream seqs with no gaps, serves pulls, relays watermarks and notifies
// followers. Transport-agnostic: ServerCore turns inbound events into outbound frames; Server wires it
// to a Listener. Everything is durable before any answer leaves (one write transaction per group of events,
// shared by all connections: group commit); pages and Welcomes are read after it committed. Durable state
// is a ServerStore (outpost/server_store.h): several ServerCores, in one process or many, may share one
// (the key-value store in one process; PostgreSQL across processes and hosts), and a stream that moves on
// one reaches the followers on every other.
//
// Thread safety: ServerCore is not thread-safe (one caller at a time). Server's Start/Stop/Step may be
// called from any thread; Step must not run concurrently with the background thread.
#ifndef OUTPOST_SERVER_H_
#define OUTPOST_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "outpost/blob_store.h"
#include "outpost/env.h"
#include "outpost/export.h"
#include "outpost/histogram.h"
#include "outpost/result.h"
#include "outpost/server_store.h"
#include "outpost/status.h"
#include "outpost/storage.h"
#include "outpost/transport.h"

namespace outpost {

// What a Hello claims. A device is (user, device): every piece of per-device state on the server is keyed by
// both, so two users may each have a device called "phone".
struct HelloInfo {
  std::string user;
  std::string device;
  std::string token;
  // The remote address of the connection when the transport knows it (ZeroMQ over TCP: the peer's IP);
  // empty when unknown. For records and logs (outpostd devices), never for decisions.
  std::string peer;
};

// The authenticate hook's answer for a device that was revoked (`why` says which and when): the Hello is
// refused with a fatal Error{PermissionDenied, "authentication failed: device revoked: ...", session_end
// Revoked}, and the device stops for good. Any other refusal gets session_end AuthFailed.
OUTPOST_EXPORT Status RevokedStatus(std::string_view why);
// Whether `status` came from RevokedStatus (or is a store's PermissionDenied "device revoked...").
OUTPOST_EXPORT bool IsRevoked(const Status& status);

enum class Access : uint8_t { kPush, kPull, kWatermark };

struct AccessRequest {
  std::string_view user;
  std::string_view device;
  std::string_view stream;
  Access access = Access::kPush;
  // kPush only: the op's kind and payload, for validation.
  std::string_view kind;
  std::string_view payload;
};

struct ServerOptions {
  // The server store's URI (OpenServerStore): a Storage URI or postgresql://...
  std::string store = "lmdb:outpost-server";
  bool store_sync = true;
  // An open store to use instead of `store` (several cores on one store: one per instance).
  std::shared_ptr<ServerStore> server_store;
  // Key-value stores: opens the Storage instead of OpenStorage(store, ...) (tests inject faults).
  std::function<Result<std::unique_ptr<Storage>>(std::string_view uri, const StorageOptions&)> open_store;
  Env* env = nullptr;
  // Returns the authenticated user for a Hello, or an error: the connection then gets a fatal
  // Error{PermissionDenied, "authentication failed: <message>", session_end AuthFailed}, or session_end
  // Revoked when the error is a RevokedStatus (the device was revoked). A token belongs to one device of one
  // user: the hook refuses a Hello whose device is not its token's. Default: the claimed user (tests, trusted
  // networks). The returned name must follow the user-name grammar (outpost/membership.h). A transient
  // error (IOError, Unavailable, Busy, Timeout, Aborted, Full: the registry's store failed) is no verdict
  // on the credentials and gets a fatal Error{Busy}: the device reconnects later, its token intact.
  std::function<Result<std::string>(const HelloInfo&)> authenticate;
  // Ok, or the permanent reason (PermissionDenied: forbidden; InvalidArgument: invalid). Default: allow.
  // Runs after the membership check when membership is on, on every path that reveals or delivers a
  // stream: push (Access::kPush), pull, Hello follows, Welcome entries, stored and relayed watermarks and
  // Notify (Access::kPull), watermarks from the device (Access::kWatermark). Keep it cheap: it runs per
  // recipient of each Notify and relay.
  std::function<Status(const AccessRequest&)> authorize;
  // Whether a user name exists (outpostd: its registry). A member list naming anyone else is refused.
  // Default (empty): every name matching the grammar exists.
  // An error (the registry cannot be read) fails the group: its devices resend; the op is not refused.
  std::function<Result<bool>(std::string_view user)> user_exists;
  // Streams have members (outpost/membership.h): only members may push, pull, be notified or set
  // watermarks; the server keeps each user's membership feed. Off: every authenticated device may use every
  // stream (tests, single-user apps).
  bool membership = false;
  // Attachments (docs/media.md): the blobs that uploads made (MediaServer writes them). An op may reference
  // a blob only when it is complete, its author's, and matches; with none, ops with attachments are refused
  // (FailedPrecondition). `media_url` is the upload endpoint announced to devices in the Welcome.
  std::shared_ptr<BlobStore> blob_store;
  std::string media_url;

  uint32_t frame_bytes_max = 4 << 20;
  uint32_t ops_per_batch_max = 1024;
  uint32_t payload_bytes_max = 1 << 20;
  uint32_t stream_id_bytes_max = 128;
  uint32_t kind_bytes_max = 64;
  uint32_t pull_page_max = 1000;
  uint32_t hello_streams_max = 100'000;
  uint32_t events_per_group_max = 4096;
  uint32_t connections_max = 100'000;  // beyond: the new connection gets a fatal Error and is closed
  // Connections one user may have past Hello (all its devices): one account must not take every slot.
  // Beyond: the Hello gets a fatal Error{Busy} (the device reconnects after backing off).
  uint32_t connections_per_user_max = 256;
  // Streams a connection asked for while it may not read them (Hello follows, Pulls), kept so that it
  // follows them once its user is added; beyond, more are not remembered (the device's next Pull of such a
  // stream after it was added works as usual).
  uint32_t denied_streams_max = 1024;
  // Push frames one connection may have in one group (its unanswered batches); beyond: a non-fatal Busy
  // Error for the extra ones, which the device resends after backing off.
  uint32_t batches_inflight_max = 32;
  // Distinct names in one stream's member list; a longer list is refused (permanent InvalidArgument).
  uint32_t members_max = 10'000;
  // A connection that has not sent a valid Hello this long after it opened gets a fatal Error{Timeout} and
  // is closed (0: no deadline).
  int64_t hello_deadline_ms = 10'000;
  // The oldest protocol version served (docs/protocol.md "Versions"); the newest is this build's. A device
  // outside the range gets a fatal Error{FailedPrecondition, "upgrade required: ...", UpgradeRequired} and
  // stops reconnecting. Raise it to retire old apps; lower than this build's minimum is not possible.
  uint32_t protocol_min = 2;
};

// What the core has done since it opened (ServerCore::Stats, Server::Stats return a copy). Counters only
// grow; gauges say how things stand now. A group whose store transaction failed (ServerCore::Handle) leaves
// no trace in the counters of what it would have done (ops, verdicts, pushes, pulls, forbidden, busy,
// skips); what happened regardless stays counted (connections, bad frames, authentication failures, hello
// timeouts, bytes in and out, group_events) and commit_errors counts the failure. Threads: a plain value;
// ServerCore::Stats follows ServerCore's rule (one caller at a time), Server::Stats may be called from any
// thread.
struct ServerStats {
  // Gauges.
  uint64_t connections = 0;     // connections open now (past connections_max: not counted)
  uint64_t devices_online = 0;  // connections past Hello (authenticated sessions) now
  uint64_t users_online = 0;    // distinct users with at least one authenticated connection now

  // Counters (events).
  uint64_t connections_total = 0;    // connections accepted
  uint64_t connections_refused = 0;  // connections_max or connections_per_user_max turned away
  uint64_t forbidden = 0;            // PermissionDenied verdicts: pushes, pulls, watermarks
  uint64_t busy = 0;                 // non-fatal Busy answers (batches_inflight_max, sent before Welcome)
  // Op verdicts (one per op of a Push).
  uint64_t ops_applied = 0, duplicates = 0, gaps = 0, conflicts = 0, rejected = 0, skips = 0;
  // Push frames of authenticated devices, each answered with a PushAck or an Error (batches_inflight_max,
  // malformed); not those refused for arriving before their connection's Welcome (counted in busy).
  uint64_t pushes = 0;
  uint64_t pulls = 0;           // Pull frames served with a page
  uint64_t bad_frames = 0;      // frames refused as undecodable or out of place (each answered with an Error)
  uint64_t auth_failures = 0;   // Hellos whose credentials the authenticate hook refused (not bad frames)
  uint64_t upgrades_required = 0;  // Hellos of a protocol version outside [protocol_min, this build's]
  uint64_t commits = 0;         // write groups committed (groups of only opens and closes commit nothing)
  uint64_t commit_errors = 0;   // groups whose store transaction failed to begin or commit
  uint64_t hello_timeouts = 0;  // connections closed for sending no Hello within hello_deadline_ms
  uint64_t devices_ended = 0;   // authenticated connections closed by EndDevice (revoked devices)
  // Bytes of the frames the core received from devices, and of the frames it handed to the listener to
  // send (the frames themselves: the transport's own framing and encryption are not counted).
  uint64_t bytes_in = 0, bytes_out = 0;

  // Histograms (outpost/histogram.h); durations in seconds, measured with the process's steady clock
  // (not the Env's: a simulated clock would read 0).
  // Events (opens, closes, frames) per handled group: one observation per Handle call with events.
  Histogram group_events = Histogram::Sizes();
  // BeginWrite to Commit of each group that committed with frames: commit_seconds.count == commits.
  Histogram commit_seconds = Histogram::Latency();
  // Building the Notifies and receipt relays of a committed group (live ops included, for every
  // follower) and publishing them to other instances: one observation per committed group that moved a
  // stream, relayed a receipt or changed a membership (not for what other instances published).
  Histogram notify_fanout_seconds = Histogram::Latency();
};

// One stream's recent activity on this core (ServerCore::ActiveStreams): the streams this core appended
// ops to, most recently active first. Kept in memory for at most kActiveStreamsMax streams (the least
// recently active are forgotten first); not persisted, so it starts empty when the core opens.
struct StreamActivity {
  std::string stream;
  // Ops this core appended to the stream since it opened (or since the stream was last forgotten): the
  // devices' ops, and on a membership feed the server's own.
  uint64_t ops_applied = 0;
  uint64_t last_seq = 0;        // the stream's head after the last group that moved it here
  int64_t last_applied_ms = 0;  // Env clock (NowMs) when that group committed
};
inline constexpr size_t kActiveStreamsMax = 4096;

struct Outbound {
  ConnId conn = 0;
  std::string frame;
  bool close_after = false;
};

class OUTPOST_EXPORT ServerCore {
 public:
  static Result<std::unique_ptr<ServerCore>> Open(ServerOptions options);
  ~ServerCore();
  // Handles a group of events in one durable transaction and appends the frames to send. When the store
  // fails (begin or commit), nothing of the group stays in memory either: sessions, follows and stats are
  // as before it, opens and closes are still handled, and every connection that sent a frame is answered
  // with Error{Busy} (fatal for one whose Hello was in the group: it reconnects).
  void Handle(std::vector<ServerEvent>& events, std::vector<Outbound>* out);
  // Time-driven work (call it every few tens of ms): closes connections past hello_deadline_ms, and sends
  // local followers what other instances on the store published.
  void Tick(std::vector<Outbound>* out);
  // Called (from a store thread) when another instance published something for Tick to send.
  void SetWakeup(std::function<void()> wakeup);
  // Ends every authenticated connection of device (user, device) now: a fatal Error{PermissionDenied,
  // "authentication failed: device revoked: <message>", session_end Revoked}, then the close. Later
  // frames of those connections are ignored. Returns how many it ended.
  size_t EndDevice(std::string_view user, std::string_view device, std::string_view message,
                   std::vector<Outbound>* out);
  ServerStats Stats() const;
  // The `max` most recently active streams (StreamActivity), most recent first; at most
  // kActiveStreamsMax.
  std::vector<StreamActivity> ActiveStreams(size_t max) const;
  // Whether (`user`, `device`) may download `blob` (MediaServerOptions::may_read): its owner user may;
  // anyone else only when an applied op references it in a stream they may read now (a member, and the
  // authorize hook allows Access::kPull for that device). May be called from any thread, also while Handle
  // runs: it reads the store in a transaction of its own and no session state. A store error is returned,
  // never a grant.
  Result<bool> MayReadBlob(std::string_view user, std::string_view device, const BlobInfo& blob);

  class Impl;

 private:
  explicit ServerCore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class OUTPOST_EXPORT Server {
 public:
  static Result<std::unique_ptr<Server>> Open(ServerOptions options, std::unique_ptr<Listener> listener);
  ~Server();
  // Drains waiting events (up to events_per_group_max), handles them as one group, sends the answers.
  // Returns the number of events handled.
  size_t Step();
  void Start();
  // Stops the background thread after its current group, then handles every event already received
  // (each durable batch gets its ack out) before returning. The listener stays open until destruction.
  void Stop();
  // ServerCore::EndDevice from any thread: queued, and done by the next Step (it wakes the background
  // thread), so the device's connections close within one loop turn.
  void EndDevice(std::string_view user, std::string_view device, std::string_view message);
  // A copy of the core's stats; any thread (waits for the group being handled, if any).
  ServerStats Stats() const;
  // ServerCore::ActiveStreams; any thread (waits like Stats).
  std::vector<StreamActivity> ActiveStreams(size_t max) const;
  // What the listener holds (send budgets, paused and dropped connections, received frames not yet handled).
  ListenerStats TransportStats() const;
  // ServerCore::MayReadBlob; any thread.
  Result<bool> MayReadBlob(std::string_view user, std::string_view device, const BlobInfo& blob);
  // The listener's endpoint (Listener::endpoint()): with tcp://HOST:0, the port actually bound.
  std::string endpoint() const;

 private:
  Server() = default;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace outpost

#endif  // OUTPOST_SERVER_H_
