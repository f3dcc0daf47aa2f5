// Copyright 2026 The Outpost Authors.
//
// `outpostd keygen` and `outpostd curve-public`: the server's CURVE keys.
#include <fmt/core.h>

#include <string>

#include "command.h"
#include "curve_key.h"
#include "files.h"
#include "outpost/transport.h"

namespace outpostd {
namespace {

constexpr const char* kKeygenUsage =
    R"(Makes a CURVE key pair (Z85). Prints the public key, then the secret key, one per line. With --secret-file
the secret goes to FILE instead (mode 0600, not overwritten) and only the public key is printed.
Serve with `--curve-secret FILE`; devices need the public key (TransportOptions::curve_server_public_key).)";

constexpr const char* kCurvePublicUsage =
    R"(Prints the public key that belongs to the CURVE secret key in FILE: the key devices need.)";

int Keygen(const Flags& flags) {
  if (!flags.positional().empty())
    return Fail(kExitUsage, "keygen: unexpected argument '" + flags.positional()[0] + "'");
  auto pair = outpost::NewCurveKeyPair();
  if (!pair.ok()) return Fail(kExitError, "keygen: " + pair.status().ToString());
  if (flags.Has("secret-file")) {
    const std::string path = flags.Get("secret-file");
    if (path.empty()) return Fail(kExitUsage, "keygen: --secret-file needs a path");
    if (ReadFile(path, 4096).ok())
      return Fail(kExitError, "keygen: " + path + " exists; not overwriting a key");
    if (outpost::Status s = WriteFileAtomic(path, pair->secret_key + "\n", 0600); !s.ok()) {
      return Fail(kExitError, "keygen: " + s.message());
    }
    fmt::print("{}\n", pair->public_key);
    return kExitOk;
  }
  fmt::print("{}\n{}\n", pair->public_key, pair->secret_key);
  return kExitOk;
}

int CurvePublic(const Flags& flags) {
  if (!flags.positional().empty()) {
    return Fail(kExitUsage, "curve-public: unexpected argument '" + flags.positional()[0] + "'");
  }
  const std::string path = flags.Get("curve-secret");
  if (path.empty()) return Fail(kExitUsage, "curve-public: --curve-secret FILE is required");
  auto secret = ReadCurveSecret(path);
  if (!secret.ok()) return Fail(kExitError, "curve-public: " + secret.status().message());
  auto pub = outpost::CurvePublicKey(*secret);
  if (!pub.ok()) return Fail(kExitError, "curve-public: " + pub.status().ToString());
  fmt::print("{}\n", *pub);
  return kExitOk;
}

}  // namespace

Command KeygenCommand() {
  return {
      "keygen",
      "make a CURVE key pair for --curve-secret",
      "",
      kKeygenUsage,
      {{"secret-file", true, false, "write the secret key to FILE (mode 0600, never overwritten)", "FILE"}},
      &Keygen};
}

Command CurvePublicCommand() {
  return {"curve-public",
          "print the public key of a CURVE secret key file",
          "",
          kCurvePublicUsage,
          {{"curve-secret", true, false, "the CURVE secret key file (required)", "FILE"}},
          &CurvePublic};
}

}  // namespace outpostd
