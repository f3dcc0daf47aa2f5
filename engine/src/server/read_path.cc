// Copyright 2026 The Outpost Authors.
//
// The read path: pages, Welcome and stored receipts, served once the write group committed, from one read
// transaction (a snapshot that holds every write of the group). Reads never run inside the write group, so
// they neither lengthen it nor hold the locks it takes.
#include <algorithm>
#include <map>

#include "keys.h"
#include "outpost/membership.h"
#include "server/server_impl.h"

namespace outpost {

void ServerCore::Impl::ServeReads(Group& g, std::vector<std::vector<Outbound>>* frames) {
  frames->assign(g.reads.size(), {});
  if (g.reads.empty()) return;
  auto txn = store_->BeginRead();
  std::unordered_map<ConnId, size_t> pulled;  // op bytes of the pages each connection got
  std::unordered_set<ConnId> failed;
  for (size_t i = 0; i < g.reads.size(); ++i) {
    const ReadRequest& r = g.reads[i];
    auto sit = sessions_.find(r.conn);
    if (sit == sessions_.end() || failed.contains(r.conn)) continue;  // closed in the group, or told already
    Status st = txn.status();
    if (st.ok()) {
      st = r.kind == ReadRequest::Kind::kWelcome
               ? ServeWelcome(**txn, sit->second, r, &(*frames)[i])
               : ServePage(**txn, g, sit->second, r, &pulled[r.conn], &(*frames)[i]);
    }
    if (!st.ok()) {
      // The group is durable, the answer is not: the device reconnects and asks again.
      failed.insert(r.conn);
      (*frames)[i].assign(
          1, Outbound{r.conn,
                      codec::EncodeError(Status::Code::kBusy,
                                         "server store failed, reconnect: " + st.ToString(), true),
                      true});
    }
  }
}

Status ServerCore::Impl::ServeWelcome(ServerReadTxn& txn, Session& s, const ReadRequest& r,
                                      std::vector<Outbound>* out) {
  // The device's counters: every stream it follows, and every stream it ever pushed to. A counter is the
  // device's own (how many of its ops the stream took), so it is listed even where the device may no
  // longer read: else a device that lost its unsynced state would reuse counters. Those streams' high
  // seq is not the device's to know and goes out as 0.
  // The list fits half a frame, followed streams first: a device can make counters on any number of
  // streams (a refused push consumes one), and neither the Welcome nor the work of one Hello may grow with
  // them. A stream left out costs its device nothing but a Pull, or a Conflict naming its last counter.
  struct Entry {
    uint64_t counter = 0;
    uint64_t high = 0;
    uint64_t base = 0;
    bool readable = false;
  };
  std::map<std::string, Entry> counters;
  size_t budget = opt_.frame_bytes_max / 2;
  auto fits = [&budget](std::string_view stream) {
    const size_t cost = stream.size() + 48;  // the entry, its table and offsets
    if (cost > budget) return false;
    budget -= cost;
    return true;
  };
  Status error;
  // With several writers the user may have left a stream since the Hello checked it (another instance):
  // checked again in this snapshot.
  std::vector<std::string> follows;
  for (const auto& stream : s.follows) {
    if (fits(stream)) follows.push_back(stream);
  }
  std::vector<bool> readable(follows.size(), true);
  if (store_->many_writers()) MayReadAll(txn, s, follows, &readable, &error);
  OUTPOST_RETURN_IF_ERROR(error);
  for (size_t i = 0; i < follows.size(); ++i) {
    Entry& e = counters[follows[i]];
    OUTPOST_RETURN_IF_ERROR(txn.Counter({s.user, s.device, follows[i]}, &e.counter));
    if (readable[i]) {
      e.readable = true;
      OUTPOST_RETURN_IF_ERROR(txn.High(follows[i], &e.high));
    } else {
      Unfollow(r.conn, s, follows[i]);
    }
  }
  std::vector<std::string> others;
  OUTPOST_RETURN_IF_ERROR(txn.DeviceCounters(s.user, s.device, [&](std::string_view stream, uint64_t last) {
    if (s.follows.contains(std::string(stream))) return true;
    if (!fits(stream)) return false;
    counters[std::string(stream)].counter = last;
    others.emplace_back(stream);
    return true;
  }));
  MayReadAll(txn, s, others, &readable, &error);
  OUTPOST_RETURN_IF_ERROR(error);
  for (size_t i = 0; i < others.size(); ++i) {
    if (readable[i]) {
      counters[others[i]].readable = true;
      OUTPOST_RETURN_IF_ERROR(txn.High(others[i], &counters[others[i]].high));
    }
  }
  // Restores since the incarnation the device saw (docs/lifecycle.md): how much of each stream it may keep.
  std::vector<std::string> incarnations;
  OUTPOST_RETURN_IF_ERROR(txn.Incarnations(&incarnations));
  std::vector<uint64_t> restores;  // the restores (incarnation numbers) the device has not seen
  if (!incarnations.empty() && s.incarnation != incarnations.back()) {
    auto seen = std::find(incarnations.begin(), incarnations.end(), s.incarnation);
    // A device that saw none (new, or upgraded from protocol 2) or one of another history: every restore.
    const size_t first =
        seen == incarnations.end() ? 1 : static_cast<size_t>(seen - incarnations.begin()) + 1;
    for (size_t n = first; n < incarnations.size(); ++n) restores.push_back(n);
  }
  const bool rebase = !restores.empty();
  for (auto& [stream, e] : counters) {
    if (!rebase) break;
    // Where the device may not read, the server says nothing of the stream (not even its size): base 0, the
    // device trusts none of what it holds of it (sets it aside). Kept, that history could be one the restored
    // copy never had; should the device's user become a member again (the restored member lists are the
    // copy's, and members ops are sent again), it would pull the new history on top of the old and diverge.
    if (!e.readable) {
      e.base = 0;
      continue;
    }
    e.base = e.high;
    for (uint64_t n : restores) {
      uint64_t base = 0;
      OUTPOST_RETURN_IF_ERROR(txn.RestoreBase(n, stream, &base));
      e.base = std::min(e.base, base);
    }
  }
  flatbuffers::FlatBufferBuilder b(256 + counters.size() * 64);
  std::vector<flatbuffers::Offset<wire::DeviceCounter>> dcs;
  for (const auto& [stream, e] : counters) {
    dcs.push_back(wire::CreateDeviceCounter(b, b.CreateString(stream), e.counter, e.high, e.base));
  }
  auto vec = b.CreateVector(dcs);
  auto media_url = opt_.media_url.empty() ? 0 : b.CreateString(opt_.media_url);
  const std::string current = incarnations.empty() ? std::string() : incarnations.back();
  auto incarnation =
      current.empty() ? 0 : b.CreateVector(reinterpret_cast<const uint8_t*>(current.data()), current.size());
  auto body = wire::CreateWelcome(b, s.protocol, vec, opt_.frame_bytes_max, opt_.ops_per_batch_max,
                                  opt_.payload_bytes_max, 0, opt_.kind_bytes_max, opt_.stream_id_bytes_max,
                                  media_url, incarnation, rebase, opt_.protocol_min, codec::kProtocolVersion);
  // Receipts that moved while the device was away: a caught-up device may not pull in this session, and
  // relays only carry what moves from now on. They go before the Welcome, so a device that is idle once
  // welcomed (a one-shot sync) has them already.
  for (const auto& stream : s.follows)
    OUTPOST_RETURN_IF_ERROR(SendStoredWatermarks(txn, r.conn, s, stream, out));
  out->push_back({r.conn, codec::FinishFrame(b, wire::Body::Welcome, body.Union())});
  return Status::OK();
}

Status ServerCore::Impl::ServePage(ServerReadTxn& txn, Group& g, Session& s, const ReadRequest& r,
                                   size_t* pulled, std::vector<Outbound>* out) {
  // The pull was checked inside the write group; the page comes from a later snapshot, in which the user
  // may have left the stream (in this group, or on another instance meanwhile). Checked again in the
  // snapshot the page is read from: a removed member gets nothing more at once.
  Status error;
  const bool may = !g.left.contains({r.stream, s.user}) && MayRead(txn, s, r.stream, &error);
  OUTPOST_RETURN_IF_ERROR(error);
  if (!may) {
    Unfollow(r.conn, s, r.stream);
    out->push_back({r.conn, codec::EncodeError(Status::Code::kPermissionDenied,
                                               "pull " + r.stream + ": forbidden: " + s.user +
                                                   " is not a member of " + r.stream,
                                               false)});
    out->push_back({r.conn, codec::EncodeEmptyBatch(r.stream, r.after)});
    return Status::OK();
  }
  uint64_t high = 0;
  OUTPOST_RETURN_IF_ERROR(txn.High(r.stream, &high));
  uint32_t limit = r.limit;
  size_t budget = opt_.frame_bytes_max > 4096 ? opt_.frame_bytes_max - 4096 : opt_.frame_bytes_max / 2;
  // One frame's worth of pages per connection per group: a device that sends a burst of Pulls (many
  // streams catching up at once) gets empty pages with has_more for the rest and asks again, rather than
  // the server queueing hundreds of MiB for it (and the transport dropping it for that).
  if (*pulled >= budget) limit = 0;
  std::vector<std::string> stored;
  if (r.after < high && limit > 0)
    OUTPOST_RETURN_IF_ERROR(txn.ReadPage(r.stream, r.after, limit, budget, &stored));
  // One builder per server thread, kept between pages: a page is up to a frame (MiBs), and a fresh builder
  // grew to it by doubling, each step a new allocation and its page faults (a third of Merge's CPU).
  thread_local flatbuffers::FlatBufferBuilder b(64 << 10);
  b.Clear();
  std::vector<flatbuffers::Offset<wire::Op>> ops;
  ops.reserve(stored.size());
  for (const auto& bytes : stored) {
    auto op = codec::DecodeStoredOp(bytes);
    if (!op.ok()) return op.status();
    *pulled += bytes.size();
    ops.push_back(codec::BuildOp(b, codec::FieldsOf(**op)));
  }
  const uint64_t last = r.after + ops.size();
  auto sv = b.CreateString(r.stream.data(), r.stream.size());
  auto ov = b.CreateVector(ops);
  auto body = wire::CreateBatch(b, sv, r.after, ov, high, last < high);
  // Stored watermarks go first: a device that has merged the batch has its receipts too.
  OUTPOST_RETURN_IF_ERROR(SendStoredWatermarks(txn, r.conn, s, r.stream, out));
  out->push_back({r.conn, codec::FinishFrame(b, wire::Body::Batch, body.Union())});
  return Status::OK();
}

Status ServerCore::Impl::SendStoredWatermarks(ServerReadTxn& txn, ConnId conn, Session& s,
                                              std::string_view stream, std::vector<Outbound>* out) {
  if (s.watermarks_sent.contains(std::string(stream))) return Status::OK();
  std::vector<StoredWatermark> wms;
  OUTPOST_RETURN_IF_ERROR(txn.Watermarks(stream, &wms));
  s.watermarks_sent.emplace(stream);
  for (const auto& wm : wms) {
    if (wm.user == s.user && wm.device == s.device) continue;
    out->push_back({conn, codec::EncodeWatermark(stream, wm.user, wm.device,
                                                 static_cast<WatermarkKind>(wm.kind), wm.seq)});
  }
  return Status::OK();
}

Result<bool> ServerCore::Impl::MayReadBlob(std::string_view user, std::string_view device,
                                           const BlobInfo& blob) {
  if (!blob.complete) return false;
  if (blob.spec.owner == user) return true;
  // Enough to find a stream the user may read among any a blob is plausibly shared in; a blob referenced
  // in more streams than this is readable through the first ones only.
  constexpr uint32_t kBlobStreamsMax = 1000;
  OUTPOST_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
  std::vector<std::string> streams;
  OUTPOST_RETURN_IF_ERROR(txn->BlobStreams(blob.id, kBlobStreamsMax, &streams));
  std::vector<bool> member(streams.size(), true);
  if (opt_.membership) OUTPOST_RETURN_IF_ERROR(txn->MemberOf(user, streams, &member));
  for (size_t i = 0; i < streams.size(); ++i) {
    if (!member[i]) continue;
    if (opt_.authorize &&
        !opt_.authorize(AccessRequest{user, device, streams[i], Access::kPull, {}, {}}).ok()) {
      continue;
    }
    return true;
  }
  return false;
}

}  // namespace outpost
