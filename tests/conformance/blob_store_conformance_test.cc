// Copyright 2026 The Outpost Authors.
//
// The BlobStore contract (engine/include/outpost/blob_store.h), checked against every implementation:
// memory and file (`file:DIR`).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "media/common/digest.h"
#include "outpost/blob_store.h"
#include "testing/temp_dir.h"

namespace outpost {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

std::string Bytes(size_t n, char seed = 'a') {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(seed + static_cast<char>(i % 23));
  return out;
}

class BlobStoreTest : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    options_.blob_bytes_max = 1 << 20;
    Open();
  }
  bool file() const { return GetParam() == "file"; }
  std::string Uri() const { return file() ? "file:" + dir_.path() + "/blobs" : "memory:"; }
  void Open() {
    store_.reset();
    auto opened = OpenBlobStore(Uri(), options_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  BlobInfo Make(uint64_t size, std::string sha256 = "", int64_t expires_at_ms = 0) {
    BlobSpec spec{.owner = "alice",
                  .owner_device = "d1",
                  .size = size,
                  .content_type = "image/jpeg",
                  .sha256 = std::move(sha256),
                  .metadata = "filetype aW1hZ2UvanBlZw==",
                  .expires_at_ms = expires_at_ms};
    auto info = store_->Create(spec, kNow);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : BlobInfo{};
  }
  // Appends `bytes` at `offset` in one writer and commits.
  Result<uint64_t> Put(const std::string& id, uint64_t offset, std::string_view bytes) {
    auto w = store_->Append(id, offset);
    if (!w.ok()) return w.status();
    Status s = (*w)->Write(bytes);
    if (!s.ok()) return s;
    return (*w)->Commit();
  }
  std::string ReadAll(const std::string& id) {
    std::string all, piece;
    for (uint64_t at = 0;; at += piece.size()) {
      Status s = store_->Read(id, at, 1000, &piece);
      EXPECT_TRUE(s.ok()) << s.ToString();
      if (!s.ok() || piece.empty()) return all;
      EXPECT_LE(piece.size(), 1000u);
      all += piece;
    }
  }
  std::string DataPath(const std::string& id) const { return dir_.path() + "/blobs/" + id + ".data"; }

  harness::TempDir dir_{"blob-store"};
  BlobStoreOptions options_;
  std::unique_ptr<BlobStore> store_;
};

TEST_P(BlobStoreTest, CreateAndStat) {
  BlobInfo made = Make(10);
  EXPECT_TRUE(IsValidBlobId(made.id));
  EXPECT_EQ(made.offset, 0u);
  EXPECT_FALSE(made.complete);
  auto info = store_->Stat(made.id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->id, made.id);
  EXPECT_EQ(info->spec.owner, "alice");
  EXPECT_EQ(info->spec.owner_device, "d1");
  EXPECT_EQ(info->spec.size, 10u);
  EXPECT_EQ(info->spec.content_type, "image/jpeg");
  EXPECT_EQ(info->spec.metadata, "filetype aW1hZ2UvanBlZw==");
  EXPECT_EQ(info->created_at_ms, kNow);
  EXPECT_NE(Make(10).id, made.id);
}

TEST_P(BlobStoreTest, EmptyBlobIsCompleteAtOnce) {
  BlobInfo made = Make(0);
  EXPECT_TRUE(made.complete);
  EXPECT_EQ(made.sha256, media::ToHex(media::Sha256("")));
  std::string out = "x";
  EXPECT_TRUE(store_->Read(made.id, 0, 10, &out).ok());
  EXPECT_EQ(out, "");
  BlobSpec bad{.owner = "alice", .size = 0, .sha256 = std::string(64, 'a')};
  EXPECT_EQ(store_->Create(bad, kNow).status().code(), Status::Code::kInvalidArgument);
}

TEST_P(BlobStoreTest, BadSpecs) {
  BlobSpec spec{.owner = "alice", .size = 10};
  spec.sha256 = "ABC";
  EXPECT_EQ(store_->Create(spec, kNow).status().code(), Status::Code::kInvalidArgument);
  spec.sha256 = std::string(64, 'A');
  EXPECT_EQ(store_->Create(spec, kNow).status().code(), Status::Code::kInvalidArgument);
  spec.sha256.clear();
  spec.metadata = std::string(4097, 'm');
  EXPECT_EQ(store_->Create(spec, kNow).status().code(), Status::Code::kInvalidArgument);
  spec.metadata.clear();
  spec.size = options_.blob_bytes_max + 1;
  EXPECT_EQ(store_->Create(spec, kNow).status().code(), Status::Code::kFull);
  spec.size = options_.blob_bytes_max;
  EXPECT_TRUE(store_->Create(spec, kNow).ok());
}

TEST_P(BlobStoreTest, AppendInChunksCompletes) {
  std::string all = Bytes(1000);
  BlobInfo made = Make(all.size(), media::ToHex(media::Sha256(all)));
  uint64_t at = 0;
  for (size_t piece : {1u, 99u, 300u, 600u}) {
    auto w = store_->Append(made.id, at);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    // Two writes per writer, one commit.
    ASSERT_TRUE((*w)->Write(std::string_view(all).substr(at, piece / 2)).ok());
    ASSERT_TRUE((*w)->Write(std::string_view(all).substr(at + piece / 2, piece - piece / 2)).ok());
    auto off = (*w)->Commit();
    ASSERT_TRUE(off.ok()) << off.status().ToString();
    at += piece;
    EXPECT_EQ(*off, at);
    EXPECT_EQ(store_->Stat(made.id)->offset, at);
  }
  auto info = store_->Stat(made.id);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->complete);
  EXPECT_EQ(info->sha256, made.spec.sha256);
  EXPECT_EQ(ReadAll(made.id), all);
  EXPECT_EQ(store_->Append(made.id, at).status().code(), Status::Code::kFailedPrecondition);
}

TEST_P(BlobStoreTest, SeveralCommitsInOneWriter) {
  std::string all = Bytes(600'000);  // past the file writer's buffer
  BlobInfo made = Make(all.size());
  auto w = store_->Append(made.id, 0);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(std::string_view(all).substr(0, 100)).ok());
  EXPECT_EQ(*(*w)->Commit(), 100u);
  ASSERT_TRUE((*w)->Write(std::string_view(all).substr(100)).ok());
  EXPECT_EQ(*(*w)->Commit(), all.size());
  w->reset();
  EXPECT_TRUE(store_->Stat(made.id)->complete);
  EXPECT_FALSE(store_->Stat(made.id)->sha256.empty());  // computed even when none was declared
  EXPECT_EQ(ReadAll(made.id), all);
}

TEST_P(BlobStoreTest, AppendAtWrongOffsetIsConflict) {
  BlobInfo made = Make(10);
  auto w = store_->Append(made.id, 3);
  EXPECT_EQ(w.status().code(), Status::Code::kConflict);
  EXPECT_NE(w.status().message().find("0"), std::string::npos);
  ASSERT_TRUE(Put(made.id, 0, "abcd").ok());
  EXPECT_EQ(store_->Append(made.id, 0).status().code(), Status::Code::kConflict);
  EXPECT_EQ(store_->Append(made.id, 5).status().code(), Status::Code::kConflict);
  EXPECT_TRUE(store_->Append(made.id, 4).ok());
}

TEST_P(BlobStoreTest, CommitIsDurable) {
  std::string all = Bytes(100);
  BlobInfo made = Make(all.size());
  ASSERT_TRUE(Put(made.id, 0, std::string_view(all).substr(0, 40)).ok());
  if (file()) Open();  // a new store over the same directory
  EXPECT_EQ(store_->Stat(made.id)->offset, 40u);
  ASSERT_TRUE(Put(made.id, 40, std::string_view(all).substr(40)).ok());
  if (file()) Open();
  auto info = store_->Stat(made.id);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->complete);
  EXPECT_EQ(info->spec.owner, "alice");
  EXPECT_EQ(info->spec.metadata, made.spec.metadata);
  EXPECT_EQ(ReadAll(made.id), all);
}

TEST_P(BlobStoreTest, WriterDroppedWithoutCommitKeepsCommittedOffset) {
  std::string all = Bytes(100);
  BlobInfo made = Make(all.size());
  {
    auto w = store_->Append(made.id, 0);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(std::string_view(all).substr(0, 30)).ok());
    ASSERT_TRUE((*w)->Commit().ok());
    ASSERT_TRUE((*w)->Write(std::string_view(all).substr(30, 50)).ok());
  }  // dropped: the 50 bytes never count
  EXPECT_EQ(store_->Stat(made.id)->offset, 30u);
  EXPECT_EQ(store_->Append(made.id, 80).status().code(), Status::Code::kConflict);
  // The next writer resumes at 30 and the blob ends up exactly `all`.
  ASSERT_TRUE(Put(made.id, 30, std::string_view(all).substr(30)).ok());
  EXPECT_EQ(ReadAll(made.id), all);
}

TEST_P(BlobStoreTest, WritePastSizeIsInvalidArgument) {
  BlobInfo made = Make(10);
  auto w = store_->Append(made.id, 0);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write("12345678").ok());
  EXPECT_EQ((*w)->Write("abc").code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE((*w)->Write("90").ok());
  EXPECT_EQ(*(*w)->Commit(), 10u);
}

TEST_P(BlobStoreTest, Sha256MismatchIsCorruptionAndResets) {
  std::string all = Bytes(100);
  BlobInfo made = Make(all.size(), media::ToHex(media::Sha256("something else")));
  ASSERT_TRUE(Put(made.id, 0, std::string_view(all).substr(0, 60)).ok());
  auto last = Put(made.id, 60, std::string_view(all).substr(60));
  EXPECT_EQ(last.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(last.status().message(), "sha256 mismatch");
  auto info = store_->Stat(made.id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->offset, 0u);
  EXPECT_FALSE(info->complete);
  std::string out;
  EXPECT_TRUE(store_->Read(made.id, 0, 10, &out).IsNotFound());
  // It may be uploaded again from 0 (and fails the same way with the same bytes).
  EXPECT_TRUE(store_->Append(made.id, 0).ok());
}

TEST_P(BlobStoreTest, ReadOnlyWhenCompleteAndInRanges) {
  std::string all = Bytes(50);
  BlobInfo made = Make(all.size());
  std::string out;
  EXPECT_TRUE(store_->Read(made.id, 0, 10, &out).IsNotFound());
  ASSERT_TRUE(Put(made.id, 0, std::string_view(all).substr(0, 49)).ok());
  EXPECT_TRUE(store_->Read(made.id, 0, 10, &out).IsNotFound());
  ASSERT_TRUE(Put(made.id, 49, std::string_view(all).substr(49)).ok());
  ASSERT_TRUE(store_->Read(made.id, 10, 5, &out).ok());
  EXPECT_EQ(out, all.substr(10, 5));
  ASSERT_TRUE(store_->Read(made.id, 45, 100, &out).ok());
  EXPECT_EQ(out, all.substr(45));
  ASSERT_TRUE(store_->Read(made.id, 50, 100, &out).ok());
  EXPECT_EQ(out, "");
  EXPECT_EQ(store_->Read(made.id, 51, 1, &out).code(), Status::Code::kInvalidArgument);
}

TEST_P(BlobStoreTest, SecondWriterIsAborted) {
  BlobInfo made = Make(10);
  auto first = store_->Append(made.id, 0);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(store_->Append(made.id, 0).status().code(), Status::Code::kAborted);
  EXPECT_EQ(store_->Remove(made.id).code(), Status::Code::kAborted);
  if (file()) {
    // A second store over the same directory (another process would be the same): still locked out.
    auto other = OpenBlobStore(Uri(), options_);
    ASSERT_TRUE(other.ok());
    EXPECT_EQ((*other)->Append(made.id, 0).status().code(), Status::Code::kAborted);
  }
  first->reset();
  EXPECT_TRUE(store_->Append(made.id, 0).ok());
}

TEST_P(BlobStoreTest, Remove) {
  BlobInfo made = Make(10);
  ASSERT_TRUE(Put(made.id, 0, "abc").ok());
  EXPECT_TRUE(store_->Remove(made.id).ok());
  EXPECT_TRUE(store_->Stat(made.id).status().IsNotFound());
  EXPECT_TRUE(store_->Append(made.id, 3).status().IsNotFound());
  EXPECT_TRUE(store_->Remove(made.id).IsNotFound());
  BlobInfo done = Make(3);
  ASSERT_TRUE(Put(done.id, 0, "xyz").ok());
  EXPECT_TRUE(store_->Remove(done.id).ok());
  std::string out;
  EXPECT_TRUE(store_->Read(done.id, 0, 3, &out).IsNotFound());
}

TEST_P(BlobStoreTest, RemoveExpired) {
  BlobInfo soon = Make(10, "", kNow + 100);
  BlobInfo later = Make(10, "", kNow + 1000);
  BlobInfo never = Make(10);
  BlobInfo done = Make(3, "", kNow + 100);
  ASSERT_TRUE(Put(done.id, 0, "xyz").ok());
  BlobInfo busy = Make(10, "", kNow + 100);
  auto writer = store_->Append(busy.id, 0);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(*store_->RemoveExpired(kNow + 99), 0u);
  EXPECT_EQ(*store_->RemoveExpired(kNow + 100), 1u);  // `busy` has an open writer
  EXPECT_TRUE(store_->Stat(soon.id).status().IsNotFound());
  EXPECT_TRUE(store_->Stat(later.id).ok());
  EXPECT_TRUE(store_->Stat(never.id).ok());
  EXPECT_TRUE(store_->Stat(done.id).ok());  // complete blobs do not expire
  writer->reset();
  EXPECT_EQ(*store_->RemoveExpired(kNow + 5000), 2u);
  EXPECT_TRUE(store_->Stat(later.id).status().IsNotFound());
  EXPECT_TRUE(store_->Stat(busy.id).status().IsNotFound());
  EXPECT_TRUE(store_->Stat(never.id).ok());
}

TEST_P(BlobStoreTest, BadIds) {
  std::string out;
  for (const std::string& id :
       std::vector<std::string>{"", "abc", "../../etc/passwd", std::string(32, 'G'), std::string(32, 'A'),
                                std::string(31, 'a') + "/", std::string(33, 'a')}) {
    EXPECT_TRUE(store_->Stat(id).status().IsNotFound()) << id;
    EXPECT_TRUE(store_->Append(id, 0).status().IsNotFound()) << id;
    EXPECT_TRUE(store_->Read(id, 0, 1, &out).IsNotFound()) << id;
    EXPECT_TRUE(store_->Remove(id).IsNotFound()) << id;
  }
  // Well-formed but unknown.
  EXPECT_TRUE(store_->Stat(std::string(32, 'a')).status().IsNotFound());
}

TEST_P(BlobStoreTest, CrashLeftoverPastOffsetIsCut) {
  if (!file()) GTEST_SKIP() << "only the file store has a crash to survive";
  std::string all = Bytes(100);
  BlobInfo made = Make(all.size());
  ASSERT_TRUE(Put(made.id, 0, std::string_view(all).substr(0, 40)).ok());
  {
    // What a crash after writing bytes but before recording them leaves: garbage past the offset.
    std::ofstream data(DataPath(made.id), std::ios::binary | std::ios::app);
    data << std::string(30, '#');
  }
  EXPECT_EQ(std::filesystem::file_size(DataPath(made.id)), 70u);
  Open();
  EXPECT_EQ(store_->Stat(made.id)->offset, 40u);
  ASSERT_TRUE(Put(made.id, 40, std::string_view(all).substr(40)).ok());
  EXPECT_EQ(ReadAll(made.id), all);
}

TEST_P(BlobStoreTest, OpenBadUris) {
  EXPECT_EQ(OpenBlobStore("s3://bucket").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenBlobStore("file:").status().code(), Status::Code::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Backends, BlobStoreTest, testing::Values("memory", "file"),
                         [](const testing::TestParamInfo<std::string>& param) { return param.param; });

}  // namespace
}  // namespace outpost
