// Copyright 2026 The Outpost Authors.
//
// Server core. One write transaction per group of events (all connections): every answer that depends on
// a write leaves only after that transaction committed, and a group whose transaction fails leaves no trace
// in memory either (the sessions it touched are restored, its stats undone). A device is (user, device):
// counters, dedupe records and watermarks are keyed by both. Per op, in this order:
//   1. shape checks (id, stream, counter) — a malformed op is rejected without touching any counter;
//   2. dedupe by op_id, forever — a known op gets its original verdict (an applied op: its seq);
//   3. the device's counter for the stream — only last+1 is applied; above: Gap; at or below: Conflict;
//   4. limits and the authorize hook — a refusal is permanent and still consumes the counter;
//   5. the next seq of the stream.
#include "outpost/server.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "codec.h"
#include "keys.h"
#include "outpost/ids.h"
#include "outpost/membership.h"
#include "outpost/storage.h"

namespace outpost {

namespace {

enum Space : SpaceId { kOps = 0, kDedupe, kDevCtr, kStreams, kWm, kMembers, kMeta };
const std::vector<std::string>& SpaceNames() {
  static const std::vector<std::string> names = {"s_ops", "s_dedupe",  "s_devctr", "s_streams",
                                                 "s_wm",  "s_members", "s_meta"};
  return names;
}
constexpr std::string_view kFormatKey = "format";

struct Session {
  int64_t opened_ms = 0;
  bool authed = false;
  std::string user;
  std::string device;
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

}  // namespace

class ServerCore::Impl {
 public:
  Impl(ServerOptions options, std::unique_ptr<Storage> store)
      : opt_(std::move(options)), store_(std::move(store)), ids_(opt_.env) {}

  void Handle(std::vector<ServerEvent>& events, std::vector<Outbound>* out);
  void Tick(std::vector<Outbound>* out);
  ServerStats stats() const { return stats_; }
  // Checks the store's format (keys.h): a new store gets kServerFormat; another format is refused.
  Status CheckFormat();

 private:
  // State of one group of events, committed together.
  struct Group {
    WriteTxn* txn = nullptr;
    std::unordered_map<std::string, uint64_t> high;  // stream -> high seq
    std::unordered_map<std::string, uint64_t> ctr;   // DeviceCounterKey -> last counter
    std::set<std::string> dirty_high, dirty_ctr;
    std::set<std::string> notify;  // streams with new ops
    std::vector<Outbound> answers;
    std::vector<std::pair<std::string, std::string>> relays;  // stream, watermark frame
    std::vector<std::pair<ConnId, std::string>> relay_from;   // conn that sent it (not relayed back)
    std::unordered_map<ConnId, uint32_t> pushes;              // Push frames per connection in this group
    std::unordered_map<ConnId, size_t> pulled;                // op bytes of the pages each connection got
    std::set<std::pair<std::string, std::string>> left;       // (stream, user) memberships that ended
    std::unordered_map<ConnId, Session> saved;  // sessions as they were before the group touched them
    std::unordered_set<ConnId> hellos;          // connections whose Hello is in the group
    Status error;                               // first store error; fails the group
  };

  void HandleFrame(Group& g, ConnId conn, std::string_view bytes);
  void HandleHello(Group& g, ConnId conn, Session& s, const wire::Hello& hello);
  void HandlePush(Group& g, ConnId conn, Session& s, const wire::Push& push);
  OpVerdict ApplyOp(Group& g, ConnId conn, Session& s, const wire::Op& op);
  void HandlePull(Group& g, ConnId conn, Session& s, const wire::Pull& pull);
  void HandleWatermark(Group& g, ConnId conn, Session& s, const wire::Watermark& wm);
  void SendStoredWatermarks(Group& g, ConnId conn, Session& s, std::string_view stream);
  void Follow(Group& g, ConnId conn, Session& s, std::string_view stream);
  // Saves `conn`'s session before the group changes it, so a failed group can restore it.
  Session& Touch(Group& g, ConnId conn, Session& s) {
    g.saved.try_emplace(conn, s);
    return s;
  }
  // Puts the sessions a failed group touched back as they were, with the follower and user indexes.
  void Restore(Group& g);
  void Open(ConnId conn, std::vector<Outbound>* out);
  void Close(ConnId conn);
  // Whether the session may read `stream` now: membership, then the authorize hook (Access::kPull).
  bool MayRead(Group& g, const Session& s, std::string_view stream);
  // Whether a Notify or relay of `stream` may go to `conn` (followers are members; the hook may differ).
  bool MayDeliver(ConnId conn, std::string_view stream);
  // Ok when `name` may be a member: the grammar, then ServerOptions::user_exists.
  Status CheckMemberList(Group& g, std::string_view stream, std::string_view author,
                         std::string_view payload);
  void Answer(Group& g, ConnId conn, std::string frame, bool close_after = false) {
    g.answers.push_back({conn, std::move(frame), close_after});
  }
  void BadFrame(Group& g, ConnId conn, Status::Code code, std::string_view why, bool fatal) {
    ++stats_.bad_frames;
    Answer(g, conn, codec::EncodeError(code, why, fatal), fatal);
  }
  uint64_t High(Group& g, std::string_view stream);
  // Membership (outpost/membership.h). Ok when `user` may use `stream`; else the permanent reason.
  Status CheckMember(Group& g, std::string_view user, std::string_view stream);
  bool IsMember(Group& g, std::string_view stream, std::string_view user);
  bool StreamExists(Group& g, std::string_view stream);
  // Applies an applied kMembersKind op (its list already checked): the member table and the feeds of users
  // who joined or left. O(members before + members after), never O(sessions).
  void ApplyMembers(Group& g, std::string_view stream, std::string_view author,
                    std::vector<std::string> members);
  // Appends a server-authored op to `user`'s feed.
  void AppendFeed(Group& g, std::string_view user, std::string_view kind, std::string_view stream);
  void PutStoredOp(Group& g, const codec::OpFields& f);
  uint64_t Counter(Group& g, const std::string& key);
  bool ReadU64(Group& g, SpaceId space, std::string_view key, uint64_t* v);
  void Flush(Group& g);

  ServerOptions opt_;
  std::unique_ptr<Storage> store_;
  std::unordered_map<ConnId, Session> sessions_;
  std::unordered_map<std::string, std::unordered_set<ConnId>> followers_;
  std::unordered_map<std::string, std::unordered_set<ConnId>> user_conns_;  // authed sessions per user
  std::unordered_set<ConnId> refused_;  // connections turned away (connections_max, hello deadline)
  std::deque<std::pair<int64_t, ConnId>> awaiting_hello_;  // (opened_ms, conn), oldest first
  OpIdGenerator ids_;                                      // ids of the ops the server writes itself (feeds)
  ServerStats stats_;
};

std::string MemberKey(std::string_view stream, std::string_view user) {
  std::string k = keys::StreamPrefix(stream);
  keys::PutShort(&k, user);
  return k;
}

bool ServerCore::Impl::IsMember(Group& g, std::string_view stream, std::string_view user) {
  std::string unused;
  Status st = g.txn->Get(kMembers, MemberKey(stream, user), &unused);
  if (!st.ok() && !st.IsNotFound() && g.error.ok()) g.error = st;
  return st.ok();
}

bool ServerCore::Impl::StreamExists(Group& g, std::string_view stream) {
  const std::string prefix = keys::StreamPrefix(stream);
  auto cur = g.txn->NewCursor(kMembers);
  cur->Seek(prefix);
  const bool exists = cur->Valid() && cur->key().starts_with(prefix);
  // A read error must not pass for "no such stream" (a members op would then create it anew): it fails
  // the group.
  if (!cur->status().ok() && g.error.ok()) g.error = cur->status();
  return exists;
}

Status ServerCore::Impl::CheckMember(Group& g, std::string_view user, std::string_view stream) {
  if (!opt_.membership) return Status::OK();
  if (stream.starts_with(kFeedPrefix)) {
    if (stream.substr(kFeedPrefix.size()) == user) return Status::OK();
    return Status::PermissionDenied("forbidden: " + std::string(stream) +
                                    " is another user's membership feed");
  }
  if (IsMember(g, stream, user)) return Status::OK();
  // The same answer whether or not the stream exists: a non-member must not learn which names are taken.
  return Status::PermissionDenied("forbidden: " + std::string(user) + " is not a member of " +
                                  std::string(stream));
}

void ServerCore::Impl::PutStoredOp(Group& g, const codec::OpFields& f) {
  Status st = g.txn->Put(kOps, keys::ServerOpKey(f.stream, f.seq), codec::EncodeStoredOp(f));
  if (!st.ok() && g.error.ok()) g.error = st;
  g.notify.emplace(f.stream);
}

void ServerCore::Impl::AppendFeed(Group& g, std::string_view user, std::string_view kind,
                                  std::string_view stream) {
  const std::string feed = FeedStream(user);
  if (!keys::ValidateStream(feed, opt_.stream_id_bytes_max).ok()) return;
  uint64_t seq = High(g, feed) + 1;
  g.high[feed] = seq;
  g.dirty_high.insert(feed);
  codec::OpFields f;
  f.op_id = ids_.Next();
  f.stream = feed;
  f.kind = kind;
  f.payload = stream;
  f.device = "server";
  f.client_time_ms = opt_.env->NowMs();
  f.seq = seq;
  PutStoredOp(g, f);
}

void ServerCore::Impl::ApplyMembers(Group& g, std::string_view stream, std::string_view author,
                                    std::vector<std::string> members) {
  const bool creating = !StreamExists(g, stream);
  if (creating && std::find(members.begin(), members.end(), author) == members.end()) {
    members.emplace_back(author);
  }
  std::unordered_set<std::string> now(members.begin(), members.end());
  std::vector<std::string> gone;
  const std::string prefix = keys::StreamPrefix(stream);
  {
    auto cur = g.txn->NewCursor(kMembers);
    for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
      keys::Reader rd(cur->key().substr(prefix.size()));
      std::string_view user;
      if (rd.Short(&user) && !now.erase(std::string(user))) gone.emplace_back(user);
    }
    if (!cur->status().ok() && g.error.ok()) g.error = cur->status();  // a cut-short scan fails the group
  }
  for (const auto& user : gone) {
    Status st = g.txn->Delete(kMembers, MemberKey(stream, user));
    if (!st.ok() && g.error.ok()) g.error = st;
    AppendFeed(g, user, kLeftKind, stream);
    g.left.emplace(stream, user);
  }
  for (const auto& user : members) {
    if (!now.contains(user)) continue;  // was a member already
    Status st = g.txn->Put(kMembers, MemberKey(stream, user), "");
    if (!st.ok() && g.error.ok()) g.error = st;
    AppendFeed(g, user, kJoinedKind, stream);
    // Removed and added back in one group: its devices keep following.
    g.left.erase({std::string(stream), user});
    // Devices of the new member that already asked for the stream follow it now (and hear of this op).
    auto uc = user_conns_.find(user);
    if (uc == user_conns_.end()) continue;
    for (ConnId conn : uc->second) {
      auto sit = sessions_.find(conn);
      if (sit == sessions_.end() || !sit->second.denied.contains(std::string(stream))) continue;
      Session& session = Touch(g, conn, sit->second);
      session.denied.erase(std::string(stream));
      if (MayRead(g, session, stream)) Follow(g, conn, session, stream);
    }
  }
}

Status ServerCore::Impl::CheckMemberList(Group& g, std::string_view stream, std::string_view author,
                                         std::string_view payload) {
  auto members = ParseMembers(payload, opt_.members_max);
  if (!members.ok()) return members.status();
  const bool creating = !StreamExists(g, stream);
  if (creating && members->size() >= opt_.members_max &&
      std::find(members->begin(), members->end(), author) == members->end()) {
    return Status::InvalidArgument("member list and its author make more than " +
                                   std::to_string(opt_.members_max) + " users (members_max)");
  }
  if (opt_.user_exists) {
    for (const auto& name : *members) {
      if (!opt_.user_exists(name)) {
        return Status::InvalidArgument("member list names " + QuoteForMessage(name) + ", who is not a user");
      }
    }
  }
  return Status::OK();
}

bool ServerCore::Impl::MayRead(Group& g, const Session& s, std::string_view stream) {
  if (!CheckMember(g, s.user, stream).ok()) return false;
  if (!opt_.authorize) return true;
  return opt_.authorize(AccessRequest{s.user, s.device, stream, Access::kPull, {}, {}}).ok();
}

bool ServerCore::Impl::MayDeliver(ConnId conn, std::string_view stream) {
  if (!opt_.authorize) return true;
  auto it = sessions_.find(conn);
  if (it == sessions_.end()) return false;
  const Session& s = it->second;
  return opt_.authorize(AccessRequest{s.user, s.device, stream, Access::kPull, {}, {}}).ok();
}

bool ServerCore::Impl::ReadU64(Group& g, SpaceId space, std::string_view key, uint64_t* v) {
  std::string value;
  Status st = g.txn->Get(space, key, &value);
  if (st.IsNotFound()) return false;
  if (!st.ok()) {
    if (g.error.ok()) g.error = st;
    return false;
  }
  if (value.size() < 8) {
    if (g.error.ok()) g.error = Status::Corruption("short counter record");
    return false;
  }
  *v = keys::GetBE64(value);
  return true;
}

uint64_t ServerCore::Impl::High(Group& g, std::string_view stream) {
  std::string key(stream);
  auto it = g.high.find(key);
  if (it != g.high.end()) return it->second;
  uint64_t v = 0;
  ReadU64(g, kStreams, key, &v);
  g.high.emplace(std::move(key), v);
  return v;
}

uint64_t ServerCore::Impl::Counter(Group& g, const std::string& key) {
  auto it = g.ctr.find(key);
  if (it != g.ctr.end()) return it->second;
  uint64_t v = 0;
  ReadU64(g, kDevCtr, key, &v);
  g.ctr.emplace(key, v);
  return v;
}

void ServerCore::Impl::Flush(Group& g) {
  for (const auto& stream : g.dirty_high) {
    std::string v;
    keys::PutBE64(&v, g.high[stream]);
    Status st = g.txn->Put(kStreams, stream, v);
    if (!st.ok() && g.error.ok()) g.error = st;
  }
  for (const auto& key : g.dirty_ctr) {
    std::string v;
    keys::PutBE64(&v, g.ctr[key]);
    Status st = g.txn->Put(kDevCtr, key, v);
    if (!st.ok() && g.error.ok()) g.error = st;
  }
}

void ServerCore::Impl::Follow(Group& g, ConnId conn, Session& s, std::string_view stream) {
  if (s.follows.contains(std::string(stream))) return;
  Touch(g, conn, s);
  auto it = s.follows.emplace(stream).first;
  followers_[*it].insert(conn);
}

void ServerCore::Impl::Open(ConnId conn, std::vector<Outbound>* out) {
  if (sessions_.size() >= opt_.connections_max) {
    ++stats_.connections_refused;
    refused_.insert(conn);
    out->push_back({conn,
                    codec::EncodeError(Status::Code::kBusy,
                                       "server full: " + std::to_string(opt_.connections_max) +
                                           " connections (connections_max); retry later",
                                       true),
                    true});
    return;
  }
  Session& s = sessions_[conn];
  s.opened_ms = opt_.env->NowMs();
  awaiting_hello_.emplace_back(s.opened_ms, conn);
  ++stats_.connections;
  ++stats_.connections_total;
}

void ServerCore::Impl::Close(ConnId conn) {
  refused_.erase(conn);
  auto it = sessions_.find(conn);
  if (it == sessions_.end()) return;
  for (const auto& stream : it->second.follows) {
    auto f = followers_.find(stream);
    if (f == followers_.end()) continue;
    f->second.erase(conn);
    if (f->second.empty()) followers_.erase(f);
  }
  if (it->second.authed) {
    auto uc = user_conns_.find(it->second.user);
    if (uc != user_conns_.end()) {
      uc->second.erase(conn);
      if (uc->second.empty()) user_conns_.erase(uc);
    }
  }
  sessions_.erase(it);
  if (stats_.connections > 0) --stats_.connections;
}

void ServerCore::Impl::Restore(Group& g) {
  for (auto& [conn, before] : g.saved) {
    auto it = sessions_.find(conn);
    if (it == sessions_.end()) continue;  // closed within the group: Close() cleaned its indexes
    Session& now = it->second;
    for (const auto& stream : now.follows) {
      if (before.follows.contains(stream)) continue;
      auto f = followers_.find(stream);
      if (f == followers_.end()) continue;
      f->second.erase(conn);
      if (f->second.empty()) followers_.erase(f);
    }
    for (const auto& stream : before.follows) {
      if (!now.follows.contains(stream)) followers_[stream].insert(conn);
    }
    if (now.authed && !before.authed) {
      auto uc = user_conns_.find(now.user);
      if (uc != user_conns_.end()) {
        uc->second.erase(conn);
        if (uc->second.empty()) user_conns_.erase(uc);
      }
    }
    now = std::move(before);
  }
  g.saved.clear();
}

void ServerCore::Impl::Tick(std::vector<Outbound>* out) {
  if (opt_.hello_deadline_ms <= 0) {
    awaiting_hello_.clear();
    return;
  }
  const int64_t now = opt_.env->NowMs();
  while (!awaiting_hello_.empty() && now - awaiting_hello_.front().first >= opt_.hello_deadline_ms) {
    const ConnId conn = awaiting_hello_.front().second;
    awaiting_hello_.pop_front();
    auto it = sessions_.find(conn);
    if (it == sessions_.end() || it->second.authed || refused_.contains(conn)) continue;
    ++stats_.hello_timeouts;
    refused_.insert(conn);  // only its close is left to come
    out->push_back({conn,
                    codec::EncodeError(Status::Code::kTimeout,
                                       "no Hello within " + std::to_string(opt_.hello_deadline_ms) +
                                           " ms of connecting (hello_deadline_ms)",
                                       true),
                    true});
  }
}

void ServerCore::Impl::Handle(std::vector<ServerEvent>& events, std::vector<Outbound>* out) {
  auto txn = store_->BeginWrite();
  if (!txn.ok()) {
    // No transaction, so no frame can be handled; connections still open and close, and each one that
    // sent a frame hears that it must resend (one whose Hello is lost reconnects).
    ++stats_.commit_errors;
    std::unordered_set<ConnId> told;
    for (const auto& ev : events) {
      if (ev.kind == ServerEvent::Kind::kOpen) Open(ev.conn, out);
      if (ev.kind == ServerEvent::Kind::kClose) {
        Close(ev.conn);
        told.erase(ev.conn);
      }
      if (ev.kind != ServerEvent::Kind::kFrame || refused_.contains(ev.conn) || !told.insert(ev.conn).second)
        continue;
      auto sit = sessions_.find(ev.conn);
      const bool fatal = sit == sessions_.end() || !sit->second.authed;
      out->push_back(
          {ev.conn,
           codec::EncodeError(Status::Code::kBusy,
                              "server store unavailable, resend: " + txn.status().ToString(), fatal),
           fatal});
    }
    return;
  }
  const ServerStats before = stats_;
  Group g;
  g.txn = txn->get();
  for (auto& ev : events) {
    switch (ev.kind) {
      case ServerEvent::Kind::kOpen:
        Open(ev.conn, &g.answers);
        break;
      case ServerEvent::Kind::kClose:
        Close(ev.conn);
        break;
      case ServerEvent::Kind::kFrame:
        HandleFrame(g, ev.conn, ev.frame);
        break;
    }
  }
  Flush(g);
  Status st = g.error;
  // A group of only opens and closes wrote nothing: no commit (and no fsync) for it.
  const bool had_frames = std::any_of(events.begin(), events.end(), [](const ServerEvent& ev) {
    return ev.kind == ServerEvent::Kind::kFrame;
  });
  if (st.ok() && had_frames) st = (*txn)->Commit();
  txn->reset();
  if (!st.ok()) {
    // Nothing of this group is durable, so nothing of it may stay in memory or leave: the sessions it
    // touched go back as they were, its stats are undone, and each connection that sent work hears that it
    // must resend (pushes are idempotent, so resending is always safe). A fatal answer (a refusal that did
    // not depend on the store) still goes out; a connection whose Hello was lost gets a fatal Busy and
    // reconnects.
    Restore(g);
    ServerStats kept = stats_;
    stats_ = before;
    stats_.connections = kept.connections;
    stats_.connections_total = kept.connections_total;
    stats_.connections_refused = kept.connections_refused;
    stats_.bad_frames = kept.bad_frames;
    stats_.auth_failures = kept.auth_failures;
    stats_.hello_timeouts = kept.hello_timeouts;
    ++stats_.commit_errors;
    std::unordered_set<ConnId> told;
    for (auto& a : g.answers) {
      if (a.close_after) {
        told.insert(a.conn);
        out->push_back(std::move(a));
      }
    }
    for (const auto& a : g.answers) {
      if (!told.insert(a.conn).second || !sessions_.contains(a.conn)) continue;
      const bool fatal = g.hellos.contains(a.conn);
      out->push_back(
          {a.conn,
           codec::EncodeError(Status::Code::kBusy, "server store failed, resend: " + st.ToString(), fatal),
           fatal});
    }
    return;
  }
  if (had_frames) ++stats_.commits;
  // Users who left a stream stop hearing of it now: O(their connections). A device that followed it asked
  // for it, so it follows it again if its user is added back.
  for (const auto& [stream, user] : g.left) {
    auto uc = user_conns_.find(user);
    if (uc == user_conns_.end()) continue;
    auto f = followers_.find(stream);
    for (ConnId conn : uc->second) {
      auto sit = sessions_.find(conn);
      if (sit != sessions_.end() && sit->second.follows.erase(stream) > 0 &&
          sit->second.denied.size() < opt_.denied_streams_max) {
        sit->second.denied.insert(stream);
      }
      if (f != followers_.end()) f->second.erase(conn);
    }
    if (f != followers_.end() && f->second.empty()) followers_.erase(f);
  }
  for (auto& a : g.answers) out->push_back(std::move(a));
  for (const auto& stream : g.notify) {
    auto f = followers_.find(stream);
    if (f == followers_.end()) continue;
    std::string frame = codec::EncodeNotify(stream, g.high[stream]);
    for (ConnId c : f->second) {
      if (MayDeliver(c, stream)) out->push_back({c, frame});
    }
  }
  for (size_t i = 0; i < g.relays.size(); ++i) {
    auto f = followers_.find(g.relays[i].first);
    if (f == followers_.end()) continue;
    for (ConnId c : f->second) {
      if (c != g.relay_from[i].first && MayDeliver(c, g.relays[i].first))
        out->push_back({c, g.relays[i].second});
    }
  }
}

void ServerCore::Impl::HandleFrame(Group& g, ConnId conn, std::string_view bytes) {
  if (refused_.contains(conn)) return;  // over connections_max: only its close is left to come
  auto sit = sessions_.find(conn);
  if (sit == sessions_.end()) {  // open event lost: tolerate, as a connection opened now
    Open(conn, &g.answers);
    if (refused_.contains(conn)) return;
    sit = sessions_.find(conn);
  }
  Session& s = sit->second;
  auto frame = codec::DecodeFrame(bytes, opt_.frame_bytes_max);
  if (!frame.ok()) {
    BadFrame(g, conn, frame.status().code(), frame.status().message(), false);
    return;
  }
  const wire::Frame* f = *frame;
  if (f->body_type() == wire::Body::Hello) {
    HandleHello(g, conn, s, *f->body_as_Hello());
    return;
  }
  if (!s.authed) {
    BadFrame(g, conn, Status::Code::kPermissionDenied, "send Hello before anything else", true);
    return;
  }
  switch (f->body_type()) {
    case wire::Body::Push:
      if (++g.pushes[conn] > opt_.batches_inflight_max) {
        ++stats_.busy;
        Answer(g, conn,
               codec::EncodeError(Status::Code::kBusy,
                                  "more than " + std::to_string(opt_.batches_inflight_max) +
                                      " batches in flight (batches_inflight_max): back off and resend",
                                  false));
        break;
      }
      HandlePush(g, conn, s, *f->body_as_Push());
      break;
    case wire::Body::Pull:
      HandlePull(g, conn, s, *f->body_as_Pull());
      break;
    case wire::Body::Watermark:
      HandleWatermark(g, conn, s, *f->body_as_Watermark());
      break;
    default:
      BadFrame(g, conn, Status::Code::kInvalidArgument, "frame type not accepted by the server", false);
  }
}

void ServerCore::Impl::HandleHello(Group& g, ConnId conn, Session& s, const wire::Hello& hello) {
  if (s.authed) {
    BadFrame(g, conn, Status::Code::kInvalidArgument, "second Hello on one connection", false);
    return;
  }
  if (hello.protocol_version() != codec::kProtocolVersion) {
    BadFrame(g, conn, Status::Code::kFailedPrecondition,
             "protocol version " + std::to_string(hello.protocol_version()) +
                 " not supported (server speaks " + std::to_string(codec::kProtocolVersion) + ")",
             true);
    return;
  }
  HelloInfo info{std::string(codec::Str(hello.user())), std::string(codec::Str(hello.device())),
                 std::string(codec::Str(hello.token()))};
  Status valid = ValidateDeviceId(info.device);
  if (!valid.ok()) {
    BadFrame(g, conn, Status::Code::kInvalidArgument, valid.message(), true);
    return;
  }
  std::string user = info.user;
  if (opt_.authenticate) {
    auto r = opt_.authenticate(info);
    if (!r.ok()) {
      ++stats_.auth_failures;
      BadFrame(g, conn, Status::Code::kPermissionDenied, "authentication failed: " + r.status().message(),
               true);
      return;
    }
    user = *r;
  }
  valid = ValidateUserName(user);
  if (!valid.ok()) {
    BadFrame(g, conn, Status::Code::kInvalidArgument, valid.message(), true);
    return;
  }
  size_t n = hello.cursors() ? hello.cursors()->size() : 0;
  if (n > opt_.hello_streams_max) {
    BadFrame(g, conn, Status::Code::kInvalidArgument, "Hello lists too many streams", true);
    return;
  }
  auto uc = user_conns_.find(user);
  if (uc != user_conns_.end() && uc->second.size() >= opt_.connections_per_user_max) {
    ++stats_.connections_refused;
    Answer(g, conn,
           codec::EncodeError(Status::Code::kBusy,
                              "too many connections for user " + user + ": " +
                                  std::to_string(opt_.connections_per_user_max) +
                                  " (connections_per_user_max); retry later",
                              true),
           true);
    return;
  }
  Touch(g, conn, s);
  g.hellos.insert(conn);
  s.authed = true;
  s.user = std::move(user);
  s.device = info.device;
  user_conns_[s.user].insert(conn);
  // Each listed stream is followed only if the device may read it now; a non-member's is kept aside and
  // followed once the user joins (ApplyMembers).
  for (size_t i = 0; i < n; ++i) {
    std::string_view stream = codec::Str(hello.cursors()->Get(i)->stream());
    if (!keys::ValidateStream(stream, opt_.stream_id_bytes_max).ok()) continue;
    if (MayRead(g, s, stream)) {
      Follow(g, conn, s, stream);
    } else if (opt_.membership && s.denied.size() < opt_.denied_streams_max) {
      s.denied.emplace(stream);
    }
  }
  // The device's counters: every stream it follows, and every stream it ever pushed to. A counter is the
  // device's own (how many of its ops the stream took), so it is listed even where the device may no
  // longer read: else a device that lost its unsynced state would reuse counters. Those streams' high
  // seq is not the device's to know and goes out as 0.
  // The list fits half a frame, followed streams first: a device can make counters on any number of
  // streams (a refused push consumes one), and neither the Welcome nor the work of one Hello may grow with
  // them. A stream left out costs its device nothing but a Pull, or a Conflict naming its last counter.
  std::map<std::string, std::pair<uint64_t, bool>> counters;  // stream -> counter, readable
  size_t budget = opt_.frame_bytes_max / 2;
  auto fits = [&budget](std::string_view stream) {
    const size_t cost = stream.size() + 48;  // the entry, its table and offsets
    if (cost > budget) return false;
    budget -= cost;
    return true;
  };
  for (const auto& stream : s.follows) {
    if (fits(stream)) counters[stream] = {Counter(g, keys::DeviceCounterKey(s.user, s.device, stream)), true};
  }
  const std::string prefix = keys::DevicePrefix(s.user, s.device);
  auto cur = g.txn->NewCursor(kDevCtr);
  for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
    keys::Reader rd(cur->key().substr(prefix.size()));
    std::string_view stream;
    if (!rd.Short(&stream) || cur->value().size() < 8 || s.follows.contains(std::string(stream))) continue;
    if (!fits(stream)) break;
    counters[std::string(stream)] = {Counter(g, std::string(cur->key())), MayRead(g, s, stream)};
  }
  if (!cur->status().ok() && g.error.ok()) g.error = cur->status();
  flatbuffers::FlatBufferBuilder b(256 + counters.size() * 64);
  std::vector<flatbuffers::Offset<wire::DeviceCounter>> dcs;
  for (const auto& [stream, c] : counters) {
    const auto [counter, readable] = c;
    dcs.push_back(
        wire::CreateDeviceCounter(b, b.CreateString(stream), counter, readable ? High(g, stream) : 0));
  }
  auto vec = b.CreateVector(dcs);
  auto body =
      wire::CreateWelcome(b, codec::kProtocolVersion, vec, opt_.frame_bytes_max, opt_.ops_per_batch_max,
                          opt_.payload_bytes_max, 0, opt_.kind_bytes_max, opt_.stream_id_bytes_max);
  // Receipts that moved while the device was away: a caught-up device may not pull in this session, and
  // relays only carry what moves from now on. They go before the Welcome, so a device that is idle once
  // welcomed (a one-shot sync) has them already.
  for (const auto& stream : s.follows) SendStoredWatermarks(g, conn, s, stream);
  Answer(g, conn, codec::FinishFrame(b, wire::Body::Welcome, body.Union()));
}

void ServerCore::Impl::HandlePush(Group& g, ConnId conn, Session& s, const wire::Push& push) {
  size_t n = push.ops() ? push.ops()->size() : 0;
  if (n > opt_.ops_per_batch_max) {
    BadFrame(g, conn, Status::Code::kInvalidArgument,
             "Push of " + std::to_string(n) + " ops exceeds ops_per_batch_max " +
                 std::to_string(opt_.ops_per_batch_max),
             false);
    return;
  }
  flatbuffers::FlatBufferBuilder b(128 + n * 48);
  std::vector<flatbuffers::Offset<wire::OpResult>> results;
  results.reserve(n);
  std::string_view stream;
  for (size_t i = 0; i < n; ++i) {
    const wire::Op* op = push.ops()->Get(i);
    if (i == 0) stream = codec::Str(op->stream());
    OpVerdict v = ApplyOp(g, conn, s, *op);
    auto msg = v.message.empty() ? 0 : b.CreateString(v.message);
    wire::Uuid id = op->op_id() ? *op->op_id() : wire::Uuid();
    wire::OpResultBuilder rb(b);
    rb.add_op_id(&id);
    rb.add_code(v.code);
    rb.add_seq(v.seq);
    rb.add_counter(op->device_counter());
    rb.add_last_counter(v.last_counter);
    rb.add_error_code(static_cast<uint16_t>(v.error_code));
    if (!msg.IsNull()) rb.add_message(msg);
    results.push_back(rb.Finish());
  }
  auto sv = b.CreateString(stream.data(), stream.size());
  auto rv = b.CreateVector(results);
  auto body = wire::CreatePushAck(b, push.batch_id(), sv, rv);
  Answer(g, conn, codec::FinishFrame(b, wire::Body::PushAck, body.Union()));
}

OpVerdict ServerCore::Impl::ApplyOp(Group& g, ConnId conn, Session& s, const wire::Op& op) {
  OpVerdict v;
  auto reject = [&](Status::Code code, std::string msg) {
    v.code = wire::ResultCode::Rejected;
    v.error_code = code;
    v.message = std::move(msg);
    ++stats_.rejected;
    return v;
  };
  codec::OpFields f = codec::FieldsOf(op);
  // 1. Shape: nothing is consumed, the device cannot be answered usefully otherwise.
  if (f.op_id.IsNil()) return reject(Status::Code::kInvalidArgument, "op id missing");
  Status st = keys::ValidateStream(f.stream, opt_.stream_id_bytes_max);
  if (!st.ok()) return reject(st.code(), st.message());
  if (f.device_counter == 0) return reject(Status::Code::kInvalidArgument, "device_counter must be >= 1");

  std::string ctr_key = keys::DeviceCounterKey(s.user, s.device, f.stream);
  uint64_t last = Counter(g, ctr_key);
  auto consume = [&]() {
    g.ctr[ctr_key] = f.device_counter;
    g.dirty_ctr.insert(ctr_key);
  };
  // 2. Dedupe by op id, before any counter logic.
  std::string dedupe_value;
  st = g.txn->Get(kDedupe, f.op_id.AsBytes(), &dedupe_value);
  if (!st.ok() && !st.IsNotFound()) {
    if (g.error.ok()) g.error = st;
    v.code = wire::ResultCode::Retry;
    v.error_code = st.code();
    v.message = st.message();
    return v;
  }
  if (st.ok()) {
    keys::DedupeRecord rec;
    st = keys::DecodeDedupe(dedupe_value, &rec);
    if (!st.ok()) return reject(st.code(), st.message());
    // Every answer but Gap, Conflict and Retry tells the device that this counter is used up, so a known
    // op under a counter it was not recorded with still goes through counter order: ahead of last+1 it is
    // a Gap (answering it would leave a hole), at last+1 the counter is consumed.
    bool same_counter = rec.counter == f.device_counter;
    if (!same_counter && f.device_counter > last + 1) {
      ++stats_.gaps;
      v.code = wire::ResultCode::Gap;
      v.last_counter = last;
      return v;
    }
    if (rec.user != s.user || rec.device != s.device || rec.stream != f.stream) {
      if (f.device_counter == last + 1) consume();
      return reject(Status::Code::kConflict, "op id already used by another device or stream");
    }
    auto code = static_cast<wire::ResultCode>(rec.code);
    if (code == wire::ResultCode::Applied) {
      // A resend under a new counter (renumbered, or retried after the device gave up on it).
      if (!same_counter && f.device_counter == last + 1) consume();
      ++stats_.duplicates;
      v.code = wire::ResultCode::Duplicate;
      v.seq = rec.seq;
      return v;
    }
    if (rec.counter == f.device_counter) {  // same op, same counter: the same verdict again
      v.code = code;
      v.error_code = static_cast<Status::Code>(rec.error_code);
      v.message = rec.message;
      return v;
    }
    if (code == wire::ResultCode::Rejected && !f.retry) {
      // Under a new counter but not the user's Retry: a renumber (the device lost what it knew, to a power
      // loss say). The rejection stands, and the counter is used up as for a duplicate.
      if (f.device_counter == last + 1) consume();
      ++stats_.rejected;
      v.code = code;
      v.error_code = static_cast<Status::Code>(rec.error_code);
      v.message = rec.message;
      return v;
    }
    // A rejected op the user retried, or a skipped one, under a new counter is judged afresh.
  }
  // 3. Counter order.
  if (f.device_counter <= last) {
    ++stats_.conflicts;
    v.code = wire::ResultCode::Conflict;
    v.last_counter = last;
    return v;
  }
  if (f.device_counter > last + 1) {
    ++stats_.gaps;
    v.code = wire::ResultCode::Gap;
    v.last_counter = last;
    return v;
  }
  consume();
  keys::DedupeRecord rec;
  rec.counter = f.device_counter;
  rec.stream.assign(f.stream);
  rec.user = s.user;
  rec.device = s.device;
  auto record = [&](const OpVerdict& verdict) {
    rec.code = static_cast<uint8_t>(verdict.code == wire::ResultCode::Duplicate ? wire::ResultCode::Applied
                                                                                : verdict.code);
    rec.seq = verdict.seq;
    rec.error_code = static_cast<uint16_t>(verdict.error_code);
    rec.message = verdict.message;
    Status put = g.txn->Put(kDedupe, f.op_id.AsBytes(), keys::EncodeDedupe(rec));
    if (!put.ok() && g.error.ok()) g.error = put;
    return verdict;
  };
  if (f.skip) {
    ++stats_.skips;
    v.code = wire::ResultCode::Skipped;
    return record(v);
  }
  // 4. Limits and the authorize hook: permanent, and the counter stays consumed.
  if (f.kind.size() > opt_.kind_bytes_max) {
    return record(reject(Status::Code::kInvalidArgument, "kind exceeds kind_bytes_max"));
  }
  if (f.payload.size() > opt_.payload_bytes_max) {
    return record(reject(Status::Code::kInvalidArgument, "payload of " + std::to_string(f.payload.size()) +
                                                             " bytes exceeds payload_bytes_max " +
                                                             std::to_string(opt_.payload_bytes_max)));
  }
  if (f.kind == kJoinedKind || f.kind == kLeftKind) {
    ++stats_.forbidden;
    return record(reject(Status::Code::kPermissionDenied, "forbidden: ops of kind " + std::string(f.kind) +
                                                              " are written only by the server"));
  }
  if (opt_.membership) {
    Status member;
    if (f.stream.starts_with(kFeedPrefix)) {
      member = Status::PermissionDenied("forbidden: streams starting with " + std::string(kFeedPrefix) +
                                        " are membership feeds, written only by the server");
    } else if (f.kind == kMembersKind) {
      if (StreamExists(g, f.stream) && !IsMember(g, f.stream, s.user)) {
        member =
            Status::PermissionDenied("forbidden: " + s.user + " is not a member of " + std::string(f.stream));
      } else {
        member = CheckMemberList(g, f.stream, s.user, f.payload);
      }
    } else {
      member = CheckMember(g, s.user, f.stream);
    }
    if (!member.ok()) {
      if (member.code() == Status::Code::kPermissionDenied) ++stats_.forbidden;
      return record(reject(member.code(), member.message()));
    }
  }
  if (opt_.authorize) {
    AccessRequest req{s.user, s.device, f.stream, Access::kPush, f.kind, f.payload};
    Status auth = opt_.authorize(req);
    if (!auth.ok()) return record(reject(auth.code(), auth.message()));
  }
  // 5. The next seq.
  uint64_t seq = High(g, f.stream) + 1;
  g.high[std::string(f.stream)] = seq;
  g.dirty_high.emplace(f.stream);
  codec::OpFields stored = f;
  stored.device = s.device;
  stored.user = s.user;
  stored.seq = seq;
  stored.retry = false;  // the pusher's business
  PutStoredOp(g, stored);
  if (opt_.membership && f.kind == kMembersKind) {
    ApplyMembers(g, f.stream, s.user, ParseMembers(f.payload, opt_.members_max).value());
  }
  // The pusher hears of the stream from now on, if it may read it (the hook may allow push-only access).
  if (!s.follows.contains(std::string(f.stream)) && MayRead(g, s, f.stream)) Follow(g, conn, s, f.stream);
  ++stats_.ops_applied;
  v.code = wire::ResultCode::Applied;
  v.seq = seq;
  return record(v);
}

void ServerCore::Impl::HandlePull(Group& g, ConnId conn, Session& s, const wire::Pull& pull) {
  std::string_view stream = codec::Str(pull.stream());
  Status st = keys::ValidateStream(stream, opt_.stream_id_bytes_max);
  if (!st.ok()) {
    BadFrame(g, conn, st.code(), st.message(), false);
    return;
  }
  st = CheckMember(g, s.user, stream);
  if (st.ok() && opt_.authorize)
    st = opt_.authorize(AccessRequest{s.user, s.device, stream, Access::kPull, {}, {}});
  if (!st.ok()) {
    if (st.code() == Status::Code::kPermissionDenied) {
      ++stats_.forbidden;
      if (opt_.membership && s.denied.size() < opt_.denied_streams_max &&
          !s.denied.contains(std::string(stream))) {
        Touch(g, conn, s).denied.emplace(stream);
      }
    }
    Answer(g, conn,
           codec::EncodeError(st.code(), "pull " + std::string(stream) + ": " + st.message(), false));
    // An empty, final page: the device's pull completes and it has nothing to show.
    flatbuffers::FlatBufferBuilder b(256);
    auto sv = b.CreateString(stream.data(), stream.size());
    auto body = wire::CreateBatch(b, sv, pull.after_seq(), b.CreateVector<flatbuffers::Offset<wire::Op>>({}),
                                  pull.after_seq(), false);
    Answer(g, conn, codec::FinishFrame(b, wire::Body::Batch, body.Union()));
    return;
  }
  ++stats_.pulls;
  Follow(g, conn, s, stream);
  uint64_t high = High(g, stream);
  uint32_t limit = pull.limit() == 0 ? opt_.pull_page_max : std::min(pull.limit(), opt_.pull_page_max);
  size_t budget = opt_.frame_bytes_max > 4096 ? opt_.frame_bytes_max - 4096 : opt_.frame_bytes_max / 2;
  // One frame's worth of pages per connection per group: a device that sends a burst of Pulls (many
  // streams catching up at once) gets empty pages with has_more for the rest and asks again, rather than
  // the server queueing hundreds of MiB for it (and the transport dropping it for that).
  size_t& pulled = g.pulled[conn];
  if (pulled >= budget) limit = 0;
  flatbuffers::FlatBufferBuilder b(4096);
  std::vector<flatbuffers::Offset<wire::Op>> ops;
  uint64_t after = pull.after_seq();
  uint64_t next = after + 1;
  size_t bytes = 0;
  if (after < high) {
    std::string prefix = keys::StreamPrefix(stream);
    auto cur = g.txn->NewCursor(kOps);
    for (cur->Seek(keys::ServerOpKey(stream, next)); cur->Valid() && ops.size() < limit; cur->Next()) {
      std::string_view key = cur->key();
      if (!key.starts_with(prefix) || key.size() != prefix.size() + 8) break;
      if (keys::GetBE64(key.substr(prefix.size())) != next) break;  // seqs have no gaps; stop if they did
      if (!ops.empty() && bytes + cur->value().size() > budget) break;
      auto op = codec::DecodeStoredOp(cur->value());
      if (!op.ok()) {
        if (g.error.ok()) g.error = op.status();
        return;
      }
      bytes += cur->value().size();
      pulled += cur->value().size();
      ops.push_back(codec::BuildOp(b, codec::FieldsOf(**op)));
      ++next;
    }
    if (!cur->status().ok() && g.error.ok()) g.error = cur->status();
  }
  auto sv = b.CreateString(stream.data(), stream.size());
  auto ov = b.CreateVector(ops);
  auto body = wire::CreateBatch(b, sv, after, ov, high, next - 1 < high);
  // Stored watermarks go first: a device that has merged the batch has its receipts too.
  SendStoredWatermarks(g, conn, s, stream);
  Answer(g, conn, codec::FinishFrame(b, wire::Body::Batch, body.Union()));
}

void ServerCore::Impl::SendStoredWatermarks(Group& g, ConnId conn, Session& s, std::string_view stream) {
  if (s.watermarks_sent.contains(std::string(stream))) return;
  Touch(g, conn, s).watermarks_sent.emplace(stream);
  std::string prefix = keys::StreamPrefix(stream);
  auto cur = g.txn->NewCursor(kWm);
  for (cur->Seek(prefix); cur->Valid() && cur->key().starts_with(prefix); cur->Next()) {
    keys::Reader rd(cur->key().substr(prefix.size()));
    std::string_view user, device;
    uint8_t kind;
    if (!rd.Short(&user) || !rd.Short(&device) || !rd.Byte(&kind) || cur->value().size() < 8 || kind > 1)
      continue;
    if (user == s.user && device == s.device) continue;
    Answer(g, conn,
           codec::EncodeWatermark(stream, user, device, static_cast<WatermarkKind>(kind),
                                  keys::GetBE64(cur->value())));
  }
}

void ServerCore::Impl::HandleWatermark(Group& g, ConnId conn, Session& s, const wire::Watermark& wm) {
  std::string_view stream = codec::Str(wm.stream());
  Status st = keys::ValidateStream(stream, opt_.stream_id_bytes_max);
  if (!st.ok() || wm.kind() > wire::WatermarkKind::MAX) {
    BadFrame(g, conn, Status::Code::kInvalidArgument, st.ok() ? "bad watermark kind" : st.message(), false);
    return;
  }
  st = CheckMember(g, s.user, stream);
  if (st.ok() && opt_.authorize) {
    st = opt_.authorize(AccessRequest{s.user, s.device, stream, Access::kWatermark, {}, {}});
  }
  if (!st.ok()) {
    if (st.code() == Status::Code::kPermissionDenied) ++stats_.forbidden;
    Answer(g, conn,
           codec::EncodeError(st.code(), "watermark " + std::string(stream) + ": " + st.message(), false));
    return;
  }
  uint64_t seq = std::min(wm.seq(), High(g, stream));  // nobody has seen what does not exist yet
  std::string key = keys::WatermarkKey(stream, s.user, s.device, static_cast<uint8_t>(wm.kind()));
  uint64_t stored = 0;
  ReadU64(g, kWm, key, &stored);
  // The answer (sent once the group is durable) is the stored value: the device's acknowledgement.
  Answer(g, conn,
         codec::EncodeWatermark(stream, s.user, s.device, static_cast<WatermarkKind>(wm.kind()),
                                std::max(seq, stored)));
  if (seq <= stored) return;  // monotonic and idempotent
  std::string v;
  keys::PutBE64(&v, seq);
  st = g.txn->Put(kWm, key, v);
  if (!st.ok() && g.error.ok()) g.error = st;
  g.relays.emplace_back(
      std::string(stream),
      codec::EncodeWatermark(stream, s.user, s.device, static_cast<WatermarkKind>(wm.kind()), seq));
  g.relay_from.emplace_back(conn, std::string());
}

Status ServerCore::Impl::CheckFormat() {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  std::string value;
  Status st = txn->Get(kMeta, kFormatKey, &value);
  if (st.ok()) {
    if (value == std::to_string(keys::kServerFormat)) return Status::OK();
    return Status::FailedPrecondition("server store has format " + QuoteForMessage(value) +
                                      "; this outpostd reads format " + std::to_string(keys::kServerFormat) +
                                      " and leaves the store untouched: run the outpostd that wrote it");
  }
  if (!st.IsNotFound()) return st;
  for (SpaceId space : {kOps, kDedupe, kDevCtr}) {
    auto cur = txn->NewCursor(space);
    cur->Seek("");
    if (cur->Valid()) {
      return Status::FailedPrecondition(
          "server store was written by an outpostd before 2026-12 (format 1: device counters not bound to "
          "users); this outpostd needs format " +
          std::to_string(keys::kServerFormat) +
          " and does not convert it. Keep running the outpostd that wrote it, or start this one on a new, "
          "empty store: devices resend the ops they have not sent yet, and keep their history");
    }
    OUTPOST_RETURN_IF_ERROR(cur->status());
  }
  OUTPOST_RETURN_IF_ERROR(txn->Put(kMeta, kFormatKey, std::to_string(keys::kServerFormat)));
  return txn->Commit();
}

// ---- ServerCore ----

Result<std::unique_ptr<ServerCore>> ServerCore::Open(ServerOptions options) {
  if (options.env == nullptr) options.env = SystemEnv();
  StorageOptions so;
  so.spaces = SpaceNames();
  so.sync = options.store_sync;
  OUTPOST_ASSIGN_OR_RETURN(auto store, options.open_store ? options.open_store(options.store, so)
                                                          : OpenStorage(options.store, so));
  auto impl = std::make_unique<Impl>(std::move(options), std::move(store));
  Status format = impl->CheckFormat();
  if (!format.ok()) return Status::FromCode(format.code(), "server store: " + format.message());
  return std::unique_ptr<ServerCore>(new ServerCore(std::move(impl)));
}

ServerCore::ServerCore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerCore::~ServerCore() = default;
void ServerCore::Handle(std::vector<ServerEvent>& events, std::vector<Outbound>* out) {
  impl_->Handle(events, out);
}
void ServerCore::Tick(std::vector<Outbound>* out) { impl_->Tick(out); }
ServerStats ServerCore::Stats() const { return impl_->stats(); }

// ---- Server: a ServerCore on a Listener ----

struct Server::State {
  std::unique_ptr<ServerCore> core;
  std::unique_ptr<Listener> listener;
  uint32_t events_per_group_max = 4096;
  std::mutex step_mu;  // one Step at a time
  std::mutex mu;
  std::condition_variable cv;
  bool wake = false;
  bool stop = false;
  std::thread thread;
  std::vector<ServerEvent> events;
  std::vector<Outbound> out;
};

Result<std::unique_ptr<Server>> Server::Open(ServerOptions options, std::unique_ptr<Listener> listener) {
  if (!listener) return Status::InvalidArgument("Server::Open needs a listener");
  uint32_t group_max = std::max<uint32_t>(1, options.events_per_group_max);
  OUTPOST_ASSIGN_OR_RETURN(auto core, ServerCore::Open(std::move(options)));
  std::unique_ptr<Server> server(new Server());
  server->state_ = std::make_unique<State>();
  server->state_->core = std::move(core);
  server->state_->listener = std::move(listener);
  server->state_->events_per_group_max = group_max;
  State* st = server->state_.get();
  st->listener->SetWakeup([st] {
    std::lock_guard<std::mutex> lock(st->mu);
    st->wake = true;
    st->cv.notify_one();
  });
  return server;
}

Server::~Server() {
  if (!state_) return;
  Stop();
  state_->listener->SetWakeup(nullptr);
}

size_t Server::Step() {
  State& st = *state_;
  std::lock_guard<std::mutex> lock(st.step_mu);
  st.events.clear();
  st.out.clear();
  st.core->Tick(&st.out);
  ServerEvent ev;
  while (st.events.size() < st.events_per_group_max && st.listener->Poll(&ev))
    st.events.push_back(std::move(ev));
  if (!st.events.empty()) st.core->Handle(st.events, &st.out);
  for (auto& o : st.out) {
    (void)st.listener->Send(o.conn, o.frame);  // a vanished connection is not an error here
    if (o.close_after) st.listener->CloseConnection(o.conn);
  }
  st.out.clear();
  return st.events.size();
}

void Server::Start() {
  State& st = *state_;
  std::lock_guard<std::mutex> guard(st.mu);
  if (st.thread.joinable()) return;
  st.stop = false;
  st.thread = std::thread([this, &st] {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(st.mu);
        if (st.stop) return;
      }
      if (Step() > 0) continue;
      std::unique_lock<std::mutex> lock(st.mu);
      // The wakeup callback sets `wake`; the bound only guards against a lost wakeup.
      st.cv.wait_for(lock, std::chrono::milliseconds(50), [&] { return st.wake || st.stop; });
      st.wake = false;
    }
  });
}

void Server::Stop() {
  State& st = *state_;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.stop = true;
    st.cv.notify_all();
  }
  if (st.thread.joinable()) st.thread.join();
  // Events already received are answered: a batch made durable gets its ack out before the caller closes.
  for (int i = 0; i < 64 && Step() > 0; ++i) {
  }
}

std::string Server::endpoint() const { return state_->listener->endpoint(); }

ServerStats Server::Stats() const {
  std::lock_guard<std::mutex> lock(state_->step_mu);
  return state_->core->Stats();
}

ListenerStats Server::TransportStats() const { return state_->listener->Stats(); }

}  // namespace outpost
