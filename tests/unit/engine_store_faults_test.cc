// Copyright 2026 The Outpost Authors.
//
// Disk and store faults under a real Client on every durable backend: writes that the OS refuses, a full
// store, a read-only store, a truncated or corrupted store file. Each must give the caller a clear error (a
// Status that names the problem and the store's path), lose nothing already acknowledged (ops Submit
// returned, ops the server applied), and let the engine go on once the fault is gone: Submit works again and
// every op, old and new, reaches the server exactly once and in order.
//
// How the faults are made, as root (tests run as root here, and root ignores file modes):
//  - write errors: RLIMIT_FSIZE = 0 with SIGXFSZ ignored, so that every write(2) to a regular file fails with
//    EFBIG, in every thread of the process (the backends' own threads too); lifted by restoring the limit.
//  - full store: the `map_bytes_max=N` storage URI parameter (lmdb: the map cap; sqlite: max_page_count);
//    lifted by reopening with a larger one. RocksDB has no size cap: only a full disk fills it.
//  - read-only store: chmod a-w on the store and its files, and the test thread drops CAP_DAC_OVERRIDE
//    from its effective capabilities (capset(2)), so that root is held to file modes like any user; lifted
//    by restoring both. Skipped when the process cannot be held to file modes.
//  - truncated / corrupted file: the store is closed, its main file cut to half or overwritten at its start,
//    then reopened; lifted by restoring the file from a copy taken before.
// Deterministic: a manual clock, the in-process transport, the server stepped by hand; no sleeps.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "conformance/storage_backends.h"
#include "outpost/client.h"
#include "outpost/server.h"
#include "testing/cluster.h"

namespace outpost {
namespace {

namespace fs = std::filesystem;
using Code = Status::Code;

// While alive, every write to a regular file fails with EFBIG (RLIMIT_FSIZE 0, SIGXFSZ ignored).
class WriteFailure {
 public:
  WriteFailure() {
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    struct rlimit zero = old_;
    zero.rlim_cur = 0;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &zero) == 0;
  }
  ~WriteFailure() { Lift(); }
  void Lift() {
    if (!ok_) return;
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
    ok_ = false;
  }
  bool ok() const { return ok_; }

 private:
  struct rlimit old_ {};
  sighandler_t old_handler_ = SIG_DFL;
  bool ok_ = false;
};

// While alive, the calling thread (and threads it starts) is held to file modes even as root: its
// effective capabilities lose CAP_DAC_OVERRIDE. The permitted set keeps it, so the destructor restores it.
class HeldToFileModes {
 public:
  HeldToFileModes() {
    header_.version = _LINUX_CAPABILITY_VERSION_3;
    header_.pid = 0;
    if (::syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct dropped[2] = {saved_[0], saved_[1]};
    dropped[CAP_TO_INDEX(CAP_DAC_OVERRIDE)].effective &= ~CAP_TO_MASK(CAP_DAC_OVERRIDE);
    ok_ = ::syscall(SYS_capset, &header_, dropped) == 0;
  }
  ~HeldToFileModes() {
    if (ok_) ::syscall(SYS_capset, &header_, saved_);
  }
  bool ok() const { return ok_; }

 private:
  __user_cap_header_struct header_{};
  __user_cap_data_struct saved_[2]{};
  bool ok_ = false;
};

void SetWritable(const fs::path& path, bool writable) {
  const auto perms = fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write;
  const auto how = writable ? fs::perm_options::add : fs::perm_options::remove;
  std::error_code ec;
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::recursive_directory_iterator(path)) {
      fs::permissions(entry.path(), writable ? fs::perms::owner_write : perms, how, ec);
    }
  }
  fs::permissions(path, writable ? fs::perms::owner_write : perms, how, ec);
}

class StoreFaultsTest : public testing::TestWithParam<StorageBackend> {
 protected:
  StoreFaultsTest()
      : cluster_({.name = "store-faults", .clock_seed = 7}),
        env_(cluster_.clock()),
        dir_(cluster_.dir().path()) {
    cluster_.dir().Subdir("d");
    Status st = cluster_.StartServer();
    EXPECT_TRUE(st.ok()) << st.ToString();
    server_ = &cluster_.server();
  }
  ~StoreFaultsTest() override {
    client_.reset();
    SetWritable(dir_, true);  // the cluster then removes it
  }

  // The store's path (a directory or a file, by backend) and its URI with `params` ("?..." or empty).
  fs::path StorePath() const {
    std::string uri = GetParam().uri((dir_ / "d").string(), "unused");
    return uri.substr(uri.find(':') + 1);
  }
  std::string Uri(const std::string& params = "") const {
    return GetParam().uri((dir_ / "d").string(), "unused") + params;
  }
  bool IsLmdb() const { return GetParam().name == "Lmdb"; }
  bool IsSqlite() const { return GetParam().name == "Sqlite"; }
  bool IsRocksdb() const { return GetParam().name == "Rocksdb"; }

  Result<std::unique_ptr<Client>> OpenClient(const std::string& params = "", Env* env = nullptr) {
    ClientOptions o = cluster_.DeviceOptions("alice", "d1");
    o.store = Uri(params);
    o.env = env != nullptr ? env : &env_;
    o.backoff_base_ms = 10;
    o.backoff_cap_ms = 100;
    o.reconnect_cap_ms = 100;
    return Client::Open(std::move(o));
  }
  void Open(const std::string& params = "") {
    auto c = OpenClient(params);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }

  // Submits `payload` and remembers it as acknowledged.
  void MustSubmit(const std::string& payload) {
    auto id = client_->Submit(kStream, "text", payload);
    ASSERT_TRUE(id.ok()) << payload << ": " << id.status().ToString();
    acked_.push_back(payload);
  }

  // One round on the manual clock: the client, the server, the client.
  void Round(bool client_errors_allowed) {
    env_.AdvanceMs(50);
    Status st = client_->Step();
    ASSERT_TRUE(st.ok() || client_errors_allowed) << st.ToString();
    server_->Step();
    st = client_->Step();
    ASSERT_TRUE(st.ok() || client_errors_allowed) << st.ToString();
  }
  // Steps the client and the server until the outbox is empty (bounded), on the manual clock.
  void Flush() {
    ASSERT_TRUE(harness::StepUntil([&] { return client_->Stats().outbox_depth == 0 || HasFatalFailure(); },
                                   [&] { Round(false); }, 500));
    ASSERT_EQ(client_->Stats().outbox_depth, 0u) << "the outbox did not drain";
  }
  // Steps a faulty client: errors are allowed, crashes and lost ops are not.
  void StepThroughFault(int rounds) {
    for (int i = 0; i < rounds; ++i) Round(true);
  }

  // Every acknowledged op is in the view, once, in submit order; sent ones have seqs 1..n.
  void ExpectAllAcknowledged(bool all_sent) {
    auto view = client_->Latest(kStream, 100000);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    std::string shown;
    for (const OpInfo& op : *view) {
      shown += "  " + op.payload.substr(0, 12) + " state " + std::to_string(static_cast<int>(op.state)) +
               " seq " + std::to_string(op.seq) + " counter " + std::to_string(op.device_counter) + "\n";
    }
    SCOPED_TRACE("the view:\n" + shown);
    ASSERT_EQ(view->size(), acked_.size());
    for (size_t i = 0; i < acked_.size(); ++i) {
      EXPECT_EQ((*view)[i].payload, acked_[i]) << i;
      if (all_sent) {
        EXPECT_EQ((*view)[i].state, OpState::kSent) << i;
        EXPECT_EQ((*view)[i].seq, i + 1) << i;
      }
    }
    if (all_sent) {
      EXPECT_EQ(server_->Stats().ops_applied, acked_.size()) << "each op applied exactly once";
    }
  }

  // A clear error: one of `codes`, and the store's path in the message.
  void ExpectClearError(const Status& s, std::initializer_list<Code> codes, const std::string& what) {
    EXPECT_FALSE(s.ok()) << what;
    bool known = false;
    for (Code c : codes) known = known || s.code() == c;
    EXPECT_TRUE(known) << what << ": unexpected " << s.ToString();
    const std::string path = StorePath().string();
    EXPECT_NE(s.message().find(path), std::string::npos)
        << what << ": the error does not name '" << path << "': " << s.ToString();
  }

  static constexpr char kStream[] = "chat";
  harness::Cluster cluster_;
  ManualEnv& env_;
  fs::path dir_;
  Server* server_ = nullptr;
  std::unique_ptr<Client> client_;
  std::vector<std::string> acked_;
};

INSTANTIATE_TEST_SUITE_P(, StoreFaultsTest, testing::ValuesIn(DurableStorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

// The OS refuses every write: Submit fails with IOError/Full naming the store, nothing is half-written, and
// once writes work again the same Client submits and flushes everything, each op once.
TEST_P(StoreFaultsTest, WriteErrorsFailSubmitAndTheClientRecovers) {
  if (IsRocksdb())
    GTEST_SKIP() << "RocksDB recovers by a restart: WriteErrorThenRestartKeepsEveryAcknowledgedOp";
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(MustSubmit("flushed-" + std::to_string(i)));
  ASSERT_NO_FATAL_FAILURE(Flush());
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(MustSubmit("pending-" + std::to_string(i)));
  {
    WriteFailure fault;
    ASSERT_TRUE(fault.ok());
    // Enough payload that a backend buffering small writes must reach the file.
    const std::string big(256 << 10, 'x');
    for (int i = 0; i < 4; ++i) {
      auto id = client_->Submit(kStream, "text", big);
      ExpectClearError(id.status(), {Code::kIOError, Code::kFull}, "Submit while writes fail");
    }
    StepThroughFault(5);  // acks that cannot be recorded must not be lost either
  }
  ASSERT_NO_FATAL_FAILURE(MustSubmit("after"));
  ASSERT_NO_FATAL_FAILURE(Flush());
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/true));
  client_.reset();
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/true));
}

// The same fault, then the process dies (as an app killed after the error would) and a new one reopens the
// store: the failed Submits gave clear errors and every acknowledged op is there and flushes. On RocksDB this
// is the only recovery: it marks a failed WAL append as an unrecoverable background error (DB::Resume()
// refuses, every later write fails, naming the store), and Debian's librocksdb, built with assertions,
// aborts when the broken WAL writer is used or closed, so the storage layer stops writing and abandons the
// database instead of closing it (rocksdb_storage.cc). The first process is a forked child ending in _Exit.
TEST_P(StoreFaultsTest, WriteErrorThenRestartKeepsEveryAcknowledgedOp) {
  const std::vector<std::string> payloads = {"c0", "c1", "c2"};
  auto child = [&] {
    ManualEnv child_env(99);  // not env_'s copy: the parent's next op ids must differ from the child's
    auto c = OpenClient("", &child_env);
    if (!c.ok()) std::_Exit(10);
    for (const auto& p : payloads) {
      if (!(*c)->Submit(kStream, "text", p).ok()) std::_Exit(11);
    }
    WriteFailure fault;
    if (!fault.ok()) std::_Exit(12);
    std::vector<Status> errors;
    for (int i = 0; i < 3; ++i)
      errors.push_back((*c)->Submit(kStream, "text", std::string(256 << 10, 'x')).status());
    fault.Lift();  // gtest collects the child's stderr in a file, which the fault would refuse
    for (const Status& s : errors) {
      const bool clear =
          s.code() == Code::kIOError && s.message().find(StorePath().string()) != std::string::npos;
      std::fprintf(stderr, "child: %s: %s\n", clear ? "clear error" : "UNCLEAR", s.ToString().c_str());
      if (!clear) std::_Exit(13);
    }
    std::_Exit(0);
  };
  EXPECT_EXIT(child(), testing::ExitedWithCode(0), "child: clear error: IOError");
  acked_ = payloads;
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/false));
  ASSERT_NO_FATAL_FAILURE(MustSubmit("after"));
  ASSERT_NO_FATAL_FAILURE(Flush());
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/true));
}

// The store reaches its size cap: Submit fails with Full naming the store and what to raise; what was
// acknowledged stays readable; reopened with a larger cap, everything flushes, each op once.
TEST_P(StoreFaultsTest, FullStoreFailsSubmitUntilEnlarged) {
  if (!GetParam().honors_map_bytes_max) GTEST_SKIP() << GetParam().name << " has no size cap";
  ASSERT_NO_FATAL_FAILURE(Open("?map_bytes_max=1048576"));
  ASSERT_NO_FATAL_FAILURE(MustSubmit("first"));
  ASSERT_NO_FATAL_FAILURE(Flush());
  Status full;
  for (int i = 0; i < 1000 && full.ok(); ++i) {
    const std::string payload = "fill-" + std::to_string(i) + std::string(8 << 10, 'f');
    auto id = client_->Submit(kStream, "text", payload);
    if (id.ok()) {
      acked_.push_back(payload);
    } else {
      full = id.status();
    }
  }
  ExpectClearError(full, {Code::kFull}, "Submit to a full store");
  EXPECT_NE(full.message().find("map_bytes_max"), std::string::npos) << full.ToString();
  EXPECT_GT(acked_.size(), 5u);
  auto again = client_->Submit(kStream, "text", "still full" + std::string(8 << 10, 'f'));
  ExpectClearError(again.status(), {Code::kFull}, "Submit again");
  StepThroughFault(5);
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/false));

  client_.reset();
  ASSERT_NO_FATAL_FAILURE(Open("?map_bytes_max=268435456"));
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/false));
  ASSERT_NO_FATAL_FAILURE(MustSubmit("after"));
  ASSERT_NO_FATAL_FAILURE(Flush());
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/true));
}

// A store whose directory and files are read-only: opening a Client fails with an error naming the store
// (never a store that silently drops writes); made writable again, it opens with every op.
TEST_P(StoreFaultsTest, ReadOnlyStoreFailsOpenUntilWritable) {
  ASSERT_NO_FATAL_FAILURE(Open());
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(MustSubmit("flushed-" + std::to_string(i)));
  ASSERT_NO_FATAL_FAILURE(Flush());
  ASSERT_NO_FATAL_FAILURE(MustSubmit("pending"));
  client_.reset();

  SetWritable(dir_ / "d", false);
  {
    HeldToFileModes held;
    const fs::path probe = dir_ / "d" / "probe";
    const bool can_write = std::ofstream(probe).is_open();
    if (can_write || !held.ok()) {
      std::error_code ec;
      fs::remove(probe, ec);
      SetWritable(dir_ / "d", true);
      GTEST_SKIP() << "this process is not held to file modes (no capset): cannot make a read-only store";
    }
    auto c = OpenClient();
    if (c.ok()) {
      // A backend may open read-only; then every write must fail clearly, and nothing may be lost.
      client_ = std::move(*c);
      auto id = client_->Submit(kStream, "text", "read-only");
      ExpectClearError(id.status(), {Code::kIOError, Code::kPermissionDenied, Code::kFull},
                       "Submit to a read-only store");
      client_.reset();
    } else {
      ExpectClearError(c.status(), {Code::kIOError, Code::kPermissionDenied}, "Open of a read-only store");
    }
  }
  SetWritable(dir_ / "d", true);
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/false));
  ASSERT_NO_FATAL_FAILURE(MustSubmit("after"));
  ASSERT_NO_FATAL_FAILURE(Flush());
  ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/true));
}

// The file each backend cannot do without, and the ones a truncation hits.
std::vector<fs::path> MainFiles(const fs::path& store, const std::string& backend) {
  std::vector<fs::path> files;
  if (backend == "Lmdb") {
    files.push_back(store / "data.mdb");
  } else if (backend == "Sqlite") {
    files.push_back(store);
  } else {
    for (const auto& entry : fs::directory_iterator(store)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("MANIFEST-") || name.ends_with(".log") || name.ends_with(".sst")) {
        files.push_back(entry.path());
      }
    }
  }
  return files;
}

enum class Damage { kTruncate, kOverwriteStart };

class StoreDamageTest : public StoreFaultsTest {
 protected:
  // Writes ops (some flushed, some pending), closes the store, keeps a copy, damages the files, and checks
  // that opening the damaged store is a clear error (or, for a backend that can tell only on read, that
  // reads fail clearly) and never a crash; then restores the copy and checks that nothing was lost.
  void DamageAndRestore(Damage damage) {
    ASSERT_NO_FATAL_FAILURE(Open());
    // 20 ops of 60 KB: enough that RocksDB flushes its WAL to table files at close (kFlushAtCloseBytes),
    // so that damage hits the files that hold the data rather than an empty WAL.
    for (int i = 0; i < 20; ++i)
      ASSERT_NO_FATAL_FAILURE(MustSubmit("op-" + std::to_string(i) + std::string(60000, 'p')));
    ASSERT_NO_FATAL_FAILURE(Flush());
    ASSERT_NO_FATAL_FAILURE(MustSubmit("pending"));
    client_.reset();

    const fs::path backup = dir_ / "backup";
    fs::copy(dir_ / "d", backup, fs::copy_options::recursive);
    const auto files = MainFiles(StorePath(), GetParam().name);
    ASSERT_FALSE(files.empty());
    for (const auto& file : files) {
      const auto size = fs::file_size(file);
      if (damage == Damage::kTruncate) {
        fs::resize_file(file, size / 2);
      } else {
        std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
        const std::string garbage(std::min<uintmax_t>(size, 16384), '\xa5');
        f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
      }
    }

    {
      auto c = OpenClient();
      if (c.ok()) {
        // The damage must show on the first read of the lost data; it must not pass as an empty store.
        auto view = (*c)->Latest(kStream, 100000);
        EXPECT_FALSE(view.ok() && view->size() != acked_.size())
            << "a damaged store passed as one with " << view->size() << " of " << acked_.size() << " ops";
        if (!view.ok())
          ExpectClearError(view.status(), {Code::kCorruption, Code::kIOError}, "read of a damaged store");
      } else {
        ExpectClearError(c.status(), {Code::kCorruption, Code::kIOError}, "Open of a damaged store");
      }
    }  // the damaged store closes here

    fs::remove_all(dir_ / "d");
    fs::copy(backup, dir_ / "d", fs::copy_options::recursive);
    ASSERT_NO_FATAL_FAILURE(Open());
    ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/false));
    ASSERT_NO_FATAL_FAILURE(MustSubmit("after"));
    ASSERT_NO_FATAL_FAILURE(Flush());
    ASSERT_NO_FATAL_FAILURE(ExpectAllAcknowledged(/*all_sent=*/true));
  }
};

INSTANTIATE_TEST_SUITE_P(, StoreDamageTest, testing::ValuesIn(DurableStorageBackends()),
                         [](const testing::TestParamInfo<StorageBackend>& backend) {
                           return backend.param.name;
                         });

TEST_P(StoreDamageTest, TruncatedFileIsAClearErrorAndARestoredCopyRecovers) {
  DamageAndRestore(Damage::kTruncate);
}

TEST_P(StoreDamageTest, CorruptedFileIsAClearErrorAndARestoredCopyRecovers) {
  DamageAndRestore(Damage::kOverwriteStart);
}

}  // namespace
}  // namespace outpost
