// Copyright 2026 The Outpost Authors.
#include "bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <system_error>

namespace outpost::bench {

namespace {
std::atomic<uint64_t> g_serial{0};
}  // namespace

BenchConfig& Config() {
  static BenchConfig config;
  return config;
}

const std::vector<std::string>& Backends() {
  static const std::vector<std::string> backends = {"memory", "lmdb"};
  return backends;
}

std::string Payload() {
  std::string payload(kValueBytes, 'x');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  return payload;
}

TempDir::TempDir() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  path_ = base / ("outpost-bench-" + std::to_string(::getpid()) + "-" + std::to_string(g_serial++));
  std::filesystem::remove_all(path_, ec);
  std::filesystem::create_directories(path_, ec);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::StoreUri(const std::string& backend, const std::string& name) const {
  if (backend == "lmdb") return "lmdb:" + (path_ / name).string();
  return "memory:";
}

void TempDir::RemoveStore(const std::string& name) const {
  std::error_code ec;
  std::filesystem::remove_all(path_ / name, ec);
}

Status RawStore::Open(const TempDir& dir, const std::string& backend, const std::string& name) {
  StorageOptions options;
  options.spaces = {"raw"};
  options.sync = true;
  OUTPOST_ASSIGN_OR_RETURN(store_, OpenStorage(dir.StoreUri(backend, name), options));
  value_ = Payload();
  return Status::OK();
}

Status RawStore::PutBatch(int64_t n) {
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginWrite());
  for (int64_t i = 0; i < n; ++i) OUTPOST_RETURN_IF_ERROR(txn->Put(0, RawKey(next_++), value_));
  return txn->Commit();
}

std::string RawKey(uint64_t n) {
  std::string key(kKeyBytes, '\0');
  std::memcpy(key.data(), "raw-put:", 8);
  for (int i = 0; i < 8; ++i) key[kKeyBytes - 1 - i] = static_cast<char>(n >> (8 * i));
  return key;
}

std::string UniqueInproc(const std::string& what) {
  return "inproc:bench-" + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(g_serial++);
}

double Latencies::Percentile(double p) {
  if (us_.empty()) return 0;
  auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(us_.size())));
  rank = std::clamp<size_t>(rank, 1, us_.size()) - 1;
  std::nth_element(us_.begin(), us_.begin() + static_cast<std::ptrdiff_t>(rank), us_.end());
  return us_[rank];
}

void Latencies::Report(benchmark::State& state) {
  if (us_.empty()) return;
  state.counters["p50_us"] = Percentile(0.50);
  state.counters["p99_us"] = Percentile(0.99);
}

bool Check(benchmark::State& state, const Status& st, const char* what) {
  if (st.ok()) return true;
  state.SkipWithError((std::string(what) + ": " + st.ToString()).c_str());
  return false;
}

}  // namespace outpost::bench
