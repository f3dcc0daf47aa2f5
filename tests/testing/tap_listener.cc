// Copyright 2026 The Outpost Authors.
#include "testing/tap_listener.h"

#include <gtest/gtest.h>

#include "codec.h"

namespace outpost::harness {
namespace {

constexpr size_t kAnyFrameBytes = size_t{1} << 30;

}  // namespace

bool TapListener::Poll(ServerEvent* ev) {
  while (inner_->Poll(ev)) {
    last_conn_ = ev->conn;
    if (ev->kind != ServerEvent::Kind::kFrame || !drop_in) return true;
    auto f = codec::DecodeFrame(ev->frame, kAnyFrameBytes);
    if (!f.ok() || !drop_in(**f)) return true;
  }
  return false;
}

Status TapListener::Send(ConnId conn, std::string_view frame) {
  if (drop_out) {
    auto f = codec::DecodeFrame(frame, kAnyFrameBytes);
    if (f.ok() && drop_out(**f)) return Status::OK();
  }
  return inner_->Send(conn, frame);
}

void TapListener::Inject(std::string_view frame) {
  Status st = inner_->Send(last_conn_, frame);
  EXPECT_TRUE(st.ok()) << "inject: " << st.ToString();
}

std::unique_ptr<Listener> Tap(std::unique_ptr<Listener> inner) {
  return std::make_unique<TapListener>(std::move(inner));
}

}  // namespace outpost::harness
