// Copyright 2026 The Outpost Authors.
//
// Devices with real processes: `outpostd devices --json` shows when and from where a device last
// connected; `outpostd revoke-device`, run while `outpostd serve` runs on the same data directory, cuts the
// device's live connection within a second with the documented fatal Error (PermissionDenied, session_end
// Revoked), refuses its next Hello the same way, and leaves the user's other device connected and able to
// push; `outpostd remove-user` ends a user's devices and forgets its tokens.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codec.h"
#include "conformance/server_store_backends.h"
#include "e2e/e2e_fixture.h"
#include "e2e/raw_peer.h"
#include "testing/server_frames.h"

namespace outpost::e2e {
namespace {

using Json = nlohmann::json;

// What a fatal Error frame said.
struct Ended {
  Status::Code code = Status::Code::kOk;
  std::string message;
  bool fatal = false;
  wire::SessionEnd session_end = wire::SessionEnd::None;
};

Ended DecodeError(const std::string& frame) {
  const wire::Error* e = codec::DecodeFrame(frame, 1 << 30).value()->body_as_Error();
  return {static_cast<Status::Code>(e->code()), std::string(codec::Str(e->message())), e->fatal(),
          e->session_end()};
}

// A raw device past its Hello (the Welcome received).
std::unique_ptr<RawPeer> Connect(void* context, const std::string& endpoint, const std::string& user,
                                 const std::string& device, const std::string& token) {
  auto peer = std::make_unique<RawPeer>(context, endpoint, RawPeer::Options{.reconnect = false});
  EXPECT_TRUE(peer->Open(kWaitMs));
  peer->SendFrame(frames::HelloFrame(user, device, {}, codec::kProtocolVersion, token));
  return peer;
}

Json DevicesJson(const std::string& data, const std::string& user) {
  RunResult r = RunOutpostd({"devices", "--data", data, user, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Json::parse(r.out);  // throws (failing the test) on anything but JSON
}

// `outpostd add-device --data DATA USER --device DEVICE --replace`: the new token ("" on failure).
std::string Issue(const std::string& data, const std::string& user, const std::string& device) {
  RunResult r = RunOutpostd({"add-device", "--data", data, user, "--device", device, "--replace"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
  return r.exit_code == 0 ? r.out : "";
}

const Json* DeviceIn(const Json& list, const std::string& device) {
  for (const auto& d : list.at("devices")) {
    if (d.at("device") == device) return &d;
  }
  return nullptr;
}

TEST_F(E2ETest, RevokedDeviceIsCutOffWithinASecondAndOtherDevicesStay) {
  auto laptop = AliceLaptop();
  ASSERT_TRUE(laptop);
  CreateStream(*laptop, "trip", {"alice"});
  ZmqContext context;
  auto phone = Connect(context.get(), daemon_.endpoint(), "alice", "phone", alice_phone_token_);
  std::string frame;
  ASSERT_TRUE(phone->ExpectFrame(wire::Body::Welcome, &frame, kWaitMs)) << daemon_.Log();

  // Both devices are listed, with when and from where they connected.
  Json listed = DevicesJson(data_, "alice");
  EXPECT_EQ(listed.at("user"), "alice");
  for (const char* name : {"laptop", "phone"}) {
    const Json* d = DeviceIn(listed, name);
    ASSERT_NE(d, nullptr) << name << ": " << listed.dump();
    EXPECT_EQ(d->at("state"), "bound");
    EXPECT_TRUE(d->at("created").is_string()) << d->dump();
    EXPECT_TRUE(d->at("last_seen").is_string()) << d->dump();
    EXPECT_EQ(d->at("last_address"), "127.0.0.1") << d->dump();
    EXPECT_TRUE(d->at("revoked").is_null()) << d->dump();
  }

  // Revoked while the server runs: the phone's connection gets the fatal Error and is closed, in < 1 s.
  const auto began = std::chrono::steady_clock::now();
  RunResult revoked = RunOutpostd({"revoke-device", "--data", data_, "alice", "phone"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  bool got_error = false;
  Ended ended;
  std::vector<std::string> parts;
  while (std::chrono::steady_clock::now() - began < std::chrono::seconds(5)) {
    phone->Keepalive();
    if (!phone->Receive(&parts, 20) || parts.empty()) continue;
    if (parts[0] == "D" && parts.size() == 2) {
      auto f = codec::DecodeFrame(parts[1], 1 << 30);
      if (f.ok() && (*f)->body_type() == wire::Body::Error) {
        ended = DecodeError(parts[1]);
        got_error = true;
      }
    }
    if (parts[0] == "C") break;  // the transport's close: the connection is over
  }
  const auto elapsed = std::chrono::steady_clock::now() - began;
  ASSERT_TRUE(got_error) << daemon_.Log();
  EXPECT_LT(elapsed, std::chrono::seconds(1))
      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
  EXPECT_EQ(ended.code, Status::Code::kPermissionDenied);
  EXPECT_TRUE(ended.fatal);
  EXPECT_EQ(ended.session_end, wire::SessionEnd::Revoked);
  EXPECT_NE(ended.message.find("device revoked"), std::string::npos) << ended.message;
  EXPECT_EQ(parts.empty() ? "" : parts[0], "C") << "closed after the Error";
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("devices_ended") == 1; }, kWaitMs));

  // Its next Hello is refused the same way.
  auto again = Connect(context.get(), daemon_.endpoint(), "alice", "phone", alice_phone_token_);
  ASSERT_TRUE(again->ExpectFrame(wire::Body::Error, &frame, kWaitMs));
  Ended refused = DecodeError(frame);
  EXPECT_EQ(refused.code, Status::Code::kPermissionDenied);
  EXPECT_TRUE(refused.fatal);
  EXPECT_EQ(refused.session_end, wire::SessionEnd::Revoked);
  EXPECT_NE(refused.message.find("authentication failed: device revoked"), std::string::npos)
      << refused.message;

  // The laptop never noticed: still connected, and it pushes.
  EXPECT_TRUE(laptop->Stats().connected);
  auto id = laptop->Submit("trip", "text", "after the phone was revoked");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto op = laptop->Get(*id);
        return op.ok() && op->state == OpState::kSent;
      },
      kWaitMs))
      << laptop->Stats().last_connection_error;

  // Listed as revoked; the revoked id takes no token again; a wrong token is an AuthFailed, not Revoked.
  listed = DevicesJson(data_, "alice");
  ASSERT_NE(DeviceIn(listed, "phone"), nullptr);
  EXPECT_EQ(DeviceIn(listed, "phone")->at("state"), "revoked");
  EXPECT_TRUE(DeviceIn(listed, "phone")->at("revoked").is_string());
  EXPECT_EQ(RunOutpostd({"add-device", "--data", data_, "alice", "--device", "phone"}).exit_code, 1);
  auto stranger =
      Connect(context.get(), daemon_.endpoint(), "alice", "tablet", "opt_" + std::string(43, 'A'));
  ASSERT_TRUE(stranger->ExpectFrame(wire::Body::Error, &frame, kWaitMs));
  EXPECT_EQ(DecodeError(frame).session_end, wire::SessionEnd::AuthFailed) << DecodeError(frame).message;
}

TEST_F(E2ETest, RemovedUserIsCutOffAndForgotten) {
  ZmqContext context;
  auto bob = Connect(context.get(), daemon_.endpoint(), "bob", "phone", bob_phone_token_);
  std::string frame;
  ASSERT_TRUE(bob->ExpectFrame(wire::Body::Welcome, &frame, kWaitMs)) << daemon_.Log();
  auto laptop = AliceLaptop();
  ASSERT_TRUE(laptop);
  CreateStream(*laptop, "trip", {"alice"});

  const auto began = std::chrono::steady_clock::now();
  RunResult removed = RunOutpostd({"remove-user", "--data", data_, "bob"});
  ASSERT_EQ(removed.exit_code, 0) << removed.err;
  ASSERT_TRUE(bob->ExpectFrame(wire::Body::Error, &frame, 5'000)) << daemon_.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(1));
  EXPECT_EQ(DecodeError(frame).session_end, wire::SessionEnd::Revoked) << DecodeError(frame).message;

  RunResult listed = RunOutpostd({"devices", "--data", data_, "bob"});
  EXPECT_EQ(listed.exit_code, 1);
  EXPECT_NE(listed.err.find("no user"), std::string::npos) << listed.err;
  auto again = Connect(context.get(), daemon_.endpoint(), "bob", "phone", bob_phone_token_);
  ASSERT_TRUE(again->ExpectFrame(wire::Body::Error, &frame, kWaitMs));
  EXPECT_EQ(DecodeError(frame).session_end, wire::SessionEnd::AuthFailed) << DecodeError(frame).message;
  EXPECT_EQ(RunOutpostd({"remove-user", "--data", data_, "bob"}).exit_code, 1) << "gone already";
  // Alice is untouched.
  EXPECT_TRUE(laptop->Stats().connected);
  EXPECT_FALSE(Devices(data_, "alice").empty());
}

TEST(DevicesCli, BadUsesAreRefusedWithTheirReason) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_FALSE(AddUser(data, "alice", "phone").empty());
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"revoke-device", "--data", data, "alice"}, 2, "a user NAME and a DEVICE"},
      {{"revoke-device", "--data", data, "alice", "phone", "extra"}, 2, "a user NAME and a DEVICE"},
      {{"revoke-device", "--data", data, "alice", "tab\there"}, 2, "device id"},
      {{"revoke-device", "--data", data, "alice", "tablet"}, 1, "no device \"tablet\" of user \"alice\""},
      {{"revoke-device", "--data", data, "bob", "phone"}, 1, "no device"},
      {{"revoke-device", "alice", "phone"}, 2, "--data DIR is required"},
      {{"remove-user", "--data", data, "bob"}, 1, "no user"},
      {{"remove-user", "--data", data}, 2, "exactly one user NAME"},
      {{"add-device", "--data", data, "alice", "--replace"}, 2, "--replace needs --device"},
      {{"devices", "--data", data, "bob", "--json"}, 1, "no user"},
  };
  for (const Case& c : cases) {
    RunResult r = RunOutpostd(c.args);
    std::string line;
    for (const auto& a : c.args) line += a + " ";
    EXPECT_EQ(r.exit_code, c.exit_code) << line << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << line << r.err;
    EXPECT_TRUE(r.out.empty()) << line << r.out;
  }
  // --replace: the old token is gone, the device keeps its record.
  const std::string replaced = Issue(data, "alice", "phone");
  EXPECT_FALSE(replaced.empty());
  Json listed = DevicesJson(data, "alice");
  ASSERT_EQ(listed.at("devices").size(), 1u) << listed.dump();
  EXPECT_EQ(listed.at("devices")[0].at("state"), "bound");
}

// Waits for a fatal Error on `peer`; what it said, and false when none came within `timeout_ms`.
bool AwaitError(RawPeer& peer, int64_t timeout_ms, Ended* ended) {
  std::string frame;
  if (!peer.ExpectFrame(wire::Body::Error, &frame, timeout_ms)) return false;
  *ended = DecodeError(frame);
  return true;
}

// Two outpostd on one PostgreSQL database: a revocation made with --store reaches both.
TEST(DevicesInstancesE2E, RevocationReachesEveryInstanceWithinASecond) {
  std::string skip = PgTestSkipReason();
  if (!skip.empty()) GTEST_SKIP() << skip;
  TempDir dir;
  auto uri_or = CreatePgTestDatabase("e2e_devices_instances");
  ASSERT_TRUE(uri_or.ok()) << uri_or.status().ToString();
  const std::string uri = *uri_or;
  ASSERT_EQ(RunOutpostd({"migrate", "--store", uri}).exit_code, 0);
  {
    std::vector<std::unique_ptr<Daemon>> daemons;
    for (int i = 0; i < 2; ++i) {
      daemons.push_back(std::make_unique<Daemon>());
      const std::string data = dir / ("instance-" + std::to_string(i));
      std::filesystem::create_directories(data);
      std::string error;
      ASSERT_TRUE(daemons.back()->Start(data, "tcp://127.0.0.1:0", {"--store", uri}, &error)) << error;
    }
    auto issue = [&](const char* command, const std::string& device) {
      RunResult r = RunOutpostd({command, "--store", uri, "alice", "--device", device});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
      return r.out;
    };
    const std::string phone_token = issue("add-user", "phone");
    const std::string laptop_token = issue("add-device", "laptop");
    ZmqContext context;
    // The phone is connected to both instances.
    std::vector<std::unique_ptr<RawPeer>> phones;
    std::string frame;
    for (auto& d : daemons) {
      phones.push_back(Connect(context.get(), d->endpoint(), "alice", "phone", phone_token));
      ASSERT_TRUE(phones.back()->ExpectFrame(wire::Body::Welcome, &frame, kWaitMs)) << d->Log();
    }
    DeviceOptions o;
    o.user = "alice";
    o.device = "laptop";
    o.token = laptop_token;
    o.server = daemons[1]->endpoint();
    std::filesystem::create_directories(dir / "laptop");
    auto laptop = OpenDevice(dir / "laptop", o);
    ASSERT_TRUE(laptop);
    ASSERT_TRUE(WaitFor([&] { return laptop->Stats().connected; }, kWaitMs));

    const auto began = std::chrono::steady_clock::now();
    RunResult revoked = RunOutpostd({"revoke-device", "--store", uri, "alice", "phone"});
    ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
    for (size_t i = 0; i < phones.size(); ++i) {
      Ended ended;
      ASSERT_TRUE(AwaitError(*phones[i], 5'000, &ended)) << daemons[i]->Log();
      EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(1)) << "instance " << i;
      EXPECT_EQ(ended.session_end, wire::SessionEnd::Revoked) << ended.message;
      EXPECT_EQ(ended.code, Status::Code::kPermissionDenied);
    }
    // The laptop on instance 1 stays, and pushes.
    EXPECT_TRUE(laptop->Stats().connected);
    auto id = laptop->Submit("trip", kMembersKind, EncodeMembers({"alice"}));
    ASSERT_TRUE(id.ok());
    EXPECT_TRUE(WaitFor(
        [&] {
          auto op = laptop->Get(*id);
          return op.ok() && op->state == OpState::kSent;
        },
        kWaitMs));
    RunResult listed = RunOutpostd({"devices", "--store", uri, "alice", "--json"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    Json j = Json::parse(listed.out);
    ASSERT_NE(DeviceIn(j, "phone"), nullptr);
    EXPECT_EQ(DeviceIn(j, "phone")->at("state"), "revoked");
    EXPECT_EQ(DeviceIn(j, "laptop")->at("last_address"), "127.0.0.1");
    laptop.reset();
  }
  DropPgTestDatabase(uri);
}

}  // namespace
}  // namespace outpost::e2e
