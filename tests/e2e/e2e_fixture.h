// Copyright 2026 The Outpost Authors.
//
// The fixture most end-to-end tests share: a data directory with users alice (phone, laptop) and bob
// (phone), an outpostd serving it on a free loopback port, and helpers to open devices and create or
// discover streams the way an app does (an outpost.members op; the user's membership feed).
#ifndef OUTPOST_TESTS_E2E_E2E_FIXTURE_H_
#define OUTPOST_TESTS_E2E_E2E_FIXTURE_H_

#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "e2e/e2e_util.h"
#include "outpost/client.h"
#include "outpost/membership.h"

namespace outpost::e2e {

// Generous bounds: the suite also runs under ASan+UBSan on a loaded CI machine. Waits end as soon as their
// condition holds, so the bounds cost nothing when things work.
using harness::kWaitMs;  // 30 s
inline constexpr int64_t kLongWaitMs = 90'000;

class E2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = dir_ / "data";
    alice_phone_token_ = AddUser(data_, "alice");
    alice_laptop_token_ = AddDevice(data_, "alice");
    bob_phone_token_ = AddUser(data_, "bob");
    ASSERT_FALSE(alice_phone_token_.empty() || alice_laptop_token_.empty() || bob_phone_token_.empty());
    std::string error;
    ASSERT_TRUE(daemon_.Start(data_, "tcp://127.0.0.1:0", ServerFlags(), &error)) << error;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "---- outpostd log ----\n" << daemon_.Log() << "----\n";
  }

  // Extra flags for outpostd in SetUp.
  virtual std::vector<std::string> ServerFlags() { return {}; }

  std::unique_ptr<Client> Open(const std::string& user, const std::string& device, const std::string& token) {
    DeviceOptions o;
    o.user = user;
    o.device = device;
    o.token = token;
    o.server = daemon_.endpoint();
    return OpenDevice(dir_.path(), o);
  }
  std::unique_ptr<Client> AlicePhone() { return Open("alice", "phone", alice_phone_token_); }
  std::unique_ptr<Client> AliceLaptop() { return Open("alice", "laptop", alice_laptop_token_); }
  std::unique_ptr<Client> BobPhone() { return Open("bob", "phone", bob_phone_token_); }

  // Creates `stream` with `members` from `device` (its first op) and waits until the server applied it.
  // Waiting matters: a device that pulls a stream before it exists is refused, is not registered as a
  // follower, and is never told about the stream later (until it reconnects).
  static void CreateStream(Client& device, const std::string& stream,
                           const std::vector<std::string>& members) {
    auto id = device.Submit(stream, kMembersKind, EncodeMembers(members));
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ASSERT_TRUE(WaitFor(
        [&] {
          auto op = device.Get(*id);
          return op.ok() && op->state != OpState::kPending;
        },
        kWaitMs))
        << "creating " << stream << ": no answer; " << device.Stats().last_connection_error;
    ASSERT_EQ(device.Get(*id)->state, OpState::kSent) << device.Get(*id)->last_error;
  }

  // Follows `stream` once `device` is connected. A Follow made while the device's Hello is in flight is
  // lost until the next reconnect (FollowDuringHandshakeIsNotLost shows it): waiting keeps the other tests
  // about what they test.
  static void FollowConnected(Client& device, const std::string& stream) {
    ASSERT_TRUE(WaitFor([&] { return device.Stats().connected; }, kWaitMs))
        << device.user() << "/" << device.device()
        << " never connected: " << device.Stats().last_connection_error;
    ASSERT_TRUE(device.Follow(stream).ok());
  }

  // Follows `user`'s membership feed on `device` until it lists `stream`, then follows `stream`.
  static void Discover(Client& device, const std::string& user, const std::string& stream) {
    FollowConnected(device, FeedStream(user));
    const bool joined = WaitFor(
        [&] {
          auto ops = device.Latest(FeedStream(user), 1000);
          if (!ops.ok()) return false;
          for (const auto& op : *ops) {
            if (op.kind == kJoinedKind && op.payload == stream) return true;
          }
          return false;
        },
        kWaitMs);
    if (!joined) {
      std::string feed;
      auto ops = device.Latest(FeedStream(user), 1000);
      if (ops.ok()) {
        for (const auto& op : *ops) feed += " [" + op.kind + " " + op.payload + "]";
      }
      FAIL() << user << "'s feed never listed " << stream << " (feed:" << feed << ", cursor "
             << CursorOf(device, FeedStream(user))
             << "); last connection error: " << device.Stats().last_connection_error;
    }
    FollowConnected(device, stream);
  }

  TempDir dir_;
  std::string data_;
  std::string alice_phone_token_, alice_laptop_token_, bob_phone_token_;
  Daemon daemon_;
};

}  // namespace outpost::e2e

#endif  // OUTPOST_TESTS_E2E_E2E_FIXTURE_H_
