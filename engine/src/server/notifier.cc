// Copyright 2026 The Outpost Authors.
//
// Who hears that a stream moved. After a commit: the local followers of each stream the group wrote get a
// Notify (they pull), receipts are relayed, and every other instance on the store is told the same in one
// StoreEvents (ServerStore::Publish). What other instances publish arrives through the store's
// subscription and goes to this instance's followers the same way, at the next Step.
#include "keys.h"
#include "server/server_impl.h"

namespace outpost {

void ServerCore::Impl::DropFollows(std::string_view stream, std::string_view user) {
  auto uc = user_conns_.find(std::string(user));
  if (uc == user_conns_.end()) return;
  const std::string key(stream);
  auto f = followers_.find(key);
  for (ConnId conn : uc->second) {
    // A device that followed the stream asked for it, so it follows it again if its user is added back.
    auto sit = sessions_.find(conn);
    if (sit != sessions_.end() && sit->second.follows.erase(key) > 0 &&
        sit->second.denied.size() < opt_.denied_streams_max) {
      sit->second.denied.insert(key);
    }
    if (f != followers_.end()) f->second.erase(conn);
  }
  if (f != followers_.end() && f->second.empty()) followers_.erase(f);
}

void ServerCore::Impl::Unfollow(ConnId conn, Session& s, const std::string& stream) {
  if (s.follows.erase(stream) == 0) return;
  auto f = followers_.find(stream);
  if (f != followers_.end()) {
    f->second.erase(conn);
    if (f->second.empty()) followers_.erase(f);
  }
  if (opt_.membership && s.denied.size() < opt_.denied_streams_max) s.denied.insert(stream);
}

void ServerCore::Impl::FollowJoined(ServerReadTxn* txn, Group* g, std::string_view stream,
                                    std::string_view user) {
  auto uc = user_conns_.find(std::string(user));
  if (uc == user_conns_.end()) return;
  const std::string key(stream);
  Status error;
  for (ConnId conn : uc->second) {
    auto sit = sessions_.find(conn);
    if (sit == sessions_.end() || !sit->second.denied.contains(key)) continue;
    Session& s = g != nullptr ? Touch(*g, conn, sit->second) : sit->second;
    // The store is read as it is now, which for another instance's events may be past this one: a user
    // who joined and left again reads as no member. The stream stays asked for then, so that a later join
    // follows it (forgetting it would leave the device unaware of the stream until it reconnects).
    if (!MayRead(*txn, s, stream, g != nullptr ? &g->error : &error)) continue;
    s.denied.erase(key);
    s.follows.insert(key);
    followers_[key].insert(conn);
  }
}

void ServerCore::Impl::SendHeads(const std::vector<StoreEvents::Head>& heads, const Group* g,
                                 std::vector<Outbound>* out) {
  // Live ops are checked against membership as of after the commit, as a page would be (ServePage): one
  // snapshot for all heads, one read per follower's user.
  std::unique_ptr<ServerReadTxn> snapshot;
  bool snapshot_failed = false;
  // Live-op bytes per connection, within kLiveBytesPerConnection for all the group's streams (as pages are
  // budgeted per connection): beyond it, the plain Notify (the device pulls, paced by its own pulls).
  std::unordered_map<ConnId, size_t> live_bytes;
  for (const auto& head : heads) {
    auto f = followers_.find(head.stream);
    if (f == followers_.end()) continue;
    std::string frame = codec::EncodeNotify(head.stream, head.high);
    const LiveOps* live = nullptr;
    if (g != nullptr && f->second.size() <= kLiveFollowersMax) {
      auto it = g->fresh.find(head.stream);
      if (it != g->fresh.end() && it->second.whole && !it->second.stored.empty() &&
          it->second.stored.size() <= head.high) {
        live = &it->second;
      }
    }
    std::string live_frame;
    bool encode_failed = false;
    std::map<std::string, bool, std::less<>> member;  // by user (MayDeliver checked the hook per device)
    for (ConnId c : f->second) {
      if (!MayDeliver(c, head.stream)) continue;
      // Its own pushes only: the acks told it everything already.
      const bool own = live != nullptr && live->authors.size() == 1 && live->authors.contains(c);
      auto sit = sessions_.find(c);
      if (live == nullptr || own || sit == sessions_.end() || snapshot_failed) {
        out->push_back({c, frame});
        continue;
      }
      if (!snapshot) {
        auto r = store_->BeginRead();
        if (!r.ok()) {
          snapshot_failed = true;  // the devices pull instead
          out->push_back({c, frame});
          continue;
        }
        snapshot = std::move(*r);
      }
      auto [m, fresh] = member.try_emplace(sit->second.user, false);
      if (fresh) {
        Status error;  // a failed read: not known to be a member, so a plain Notify
        m->second = CheckMember(*snapshot, sit->second.user, head.stream, &error).ok() && error.ok();
      }
      if (m->second && live_frame.empty() && !encode_failed) {
        auto encoded = codec::EncodeLiveNotify(head.stream, head.high - live->stored.size(), live->stored);
        if (encoded.ok()) {
          live_frame = std::move(*encoded);
        } else {
          encode_failed = true;  // a plain Notify for every follower
        }
      }
      size_t& sent = live_bytes[c];
      const bool fits = sent + live_frame.size() <= kLiveBytesPerConnection;
      if (m->second && !live_frame.empty() && fits) {
        sent += live_frame.size();
        out->push_back({c, live_frame});
      } else {
        out->push_back({c, frame});
      }
    }
  }
}

void ServerCore::Impl::SendRelay(const StoredWatermark& wm, ConnId from, std::vector<Outbound>* out) {
  auto f = followers_.find(wm.stream);
  if (f == followers_.end()) return;
  std::string frame =
      codec::EncodeWatermark(wm.stream, wm.user, wm.device, static_cast<WatermarkKind>(wm.kind), wm.seq);
  for (ConnId c : f->second) {
    if (c != from && MayDeliver(c, wm.stream)) out->push_back({c, frame});
  }
}

void ServerCore::Impl::NotifyCommitted(Group& g, std::vector<Outbound>* out) {
  StoreEvents events;
  for (const auto& [stream, live] : g.fresh) events.heads.push_back({stream, g.high[stream]});
  SendHeads(events.heads, &g, out);
  for (const auto& [wm, from] : g.relays) SendRelay(wm, from, out);
  for (auto& [wm, from] : g.relays) events.watermarks.push_back(std::move(wm));
  for (const auto& [stream, user] : g.joined) events.joined.push_back({stream, user});
  for (const auto& [stream, user] : g.left) events.left.push_back({stream, user});
  if (!events.empty()) store_->Publish(events, subscription_);
}

void ServerCore::Impl::HandleRemote(std::vector<Outbound>* out) {
  std::vector<StoreEvents> batch;
  {
    std::lock_guard<std::mutex> lock(remote_mu_);
    batch.swap(remote_);
  }
  if (batch.empty()) return;
  std::unique_ptr<ServerReadTxn> txn;
  auto read = [&]() -> ServerReadTxn* {
    if (!txn) {
      auto r = store_->BeginRead();
      if (r.ok()) txn = std::move(*r);
    }
    return txn.get();
  };
  for (auto& events : batch) {
    // Membership first, in the order it was committed: a user who left hears nothing more of the stream.
    for (const auto& m : events.left) DropFollows(m.stream, m.user);
    for (const auto& m : events.joined) {
      if (ServerReadTxn* t = read()) FollowJoined(t, nullptr, m.stream, m.user);
    }
    if (events.lost) {
      // Wake-ups were lost: every follower is checked against the store as it is now, and told each
      // followed stream's head (a device pulls only when the head is past its cursor).
      ServerReadTxn* t = read();
      if (t == nullptr) {
        std::lock_guard<std::mutex> lock(remote_mu_);
        remote_.push_back(std::move(events));  // again at the next Step
        continue;
      }
      std::vector<std::pair<std::string, std::string>> gone;  // (stream, user)
      for (const auto& [stream, conns] : followers_) {
        for (ConnId c : conns) {
          auto sit = sessions_.find(c);
          Status error;
          if (sit != sessions_.end() && !MayRead(*t, sit->second, stream, &error) && error.ok()) {
            gone.emplace_back(stream, sit->second.user);
          }
        }
      }
      for (const auto& [stream, user] : gone) DropFollows(stream, user);
      for (const auto& [stream, conns] : followers_) {
        uint64_t high = 0;
        if (t->High(stream, &high).ok()) events.heads.push_back({stream, high});
      }
    }
    SendHeads(events.heads, nullptr, out);
    for (const auto& wm : events.watermarks) SendRelay(wm, 0, out);
  }
}

}  // namespace outpost
