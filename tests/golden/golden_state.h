// Copyright 2026 The Outpost Authors.
//
// What a golden store holds, as JSON read through the public Client API: the generator (make_golden.cc)
// writes it into expected.json from the build that made the stores, and the test (golden_store_test.cc)
// reads the stores with this build and compares. One function for both, so that they describe a store the
// same way; the JSON file, not this code, is what a later build must match.
#ifndef OUTPOST_TESTS_GOLDEN_GOLDEN_STATE_H_
#define OUTPOST_TESTS_GOLDEN_GOLDEN_STATE_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/status.h"

namespace outpost::golden {

// The streams of every golden store: "general" (both users write), "news" (only bob writes; alice follows).
inline const std::vector<std::string>& Streams() {
  static const std::vector<std::string> streams = {"general", "news"};
  return streams;
}

inline const char* StateName(OpState s) {
  switch (s) {
    case OpState::kPending:
      return "pending";
    case OpState::kSent:
      return "sent";
    case OpState::kFailed:
      return "failed";
  }
  return "?";
}

inline nlohmann::json OpJson(const OpInfo& op) {
  return {{"op_id", op.op_id.ToString()},
          {"stream", op.stream},
          {"kind", op.kind},
          {"payload", op.payload},
          {"user", op.user},
          {"device", op.device},
          {"own", op.own},
          {"state", StateName(op.state)},
          {"seq", op.seq},
          {"device_counter", op.device_counter}};
}

// Everything a device knows: per stream its ops in view order, cursor, read position, receipts; its outbox
// (pending op ids, in order) and its failed ops. Error text in the JSON when a read fails, so that a
// comparison shows where.
inline nlohmann::json DeviceState(Client& c) {
  nlohmann::json out;
  out["user"] = c.user();
  out["device"] = c.device();
  nlohmann::json streams = nlohmann::json::object();
  auto infos = c.Streams();
  if (!infos.ok()) return {{"error", infos.status().ToString()}};
  for (const StreamInfo& s : *infos) {
    nlohmann::json j;
    j["cursor"] = s.cursor;
    j["high_seq"] = s.high_seq;
    j["read_seq"] = s.read_seq;
    j["outbox"] = s.outbox;
    j["failed"] = s.failed;
    j["followed"] = s.followed;
    auto ops = c.Latest(s.stream, 10'000);
    if (!ops.ok()) return {{"error", ops.status().ToString()}};
    j["ops"] = nlohmann::json::array();
    for (const OpInfo& op : *ops) j["ops"].push_back(OpJson(op));
    auto wms = c.Watermarks(s.stream);
    if (!wms.ok()) return {{"error", wms.status().ToString()}};
    j["watermarks"] = nlohmann::json::array();
    for (const Watermark& w : *wms) {
      j["watermarks"].push_back({{"user", w.user},
                                 {"device", w.device},
                                 {"kind", w.kind == WatermarkKind::kRead ? "read" : "delivered"},
                                 {"seq", w.seq}});
    }
    streams[s.stream] = std::move(j);
  }
  out["streams"] = std::move(streams);
  auto outbox = c.Outbox(10'000);
  if (!outbox.ok()) return {{"error", outbox.status().ToString()}};
  out["pending"] = nlohmann::json::array();
  out["failed"] = nlohmann::json::array();
  for (const OpInfo& op : *outbox) {
    out[op.state == OpState::kFailed ? "failed" : "pending"].push_back(op.op_id.ToString());
  }
  const ClientStats stats = c.Stats();
  out["stats"] = {{"outbox_depth", stats.outbox_depth}, {"failed", stats.failed}};
  return out;
}

// What a server holds, as a fresh device that follows every stream pulls it: per stream the op ids in seq
// order with their seqs, and the high seq.
inline nlohmann::json ServerState(Client& reader) {
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& stream : Streams()) {
    auto ops = reader.Latest(stream, 10'000);
    if (!ops.ok()) return {{"error", ops.status().ToString()}};
    nlohmann::json j;
    j["ops"] = nlohmann::json::array();
    for (const OpInfo& op : *ops) {
      j["ops"].push_back({{"op_id", op.op_id.ToString()},
                          {"seq", op.seq},
                          {"user", op.user},
                          {"device", op.device},
                          {"payload", op.payload}});
    }
    auto cursor = reader.Cursor(stream);
    j["high_seq"] = cursor.ok() ? *cursor : 0;
    out[stream] = std::move(j);
  }
  return out;
}

}  // namespace outpost::golden

#endif  // OUTPOST_TESTS_GOLDEN_GOLDEN_STATE_H_
