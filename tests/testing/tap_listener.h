// Copyright 2026 The Outpost Authors.
//
// TapListener: a Listener wrapper that lets a test watch or drop decoded frames in either direction and send
// forged frames to the connection of the last event. Used as ClusterOptions::wrap_listener.
#ifndef OUTPOST_TESTS_TESTING_TAP_LISTENER_H_
#define OUTPOST_TESTS_TESTING_TAP_LISTENER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/transport.h"
#include "outpost/wire_generated.h"

namespace outpost::harness {

// Not thread-safe beyond the Listener's own rule: set the hooks while the server is stepped by hand, or
// before it starts.
class TapListener : public Listener {
 public:
  explicit TapListener(std::unique_ptr<Listener> inner) : inner_(std::move(inner)) {}

  // device -> server: sees every decodable frame; true drops it.
  std::function<bool(const wire::Frame&)> drop_in;
  // server -> device: true drops it (Send reports OK, as if it left).
  std::function<bool(const wire::Frame&)> drop_out;

  bool Poll(ServerEvent* ev) override;
  Status Send(ConnId conn, std::string_view frame) override;
  void CloseConnection(ConnId conn) override { inner_->CloseConnection(conn); }
  void SetWakeup(std::function<void()> wake) override { inner_->SetWakeup(std::move(wake)); }
  std::string endpoint() const override { return inner_->endpoint(); }
  ListenerStats Stats() const override { return inner_->Stats(); }

  // Sends `frame` to the connection of the last event polled (a test's one device); fails the test when the
  // transport refuses it.
  void Inject(std::string_view frame);

 private:
  std::unique_ptr<Listener> inner_;
  ConnId last_conn_ = 0;
};

// For ClusterOptions::wrap_listener: a TapListener in front of `inner` (Cluster::listener() then returns it).
std::unique_ptr<Listener> Tap(std::unique_ptr<Listener> inner);

}  // namespace outpost::harness

#endif  // OUTPOST_TESTS_TESTING_TAP_LISTENER_H_
