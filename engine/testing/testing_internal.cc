// Copyright 2026 The Outpost Authors.
#include "testing_internal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <thread>

namespace outpost::conformance::internal {

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
  const char* keep = std::getenv("OUTPOST_KEEP_TEMP");
  if (keep != nullptr && *keep != '\0' && std::string_view(keep) != "0") {
    std::cerr << "[ conformance ] kept " << path_ << " (OUTPOST_KEEP_TEMP)\n";
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

bool WaitFor(const std::function<bool()>& condition, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    // The condition moves on another thread that tells no one; a short poll is the bounded way to see it.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return condition();
}

}  // namespace outpost::conformance::internal
