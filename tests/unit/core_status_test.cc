// Copyright 2026 The Outpost Authors.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::OK().ok());
}

TEST(StatusTest, ErrorsCarryCodeAndMessage) {
  Status s = Status::NotFound("no such op");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_EQ(s.message(), "no such op");
  EXPECT_EQ(s.ToString(), "NotFound: no such op");
  EXPECT_EQ(Status::Corruption("").ToString(), "Corruption");
}

TEST(StatusTest, EveryCodeHasAName) {
  for (int c = 0; c <= static_cast<int>(Status::Code::kAlreadyExists); ++c) {
    EXPECT_NE(Status::CodeName(static_cast<Status::Code>(c)), "Unknown") << c;
  }
  EXPECT_EQ(Status::FromCode(Status::Code::kConflict, "x").ToString(), "Conflict: x");
  EXPECT_EQ(Status::AlreadyExists("k").ToString(), "AlreadyExists: k");
  EXPECT_TRUE(Status::AlreadyExists("k").IsAlreadyExists());
  EXPECT_FALSE(Status::AlreadyExists("k").IsTransient());
  EXPECT_FALSE(Status::Conflict("k").IsAlreadyExists());
}

TEST(StatusTest, TransientCodes) {
  EXPECT_TRUE(Status::Busy("b").IsTransient());
  EXPECT_TRUE(Status::Unavailable("u").IsTransient());
  EXPECT_TRUE(Status::Timeout("t").IsTransient());
  EXPECT_TRUE(Status::IOError("io").IsTransient());
  EXPECT_FALSE(Status::InvalidArgument("bad").IsTransient());
  EXPECT_FALSE(Status::PermissionDenied("no").IsTransient());
  EXPECT_FALSE(Status::OK().IsTransient());
}

Status FailIf(bool fail) { return fail ? Status::Aborted("stop") : Status::OK(); }

Status TwoSteps(bool fail_first, int* reached) {
  OUTPOST_RETURN_IF_ERROR(FailIf(fail_first));
  ++*reached;
  return Status::OK();
}

TEST(StatusTest, ReturnIfError) {
  int reached = 0;
  EXPECT_TRUE(TwoSteps(false, &reached).ok());
  EXPECT_EQ(reached, 1);
  Status s = TwoSteps(true, &reached);
  EXPECT_EQ(s.code(), Status::Code::kAborted);
  EXPECT_EQ(reached, 1);
}

TEST(ResultTest, HoldsValue) {
  Result<std::string> r = std::string("hello");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(r->size(), 5u);
  std::string moved = std::move(r).value();
  EXPECT_EQ(moved, "hello");
}

TEST(ResultTest, HoldsError) {
  Result<int> r = Status::NotFound("gone");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_EQ(r.status().message(), "gone");
}

TEST(ResultTest, MoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> r = Status::Timeout("late");
  EXPECT_DEATH(static_cast<void>(r.value()), "value\\(\\) of an error Result: Timeout: late");
}

TEST(ResultDeathTest, OkStatusWithoutValueAborts) {
  EXPECT_DEATH(static_cast<void>(Result<int>(Status::OK())), "without a value");
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

// Two OUTPOST_ASSIGN_OR_RETURN in one function check that their temporaries do not collide.
Result<int> Quarter(int x) {
  OUTPOST_ASSIGN_OR_RETURN(int half, Half(x));
  OUTPOST_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status AssignExisting(int x, int* out) {
  OUTPOST_ASSIGN_OR_RETURN(*out, Half(x));
  return Status::OK();
}

TEST(ResultTest, AssignOrReturn) {
  Result<int> ok = Quarter(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 2);

  Result<int> first = Quarter(3);
  EXPECT_EQ(first.status().code(), Status::Code::kInvalidArgument);
  Result<int> second = Quarter(6);  // 6 → 3 → odd
  EXPECT_EQ(second.status().message(), "odd");

  int out = -1;
  EXPECT_TRUE(AssignExisting(10, &out).ok());
  EXPECT_EQ(out, 5);
  EXPECT_FALSE(AssignExisting(7, &out).ok());
  EXPECT_EQ(out, 5);
}

}  // namespace
}  // namespace outpost
