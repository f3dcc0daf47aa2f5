// Copyright 2026 The Outpost Authors.
//
// The server's CURVE secret key file: the 40-character Z85 secret, optionally followed by a newline.
#ifndef OUTPOST_TOOLS_OUTPOSTD_CURVE_KEY_H_
#define OUTPOST_TOOLS_OUTPOSTD_CURVE_KEY_H_

#include <string>

#include "outpost/result.h"

namespace outpostd {

// The secret key in `path`. NotFound / IOError for the file, InvalidArgument when it holds no Z85 secret.
outpost::Result<std::string> ReadCurveSecret(const std::string& path);

}  // namespace outpostd

#endif  // OUTPOST_TOOLS_OUTPOSTD_CURVE_KEY_H_
