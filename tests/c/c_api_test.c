/* Copyright 2026 The Outpost Authors.
 *
 * The C API (outpost/outpost_c.h) exercised from C11: an in-process server and a client on LMDB stores in a
 * fresh temporary directory; submits, the three pages, get, members, change and connection callbacks,
 * outbox, a failed op retried and discarded, stats, and the error paths. Every result is freed, so that
 * the ASan build proves the API leak-free. Waits are outpost_run_until_idle (bounded by its timeout) or
 * bounded loops of outpost_step: no sleeping.
 */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outpost/outpost_c.h"

#define IDLE_TIMEOUT_MS 20000
#define STEPS_MAX 2000

static outpost_error* err; /* every call below reports into this one */

static void fail_at(int line, const char* what) {
  fprintf(stderr, "c_api_test.c:%d: check failed: %s\n", line, what);
  exit(1);
}

#define CHECK(cond)                        \
  do {                                     \
    if (!(cond)) fail_at(__LINE__, #cond); \
  } while (0)

/* The call must succeed (and leave err NULL). */
#define OK(call)                                                                                          \
  do {                                                                                                    \
    outpost_code code_ = (call);                                                                          \
    if (code_ != OUTPOST_OK) {                                                                            \
      fprintf(stderr, "c_api_test.c:%d: %s returned %s: %s\n", __LINE__, #call, outpost_code_name(code_), \
              err != NULL ? err->message : "(no error object)");                                          \
      exit(1);                                                                                            \
    }                                                                                                     \
    CHECK(err == NULL);                                                                                   \
  } while (0)

/* The call must fail with `want`, and report it in err with a message; err is freed. */
#define FAILS(want, call)                                                            \
  do {                                                                               \
    outpost_code code_ = (call);                                                     \
    if (code_ != (want)) {                                                           \
      fprintf(stderr, "c_api_test.c:%d: %s returned %s, want %s\n", __LINE__, #call, \
              outpost_code_name(code_), outpost_code_name(want));                    \
      exit(1);                                                                       \
    }                                                                                \
    CHECK(err != NULL);                                                              \
    CHECK(err->code == (want));                                                      \
    CHECK(err->message != NULL && err->message[0] != '\0');                          \
    outpost_error_free(err);                                                         \
    err = NULL;                                                                      \
  } while (0)

static bool same_id(const outpost_op_id* a, const outpost_op_id* b) {
  return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

/* ---- Callbacks ---- */

typedef struct changes_seen {
  outpost_client* client;
  int calls, added, updated, removed, cursor, watermark;
  int bad_fields;     /* events whose fields contradict their kind */
  int sent_updates;   /* UPDATED to SENT with a seq */
  int failed_updates; /* UPDATED to FAILED */
  bool tried_submit;  /* submitted once from inside the callback */
  outpost_code submit_code;
  bool submit_error_ok; /* that submit reported its code and a message */
} changes_seen;

static void on_change(void* user_data, const outpost_change* changes, size_t count) {
  changes_seen* seen = user_data;
  seen->calls++;
  for (size_t i = 0; i < count; ++i) {
    const outpost_change* c = &changes[i];
    if (c->stream == NULL || c->stream[0] == '\0' || c->op_kind == NULL || c->user == NULL ||
        c->device == NULL) {
      seen->bad_fields++;
      continue;
    }
    switch (c->kind) {
      case OUTPOST_CHANGE_ADDED:
      case OUTPOST_CHANGE_UPDATED:
      case OUTPOST_CHANGE_REMOVED:
        if (outpost_op_id_is_nil(&c->op_id) || c->op_kind[0] == '\0') seen->bad_fields++;
        if (c->state == OUTPOST_OP_SENT && c->seq == 0) seen->bad_fields++;
        if (c->kind == OUTPOST_CHANGE_ADDED) seen->added++;
        if (c->kind == OUTPOST_CHANGE_REMOVED) seen->removed++;
        if (c->kind == OUTPOST_CHANGE_UPDATED) {
          seen->updated++;
          if (c->state == OUTPOST_OP_SENT) seen->sent_updates++;
          if (c->state == OUTPOST_OP_FAILED) seen->failed_updates++;
        }
        /* Every op of this test but the server-written feed ops is this device's own. */
        if (c->stream[0] != '@' && !c->own) seen->bad_fields++;
        break;
      case OUTPOST_CHANGE_CURSOR:
        if (!outpost_op_id_is_nil(&c->op_id) || c->seq == 0) seen->bad_fields++;
        seen->cursor++;
        break;
      case OUTPOST_CHANGE_WATERMARK:
        if (!outpost_op_id_is_nil(&c->op_id) || c->user[0] == '\0') seen->bad_fields++;
        seen->watermark++;
        break;
      default:
        seen->bad_fields++;
    }
  }
  /* A callback must not wait for the thread that may be delivering it: submit is refused here. */
  if (!seen->tried_submit) {
    outpost_error* e = NULL;
    seen->tried_submit = true;
    seen->submit_code = outpost_submit(seen->client, "room", "text", "x", 1, NULL, NULL, &e);
    seen->submit_error_ok = e != NULL && e->code == seen->submit_code && e->message[0] != '\0';
    outpost_error_free(e);
  }
}

typedef struct connection_seen {
  int calls;
  bool online, offline;
  int bad_fields;
} connection_seen;

static void on_connection(void* user_data, const outpost_connection_event* event) {
  connection_seen* seen = user_data;
  seen->calls++;
  if (event->reason == NULL) seen->bad_fields++;
  if (event->state == OUTPOST_CONNECTION_ONLINE) seen->online = true;
  if (event->state == OUTPOST_CONNECTION_OFFLINE) seen->offline = true;
}

/* ---- Helpers ---- */

static int remove_entry(const char* path, const struct stat* sb, int type, struct FTW* ftw) {
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(path);
}

static void get_op(outpost_client* client, const outpost_op_id* id, outpost_op** out) {
  OK(outpost_get(client, id, out, &err));
  CHECK(*out != NULL);
  CHECK(same_id(&(*out)->op_id, id));
}

/* ---- The parts of the test ---- */

static void test_errors_without_handles(const char* dir) {
  outpost_client* client = NULL;
  outpost_server* server = NULL;
  outpost_client_options options;
  char store[1100];

  /* NULL handles and NULL required pointers. */
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_submit(NULL, "room", "text", "x", 1, NULL, NULL, &err));
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_latest(NULL, "room", 10, NULL, &err));
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_step(NULL, &err));
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_client_open(NULL, &client, &err));
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_server_start(NULL, &err));
  CHECK(client == NULL);
  /* A NULL error pointer is allowed: the code alone tells. */
  CHECK(outpost_step(NULL, NULL) == OUTPOST_INVALID_ARGUMENT);
  outpost_client_close(NULL);
  outpost_server_close(NULL);
  outpost_ops_free(NULL);
  outpost_op_free(NULL);
  outpost_strings_free(NULL);
  outpost_stream_list_free(NULL);
  outpost_string_free(NULL);
  outpost_error_free(NULL);

  /* Options not initialized, or from a newer header than the library. */
  memset(&options, 0, sizeof options);
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_client_open(&options, &client, &err));
  outpost_client_options_init(&options);
  options.struct_size = sizeof options + 8;
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_client_open(&options, &client, &err));

  /* A program built against an older header: its struct ends early, the rest takes the defaults. */
  outpost_client_options_init(&options);
  options.struct_size = offsetof(outpost_client_options, store_sync);
  options.store = "memory:c-api-test-old-header";
  options.payload_bytes_max = 0; /* past struct_size: must not be read */
  OK(outpost_client_open(&options, &client, &err));
  outpost_client_stats old_stats;
  memset(&old_stats, 0xAB, sizeof old_stats);
  old_stats.struct_size = offsetof(outpost_client_stats, outbox_depth);
  OK(outpost_stats(client, &old_stats, &err));
  CHECK(old_stats.struct_size == offsetof(outpost_client_stats, outbox_depth));
  CHECK(!old_stats.connected);
  CHECK(old_stats.outbox_depth == 0xABABABABABABABABull); /* past struct_size: not written */
  outpost_client_close(client);
  client = NULL;

  /* Bad URIs. */
  outpost_client_options_init(&options);
  options.store = "nosuchscheme:x";
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_client_open(&options, &client, &err));
  CHECK(client == NULL);
  outpost_server_options server_options;
  outpost_server_options_init(&server_options);
  snprintf(store, sizeof store, "lmdb:%s/bad-server", dir);
  server_options.store = store;
  server_options.listen = "nosuchscheme://x";
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_server_open(&server_options, &server, &err));
  server_options.listen = NULL;
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_server_open(&server_options, &server, &err));
  CHECK(server == NULL);

  /* Op ids: round trip and a bad string. */
  outpost_op_id id, back;
  char text[OUTPOST_OP_ID_STRING_BYTES];
  memset(&id, 0, sizeof id);
  CHECK(outpost_op_id_is_nil(&id));
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_op_id_from_string("not-an-op-id", &id, &err));
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_op_id_from_string(NULL, &id, &err));
  OK(outpost_op_id_from_string("01890a5d-ac96-774b-bcce-b302099a8057", &id, &err));
  CHECK(!outpost_op_id_is_nil(&id));
  OK(outpost_op_id_to_string(&id, text, &err));
  CHECK(strcmp(text, "01890a5d-ac96-774b-bcce-b302099a8057") == 0);
  OK(outpost_op_id_from_string(text, &back, &err));
  CHECK(same_id(&id, &back));

  CHECK(strcmp(outpost_code_name(OUTPOST_PERMISSION_DENIED), "PERMISSION_DENIED") == 0);
  CHECK(strcmp(outpost_code_name((outpost_code)77), "UNKNOWN") == 0);
}

static void test_client_and_server(const char* dir) {
  char server_store[1100], client_store[1100], listen[128];
  snprintf(server_store, sizeof server_store, "lmdb:%s/server", dir);
  snprintf(client_store, sizeof client_store, "lmdb:%s/client", dir);
  snprintf(listen, sizeof listen, "inproc:c-api-test-%ld", (long)getpid());

  /* The server, with membership on, on its own thread. */
  outpost_server_options server_options;
  outpost_server_options_init(&server_options);
  server_options.store = server_store;
  server_options.listen = listen;
  server_options.membership = true;
  server_options.store_sync = false;
  outpost_server* server = NULL;
  OK(outpost_server_open(&server_options, &server, &err));
  char* endpoint = NULL;
  OK(outpost_server_endpoint(server, &endpoint, &err));
  outpost_string_free(endpoint);
  size_t handled = 99;
  OK(outpost_server_step(server, &handled, &err));
  CHECK(handled == 0);
  OK(outpost_server_start(server, &err));
  FAILS(OUTPOST_FAILED_PRECONDITION, outpost_server_step(server, &handled, &err));

  /* The client. Short backoffs, so that a retried op goes out again at once. */
  outpost_client_options options;
  outpost_client_options_init(&options);
  CHECK(options.store_sync && options.backoff_base_ms > 0);
  options.store = client_store;
  options.server = listen;
  options.user = "alice";
  options.device = "phone";
  options.store_sync = false;
  options.follow_memberships = true;
  options.backoff_base_ms = 5;
  options.backoff_cap_ms = 50;
  options.reconnect_cap_ms = 50;
  outpost_client* client = NULL;
  OK(outpost_client_open(&options, &client, &err));
  char* device = NULL;
  OK(outpost_client_device(client, &device, &err));
  CHECK(strcmp(device, "phone") == 0);
  outpost_string_free(device);

  changes_seen changes;
  memset(&changes, 0, sizeof changes);
  changes.client = client;
  connection_seen connection;
  memset(&connection, 0, sizeof connection);
  uint64_t changes_id = 0, connection_id = 0;
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_subscribe(client, NULL, NULL, &changes, &changes_id, &err));
  OK(outpost_subscribe(client, NULL, on_change, &changes, &changes_id, &err));
  OK(outpost_subscribe_connection(client, on_connection, &connection, &connection_id, &err));

  /* The stream exists once its members op is applied; the message depends on it. */
  const char members_payload[] = "alice\nbob\n";
  outpost_op_id members_id, hello_id;
  OK(outpost_submit(client, "room", "outpost.members", members_payload, strlen(members_payload), NULL,
                    &members_id, &err));
  OK(outpost_submit(client, "room", "text", "hello", 5, &members_id, &hello_id, &err));
  CHECK(!same_id(&members_id, &hello_id));
  /* The first callback (of the first submit) tried to submit and was refused. */
  CHECK(changes.tried_submit);
  CHECK(changes.submit_code == OUTPOST_FAILED_PRECONDITION);
  CHECK(changes.submit_error_ok);

  /* Before sync: visible and pending. */
  outpost_op* op = NULL;
  get_op(client, &hello_id, &op);
  CHECK(op->state == OUTPOST_OP_PENDING && op->seq == 0 && op->own);
  CHECK(same_id(&op->depends_on, &members_id));
  outpost_op_free(op);

  OK(outpost_run_until_idle(client, IDLE_TIMEOUT_MS, &err));
  CHECK(connection.online);
  CHECK(connection.bad_fields == 0);
  outpost_connection_state state = OUTPOST_CONNECTION_OFFLINE;
  char* reason = NULL;
  int64_t retry_at_ms = -1;
  OK(outpost_connection(client, &state, &reason, &retry_at_ms, &err));
  CHECK(state == OUTPOST_CONNECTION_ONLINE);
  CHECK(reason != NULL);
  outpost_string_free(reason);

  /* Get: sent, with every field. */
  get_op(client, &hello_id, &op);
  CHECK(op->state == OUTPOST_OP_SENT);
  CHECK(op->seq == 2);
  CHECK(strcmp(op->stream, "room") == 0 && strcmp(op->kind, "text") == 0);
  CHECK(op->payload_len == 5 && memcmp(op->payload, "hello", 5) == 0 && op->payload[5] == '\0');
  CHECK(strcmp(op->user, "alice") == 0 && strcmp(op->device, "phone") == 0);
  CHECK(op->own && op->last_error_code == OUTPOST_OK && op->last_error[0] == '\0');
  CHECK(op->position != NULL && op->position_len > 0);
  outpost_op_free(op);

  /* The three pages. */
  outpost_ops* page = NULL;
  OK(outpost_latest(client, "room", 10, &page, &err));
  CHECK(page->count == 2);
  CHECK(same_id(&page->items[0].op_id, &members_id) && page->items[0].seq == 1);
  CHECK(same_id(&page->items[1].op_id, &hello_id) && page->items[1].seq == 2);
  outpost_ops* before = NULL;
  OK(outpost_before(client, "room", page->items[1].position, page->items[1].position_len, 10, &before, &err));
  CHECK(before->count == 1 && same_id(&before->items[0].op_id, &members_id));
  outpost_ops_free(before);
  outpost_ops_free(page);
  OK(outpost_latest(client, "room", SIZE_MAX, &page, &err)); /* a page size needs no upper bound */
  CHECK(page->count == 2);
  outpost_ops_free(page);
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_before(client, "room", "junk", 4, 10, &before, &err));
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_before(client, "room", NULL, 0, 10, &before, &err));
  OK(outpost_since(client, "room", 0, 10, &page, &err));
  CHECK(page->count == 2 && page->items[0].seq == 1 && page->items[1].seq == 2);
  outpost_ops_free(page);
  OK(outpost_since(client, "room", 1, 10, &page, &err));
  CHECK(page->count == 1 && same_id(&page->items[0].op_id, &hello_id));
  outpost_ops_free(page);
  OK(outpost_since(client, "room", 2, 10, &page, &err));
  CHECK(page->count == 0 && page->items == NULL);
  outpost_ops_free(page);

  /* Members, cursor, streams (the room, and the membership feed the client follows). */
  outpost_strings* members = NULL;
  OK(outpost_members(client, "room", &members, &err));
  CHECK(members->count == 2);
  bool alice = false, bob = false;
  for (size_t i = 0; i < members->count; ++i) {
    if (strcmp(members->items[i], "alice") == 0) alice = true;
    if (strcmp(members->items[i], "bob") == 0) bob = true;
  }
  CHECK(alice && bob);
  outpost_strings_free(members);
  FAILS(OUTPOST_NOT_FOUND, outpost_members(client, "no-members-here", &members, &err));
  uint64_t cursor = 0;
  OK(outpost_cursor(client, "room", &cursor, &err));
  CHECK(cursor == 2);
  outpost_stream_list* streams = NULL;
  OK(outpost_streams(client, &streams, &err));
  bool room_seen = false, feed_seen = false;
  for (size_t i = 0; i < streams->count; ++i) {
    if (strcmp(streams->items[i].stream, "room") == 0) {
      room_seen = true;
      CHECK(streams->items[i].cursor == 2 && streams->items[i].followed);
    }
    if (strcmp(streams->items[i].stream, "@alice") == 0) feed_seen = streams->items[i].cursor >= 1;
  }
  CHECK(room_seen && feed_seen);
  outpost_stream_list_free(streams);
  OK(outpost_mark_read(client, "room", 2, &err));
  OK(outpost_follow(client, "elsewhere", &err));

  /* A stream with no members op does not exist on the server: the op fails (permanently). */
  outpost_op_id lost_id;
  OK(outpost_submit(client, "closed-room", "text", "nobody hears", 12, NULL, &lost_id, &err));
  OK(outpost_run_until_idle(client, IDLE_TIMEOUT_MS, &err));
  get_op(client, &lost_id, &op);
  CHECK(op->state == OUTPOST_OP_FAILED);
  CHECK(op->last_error_code == OUTPOST_PERMISSION_DENIED && op->last_error[0] != '\0');
  outpost_op_free(op);
  outpost_ops* outbox = NULL;
  OK(outpost_outbox(client, 100, &outbox, &err));
  CHECK(outbox->count == 1 && same_id(&outbox->items[0].op_id, &lost_id));
  CHECK(outbox->items[0].state == OUTPOST_OP_FAILED);
  outpost_ops_free(outbox);

  outpost_client_stats stats;
  memset(&stats, 0, sizeof stats);
  FAILS(OUTPOST_INVALID_ARGUMENT, outpost_stats(client, &stats, &err)); /* struct_size not set */
  stats.struct_size = sizeof stats;
  OK(outpost_stats(client, &stats, &err));
  CHECK(stats.struct_size == sizeof stats);
  CHECK(stats.connected && !stats.auth_failed);
  CHECK(stats.failed == 1 && stats.outbox_depth == 0);
  CHECK(stats.ops_sent >= 3 && stats.acks >= 1 && stats.connects >= 1);
  CHECK(stats.ops_merged >= 1); /* the feed's joined op */

  /* Retry: pending again, then refused again by the server. */
  OK(outpost_retry(client, &lost_id, &err));
  get_op(client, &lost_id, &op);
  CHECK(op->state == OUTPOST_OP_PENDING);
  outpost_op_free(op);
  OK(outpost_run_until_idle(client, IDLE_TIMEOUT_MS, &err));
  get_op(client, &lost_id, &op);
  CHECK(op->state == OUTPOST_OP_FAILED && op->last_error_code == OUTPOST_PERMISSION_DENIED);
  outpost_op_free(op);
  /* Discard: gone from the view and the outbox. */
  OK(outpost_discard(client, &lost_id, &err));
  FAILS(OUTPOST_NOT_FOUND, outpost_get(client, &lost_id, &op, &err));
  OK(outpost_outbox(client, 100, &outbox, &err));
  CHECK(outbox->count == 0);
  outpost_ops_free(outbox);
  stats.struct_size = sizeof stats;
  OK(outpost_stats(client, &stats, &err));
  CHECK(stats.failed == 0);

  /* What the change callback saw. */
  CHECK(changes.calls > 0);
  CHECK(changes.bad_fields == 0);
  CHECK(changes.added >= 4); /* members, hello, the feed's joined op, the lost op */
  CHECK(changes.sent_updates >= 2);
  CHECK(changes.failed_updates >= 2);
  CHECK(changes.removed == 1);
  CHECK(changes.cursor >= 1);

  /* Offline and back: the connection callback follows, in a bounded number of steps. (Its first call, at
   * subscription time, was offline too: forget it.) */
  connection.offline = false;
  OK(outpost_set_online(client, false, &err));
  for (int i = 0; i < STEPS_MAX && !connection.offline; ++i) OK(outpost_step(client, &err));
  CHECK(connection.offline);
  OK(outpost_connection(client, &state, NULL, NULL, &err));
  CHECK(state == OUTPOST_CONNECTION_OFFLINE);
  OK(outpost_set_token(client, "new-token", &err));
  OK(outpost_set_online(client, true, &err));
  OK(outpost_run_until_idle(client, IDLE_TIMEOUT_MS, &err));
  OK(outpost_connection(client, &state, NULL, NULL, &err));
  CHECK(state == OUTPOST_CONNECTION_ONLINE);

  /* The background thread: a submit goes out without the caller stepping. */
  OK(outpost_start(client, &err));
  outpost_op_id later_id;
  OK(outpost_submit(client, "room", "text", "later", 5, NULL, &later_id, &err));
  OK(outpost_stop(client, &err));
  OK(outpost_run_until_idle(client, IDLE_TIMEOUT_MS, &err));
  get_op(client, &later_id, &op);
  CHECK(op->state == OUTPOST_OP_SENT && op->seq == 3);
  outpost_op_free(op);

  OK(outpost_unsubscribe(client, changes_id, &err));
  OK(outpost_unsubscribe(client, connection_id, &err));
  const int calls_before = changes.calls;
  OK(outpost_submit(client, "room", "text", "unseen", 6, NULL, NULL, &err));
  CHECK(changes.calls == calls_before);

  outpost_client_close(client);
  OK(outpost_server_stop(server, &err));
  outpost_server_close(server);
}

int main(void) {
  const char* tmp = getenv("TMPDIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/outpost-c-api-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  test_errors_without_handles(dir);
  test_client_and_server(dir);
  nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  printf("c_api_test: all checks passed\n");
  return 0;
}
