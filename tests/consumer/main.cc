// Copyright 2026 The Outpost Authors.
//
// The consumer test's program (tests/consumer/CMakeLists.txt): opens a Client on an LMDB store in DIR (no
// server: offline), submits, reads back with Latest and Since, and exits non-zero on any mismatch.
//   consumer DIR
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "outpost/client.h"
#include "outpost/version.h"

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer DIR\n");
    return 2;
  }
  // The headers and the library linked are the same version.
  Check(std::strcmp(outpost::Version(), OUTPOST_VERSION_STRING) == 0,
        std::string("library version ") + outpost::Version() + " != headers " + OUTPOST_VERSION_STRING);

  auto client = outpost::Client::Open({.store = std::string("lmdb:") + argv[1], .user = "alice"});
  if (!client.ok()) {
    std::fprintf(stderr, "consumer: open: %s\n", client.status().ToString().c_str());
    return 1;
  }
  for (const char* text : {"one", "two", "three"}) {
    auto id = (*client)->Submit("list", "note", text);
    Check(id.ok(), "submit " + std::string(text) + ": " + id.status().ToString());
  }
  auto latest = (*client)->Latest("list", 10);
  Check(
      latest.ok() && latest->size() == 3 && (*latest)[0].payload == "one" && (*latest)[2].payload == "three",
      "Latest reads the three ops back in order");
  auto since = (*client)->Since("list", 0, 2);
  Check(since.ok() && since->size() == 2 && (*since)[0].payload == "one" &&
            (*since)[0].state == outpost::OpState::kPending,
        "Since(0, 2) reads the first two (pending) ops");
  auto outbox = (*client)->Outbox();
  Check(outbox.ok() && outbox->size() == 3, "the outbox holds the three ops");

#ifdef CONSUMER_EXPECT_MINIMAL
  // A backend left out of the build says so.
  auto other = outpost::Client::Open({.store = std::string("sqlite:") + argv[1] + "/x.db", .user = "alice"});
  Check(
      !other.ok() && other.status().ToString().find("OUTPOST_WITH_SQLITE=OFF") != std::string::npos,
      "sqlite: is refused as not built: " + (other.ok() ? std::string("opened") : other.status().ToString()));
#endif

  if (failures > 0) return 1;
  std::printf("consumer program ok (Outpost %s)\n", outpost::Version());
  return 0;
}
