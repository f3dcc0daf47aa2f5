// Copyright 2026 The Outpost Authors.
#include "outpost/version.h"

namespace outpost {

const char* Version() { return OUTPOST_VERSION_STRING; }

}  // namespace outpost
