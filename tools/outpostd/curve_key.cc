// Copyright 2026 The Outpost Authors.
#include "curve_key.h"

#include "files.h"
#include "outpost/transport.h"

namespace outpostd {

outpost::Result<std::string> ReadCurveSecret(const std::string& path) {
  OUTPOST_ASSIGN_OR_RETURN(std::string text, ReadFile(path, 4096));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (!outpost::CurvePublicKey(text).ok()) {
    return outpost::Status::InvalidArgument(path +
                                            " does not hold a CURVE secret key (40 Z85 characters, as "
                                            "written by `outpostd keygen`)");
  }
  return text;
}

}  // namespace outpostd
