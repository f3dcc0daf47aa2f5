// Copyright 2026 The Outpost Authors.
//
// Helpers shared by the task adapter's tests (tasks_adapter_test.cc, tasks_sim_test.cc): a printable form
// of a list, and the reference fold: the list's ops as the server ordered them, read by a device that
// made none of them, folded from scratch by tasks::Fold.
#ifndef OUTPOST_TESTS_UNIT_TASKS_HARNESS_H_
#define OUTPOST_TESTS_UNIT_TASKS_HARNESS_H_

#include <string>
#include <vector>

#include "outpost/client.h"
#include "outpost/result.h"
#include "outpost/tasks/tasks.h"

namespace outpost::tasks::testing {

// "title|t1 +done|t2 ~pending|..." with the task ids' last 6 characters: equal strings, equal lists.
inline std::string Render(const std::string& title, const std::vector<Task>& tasks, bool with_pending) {
  std::string out = title;
  for (const Task& t : tasks) {
    out += "|" + t.id.ToString().substr(30) + ":" + t.title;
    if (t.done) out += " +done";
    if (with_pending && t.pending) out += " ~pending";
  }
  return out;
}

inline std::string Render(const TaskList& list, bool with_pending = true) {
  return Render(list.title, list.tasks, with_pending);
}

// The fold of every sent op of `list` in `reader`'s view, from seq 0, in pages of `page` ops.
inline Result<std::string> FreshFold(Client& reader, const std::string& list, uint64_t* ops = nullptr,
                                     size_t page = 100) {
  Fold fold;
  uint64_t after = 0, count = 0;
  while (true) {
    auto got = reader.Since(list, after, page);
    if (!got.ok()) return got.status();
    for (const OpInfo& op : *got) {
      if (op.state != OpState::kSent) continue;
      fold.Apply(op);
      after = op.seq;
      ++count;
    }
    if (got->size() < page) break;
  }
  if (ops) *ops = count;
  return Render(fold.title(), fold.Tasks(), false);
}

}  // namespace outpost::tasks::testing

#endif  // OUTPOST_TESTS_UNIT_TASKS_HARNESS_H_
