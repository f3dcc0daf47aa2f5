/* Copyright 2026 The Outpost Authors.
 *
 * The C API: the device-side Client (outpost/client.h) and an in-process Server (outpost/server.h) for
 * programs and bindings that cannot use C++ (Python, JNI, Swift, ...). Pure C11; usable from C++.
 *
 * Rules that hold for every function below:
 *
 *  - Handles are opaque (outpost_client*, outpost_server*): made by an _open function, released by the
 *    matching _close (NULL allowed: a no-op). A handle must not be used after its _close.
 *  - Ownership: everything a function returns through an out-parameter is a fresh heap object owned by the
 *    caller, released with the one matching function named in its comment (outpost_ops_free,
 *    outpost_op_free, outpost_strings_free, outpost_stream_list_free, outpost_string_free or
 *    outpost_error_free); each accepts NULL. Strings and buffers passed in are only read during the call:
 *    the library keeps copies of what it needs. Pointers handed to a callback are valid only until the
 *    callback returns.
 *  - Errors: functions that can fail return an outpost_code (OUTPOST_OK = 0 on success). Its values mirror
 *    outpost::Status::Code, plus OUTPOST_INTERNAL and OUTPOST_RESOURCE_EXHAUSTED (out of memory). The last
 *    parameter `error` (NULL allowed) is always written: NULL on success, on failure a new outpost_error
 *    with the code and a message for people (or NULL when even that could not be allocated); free it with
 *    outpost_error_free. Out-parameters are written only on success. A NULL handle, a NULL required
 *    pointer or a malformed value is OUTPOST_INVALID_ARGUMENT with a message, never a crash. No C++
 *    exception crosses this API.
 *  - ABI growth: the options structs carry `struct_size`, set by their _init function (to sizeof as the
 *    caller's header knows it). A newer library reads only the fields that fit in struct_size and takes the
 *    defaults for the rest, so a program built against an older header keeps working; a struct_size of 0
 *    (not initialized) or larger than the library knows is OUTPOST_INVALID_ARGUMENT. New fields are only
 *    ever added at the end. outpost_client_stats also carries a struct_size that the caller sets.
 *  - Threads: every outpost_client function may be called from any thread. Callbacks of one client never
 *    run concurrently with each other; they run on the thread that made the change, once it holds no engine
 *    lock: the caller of outpost_step/outpost_run_until_idle, the background thread after outpost_start, the
 *    engine's completion thread for submits, or the caller of outpost_retry/outpost_discard (or, when
 *    another thread is delivering at that moment, that thread: observer.h). outpost_submit, outpost_retry,
 *    outpost_discard and outpost_step return once the events of their changes were delivered. Inside
 *    a callback, every read, outpost_stats, outpost_connection, outpost_retry, outpost_discard,
 *    outpost_mark_read, outpost_follow, outpost_set_online, outpost_set_token, outpost_subscribe* and
 *    outpost_unsubscribe may be called; outpost_submit returns OUTPOST_FAILED_PRECONDITION there; a callback
 *    must not call outpost_step, outpost_run_until_idle, outpost_start, outpost_stop or outpost_client_close,
 *    and should return quickly (it holds up the thread that delivers).
 */
#ifndef OUTPOST_OUTPOST_C_H_
#define OUTPOST_OUTPOST_C_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define OUTPOST_C_API __attribute__((visibility("default")))
#else
#define OUTPOST_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ---- */

/* The same numbers as outpost::Status::Code, then two codes of the C boundary. */
typedef enum outpost_code {
  OUTPOST_OK = 0,
  OUTPOST_NOT_FOUND = 1,
  OUTPOST_INVALID_ARGUMENT = 2, /* bad input from the caller (or a peer) */
  OUTPOST_CORRUPTION = 3,
  OUTPOST_IO_ERROR = 4,
  OUTPOST_FULL = 5,
  OUTPOST_BUSY = 6,        /* transient */
  OUTPOST_UNAVAILABLE = 7, /* transient: no connection */
  OUTPOST_TIMEOUT = 8,     /* transient */
  OUTPOST_PERMISSION_DENIED = 9,
  OUTPOST_FAILED_PRECONDITION = 10,
  OUTPOST_CONFLICT = 11,
  OUTPOST_ABORTED = 12,
  OUTPOST_ALREADY_EXISTS = 13,
  OUTPOST_INTERNAL = 100,           /* a bug in the library (an unexpected C++ exception) */
  OUTPOST_RESOURCE_EXHAUSTED = 101, /* out of memory */
} outpost_code;

typedef struct outpost_error {
  outpost_code code;
  char* message; /* NUL-terminated, never NULL */
} outpost_error;

OUTPOST_C_API void outpost_error_free(outpost_error* error);
/* "INVALID_ARGUMENT", ...; a static string (never freed); "UNKNOWN" for a value not listed above. */
OUTPOST_C_API const char* outpost_code_name(outpost_code code);

/* Frees a string returned by this API (NULL allowed). */
OUTPOST_C_API void outpost_string_free(char* text);

/* ---- Op ids ---- */

/* A UUIDv7 (ids.h). All zero: the nil id ("none"). */
typedef struct outpost_op_id {
  uint8_t bytes[16];
} outpost_op_id;

#define OUTPOST_OP_ID_STRING_BYTES 37 /* 36 characters and the NUL */

/* Writes the canonical lowercase text form and a NUL into `out` (37 bytes). */
OUTPOST_C_API outpost_code outpost_op_id_to_string(const outpost_op_id* id,
                                                   char out[OUTPOST_OP_ID_STRING_BYTES],
                                                   outpost_error** error);
/* Parses the canonical form; INVALID_ARGUMENT when `text` is not one. */
OUTPOST_C_API outpost_code outpost_op_id_from_string(const char* text, outpost_op_id* out,
                                                     outpost_error** error);
OUTPOST_C_API bool outpost_op_id_is_nil(const outpost_op_id* id);

/* ---- Ops ---- */

typedef enum outpost_op_state {
  OUTPOST_OP_PENDING = 0, /* stored locally, not acknowledged yet */
  OUTPOST_OP_SENT = 1,    /* applied by the server: seq is its place in the stream */
  OUTPOST_OP_FAILED = 2,  /* not sent until outpost_retry: last_error says why */
} outpost_op_state;

/* One op of a stream view (OpInfo). Every pointer is owned by the struct's container. */
typedef struct outpost_op {
  outpost_op_id op_id;
  char* stream;
  char* kind;
  uint8_t* payload; /* payload_len bytes, followed by a NUL that is not counted */
  size_t payload_len;
  char* user;   /* author */
  char* device; /* author's device */
  bool own;     /* made on this device */
  outpost_op_state state;
  uint64_t seq; /* 0 until sent */
  uint64_t device_counter;
  int64_t client_time_ms;
  outpost_op_id depends_on; /* nil when none */
  /* Outbox fields (own ops). */
  int64_t created_at_ms;
  uint32_t attempts;
  int64_t next_attempt_at_ms;
  char* last_error; /* "" when none */
  outpost_code last_error_code;
  /* Opaque place in the view (binary): pass to outpost_before to page back from this op. */
  uint8_t* position;
  size_t position_len;
  bool has_attachment;
} outpost_op;

typedef struct outpost_ops {
  outpost_op* items; /* count ops, oldest first */
  size_t count;
} outpost_ops;

OUTPOST_C_API void outpost_ops_free(outpost_ops* ops);
OUTPOST_C_API void outpost_op_free(outpost_op* op);

typedef struct outpost_strings {
  char** items;
  size_t count;
} outpost_strings;

OUTPOST_C_API void outpost_strings_free(outpost_strings* strings);

typedef struct outpost_stream_info {
  char* stream;
  uint64_t cursor;   /* highest seq merged */
  uint64_t high_seq; /* highest seq the server announced */
  uint64_t read_seq; /* outpost_mark_read */
  uint64_t outbox;   /* own ops waiting for an answer */
  uint64_t failed;   /* own ops failed */
  bool followed;
} outpost_stream_info;

typedef struct outpost_stream_list {
  outpost_stream_info* items;
  size_t count;
} outpost_stream_list;

OUTPOST_C_API void outpost_stream_list_free(outpost_stream_list* streams);

/* ---- Client ---- */

typedef struct outpost_client outpost_client;

/* ClientOptions. Strings are copied by outpost_client_open; NULL means the default (empty for all but
 * `store`). Call outpost_client_options_init first. */
typedef struct outpost_client_options {
  size_t struct_size;
  const char* store;  /* storage URI, e.g. "lmdb:/data/outpost" (storage.h); default "lmdb:outpost-data" */
  const char* server; /* transport URI, e.g. "inproc:main", "tcp://host:port"; NULL: offline only */
  const char* user;
  const char* device; /* NULL: the store's own id */
  const char* token;
  bool store_sync;         /* default true; false: a power loss may undo recent commits */
  bool follow_memberships; /* follow the user's membership feed and the streams it joins (needs a user) */
  bool block_stream_on_failure;
  bool send_read_receipts;
  uint32_t payload_bytes_max;
  uint32_t ops_per_batch_max;
  uint32_t attempts_max; /* 0: unlimited */
  int64_t backoff_base_ms;
  int64_t backoff_cap_ms;
  int64_t reconnect_cap_ms;
  int64_t ack_timeout_ms;
  int64_t age_ms_max; /* 0: unlimited */
} outpost_client_options;

/* Sets struct_size and every field to ClientOptions' default. */
OUTPOST_C_API void outpost_client_options_init(outpost_client_options* options);

/* Opens the store and makes the client (no sync runs until outpost_start or outpost_step). Release with
 * outpost_client_close. Errors: INVALID_ARGUMENT (bad options, unknown URI scheme), IO_ERROR (the store). */
OUTPOST_C_API outpost_code outpost_client_open(const outpost_client_options* options, outpost_client** out,
                                               outpost_error** error);
/* Stops the sync thread and releases the client (NULL allowed). Submits already returned are durable. Not
 * from inside a callback. */
OUTPOST_C_API void outpost_client_close(outpost_client* client);
/* This installation's device id; free with outpost_string_free. */
OUTPOST_C_API outpost_code outpost_client_device(outpost_client* client, char** out, outpost_error** error);

/* Durable, queued and visible, then returns (the op id into `out_id`, NULL allowed). `payload` may be NULL
 * when payload_len is 0. `depends_on` (NULL: none): not sent before that op, fails if it fails.
 * FAILED_PRECONDITION from inside a callback. */
OUTPOST_C_API outpost_code outpost_submit(outpost_client* client, const char* stream, const char* kind,
                                          const void* payload, size_t payload_len,
                                          const outpost_op_id* depends_on, outpost_op_id* out_id,
                                          outpost_error** error);

/* Pages of a stream's view, oldest first; free with outpost_ops_free.
 * latest: the last `n` ops (sent by seq, then own unsent in submit order).
 * before: the `n` ops just before `position` (an outpost_op's position).
 * since:  forward reads: at most `n` ops after seq `after_seq` (0: from the start); read on with the seq
 *         of the page's last sent op; fewer than `n` ops means the end of the view was reached. */
OUTPOST_C_API outpost_code outpost_latest(outpost_client* client, const char* stream, size_t n,
                                          outpost_ops** out, outpost_error** error);
OUTPOST_C_API outpost_code outpost_before(outpost_client* client, const char* stream, const void* position,
                                          size_t position_len, size_t n, outpost_ops** out,
                                          outpost_error** error);
OUTPOST_C_API outpost_code outpost_since(outpost_client* client, const char* stream, uint64_t after_seq,
                                         size_t n, outpost_ops** out, outpost_error** error);
/* One op; NOT_FOUND when the view does not hold it. Free with outpost_op_free. */
OUTPOST_C_API outpost_code outpost_get(outpost_client* client, const outpost_op_id* op_id, outpost_op** out,
                                       outpost_error** error);
/* The stream's members (Client::Members); NOT_FOUND when no members op counts. Free with
 * outpost_strings_free. */
OUTPOST_C_API outpost_code outpost_members(outpost_client* client, const char* stream, outpost_strings** out,
                                           outpost_error** error);
/* Own ops not yet sent (pending, then failed), oldest first, at most `limit`. Free with outpost_ops_free. */
OUTPOST_C_API outpost_code outpost_outbox(outpost_client* client, size_t limit, outpost_ops** out,
                                          outpost_error** error);
/* Every stream this device followed or wrote to. Free with outpost_stream_list_free. */
OUTPOST_C_API outpost_code outpost_streams(outpost_client* client, outpost_stream_list** out,
                                           outpost_error** error);
/* The stream's merged cursor (highest seq merged). */
OUTPOST_C_API outpost_code outpost_cursor(outpost_client* client, const char* stream, uint64_t* out,
                                          outpost_error** error);

/* Failed → pending, with a fresh counter. */
OUTPOST_C_API outpost_code outpost_retry(outpost_client* client, const outpost_op_id* op_id,
                                         outpost_error** error);
/* Removes a pending or failed op from the view (the server's word is final if it had applied it). */
OUTPOST_C_API outpost_code outpost_discard(outpost_client* client, const outpost_op_id* op_id,
                                           outpost_error** error);
/* Follows a stream made elsewhere: its ops are pulled and merged. */
OUTPOST_C_API outpost_code outpost_follow(outpost_client* client, const char* stream, outpost_error** error);
/* The user has seen `stream` up to `seq` (at most the cursor). */
OUTPOST_C_API outpost_code outpost_mark_read(outpost_client* client, const char* stream, uint64_t seq,
                                             outpost_error** error);

/* ---- Change and connection events ---- */

typedef enum outpost_change_kind {
  OUTPOST_CHANGE_ADDED = 0,     /* an op appeared in the view */
  OUTPOST_CHANGE_UPDATED = 1,   /* an op changed state (sent, failed, retried, attempts) */
  OUTPOST_CHANGE_REMOVED = 2,   /* an op was discarded */
  OUTPOST_CHANGE_WATERMARK = 3, /* a receipt watermark moved (op_id nil) */
  OUTPOST_CHANGE_CURSOR = 4,    /* the stream's merged cursor moved (op_id nil) */
} outpost_change_kind;

typedef enum outpost_watermark_kind {
  OUTPOST_WATERMARK_DELIVERED = 0,
  OUTPOST_WATERMARK_READ = 1,
} outpost_watermark_kind;

/* Change (observer.h). Strings are never NULL ("" when empty) and valid only during the callback. */
typedef struct outpost_change {
  outpost_change_kind kind;
  const char* stream;
  outpost_op_id op_id;
  const char* op_kind; /* ADDED/UPDATED/REMOVED: the op's kind */
  outpost_op_state state;
  bool own;
  uint64_t seq;       /* op: its seq (0 unsent); WATERMARK: the new seq; CURSOR: the new cursor */
  const char* user;   /* WATERMARK: whose */
  const char* device; /* WATERMARK: whose */
  outpost_watermark_kind watermark;
} outpost_change;

/* The changes of one or more commits, in commit order; `changes` holds `count` entries. When the library
 * cannot allocate the array (out of memory) the events are dropped. */
typedef void (*outpost_change_fn)(void* user_data, const outpost_change* changes, size_t count);

typedef enum outpost_connection_state {
  OUTPOST_CONNECTION_OFFLINE = 0,     /* reason says why; retry_at_ms when the next attempt is due */
  OUTPOST_CONNECTION_CONNECTING = 1,  /* Hello sent, no Welcome yet */
  OUTPOST_CONNECTION_ONLINE = 2,      /* ops flow */
  OUTPOST_CONNECTION_AUTH_FAILED = 3, /* credentials refused: no reconnecting until outpost_set_token */
  OUTPOST_CONNECTION_SIGNED_OUT = 4,  /* the device was revoked: no reconnecting until outpost_set_token */
  OUTPOST_CONNECTION_UPGRADE_REQUIRED = 5, /* protocol outside the server's range: until set online again */
} outpost_connection_state;

typedef struct outpost_connection_event {
  outpost_connection_state state;
  const char* reason; /* never NULL; valid only during the callback */
  int64_t retry_at_ms;
} outpost_connection_event;

typedef void (*outpost_connection_fn)(void* user_data, const outpost_connection_event* event);

/* Calls `fn(user_data, ...)` after each commit that touched `stream` (NULL or "": every stream). Writes
 * the subscription id for outpost_unsubscribe into `out_id`. */
OUTPOST_C_API outpost_code outpost_subscribe(outpost_client* client, const char* stream, outpost_change_fn fn,
                                             void* user_data, uint64_t* out_id, outpost_error** error);
/* Calls `fn` on every connection change; the first call carries the state at subscription time and comes
 * from the next step or round of the sync thread, never from inside this call. */
OUTPOST_C_API outpost_code outpost_subscribe_connection(outpost_client* client, outpost_connection_fn fn,
                                                        void* user_data, uint64_t* out_id,
                                                        outpost_error** error);
/* Once this returns, no call of that subscription runs on another thread or will start: `user_data` may be
 * released. From inside a callback it does not wait. An unknown id is ignored. */
OUTPOST_C_API outpost_code outpost_unsubscribe(outpost_client* client, uint64_t id, outpost_error** error);

/* The connection's state now; `reason` (NULL allowed) gets a string to free with outpost_string_free,
 * `retry_at_ms` (NULL allowed) when the next attempt is due. */
OUTPOST_C_API outpost_code outpost_connection(outpost_client* client, outpost_connection_state* state,
                                              char** reason, int64_t* retry_at_ms, outpost_error** error);

/* ---- Sync ---- */

/* Background sync on its own thread. */
OUTPOST_C_API outpost_code outpost_start(outpost_client* client, outpost_error** error);
OUTPOST_C_API outpost_code outpost_stop(outpost_client* client, outpost_error** error);
/* Caller-driven sync: one round (one thread at a time, not while outpost_start runs). */
OUTPOST_C_API outpost_code outpost_step(outpost_client* client, outpost_error** error);
/* Steps until nothing is due, in flight or left to pull (OK), `timeout_ms` passed (TIMEOUT), or the
 * server refused the credentials (PERMISSION_DENIED). Needs a server that runs on its own thread. */
OUTPOST_C_API outpost_code outpost_run_until_idle(outpost_client* client, int64_t timeout_ms,
                                                  outpost_error** error);
/* Offline stops (re)connecting until set online again. */
OUTPOST_C_API outpost_code outpost_set_online(outpost_client* client, bool online, outpost_error** error);
/* New credentials for the next Hello (at once after an authentication failure). */
OUTPOST_C_API outpost_code outpost_set_token(outpost_client* client, const char* token,
                                             outpost_error** error);

/* ClientStats. Set struct_size = sizeof(outpost_client_stats) before the call (0: INVALID_ARGUMENT). Only
 * the fields within struct_size are written (an older header's shorter struct); a newer header's fields
 * that this library does not know are left as they were. */
typedef struct outpost_client_stats {
  size_t struct_size;
  bool connected;
  bool auth_failed;
  uint64_t outbox_depth;
  uint64_t failed;
  int64_t oldest_pending_ms;
  uint64_t batches_sent, ops_sent, acks, gaps, conflicts, timeouts;
  uint64_t pulls, ops_merged, connects, bad_frames, live_merges;
  uint64_t uploads, upload_bytes_done, upload_bytes_total, upload_chunks, upload_bytes_sent;
  uint64_t store_errors;
  /* Appended (older callers' struct_size stops before them): sends of own ops, and resends by reason
   * (ClientStats::attempts, retries_*). The histograms are C++ only. */
  uint64_t attempts;
  uint64_t retries_timeout, retries_busy, retries_disconnect, retries_gap, retries_conflict, retries_other;
  /* Appended: ClientStats::signed_out, upgrade_required, rebases, ops_requeued, ops_set_aside, ops_lost. */
  bool signed_out, upgrade_required;
  uint64_t rebases, ops_requeued, ops_set_aside, ops_lost;
} outpost_client_stats;

OUTPOST_C_API outpost_code outpost_stats(outpost_client* client, outpost_client_stats* out,
                                         outpost_error** error);

/* ---- In-process server ---- */

typedef struct outpost_server outpost_server;

/* ServerOptions' defaults; no authentication hook: every Hello is accepted as the user it claims. */
typedef struct outpost_server_options {
  size_t struct_size;
  const char* store;  /* server store URI; default "lmdb:outpost-server" */
  const char* listen; /* transport URI: "inproc:NAME" (in this process), "tcp://127.0.0.1:0", ... */
  bool membership;    /* streams have members (membership.h); default false */
  bool store_sync;    /* default true */
} outpost_server_options;

OUTPOST_C_API void outpost_server_options_init(outpost_server_options* options);
/* Opens the store and listens; nothing is served until outpost_server_start (or outpost_server_step).
 * Release with outpost_server_close. */
OUTPOST_C_API outpost_code outpost_server_open(const outpost_server_options* options, outpost_server** out,
                                               outpost_error** error);
/* Serves on a background thread. */
OUTPOST_C_API outpost_code outpost_server_start(outpost_server* server, outpost_error** error);
/* Stops the background thread after handling what was received. */
OUTPOST_C_API outpost_code outpost_server_stop(outpost_server* server, outpost_error** error);
/* Handles the waiting events as one group (not while started); `handled` (NULL allowed) gets their number. */
OUTPOST_C_API outpost_code outpost_server_step(outpost_server* server, size_t* handled,
                                               outpost_error** error);
/* The URI devices dial (a tcp port 0 replaced by the bound one); free with outpost_string_free. */
OUTPOST_C_API outpost_code outpost_server_endpoint(outpost_server* server, char** out, outpost_error** error);
/* Stops and releases the server (NULL allowed). */
OUTPOST_C_API void outpost_server_close(outpost_server* server);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* OUTPOST_OUTPOST_C_H_ */
