// Copyright 2026 The Outpost Authors.
//
// Sessions and the protocol, and the write group. One ServerWriteTxn per group of events (all connections):
// every answer that depends on a write leaves only after that transaction committed, and a group whose
// transaction fails leaves no trace in memory either (the sessions it touched are restored, its stats
// undone). Reads (pages, Welcome) are served after the commit (read_path.cc).
#include <algorithm>
#include <chrono>

#include "keys.h"
#include "outpost/membership.h"
#include "server/server_impl.h"

namespace outpost {

ServerCore::Impl::Impl(ServerOptions options, std::shared_ptr<ServerStore> store)
    : opt_(std::move(options)), store_(std::move(store)), ids_(opt_.env) {
  stats_.group_events = Histogram();
  stats_.commit_seconds = Histogram();
  stats_.notify_fanout_seconds = Histogram();
  subscription_ = store_->Subscribe([this](StoreEvents events) {
    std::function<void()> wake;
    {
      std::lock_guard<std::mutex> lock(remote_mu_);
      remote_.push_back(std::move(events));
      wake = wakeup_;
    }
    if (wake) wake();
  });
}

ServerCore::Impl::~Impl() { store_->Unsubscribe(subscription_); }

ServerStats ServerCore::Impl::stats() const {
  ServerStats s = stats_;
  s.devices_online = devices_online_;
  s.users_online = user_conns_.size();
  s.group_events = group_events_;
  s.commit_seconds = commit_seconds_;
  s.notify_fanout_seconds = notify_fanout_seconds_;
  return s;
}

void ServerCore::Impl::SetWakeup(std::function<void()> wakeup) {
  std::lock_guard<std::mutex> lock(remote_mu_);
  wakeup_ = std::move(wakeup);
}

size_t ServerCore::Impl::EndDevice(std::string_view user, std::string_view device, std::string_view message,
                                   std::vector<Outbound>* out) {
  auto uc = user_conns_.find(std::string(user));
  if (uc == user_conns_.end()) return 0;
  size_t ended = 0;
  for (ConnId conn : uc->second) {
    auto it = sessions_.find(conn);
    if (it == sessions_.end() || it->second.device != device || refused_.contains(conn)) continue;
    // Only its close is left to come: frames it sent meanwhile are ignored (HandleFrame).
    refused_.insert(conn);
    ++ended;
    const std::string frame = codec::EncodeError(
        Status::Code::kPermissionDenied, "authentication failed: device revoked: " + std::string(message),
        true, wire::SessionEnd::Revoked);
    stats_.bytes_out += frame.size();
    out->push_back({conn, frame, true});
  }
  stats_.devices_ended += ended;
  return ended;
}

void ServerCore::Impl::Follow(Group& g, ConnId conn, Session& s, std::string_view stream) {
  if (s.follows.contains(std::string(stream))) return;
  Touch(g, conn, s);
  auto it = s.follows.emplace(stream).first;
  followers_[*it].insert(conn);
}

void ServerCore::Impl::Open(ConnId conn, std::vector<Answer>* out) {
  if (sessions_.size() >= opt_.connections_max) {
    ++stats_.connections_refused;
    refused_.insert(conn);
    out->push_back({conn,
                    codec::EncodeError(Status::Code::kBusy,
                                       "server full: " + std::to_string(opt_.connections_max) +
                                           " connections (connections_max); retry later",
                                       true),
                    true, -1});
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
    if (devices_online_ > 0) --devices_online_;
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
      if (devices_online_ > 0) --devices_online_;
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
  const size_t out_before = out->size();
  TickInner(out);
  for (size_t i = out_before; i < out->size(); ++i) stats_.bytes_out += (*out)[i].frame.size();
}

void ServerCore::Impl::TickInner(std::vector<Outbound>* out) {
  HandleRemote(out);
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

void ServerCore::Impl::PrepareGroup(Group& g, const std::vector<ServerEvent>& events) {
  if (!store_->many_writers()) return;
  // Everything the group will lock is locked here, in one sorted order: the heads of the streams its pushes
  // and receipts name, and the pushing devices' counters. A connection that was not past Hello when the
  // group began has its pushes and receipts answered Busy (PreparedFor): locks taken later, in an order
  // the peer chose, could deadlock two instances.
  std::set<std::string> streams;
  std::set<CounterKey> counters;
  std::set<OpId> ids;
  std::unordered_map<ConnId, uint32_t> pushes;
  for (const auto& ev : events) {
    if (ev.kind != ServerEvent::Kind::kFrame) continue;
    auto sit = sessions_.find(ev.conn);
    if (sit == sessions_.end() || !sit->second.authed) continue;
    g.prepared.insert(ev.conn);
    auto frame = codec::DecodeFrame(ev.frame, opt_.frame_bytes_max);
    if (!frame.ok()) continue;
    if ((*frame)->body_type() == wire::Body::Watermark) {
      std::string_view stream = codec::Str((*frame)->body_as_Watermark()->stream());
      if (keys::ValidateStream(stream, opt_.stream_id_bytes_max).ok()) streams.emplace(stream);
      continue;
    }
    if ((*frame)->body_type() != wire::Body::Push || ++pushes[ev.conn] > opt_.batches_inflight_max) continue;
    const auto* ops = (*frame)->body_as_Push()->ops();
    if (ops == nullptr || ops->size() > opt_.ops_per_batch_max) continue;
    for (const wire::Op* op : *ops) {
      codec::OpFields f = codec::FieldsOf(*op);
      if (!keys::ValidateStream(f.stream, opt_.stream_id_bytes_max).ok()) continue;
      streams.emplace(f.stream);
      counters.insert({sit->second.user, sit->second.device, std::string(f.stream)});
      if (!f.op_id.IsNil()) ids.insert(f.op_id);
    }
  }
  if (streams.empty()) return;
  Fail(g, g.txn->Prepare({streams.begin(), streams.end()}, {counters.begin(), counters.end()},
                         {ids.begin(), ids.end()}));
}

void ServerCore::Impl::FailGroup(Group& g, const Status& st, std::vector<Outbound>* out) {
  // Nothing of the group is durable, so nothing of it may stay in memory or leave: each connection that sent
  // work hears that it must resend (pushes are idempotent, so resending is always safe). A fatal answer (a
  // refusal that did not depend on the store) still goes out; a connection whose Hello was lost gets a fatal
  // Busy and reconnects.
  Restore(g);
  std::unordered_set<ConnId> told;
  for (auto& a : g.answers) {
    if (a.close_after) {
      told.insert(a.conn);
      out->push_back({a.conn, std::move(a.frame), true});
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
}

void ServerCore::Impl::Handle(std::vector<ServerEvent>& events, std::vector<Outbound>* out) {
  // What arrived and what leaves is counted whether or not the group commits (HandleGroup keeps these
  // through its rollback).
  const size_t out_before = out->size();
  if (!events.empty()) group_events_.Observe(static_cast<double>(events.size()));
  for (const auto& ev : events) {
    if (ev.kind == ServerEvent::Kind::kFrame) stats_.bytes_in += ev.frame.size();
  }
  HandleGroup(events, out);
  for (size_t i = out_before; i < out->size(); ++i) stats_.bytes_out += (*out)[i].frame.size();
}

void ServerCore::Impl::HandleGroup(std::vector<ServerEvent>& events, std::vector<Outbound>* out) {
  HandleRemote(out);
  const auto began = std::chrono::steady_clock::now();
  auto txn = store_->BeginWrite();
  if (!txn.ok()) {
    // No transaction, so no frame can be handled; connections still open and close, and each one that
    // sent a frame hears that it must resend (one whose Hello is lost reconnects).
    ++stats_.commit_errors;
    std::unordered_set<ConnId> told;
    std::vector<Answer> refusals;
    for (const auto& ev : events) {
      if (ev.kind == ServerEvent::Kind::kOpen) {
        Open(ev.conn, &refusals);
        if (auto it = sessions_.find(ev.conn); it != sessions_.end()) it->second.peer = std::move(ev.peer);
      }
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
    for (auto& a : refusals) out->push_back({a.conn, std::move(a.frame), a.close_after});
    return;
  }
  const ServerStats before = stats_;
  Group g;
  g.txn = txn->get();
  PrepareGroup(g, events);
  for (auto& ev : events) {
    switch (ev.kind) {
      case ServerEvent::Kind::kOpen:
        Open(ev.conn, &g.answers);
        if (auto it = sessions_.find(ev.conn); it != sessions_.end()) it->second.peer = std::move(ev.peer);
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
  const bool committing = st.ok() && had_frames;
  if (committing) st = (*txn)->Commit();
  txn->reset();
  g.txn = nullptr;
  if (!st.ok() && committing && store_->many_writers()) {
    // A commit that failed over the network may have happened (the answer was lost): what it changed is not
    // known here. Every instance, this one too, re-reads what it follows (the devices resend, and their
    // resends are answered from the op records).
    StoreEvents lost;
    lost.lost = true;
    store_->Publish(lost, subscription_);
    std::lock_guard<std::mutex> lock(remote_mu_);
    remote_.push_back(lost);
  }
  if (!st.ok()) {
    ServerStats kept = stats_;
    stats_ = before;
    stats_.connections = kept.connections;
    stats_.connections_total = kept.connections_total;
    stats_.connections_refused = kept.connections_refused;
    stats_.bad_frames = kept.bad_frames;
    stats_.auth_failures = kept.auth_failures;
    stats_.hello_timeouts = kept.hello_timeouts;
    stats_.bytes_in = kept.bytes_in;
    stats_.bytes_out = kept.bytes_out;
    ++stats_.commit_errors;
    FailGroup(g, st, out);
    return;
  }
  if (had_frames) {
    ++stats_.commits;
    commit_seconds_.Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  }
  if (!g.fresh.empty()) {
    const int64_t now_ms = opt_.env->NowMs();
    for (const auto& [stream, live] : g.fresh) activity_.Record(stream, live.ops, g.high[stream], now_ms);
  }
  // Users who left a stream stop hearing of it before anything of this group is read or sent.
  for (const auto& [stream, user] : g.left) DropFollows(stream, user);
  std::vector<std::vector<Outbound>> read_frames;
  ServeReads(g, &read_frames);
  for (auto& a : g.answers) {
    if (a.read < 0) {
      out->push_back({a.conn, std::move(a.frame), a.close_after});
      continue;
    }
    for (auto& o : read_frames[a.read]) out->push_back(std::move(o));
  }
  if (g.fresh.empty() && g.relays.empty() && g.joined.empty() && g.left.empty()) return;
  const auto fanout = std::chrono::steady_clock::now();
  NotifyCommitted(g, out);
  notify_fanout_seconds_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fanout).count());
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
  if ((f->body_type() == wire::Body::Push || f->body_type() == wire::Body::Watermark) &&
      store_->many_writers() && !g.prepared.contains(conn)) {
    // Its Hello is in this group: nothing of its was locked up front (PrepareGroup). The device sends only
    // after its Welcome, so only a peer that does not wait meets this.
    ++stats_.busy;
    Reply(g, conn, codec::EncodeError(Status::Code::kBusy, "sent before the Welcome: resend", false));
    return;
  }
  switch (f->body_type()) {
    case wire::Body::Push:
      ++stats_.pushes;
      if (++g.pushes[conn] > opt_.batches_inflight_max) {
        ++stats_.busy;
        Reply(g, conn,
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
  const uint32_t protocol = hello.protocol_version();
  if (protocol < opt_.protocol_min || protocol > codec::kProtocolVersion) {
    // Not a bad frame: the device is sound, only too old (or too new). It is told once, for good: it stops
    // reconnecting until the app is upgraded (or asks again), so old devices do not storm an upgraded server.
    ++stats_.upgrades_required;
    Reply(g, conn,
          codec::EncodeError(Status::Code::kFailedPrecondition,
                             "upgrade required: protocol version " + std::to_string(protocol) +
                                 " not supported (server speaks " + std::to_string(opt_.protocol_min) +
                                 " to " + std::to_string(codec::kProtocolVersion) + ")",
                             true, wire::SessionEnd::UpgradeRequired),
          true);
    return;
  }
  HelloInfo info{std::string(codec::Str(hello.user())), std::string(codec::Str(hello.device())),
                 std::string(codec::Str(hello.token())), s.peer};
  Status valid = ValidateDeviceId(info.device);
  if (!valid.ok()) {
    BadFrame(g, conn, Status::Code::kInvalidArgument, valid.message(), true);
    return;
  }
  std::string user = info.user;
  if (opt_.authenticate) {
    auto r = opt_.authenticate(info);
    const Status::Code code = r.ok() ? Status::Code::kOk : r.status().code();
    if (code == Status::Code::kIOError || code == Status::Code::kUnavailable || code == Status::Code::kBusy ||
        code == Status::Code::kTimeout || code == Status::Code::kAborted || code == Status::Code::kFull) {
      // The registry could not answer (its store failed): not a verdict on the credentials. The device
      // reconnects after backing off and asks again; it must not be told its token is bad.
      Reply(g, conn,
            codec::EncodeError(Status::Code::kBusy,
                               "cannot check credentials now, reconnect: " + r.status().ToString(), true),
            true);
      return;
    }
    if (!r.ok()) {
      // Counted once, as an authentication failure: the frame itself was sound (not a bad frame).
      ++stats_.auth_failures;
      // The device stops reconnecting either way (session_end): revoked for good, or until its
      // application gives it another token.
      Reply(g, conn,
            codec::EncodeError(
                Status::Code::kPermissionDenied, "authentication failed: " + r.status().message(), true,
                IsRevoked(r.status()) ? wire::SessionEnd::Revoked : wire::SessionEnd::AuthFailed),
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
    Reply(g, conn,
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
  ++devices_online_;
  s.user = std::move(user);
  s.device = info.device;
  s.protocol = protocol;
  if (hello.incarnation() && hello.incarnation()->size() <= 64) {
    s.incarnation.assign(reinterpret_cast<const char*>(hello.incarnation()->data()),
                         hello.incarnation()->size());
  }
  user_conns_[s.user].insert(conn);
  // Each listed stream is followed only if the device may read it now; a non-member's is kept aside and
  // followed once the user joins (FollowJoined).
  // One store call for all of them (a Hello may list hello_streams_max streams).
  std::vector<std::string> listed;
  listed.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string_view stream = codec::Str(hello.cursors()->Get(i)->stream());
    if (keys::ValidateStream(stream, opt_.stream_id_bytes_max).ok()) listed.emplace_back(stream);
  }
  std::vector<bool> readable;
  MayReadAll(*g.txn, s, listed, &readable, &g.error);
  for (size_t i = 0; i < listed.size(); ++i) {
    if (readable[i]) {
      Follow(g, conn, s, listed[i]);
    } else if (opt_.membership && s.denied.size() < opt_.denied_streams_max) {
      s.denied.insert(listed[i]);
    }
  }
  Schedule(g, {ReadRequest::Kind::kWelcome, conn, {}, 0, 0});
}

void ServerCore::Impl::HandlePull(Group& g, ConnId conn, Session& s, const wire::Pull& pull) {
  std::string_view stream = codec::Str(pull.stream());
  Status st = keys::ValidateStream(stream, opt_.stream_id_bytes_max);
  if (!st.ok()) {
    BadFrame(g, conn, st.code(), st.message(), false);
    return;
  }
  st = CheckMember(*g.txn, s.user, stream, &g.error);
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
    Reply(g, conn, codec::EncodeError(st.code(), "pull " + std::string(stream) + ": " + st.message(), false));
    Reply(g, conn, codec::EncodeEmptyBatch(stream, pull.after_seq()));
    return;
  }
  ++stats_.pulls;
  Follow(g, conn, s, stream);
  uint32_t limit = pull.limit() == 0 ? opt_.pull_page_max : std::min(pull.limit(), opt_.pull_page_max);
  Schedule(g, {ReadRequest::Kind::kPage, conn, std::string(stream), pull.after_seq(), limit});
}

}  // namespace outpost
