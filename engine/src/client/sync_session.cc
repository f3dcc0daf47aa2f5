// Copyright 2026 The Outpost Authors.
#include "client/sync_session.h"

#include <algorithm>
#include <set>
#include <vector>

#include "client/flusher.h"
#include "client/merger.h"
#include "client/rebase.h"
#include "client/receipts.h"

namespace outpost {

SyncSession::SyncSession(SyncContext& ctx, std::shared_ptr<Dialer> dialer, std::string token,
                         std::function<void()> wake)
    : ctx_(ctx), dialer_(std::move(dialer)), wake_(std::move(wake)), token_(std::move(token)) {
  // No lock: nothing else sees this object yet (and the caller may hold the store's writer lock, which
  // is taken after ctx_.mu everywhere else).
  connection_.reason = dialer_ ? "not connected yet" : "no server configured";
}

ConnectionEvent SyncSession::connection() const {
  ctx_.mu.AssertHeld();
  return connection_;
}

void SyncSession::SetConnection(ConnectionState state, std::string reason, int64_t retry_at_ms) {
  if (connection_.state == state && connection_.reason == reason && connection_.retry_at_ms == retry_at_ms) {
    return;
  }
  connection_ = {state, std::move(reason), retry_at_ms};
  if (ctx_.observers) ctx_.observers->EmitConnection(connection_);
}

SyncSession::~SyncSession() {
  MutexLock lock(&ctx_.mu);
  if (conn_) conn_->SetWakeup(nullptr);
}

bool SyncSession::ready() const {
  ctx_.mu.AssertHeld();
  return state_ == State::kReady;
}

wire::SessionEnd SyncSession::ended() const {
  ctx_.mu.AssertHeld();
  return ended_;
}

const ServerLimits& SyncSession::limits() const {
  ctx_.mu.AssertHeld();
  return limits_;
}

void SyncSession::Send(std::string frame) {
  ctx_.mu.AssertHeld();
  if (!conn_) return;
  (void)conn_->Send(frame);  // a closed connection shows up as !IsOpen() on the next round
}

void SyncSession::Poll(int64_t now, bool online) {
  ctx_.mu.AssertHeld();
  EnsureConnected(now, online);
  ReceiveAll(now);
  if (conn_ && !conn_->IsOpen()) OnDisconnected(now, "connection lost");
  if (state_ == State::kHelloSent && now - hello_sent_at_ >= ctx_.opt.ack_timeout_ms) {
    if (conn_) conn_->Close();
    OnDisconnected(now, "no Welcome in time");
  }
}

void SyncSession::Close(int64_t now, std::string why, bool offline) {
  ctx_.mu.AssertHeld();
  if (!conn_) return;
  conn_->Close();
  OnDisconnected(now, std::move(why), offline);
}

void SyncSession::SetToken(std::string token) {
  ctx_.mu.AssertHeld();
  token_ = std::move(token);
  if (ended_ == wire::SessionEnd::UpgradeRequired) return;  // new credentials do not change the app
  ended_ = wire::SessionEnd::None;
  connect_failures_ = 0;
  next_connect_at_ = 0;
  ctx_.Count([](ClientStats& s) { s.auth_failed = s.signed_out = false; });
}

void SyncSession::Resume() {
  ctx_.mu.AssertHeld();
  if (ended_ != wire::SessionEnd::UpgradeRequired) return;
  ended_ = wire::SessionEnd::None;
  connect_failures_ = 0;
  next_connect_at_ = 0;
  ctx_.Count([](ClientStats& s) { s.upgrade_required = false; });
}

void SyncSession::OnDisconnected(int64_t now, std::string why, bool offline) {
  if (conn_) conn_->SetWakeup(nullptr);
  conn_.reset();
  state_ = State::kOffline;
  ctx_.flusher->OnDisconnected();
  // Receipts heard on this connection are stored now, before the next Welcome: should it say the server was
  // restored from an earlier copy, its rebase clamps them with the stored ones (stored after it, one could
  // stay above the stream's high for ever: receipts only move up). Those the next server sends before its
  // Welcome are its own, and are not clamped.
  if (ctx_.receipts != nullptr) ctx_.receipts->StoreReceived(now, true);
  ctx_.merger->OnDisconnected();
  ctx_.Count([&](ClientStats& s) { s.last_connection_error = why; });
  next_connect_at_ =
      now + ctx_.Backoff(connect_failures_++, std::min(ctx_.opt.reconnect_cap_ms, ctx_.opt.backoff_cap_ms));
  if (ended_ == wire::SessionEnd::AuthFailed) {
    SetConnection(ConnectionState::kAuthFailed, std::move(why), 0);
  } else if (ended_ == wire::SessionEnd::Revoked) {
    SetConnection(ConnectionState::kSignedOut, std::move(why), 0);
  } else if (ended_ == wire::SessionEnd::UpgradeRequired) {
    SetConnection(ConnectionState::kUpgradeRequired, std::move(why), 0);
  } else {
    SetConnection(ConnectionState::kOffline, std::move(why), offline ? 0 : next_connect_at_);
  }
}

void SyncSession::EnsureConnected(int64_t now, bool online) {
  if (conn_ && !conn_->IsOpen()) {
    // The server's last words (a fatal Error saying why it closed) arrive before the close: read them.
    ReceiveAll(now);
    if (conn_) OnDisconnected(now, "connection lost");
  }
  if (conn_ || !dialer_ || ended_ != wire::SessionEnd::None) return;
  if (!online) {
    SetConnection(ConnectionState::kOffline, std::string(kOfflineReason), 0);
    return;
  }
  if (now < next_connect_at_) {
    // Back online while a reconnect is not yet due: say when it is.
    if (connection_.reason == kOfflineReason) {
      SetConnection(ConnectionState::kOffline, "waiting to reconnect", next_connect_at_);
    }
    return;
  }
  SetConnection(ConnectionState::kConnecting, "", 0);
  auto c = dialer_->Connect();
  if (!c.ok()) {
    ctx_.Count([&](ClientStats& s) { s.last_connection_error = c.status().ToString(); });
    next_connect_at_ =
        now + ctx_.Backoff(connect_failures_++, std::min(ctx_.opt.reconnect_cap_ms, ctx_.opt.backoff_cap_ms));
    SetConnection(ConnectionState::kOffline, c.status().ToString(), next_connect_at_);
    return;
  }
  conn_ = std::move(c).value();
  conn_->SetWakeup(wake_);
  ctx_.Count([](ClientStats& s) { ++s.connects; });
  SendHello(now);
}

void SyncSession::SendHello(int64_t now) {
  flatbuffers::FlatBufferBuilder b(1024);
  std::vector<flatbuffers::Offset<wire::StreamCursor>> cursors;
  for (const auto& [stream, ss] : ctx_.streams) {
    if (ss.followed) cursors.push_back(wire::CreateStreamCursor(b, b.CreateString(stream), ss.cursor));
  }
  auto cv = b.CreateVector(cursors);
  auto incarnation = ctx_.incarnation.empty()
                         ? 0
                         : b.CreateVector(reinterpret_cast<const uint8_t*>(ctx_.incarnation.data()),
                                          ctx_.incarnation.size());
  auto hello = wire::CreateHello(b, b.CreateString(ctx_.user), b.CreateString(ctx_.device),
                                 b.CreateString(token_), ctx_.opt.protocol_version, cv, incarnation);
  Send(codec::FinishFrame(b, wire::Body::Hello, hello.Union()));
  state_ = State::kHelloSent;
  hello_sent_at_ = now;
}

void SyncSession::OnWelcome(const wire::Welcome& w, int64_t now) {
  if (state_ != State::kHelloSent) return;
  if (w.protocol_version() != ctx_.opt.protocol_version) {
    if (conn_) conn_->Close();
    OnDisconnected(now, "server speaks protocol " + std::to_string(w.protocol_version()) + ", this client " +
                            std::to_string(ctx_.opt.protocol_version));
    return;
  }
  if (Status st = Rebase(w); !st.ok()) {
    ctx_.Count([](ClientStats& s) { ++s.store_errors; });
    if (conn_) conn_->Close();
    OnDisconnected(now, "cannot store what the server's Welcome said: " + st.ToString());
    return;
  }
  // The restored server may have lost this device's receipts (sent after its copy was made) even where the
  // device keeps all it had: each is sent again (the server keeps the highest).
  if (w.rebase()) {
    for (auto& [stream, ss] : ctx_.streams) ss.receipts.dirty = true;
  }
  state_ = State::kReady;
  connect_failures_ = 0;
  SetConnection(ConnectionState::kOnline, "", 0);
  limits_ = {w.ops_per_batch_max(), w.frame_bytes_max(), w.payload_bytes_max(), w.kind_bytes_max(),
             w.stream_id_bytes_max()};
  // The upload endpoint (attachments); an unreasonably long one is ignored rather than trusted.
  std::string_view media_url = codec::Str(w.media_url());
  if (media_url.size() > 2048) media_url = {};
  if (media_url != ctx_.media_url) {
    ctx_.media_url.assign(media_url);
    if (ctx_.media_url_changed) ctx_.media_url_changed();
  }
  // Queued ops beyond these limits fail when the flush reaches them (Flusher), each with its reason.
  for (const auto& [stream, ss] : ctx_.streams) ctx_.RestartAfter(stream, 0, ResendReason::kDisconnect);
  std::set<std::string_view> known;  // streams the server follows for this session
  if (w.counters()) {
    for (const auto* dc : *w.counters()) {
      std::string_view stream = codec::Str(dc->stream());
      if (!keys::ValidateStream(stream, 255).ok()) continue;
      known.insert(stream);
      StreamSync& ss = ctx_.Of(stream);
      ss.server_high = std::max(ss.server_high, dc->high_seq());
      if (dc->high_seq() > 0 && dc->high_seq() >= ss.cursor) ss.server_high = dc->high_seq();
      ss.flush.probe_upto = dc->counter();
    }
  }
  for (auto& [stream, ss] : ctx_.streams) {
    if (!ss.followed) continue;
    ss.receipts.dirty = true;
    // Followed after the Hello left (or refused by the server): the first pull tells the server about it.
    if (!known.contains(stream)) ctx_.merger->RequestPull(stream, ss.cursor, now);
  }
}

Status SyncSession::Rebase(const wire::Welcome& w) {
  const std::string incarnation =
      w.incarnation()
          ? std::string(reinterpret_cast<const char*>(w.incarnation()->data()), w.incarnation()->size())
          : std::string();
  if (incarnation.size() > 64) return Status::InvalidArgument("Welcome: incarnation too long");
  // Which streams may need it, by what is in memory: a Welcome of an unchanged server costs no write.
  std::vector<RebaseInput> inputs;
  std::set<std::string, std::less<>> listed;
  if (w.counters()) {
    for (const auto* dc : *w.counters()) {
      std::string_view stream = codec::Str(dc->stream());
      if (!keys::ValidateStream(stream, 255).ok()) continue;
      listed.emplace(stream);
      auto it = ctx_.streams.find(stream);
      if (it == ctx_.streams.end()) continue;  // nothing held of it
      RebaseInput in;
      in.stream.assign(stream);
      in.server_counter = dc->counter();
      in.server_high = dc->high_seq();
      if (w.rebase()) in.base = dc->base_seq();
      const StreamSync& ss = it->second;
      // A restore since the incarnation we named; ops we merged that the server no longer has; counters it
      // consumed and no longer counts.
      if (w.rebase() || (in.server_high > 0 && in.server_high < ss.cursor) ||
          in.server_counter < ss.flush.acked_top) {
        inputs.push_back(std::move(in));
      }
    }
  }
  if (w.rebase()) {
    // A stream this device holds that the Welcome does not name (not followed, say after its user left it,
    // and no counter of ours on the restored server): as for one it may not read (base 0), none of what it
    // holds of it is trusted (set aside; a pull brings back what the server has once it may read again).
    for (const auto& [stream, ss] : ctx_.streams) {
      if (listed.contains(stream)) continue;
      RebaseInput in;
      in.stream = stream;
      in.base = 0;
      inputs.push_back(std::move(in));
    }
  }
  const bool new_incarnation = !incarnation.empty() && incarnation != ctx_.incarnation;
  if (inputs.empty() && !new_incarnation) return Status::OK();
  return ApplyRebase(ctx_, inputs, new_incarnation ? &incarnation : nullptr);
}

void SyncSession::ReceiveAll(int64_t now) {
  std::vector<std::string> frames;
  std::string frame;
  for (int i = 0; i < 4096 && conn_ && conn_->Receive(&frame); ++i) frames.push_back(std::move(frame));
  std::vector<const wire::PushAck*> acks;  // a run of acks, settled in one transaction
  for (const std::string& bytes : frames) {
    auto decoded = codec::DecodeFrame(bytes, std::max<uint32_t>(limits_.frame_bytes_max, 64u << 20));
    if (!decoded.ok()) {
      ctx_.Count([](ClientStats& s) { ++s.bad_frames; });
      continue;
    }
    const wire::Frame* f = *decoded;
    if (f->body_type() == wire::Body::PushAck && state_ == State::kReady) {
      acks.push_back(f->body_as_PushAck());
      continue;
    }
    if (!acks.empty()) {
      ctx_.flusher->OnPushAcks(acks, now);
      acks.clear();
    }
    HandleFrame(*f, now);
  }
  if (!acks.empty()) ctx_.flusher->OnPushAcks(acks, now);
}

void SyncSession::HandleFrame(const wire::Frame& f, int64_t now) {
  switch (f.body_type()) {
    case wire::Body::Welcome:
      OnWelcome(*f.body_as_Welcome(), now);
      break;
    case wire::Body::PushAck:
      if (state_ == State::kReady) ctx_.flusher->OnPushAcks({f.body_as_PushAck()}, now);
      break;
    case wire::Body::Batch:
      if (state_ == State::kReady) ctx_.merger->OnBatch(*f.body_as_Batch(), now);
      break;
    case wire::Body::Notify:
      // Like a page: live ops are merged only in a ready session (not after a fatal Error, not before the
      // Welcome).
      if (state_ == State::kReady) ctx_.merger->OnNotify(*f.body_as_Notify());
      break;
    case wire::Body::Watermark:
      ctx_.receipts->OnWatermark(*f.body_as_Watermark(), now);
      break;
    case wire::Body::Error:
      OnError(*f.body_as_Error(), now);
      break;
    default:
      ctx_.Count([](ClientStats& s) { ++s.bad_frames; });
  }
}

void SyncSession::OnError(const wire::Error& e, int64_t now) {
  const auto code = static_cast<Status::Code>(e.code());
  std::string_view message = codec::Str(e.message());
  std::string why = std::string(Status::CodeName(code)) + ": " + std::string(message);
  // The server ended our sessions until the application acts: retrying as we are cannot help. A server
  // before protocol 3 says "authentication failed" in words only.
  wire::SessionEnd end = e.fatal() ? e.session_end() : wire::SessionEnd::None;
  if (e.fatal() && end == wire::SessionEnd::None && code == Status::Code::kPermissionDenied &&
      message.starts_with("authentication failed")) {
    end = wire::SessionEnd::AuthFailed;
  }
  if (end > wire::SessionEnd::MAX) end = wire::SessionEnd::None;  // a newer reason: an ordinary fatal error
  ctx_.Count([&](ClientStats& s) {
    s.last_connection_error = why;
    if (end == wire::SessionEnd::AuthFailed) s.auth_failed = true;
    if (end == wire::SessionEnd::Revoked) s.signed_out = true;
    if (end == wire::SessionEnd::UpgradeRequired) s.upgrade_required = true;
  });
  if (end != wire::SessionEnd::None) ended_ = end;
  if (e.fatal()) {
    if (conn_) conn_->Close();
    OnDisconnected(now, why);
  } else if (code == Status::Code::kBusy) {
    // The server could not make a group durable: everything in it must be asked again.
    ctx_.flusher->OnBusy(now);
    ctx_.merger->OnBusy(now);
    ctx_.receipts->OnBusy();
  }
}

}  // namespace outpost
