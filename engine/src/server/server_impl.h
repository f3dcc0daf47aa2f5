// Copyright 2026 The Outpost Authors.
//
// ServerCore::Impl, in four parts by responsibility, one file each:
//   sessions.cc   sessions and the protocol: opens, closes, Hello, follows, frame dispatch, the write group
//                 (one ServerWriteTxn per group of events, committed before any answer that depends on it
//                 leaves; a failed group leaves no trace in memory);
//   sequencer.cc  the apply path: dedupe → counter order → authorization → seq, membership changes, stored
//                 watermarks — everything a group writes;
//   read_path.cc  pages, Welcome and stored receipts, served after the group committed from one read
//                 transaction (a snapshot), never inside the write group;
//   notifier.cc   who hears that a stream moved: local followers after a commit, and what other instances on
//                 the same store published (StoreEvents).
// The seam to durable state is ServerStore (outpost/server_store.h).
#ifndef OUTPOST_SRC_SERVER_SERVER_IMPL_H_
#define OUTPOST_SRC_SERVER_SERVER_IMPL_H_

#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "codec.h"
#include "outpost/ids.h"
#include "outpost/server.h"
#include "outpost/server_store.h"
#include "server/activity.h"

namespace outpost {

struct Session {
  int64_t opened_ms = 0;
  bool authed = false;
  std::string user;
  std::string device;
  uint32_t protocol = 0;    // the device's protocol version (the Welcome and every answer speak it)
  std::string incarnation;  // the server incarnation the device last saw (Hello; empty: none)
  std::string peer;         // the transport's remote address (HelloInfo::peer)
  std::unordered_set<std::string> follows;
  std::unordered_set<std::string> watermarks_sent;  // streams whose stored watermarks went out already
  std::unordered_set<std::string> denied;  // streams it asked for as a non-member: followed once it joins
};

struct OpVerdict {
  wire::ResultCode code = wire::ResultCode::Applied;
  uint64_t seq = 0;
  uint64_t last_counter = 0;
  Status::Code error_code = Status::Code::kOk;
  std::string message;
};

class ServerCore::Impl {
 public:
  Impl(ServerOptions options, std::shared_ptr<ServerStore> store);
  ~Impl();

  void Handle(std::vector<ServerEvent>& events, std::vector<Outbound>* out);
  // ServerCore::MayReadBlob (read_path.cc): its own read transaction, no session state.
  Result<bool> MayReadBlob(std::string_view user, std::string_view device, const BlobInfo& blob);
  void Tick(std::vector<Outbound>* out);
  void SetWakeup(std::function<void()> wakeup);
  size_t EndDevice(std::string_view user, std::string_view device, std::string_view message,
                   std::vector<Outbound>* out);
  // The counters with the histograms and gauges kept apart (stats_ holds no histogram, so that a group's
  // copy of it for rollback allocates nothing).
  ServerStats stats() const;
  std::vector<StreamActivity> ActiveStreams(size_t max) const { return activity_.Recent(max); }

 private:
  // What the read path serves once the group committed: a Welcome (with the stored receipts of the streams
  // the connection follows) or one page of a stream (with that stream's stored receipts, once).
  struct ReadRequest {
    enum class Kind : uint8_t { kWelcome, kPage } kind = Kind::kPage;
    ConnId conn = 0;
    std::string stream;
    uint64_t after = 0;
    uint32_t limit = 0;
  };
  // An answer of the group. `read` >= 0: the frames of reads[read], made after the commit, go here.
  struct Answer {
    ConnId conn = 0;
    std::string frame;
    bool close_after = false;
    int read = -1;
  };
  // The new ops of one stream in a group, for the Notify that announces them (live ops), when they are few.
  struct LiveOps {
    static constexpr size_t kOpsMax = 64;
    static constexpr size_t kBytesMax = 16 << 10;
    std::vector<std::string> stored;  // in seq order, ending at the group's head (EncodeStoredOp)
    size_t bytes = 0;
    uint64_t ops = 0;          // ops appended to the stream in the group (for ActiveStreams)
    bool whole = true;         // every new op is in `stored`; else too many: a plain Notify
    std::set<ConnId> authors;  // connections that pushed them (0: the server's own ops)
  };
  // Followers of a stream beyond this hear of its head with a plain Notify (and pull): live ops cost a
  // membership read per follower's user.
  static constexpr size_t kLiveFollowersMax = 64;
  // Live-op bytes one connection gets per group, over all streams; beyond it, plain Notifies.
  static constexpr size_t kLiveBytesPerConnection = 64 << 10;
  // State of one group of events, committed together.
  struct Group {
    ServerWriteTxn* txn = nullptr;
    std::unordered_map<std::string, uint64_t> high;  // stream -> high seq
    std::map<CounterKey, uint64_t> ctr;              // device counter -> last counter
    std::set<std::string> dirty_high;
    std::set<CounterKey> dirty_ctr;
    std::map<std::string, LiveOps> fresh;  // streams with new ops
    std::vector<Answer> answers;
    std::vector<ReadRequest> reads;
    std::vector<std::pair<StoredWatermark, ConnId>> relays;  // receipt, conn that sent it (not relayed back)
    std::unordered_map<ConnId, uint32_t> pushes;             // Push frames per connection in this group
    std::set<std::pair<std::string, std::string>> left;      // (stream, user) memberships that ended
    std::set<std::pair<std::string, std::string>> joined;    // (stream, user) memberships that began
    std::unordered_map<ConnId, Session> saved;  // sessions as they were before the group touched them
    std::unordered_set<ConnId> hellos;          // connections whose Hello is in the group
    std::unordered_set<ConnId> prepared;        // connections past Hello when the group began (PrepareGroup)
    Status error;                               // first store error; fails the group
  };

  // ---- sessions.cc ----
  // Handle and Tick without the accounting of bytes and group sizes that wraps them.
  void HandleGroup(std::vector<ServerEvent>& events, std::vector<Outbound>* out);
  void TickInner(std::vector<Outbound>* out);
  void HandleFrame(Group& g, ConnId conn, std::string_view bytes);
  void HandleHello(Group& g, ConnId conn, Session& s, const wire::Hello& hello);
  void HandlePull(Group& g, ConnId conn, Session& s, const wire::Pull& pull);
  // Locks what the group's pushes decide on, in one order (stores with several writers).
  void PrepareGroup(Group& g, const std::vector<ServerEvent>& events);
  // Answers every connection that sent work in a failed group: resend (Busy).
  void FailGroup(Group& g, const Status& st, std::vector<Outbound>* out);
  void Follow(Group& g, ConnId conn, Session& s, std::string_view stream);
  // After a commit: `conn` stops following `stream` (its user may no longer read it) and follows it again
  // once its user is added back.
  void Unfollow(ConnId conn, Session& s, const std::string& stream);
  // Saves `conn`'s session before the group changes it, so a failed group can restore it.
  Session& Touch(Group& g, ConnId conn, Session& s) {
    g.saved.try_emplace(conn, s);
    return s;
  }
  // Puts the sessions a failed group touched back as they were, with the follower and user indexes.
  void Restore(Group& g);
  void Open(ConnId conn, std::vector<Answer>* out);
  void Close(ConnId conn);
  void Reply(Group& g, ConnId conn, std::string frame, bool close_after = false) {
    g.answers.push_back({conn, std::move(frame), close_after, -1});
  }
  void BadFrame(Group& g, ConnId conn, Status::Code code, std::string_view why, bool fatal) {
    ++stats_.bad_frames;
    Reply(g, conn, codec::EncodeError(code, why, fatal), fatal);
  }
  void Schedule(Group& g, ReadRequest read) {
    g.answers.push_back({read.conn, {}, false, static_cast<int>(g.reads.size())});
    g.reads.push_back(std::move(read));
  }

  // ---- sequencer.cc ----
  void HandlePush(Group& g, ConnId conn, Session& s, const wire::Push& push);
  OpVerdict ApplyOp(Group& g, ConnId conn, Session& s, const wire::Op& op);
  void HandleWatermark(Group& g, ConnId conn, Session& s, const wire::Watermark& wm);
  // Applies an applied kMembersKind op (its list already checked): the member table and the feeds of users
  // who joined or left. O(members before + members after), never O(sessions).
  void ApplyMembers(Group& g, std::string_view stream, std::string_view author,
                    std::vector<std::string> members);
  // Appends a server-authored op to `user`'s feed.
  void AppendFeed(Group& g, std::string_view user, std::string_view kind, std::string_view stream);
  void PutStoredOp(Group& g, const codec::OpFields& f, ConnId author);
  // Ok when `payload` may be the member list of `stream`: the grammar, members_max, user_exists.
  Status CheckMemberList(Group& g, std::string_view stream, std::string_view author,
                         std::string_view payload);
  // Ok when (`user`, `device`) may attach the blob `blob` to an op: the server keeps blobs
  // (ServerOptions::blob_store), the blob is complete, that device uploaded it, and its size and computed
  // sha256 are the op's. Else the permanent
  // reason; a blob store error fails the group (Fail) and reads as a refusal.
  Status CheckBlob(Group& g, std::string_view user, std::string_view device, const codec::BlobFields& blob);
  bool StreamExists(Group& g, std::string_view stream);
  uint64_t High(Group& g, std::string_view stream);
  uint64_t Counter(Group& g, const CounterKey& key);
  // Writes the group's heads and counters.
  void Flush(Group& g);
  void Fail(Group& g, const Status& st) {
    if (!st.ok() && g.error.ok()) g.error = st;
  }

  // ---- access (sequencer.cc) ----
  // Membership (outpost/membership.h): Ok when `user` may use `stream`; else the permanent reason. A store
  // error is stored in `*error` (the first one) and reads as a refusal.
  Status CheckMember(ServerReadTxn& txn, std::string_view user, std::string_view stream, Status* error);
  bool IsMember(ServerReadTxn& txn, std::string_view stream, std::string_view user, Status* error);
  // Whether the session may read `stream` now: membership, then the authorize hook (Access::kPull). A store
  // error is stored in `*error` and reads as false.
  bool MayRead(ServerReadTxn& txn, const Session& s, std::string_view stream, Status* error);
  // MayRead for many streams with one store call: (*out)[i] for streams[i].
  void MayReadAll(ServerReadTxn& txn, const Session& s, const std::vector<std::string>& streams,
                  std::vector<bool>* out, Status* error);
  // Whether a Notify or relay of `stream` may go to `conn` (followers are members; the hook may differ).
  bool MayDeliver(ConnId conn, std::string_view stream);

  // ---- read_path.cc ----
  // Serves the group's reads from one snapshot taken after its commit. A connection whose read fails gets
  // a fatal Busy (it reconnects and asks again).
  void ServeReads(Group& g, std::vector<std::vector<Outbound>>* frames);
  Status ServeWelcome(ServerReadTxn& txn, Session& s, const ReadRequest& r, std::vector<Outbound>* out);
  Status ServePage(ServerReadTxn& txn, Group& g, Session& s, const ReadRequest& r, size_t* pulled,
                   std::vector<Outbound>* out);
  Status SendStoredWatermarks(ServerReadTxn& txn, ConnId conn, Session& s, std::string_view stream,
                              std::vector<Outbound>* out);

  // ---- notifier.cc ----
  // After a commit: users who left stop hearing of their streams; local followers hear of new heads and
  // receipts; other instances on the store are told.
  void NotifyCommitted(Group& g, std::vector<Outbound>* out);
  // What other instances published since the last call.
  void HandleRemote(std::vector<Outbound>* out);
  // `user` left `stream`: its connections stop following it (and will follow it again if added back).
  void DropFollows(std::string_view stream, std::string_view user);
  // `user` joined `stream`: its connections that asked for the stream follow it.
  void FollowJoined(ServerReadTxn* txn, Group* g, std::string_view stream, std::string_view user);
  // `g`: the group that made the heads, whose new ops go with them where they may (live ops); none for
  // heads another instance published.
  void SendHeads(const std::vector<StoreEvents::Head>& heads, const Group* g, std::vector<Outbound>* out);
  void SendRelay(const StoredWatermark& wm, ConnId from, std::vector<Outbound>* out);

  ServerOptions opt_;
  std::shared_ptr<ServerStore> store_;
  std::unordered_map<ConnId, Session> sessions_;
  std::unordered_map<std::string, std::unordered_set<ConnId>> followers_;
  std::unordered_map<std::string, std::unordered_set<ConnId>> user_conns_;  // authed sessions per user
  std::unordered_set<ConnId> refused_;  // connections turned away (connections_max, hello deadline)
  std::deque<std::pair<int64_t, ConnId>> awaiting_hello_;  // (opened_ms, conn), oldest first
  OpIdGenerator ids_;                                      // ids of the ops the server writes itself (feeds)
  ServerStats stats_;  // its histograms stay empty: they are the three below
  Histogram group_events_ = Histogram::Sizes();
  Histogram commit_seconds_ = Histogram::Latency();
  Histogram notify_fanout_seconds_ = Histogram::Latency();
  uint64_t devices_online_ = 0;  // sessions with authed set (Hello, Close and Restore keep it)
  StreamActivityTracker activity_;

  // Wake-ups from other instances (StoreEvents), queued by the store's thread.
  uint64_t subscription_ = 0;
  std::mutex remote_mu_;
  std::vector<StoreEvents> remote_;  // guarded by remote_mu_
  std::function<void()> wakeup_;     // guarded by remote_mu_
};

}  // namespace outpost

#endif  // OUTPOST_SRC_SERVER_SERVER_IMPL_H_
