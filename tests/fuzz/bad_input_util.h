// Copyright 2026 The Outpost Authors.
//
// Helpers for the bad-input tests: a deterministic random source, builders for every wire frame (including
// malformed ones the engine's own builders refuse to make), byte mutations, and a scripted fake transport
// for driving a Client without a server.
#ifndef OUTPOST_TESTS_FUZZ_BAD_INPUT_UTIL_H_
#define OUTPOST_TESTS_FUZZ_BAD_INPUT_UTIL_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codec.h"
#include "outpost/ids.h"
#include "outpost/transport.h"
#include "outpost/wire_generated.h"
#include "testing/random.h"

namespace outpost::badinput {

// splitmix64: the same sequence on every platform and standard library.
using harness::Rng;

// A deterministic, non-nil op id: `tag` in the first byte, `n` in the last eight.
inline OpId MakeId(uint8_t tag, uint64_t n) {
  OpId id;
  id.bytes[0] = tag;
  id.bytes[6] = 0x70;  // version 7, for looks only
  id.bytes[8] = 0x80;
  for (int i = 15; i >= 9; --i, n >>= 8) id.bytes[i] = static_cast<uint8_t>(n);
  return id;
}

// An op as it goes on the wire; unlike codec::BuildOp, any field may be left out.
struct OpSpec {
  OpId id;
  bool has_id = true;
  std::optional<std::string> stream;  // nullopt: field absent
  std::string kind = "text";
  std::string payload;
  std::string device;
  std::string user;
  uint64_t counter = 0;
  uint64_t seq = 0;
  int64_t client_time_ms = 0;
  bool skip = false;
};

inline flatbuffers::Offset<wire::Op> BuildOpSpec(flatbuffers::FlatBufferBuilder& b, const OpSpec& s) {
  flatbuffers::Offset<flatbuffers::String> stream, kind, device, user;
  flatbuffers::Offset<flatbuffers::Vector<uint8_t>> payload;
  if (s.stream) stream = b.CreateString(*s.stream);
  if (!s.kind.empty()) kind = b.CreateString(s.kind);
  if (!s.payload.empty()) {
    payload = b.CreateVector(reinterpret_cast<const uint8_t*>(s.payload.data()), s.payload.size());
  }
  if (!s.device.empty()) device = b.CreateString(s.device);
  if (!s.user.empty()) user = b.CreateString(s.user);
  wire::OpBuilder ob(b);
  wire::Uuid id = codec::ToWire(s.id);
  if (s.has_id) ob.add_op_id(&id);
  ob.add_stream(stream);
  ob.add_kind(kind);
  ob.add_payload(payload);
  ob.add_device(device);
  ob.add_user(user);
  ob.add_device_counter(s.counter);
  ob.add_client_time_ms(s.client_time_ms);
  if (s.skip) ob.add_skip(true);
  ob.add_seq(s.seq);
  return ob.Finish();
}

// ---- frames a device sends ----

inline std::string HelloFrame(std::string_view user, std::string_view device,
                              uint32_t version = codec::kProtocolVersion,
                              const std::vector<std::pair<std::string, uint64_t>>& cursors = {},
                              std::string_view token = "tok") {
  flatbuffers::FlatBufferBuilder b(256);
  std::vector<flatbuffers::Offset<wire::StreamCursor>> cv;
  for (const auto& [stream, seq] : cursors)
    cv.push_back(wire::CreateStreamCursor(b, b.CreateString(stream), seq));
  auto vec = b.CreateVector(cv);
  auto u = b.CreateString(user.data(), user.size());
  auto d = b.CreateString(device.data(), device.size());
  auto t = b.CreateString(token.data(), token.size());
  return codec::FinishFrame(b, wire::Body::Hello, wire::CreateHello(b, u, d, t, version, vec).Union());
}

inline std::string PushFrame(uint64_t batch_id, const std::vector<OpSpec>& ops, bool omit_ops = false) {
  flatbuffers::FlatBufferBuilder b(1024);
  std::vector<flatbuffers::Offset<wire::Op>> ov;
  for (const auto& op : ops) ov.push_back(BuildOpSpec(b, op));
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::Op>>> vec;
  if (!omit_ops) vec = b.CreateVector(ov);
  return codec::FinishFrame(b, wire::Body::Push, wire::CreatePush(b, batch_id, vec).Union());
}

inline std::string PullFrame(std::string_view stream, uint64_t after_seq, uint32_t limit) {
  return codec::EncodePull(stream, after_seq, limit);
}

// `kind` is raw so that out-of-range kinds can be sent.
inline std::string WatermarkFrame(std::string_view stream, std::string_view user, std::string_view device,
                                  uint8_t kind, uint64_t seq) {
  flatbuffers::FlatBufferBuilder b(128);
  auto s = b.CreateString(stream.data(), stream.size());
  flatbuffers::Offset<flatbuffers::String> u, d;
  if (!user.empty()) u = b.CreateString(user.data(), user.size());
  if (!device.empty()) d = b.CreateString(device.data(), device.size());
  auto body = wire::CreateWatermark(b, s, u, d, static_cast<wire::WatermarkKind>(kind), seq);
  return codec::FinishFrame(b, wire::Body::Watermark, body.Union());
}

// ---- frames a server sends ----

struct CounterSpec {
  std::string stream;
  uint64_t counter = 0;
  uint64_t high_seq = 0;
};

inline std::string WelcomeFrame(const std::vector<CounterSpec>& counters, uint32_t frame_bytes_max = 4u << 20,
                                uint32_t ops_per_batch_max = 1024, uint32_t payload_bytes_max = 1u << 20,
                                uint32_t version = codec::kProtocolVersion) {
  flatbuffers::FlatBufferBuilder b(256);
  std::vector<flatbuffers::Offset<wire::DeviceCounter>> dcs;
  for (const auto& c : counters) {
    dcs.push_back(wire::CreateDeviceCounter(b, b.CreateString(c.stream), c.counter, c.high_seq));
  }
  auto vec = b.CreateVector(dcs);
  auto body = wire::CreateWelcome(b, version, vec, frame_bytes_max, ops_per_batch_max, payload_bytes_max, 0);
  return codec::FinishFrame(b, wire::Body::Welcome, body.Union());
}

struct ResultSpec {
  OpId id;
  wire::ResultCode code = wire::ResultCode::Applied;
  uint64_t seq = 0;
  uint64_t counter = 0;
  uint64_t last_counter = 0;
  uint16_t error_code = 0;
  std::string message;
};

inline std::string PushAckFrame(uint64_t batch_id, std::string_view stream,
                                const std::vector<ResultSpec>& results, bool omit_results = false) {
  flatbuffers::FlatBufferBuilder b(512);
  std::vector<flatbuffers::Offset<wire::OpResult>> rv;
  for (const auto& r : results) {
    auto msg = r.message.empty() ? flatbuffers::Offset<flatbuffers::String>() : b.CreateString(r.message);
    wire::Uuid id = codec::ToWire(r.id);
    wire::OpResultBuilder rb(b);
    rb.add_op_id(&id);
    rb.add_code(r.code);
    rb.add_seq(r.seq);
    rb.add_counter(r.counter);
    rb.add_last_counter(r.last_counter);
    rb.add_error_code(r.error_code);
    rb.add_message(msg);
    rv.push_back(rb.Finish());
  }
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::OpResult>>> vec;
  if (!omit_results) vec = b.CreateVector(rv);
  auto s = b.CreateString(stream.data(), stream.size());
  return codec::FinishFrame(b, wire::Body::PushAck, wire::CreatePushAck(b, batch_id, s, vec).Union());
}

inline std::string BatchFrame(std::string_view stream, uint64_t after_seq, const std::vector<OpSpec>& ops,
                              uint64_t high_seq, bool has_more = false) {
  flatbuffers::FlatBufferBuilder b(1024);
  std::vector<flatbuffers::Offset<wire::Op>> ov;
  for (const auto& op : ops) ov.push_back(BuildOpSpec(b, op));
  auto vec = b.CreateVector(ov);
  auto s = b.CreateString(stream.data(), stream.size());
  return codec::FinishFrame(b, wire::Body::Batch,
                            wire::CreateBatch(b, s, after_seq, vec, high_seq, has_more).Union());
}

// A Frame whose union type is `type` and whose body is `body` (may be null).
inline std::string RawFrame(uint8_t type, bool with_body) {
  flatbuffers::FlatBufferBuilder b(64);
  flatbuffers::Offset<void> body;
  if (with_body) body = wire::CreateNotify(b, b.CreateString("zz"), 1).Union();
  b.Finish(wire::CreateFrame(b, static_cast<wire::Body>(type), body));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

// ---- decoding answers ----

constexpr size_t kDecodeMax = size_t{64} << 20;

inline const wire::Frame* Decode(const std::string& bytes) {
  auto f = codec::DecodeFrame(bytes, kDecodeMax);
  return f.ok() ? *f : nullptr;
}

// ---- mutations ----

// Every single-byte change of `frame` at every position to 0x00, 0xff, x^0x01 and x^0x80 (no-ops left out).
inline std::vector<std::string> ByteFlips(const std::string& frame) {
  std::vector<std::string> out;
  for (size_t i = 0; i < frame.size(); ++i) {
    const auto orig = static_cast<uint8_t>(frame[i]);
    const uint8_t values[] = {0x00, 0xff, static_cast<uint8_t>(orig ^ 0x01),
                              static_cast<uint8_t>(orig ^ 0x80)};
    for (size_t v = 0; v < 4; ++v) {
      bool seen = values[v] == orig;
      for (size_t w = 0; w < v; ++w) seen = seen || values[w] == values[v];
      if (seen) continue;
      std::string m = frame;
      m[i] = static_cast<char>(values[v]);
      out.push_back(std::move(m));
    }
  }
  return out;
}

// Every proper prefix of `frame`, empty included.
inline std::vector<std::string> Truncations(const std::string& frame) {
  std::vector<std::string> out;
  for (size_t n = 0; n < frame.size(); ++n) out.push_back(frame.substr(0, n));
  return out;
}

// ---- a scripted transport ----

// One connection's two directions, shared by the test and the FakeConnection the client holds.
struct FakeWire {
  std::mutex mu;
  std::deque<std::string> inbound;  // what the client will Receive, in order
  std::vector<std::string> sent;    // what the client Sent
  bool open = true;

  void Script(std::string frame) {
    std::lock_guard<std::mutex> lock(mu);
    inbound.push_back(std::move(frame));
  }
  std::vector<std::string> TakeSent() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    out.swap(sent);
    return out;
  }
  bool IsOpen() {
    std::lock_guard<std::mutex> lock(mu);
    return open;
  }
};

class FakeConnection final : public Connection {
 public:
  explicit FakeConnection(std::shared_ptr<FakeWire> wire) : wire_(std::move(wire)) {}
  Status Send(std::string_view frame) override {
    std::lock_guard<std::mutex> lock(wire_->mu);
    if (!wire_->open) return Status::Unavailable("closed");
    wire_->sent.emplace_back(frame);
    return Status::OK();
  }
  bool Receive(std::string* frame) override {
    std::lock_guard<std::mutex> lock(wire_->mu);
    if (wire_->inbound.empty()) return false;
    *frame = std::move(wire_->inbound.front());
    wire_->inbound.pop_front();
    return true;
  }
  bool IsOpen() const override {
    std::lock_guard<std::mutex> lock(wire_->mu);
    return wire_->open;
  }
  void Close() override {
    std::lock_guard<std::mutex> lock(wire_->mu);
    wire_->open = false;
  }
  void SetWakeup(std::function<void()> wake) override {}

 private:
  std::shared_ptr<FakeWire> wire_;
};

// Every Connect makes a new FakeWire; the test reaches the newest with last().
class FakeDialer final : public Dialer {
 public:
  Result<std::unique_ptr<Connection>> Connect() override {
    std::lock_guard<std::mutex> lock(mu_);
    wires_.push_back(std::make_shared<FakeWire>());
    return std::unique_ptr<Connection>(new FakeConnection(wires_.back()));
  }
  std::shared_ptr<FakeWire> last() {
    std::lock_guard<std::mutex> lock(mu_);
    return wires_.empty() ? nullptr : wires_.back();
  }
  size_t connects() {
    std::lock_guard<std::mutex> lock(mu_);
    return wires_.size();
  }

 private:
  std::mutex mu_;
  std::vector<std::shared_ptr<FakeWire>> wires_;
};

}  // namespace outpost::badinput

#endif  // OUTPOST_TESTS_FUZZ_BAD_INPUT_UTIL_H_
