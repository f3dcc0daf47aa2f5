// Copyright 2026 The Outpost Authors.
//
// Fuzz target: the client's inbound frame handling (the sync loop's Receive → DecodeFrame → Welcome,
// PushAck, Batch, Notify, Watermark, Error). For each input a fresh client (memory store, manual clock,
// scripted transport) holds two unsent own ops, follows a stream, and has finished its handshake; the input
// arrives as the next frame from the server, then the loop steps twice more. Properties: never crashes;
// Step stays ok; an undecodable input is counted as a bad frame; every frame the client sends decodes; the
// own ops are still there, once each, with their payloads (a forged ack may mark them sent; that is the
// server's word, not a loss).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec.h"
#include "fuzz/bad_input_util.h"
#include "fuzz/targets/fuzz_check.h"
#include "outpost/client.h"
#include "outpost/env.h"

namespace {

namespace badinput = outpost::badinput;

const char kMine[] = "mine";
const char kRoom[] = "room";

void CheckSent(badinput::FakeWire& wire) {
  for (const auto& s : wire.TakeSent()) FUZZ_CHECK(badinput::Decode(s) != nullptr, "client frames decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  outpost::ManualEnv env(11);
  auto dialer = std::make_shared<badinput::FakeDialer>();
  outpost::ClientOptions options;
  options.store = "memory:";
  options.dialer = dialer;
  options.user = "alice";
  options.device = "dev-a";
  options.env = &env;
  options.ack_timeout_ms = int64_t{1} << 40;
  auto opened = outpost::Client::Open(std::move(options));
  FUZZ_CHECK(opened.ok(), "the client opens");
  outpost::Client& client = **opened;

  std::vector<outpost::OpId> own;
  const std::vector<std::string> payloads = {"first", "second"};
  for (const auto& p : payloads) {
    auto id = client.Submit(kMine, "text", p);
    FUZZ_CHECK(id.ok(), "submit");
    own.push_back(*id);
  }
  FUZZ_CHECK(client.Follow(kRoom).ok(), "follow");
  FUZZ_CHECK(client.Step().ok(), "step");
  auto wire = dialer->last();
  FUZZ_CHECK(wire != nullptr, "the client connects");
  CheckSent(*wire);
  wire->Script(badinput::WelcomeFrame({{kRoom, 0, 3}, {kMine, 0, 0}}));
  FUZZ_CHECK(client.Step().ok(), "step");
  FUZZ_CHECK(client.Stats().connected, "handshake done");
  CheckSent(*wire);

  const bool decodable = badinput::Decode(input) != nullptr;
  const uint64_t bad_before = client.Stats().bad_frames;
  wire->Script(input);
  for (int i = 0; i < 3; ++i) {
    FUZZ_CHECK(client.Step().ok(), "Step stays ok");
    CheckSent(*wire);
  }
  if (!decodable) FUZZ_CHECK(client.Stats().bad_frames == bad_before + 1, "an undecodable frame is counted");

  for (size_t i = 0; i < own.size(); ++i) {
    auto got = client.Get(own[i]);
    FUZZ_CHECK(got.ok(), "an own op is never lost");
    FUZZ_CHECK(got->payload == payloads[i] && got->stream == kMine && got->own, "and keeps its bytes");
  }
  auto latest = client.Latest(kMine, 100000);
  FUZZ_CHECK(latest.ok(), "the view reads");
  size_t seen = 0;
  for (const auto& op : *latest) seen += (op.op_id == own[0]) + (op.op_id == own[1]);
  FUZZ_CHECK(seen == own.size(), "each own op shows once");
  return 0;
}
