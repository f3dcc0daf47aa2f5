// Copyright 2026 The Outpost Authors.
//
// The PostgreSQL ServerStore (outpost/server_store.h): any number of outpostd instances on one database.
// OpenServerStore calls OpenPgServerStore for `postgresql://` and `postgres://` URIs; the URI is libpq's
// (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING), key=value strings included.
//
// How it keeps the ServerStore contract:
// - Seqs: High() in a write transaction locks the stream's row (INSERT .. ON CONFLICT DO NOTHING, then
//   SELECT .. FOR UPDATE) until commit, so seqs are handed out one writer at a time and become visible in
//   order; never from a SEQUENCE (those are handed out before commit). Counter() locks the counter row alike.
//   Prepare() locks a whole group's rows in sorted order (two groups never deadlock on them) in one round
//   trip and caches them: later High/Counter/GetOpRecord calls of the transaction cost no round trip.
// - Writes are buffered and sent in one libpq pipeline with COMMIT (one round trip), or ahead of the next
//   read that must see them (the same round trip as that read). A group with Prepare costs two round trips.
// - Dedupe: op_records' primary key. A first record of an op id that this transaction looked up and did not
//   find, inserted meanwhile by another instance, fails the commit with Aborted: the retry sees the record.
// - Read transactions: REPEATABLE READ READ ONLY, the snapshot taken when BeginRead returns (one round trip).
// - Connections: a pool of at most kPgPoolConnectionsMax, opened when first needed; a transaction holds one
//   until it ends (BeginRead/BeginWrite wait for a free one), Publish and UserStore calls borrow one per
//   call. A connection that failed is dropped and a new one opened on the next demand. Plus one connection
//   that LISTENs, opened by the first Subscribe, on a thread of its own.
// - Wake-ups: Publish sends one statement with one pg_notify on channel `outpost_events` (several when the
//   events do not fit in one payload), after commit. Every instance skips its own. When the listening
//   connection drops, it reconnects with backoff and then hands StoreEvents{lost = true} to subscribers.
// - Errors: no connection → Unavailable; SQLSTATE 40001 and 40P01 → Aborted; disk full → Full; an
//   unexpected unique violation → Conflict; anything else → IOError with the server's message.
#ifndef OUTPOST_SERVER_STORE_POSTGRESQL_PG_SERVER_STORE_H_
#define OUTPOST_SERVER_STORE_POSTGRESQL_PG_SERVER_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "outpost/result.h"
#include "outpost/server_store.h"

namespace outpost {

// The schema version this build reads and writes (table outpost_schema).
// 2: blob_refs (attachments); 3: devices and revocations, and incarnations and restore_bases (backup and
// restore, docs/operations.md): two steps of one version.
inline constexpr int kPgSchemaVersion = 3;
// Connections a store keeps for transactions, Publish and UserStore calls (the LISTEN one aside).
inline constexpr int kPgPoolConnectionsMax = 4;

// Opens the store; FailedPrecondition when the database has no Outpost schema or another version of it
// (MigratePgServerStore makes it), Unavailable when the database cannot be reached.
Result<std::shared_ptr<ServerStore>> OpenPgServerStore(std::string_view uri,
                                                       const ServerStoreOptions& options);

// Creates the schema or upgrades it to kPgSchemaVersion, in one transaction under an advisory lock (two
// migrations at once are safe), and says what it did. Idempotent.
Result<std::string> MigratePgServerStore(std::string_view uri);

// NewIncarnation (outpost/server_store.h) for a PostgreSQL store, after an operator restored the database
// from a dump or a base backup (`outpostd migrate --new-incarnation`): in one transaction, under the
// migration lock, every stream's high seq becomes its base in a new incarnation. Returns the new id.
Result<std::string> NewPgIncarnation(std::string_view uri);

// What a store did so far (tests and benchmarks): round trips to the server (a pipeline or a statement, the
// LISTEN connection aside), connections opened (pool and LISTEN), notifies sent, wake-ups received from
// other instances.
struct PgStoreCounters {
  uint64_t round_trips = 0;
  uint64_t connections_opened = 0;
  uint64_t notifies_sent = 0;
  uint64_t notifies_received = 0;
};
// The counters of a store opened by OpenPgServerStore; all zero for any other store.
PgStoreCounters GetPgStoreCounters(const ServerStore& store);

// `uri` without its password (user:password@ and password=...).
std::string RedactPgUri(std::string_view uri);

}  // namespace outpost

#endif  // OUTPOST_SERVER_STORE_POSTGRESQL_PG_SERVER_STORE_H_
