// Copyright 2026 The Outpost Authors.
//
// SyncSession: the connection to the server. Connects when online and due (reconnects back off, jittered),
// sends the Hello, takes the Welcome (protocol version, the server's limits, the streams it follows with
// their counters), reads every frame that arrived and hands each to the part it is for. A refused token
// stops reconnecting until SetToken. Every change of where the connection stands is a ConnectionEvent
// (connection()), queued for the observers as it happens.
#ifndef OUTPOST_SRC_CLIENT_SYNC_SESSION_H_
#define OUTPOST_SRC_CLIENT_SYNC_SESSION_H_

#include <functional>
#include <memory>
#include <string>

#include "client/sync_context.h"
#include "codec.h"
#include "outpost/transport.h"

namespace outpost {

// What the server announced in its Welcome (0: not announced).
struct ServerLimits {
  uint32_t ops_per_batch_max = 0;
  uint32_t frame_bytes_max = 0;
  uint32_t payload_bytes_max = 0;
  uint32_t kind_bytes_max = 0;
  uint32_t stream_id_bytes_max = 0;
};

class SyncSession {
 public:
  // The reason of kOffline while the application keeps the client offline (SetOnline(false)).
  static constexpr std::string_view kOfflineReason = "offline: the application called SetOnline(false)";

  // `wake` is called, on any thread, when a frame arrives.
  SyncSession(SyncContext& ctx, std::shared_ptr<Dialer> dialer, std::string token,
              std::function<void()> wake);
  ~SyncSession();

  // The connection's part of a round: reconnect when due, read and dispatch what arrived, give up on a
  // Hello without an answer. Afterwards ready() says whether the rest of the round may send.
  void Poll(int64_t now, bool online);
  bool ready() const;
  bool has_dialer() const { return dialer_ != nullptr; }
  // Why the server ended this device's sessions until the application acts (wire::SessionEnd::None: it did
  // not): wrong credentials or revoked (until SetToken), a protocol version outside the server's range
  // (until Resume). No reconnecting meanwhile.
  wire::SessionEnd ended() const;
  const ServerLimits& limits() const;

  // The connection's state now (observer.h); every change of it is queued for the observers.
  ConnectionEvent connection() const;

  void Send(std::string frame);
  // Drops the connection now (the application asked: Disconnect, SetOnline(false)). With `offline`, no
  // reconnect is due until the application goes online again.
  void Close(int64_t now, std::string why, bool offline = false);
  // New credentials: used at the next Hello; after an authentication failure or a revocation, connects
  // again at once.
  void SetToken(std::string token);
  // The application asks to connect again (SetOnline(true)): after an "upgrade required", tries once more.
  void Resume();

 private:
  enum class State : uint8_t { kOffline, kHelloSent, kReady };

  void EnsureConnected(int64_t now, bool online) OUTPOST_REQUIRES(ctx_.mu);
  void OnDisconnected(int64_t now, std::string why, bool offline = false) OUTPOST_REQUIRES(ctx_.mu);
  // Records the connection's new state and queues its event (nothing when nothing changed).
  void SetConnection(ConnectionState state, std::string reason, int64_t retry_at_ms)
      OUTPOST_REQUIRES(ctx_.mu);
  void SendHello(int64_t now) OUTPOST_REQUIRES(ctx_.mu);
  // Takes every frame waiting on the connection and handles them in order (runs of PushAcks together).
  void ReceiveAll(int64_t now) OUTPOST_REQUIRES(ctx_.mu);
  void HandleFrame(const wire::Frame& frame, int64_t now) OUTPOST_REQUIRES(ctx_.mu);
  void OnWelcome(const wire::Welcome& w, int64_t now) OUTPOST_REQUIRES(ctx_.mu);
  void OnError(const wire::Error& e, int64_t now) OUTPOST_REQUIRES(ctx_.mu);
  // Brings every stream the Welcome lists in line with what the server holds (client/rebase.h) and keeps
  // its incarnation. An error when the store could not be written: the session is dropped and tried again.
  Status Rebase(const wire::Welcome& w) OUTPOST_REQUIRES(ctx_.mu);

  SyncContext& ctx_;
  const std::shared_ptr<Dialer> dialer_;
  const std::function<void()> wake_;
  std::string token_ OUTPOST_GUARDED_BY(ctx_.mu);
  std::unique_ptr<Connection> conn_ OUTPOST_GUARDED_BY(ctx_.mu);
  State state_ OUTPOST_GUARDED_BY(ctx_.mu) = State::kOffline;
  int64_t hello_sent_at_ OUTPOST_GUARDED_BY(ctx_.mu) = 0;
  int64_t next_connect_at_ OUTPOST_GUARDED_BY(ctx_.mu) = 0;
  uint32_t connect_failures_ OUTPOST_GUARDED_BY(ctx_.mu) = 0;
  wire::SessionEnd ended_ OUTPOST_GUARDED_BY(ctx_.mu) = wire::SessionEnd::None;
  ServerLimits limits_ OUTPOST_GUARDED_BY(ctx_.mu);
  ConnectionEvent connection_ OUTPOST_GUARDED_BY(ctx_.mu);
};

}  // namespace outpost

#endif  // OUTPOST_SRC_CLIENT_SYNC_SESSION_H_
