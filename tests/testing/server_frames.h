// Copyright 2026 The Outpost Authors.
//
// Protocol frames for tests that drive a ServerCore frame by frame, and the decoding of its answers.
#ifndef OUTPOST_TESTS_TESTING_SERVER_FRAMES_H_
#define OUTPOST_TESTS_TESTING_SERVER_FRAMES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "codec.h"
#include "outpost/ids.h"
#include "outpost/server.h"

namespace outpost::frames {

struct TestOp {
  OpId id;
  std::string stream = "s";
  uint64_t counter = 1;
  std::string payload = "x";
  bool skip = false;
  std::string kind = "k";
  bool retry = false;  // the user's Retry (Op.retry)
};

// A distinct, non-nil op id per n.
inline OpId Id(uint8_t n) {
  OpId id;
  id.bytes[0] = 1;
  id.bytes[15] = n;
  return id;
}

inline std::string HelloFrame(const std::string& user, const std::string& device,
                              const std::vector<std::string>& follows = {},
                              uint32_t version = codec::kProtocolVersion, const std::string& token = "") {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<wire::StreamCursor>> cs;
  for (const auto& s : follows) cs.push_back(wire::CreateStreamCursor(b, b.CreateString(s), 0));
  auto h = wire::CreateHello(b, b.CreateString(user), b.CreateString(device), b.CreateString(token), version,
                             b.CreateVector(cs));
  return codec::FinishFrame(b, wire::Body::Hello, h.Union());
}

inline std::string PushFrame(const std::vector<TestOp>& ops, uint64_t batch_id = 1) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<wire::Op>> v;
  for (const auto& op : ops) {
    codec::OpFields f;
    f.op_id = op.id;
    f.stream = op.stream;
    f.kind = op.kind;
    f.payload = op.payload;
    f.device_counter = op.counter;
    f.skip = op.skip;
    f.retry = op.retry;
    v.push_back(codec::BuildOp(b, f));
  }
  auto p = wire::CreatePush(b, batch_id, b.CreateVector(v));
  return codec::FinishFrame(b, wire::Body::Push, p.Union());
}

inline const wire::Frame* Decoded(const Outbound& o) { return codec::DecodeFrame(o.frame, 1 << 30).value(); }

}  // namespace outpost::frames

#endif  // OUTPOST_TESTS_TESTING_SERVER_FRAMES_H_
