// Copyright 2026 The Outpost Authors.
//
// The apply path: everything a write group decides and writes. Per op, in this order:
//   1. shape checks (id, stream, counter) — a malformed op is rejected without touching any counter;
//   2. dedupe by op_id, forever — a known op gets its original verdict (an applied op: its seq);
//   3. the device's counter for the stream — only last+1 is applied; above: Gap; at or below: Conflict;
//   4. limits and the authorize hook — a refusal is permanent and still consumes the counter;
//   5. the next seq of the stream (its head, locked until commit on stores with several writers).
// A device is (user, device): counters, op records and watermarks are keyed by both.
#include <algorithm>

#include "keys.h"
#include "outpost/blob_store.h"
#include "outpost/membership.h"
#include "server/server_impl.h"

namespace outpost {

// ---- access ----

bool ServerCore::Impl::IsMember(ServerReadTxn& txn, std::string_view stream, std::string_view user,
                                Status* error) {
  bool member = false;
  Status st = txn.IsMember(stream, user, &member);
  if (!st.ok()) {
    if (error->ok()) *error = st;
    return false;
  }
  return member;
}

Status ServerCore::Impl::CheckBlob(Group& g, std::string_view user, std::string_view device,
                                   const codec::BlobFields& blob) {
  if (opt_.blob_store == nullptr) return Status::FailedPrecondition("this server takes no attachments");
  if (!IsValidBlobId(blob.id)) return Status::InvalidArgument("attachment has a malformed blob id");
  auto info = opt_.blob_store->Stat(blob.id);
  // One answer for "no such blob" and "someone else's": a blob id must not be probed through pushes.
  const Status not_yours =
      Status::InvalidArgument("attachment " + std::string(blob.id) + " is no complete upload of " +
                              std::string(user) + "'s device " + std::string(device));
  if (info.status().IsNotFound()) return not_yours;
  if (!info.ok()) {
    Fail(g, info.status());
    return info.status();
  }
  if (!info->complete || info->spec.owner != user ||
      (!info->spec.owner_device.empty() && info->spec.owner_device != device)) {
    return not_yours;
  }
  // The digest the store computed over the bytes it holds, not the one the upload declared (an upload may
  // declare none): an op names exactly the bytes its readers will get.
  if (info->spec.size != blob.size || info->sha256 != blob.sha256) {
    return Status::InvalidArgument("attachment " + std::string(blob.id) +
                                   " does not match its upload (size or sha256)");
  }
  return Status::OK();
}

Status ServerCore::Impl::CheckMember(ServerReadTxn& txn, std::string_view user, std::string_view stream,
                                     Status* error) {
  if (!opt_.membership) return Status::OK();
  if (stream.starts_with(kFeedPrefix)) {
    if (stream.substr(kFeedPrefix.size()) == user) return Status::OK();
    return Status::PermissionDenied("forbidden: " + std::string(stream) +
                                    " is another user's membership feed");
  }
  if (IsMember(txn, stream, user, error)) return Status::OK();
  // The same answer whether or not the stream exists: a non-member must not learn which names are taken.
  return Status::PermissionDenied("forbidden: " + std::string(user) + " is not a member of " +
                                  std::string(stream));
}

bool ServerCore::Impl::MayRead(ServerReadTxn& txn, const Session& s, std::string_view stream, Status* error) {
  if (!CheckMember(txn, s.user, stream, error).ok()) return false;
  if (!opt_.authorize) return true;
  return opt_.authorize(AccessRequest{s.user, s.device, stream, Access::kPull, {}, {}}).ok();
}

void ServerCore::Impl::MayReadAll(ServerReadTxn& txn, const Session& s,
                                  const std::vector<std::string>& streams, std::vector<bool>* out,
                                  Status* error) {
  out->assign(streams.size(), true);
  if (opt_.membership) {
    std::vector<std::string> others;  // not feeds: membership decides
    std::vector<size_t> at;
    for (size_t i = 0; i < streams.size(); ++i) {
      if (streams[i].starts_with(kFeedPrefix)) {
        (*out)[i] = streams[i].substr(kFeedPrefix.size()) == s.user;
      } else {
        others.push_back(streams[i]);
        at.push_back(i);
      }
    }
    std::vector<bool> member;
    Status st = txn.MemberOf(s.user, others, &member);
    if (!st.ok()) {
      if (error->ok()) *error = st;
      out->assign(streams.size(), false);
      return;
    }
    for (size_t k = 0; k < at.size(); ++k) (*out)[at[k]] = member[k];
  }
  if (!opt_.authorize) return;
  for (size_t i = 0; i < streams.size(); ++i) {
    if ((*out)[i]) {
      (*out)[i] = opt_.authorize(AccessRequest{s.user, s.device, streams[i], Access::kPull, {}, {}}).ok();
    }
  }
}

bool ServerCore::Impl::MayDeliver(ConnId conn, std::string_view stream) {
  if (!opt_.authorize) return true;
  auto it = sessions_.find(conn);
  if (it == sessions_.end()) return false;
  const Session& s = it->second;
  return opt_.authorize(AccessRequest{s.user, s.device, stream, Access::kPull, {}, {}}).ok();
}

// ---- heads and counters, cached for the group and written once at its end ----

uint64_t ServerCore::Impl::High(Group& g, std::string_view stream) {
  std::string key(stream);
  auto it = g.high.find(key);
  if (it != g.high.end()) return it->second;
  uint64_t v = 0;
  Fail(g, g.txn->High(stream, &v));
  g.high.emplace(std::move(key), v);
  return v;
}

uint64_t ServerCore::Impl::Counter(Group& g, const CounterKey& key) {
  auto it = g.ctr.find(key);
  if (it != g.ctr.end()) return it->second;
  uint64_t v = 0;
  Fail(g, g.txn->Counter(key, &v));
  g.ctr.emplace(key, v);
  return v;
}

void ServerCore::Impl::Flush(Group& g) {
  if (!g.error.ok()) return;
  for (const auto& stream : g.dirty_high) Fail(g, g.txn->SetHigh(stream, g.high[stream]));
  for (const auto& key : g.dirty_ctr) Fail(g, g.txn->SetCounter(key, g.ctr[key]));
}

bool ServerCore::Impl::StreamExists(Group& g, std::string_view stream) {
  bool any = false;
  // A read error must not pass for "no such stream" (a members op would then create it anew): it fails the
  // group.
  Fail(g, g.txn->HasMembers(stream, &any));
  return any;
}

// ---- ops ----

void ServerCore::Impl::PutStoredOp(Group& g, const codec::OpFields& f, ConnId author) {
  std::string bytes = codec::EncodeStoredOp(f);
  Fail(g, g.txn->AppendOp(f.stream, f.seq, bytes));
  LiveOps& live = g.fresh[std::string(f.stream)];
  ++live.ops;
  live.authors.insert(author);
  if (live.whole && live.stored.size() < LiveOps::kOpsMax &&
      live.bytes + bytes.size() <= LiveOps::kBytesMax) {
    live.bytes += bytes.size();
    live.stored.push_back(std::move(bytes));
  } else {
    live.whole = false;
    live.stored.clear();
  }
}

void ServerCore::Impl::AppendFeed(Group& g, std::string_view user, std::string_view kind,
                                  std::string_view stream) {
  const std::string feed = FeedStream(user);
  if (!keys::ValidateStream(feed, opt_.stream_id_bytes_max).ok()) return;
  uint64_t seq = High(g, feed) + 1;
  g.high[feed] = seq;
  g.dirty_high.insert(feed);
  codec::OpFields f;
  f.op_id = ids_.Next();
  f.stream = feed;
  f.kind = kind;
  f.payload = stream;
  f.device = "server";
  f.client_time_ms = opt_.env->NowMs();
  f.seq = seq;
  PutStoredOp(g, f, /*author=*/0);
}

void ServerCore::Impl::ApplyMembers(Group& g, std::string_view stream, std::string_view author,
                                    std::vector<std::string> members) {
  const bool creating = !StreamExists(g, stream);
  if (creating && std::find(members.begin(), members.end(), author) == members.end()) {
    members.emplace_back(author);
  }
  std::unordered_set<std::string> now(members.begin(), members.end());
  std::vector<std::string> before, gone;
  Fail(g, g.txn->Members(stream, &before));  // a cut-short list fails the group
  for (auto& user : before) {
    if (!now.erase(user)) gone.push_back(std::move(user));
  }
  if (store_->many_writers()) {
    // The feeds this op appends to, locked in one sorted call (another group locks them in the same order).
    std::set<std::string> feeds;
    for (const auto& user : gone) feeds.insert(FeedStream(user));
    for (const auto& user : now) feeds.insert(FeedStream(user));
    Fail(g, g.txn->Prepare({feeds.begin(), feeds.end()}, {}, {}));
  }
  for (const auto& user : gone) {
    Fail(g, g.txn->RemoveMember(stream, user));
    AppendFeed(g, user, kLeftKind, stream);
    g.joined.erase({std::string(stream), user});
    g.left.emplace(stream, user);
  }
  for (const auto& user : members) {
    if (!now.contains(user)) continue;  // was a member already
    Fail(g, g.txn->AddMember(stream, user));
    AppendFeed(g, user, kJoinedKind, stream);
    // Removed and added back in one group: its devices keep following.
    g.left.erase({std::string(stream), user});
    g.joined.emplace(stream, user);
    // Devices of the new member that already asked for the stream follow it now (and hear of this op).
    FollowJoined(g.txn, &g, stream, user);
  }
}

Status ServerCore::Impl::CheckMemberList(Group& g, std::string_view stream, std::string_view author,
                                         std::string_view payload) {
  auto members = ParseMembers(payload, opt_.members_max);
  if (!members.ok()) return members.status();
  const bool creating = !StreamExists(g, stream);
  if (creating && members->size() >= opt_.members_max &&
      std::find(members->begin(), members->end(), author) == members->end()) {
    return Status::InvalidArgument("member list and its author make more than " +
                                   std::to_string(opt_.members_max) + " users (members_max)");
  }
  if (opt_.user_exists) {
    for (const auto& name : *members) {
      Result<bool> known = opt_.user_exists(name);
      if (!known.ok()) {
        Fail(g, known.status());  // not a verdict: the group fails and its devices resend
        return known.status();
      }
      if (!*known) {
        return Status::InvalidArgument("member list names " + QuoteForMessage(name) + ", who is not a user");
      }
    }
  }
  return Status::OK();
}

void ServerCore::Impl::HandlePush(Group& g, ConnId conn, Session& s, const wire::Push& push) {
  size_t n = push.ops() ? push.ops()->size() : 0;
  if (n > opt_.ops_per_batch_max) {
    BadFrame(g, conn, Status::Code::kInvalidArgument,
             "Push of " + std::to_string(n) + " ops exceeds ops_per_batch_max " +
                 std::to_string(opt_.ops_per_batch_max),
             false);
    return;
  }
  flatbuffers::FlatBufferBuilder b(128 + n * 48);
  std::vector<flatbuffers::Offset<wire::OpResult>> results;
  results.reserve(n);
  std::string_view stream;
  for (size_t i = 0; i < n; ++i) {
    const wire::Op* op = push.ops()->Get(i);
    if (i == 0) stream = codec::Str(op->stream());
    OpVerdict v = ApplyOp(g, conn, s, *op);
    auto msg = v.message.empty() ? 0 : b.CreateString(v.message);
    wire::Uuid id = op->op_id() ? *op->op_id() : wire::Uuid();
    wire::OpResultBuilder rb(b);
    rb.add_op_id(&id);
    rb.add_code(v.code);
    rb.add_seq(v.seq);
    rb.add_counter(op->device_counter());
    rb.add_last_counter(v.last_counter);
    rb.add_error_code(static_cast<uint16_t>(v.error_code));
    if (!msg.IsNull()) rb.add_message(msg);
    results.push_back(rb.Finish());
  }
  auto sv = b.CreateString(stream.data(), stream.size());
  auto rv = b.CreateVector(results);
  auto body = wire::CreatePushAck(b, push.batch_id(), sv, rv);
  Reply(g, conn, codec::FinishFrame(b, wire::Body::PushAck, body.Union()));
}

OpVerdict ServerCore::Impl::ApplyOp(Group& g, ConnId conn, Session& s, const wire::Op& op) {
  OpVerdict v;
  auto reject = [&](Status::Code code, std::string msg) {
    v.code = wire::ResultCode::Rejected;
    v.error_code = code;
    v.message = std::move(msg);
    ++stats_.rejected;
    return v;
  };
  codec::OpFields f = codec::FieldsOf(op);
  // 1. Shape: nothing is consumed, the device cannot be answered usefully otherwise.
  if (f.op_id.IsNil()) return reject(Status::Code::kInvalidArgument, "op id missing");
  Status st = keys::ValidateStream(f.stream, opt_.stream_id_bytes_max);
  if (!st.ok()) return reject(st.code(), st.message());
  if (f.device_counter == 0) return reject(Status::Code::kInvalidArgument, "device_counter must be >= 1");

  const CounterKey ctr_key{s.user, s.device, std::string(f.stream)};
  uint64_t last = Counter(g, ctr_key);
  auto consume = [&]() {
    g.ctr[ctr_key] = f.device_counter;
    g.dirty_ctr.insert(ctr_key);
  };
  // 2. Dedupe by op id, before any counter logic.
  OpRecord rec;
  st = g.txn->GetOpRecord(f.op_id, &rec);
  if (st.code() == Status::Code::kCorruption) return reject(st.code(), st.message());
  if (!st.ok() && !st.IsNotFound()) {
    Fail(g, st);
    v.code = wire::ResultCode::Retry;
    v.error_code = st.code();
    v.message = st.message();
    return v;
  }
  if (st.ok()) {
    // Every answer but Gap, Conflict and Retry tells the device that this counter is used up, so a known
    // op under a counter it was not recorded with still goes through counter order: ahead of last+1 it is
    // a Gap (answering it would leave a hole), at last+1 the counter is consumed.
    bool same_counter = rec.counter == f.device_counter;
    if (!same_counter && f.device_counter > last + 1) {
      ++stats_.gaps;
      v.code = wire::ResultCode::Gap;
      v.last_counter = last;
      return v;
    }
    if (rec.user != s.user || rec.device != s.device || rec.stream != f.stream) {
      if (f.device_counter == last + 1) consume();
      return reject(Status::Code::kConflict, "op id already used by another device or stream");
    }
    auto code = static_cast<wire::ResultCode>(rec.code);
    if (code == wire::ResultCode::Applied) {
      // A resend under a new counter (renumbered, or retried after the device gave up on it).
      if (!same_counter && f.device_counter == last + 1) consume();
      ++stats_.duplicates;
      v.code = wire::ResultCode::Duplicate;
      v.seq = rec.seq;
      return v;
    }
    if (rec.counter == f.device_counter) {  // same op, same counter: the same verdict again
      v.code = code;
      v.error_code = static_cast<Status::Code>(rec.error_code);
      v.message = rec.message;
      return v;
    }
    if (code == wire::ResultCode::Rejected && !f.retry) {
      // Under a new counter but not the user's Retry: a renumber (the device lost what it knew, to a power
      // loss say). The rejection stands, and the counter is used up as for a duplicate.
      if (f.device_counter == last + 1) consume();
      ++stats_.rejected;
      v.code = code;
      v.error_code = static_cast<Status::Code>(rec.error_code);
      v.message = rec.message;
      return v;
    }
    // A rejected op the user retried, or a skipped one, under a new counter is judged afresh.
  }
  // 3. Counter order.
  if (f.device_counter <= last) {
    ++stats_.conflicts;
    v.code = wire::ResultCode::Conflict;
    v.last_counter = last;
    return v;
  }
  if (f.device_counter > last + 1) {
    ++stats_.gaps;
    v.code = wire::ResultCode::Gap;
    v.last_counter = last;
    return v;
  }
  consume();
  rec = OpRecord();
  rec.counter = f.device_counter;
  rec.stream.assign(f.stream);
  rec.user = s.user;
  rec.device = s.device;
  auto record = [&](const OpVerdict& verdict) {
    rec.code = static_cast<uint8_t>(verdict.code == wire::ResultCode::Duplicate ? wire::ResultCode::Applied
                                                                                : verdict.code);
    rec.seq = verdict.seq;
    rec.error_code = static_cast<uint16_t>(verdict.error_code);
    rec.message = verdict.message;
    Fail(g, g.txn->PutOpRecord(f.op_id, rec));
    return verdict;
  };
  if (f.skip) {
    ++stats_.skips;
    v.code = wire::ResultCode::Skipped;
    return record(v);
  }
  // 4. Limits and the authorize hook: permanent, and the counter stays consumed.
  if (f.kind.size() > opt_.kind_bytes_max) {
    return record(reject(Status::Code::kInvalidArgument, "kind exceeds kind_bytes_max"));
  }
  if (f.payload.size() > opt_.payload_bytes_max) {
    return record(reject(Status::Code::kInvalidArgument, "payload of " + std::to_string(f.payload.size()) +
                                                             " bytes exceeds payload_bytes_max " +
                                                             std::to_string(opt_.payload_bytes_max)));
  }
  if (f.kind == kJoinedKind || f.kind == kLeftKind) {
    ++stats_.forbidden;
    return record(reject(Status::Code::kPermissionDenied, "forbidden: ops of kind " + std::string(f.kind) +
                                                              " are written only by the server"));
  }
  if (opt_.membership) {
    Status member;
    if (f.stream.starts_with(kFeedPrefix)) {
      member = Status::PermissionDenied("forbidden: streams starting with " + std::string(kFeedPrefix) +
                                        " are membership feeds, written only by the server");
    } else if (f.kind == kMembersKind) {
      if (StreamExists(g, f.stream) && !IsMember(*g.txn, f.stream, s.user, &g.error)) {
        member =
            Status::PermissionDenied("forbidden: " + s.user + " is not a member of " + std::string(f.stream));
      } else {
        member = CheckMemberList(g, f.stream, s.user, f.payload);
      }
    } else {
      member = CheckMember(*g.txn, s.user, f.stream, &g.error);
    }
    if (!member.ok()) {
      if (member.code() == Status::Code::kPermissionDenied) ++stats_.forbidden;
      return record(reject(member.code(), member.message()));
    }
  }
  if (opt_.authorize) {
    AccessRequest req{s.user, s.device, f.stream, Access::kPush, f.kind, f.payload};
    Status auth = opt_.authorize(req);
    if (!auth.ok()) return record(reject(auth.code(), auth.message()));
  }
  if (f.has_blob) {
    Status blob = CheckBlob(g, s.user, s.device, f.blob);
    if (!blob.ok()) return record(reject(blob.code(), blob.message()));
  }
  // 5. The next seq.
  uint64_t seq = High(g, f.stream) + 1;
  g.high[std::string(f.stream)] = seq;
  g.dirty_high.emplace(f.stream);
  codec::OpFields stored = f;
  stored.device = s.device;
  stored.user = s.user;
  stored.seq = seq;
  stored.retry = false;  // the pusher's business
  PutStoredOp(g, stored, conn);
  // From now on the stream's members may download the op's blob (MayReadBlob).
  if (f.has_blob) Fail(g, g.txn->AddBlobRef(f.blob.id, f.stream));
  if (opt_.membership && f.kind == kMembersKind) {
    ApplyMembers(g, f.stream, s.user, ParseMembers(f.payload, opt_.members_max).value());
  }
  // The pusher hears of the stream from now on, if it may read it (the hook may allow push-only access).
  if (!s.follows.contains(std::string(f.stream)) && MayRead(*g.txn, s, f.stream, &g.error)) {
    Follow(g, conn, s, f.stream);
  }
  ++stats_.ops_applied;
  v.code = wire::ResultCode::Applied;
  v.seq = seq;
  return record(v);
}

void ServerCore::Impl::HandleWatermark(Group& g, ConnId conn, Session& s, const wire::Watermark& wm) {
  std::string_view stream = codec::Str(wm.stream());
  Status st = keys::ValidateStream(stream, opt_.stream_id_bytes_max);
  if (!st.ok() || wm.kind() > wire::WatermarkKind::MAX) {
    BadFrame(g, conn, Status::Code::kInvalidArgument, st.ok() ? "bad watermark kind" : st.message(), false);
    return;
  }
  st = CheckMember(*g.txn, s.user, stream, &g.error);
  if (st.ok() && opt_.authorize) {
    st = opt_.authorize(AccessRequest{s.user, s.device, stream, Access::kWatermark, {}, {}});
  }
  if (!st.ok()) {
    if (st.code() == Status::Code::kPermissionDenied) ++stats_.forbidden;
    Reply(g, conn,
          codec::EncodeError(st.code(), "watermark " + std::string(stream) + ": " + st.message(), false));
    return;
  }
  uint64_t seq = std::min(wm.seq(), High(g, stream));  // nobody has seen what does not exist yet
  const auto kind = static_cast<uint8_t>(wm.kind());
  uint64_t stored = 0;
  Fail(g, g.txn->Watermark(stream, s.user, s.device, kind, &stored));
  // The answer (sent once the group is durable) is the stored value: the device's acknowledgement.
  Reply(g, conn,
        codec::EncodeWatermark(stream, s.user, s.device, static_cast<WatermarkKind>(kind),
                               std::max(seq, stored)));
  if (seq <= stored) return;  // monotonic and idempotent
  StoredWatermark record{std::string(stream), s.user, s.device, kind, seq};
  Fail(g, g.txn->PutWatermark(record));
  g.relays.emplace_back(std::move(record), conn);
}

}  // namespace outpost
