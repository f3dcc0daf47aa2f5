// Copyright 2026 The Outpost Authors.
//
// Wake-ups between the instances on one PostgreSQL database: NOTIFY payloads on channel `outpost_events`,
// and the thread that LISTENs for them.
//
// Payload grammar (base64 of these bytes; PostgreSQL wants payloads of text shorter than 8000 bytes):
//   payload := 'O' version:u8(1) instance:u64le flags:u8(bit 0: lost) entry*
//   entry   := 1 stream high:varint                                  (a head)
//            | 2 stream user device kind:u8 seq:varint               (a watermark)
//            | 3 stream user                                         (joined)
//            | 4 stream user                                         (left)
//   stream, user, device := length:varint bytes
// Events too big for one payload are split over several; an entry too big for any (a stream id of
// thousands of bytes) is replaced by the lost flag: receivers re-read what they follow.
#ifndef OUTPOST_SERVER_STORE_POSTGRESQL_PG_EVENTS_H_
#define OUTPOST_SERVER_STORE_POSTGRESQL_PG_EVENTS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "outpost/server_store.h"

namespace outpost::pg {

inline constexpr const char* kEventsChannel = "outpost_events";
inline constexpr size_t kPayloadBytesMax = 7900;  // base64 text, under PostgreSQL's 8000

// The payloads (base64 text) that carry `events` from `instance`: one, unless they do not fit.
std::vector<std::string> EncodeEvents(const StoreEvents& events, uint64_t instance);
// False for a payload that is not ours or is damaged.
bool DecodeEvents(std::string_view payload, uint64_t* instance, StoreEvents* events);

// The LISTEN connection and its thread. Hands every decoded payload of another instance to `deliver`,
// and StoreEvents{lost = true} once the connection is back after it dropped (or after the first attempt
// failed). Reconnects with backoff from 100 ms to 5 s.
class Listener {
 public:
  Listener(std::string uri, std::string redacted, uint64_t instance, std::function<void(StoreEvents)> deliver,
           std::atomic<uint64_t>* connections_opened, std::atomic<uint64_t>* received);
  ~Listener();  // stops and joins the thread
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Starts the thread and waits until its first LISTEN succeeded or failed (bounded by libpq's connect
  // timeout), so that a notify sent after Start returns reaches it when the database is up.
  void Start();

 private:
  void Run();
  void Wait(int ms);  // or until stopped

  const std::string uri_;
  const std::string redacted_;
  const uint64_t instance_;
  const std::function<void(StoreEvents)> deliver_;
  std::atomic<uint64_t>* connections_opened_;
  std::atomic<uint64_t>* received_;
  int wake_[2] = {-1, -1};  // a pipe: a byte on it stops the poll
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool first_attempt_done_ = false;
  std::thread thread_;
};

}  // namespace outpost::pg

#endif  // OUTPOST_SERVER_STORE_POSTGRESQL_PG_EVENTS_H_
