// Copyright 2026 The Outpost Authors.
#include "server_store/postgresql/pg_events.h"

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "server_store/postgresql/pg_conn.h"

namespace outpost::pg {
namespace {

constexpr uint8_t kMagic = 'O';
constexpr uint8_t kVersion = 1;
constexpr size_t kHeaderBytes = 11;
constexpr size_t kRawBytesMax = kPayloadBytesMax / 4 * 3;  // base64 makes 4 of 3
constexpr uint8_t kHead = 1, kWatermark = 2, kJoined = 3, kLeft = 4;

// Base64 (RFC 4648, padded) by libsodium: NOTIFY payloads must be text.
std::string Base64(std::string_view raw) {
  std::string out(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // its NUL
  return out;
}

bool Unbase64(std::string_view text, std::string* raw) {
  raw->assign(text.size() / 4 * 3 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(raw->data()), raw->size(), text.data(), text.size(),
                        nullptr, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    return false;
  }
  raw->resize(len);
  return true;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(char(v | 0x80));
    v >>= 7;
  }
  out->push_back(char(v));
}

void PutBytes(std::string* out, std::string_view b) {
  PutVarint(out, b.size());
  out->append(b);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in.empty()) break;
      uint8_t b = uint8_t(in[0]);
      in.remove_prefix(1);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::string Bytes() {
    uint64_t n = Varint();
    if (!ok || n > in.size()) {
      ok = false;
      return {};
    }
    std::string b(in.substr(0, n));
    in.remove_prefix(n);
    return b;
  }
  uint8_t Byte() {
    if (in.empty()) {
      ok = false;
      return 0;
    }
    uint8_t b = uint8_t(in[0]);
    in.remove_prefix(1);
    return b;
  }
};

std::string Header(uint64_t instance, bool lost) {
  std::string h;
  h.push_back(char(kMagic));
  h.push_back(char(kVersion));
  for (int i = 0; i < 8; ++i) h.push_back(char(instance >> (8 * i)));
  h.push_back(char(lost ? 1 : 0));
  return h;
}

}  // namespace

std::vector<std::string> EncodeEvents(const StoreEvents& events, uint64_t instance) {
  std::vector<std::string> entries;
  for (const StoreEvents::Head& h : events.heads) {
    std::string e(1, char(kHead));
    PutBytes(&e, h.stream);
    PutVarint(&e, h.high);
    entries.push_back(std::move(e));
  }
  for (const StoredWatermark& w : events.watermarks) {
    std::string e(1, char(kWatermark));
    PutBytes(&e, w.stream);
    PutBytes(&e, w.user);
    PutBytes(&e, w.device);
    e.push_back(char(w.kind));
    PutVarint(&e, w.seq);
    entries.push_back(std::move(e));
  }
  for (const auto& [list, tag] : {std::pair{&events.joined, kJoined}, std::pair{&events.left, kLeft}}) {
    for (const StoreEvents::Membership& m : *list) {
      std::string e(1, char(tag));
      PutBytes(&e, m.stream);
      PutBytes(&e, m.user);
      entries.push_back(std::move(e));
    }
  }
  // Greedy: entries in order, a new payload when the next does not fit.
  bool lost = events.lost;
  std::vector<std::string> raws;
  std::string current;
  for (std::string& e : entries) {
    if (kHeaderBytes + e.size() > kRawBytesMax) {
      lost = true;
      continue;
    }
    if (kHeaderBytes + current.size() + e.size() > kRawBytesMax) {
      raws.push_back(std::move(current));
      current.clear();
    }
    current += e;
  }
  if (!current.empty() || raws.empty()) raws.push_back(std::move(current));
  std::vector<std::string> payloads;
  for (size_t i = 0; i < raws.size(); ++i)
    payloads.push_back(Base64(Header(instance, lost && i == 0) + raws[i]));
  return payloads;
}

bool DecodeEvents(std::string_view payload, uint64_t* instance, StoreEvents* events) {
  std::string raw;
  if (!Unbase64(payload, &raw) || raw.size() < kHeaderBytes) return false;
  if (uint8_t(raw[0]) != kMagic || uint8_t(raw[1]) != kVersion) return false;
  *instance = 0;
  for (int i = 0; i < 8; ++i) *instance |= uint64_t(uint8_t(raw[2 + i])) << (8 * i);
  *events = StoreEvents{};
  events->lost = (uint8_t(raw[10]) & 1) != 0;
  Reader r{std::string_view(raw).substr(kHeaderBytes)};
  while (r.ok && !r.in.empty()) {
    uint8_t tag = r.Byte();
    if (tag == kHead) {
      StoreEvents::Head h;
      h.stream = r.Bytes();
      h.high = r.Varint();
      events->heads.push_back(std::move(h));
    } else if (tag == kWatermark) {
      StoredWatermark w;
      w.stream = r.Bytes();
      w.user = r.Bytes();
      w.device = r.Bytes();
      w.kind = r.Byte();
      w.seq = r.Varint();
      if (w.kind > 1) return false;  // delivered or read: anything else is not ours
      events->watermarks.push_back(std::move(w));
    } else if (tag == kJoined || tag == kLeft) {
      StoreEvents::Membership m;
      m.stream = r.Bytes();
      m.user = r.Bytes();
      (tag == kJoined ? events->joined : events->left).push_back(std::move(m));
    } else {
      return false;
    }
  }
  return r.ok;
}

Listener::Listener(std::string uri, std::string redacted, uint64_t instance,
                   std::function<void(StoreEvents)> deliver, std::atomic<uint64_t>* connections_opened,
                   std::atomic<uint64_t>* received)
    : uri_(std::move(uri)),
      redacted_(std::move(redacted)),
      instance_(instance),
      deliver_(std::move(deliver)),
      connections_opened_(connections_opened),
      received_(received) {}

Listener::~Listener() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (wake_[1] >= 0) {
    char b = 1;
    [[maybe_unused]] ssize_t n = write(wake_[1], &b, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

void Listener::Start() {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this] { Run(); });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return first_attempt_done_ || stop_; });
}

void Listener::Wait(int ms) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_; });
}

void Listener::Run() {
  int backoff_ms = 100;
  bool owe_lost = false;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
    }
    auto opened = Conn::Open(uri_, redacted_, nullptr, "outpostd-listen");
    Status status = opened.status();
    if (opened.ok()) {
      status = (*opened)->Exec("LISTEN outpost_events");
      if (connections_opened_) ++*connections_opened_;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      first_attempt_done_ = true;
    }
    cv_.notify_all();
    if (!status.ok()) {
      owe_lost = true;
      Wait(backoff_ms);
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    backoff_ms = 100;
    if (owe_lost) {
      owe_lost = false;
      StoreEvents lost;
      lost.lost = true;
      deliver_(std::move(lost));
    }
    PGconn* conn = (*opened)->raw();
    for (;;) {
      pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_[0], POLLIN, 0}};
      int n = poll(fds, wake_[0] >= 0 ? 2 : 1, wake_[0] >= 0 ? -1 : 100);
      if (n < 0 && errno != EINTR) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
      }
      if (n <= 0) continue;
      if (fds[0].revents == 0) continue;
      if (PQconsumeInput(conn) != 1) break;
      while (PGnotify* note = PQnotifies(conn)) {
        uint64_t from = 0;
        StoreEvents events;
        if (DecodeEvents(note->extra, &from, &events) && from != instance_) {
          if (received_) ++*received_;
          deliver_(std::move(events));
        }
        PQfreemem(note);
      }
      if (PQstatus(conn) == CONNECTION_BAD) break;
    }
    owe_lost = true;  // the connection dropped: what was notified meanwhile is lost
  }
}

}  // namespace outpost::pg
