// Copyright 2026 The Outpost Authors.
//
// The task list adapter (adapters/tasks) against a real server core with membership on, over the in-process
// transport on the manual clock: one device's edits, bad input, two users editing one list offline and
// converging, each conflict rule of tasks.h, membership and the feed, payloads from a raw client that the
// fold skips, failed edits (Retry, Discard), a restart, and the change events.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "outpost/membership.h"
#include "outpost/server.h"
#include "outpost/tasks/tasks.h"
#include "testing/cluster.h"
#include "testing/wait.h"
#include "unit/tasks_harness.h"

namespace outpost::tasks {
namespace {

using testing::FreshFold;
using testing::Render;

class TasksTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }

  void StartServer(std::function<Status(const AccessRequest&)> authorize = {}) {
    ServerOptions so;
    so.membership = true;
    so.authorize = std::move(authorize);
    Status st = cluster_.StartServer(so);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  Tasks& Open(const std::string& user, const std::string& device) {
    auto t = Tasks::Open(cluster_.DeviceOptions(user, device));
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok()) std::abort();
    devices_.push_back(std::move(t).value());
    return *devices_.back();
  }
  // Closes `t` (its store stays) and opens it again.
  Tasks& Reopen(Tasks& t) {
    const std::string user = t.user(), device = t.client().device();
    for (auto it = devices_.begin(); it != devices_.end(); ++it) {
      if (it->get() == &t) {
        devices_.erase(it);
        break;
      }
    }
    return Open(user, device);
  }

  // One round on the manual clock: every device steps, the server, every device again.
  void Pump(int rounds = 1) {
    for (int i = 0; i < rounds; ++i) {
      cluster_.clock().AdvanceMs(10);
      for (auto& d : devices_) ASSERT_TRUE(d->client().Step().ok());
      for (auto& c : cluster_.devices()) ASSERT_TRUE(c->Step().ok());
      cluster_.server().Step();
      for (auto& d : devices_) ASSERT_TRUE(d->client().Step().ok());
      for (auto& c : cluster_.devices()) ASSERT_TRUE(c->Step().ok());
    }
  }
  // Pumps until `done` holds; false after 3000 rounds.
  bool PumpUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 3000; ++i) {
      if (done()) return true;
      Pump();
    }
    return done();
  }
  bool Settle() {
    return PumpUntil([&] {
      for (auto& d : devices_) {
        if (!d->client().IsIdle()) return false;
      }
      for (auto& c : cluster_.devices()) {
        if (!c->IsIdle()) return false;
      }
      return true;
    });
  }

  // Until `t` alone is idle (others may be offline with edits waiting).
  bool SettleOne(Tasks& t) {
    return PumpUntil([&] { return t.client().IsIdle(); });
  }

  static TaskList GetList(Tasks& t, const std::string& list) {
    auto got = t.Get(list);
    EXPECT_TRUE(got.ok()) << t.user() << ": " << got.status().ToString();
    return got.ok() ? *got : TaskList{};
  }
  static std::vector<std::string> Titles(Tasks& t, const std::string& list) {
    std::vector<std::string> out;
    for (const Task& task : GetList(t, list).tasks) out.push_back(task.title + (task.done ? "+" : ""));
    return out;
  }
  static OpId Must(Result<OpId> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : OpId{};
  }

  // The server's order of `list`, folded from scratch by a new device of `member` that made none of its ops.
  std::string ServerFold(const std::string& list, const std::string& member) {
    Client& reader = cluster_.AddDevice(member, "reader-" + std::to_string(++readers_));
    EXPECT_TRUE(reader.Follow(list).ok());
    EXPECT_TRUE(Settle());
    uint64_t ops = 0;
    auto fold = FreshFold(reader, list, &ops);
    EXPECT_TRUE(fold.ok()) << fold.status().ToString();
    EXPECT_GT(ops, 2u) << "the reader got none of the list's ops";
    return fold.ok() ? *fold : "";
  }

  // Alice's list "l" with tasks a, b, c, shared with bob (both devices synced).
  void ThreeTasks(Tasks& alice, Tasks& bob) {
    Must(alice.CreateList("l", "List", {"bob"}));
    a_ = Must(alice.Add("l", "a"));
    b_ = Must(alice.Add("l", "b"));
    c_ = Must(alice.Add("l", "c"));
    ASSERT_TRUE(PumpUntil([&] { return bob.Get("l").ok() && bob.Get("l")->tasks.size() == 3; }));
    ASSERT_TRUE(Settle());
  }

  harness::Cluster cluster_{{.name = "tasks-test"}};
  std::vector<std::unique_ptr<Tasks>> devices_;
  int readers_ = 0;
  OpId a_, b_, c_;
};

TEST_F(TasksTest, OneDeviceEditsShowAtOnceAndStayAfterSync) {
  Tasks& alice = Open("alice", "phone");
  Must(alice.CreateList("l", "Groceries", {}));
  const OpId milk = Must(alice.Add("l", "milk"));
  const OpId eggs = Must(alice.Add("l", "eggs"));
  const OpId tea = Must(alice.Add("l", "tea", milk));  // after milk
  Must(alice.Complete("l", eggs));
  Must(alice.Rename("l", tea, "green tea"));
  Must(alice.Move("l", eggs, OpId{}));  // first
  TaskList before = GetList(alice, "l");
  EXPECT_EQ(before.title, "Groceries");
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"eggs+", "milk", "green tea"}));
  for (const Task& t : before.tasks) EXPECT_TRUE(t.pending) << t.title;
  EXPECT_EQ(before.tasks[1].id, milk);
  EXPECT_EQ(before.tasks[1].author, "alice");

  ASSERT_TRUE(Settle());
  TaskList after = GetList(alice, "l");
  EXPECT_EQ(Render(after, false), Render(before, false));
  for (const Task& t : after.tasks) EXPECT_FALSE(t.pending) << t.title;
  EXPECT_EQ(after.members, (std::vector<std::string>{"alice"}));
  EXPECT_GT(after.folded_seq, 0u);
  EXPECT_TRUE(after.failed.empty());

  Must(alice.Remove("l", milk));
  Must(alice.Reopen("l", eggs));
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"eggs", "green tea"}));
  ASSERT_TRUE(Settle());
  EXPECT_EQ(Render(GetList(alice, "l"), false), ServerFold("l", "alice"));

  auto lists = alice.Lists();
  ASSERT_TRUE(lists.ok()) << lists.status().ToString();
  ASSERT_EQ(lists->size(), 1u);
  EXPECT_EQ((*lists)[0].id, "l");
  EXPECT_EQ((*lists)[0].title, "Groceries");
  EXPECT_EQ((*lists)[0].tasks, 2u);
  EXPECT_EQ((*lists)[0].done, 0u);
}

TEST_F(TasksTest, BadInputGetsClearErrors) {
  Tasks& alice = Open("alice", "phone");
  Must(alice.CreateList("l", "List", {}));
  const OpId t = Must(alice.Add("l", "t"));
  auto code = [](const Result<OpId>& r) { return r.ok() ? Status::Code::kOk : r.status().code(); };
  EXPECT_EQ(code(alice.Add("l", "")), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Add("l", std::string(kTitleBytesMax + 1, 'x'))), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Add("l", std::string(kTitleBytesMax, 'x'))), Status::Code::kOk);
  EXPECT_EQ(code(alice.Add("l", "two\nlines")), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Add("l", "bad \xff utf-8")), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Add("l", "x", Must(OpId::Parse("01890a5d-ac96-774b-bcce-b302099a8057")))),
            Status::Code::kNotFound);
  EXPECT_EQ(code(alice.Add("nope", "x")), Status::Code::kNotFound);
  EXPECT_EQ(code(alice.Add("@alice", "x")), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Add("", "x")), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Complete("l", OpId{})), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Rename("l", t, "")), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.Move("l", t, t)), Status::Code::kInvalidArgument);
  const OpId stranger = Must(OpId::Parse("01890a5d-ac96-774b-bcce-b302099a8057"));
  auto unknown = alice.Complete("l", stranger);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Status::Code::kNotFound);
  EXPECT_NE(unknown.status().message().find(stranger.ToString()), std::string::npos)
      << unknown.status().ToString();
  EXPECT_EQ(code(alice.Move("l", t, stranger)), Status::Code::kNotFound);
  Must(alice.Remove("l", t));
  EXPECT_EQ(code(alice.Rename("l", t, "again")), Status::Code::kNotFound);  // removed
  EXPECT_EQ(alice.Get("nope").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(code(alice.CreateList("m", "", {})), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.CreateList("m", "M", {"bad name"})), Status::Code::kInvalidArgument);
  EXPECT_EQ(code(alice.CreateList("@m", "M", {})), Status::Code::kInvalidArgument);
  ClientOptions no_user = cluster_.DeviceOptions("", "x");
  EXPECT_EQ(Tasks::Open(no_user).status().code(), Status::Code::kInvalidArgument);
}

TEST_F(TasksTest, TwoUsersEditOfflineThenConvergeToTheServersOrder) {
  Tasks& alice = Open("alice", "phone");
  Tasks& bob = Open("bob", "laptop");
  ThreeTasks(alice, bob);
  alice.client().SetOnline(false);
  bob.client().SetOnline(false);
  Pump(5);
  Must(alice.Rename("l", a_, "alice's a"));
  Must(alice.Complete("l", b_));
  Must(alice.Move("l", c_, OpId{}));
  const OpId x = Must(alice.Add("l", "x", a_));
  Must(bob.Rename("l", a_, "bob's a"));
  Must(bob.Remove("l", b_));
  Must(bob.Add("l", "y", a_));
  Must(bob.Move("l", a_, c_));
  // Each sees its own edits at once.
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"c", "alice's a", "x", "b+"}));
  EXPECT_EQ(Titles(bob, "l"), (std::vector<std::string>{"y", "c", "bob's a"}));
  alice.client().SetOnline(true);
  ASSERT_TRUE(SettleOne(alice));
  bob.client().SetOnline(true);
  ASSERT_TRUE(Settle());
  Pump(20);
  // Alice's edits came first, bob's after: bob's rename wins, b is removed, bob's move of a puts it after c.
  const std::string fold = ServerFold("l", "bob");
  EXPECT_EQ(Render(GetList(alice, "l")), fold);
  EXPECT_EQ(Render(GetList(bob, "l")), fold);
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"c", "bob's a", "y", "x"}));
  (void)x;
}

// ---- The conflict rules of tasks.h, each with the two edits ordered alice's first, then bob's. ----

class TasksConflictTest : public TasksTest {
 protected:
  // Both go offline, `first` runs on alice and `second` on bob; alice syncs, then bob.
  void Race(const std::function<void(Tasks&)>& first, const std::function<void(Tasks&)>& second) {
    alice_ = &Open("alice", "phone");
    bob_ = &Open("bob", "laptop");
    ThreeTasks(*alice_, *bob_);
    alice_->client().SetOnline(false);
    bob_->client().SetOnline(false);
    Pump(5);
    first(*alice_);
    second(*bob_);
    alice_->client().SetOnline(true);
    ASSERT_TRUE(SettleOne(*alice_));
    bob_->client().SetOnline(true);
    ASSERT_TRUE(Settle());
    const std::string fold = ServerFold("l", "alice");
    EXPECT_EQ(Render(GetList(*alice_, "l")), fold);
    EXPECT_EQ(Render(GetList(*bob_, "l")), fold);
  }
  Tasks* alice_ = nullptr;
  Tasks* bob_ = nullptr;
};

TEST_F(TasksConflictTest, LastRenameBySeqWins) {
  Race([&](Tasks& t) { Must(t.Rename("l", a_, "first")); },
       [&](Tasks& t) { Must(t.Rename("l", a_, "second")); });
  EXPECT_EQ(Titles(*alice_, "l"), (std::vector<std::string>{"second", "b", "c"}));
}

TEST_F(TasksConflictTest, LastCompleteOrReopenBySeqWins) {
  Race([&](Tasks& t) { Must(t.Complete("l", a_)); },
       [&](Tasks& t) {
         Must(t.Complete("l", a_));
         Must(t.Reopen("l", a_));
         Must(t.Complete("l", b_));
       });
  EXPECT_EQ(Titles(*alice_, "l"), (std::vector<std::string>{"a", "b+", "c"}));
}

TEST_F(TasksConflictTest, RemoveWinsOverLaterEdits) {
  Race([&](Tasks& t) { Must(t.Remove("l", b_)); },
       [&](Tasks& t) {
         Must(t.Rename("l", b_, "renamed"));
         Must(t.Complete("l", b_));
         Must(t.Move("l", b_, OpId{}));
         EXPECT_EQ(Titles(t, "l"), (std::vector<std::string>{"renamed+", "a", "c"}));  // optimistic
       });
  EXPECT_EQ(Titles(*bob_, "l"), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(GetList(*bob_, "l").invalid_ops, 0u);  // no-ops, not invalid
}

TEST_F(TasksConflictTest, MoveRelativeToARemovedAnchorKeepsThePlace) {
  Race([&](Tasks& t) { Must(t.Remove("l", a_)); }, [&](Tasks& t) { Must(t.Move("l", c_, a_)); });
  EXPECT_EQ(Titles(*alice_, "l"), (std::vector<std::string>{"b", "c"}));
}

TEST_F(TasksConflictTest, MoveFirstAndAfterBothApplyInOrder) {
  Race([&](Tasks& t) { Must(t.Move("l", c_, OpId{})); }, [&](Tasks& t) { Must(t.Move("l", a_, c_)); });
  // c first (alice), then a after c (bob).
  EXPECT_EQ(Titles(*alice_, "l"), (std::vector<std::string>{"c", "a", "b"}));
}

TEST_F(TasksConflictTest, AddAfterARemovedAnchorGoesToTheEnd) {
  Race([&](Tasks& t) { Must(t.Remove("l", a_)); }, [&](Tasks& t) { Must(t.Add("l", "x", a_)); });
  EXPECT_EQ(Titles(*alice_, "l"), (std::vector<std::string>{"b", "c", "x"}));
}

TEST_F(TasksTest, OpsOnUnknownTasksAndBadPayloadsAreSkipped) {
  Tasks& alice = Open("alice", "phone");
  Tasks& bob = Open("bob", "laptop");
  ThreeTasks(alice, bob);
  const std::string before = Render(GetList(alice, "l"));
  // A member writing past the adapter, with the raw client.
  Client& raw = bob.client();
  const std::string stranger = "01890a5d-ac96-774b-bcce-b302099a8057";
  const std::string a = a_.ToString();
  // No-ops (well-formed, about tasks this list does not have).
  for (const char* kind : {"tasks.complete", "tasks.reopen", "tasks.remove"})
    Must(raw.Submit("l", kind, stranger));
  Must(raw.Submit("l", "tasks.rename", stranger + "\nx"));
  Must(raw.Submit("l", "tasks.move", stranger + "\n"));
  Must(raw.Submit("l", "tasks.move", a + "\n" + stranger));
  // Malformed: each is counted.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"tasks.add", "no newline"},
      {"tasks.add", "\n"},
      {"tasks.add", "zzz\ntitle"},
      {"tasks.add", "\n" + std::string(kTitleBytesMax + 1, 'x')},
      {"tasks.complete", "xyz"},
      {"tasks.complete", a + "\n"},
      {"tasks.reopen", std::string(36, '0')},
      {"tasks.rename", a + "\n"},
      {"tasks.rename", a},
      {"tasks.rename", a + "\nbad\x01title"},
      {"tasks.move", a},
      {"tasks.move", a + "\nnot-an-id"},
      {"tasks.remove", std::string("\0\xff\xfe", 3)},
      {"tasks.title", std::string(600, 'y')},
      {"tasks.frobnicate", "x"},
  };
  for (const auto& [kind, payload] : bad) Must(raw.Submit("l", kind, payload));
  Must(raw.Submit("l", "chat.message", "another adapter's op: ignored, not counted"));
  ASSERT_TRUE(Settle());
  TaskList list = GetList(alice, "l");
  EXPECT_EQ(Render(list), before);
  EXPECT_EQ(list.invalid_ops, bad.size());
  EXPECT_EQ(GetList(bob, "l").invalid_ops, bad.size());
  EXPECT_EQ(Render(GetList(bob, "l")), before);
  // The list still works.
  Must(alice.Rename("l", a_, "still fine"));
  ASSERT_TRUE(Settle());
  EXPECT_EQ(Titles(bob, "l")[0], "still fine");
}

TEST_F(TasksTest, MembershipRefusesOutsidersAndNewMembersFindTheList) {
  Tasks& alice = Open("alice", "phone");
  Tasks& carol = Open("carol", "phone");
  Tasks& dave = Open("dave", "tablet");
  Must(alice.CreateList("l", "Team", {}));
  Must(alice.Add("l", "secret"));
  ASSERT_TRUE(Settle());
  // Carol is no member: her device does not see the list, and an op she forces on it is refused.
  EXPECT_EQ(carol.Get("l").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(carol.Add("l", "x").status().code(), Status::Code::kNotFound);
  const OpId forced = Must(carol.client().Submit("l", std::string(kAddKind), "\nhack"));
  ASSERT_TRUE(Settle());
  TaskList carols = GetList(carol, "l");
  ASSERT_EQ(carols.failed.size(), 1u);  // reported, not applied
  EXPECT_EQ(carols.failed[0].op_id, forced);
  EXPECT_NE(carols.failed[0].error.find("forbidden"), std::string::npos) << carols.failed[0].error;
  EXPECT_TRUE(carols.tasks.empty());
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"secret"}));
  ASSERT_TRUE(carol.Discard(forced).ok());
  EXPECT_EQ(carol.Get("l").status().code(), Status::Code::kNotFound);

  // Dave is added: his device finds the list through his feed, with everything in it, and can edit.
  EXPECT_TRUE(dave.Lists().ok() && dave.Lists()->empty());
  Must(alice.CreateList("l", "Team", {"dave"}));
  ASSERT_TRUE(PumpUntil([&] { return dave.Get("l").ok() && dave.Get("l")->tasks.size() == 1; }));
  auto lists = dave.Lists();
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->size(), 1u);
  EXPECT_EQ((*lists)[0].title, "Team");
  EXPECT_EQ(GetList(dave, "l").members, (std::vector<std::string>{"alice", "dave"}));
  Must(dave.Complete("l", GetList(dave, "l").tasks[0].id));
  ASSERT_TRUE(Settle());
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"secret+"}));
}

TEST_F(TasksTest, FailedEditsAreReportedNotAppliedThenRetriedOrDiscarded) {
  cluster_.StopServer();
  StartServer([](const AccessRequest& r) {
    if (r.access == Access::kPush && r.payload.size() >= 6 &&
        r.payload.substr(r.payload.size() - 6) == "\nnope!")
      return Status::PermissionDenied("not allowed here");
    return Status::OK();
  });
  Tasks& alice = Open("alice", "phone");
  Must(alice.CreateList("l", "List", {}));
  const OpId t = Must(alice.Add("l", "t"));
  const OpId rename = Must(alice.Rename("l", t, "nope!"));
  const OpId add = Must(alice.Add("l", "nope!"));
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"nope!", "nope!"}));  // optimistic
  ASSERT_TRUE(Settle());
  TaskList list = GetList(alice, "l");
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"t"}));
  ASSERT_EQ(list.failed.size(), 2u);
  EXPECT_EQ(list.failed[0].op_id, rename);
  EXPECT_EQ(list.failed[0].kind, kRenameKind);
  EXPECT_EQ(list.failed[0].task, t);
  EXPECT_NE(list.failed[0].error.find("not allowed here"), std::string::npos) << list.failed[0].error;
  EXPECT_EQ(list.failed[1].op_id, add);
  EXPECT_TRUE(list.failed[1].task.IsNil());

  ASSERT_TRUE(alice.Discard(add).ok());
  EXPECT_EQ(GetList(alice, "l").failed.size(), 1u);
  // The server lets it through now: the retried rename is applied.
  cluster_.StopServer();
  StartServer();
  ASSERT_TRUE(alice.Retry(rename).ok());
  EXPECT_EQ(Titles(alice, "l"), (std::vector<std::string>{"nope!"}));
  EXPECT_TRUE(GetList(alice, "l").failed.empty());
  ASSERT_TRUE(Settle());
  EXPECT_EQ(Render(GetList(alice, "l")), ServerFold("l", "alice"));
}

TEST_F(TasksTest, RestartRebuildsTheStateFromTheStore) {
  Tasks* alice = &Open("alice", "phone");
  Must(alice->CreateList("l", "List", {}));
  const OpId a = Must(alice->Add("l", "a"));
  Must(alice->Add("l", "b"));
  Must(alice->Complete("l", a));
  ASSERT_TRUE(Settle());
  alice->client().SetOnline(false);
  Must(alice->Rename("l", a, "a, offline"));  // pending across the restart
  const std::string before = Render(GetList(*alice, "l"));
  alice = &Reopen(*alice);
  EXPECT_EQ(Render(GetList(*alice, "l")), before);
  EXPECT_TRUE(GetList(*alice, "l").tasks[0].pending);
  ASSERT_TRUE(Settle());
  EXPECT_EQ(Render(GetList(*alice, "l")), ServerFold("l", "alice"));
  EXPECT_EQ(Titles(*alice, "l"), (std::vector<std::string>{"a, offline+", "b"}));
}

TEST_F(TasksTest, ChangeEventsSayWhatChangedWithoutARead) {
  Tasks& alice = Open("alice", "phone");
  Tasks& bob = Open("bob", "laptop");
  std::vector<ListChange> seen, seen_other;
  const uint64_t sub = alice.Subscribe(
      "l", [&](const std::vector<ListChange>& c) { seen.insert(seen.end(), c.begin(), c.end()); });
  alice.Subscribe("other", [&](const std::vector<ListChange>& c) {
    seen_other.insert(seen_other.end(), c.begin(), c.end());
  });
  Must(alice.CreateList("l", "List", {"bob"}));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].op_kind, kMembersKind);
  EXPECT_EQ(seen[1].op_kind, kTitleKind);
  seen.clear();
  const OpId t = Must(alice.Add("l", "t"));
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].kind, Change::Kind::kAdded);
  EXPECT_EQ(seen[0].list, "l");
  EXPECT_EQ(seen[0].op_id, t);
  EXPECT_EQ(seen[0].op_kind, kAddKind);
  EXPECT_EQ(seen[0].state, OpState::kPending);
  EXPECT_TRUE(seen[0].own);
  EXPECT_EQ(seen[0].seq, 0u);
  seen.clear();
  ASSERT_TRUE(Settle());
  bool acked = false;
  for (const ListChange& c : seen) {
    if (c.op_id == t && c.kind == Change::Kind::kUpdated && c.state == OpState::kSent && c.seq > 0)
      acked = true;
  }
  EXPECT_TRUE(acked);
  // Bob's edit reaches alice as an added, sent op of bob's.
  seen.clear();
  ASSERT_TRUE(PumpUntil([&] { return bob.Get("l").ok() && bob.Get("l")->tasks.size() == 1; }));
  Must(bob.Complete("l", t));
  ASSERT_TRUE(Settle());
  bool merged = false;
  for (const ListChange& c : seen) {
    if (c.op_kind == kCompleteKind && c.kind == Change::Kind::kAdded && !c.own && c.state == OpState::kSent)
      merged = true;
  }
  EXPECT_TRUE(merged);
  EXPECT_TRUE(seen_other.empty());
  alice.Unsubscribe(sub);
  seen.clear();
  Must(alice.Reopen("l", t));
  EXPECT_TRUE(seen.empty());
}

// The sync threads run (Client::Start) while the test thread edits, another thread reads, and a subscriber
// reads from inside its callback: the adapter's lock against the engine's delivery (run under TSan too).
TEST(TasksThreadsTest, EditsReadsAndCallbacksOnSeveralThreads) {
  harness::Cluster cluster({.name = "tasks-threads", .manual_clock = false});
  ServerOptions so;
  so.membership = true;
  ASSERT_TRUE(cluster.StartServer(so).ok());
  std::atomic<size_t> seen_in_callback{0};  // before the devices: their callbacks use it until they close
  auto alice = Tasks::Open(cluster.DeviceOptions("alice", "phone"));
  auto bob = Tasks::Open(cluster.DeviceOptions("bob", "laptop"));
  ASSERT_TRUE(alice.ok() && bob.ok());
  (*bob)->Subscribe("l", [&](const std::vector<ListChange>&) {
    auto got = (*bob)->Get("l");  // a read inside the callback
    if (got.ok()) seen_in_callback = got->tasks.size();
  });
  (*alice)->client().Start();
  (*bob)->client().Start();
  ASSERT_TRUE((*alice)->CreateList("l", "List", {"bob"}).ok());
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      auto got = (*alice)->Get("l");
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      (void)(*alice)->Lists();
    }
  });
  struct Join {  // also when an assertion ends the test early
    std::atomic<bool>& done;
    std::thread& thread;
    ~Join() {
      done = true;
      thread.join();
    }
  } join{done, reader};
  constexpr size_t kTasks = 40;
  for (size_t i = 0; i < kTasks; ++i) {
    auto t = (*alice)->Add("l", "t" + std::to_string(i));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    if (i % 3 == 0) {
      ASSERT_TRUE((*alice)->Complete("l", *t).ok());
    }
  }
  // Converged: bob shows what alice shows, and alice has nothing pending left.
  EXPECT_TRUE(harness::WaitFor([&] {
    auto a = (*alice)->Get("l");
    auto b = (*bob)->Get("l");
    return a.ok() && b.ok() && a->tasks.size() == kTasks && Render(*a) == Render(*b) &&
           Render(*a) == Render(*a, false);
  }));
  EXPECT_TRUE(harness::WaitFor([&] { return seen_in_callback == kTasks; }));
  (*alice)->client().Stop();
  (*bob)->client().Stop();
  auto a = (*alice)->Get("l");
  auto b = (*bob)->Get("l");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(Render(*a), Render(*b));
}

}  // namespace
}  // namespace outpost::tasks
