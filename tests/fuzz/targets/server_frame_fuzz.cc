// Copyright 2026 The Outpost Authors.
//
// Fuzz target: the server core's inbound frame handling (ServerCore::Handle: size limit, FlatBuffers
// Verifier, then every body kind), with membership off and on. For each input a fresh core (memory store)
// has one authenticated connection that owns a stream with one op; the input is then sent as a frame on
// that connection and as the first frame of a second connection (before any Hello). Properties: never
// crashes; every answer decodes and goes to the connection that sent the input; an undecodable input is
// counted as a bad frame and changes no op state; the op already stored keeps its seq and bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec.h"
#include "fuzz/bad_input_util.h"
#include "fuzz/targets/fuzz_check.h"
#include "outpost/env.h"
#include "outpost/membership.h"
#include "outpost/server.h"

namespace {

using outpost::ConnId;
using outpost::ServerCore;
using outpost::ServerEvent;
using outpost::wire::Body;
namespace badinput = outpost::badinput;
namespace codec = outpost::codec;

constexpr uint32_t kFrameMax = 64 << 10;
constexpr ConnId kOwner = 1;
constexpr ConnId kStranger = 2;
const char kStream[] = "room";

std::vector<outpost::Outbound> Send(ServerCore& core, ServerEvent::Kind kind, ConnId conn,
                                    std::string frame) {
  std::vector<ServerEvent> events(1);
  events[0].kind = kind;
  events[0].conn = conn;
  events[0].frame = std::move(frame);
  std::vector<outpost::Outbound> out;
  core.Handle(events, &out);
  return out;
}

void CheckAnswers(const std::vector<outpost::Outbound>& out, ConnId conn) {
  for (const auto& o : out) {
    // Notify may go to other followers; here the only other connection follows nothing.
    FUZZ_CHECK(o.conn == conn, "answers go to the sender");
    FUZZ_CHECK(badinput::Decode(o.frame) != nullptr, "every answer decodes");
  }
}

// The first op of the stream, as the owner pulls it: seq 1, our op id and payload.
void CheckStoredOp(ServerCore& core, const outpost::OpId& id, const std::string& payload) {
  auto out = Send(core, ServerEvent::Kind::kFrame, kOwner, codec::EncodePull(kStream, 0, 1));
  for (const auto& o : out) {
    // The input may have been a valid members op that removed the owner: then the pull is refused with an
    // Error and an empty final Batch (server.cc HandlePull), and there is nothing to compare.
    const auto* f = badinput::Decode(o.frame);
    if (f != nullptr && f->body_type() == Body::Error) return;
  }
  for (const auto& o : out) {
    const auto* f = badinput::Decode(o.frame);
    FUZZ_CHECK(f != nullptr, "a pull answer decodes");
    if (f->body_type() != Body::Batch) continue;  // the input may have closed the session: nothing to check
    const auto* ops = f->body_as_Batch()->ops();
    FUZZ_CHECK(ops != nullptr && ops->size() >= 1, "the stored op is still there");
    const codec::OpFields got = codec::FieldsOf(*ops->Get(0));
    FUZZ_CHECK(got.seq == 1 && got.op_id == id && got.payload == payload, "the stored op is unchanged");
  }
}

void RunOne(const std::string& input, bool membership) {
  outpost::ManualEnv env(7);
  outpost::ServerOptions options;
  options.store = "memory:";
  options.env = &env;
  options.membership = membership;
  options.frame_bytes_max = kFrameMax;
  options.ops_per_batch_max = 16;
  options.payload_bytes_max = 1024;
  options.pull_page_max = 32;
  options.hello_streams_max = 8;
  auto opened = ServerCore::Open(std::move(options));
  FUZZ_CHECK(opened.ok(), "the server core opens");
  ServerCore& core = **opened;

  FUZZ_CHECK(Send(core, ServerEvent::Kind::kOpen, kOwner, {}).empty(), "open is silent");
  auto out = Send(core, ServerEvent::Kind::kFrame, kOwner,
                  badinput::HelloFrame("alice", "dev-a", codec::kProtocolVersion, {{kStream, 0}}));
  FUZZ_CHECK(out.size() == 1 && badinput::Decode(out[0].frame)->body_type() == Body::Welcome, "welcome");
  badinput::OpSpec op;
  op.id = badinput::MakeId(1, 1);
  op.stream = kStream;
  op.counter = 1;
  op.kind = std::string(outpost::kMembersKind);  // creates the stream when membership is on
  op.payload = outpost::EncodeMembers({"alice", "bob"});
  out = Send(core, ServerEvent::Kind::kFrame, kOwner, badinput::PushFrame(1, {op}));
  bool acked = false;  // a PushAck, and Notify frames for the streams the owner follows
  for (const auto& o : out) {
    const auto* f = badinput::Decode(o.frame);
    FUZZ_CHECK(f != nullptr, "answers decode");
    if (f->body_type() == Body::PushAck) {
      const auto* results = f->body_as_PushAck()->results();
      acked = results != nullptr && results->size() == 1 &&
              results->Get(0)->code() == outpost::wire::ResultCode::Applied;
    }
  }
  FUZZ_CHECK(acked, "the owner's op is applied");

  const bool decodable = codec::DecodeFrame(input, kFrameMax).ok();
  const outpost::ServerStats before = core.Stats();
  CheckAnswers(Send(core, ServerEvent::Kind::kFrame, kOwner, input), kOwner);
  const outpost::ServerStats after = core.Stats();
  if (!decodable) {
    FUZZ_CHECK(after.bad_frames == before.bad_frames + 1, "an undecodable frame is counted");
    FUZZ_CHECK(after.ops_applied == before.ops_applied && after.pulls == before.pulls, "and does nothing");
  }

  FUZZ_CHECK(Send(core, ServerEvent::Kind::kOpen, kStranger, {}).empty(), "open is silent");
  CheckAnswers(Send(core, ServerEvent::Kind::kFrame, kStranger, input), kStranger);
  CheckStoredOp(core, op.id, op.payload);
  Send(core, ServerEvent::Kind::kClose, kStranger, {});
  Send(core, ServerEvent::Kind::kClose, kOwner, {});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  RunOne(input, /*membership=*/false);
  RunOne(input, /*membership=*/true);
  return 0;
}
