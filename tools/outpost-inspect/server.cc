// Copyright 2026 The Outpost Authors.
//
// outpost-inspect server: the sections of a key-value server store (docs/storage-format.md, "Server
// store"), outpostd's user registry (DATA_DIR/auth, server_store/kv/kv_user_store.h) and its stats.json,
// each opened read-only so that a running outpostd is never disturbed. Token hashes are never shown.
#include <charconv>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "inspect.h"
#include "keys.h"
#include "outpost/storage.h"
#include "server_store/kv/kv_user_store.h"

namespace outpost::inspect {
namespace {

// The spaces read here, in this order (SpaceIds of this file only).
enum Space : SpaceId { kOps = 0, kStreams, kMembers, kDevCtr, kMeta };
const std::vector<std::string> kSpaces = {"s_ops", "s_streams", "s_members", "s_devctr", "s_meta"};

constexpr size_t kStatsBytesMax = size_t{1} << 20;

Result<std::unique_ptr<Storage>> OpenServerStore(const std::string& uri) {
  if (uri.starts_with("postgresql:") || uri.starts_with("postgres:")) {
    return Status::InvalidArgument("--store " + uri.substr(0, uri.find(':')) +
                                   ": outpost-inspect reads key-value stores (lmdb, sqlite, rocksdb); "
                                   "inspect a database store with psql");
  }
  StorageOptions options;
  options.read_only = true;
  options.spaces = kSpaces;
  Result<std::unique_ptr<Storage>> storage = OpenStorage(uri, options);
  if (!storage.ok() && storage.status().IsNotFound()) {
    return Status::FailedPrecondition("'" + uri + "' is not an Outpost server store (" +
                                      storage.status().message() +
                                      "); expected outpostd's store (DATA_DIR/server)");
  }
  return storage;
}

Status CheckFormat(ReadTxn* txn, const std::string& uri, Json* out) {
  std::string text;
  Status st = txn->Get(kMeta, "format", &text);
  if (st.IsNotFound()) {
    (*out)["format"] = 1;  // before s_meta: outpostd refuses it until migrated
    return Status::OK();
  }
  OUTPOST_RETURN_IF_ERROR(st);
  uint64_t format = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), format);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Status::Corruption("server store '" + uri + "' has an unreadable format number");
  }
  if (format > keys::kServerFormat) {
    return Status::FailedPrecondition("server store '" + uri + "' is format " + std::to_string(format) +
                                      ", newer than this build reads (" +
                                      std::to_string(keys::kServerFormat) +
                                      "): use an outpost-inspect as new as the outpostd that wrote it");
  }
  (*out)["format"] = format;
  return Status::OK();
}

Result<Json> Streams(ReadTxn* txn) {
  std::map<std::string, uint64_t> members;
  auto m = txn->NewCursor(kMembers);
  for (m->SeekToFirst(); m->Valid(); m->Next()) {
    keys::Reader reader(m->key());
    std::string_view stream;
    if (!reader.Short(&stream)) return Status::Corruption("unreadable member key");
    ++members[std::string(stream)];
  }
  OUTPOST_RETURN_IF_ERROR(m->status());
  Json rows = Json::array();
  auto cursor = txn->NewCursor(kStreams);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    if (cursor->value().size() != 8) return Status::Corruption("unreadable stream record");
    Json row;
    const std::string stream(cursor->key());
    row["stream"] = stream;
    row["high_seq"] = keys::GetBE64(cursor->value());
    row["members"] = members[stream];
    rows.push_back(std::move(row));
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return rows;
}

Result<Json> Members(ReadTxn* txn) {
  Json rows = Json::array();
  auto cursor = txn->NewCursor(kMembers);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    keys::Reader reader(cursor->key());
    std::string_view stream, user;
    if (!reader.Short(&stream) || !reader.Short(&user)) return Status::Corruption("unreadable member key");
    rows.push_back(Json{{"stream", std::string(stream)}, {"user", std::string(user)}});
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return rows;
}

// Calls `each(user, device, stream, counter)` for every device counter.
template <typename Fn>
Status ForEachCounter(ReadTxn* txn, Fn each) {
  auto cursor = txn->NewCursor(kDevCtr);
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    keys::Reader reader(cursor->key());
    std::string_view user, device, stream;
    if (!reader.Short(&user) || !reader.Short(&device) || !reader.Short(&stream) ||
        cursor->value().size() != 8) {
      return Status::Corruption("unreadable device counter record");
    }
    each(user, device, stream, keys::GetBE64(cursor->value()));
  }
  return cursor->status();
}

Result<Json> Counters(ReadTxn* txn) {
  Json rows = Json::array();
  OUTPOST_RETURN_IF_ERROR(ForEachCounter(txn, [&](auto user, auto device, auto stream, uint64_t counter) {
    rows.push_back(Json{{"user", std::string(user)},
                        {"device", std::string(device)},
                        {"stream", std::string(stream)},
                        {"last_counter", counter}});
  }));
  return rows;
}

// The token bindings of DATA_DIR/auth, opened read-only: (user, device) -> tokens; unbound tokens under
// device "". NotFound when there is no registry.
Result<std::map<std::pair<std::string, std::string>, uint64_t>> Tokens(const std::string& data_dir) {
  StorageOptions options = KvUserStore::Options(true);
  options.read_only = true;
  // Only the spaces every format has (Tokens reads no other): a format 1 registry opens too.
  options.spaces = {"users", "tokens"};
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Storage> storage,
                           OpenStorage("lmdb:" + data_dir + "/auth", options));
  KvUserStore users(std::move(storage));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<ReadTxn> txn, users.storage().BeginRead());
  std::map<std::pair<std::string, std::string>, uint64_t> out;
  auto cursor = txn->NewCursor(0);  // users
  for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) {
    std::vector<TokenRecord> tokens;
    OUTPOST_RETURN_IF_ERROR(users.Tokens(cursor->key(), &tokens));
    if (tokens.empty()) out[{std::string(cursor->key()), ""}] += 0;
    for (const TokenRecord& token : tokens) ++out[{token.user, token.device}];
  }
  OUTPOST_RETURN_IF_ERROR(cursor->status());
  return out;
}

struct DeviceRow {
  uint64_t tokens = 0;
  uint64_t streams = 0;
  bool registered = false;
};

Result<Json> Devices(ReadTxn* txn, const std::string& data_dir) {
  std::map<std::pair<std::string, std::string>, DeviceRow> devices;
  if (!data_dir.empty()) {
    Result<std::map<std::pair<std::string, std::string>, uint64_t>> tokens = Tokens(data_dir);
    if (!tokens.ok()) {
      return Status::IOError("users registry of --data " + data_dir + ": " + tokens.status().message());
    }
    for (const auto& [key, n] : *tokens) {
      devices[key].tokens = n;
      devices[key].registered = true;
    }
  }
  OUTPOST_RETURN_IF_ERROR(ForEachCounter(txn, [&](auto user, auto device, auto, uint64_t) {
    ++devices[{std::string(user), std::string(device)}].streams;
  }));
  Json rows = Json::array();
  for (const auto& [key, row] : devices) {
    Json out;
    out["user"] = key.first;
    out["device"] = key.second;
    out["tokens"] = row.tokens;
    out["token_state"] = !row.registered      ? ""
                         : row.tokens == 0    ? "none"
                         : key.second.empty() ? "unbound"
                                              : "bound";
    out["streams"] = row.streams;
    rows.push_back(std::move(out));
  }
  return rows;
}

Result<Json> Stats(const std::string& data_dir) {
  if (data_dir.empty()) return Status::InvalidArgument("stats needs --data DIR (outpostd's data directory)");
  const std::string path = data_dir + "/stats.json";
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::NotFound("no " + path + " (outpostd writes it while it runs)");
  std::string text(kStatsBytesMax + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(file.gcount()));
  if (text.size() > kStatsBytesMax) return Status::Corruption(path + " is larger than 1 MiB");
  Json stats = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (stats.is_discarded() || !stats.is_object()) {
    return Status::Corruption(path + " is not a JSON object (expected outpostd's stats)");
  }
  return stats;
}

}  // namespace

Result<Json> InspectServer(const ServerQuery& query) {
  if (query.section == "stats") return Stats(query.data_dir);
  std::string uri = query.store;
  if (uri.empty()) {
    if (query.data_dir.empty()) return Status::InvalidArgument("give --store URI or --data DIR");
    uri = "lmdb:" + query.data_dir + "/server";
  }
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<Storage> storage, OpenServerStore(uri));
  OUTPOST_ASSIGN_OR_RETURN(std::unique_ptr<ReadTxn> txn, storage->BeginRead());
  Json summary = Json::object();
  summary["store"] = uri;
  OUTPOST_RETURN_IF_ERROR(CheckFormat(txn.get(), uri, &summary));
  const std::string& section = query.section;
  if (section == "streams") return Streams(txn.get());
  if (section == "members") return Members(txn.get());
  if (section == "counters") return Counters(txn.get());
  if (section == "devices") return Devices(txn.get(), query.data_dir);
  uint64_t n = 0;
  auto count = [&](SpaceId space) {
    n = 0;
    auto cursor = txn->NewCursor(space);
    for (cursor->SeekToFirst(); cursor->Valid(); cursor->Next()) ++n;
    return n;
  };
  summary["streams"] = count(kStreams);
  summary["ops"] = count(kOps);
  summary["members"] = count(kMembers);
  summary["device_counters"] = count(kDevCtr);
  return summary;
}

}  // namespace outpost::inspect
