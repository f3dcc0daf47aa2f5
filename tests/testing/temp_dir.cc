// Copyright 2026 The Outpost Authors.
#include "testing/temp_dir.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>

namespace outpost::harness {
namespace {

bool KeepTemp() {
  const char* keep = std::getenv("OUTPOST_KEEP_TEMP");
  return keep != nullptr && *keep != '\0' && std::string_view(keep) != "0";
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/";
  tmpl.append(prefix);
  tmpl += "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << tmpl << ": " << std::strerror(errno);
    return;
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (KeepTemp()) {
    std::cerr << "[ harness ] kept " << path_ << " (OUTPOST_KEEP_TEMP)\n";
    return;
  }
  if (::testing::Test::HasFailure()) {
    std::cerr << "[ harness ] the failed test's directory was " << path_
              << "; OUTPOST_KEEP_TEMP=1 keeps it\n";
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::operator/(std::string_view name) const {
  std::string p = path_;
  p += '/';
  p.append(name);
  return p;
}

std::string TempDir::Subdir(std::string_view name) const {
  std::string p = *this / name;
  std::error_code ec;
  std::filesystem::create_directories(p, ec);
  if (ec) ADD_FAILURE() << "create_directories " << p << ": " << ec.message();
  return p;
}

std::string StoreUri(const std::string& backend, const std::string& dir, const std::string& name) {
  if (backend == "memory") return "memory:" + name;
  if (backend == "lmdb") return "lmdb:" + dir + "/" + name;
  if (backend == "rocksdb") return "rocksdb:" + dir + "/" + name;
  if (backend == "sqlite") return "sqlite:" + dir + "/" + name + ".db";
  return backend;  // a whole URI
}

}  // namespace outpost::harness
