// Copyright 2026 The Outpost Authors.
//
// Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/TARGET/) from real encoded frames, records
// and URIs, made with the engine's own encoders and the bad-input tests' frame builders:
//   ninja -C build/DIR fuzz_corpus_gen && build/DIR/tests/fuzz_corpus_gen tests/fuzz/corpus
// Deterministic: the same bytes on every run, so regenerating changes nothing unless an encoding changed.
// Crash inputs found by fuzzing are added beside these by hand (named crash-*), never regenerated.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "codec.h"
#include "fuzz/bad_input_util.h"
#include "keys.h"
#include "outpost/client.h"
#include "outpost/env.h"
#include "outpost/membership.h"

namespace {

namespace badinput = outpost::badinput;
namespace codec = outpost::codec;
namespace keys = outpost::keys;
using outpost::wire::ResultCode;

std::filesystem::path root;
int written = 0;

void Put(const std::string& target, const std::string& name, const std::string& bytes) {
  const auto dir = root / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ++written;
}

badinput::OpSpec Op(uint8_t tag, uint64_t n, std::string stream, std::string payload) {
  badinput::OpSpec s;
  s.id = badinput::MakeId(tag, n);
  s.stream = std::move(stream);
  s.counter = n;
  s.payload = std::move(payload);
  return s;
}

void ServerFrames() {
  const std::string t = "server_frame";
  Put(t, "hello", badinput::HelloFrame("alice", "dev-a", codec::kProtocolVersion, {{"room", 0}}));
  Put(t, "hello-other-version",
      badinput::HelloFrame("bob", "dev-b", codec::kProtocolVersion + 1, {{"room", 1}, {"x", 9}}));
  auto a = Op(1, 2, "room", "hi");
  auto b = Op(1, 3, "room", "there");
  b.client_time_ms = 1'800'000'000'000;
  Put(t, "push", badinput::PushFrame(2, {a, b}));
  Put(t, "push-duplicate", badinput::PushFrame(3, {Op(1, 1, "room", "dup")}));
  Put(t, "push-gap", badinput::PushFrame(4, {Op(1, 9, "room", "gap")}));
  auto skip = Op(1, 2, "room", "");
  skip.skip = true;
  Put(t, "push-skip", badinput::PushFrame(5, {skip}));
  auto members = Op(1, 2, "room", outpost::EncodeMembers({"alice", "carol"}));
  members.kind = std::string(outpost::kMembersKind);
  Put(t, "push-members", badinput::PushFrame(6, {members}));
  auto other = Op(1, 1, "other", outpost::EncodeMembers({"alice"}));
  other.kind = std::string(outpost::kMembersKind);
  Put(t, "push-new-stream", badinput::PushFrame(7, {other}));
  Put(t, "push-no-ops", badinput::PushFrame(8, {}, /*omit_ops=*/true));
  Put(t, "pull", codec::EncodePull("room", 0, 10));
  Put(t, "pull-feed", codec::EncodePull(outpost::FeedStream("alice"), 0, 0));
  Put(t, "watermark-read", codec::EncodeWatermark("room", "", "", outpost::WatermarkKind::kRead, 1));
  Put(t, "watermark-delivered",
      codec::EncodeWatermark("room", "", "", outpost::WatermarkKind::kDelivered, 1));
  Put(t, "welcome", badinput::WelcomeFrame({{"room", 1, 1}}));
  Put(t, "notify", codec::EncodeNotify("room", 1));
  Put(t, "error", codec::EncodeError(outpost::Status::Code::kInvalidArgument, "bad", false));
  Put(t, "raw-no-body", badinput::RawFrame(3, false));
  Put(t, "short", std::string(7, '\0'));
}

// The client_frame target's client (ManualEnv(11), two submits) makes these op ids; the seeds answer them.
std::vector<outpost::OpId> ClientOwnIds() {
  outpost::ManualEnv env(11);
  outpost::ClientOptions options;
  options.store = "memory:";
  options.user = "alice";
  options.device = "dev-a";
  options.env = &env;
  auto client = outpost::Client::Open(std::move(options));
  std::vector<outpost::OpId> ids;
  if (!client.ok()) return ids;
  for (const char* p : {"first", "second"}) {
    auto id = (*client)->Submit("mine", "text", p);
    if (id.ok()) ids.push_back(*id);
  }
  return ids;
}

void ClientFrames() {
  const std::string t = "client_frame";
  const auto own = ClientOwnIds();
  if (own.size() != 2) {
    std::fprintf(stderr, "corpus_gen: the client did not submit\n");
    std::exit(1);
  }
  const uint16_t invalid = static_cast<uint16_t>(outpost::Status::Code::kInvalidArgument);
  Put(t, "pushack-applied",
      badinput::PushAckFrame(
          1, "mine",
          {{own[0], ResultCode::Applied, 1, 1, 0, 0, ""}, {own[1], ResultCode::Applied, 2, 2, 0, 0, ""}}));
  Put(t, "pushack-duplicate",
      badinput::PushAckFrame(1, "mine", {{own[0], ResultCode::Duplicate, 1, 1, 0, 0, ""}}));
  Put(t, "pushack-gap", badinput::PushAckFrame(1, "mine", {{own[1], ResultCode::Gap, 0, 2, 0, 0, ""}}));
  Put(t, "pushack-conflict",
      badinput::PushAckFrame(1, "mine", {{own[0], ResultCode::Conflict, 0, 1, 5, 0, ""}}));
  Put(t, "pushack-rejected",
      badinput::PushAckFrame(1, "mine", {{own[0], ResultCode::Rejected, 0, 1, 0, invalid, "forbidden: no"}}));
  Put(t, "pushack-retry",
      badinput::PushAckFrame(1, "mine", {{own[1], ResultCode::Retry, 0, 2, 0, 0, "busy"}}));
  std::vector<badinput::OpSpec> room;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    auto op = Op(5, seq, "room", "room-" + std::to_string(seq));
    op.seq = seq;
    op.device = "dev-b";
    op.user = "bob";
    room.push_back(op);
  }
  Put(t, "batch", badinput::BatchFrame("room", 0, room, 3));
  Put(t, "batch-has-more", badinput::BatchFrame("room", 0, {room[0]}, 3, true));
  auto mine = Op(0, 1, "mine", "first");
  mine.id = own[0];
  mine.seq = 1;
  mine.device = "dev-a";
  mine.user = "alice";
  Put(t, "batch-own-op", badinput::BatchFrame("mine", 0, {mine}, 1));
  Put(t, "notify", codec::EncodeNotify("room", 5));
  Put(t, "watermark", badinput::WatermarkFrame("room", "bob", "dev-b", 1, 2));
  Put(t, "welcome-again", badinput::WelcomeFrame({{"room", 0, 3}, {"mine", 1, 1}}));
  Put(t, "error", codec::EncodeError(outpost::Status::Code::kBusy, "busy", false));
  Put(t, "error-fatal", codec::EncodeError(outpost::Status::Code::kPermissionDenied, "go away", true));
  Put(t, "short", std::string(5, '\x01'));
}

outpost::OpInfo Info(uint8_t tag, outpost::OpState state) {
  outpost::OpInfo op;
  op.op_id = badinput::MakeId(tag, tag);
  op.stream = "room";
  op.kind = "text";
  op.payload = "payload-" + std::to_string(tag);
  op.user = "alice";
  op.device = "dev-a";
  op.own = true;
  op.state = state;
  op.device_counter = tag;
  op.client_time_ms = 1'800'000'000'000;
  op.created_at_ms = 1'800'000'000'000;
  return op;
}

void Records() {
  const std::string t = "local_record";
  Put(t, "pending", codec::EncodeRecord(Info(1, outpost::OpState::kPending), 1));
  auto sent = Info(2, outpost::OpState::kSent);
  sent.seq = 42;
  Put(t, "sent", codec::EncodeRecord(sent, 2));
  auto failed = Info(3, outpost::OpState::kFailed);
  failed.last_error = "forbidden: not a member";
  failed.last_error_code = outpost::Status::Code::kPermissionDenied;
  failed.attempts = 3;
  failed.next_attempt_at_ms = 5;
  failed.depends_on = badinput::MakeId(1, 1);
  Put(t, "failed-with-parent", codec::EncodeRecord(failed, 3));
  auto other = Info(4, outpost::OpState::kSent);
  other.own = false;
  other.user = "bob";
  other.payload.clear();
  Put(t, "other-device-empty-payload", codec::EncodeRecord(other, 0));

  const std::string v = "store_value";
  codec::OpFields f;
  f.op_id = badinput::MakeId(1, 1);
  f.stream = "room";
  f.kind = "text";
  f.payload = "hi";
  f.device = "dev-a";
  f.user = "alice";
  f.device_counter = 1;
  f.seq = 1;
  Put(v, "stored-op", std::string(1, '\0') + codec::EncodeStoredOp(f));
  f.skip = true;
  f.payload = {};
  f.depends_on = badinput::MakeId(1, 2);
  Put(v, "stored-op-skip", std::string(1, '\0') + codec::EncodeStoredOp(f));
  keys::DedupeRecord d;
  d.code = static_cast<uint8_t>(ResultCode::Applied);
  d.seq = 7;
  d.counter = 3;
  d.stream = "room";
  d.device = "dev-a";
  Put(v, "dedupe", std::string(1, '\1') + keys::EncodeDedupe(d));
  d.code = static_cast<uint8_t>(ResultCode::Rejected);
  d.error_code = 9;
  d.message = "forbidden";
  Put(v, "dedupe-rejected", std::string(1, '\1') + keys::EncodeDedupe(d));
  keys::StreamMeta m;
  m.cursor = 5;
  m.next_counter = 9;
  m.followed = 1;
  Put(v, "stream-meta", std::string(1, '\2') + keys::EncodeStreamMeta(m));
  Put(v, "view-key", std::string(1, '\3') + keys::ViewKey("room", keys::kSectionUnsent, 12));
  Put(v, "outbox-key", std::string(1, '\3') + keys::OutboxKey("room", 3));
}

void Text() {
  const std::vector<std::pair<std::string, std::string>> uris = {
      {"memory", "memory:"},
      {"memory-named-sync", "memory:shared?sync=0"},
      {"lmdb", "lmdb:/var/lib/outpost?sync=1&map_bytes_max=1048576"},
      {"sqlite", "sqlite:data/outpost.db"},
      {"rocksdb", "rocksdb:data/rocks?sync=0"},
      {"no-dir", "lmdb:"},
      {"unknown-param", "sqlite:x.db?cache=1"},
      {"unknown-scheme", "postgres://db/outpost"},
      {"no-scheme", "outpost-data"}};
  for (const auto& [name, uri] : uris) Put("storage_uri", name, uri);
  const std::vector<std::pair<std::string, std::string>> transports = {
      {"inproc", "inproc:main"},
      {"tcp", "tcp://127.0.0.1:7700"},
      {"tcp-list", "tcp://a.example:7700,tcp://b.example:7701,ipc:///run/outpost.sock"},
      {"tcp-port0", "tcp://127.0.0.1:0"},
      {"ipc", "ipc:///tmp/outpost.sock"},
      {"no-port", "tcp://host"},
      {"big-port", "tcp://host:99999"},
      {"unknown", "udp://host:1"}};
  for (const auto& [name, uri] : transports) Put("transport_uri", name, uri);
  Put("members", "two", outpost::EncodeMembers({"alice", "bob"}));
  Put("members", "duplicates-and-blanks", "alice\n\nbob\nalice\n");
  Put("members", "long-name", std::string(300, 'x') + "\nok");
  Put("members", "empty", "");
  using namespace std::string_literals;
  Put("outpostd_flags", "serve", "--data\0/var/lib/outpost\0--listen=tcp://0.0.0.0:7700\0--verbose"s);
  Put("outpostd_flags", "repeat-and-positional",
      "--listen\0tcp://a:1,tcp://b:2\0--max=99\0alice\0--\0--data"s);
  Put("outpostd_flags", "bad-uint", "--max\0"s + "12x\0bob.smith"s);
  Put("outpostd_flags", "unknown", "--nope\0-x"s);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_ROOT   (tests/fuzz/corpus)\n", argv[0]);
    return 1;
  }
  root = argv[1];
  ServerFrames();
  ClientFrames();
  Records();
  Text();
  std::printf("corpus_gen: wrote %d seeds under %s\n", written, root.c_str());
  return 0;
}
