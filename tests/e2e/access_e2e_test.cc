// Copyright 2026 The Outpost Authors.
//
// Who may do what, through a real outpostd: wrong tokens are refused at Hello, a token logs in as one
// device of one user, non-members can neither push to nor read a stream, and users added while the server
// runs can log in at once.
#include <signal.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "e2e/e2e_fixture.h"
#include "outpost/storage.h"

namespace outpost::e2e {
namespace {

bool ViewHasDevice(Client& device, const std::string& stream, const std::string& user,
                   const std::string& dev) {
  auto ops = device.Latest(stream, 10'000);
  if (!ops.ok()) return true;  // treat an unreadable view as a failure of the caller's expectation
  for (const auto& op : *ops) {
    if (op.user == user && op.device == dev) return true;
  }
  return false;
}

// A device whose Hello was refused: it never connected, its op waits in its outbox, and its last error says
// why (the refusal is fatal: the server closes the connection).
void ExpectRefused(Client& c, const std::string& why) {
  const bool refused = WaitFor(
      [&] { return c.Stats().last_connection_error.find("authentication failed") != std::string::npos; },
      kWaitMs);
  const ClientStats s = c.Stats();
  EXPECT_TRUE(refused) << c.user() << "/" << c.device() << ": last connection error '"
                       << s.last_connection_error << "'";
  EXPECT_NE(s.last_connection_error.find(why), std::string::npos) << s.last_connection_error;
  EXPECT_FALSE(s.connected);
  EXPECT_EQ(s.outbox_depth, 1u);
}

// Issue 12, item 1, at the process level: bob cannot log in as alice's device `laptop`, neither with
// alice's token nor with a token of his own bound to another device. With an unbound token of his own, he
// may name a device of his `laptop` (the server tells devices apart by user and device): the token binds
// to it, and alice's token stays bound to her laptop.
TEST_F(E2ETest, ATokenLogsInAsItsOneDeviceOnly) {
  const std::string alice_laptop_token = AddDevice(data_, "alice", "laptop");
  const std::string bob_phone_token = AddDevice(data_, "bob", "phone");
  ASSERT_FALSE(alice_laptop_token.empty() || bob_phone_token.empty());
  auto laptop = Open("alice", "laptop", alice_laptop_token);
  ASSERT_TRUE(laptop);
  CreateStream(*laptop, "secret", {"alice"});
  CreateStream(*laptop, "shared", {"alice", "bob"});

  const std::string other = dir_ / "intruders";
  ASSERT_TRUE(std::filesystem::create_directories(other));
  auto open_in = [&](const std::string& dir, const std::string& user, const std::string& device,
                     const std::string& token) {
    DeviceOptions o;
    o.user = user;
    o.device = device;
    o.token = token;
    o.server = daemon_.endpoint();
    return OpenDevice(dir, o);
  };
  // alice's token, presented by bob as alice's device.
  auto stolen = open_in(dir_.path(), "bob", "laptop", alice_laptop_token);
  ASSERT_TRUE(stolen);
  ASSERT_TRUE(stolen->Submit("shared", "text", "from bob with alice's token").ok());
  ExpectRefused(*stolen, "does not belong to user \"bob\"");
  stolen.reset();
  // bob's own token, bound to his phone, claiming `laptop`.
  auto claimed = open_in(other, "bob", "laptop", bob_phone_token);
  ASSERT_TRUE(claimed);
  ASSERT_TRUE(claimed->Submit("shared", "text", "from bob's phone token as laptop").ok());
  ExpectRefused(*claimed, "bound to device \"phone\", not \"laptop\"");
  claimed.reset();
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("auth_failures") >= 2; }, kWaitMs))
      << daemon_.StatsJson();

  // Neither refusal bound or moved anything.
  EXPECT_NE(Devices(data_, "alice").find("alice\tlaptop\tbound"), std::string::npos)
      << Devices(data_, "alice");
  EXPECT_NE(Devices(data_, "bob").find("bob\tphone\tbound"), std::string::npos) << Devices(data_, "bob");
  EXPECT_EQ(Devices(data_, "bob").find("laptop"), std::string::npos) << Devices(data_, "bob");

  // bob's unbound token (the fixture's) binds to bob's own device `laptop`.
  const std::string bobs_laptop_dir = dir_ / "bobs-laptop";
  ASSERT_TRUE(std::filesystem::create_directories(bobs_laptop_dir));
  auto bobs_laptop = open_in(bobs_laptop_dir, "bob", "laptop", bob_phone_token_);
  ASSERT_TRUE(bobs_laptop);
  ASSERT_TRUE(WaitFor([&] { return bobs_laptop->Stats().connected; }, kWaitMs))
      << bobs_laptop->Stats().last_connection_error;
  EXPECT_NE(Devices(data_, "bob").find("bob\tlaptop\tbound"), std::string::npos) << Devices(data_, "bob");
  EXPECT_NE(Devices(data_, "alice").find("alice\tlaptop\tbound"), std::string::npos);
  // alice's laptop logs in as before.
  ASSERT_TRUE(laptop->Submit("secret", "text", "still mine").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*laptop, "secret", 2); }, kWaitMs))
      << laptop->Stats().last_connection_error;
}

// A token issued without --device binds to the device of its first Hello, durably: after a restart it
// still logs in as that device and as no other.
TEST_F(E2ETest, AnUnboundTokenBindsToItsFirstDevice) {
  const std::string token = AddDevice(data_, "alice");
  ASSERT_FALSE(token.empty());
  EXPECT_NE(Devices(data_, "alice").find("alice\t-\tunbound"), std::string::npos) << Devices(data_, "alice");
  {
    auto tablet = Open("alice", "tablet", token);
    ASSERT_TRUE(tablet);
    ASSERT_TRUE(WaitFor([&] { return tablet->Stats().connected; }, kWaitMs))
        << tablet->Stats().last_connection_error;
  }
  EXPECT_NE(Devices(data_, "alice").find("alice\ttablet\tbound"), std::string::npos)
      << Devices(data_, "alice");

  daemon_.Signal(SIGTERM);
  ASSERT_EQ(daemon_.WaitExit(kWaitMs), 0) << daemon_.Log();
  std::string error;
  ASSERT_TRUE(daemon_.Restart(&error)) << error;
  auto again = Open("alice", "tablet", token);
  ASSERT_TRUE(again);
  ASSERT_TRUE(WaitFor([&] { return again->Stats().connected; }, kWaitMs))
      << again->Stats().last_connection_error;
  auto elsewhere = Open("alice", "watch", token);
  ASSERT_TRUE(elsewhere);
  ASSERT_TRUE(elsewhere->Submit("mine", kMembersKind, EncodeMembers({"alice"})).ok());
  ExpectRefused(*elsewhere, "bound to device \"tablet\", not \"watch\"");
}

// Rewrites every token entry of DATA_DIR's registry to `value_of(user)` (the server may be running: LMDB
// admits writers from several processes).
void RewriteTokens(const std::string& data_dir,
                   const std::function<std::string(std::string_view)>& value_of) {
  StorageOptions options;
  options.spaces = {"users", "tokens"};
  auto store = OpenStorage("lmdb:" + data_dir + "/auth", options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto txn = (*store)->BeginWrite();
  ASSERT_TRUE(txn.ok());
  std::vector<std::pair<std::string, std::string>> entries;
  auto cursor = (*txn)->NewCursor(1);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    const std::string_view v = cursor->value();  // either form: 0x01 | u8 n | user | device, or the user
    const bool bound_form = v.size() >= 2 && v[0] == '\x01';
    entries.emplace_back(std::string(cursor->key()),
                         std::string(bound_form ? v.substr(2, static_cast<uint8_t>(v[1])) : v));
  }
  cursor.reset();
  for (const auto& [hash, user] : entries) ASSERT_TRUE((*txn)->Put(1, hash, value_of(user)).ok());
  ASSERT_TRUE((*txn)->Commit().ok());
}

// A registry written before tokens were bound (tokens → bare user name) still works: each token is read as
// an unbound token of its user and binds on first use. An entry of a form nobody wrote is refused, never
// taken for a user.
TEST(Registry, ThePreviousFormatIsReadAndAnUnknownOneRefused) {
  TempDir dir;
  const std::string data = dir / "data";
  const std::string alice_token = AddUser(data, "alice", "phone");
  const std::string bob_token = AddUser(data, "bob");
  ASSERT_FALSE(alice_token.empty() || bob_token.empty());
  RewriteTokens(data, [](std::string_view user) { return std::string(user); });
  EXPECT_NE(Devices(data, "alice").find("alice\t-\tunbound"), std::string::npos) << Devices(data, "alice");

  Daemon daemon;
  std::string error;
  ASSERT_TRUE(daemon.Start(data, "tcp://127.0.0.1:0", {}, &error)) << error;
  DeviceOptions o;
  o.user = "alice";
  o.device = "laptop";
  o.token = alice_token;
  o.server = daemon.endpoint();
  auto laptop = OpenDevice(dir.path(), o);
  ASSERT_TRUE(laptop);
  ASSERT_TRUE(WaitFor([&] { return laptop->Stats().connected; }, kWaitMs))
      << laptop->Stats().last_connection_error;
  EXPECT_NE(Devices(data, "alice").find("alice\tlaptop\tbound"), std::string::npos) << Devices(data, "alice");
  // Still the user it was: bob cannot use it.
  o.user = "bob";
  auto bob = OpenDevice(dir.path(), o);
  ASSERT_TRUE(bob);
  ASSERT_TRUE(bob->Submit("x", kMembersKind, EncodeMembers({"bob"})).ok());
  ExpectRefused(*bob, "does not belong to user \"bob\"");
  bob.reset();

  // A value that is neither form.
  RewriteTokens(data, [](std::string_view) { return std::string("\x02whatever"); });
  RunResult r = RunOutpostd({"devices", "--data", data, "bob"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown form"), std::string::npos) << r.err;
  o.user = "bob";
  o.device = "phone";
  o.token = bob_token;
  auto bob_phone = OpenDevice(dir.path(), o);
  ASSERT_TRUE(bob_phone);
  ASSERT_TRUE(bob_phone->Submit("x", kMembersKind, EncodeMembers({"bob"})).ok());
  ExpectRefused(*bob_phone, "unknown form");
}

TEST(Registry, BadDeviceIdsAreRefusedWhenTheTokenIsIssued) {
  TempDir dir;
  const std::string data = dir / "data";
  ASSERT_FALSE(AddUser(data, "alice").empty());
  const std::vector<std::string> bad = {"", "tab\there", "new\nline", "del\x7f", std::string(256, 'd')};
  for (const auto& device : bad) {
    for (const char* command : {"add-user", "add-device"}) {
      RunResult r = RunOutpostd({command, "--data", data,
                                 command == std::string("add-user") ? "bob" : "alice", "--device", device});
      EXPECT_EQ(r.exit_code, 2) << command << " '" << device << "': " << r.out << r.err;
      EXPECT_TRUE(r.out.empty()) << "no token printed";
      EXPECT_NE(r.err.find("device id"), std::string::npos) << r.err;
    }
  }
  EXPECT_EQ(RunOutpostd({"devices", "--data", data, "bob"}).exit_code, 1) << "bob was never created";
  // Two users may both have a `phone`; 255 bytes of UTF-8 are fine.
  EXPECT_FALSE(AddUser(data, "bob", "phone").empty());
  EXPECT_FALSE(AddDevice(data, "alice", "phone").empty());
  EXPECT_FALSE(AddDevice(data, "alice", std::string(85, 'x') + std::string(170, 'y')).empty());
  EXPECT_FALSE(AddDevice(data, "alice", "téléphone de Zoë").empty());
  EXPECT_NE(Devices(data, "bob").find("bob\tphone\tbound"), std::string::npos);
  EXPECT_NE(Devices(data, "alice").find("alice\tphone\tbound"), std::string::npos);
}

TEST_F(E2ETest, WrongTokensAreRefusedAndStoreNothing) {
  auto alice = AlicePhone();
  auto laptop = AliceLaptop();
  ASSERT_TRUE(alice && laptop);
  CreateStream(*alice, "trip", {"alice"});
  FollowConnected(*laptop, "trip");

  struct Intruder {
    std::string device;
    std::string user;
    std::string token;
  };
  const Intruder intruders[] = {
      {"unknown-token", "alice", "opt_" + std::string(43, 'A')},  // well-formed, never issued
      {"junk-token", "alice", "hunter2"},
      {"no-token", "alice", ""},
      {"bobs-token", "alice", bob_phone_token_},  // a real token of another user
  };
  std::vector<std::unique_ptr<Client>> clients;
  for (const auto& in : intruders) {
    auto c = Open(in.user, in.device, in.token);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->Submit("trip", "text", "sneaky from " + in.device).ok());
    clients.push_back(std::move(c));
  }
  for (size_t i = 0; i < clients.size(); ++i) {
    Client& c = *clients[i];
    const bool refused = WaitFor(
        [&] { return c.Stats().last_connection_error.find("authentication") != std::string::npos; }, kWaitMs);
    EXPECT_TRUE(refused) << intruders[i].device << ": last connection error '"
                         << c.Stats().last_connection_error << "'";
    EXPECT_FALSE(c.Stats().connected) << intruders[i].device;
  }
  // The server has answered everything before alice's later op; none of the intruders' ops is there.
  ASSERT_TRUE(alice->Submit("trip", "text", "marker").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*laptop, "trip", 2); }, kWaitMs))
      << laptop->Stats().last_connection_error;
  auto view = laptop->Latest("trip", 100);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->size(), 2u);
  for (const auto& in : intruders)
    EXPECT_FALSE(ViewHasDevice(*laptop, "trip", "alice", in.device)) << in.device;
  for (auto& c : clients) {
    auto outbox = c->Outbox(10);
    ASSERT_TRUE(outbox.ok());
    EXPECT_EQ(outbox->size(), 1u);  // still waiting on the device, never applied
  }
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("auth_failures") >= 4; }, kWaitMs))
      << daemon_.StatsJson();
  // Each refusal is counted once (an authentication failure is not also a bad frame), and logged naming
  // whom the Hello claimed to be (the devices keep retrying after backing off: at least one line each).
  EXPECT_EQ(daemon_.StatsField("bad_frames"), 0) << daemon_.StatsJson();
  for (const auto& in : intruders) {
    const std::string line = "hello from user \"alice\" device \"" + in.device + "\" refused";
    EXPECT_TRUE(WaitFor([&] { return daemon_.Log().find(line) != std::string::npos; }, kWaitMs))
        << line << " not in\n"
        << daemon_.Log();
  }
  EXPECT_EQ(daemon_.Log().find("authentication failure(s)"), std::string::npos) << "no anonymous tallies";
}

TEST_F(E2ETest, NonMembersCanNeitherPushNorPull) {
  auto alice = AlicePhone();
  auto bob = BobPhone();
  ASSERT_TRUE(alice && bob);
  // A user added while the server runs can log in at once.
  const std::string carol_token = AddUser(data_, "carol");
  ASSERT_FALSE(carol_token.empty());
  auto carol = Open("carol", "phone", carol_token);
  ASSERT_TRUE(carol);

  CreateStream(*alice, "trip", {"alice", "bob"});
  Discover(*bob, "bob", "trip");
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "trip", 1); }, kWaitMs));

  // Push: the op fails visibly with the server's reason.
  auto id = carol->Submit("trip", "text", "let me in");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto op = carol->Get(*id);
        return op.ok() && op->state == OpState::kFailed;
      },
      kWaitMs))
      << "carol's op never failed; last connection error: " << carol->Stats().last_connection_error;
  auto failed = carol->Get(*id);
  ASSERT_TRUE(failed.ok());
  EXPECT_NE(failed->last_error.find("forbidden"), std::string::npos) << failed->last_error;
  EXPECT_EQ(failed->last_error_code, Status::Code::kPermissionDenied);
  EXPECT_TRUE(carol->Stats().connected);  // refused per op, not per connection

  // Pull: carol follows the stream and bob's feed (a connected device pulls at once); then a round trip on a
  // stream of her own proves the server has answered those pulls (one connection's frames go in order).
  FollowConnected(*carol, "trip");
  FollowConnected(*carol, FeedStream("bob"));
  CreateStream(*carol, "carols-own", {"carol"});
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*carol, "carols-own", 1); }, kWaitMs))
      << carol->Stats().last_connection_error;

  ASSERT_TRUE(alice->Submit("trip", "text", "members only").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "trip", 2); }, kWaitMs));
  ASSERT_TRUE(carol->Submit("carols-own", "text", "second round trip").ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*carol, "carols-own", 2); }, kWaitMs));

  auto carol_view = carol->Latest("trip", 100);
  ASSERT_TRUE(carol_view.ok());
  ASSERT_EQ(carol_view->size(), 1u);  // only her own failed op
  EXPECT_EQ(carol_view->front().op_id, *id);
  EXPECT_EQ(CursorOf(*carol, "trip"), 0u);
  EXPECT_EQ(CursorOf(*carol, FeedStream("bob")), 0u);
  auto feed = carol->Latest(FeedStream("bob"), 100);
  ASSERT_TRUE(feed.ok());
  EXPECT_TRUE(feed->empty());

  // Members never see the refused op.
  EXPECT_FALSE(ViewHasDevice(*bob, "trip", "carol", "phone"));
  EXPECT_FALSE(ViewHasDevice(*alice, "trip", "carol", "phone"));
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("forbidden") >= 1; }, kWaitMs)) << daemon_.StatsJson();
}

TEST_F(E2ETest, RemovedMemberLosesAccess) {
  auto alice = AlicePhone();
  auto bob = BobPhone();
  ASSERT_TRUE(alice && bob);
  CreateStream(*alice, "club", {"alice", "bob"});
  Discover(*bob, "bob", "club");
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*bob, "club", 1); }, kWaitMs));
  ASSERT_TRUE(alice->Submit("club", kMembersKind, EncodeMembers({"alice"})).ok());
  ASSERT_TRUE(WaitFor([&] { return CaughtUp(*alice, "club", 2); }, kWaitMs));
  // bob's feed records the removal.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto ops = bob->Latest(FeedStream("bob"), 100);
        if (!ops.ok()) return false;
        for (const auto& op : *ops) {
          if (op.kind == kLeftKind && op.payload == "club") return true;
        }
        return false;
      },
      kWaitMs));
  auto id = bob->Submit("club", "text", "still here?");
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto op = bob->Get(*id);
        return op.ok() && op->state == OpState::kFailed;
      },
      kWaitMs));
  EXPECT_NE(bob->Get(*id)->last_error.find("forbidden"), std::string::npos);
}

}  // namespace
}  // namespace outpost::e2e
