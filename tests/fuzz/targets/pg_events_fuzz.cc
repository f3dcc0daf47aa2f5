// Copyright 2026 The Outpost Authors.
//
// Fuzz target: pg::DecodeEvents, the decoder of the NOTIFY payloads by which outpostd instances on one
// PostgreSQL database wake each other (engine/server_store/postgresql/pg_events.h). Anyone who may NOTIFY on
// the database can send one, so: never crashes; what decodes re-encodes (EncodeEvents, possibly split over
// several payloads) and decodes to the same events, from the same instance.
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>

#include "fuzz/targets/fuzz_check.h"
#include "server_store/postgresql/pg_events.h"

namespace {

using outpost::StoreEvents;

auto Key(const StoreEvents& e) {
  std::vector<std::tuple<std::string, uint64_t>> heads;
  for (const auto& h : e.heads) heads.emplace_back(h.stream, h.high);
  std::vector<std::tuple<std::string, std::string, std::string, int, uint64_t>> wms;
  for (const auto& w : e.watermarks) wms.emplace_back(w.stream, w.user, w.device, w.kind, w.seq);
  std::vector<std::tuple<std::string, std::string>> joined, left;
  for (const auto& m : e.joined) joined.emplace_back(m.stream, m.user);
  for (const auto& m : e.left) left.emplace_back(m.stream, m.user);
  return std::make_tuple(heads, wms, joined, left, e.lost);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view payload = outpost::fuzz::AsView(data, size);
  uint64_t instance = 0;
  StoreEvents events;
  if (!outpost::pg::DecodeEvents(payload, &instance, &events)) return 0;
  StoreEvents again;
  for (const std::string& p : outpost::pg::EncodeEvents(events, instance)) {
    FUZZ_CHECK(p.size() <= outpost::pg::kPayloadBytesMax, "a payload fits a NOTIFY");
    uint64_t from = 0;
    StoreEvents part;
    FUZZ_CHECK(outpost::pg::DecodeEvents(p, &from, &part), "what is encoded decodes");
    FUZZ_CHECK(from == instance, "the instance survives");
    for (auto& h : part.heads) again.heads.push_back(std::move(h));
    for (auto& w : part.watermarks) again.watermarks.push_back(std::move(w));
    for (auto& m : part.joined) again.joined.push_back(std::move(m));
    for (auto& m : part.left) again.left.push_back(std::move(m));
    again.lost = again.lost || part.lost;
  }
  // An entry too big for any payload is replaced by the lost flag: then only that flag is promised.
  if (again.lost && !events.lost) return 0;
  FUZZ_CHECK(Key(again) == Key(events), "decode, encode, decode keeps every event");
  return 0;
}
