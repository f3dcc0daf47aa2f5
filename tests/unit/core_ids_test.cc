// Copyright 2026 The Outpost Authors.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "outpost/env.h"
#include "outpost/ids.h"

namespace outpost {
namespace {

int Version(const OpId& id) { return id.bytes[6] >> 4; }
int Variant(const OpId& id) { return id.bytes[8] >> 6; }
int Counter(const OpId& id) { return ((id.bytes[6] & 0x0F) << 8) | id.bytes[7]; }

TEST(OpIdTest, NilByDefault) {
  OpId id;
  EXPECT_TRUE(id.IsNil());
  EXPECT_EQ(id.ToString(), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(id.TimestampMs(), 0);
  id.bytes[15] = 1;
  EXPECT_FALSE(id.IsNil());
}

TEST(OpIdTest, FormatsCanonicalLowercase) {
  OpId id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(i * 17);  // 00 11 22 ... ff
  EXPECT_EQ(id.ToString(), "00112233-4455-6677-8899-aabbccddeeff");
}

TEST(OpIdTest, ParseRoundTrips) {
  const std::string text = "018f3a2b-7c4d-7e5f-8a6b-0c1d2e3f4a5b";
  Result<OpId> id = OpId::Parse(text);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->ToString(), text);
  EXPECT_EQ(id->TimestampMs(), 0x018f3a2b7c4d);
  EXPECT_EQ(Version(*id), 7);
  EXPECT_EQ(Variant(*id), 2);
}

TEST(OpIdTest, ParseAcceptsUppercase) {
  Result<OpId> upper = OpId::Parse("018F3A2B-7C4D-7E5F-8A6B-0C1D2E3F4A5B");
  ASSERT_TRUE(upper.ok()) << upper.status().ToString();
  EXPECT_EQ(upper->ToString(), "018f3a2b-7c4d-7e5f-8a6b-0c1d2e3f4a5b");
}

TEST(OpIdTest, ParseAcceptsNil) {
  Result<OpId> nil = OpId::Parse("00000000-0000-0000-0000-000000000000");
  ASSERT_TRUE(nil.ok());
  EXPECT_TRUE(nil->IsNil());
}

void ExpectBad(std::string_view text, std::string_view why) {
  Result<OpId> id = OpId::Parse(text);
  ASSERT_FALSE(id.ok()) << "accepted \"" << text << "\"";
  EXPECT_EQ(id.status().code(), Status::Code::kInvalidArgument) << text;
  EXPECT_NE(id.status().message().find(why), std::string::npos)
      << "\"" << text << "\" → " << id.status().ToString() << " (wanted \"" << why << "\")";
}

TEST(OpIdTest, ParseRejectsBadText) {
  ExpectBad("", "36 characters");
  ExpectBad("018f3a2b-7c4d-7e5f-8a6b-0c1d2e3f4a5", "36 characters");
  ExpectBad("018f3a2b-7c4d-7e5f-8a6b-0c1d2e3f4a5b0", "36 characters");
  ExpectBad("018f3a2b7c4d7e5f8a6b0c1d2e3f4a5b", "36 characters");  // no dashes
  ExpectBad("{18f3a2b-7c4d-7e5f-8a6b-0c1d2e3f4a5b}", "36 characters");
  ExpectBad("018f3a2b07c4d-7e5f-8a6b-0c1d2e3f4a5b", "'-' at position 8");
  ExpectBad("018f3a2b-7c4d07e5f-8a6b-0c1d2e3f4a5b", "'-' at position 13");
  ExpectBad("018f3a2b-7c4d-7e5fx8a6b-0c1d2e3f4a5b", "'-' at position 18");
  ExpectBad("018f3a2b-7c4d-7e5f-8a6b00c1d2e3f4a5b", "'-' at position 23");
  ExpectBad("018f3a-b-7c4d-7e5f-8a6b-0c1d2e3f4a5b", "non-hex character at position 6");
  ExpectBad("018f3a2g-7c4d-7e5f-8a6b-0c1d2e3f4a5b", "non-hex character at position 7");
  ExpectBad("018f3a2b-7c4d-7e5f-8a6b-0c1d2e3f4a5 ", "non-hex character at position 35");
  ExpectBad(std::string_view("018f3a2b-7c4d-7e5f-8a6b-0c1d2e3f4a5\0", 36), "non-hex");
}

TEST(OpIdTest, FromBytes) {
  std::string raw(16, '\0');
  for (int i = 0; i < 16; ++i) raw[i] = static_cast<char>(0xf0 + i);
  Result<OpId> id = OpId::FromBytes(raw);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->AsBytes(), raw);
  EXPECT_EQ(id->ToString(), "f0f1f2f3-f4f5-f6f7-f8f9-fafbfcfdfeff");

  for (size_t n : {0, 15, 17, 36}) {
    Result<OpId> bad = OpId::FromBytes(std::string(n, 'a'));
    ASSERT_FALSE(bad.ok()) << n;
    EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(bad.status().message().find("16 bytes"), std::string::npos);
  }
}

TEST(OpIdGeneratorTest, LayoutIsUuidV7) {
  ManualEnv env(1, 0x0123456789AB);
  OpIdGenerator gen(&env);
  for (int i = 0; i < 1000; ++i) {
    OpId id = gen.Next();
    EXPECT_EQ(Version(id), 7);
    EXPECT_EQ(Variant(id), 2);
    EXPECT_FALSE(id.IsNil());
    EXPECT_EQ(id.ToString()[14], '7');
    Result<OpId> back = OpId::Parse(id.ToString());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, id);
    Result<OpId> raw = OpId::FromBytes(id.AsBytes());
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(*raw, id);
    env.AdvanceMs(i % 3 == 0 ? 1 : 0);
  }
}

TEST(OpIdGeneratorTest, TimestampFollowsClock) {
  ManualEnv env(1, 1'700'000'000'123);
  OpIdGenerator gen(&env);
  EXPECT_EQ(gen.Next().TimestampMs(), 1'700'000'000'123);
  env.AdvanceMs(5);
  EXPECT_EQ(gen.Next().TimestampMs(), 1'700'000'000'128);
}

TEST(OpIdGeneratorTest, CounterStartsLowOnANewMillisecondAndCountsUp) {
  ManualEnv env(9);
  OpIdGenerator gen(&env);
  for (int ms = 0; ms < 200; ++ms) {
    OpId first = gen.Next();
    EXPECT_LT(Counter(first), 2048);
    OpId second = gen.Next();
    EXPECT_EQ(Counter(second), Counter(first) + 1);
    EXPECT_EQ(second.TimestampMs(), first.TimestampMs());
    env.AdvanceMs(1);
  }
}

TEST(OpIdGeneratorTest, RandomBitsDiffer) {
  ManualEnv env(5);
  OpIdGenerator gen(&env);
  std::unordered_set<OpId, OpIdHash> seen;
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(seen.insert(gen.Next()).second);
}

// Checks that each id is strictly above the one before, bytewise and as text.
void ExpectStrictlyIncreasing(const std::vector<OpId>& ids) {
  for (size_t i = 1; i < ids.size(); ++i) {
    ASSERT_LT(ids[i - 1], ids[i]) << "at " << i << ": " << ids[i - 1].ToString() << " !< "
                                  << ids[i].ToString();
    ASSERT_LT(ids[i - 1].ToString(), ids[i].ToString()) << i;
    ASSERT_LT(ids[i - 1].AsBytes(), ids[i].AsBytes()) << i;
  }
}

TEST(OpIdGeneratorTest, MonotonicWithFrozenClock) {
  constexpr int64_t kStart = 1'800'000'000'000;
  ManualEnv env(11, kStart);  // never advanced: 100k ids in "one millisecond"
  OpIdGenerator gen(&env);
  std::vector<OpId> ids;
  ids.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) ids.push_back(gen.Next());
  ExpectStrictlyIncreasing(ids);
  // At least 2048 ids fit in each millisecond, so 100k ids borrow at most ~49 of them.
  EXPECT_EQ(ids.front().TimestampMs(), kStart);
  EXPECT_GT(ids.back().TimestampMs(), kStart);
  EXPECT_LE(ids.back().TimestampMs(), kStart + 100'000 / 2048 + 1);
}

TEST(OpIdGeneratorTest, MonotonicWithBurstsAndSteps) {
  ManualEnv env(12);
  OpIdGenerator gen(&env);
  std::vector<OpId> ids;
  ids.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) {
    ids.push_back(gen.Next());
    if (i % 5000 == 0) {
      env.AdvanceMs(-30);  // NTP step back
    } else if (i % 700 == 0) {
      env.AdvanceMs(1);  // bursts of 700 per millisecond
    }
  }
  ExpectStrictlyIncreasing(ids);
}

TEST(OpIdGeneratorTest, ClockSteppingBackKeepsLastTimestamp) {
  ManualEnv env(13, 10'000);
  OpIdGenerator gen(&env);
  OpId before = gen.Next();
  env.SetNowMs(5'000);
  OpId after = gen.Next();
  EXPECT_LT(before, after);
  EXPECT_EQ(after.TimestampMs(), 10'000);
  EXPECT_EQ(Counter(after), Counter(before) + 1);
  env.SetNowMs(10'001);
  OpId caught_up = gen.Next();
  EXPECT_EQ(caught_up.TimestampMs(), 10'001);
  EXPECT_LT(after, caught_up);
}

TEST(OpIdGeneratorTest, CounterOverflowBorrowsNextMillisecond) {
  ManualEnv env(14, 20'000);
  OpIdGenerator gen(&env);
  OpId prev = gen.Next();
  int borrowed_at = -1;
  for (int i = 1; i <= 4096 && borrowed_at < 0; ++i) {
    OpId id = gen.Next();
    ASSERT_LT(prev, id);
    if (id.TimestampMs() != prev.TimestampMs()) {
      EXPECT_EQ(Counter(prev), 0xFFF);
      EXPECT_EQ(id.TimestampMs(), 20'001);
      EXPECT_LT(Counter(id), 2048);
      borrowed_at = i;
    }
    prev = id;
  }
  EXPECT_GE(borrowed_at, 2048);
  // The real clock reaching the borrowed millisecond does not reuse it.
  env.SetNowMs(20'001);
  OpId next = gen.Next();
  EXPECT_LT(prev, next);
  EXPECT_EQ(next.TimestampMs(), 20'001);
}

TEST(OpIdGeneratorTest, SameSeedSameIds) {
  ManualEnv a(77);
  ManualEnv b(77);
  OpIdGenerator ga(&a);
  OpIdGenerator gb(&b);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(ga.Next(), gb.Next());
}

TEST(OpIdGeneratorTest, ThreadSafeAndUnique) {
  ManualEnv env(15);
  OpIdGenerator gen(&env);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10'000;
  std::vector<std::vector<OpId>> made(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      made[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) made[t].push_back(gen.Next());
    });
  }
  for (auto& t : threads) t.join();
  std::unordered_set<OpId, OpIdHash> all;
  for (const auto& ids : made) {
    ExpectStrictlyIncreasing(ids);  // each thread sees its own ids in order
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(OpIdGeneratorTest, SystemEnvIdsIncrease) {
  OpIdGenerator gen(SystemEnv());
  std::vector<OpId> ids;
  ids.reserve(10'000);
  for (int i = 0; i < 10'000; ++i) ids.push_back(gen.Next());
  ExpectStrictlyIncreasing(ids);
}

}  // namespace
}  // namespace outpost
