// Copyright 2026 The Outpost Authors.
//
// Status: the result of an operation that returns no value. Errors are values; no exception crosses the
// public API. A success is one byte plus an empty string (no allocation).
//
// Thread safety: a Status is a value; distinct objects may be used from distinct threads.
#ifndef OUTPOST_STATUS_H_
#define OUTPOST_STATUS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "outpost/export.h"

namespace outpost {

class [[nodiscard]] OUTPOST_EXPORT Status {
 public:
  enum class Code : uint8_t {
    kOk = 0,
    kNotFound,
    kInvalidArgument,   // bad input from a caller or a peer
    kCorruption,        // stored or received bytes fail verification
    kIOError,           // the OS or a backend failed
    kFull,              // a store or queue reached its limit
    kBusy,              // transient: try again later
    kUnavailable,       // transient: no connection
    kTimeout,           // transient: no answer in time
    kPermissionDenied,  // auth or membership refused
    kFailedPrecondition,
    kConflict,  // the peer holds different data for the same identity
    kAborted,
    kAlreadyExists,  // an insert found its key present; the stored value is untouched
  };

  Status() = default;
  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return Status(Code::kNotFound, msg); }
  static Status InvalidArgument(std::string_view msg) { return Status(Code::kInvalidArgument, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status IOError(std::string_view msg) { return Status(Code::kIOError, msg); }
  static Status Full(std::string_view msg) { return Status(Code::kFull, msg); }
  static Status Busy(std::string_view msg) { return Status(Code::kBusy, msg); }
  static Status Unavailable(std::string_view msg) { return Status(Code::kUnavailable, msg); }
  static Status Timeout(std::string_view msg) { return Status(Code::kTimeout, msg); }
  static Status PermissionDenied(std::string_view msg) { return Status(Code::kPermissionDenied, msg); }
  static Status FailedPrecondition(std::string_view msg) { return Status(Code::kFailedPrecondition, msg); }
  static Status Conflict(std::string_view msg) { return Status(Code::kConflict, msg); }
  static Status Aborted(std::string_view msg) { return Status(Code::kAborted, msg); }
  static Status AlreadyExists(std::string_view msg) { return Status(Code::kAlreadyExists, msg); }
  static Status FromCode(Code code, std::string_view msg) { return Status(code, msg); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }
  // Transient errors are worth retrying with backoff; the rest are final for the same input.
  bool IsTransient() const {
    return code_ == Code::kBusy || code_ == Code::kUnavailable || code_ == Code::kTimeout ||
           code_ == Code::kIOError;
  }

  // "NotFound: no such op" — for logs and error lines.
  std::string ToString() const;
  static std::string_view CodeName(Code code);

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Returns early from the enclosing function when `expr` is not ok.
#define OUTPOST_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::outpost::Status _outpost_status = (expr);        \
    if (!_outpost_status.ok()) return _outpost_status; \
  } while (0)

}  // namespace outpost

#endif  // OUTPOST_STATUS_H_
