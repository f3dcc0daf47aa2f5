// Copyright 2026 The Outpost Authors.
//
// The C API (outpost/outpost_c.h) over Client and Server. Every entry point runs its body inside Guard(),
// which catches whatever a C++ call may throw (std::bad_alloc above all) and turns it into an error code:
// no exception may unwind into C frames. Results are built in malloc'd memory, so that one free function
// per type releases them field by field, also when building them failed half-way.
#include "outpost/outpost_c.h"

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "outpost/client.h"
#include "outpost/ids.h"
#include "outpost/observer.h"
#include "outpost/server.h"
#include "outpost/status.h"
#include "outpost/transport.h"

struct outpost_client {
  std::unique_ptr<outpost::Client> client;
};

struct outpost_server {
  std::unique_ptr<outpost::Server> server;
  // Server::Step must not run while the background thread does: the handle remembers which one runs.
  std::mutex mu;
  bool started = false;
};

namespace {

using outpost::Status;

// The C codes are Status::Code's numbers, so a status converts by a cast; these catch a drift.
static_assert(OUTPOST_OK == static_cast<int>(Status::Code::kOk));
static_assert(OUTPOST_NOT_FOUND == static_cast<int>(Status::Code::kNotFound));
static_assert(OUTPOST_INVALID_ARGUMENT == static_cast<int>(Status::Code::kInvalidArgument));
static_assert(OUTPOST_CORRUPTION == static_cast<int>(Status::Code::kCorruption));
static_assert(OUTPOST_IO_ERROR == static_cast<int>(Status::Code::kIOError));
static_assert(OUTPOST_FULL == static_cast<int>(Status::Code::kFull));
static_assert(OUTPOST_BUSY == static_cast<int>(Status::Code::kBusy));
static_assert(OUTPOST_UNAVAILABLE == static_cast<int>(Status::Code::kUnavailable));
static_assert(OUTPOST_TIMEOUT == static_cast<int>(Status::Code::kTimeout));
static_assert(OUTPOST_PERMISSION_DENIED == static_cast<int>(Status::Code::kPermissionDenied));
static_assert(OUTPOST_FAILED_PRECONDITION == static_cast<int>(Status::Code::kFailedPrecondition));
static_assert(OUTPOST_CONFLICT == static_cast<int>(Status::Code::kConflict));
static_assert(OUTPOST_ABORTED == static_cast<int>(Status::Code::kAborted));
static_assert(OUTPOST_ALREADY_EXISTS == static_cast<int>(Status::Code::kAlreadyExists));
static_assert(OUTPOST_OP_PENDING == static_cast<int>(outpost::OpState::kPending));
static_assert(OUTPOST_OP_SENT == static_cast<int>(outpost::OpState::kSent));
static_assert(OUTPOST_OP_FAILED == static_cast<int>(outpost::OpState::kFailed));
static_assert(OUTPOST_CHANGE_ADDED == static_cast<int>(outpost::Change::Kind::kAdded));
static_assert(OUTPOST_CHANGE_UPDATED == static_cast<int>(outpost::Change::Kind::kUpdated));
static_assert(OUTPOST_CHANGE_REMOVED == static_cast<int>(outpost::Change::Kind::kRemoved));
static_assert(OUTPOST_CHANGE_WATERMARK == static_cast<int>(outpost::Change::Kind::kWatermark));
static_assert(OUTPOST_CHANGE_CURSOR == static_cast<int>(outpost::Change::Kind::kCursor));
static_assert(OUTPOST_WATERMARK_DELIVERED == static_cast<int>(outpost::WatermarkKind::kDelivered));
static_assert(OUTPOST_WATERMARK_READ == static_cast<int>(outpost::WatermarkKind::kRead));
static_assert(OUTPOST_CONNECTION_OFFLINE == static_cast<int>(outpost::ConnectionState::kOffline));
static_assert(OUTPOST_CONNECTION_CONNECTING == static_cast<int>(outpost::ConnectionState::kConnecting));
static_assert(OUTPOST_CONNECTION_ONLINE == static_cast<int>(outpost::ConnectionState::kOnline));
static_assert(OUTPOST_CONNECTION_AUTH_FAILED == static_cast<int>(outpost::ConnectionState::kAuthFailed));
static_assert(OUTPOST_CONNECTION_SIGNED_OUT == static_cast<int>(outpost::ConnectionState::kSignedOut));
static_assert(OUTPOST_CONNECTION_UPGRADE_REQUIRED ==
              static_cast<int>(outpost::ConnectionState::kUpgradeRequired));
static_assert(sizeof(outpost_op_id{}.bytes) == sizeof(outpost::OpId{}.bytes));

// Never throws: an error that cannot be allocated is reported as NULL (the code still says what failed).
outpost_error* MakeError(outpost_code code, std::string_view prefix, std::string_view msg) noexcept {
  auto* e = static_cast<outpost_error*>(std::malloc(sizeof(outpost_error)));
  if (e == nullptr) return nullptr;
  e->code = code;
  e->message = static_cast<char*>(std::malloc(prefix.size() + msg.size() + 1));
  if (e->message == nullptr) {
    std::free(e);
    return nullptr;
  }
  // An empty view may hold a null pointer, which memcpy must not be given even for 0 bytes.
  if (!prefix.empty()) std::memcpy(e->message, prefix.data(), prefix.size());
  if (!msg.empty()) std::memcpy(e->message + prefix.size(), msg.data(), msg.size());
  e->message[prefix.size() + msg.size()] = '\0';
  return e;
}

outpost_code Fail(outpost_error** error, outpost_code code, std::string_view msg,
                  std::string_view prefix = {}) noexcept {
  if (error != nullptr) *error = MakeError(code, prefix, msg);
  return code;
}

outpost_code Invalid(outpost_error** error, std::string_view msg) noexcept {
  return Fail(error, OUTPOST_INVALID_ARGUMENT, msg);
}

outpost_code FromStatus(const Status& status, outpost_error** error) noexcept {
  if (status.ok()) return OUTPOST_OK;
  return Fail(error, static_cast<outpost_code>(status.code()), status.message());
}

// Runs `body` (which returns an outpost_code) with *error cleared first and every exception caught.
template <typename Body>
outpost_code Guard(outpost_error** error, Body&& body) noexcept {
  if (error != nullptr) *error = nullptr;
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(error, OUTPOST_RESOURCE_EXHAUSTED, "out of memory");
  } catch (const std::exception& e) {
    return Fail(error, OUTPOST_INTERNAL, e.what(), "internal error: ");
  } catch (...) {
    return Fail(error, OUTPOST_INTERNAL, "internal error: unknown exception");
  }
}

// A NUL-terminated malloc'd copy of `s` (which may hold NULs); throws std::bad_alloc.
char* Dup(std::string_view s) {
  auto* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p == nullptr) throw std::bad_alloc();
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return p;
}

// Zeroed room for `n` T (NULL for none); throws std::bad_alloc.
template <typename T>
T* Calloc(size_t n) {
  if (n == 0) return nullptr;
  auto* p = static_cast<T*>(std::calloc(n, sizeof(T)));
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

outpost_op_id ToC(const outpost::OpId& id) {
  outpost_op_id out;
  std::memcpy(out.bytes, id.bytes.data(), sizeof out.bytes);
  return out;
}

outpost::OpId FromC(const outpost_op_id& id) {
  outpost::OpId out;
  std::memcpy(out.bytes.data(), id.bytes, sizeof id.bytes);
  return out;
}

void ClearOp(outpost_op* op) {
  std::free(op->stream);
  std::free(op->kind);
  std::free(op->payload);
  std::free(op->user);
  std::free(op->device);
  std::free(op->last_error);
  std::free(op->position);
}

// Fills a zeroed `out`; on a throw, what was filled is released by ClearOp (the caller's free function).
void FillOp(const outpost::OpInfo& in, outpost_op* out) {
  out->op_id = ToC(in.op_id);
  out->stream = Dup(in.stream);
  out->kind = Dup(in.kind);
  out->payload = reinterpret_cast<uint8_t*>(Dup(in.payload));
  out->payload_len = in.payload.size();
  out->user = Dup(in.user);
  out->device = Dup(in.device);
  out->own = in.own;
  out->state = static_cast<outpost_op_state>(in.state);
  out->seq = in.seq;
  out->device_counter = in.device_counter;
  out->client_time_ms = in.client_time_ms;
  out->depends_on = ToC(in.depends_on);
  out->created_at_ms = in.created_at_ms;
  out->attempts = in.attempts;
  out->next_attempt_at_ms = in.next_attempt_at_ms;
  out->last_error = Dup(in.last_error);
  out->last_error_code = static_cast<outpost_code>(in.last_error_code);
  out->position = reinterpret_cast<uint8_t*>(Dup(in.position));
  out->position_len = in.position.size();
  out->has_attachment = in.has_attachment;
}

struct OpsDeleter {
  void operator()(outpost_ops* ops) const { outpost_ops_free(ops); }
};

outpost_code ReturnOps(const outpost::Result<std::vector<outpost::OpInfo>>& result, outpost_ops** out,
                       outpost_error** error) {
  if (!result.ok()) return FromStatus(result.status(), error);
  std::unique_ptr<outpost_ops, OpsDeleter> ops(Calloc<outpost_ops>(1));
  ops->items = Calloc<outpost_op>(result->size());
  ops->count = result->size();
  for (size_t i = 0; i < result->size(); ++i) FillOp((*result)[i], &ops->items[i]);
  *out = ops.release();
  return OUTPOST_OK;
}

// The size checks of a struct that carries struct_size: 0 means not initialized, larger than ours means a
// newer header than this library.
template <typename T>
outpost_code CheckStructSize(const T* s, const char* name, outpost_error** error) {
  if (s->struct_size == 0) {
    return Invalid(error, std::string(name) + ".struct_size is 0: call its _init function first");
  }
  if (s->struct_size > sizeof(T)) {
    return Invalid(error, std::string(name) + ".struct_size " + std::to_string(s->struct_size) +
                              " is larger than this library's " + std::to_string(sizeof(T)) +
                              ": the program was built against a newer outpost_c.h");
  }
  return OUTPOST_OK;
}

// Whether `field` lies within the caller's struct_size (fields past it take their defaults).
#define OUTPOST_C_HAS(ptr, field) \
  ((ptr)->struct_size >= offsetof(std::remove_pointer_t<decltype(ptr)>, field) + sizeof((ptr)->field))

}  // namespace

extern "C" {

void outpost_error_free(outpost_error* error) {
  if (error == nullptr) return;
  std::free(error->message);
  std::free(error);
}

const char* outpost_code_name(outpost_code code) {
  switch (code) {
    case OUTPOST_OK:
      return "OK";
    case OUTPOST_NOT_FOUND:
      return "NOT_FOUND";
    case OUTPOST_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case OUTPOST_CORRUPTION:
      return "CORRUPTION";
    case OUTPOST_IO_ERROR:
      return "IO_ERROR";
    case OUTPOST_FULL:
      return "FULL";
    case OUTPOST_BUSY:
      return "BUSY";
    case OUTPOST_UNAVAILABLE:
      return "UNAVAILABLE";
    case OUTPOST_TIMEOUT:
      return "TIMEOUT";
    case OUTPOST_PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case OUTPOST_FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case OUTPOST_CONFLICT:
      return "CONFLICT";
    case OUTPOST_ABORTED:
      return "ABORTED";
    case OUTPOST_ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case OUTPOST_INTERNAL:
      return "INTERNAL";
    case OUTPOST_RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
  }
  return "UNKNOWN";
}

void outpost_string_free(char* text) { std::free(text); }

outpost_code outpost_op_id_to_string(const outpost_op_id* id, char out[OUTPOST_OP_ID_STRING_BYTES],
                                     outpost_error** error) {
  return Guard(error, [&] {
    if (id == nullptr) return Invalid(error, "op id is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    const std::string text = FromC(*id).ToString();
    if (text.size() + 1 > OUTPOST_OP_ID_STRING_BYTES)
      return Fail(error, OUTPOST_INTERNAL, "op id text too long");
    std::memcpy(out, text.c_str(), text.size() + 1);
    return OUTPOST_OK;
  });
}

outpost_code outpost_op_id_from_string(const char* text, outpost_op_id* out, outpost_error** error) {
  return Guard(error, [&] {
    if (text == nullptr) return Invalid(error, "op id text is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    auto id = outpost::OpId::Parse(text);
    if (!id.ok()) return FromStatus(id.status(), error);
    *out = ToC(*id);
    return OUTPOST_OK;
  });
}

bool outpost_op_id_is_nil(const outpost_op_id* id) {
  if (id == nullptr) return true;
  for (uint8_t b : id->bytes) {
    if (b != 0) return false;
  }
  return true;
}

void outpost_ops_free(outpost_ops* ops) {
  if (ops == nullptr) return;
  for (size_t i = 0; i < ops->count; ++i) ClearOp(&ops->items[i]);
  std::free(ops->items);
  std::free(ops);
}

void outpost_op_free(outpost_op* op) {
  if (op == nullptr) return;
  ClearOp(op);
  std::free(op);
}

void outpost_strings_free(outpost_strings* strings) {
  if (strings == nullptr) return;
  for (size_t i = 0; i < strings->count; ++i) std::free(strings->items[i]);
  std::free(strings->items);
  std::free(strings);
}

void outpost_stream_list_free(outpost_stream_list* streams) {
  if (streams == nullptr) return;
  for (size_t i = 0; i < streams->count; ++i) std::free(streams->items[i].stream);
  std::free(streams->items);
  std::free(streams);
}

// ---- Client ----

void outpost_client_options_init(outpost_client_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  // ClientOptions holds strings, whose construction may throw: its numbers are read in a try, and the
  // fields stay zero in the (out of memory) case it fails; outpost_client_open then fails the same way.
  try {
    const outpost::ClientOptions d;
    options->store_sync = d.store_sync;
    options->follow_memberships = d.follow_memberships;
    options->block_stream_on_failure = d.block_stream_on_failure;
    options->send_read_receipts = d.send_read_receipts;
    options->payload_bytes_max = d.payload_bytes_max;
    options->ops_per_batch_max = d.ops_per_batch_max;
    options->attempts_max = d.attempts_max;
    options->backoff_base_ms = d.backoff_base_ms;
    options->backoff_cap_ms = d.backoff_cap_ms;
    options->reconnect_cap_ms = d.reconnect_cap_ms;
    options->ack_timeout_ms = d.ack_timeout_ms;
    options->age_ms_max = d.age_ms_max;
  } catch (...) {
  }
}

outpost_code outpost_client_open(const outpost_client_options* options, outpost_client** out,
                                 outpost_error** error) {
  return Guard(error, [&] {
    if (options == nullptr) return Invalid(error, "options is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    if (outpost_code c = CheckStructSize(options, "outpost_client_options", error); c != OUTPOST_OK) return c;
    outpost::ClientOptions o;
    const auto* p = options;
    if (OUTPOST_C_HAS(p, store) && p->store != nullptr) o.store = p->store;
    if (OUTPOST_C_HAS(p, server) && p->server != nullptr) o.server = p->server;
    if (OUTPOST_C_HAS(p, user) && p->user != nullptr) o.user = p->user;
    if (OUTPOST_C_HAS(p, device) && p->device != nullptr) o.device = p->device;
    if (OUTPOST_C_HAS(p, token) && p->token != nullptr) o.token = p->token;
    if (OUTPOST_C_HAS(p, store_sync)) o.store_sync = p->store_sync;
    if (OUTPOST_C_HAS(p, follow_memberships)) o.follow_memberships = p->follow_memberships;
    if (OUTPOST_C_HAS(p, block_stream_on_failure)) o.block_stream_on_failure = p->block_stream_on_failure;
    if (OUTPOST_C_HAS(p, send_read_receipts)) o.send_read_receipts = p->send_read_receipts;
    if (OUTPOST_C_HAS(p, payload_bytes_max)) o.payload_bytes_max = p->payload_bytes_max;
    if (OUTPOST_C_HAS(p, ops_per_batch_max)) o.ops_per_batch_max = p->ops_per_batch_max;
    if (OUTPOST_C_HAS(p, attempts_max)) o.attempts_max = p->attempts_max;
    if (OUTPOST_C_HAS(p, backoff_base_ms)) o.backoff_base_ms = p->backoff_base_ms;
    if (OUTPOST_C_HAS(p, backoff_cap_ms)) o.backoff_cap_ms = p->backoff_cap_ms;
    if (OUTPOST_C_HAS(p, reconnect_cap_ms)) o.reconnect_cap_ms = p->reconnect_cap_ms;
    if (OUTPOST_C_HAS(p, ack_timeout_ms)) o.ack_timeout_ms = p->ack_timeout_ms;
    if (OUTPOST_C_HAS(p, age_ms_max)) o.age_ms_max = p->age_ms_max;
    // Client::Open checks the batch and backoff limits; these it does not, and a zero payload limit or a
    // non-positive reconnect cap would make a client that never sends, or spins.
    if (o.payload_bytes_max == 0) return Invalid(error, "payload_bytes_max must be > 0");
    if (o.reconnect_cap_ms <= 0 || o.age_ms_max < 0) {
      return Invalid(error, "reconnect_cap_ms must be > 0 and age_ms_max >= 0");
    }
    auto client = outpost::Client::Open(std::move(o));
    if (!client.ok()) return FromStatus(client.status(), error);
    auto handle = std::make_unique<outpost_client>();
    handle->client = std::move(*client);
    *out = handle.release();
    return OUTPOST_OK;
  });
}

void outpost_client_close(outpost_client* client) {
  // ~Client does not throw (a destructor is noexcept): nothing to catch.
  delete client;
}

outpost_code outpost_client_device(outpost_client* client, char** out, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    *out = Dup(client->client->device());
    return OUTPOST_OK;
  });
}

outpost_code outpost_submit(outpost_client* client, const char* stream, const char* kind, const void* payload,
                            size_t payload_len, const outpost_op_id* depends_on, outpost_op_id* out_id,
                            outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    if (kind == nullptr) return Invalid(error, "kind is NULL");
    if (payload == nullptr && payload_len != 0)
      return Invalid(error, "payload is NULL but payload_len is not 0");
    outpost::SubmitOptions so;
    if (depends_on != nullptr) so.depends_on = FromC(*depends_on);
    const std::string_view bytes = payload_len == 0
                                       ? std::string_view()
                                       : std::string_view(static_cast<const char*>(payload), payload_len);
    auto id = client->client->Submit(stream, kind, bytes, so);
    if (!id.ok()) return FromStatus(id.status(), error);
    if (out_id != nullptr) *out_id = ToC(*id);
    return OUTPOST_OK;
  });
}

outpost_code outpost_latest(outpost_client* client, const char* stream, size_t n, outpost_ops** out,
                            outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    return ReturnOps(client->client->Latest(stream, n), out, error);
  });
}

outpost_code outpost_before(outpost_client* client, const char* stream, const void* position,
                            size_t position_len, size_t n, outpost_ops** out, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    if (position == nullptr || position_len == 0) return Invalid(error, "position is NULL or empty");
    if (out == nullptr) return Invalid(error, "out is NULL");
    const std::string_view pos(static_cast<const char*>(position), position_len);
    return ReturnOps(client->client->Before(stream, pos, n), out, error);
  });
}

outpost_code outpost_since(outpost_client* client, const char* stream, uint64_t after_seq, size_t n,
                           outpost_ops** out, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    return ReturnOps(client->client->Since(stream, after_seq, n), out, error);
  });
}

outpost_code outpost_get(outpost_client* client, const outpost_op_id* op_id, outpost_op** out,
                         outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (op_id == nullptr) return Invalid(error, "op id is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    auto info = client->client->Get(FromC(*op_id));
    if (!info.ok()) return FromStatus(info.status(), error);
    auto* op = Calloc<outpost_op>(1);
    try {
      FillOp(*info, op);
    } catch (...) {
      outpost_op_free(op);
      throw;
    }
    *out = op;
    return OUTPOST_OK;
  });
}

outpost_code outpost_members(outpost_client* client, const char* stream, outpost_strings** out,
                             outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    auto members = client->client->Members(stream);
    if (!members.ok()) return FromStatus(members.status(), error);
    struct Deleter {
      void operator()(outpost_strings* s) const { outpost_strings_free(s); }
    };
    std::unique_ptr<outpost_strings, Deleter> list(Calloc<outpost_strings>(1));
    list->items = Calloc<char*>(members->size());
    list->count = members->size();
    for (size_t i = 0; i < members->size(); ++i) list->items[i] = Dup((*members)[i]);
    *out = list.release();
    return OUTPOST_OK;
  });
}

outpost_code outpost_outbox(outpost_client* client, size_t limit, outpost_ops** out, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    return ReturnOps(client->client->Outbox(limit), out, error);
  });
}

outpost_code outpost_streams(outpost_client* client, outpost_stream_list** out, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    auto streams = client->client->Streams();
    if (!streams.ok()) return FromStatus(streams.status(), error);
    struct Deleter {
      void operator()(outpost_stream_list* s) const { outpost_stream_list_free(s); }
    };
    std::unique_ptr<outpost_stream_list, Deleter> list(Calloc<outpost_stream_list>(1));
    list->items = Calloc<outpost_stream_info>(streams->size());
    list->count = streams->size();
    for (size_t i = 0; i < streams->size(); ++i) {
      const outpost::StreamInfo& s = (*streams)[i];
      outpost_stream_info& o = list->items[i];
      o.stream = Dup(s.stream);
      o.cursor = s.cursor;
      o.high_seq = s.high_seq;
      o.read_seq = s.read_seq;
      o.outbox = s.outbox;
      o.failed = s.failed;
      o.followed = s.followed;
    }
    *out = list.release();
    return OUTPOST_OK;
  });
}

outpost_code outpost_cursor(outpost_client* client, const char* stream, uint64_t* out,
                            outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    auto cursor = client->client->Cursor(stream);
    if (!cursor.ok()) return FromStatus(cursor.status(), error);
    *out = *cursor;
    return OUTPOST_OK;
  });
}

outpost_code outpost_retry(outpost_client* client, const outpost_op_id* op_id, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (op_id == nullptr) return Invalid(error, "op id is NULL");
    return FromStatus(client->client->Retry(FromC(*op_id)), error);
  });
}

outpost_code outpost_discard(outpost_client* client, const outpost_op_id* op_id, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (op_id == nullptr) return Invalid(error, "op id is NULL");
    return FromStatus(client->client->Discard(FromC(*op_id)), error);
  });
}

outpost_code outpost_follow(outpost_client* client, const char* stream, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    return FromStatus(client->client->Follow(stream), error);
  });
}

outpost_code outpost_mark_read(outpost_client* client, const char* stream, uint64_t seq,
                               outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (stream == nullptr) return Invalid(error, "stream is NULL");
    return FromStatus(client->client->MarkRead(stream, seq), error);
  });
}

outpost_code outpost_subscribe(outpost_client* client, const char* stream, outpost_change_fn fn,
                               void* user_data, uint64_t* out_id, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (fn == nullptr) return Invalid(error, "callback is NULL");
    if (out_id == nullptr) return Invalid(error, "out_id is NULL");
    *out_id = client->client->Subscribe(stream == nullptr ? "" : stream,
                                        [fn, user_data](const std::vector<outpost::Change>& changes) {
                                          // The array points into `changes`: no string is copied. An
                                          // allocation failure drops the events (documented): an exception
                                          // must not unwind into the engine's delivering thread either.
                                          std::vector<outpost_change> out;
                                          try {
                                            out.resize(changes.size());
                                          } catch (...) {
                                            return;
                                          }
                                          for (size_t i = 0; i < changes.size(); ++i) {
                                            const outpost::Change& c = changes[i];
                                            outpost_change& o = out[i];
                                            o.kind = static_cast<outpost_change_kind>(c.kind);
                                            o.stream = c.stream.c_str();
                                            o.op_id = ToC(c.op_id);
                                            o.op_kind = c.op_kind.c_str();
                                            o.state = static_cast<outpost_op_state>(c.state);
                                            o.own = c.own;
                                            o.seq = c.seq;
                                            o.user = c.user.c_str();
                                            o.device = c.device.c_str();
                                            o.watermark = static_cast<outpost_watermark_kind>(c.watermark);
                                          }
                                          fn(user_data, out.data(), out.size());
                                        });
    return OUTPOST_OK;
  });
}

outpost_code outpost_subscribe_connection(outpost_client* client, outpost_connection_fn fn, void* user_data,
                                          uint64_t* out_id, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (fn == nullptr) return Invalid(error, "callback is NULL");
    if (out_id == nullptr) return Invalid(error, "out_id is NULL");
    *out_id = client->client->SubscribeConnection([fn, user_data](const outpost::ConnectionEvent& ev) {
      outpost_connection_event out;
      out.state = static_cast<outpost_connection_state>(ev.state);
      out.reason = ev.reason.c_str();
      out.retry_at_ms = ev.retry_at_ms;
      fn(user_data, &out);
    });
    return OUTPOST_OK;
  });
}

outpost_code outpost_unsubscribe(outpost_client* client, uint64_t id, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    client->client->Unsubscribe(id);
    return OUTPOST_OK;
  });
}

outpost_code outpost_connection(outpost_client* client, outpost_connection_state* state, char** reason,
                                int64_t* retry_at_ms, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (state == nullptr) return Invalid(error, "state is NULL");
    const outpost::ConnectionEvent ev = client->client->connection();
    if (reason != nullptr) *reason = Dup(ev.reason);
    *state = static_cast<outpost_connection_state>(ev.state);
    if (retry_at_ms != nullptr) *retry_at_ms = ev.retry_at_ms;
    return OUTPOST_OK;
  });
}

outpost_code outpost_start(outpost_client* client, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    client->client->Start();
    return OUTPOST_OK;
  });
}

outpost_code outpost_stop(outpost_client* client, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    client->client->Stop();
    return OUTPOST_OK;
  });
}

outpost_code outpost_step(outpost_client* client, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    return FromStatus(client->client->Step(), error);
  });
}

outpost_code outpost_run_until_idle(outpost_client* client, int64_t timeout_ms, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (timeout_ms < 0) return Invalid(error, "timeout_ms must be >= 0");
    return FromStatus(client->client->RunUntilIdle(timeout_ms), error);
  });
}

outpost_code outpost_set_online(outpost_client* client, bool online, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    client->client->SetOnline(online);
    return OUTPOST_OK;
  });
}

outpost_code outpost_set_token(outpost_client* client, const char* token, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (token == nullptr) return Invalid(error, "token is NULL");
    client->client->SetToken(token);
    return OUTPOST_OK;
  });
}

outpost_code outpost_stats(outpost_client* client, outpost_client_stats* out, outpost_error** error) {
  return Guard(error, [&] {
    if (client == nullptr) return Invalid(error, "client is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    if (out->struct_size < sizeof out->struct_size) {
      return Invalid(error, "outpost_client_stats.struct_size must be set to sizeof(outpost_client_stats)");
    }
    const outpost::ClientStats s = client->client->Stats();
    outpost_client_stats full;
    std::memset(&full, 0, sizeof full);
    full.connected = s.connected;
    full.auth_failed = s.auth_failed;
    full.signed_out = s.signed_out;
    full.upgrade_required = s.upgrade_required;
    full.rebases = s.rebases;
    full.ops_requeued = s.ops_requeued;
    full.ops_set_aside = s.ops_set_aside;
    full.ops_lost = s.ops_lost;
    full.outbox_depth = s.outbox_depth;
    full.failed = s.failed;
    full.oldest_pending_ms = s.oldest_pending_ms;
    full.batches_sent = s.batches_sent;
    full.ops_sent = s.ops_sent;
    full.acks = s.acks;
    full.gaps = s.gaps;
    full.conflicts = s.conflicts;
    full.timeouts = s.timeouts;
    full.pulls = s.pulls;
    full.ops_merged = s.ops_merged;
    full.connects = s.connects;
    full.bad_frames = s.bad_frames;
    full.live_merges = s.live_merges;
    full.uploads = s.uploads;
    full.upload_bytes_done = s.upload_bytes_done;
    full.upload_bytes_total = s.upload_bytes_total;
    full.upload_chunks = s.upload_chunks;
    full.upload_bytes_sent = s.upload_bytes_sent;
    full.store_errors = s.store_errors;
    full.attempts = s.attempts;
    full.retries_timeout = s.retries_timeout;
    full.retries_busy = s.retries_busy;
    full.retries_disconnect = s.retries_disconnect;
    full.retries_gap = s.retries_gap;
    full.retries_conflict = s.retries_conflict;
    full.retries_other = s.retries_other;
    // An older caller's struct is a prefix of ours: copy what fits, keep its own struct_size. A newer
    // caller's extra fields are left as they were.
    const size_t caller_size = out->struct_size;
    const size_t n = caller_size < sizeof full ? caller_size : sizeof full;
    std::memcpy(out, &full, n);
    out->struct_size = caller_size;
    return OUTPOST_OK;
  });
}

// ---- Server ----

void outpost_server_options_init(outpost_server_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  options->membership = false;
  options->store_sync = true;
}

outpost_code outpost_server_open(const outpost_server_options* options, outpost_server** out,
                                 outpost_error** error) {
  return Guard(error, [&] {
    if (options == nullptr) return Invalid(error, "options is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    if (outpost_code c = CheckStructSize(options, "outpost_server_options", error); c != OUTPOST_OK) return c;
    const auto* p = options;
    if (!OUTPOST_C_HAS(p, listen) || p->listen == nullptr || p->listen[0] == '\0') {
      return Invalid(error, "listen URI is missing (e.g. \"inproc:NAME\")");
    }
    outpost::ServerOptions so;
    if (OUTPOST_C_HAS(p, store) && p->store != nullptr) so.store = p->store;
    if (OUTPOST_C_HAS(p, membership)) so.membership = p->membership;
    if (OUTPOST_C_HAS(p, store_sync)) so.store_sync = p->store_sync;
    auto listener = outpost::Listen(p->listen);
    if (!listener.ok()) return FromStatus(listener.status(), error);
    auto server = outpost::Server::Open(std::move(so), std::move(*listener));
    if (!server.ok()) return FromStatus(server.status(), error);
    auto handle = std::make_unique<outpost_server>();
    handle->server = std::move(*server);
    *out = handle.release();
    return OUTPOST_OK;
  });
}

outpost_code outpost_server_start(outpost_server* server, outpost_error** error) {
  return Guard(error, [&] {
    if (server == nullptr) return Invalid(error, "server is NULL");
    std::lock_guard<std::mutex> lock(server->mu);
    if (!server->started) server->server->Start();
    server->started = true;
    return OUTPOST_OK;
  });
}

outpost_code outpost_server_stop(outpost_server* server, outpost_error** error) {
  return Guard(error, [&] {
    if (server == nullptr) return Invalid(error, "server is NULL");
    std::lock_guard<std::mutex> lock(server->mu);
    if (server->started) server->server->Stop();
    server->started = false;
    return OUTPOST_OK;
  });
}

outpost_code outpost_server_step(outpost_server* server, size_t* handled, outpost_error** error) {
  return Guard(error, [&] {
    if (server == nullptr) return Invalid(error, "server is NULL");
    std::lock_guard<std::mutex> lock(server->mu);
    if (server->started) {
      return Fail(error, OUTPOST_FAILED_PRECONDITION,
                  "the server runs on its own thread: stop it before stepping");
    }
    const size_t n = server->server->Step();
    if (handled != nullptr) *handled = n;
    return OUTPOST_OK;
  });
}

outpost_code outpost_server_endpoint(outpost_server* server, char** out, outpost_error** error) {
  return Guard(error, [&] {
    if (server == nullptr) return Invalid(error, "server is NULL");
    if (out == nullptr) return Invalid(error, "out is NULL");
    *out = Dup(server->server->endpoint());
    return OUTPOST_OK;
  });
}

void outpost_server_close(outpost_server* server) {
  // ~Server stops its thread first.
  delete server;
}

}  // extern "C"
