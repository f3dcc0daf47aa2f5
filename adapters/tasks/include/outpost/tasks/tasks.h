// Copyright 2026 The Outpost Authors.
//
// The task list adapter: shared task lists on top of the public engine API (client.h), nothing else. It is
// the worked example of docs/adapters.md.
//
//   auto tasks = tasks::Tasks::Open({.store = "lmdb:/data/alice", .server = "tcp://sync.example:7700",
//                                    .user = "alice", .token = token});
//   (*tasks)->CreateList("groceries", "Groceries", {"alice", "bob"});
//   auto milk = (*tasks)->Add("groceries", "milk");      // durable and shown (pending) before any network
//   (*tasks)->Complete("groceries", *milk);
//   (*tasks)->client().Start();                           // background sync
//
// Model:
//  - A list is a stream. Its members are those of Client::Members (the latest outpost.members op,
//    membership.h); a server with membership on lets only them read and write it. Lists shared with the
//    user are found through the user's membership feed: Open turns ClientOptions::follow_memberships on.
//  - Every edit is one op of the list's stream; a task's id is the op id of its add op. Kinds and payloads
//    (text, '\n' separates fields; TASK and ANCHOR are op ids as OpId::ToString writes them, 36 bytes):
//      tasks.title     TITLE                 the list's title
//      tasks.add       ANCHOR "\n" TITLE     a new task, after task ANCHOR; ANCHOR empty: at the end
//      tasks.complete  TASK
//      tasks.reopen    TASK
//      tasks.rename    TASK "\n" TITLE
//      tasks.move      TASK "\n" ANCHOR      after task ANCHOR; ANCHOR empty: first
//      tasks.remove    TASK
//    TITLE is 1..kTitleBytesMax bytes of UTF-8 without control bytes (so without '\n'). A payload outside
//    this grammar, or an op of an unknown tasks.* kind, is skipped and counted (TaskList::invalid_ops); it
//    never fails the list.
//  - State is a fold of the list's ops in the server's order (sent ops by seq), with this device's own ops
//    that the server has not ordered yet applied on top in the order they were made (optimistic: an own
//    edit shows at once, flagged pending). Failed own ops are not applied; TaskList::failed names them
//    until Retry or Discard. Clocks never order anything.
//  - Conflict rules (each follows from applying ops one by one in the server's order):
//      rename            the last rename by seq wins;
//      complete/reopen   the last of them by seq wins;
//      remove            wins over every later edit: an op on a removed (or unknown) task is a no-op;
//      add               after ANCHOR when ANCHOR is a live task at that point, else at the end;
//      move              after ANCHOR (empty: first) when ANCHOR is a live task at that point; relative
//                        to a removed or unknown anchor (or to itself) the move is a no-op: the task
//                        keeps its place;
//      title             the last tasks.title by seq wins.
//    Every device that has merged the same ops shows the same list, whatever order they arrived in.
//  - Incremental: each list's fold of the sent ops up to the stream's cursor is kept in memory; a change
//    event of the list marks it stale, and the next read folds only the ops after the last folded seq
//    (Client::Since pages). Own ops not yet ordered are re-applied on a copy at each such read.
//
// Limits: a list is meant for thousands of tasks, not millions: an add or a move costs time linear in the
// list's length, and the fold of every list read is kept in memory (about the size of its titles).
//
// Thread safety: any method from any thread. Subscriber callbacks run as Client's change callbacks do
// (observer.h: one at a time, on the thread that delivers); they may call the reads of this class (Get,
// Lists) but not the edits (they would wait for the delivering thread: use client().SubmitAsync there).
#ifndef OUTPOST_TASKS_TASKS_H_
#define OUTPOST_TASKS_TASKS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "outpost/client.h"
#include "outpost/export.h"
#include "outpost/ids.h"
#include "outpost/observer.h"
#include "outpost/result.h"
#include "outpost/status.h"

namespace outpost::tasks {

inline constexpr std::string_view kTitleKind = "tasks.title";
inline constexpr std::string_view kAddKind = "tasks.add";
inline constexpr std::string_view kCompleteKind = "tasks.complete";
inline constexpr std::string_view kReopenKind = "tasks.reopen";
inline constexpr std::string_view kRenameKind = "tasks.rename";
inline constexpr std::string_view kMoveKind = "tasks.move";
inline constexpr std::string_view kRemoveKind = "tasks.remove";
// Every kind of this adapter starts with this.
inline constexpr std::string_view kKindPrefix = "tasks.";

// The longest task or list title, in bytes.
inline constexpr size_t kTitleBytesMax = 512;

// Ok for 1..kTitleBytesMax bytes of UTF-8 without control bytes; InvalidArgument saying what is wrong.
OUTPOST_EXPORT Status ValidateTitle(std::string_view title);

struct Task {
  OpId id;  // the op id of its add op
  std::string title;
  bool done = false;
  // Some op of this task made on this device has not been acknowledged by the server yet (its add or a
  // later edit): what is shown may still change when the server orders it.
  bool pending = false;
  std::string author;  // the user who added it
};

// An own edit the server refused or that gave up: not applied to the view. Retry or Discard it.
struct FailedEdit {
  OpId op_id;
  std::string kind;  // e.g. "tasks.rename"
  OpId task;         // the task it was about (nil for an add or a title)
  std::string error;
};

struct TaskList {
  std::string id;
  std::string title;                 // empty until a tasks.title op is known
  std::vector<std::string> members;  // empty until a members op is known
  std::vector<Task> tasks;           // in list order
  std::vector<FailedEdit> failed;    // own edits, oldest first
  uint64_t folded_seq = 0;           // the fold covers the sent ops up to this seq
  uint64_t invalid_ops = 0;          // ops skipped: a payload outside the grammar or an unknown kind
};

// The fold of one list: feed it ops in the server's order (then own unordered ones) with Apply. Public so
// that tests and tools can fold ops read elsewhere exactly as the adapter does. Not thread-safe.
class OUTPOST_EXPORT Fold {
 public:
  // Applies `op` when its kind starts with kKindPrefix; other kinds (members, other adapters') are ignored.
  // `pending`: the op is this device's and not yet acknowledged (marks its task pending).
  void Apply(const OpInfo& op, bool pending = false);
  // The live tasks in list order.
  std::vector<Task> Tasks() const;
  const std::string& title() const { return title_; }
  uint64_t invalid_ops() const { return invalid_ops_; }
  // Whether `task` is a live (added, not removed) task.
  bool Live(const OpId& task) const;
  // Whether any op of this adapter has been applied (the stream is a task list).
  bool any() const { return any_; }

 private:
  struct Entry {
    std::string title;
    bool done = false;
    bool removed = false;
    bool pending = false;
    std::string author;
  };
  // Where `task` is in order_ (order_.size() when absent).
  size_t IndexOf(const OpId& task) const;

  std::unordered_map<OpId, Entry, OpIdHash> entries_;  // every task ever added, removed ones too
  std::vector<OpId> order_;                            // live tasks
  std::string title_;
  uint64_t invalid_ops_ = 0;
  bool any_ = false;
};

// A list this device knows (Tasks::Lists).
struct ListInfo {
  std::string id;
  std::string title;
  uint64_t tasks = 0, done = 0;      // live tasks, and of them done (optimistic view)
  uint64_t pending = 0, failed = 0;  // own edits (ops) waiting for the server, and failed
};

// One change of one list, from the engine's change event (observer.h Change), for lists only: ops of
// kinds tasks.* and outpost.members. It says which op changed and how, so that a UI can show "saving",
// "saved" or "failed" for an edit without reading; the list's new order and titles need a Get.
struct ListChange {
  Change::Kind kind = Change::Kind::kAdded;  // kAdded, kUpdated or kRemoved
  std::string list;
  OpId op_id;
  std::string op_kind;
  OpState state = OpState::kPending;
  bool own = false;
  uint64_t seq = 0;
};

using ListCallback = std::function<void(const std::vector<ListChange>&)>;

class OUTPOST_EXPORT Tasks {
 public:
  // Opens the device's store through Client::Open with follow_memberships on (so `options.user` is needed:
  // InvalidArgument without one). Nothing touches the network until client().Start() or a Step.
  static Result<std::unique_ptr<Tasks>> Open(ClientOptions options);
  ~Tasks();
  Tasks(const Tasks&) = delete;
  Tasks& operator=(const Tasks&) = delete;

  // Creates list `id` with `title` and `members` (this user is always added) in one transaction: a members
  // op, then a title op. On an existing list it replaces both (the server refuses it, "forbidden", when this
  // user is not a member). Returns the members op's id. InvalidArgument: an empty or feed ("@...") id, a
  // bad title or user name.
  Result<OpId> CreateList(std::string_view id, std::string_view title,
                          const std::vector<std::string>& members);
  // Edits: each is durable, queued and visible (pending) when it returns, and returns its op id. A task or
  // anchor must be live in this device's view of the list (NotFound otherwise); titles follow
  // ValidateTitle (InvalidArgument). Add: after `after` (nil: at the end); returns the new task's id.
  Result<OpId> Add(std::string_view list, std::string_view title, const OpId& after = {});
  Result<OpId> Complete(std::string_view list, const OpId& task);
  Result<OpId> Reopen(std::string_view list, const OpId& task);
  Result<OpId> Rename(std::string_view list, const OpId& task, std::string_view title);
  // After `after` (nil: first). InvalidArgument when `after` is `task`.
  Result<OpId> Move(std::string_view list, const OpId& task, const OpId& after);
  Result<OpId> Remove(std::string_view list, const OpId& task);

  // Every list this device knows (a followed stream holding an op of this adapter), by id.
  Result<std::vector<ListInfo>> Lists();
  // The list as this device shows it. NotFound when the device knows nothing of it.
  Result<TaskList> Get(std::string_view list);

  // Calls `callback` with the changes of `list` (empty: of every list) after each commit that touched it.
  // Built on Client::Subscribe: returns its id, and Unsubscribe has Client::Unsubscribe's guarantees.
  uint64_t Subscribe(std::string_view list, ListCallback callback);
  void Unsubscribe(uint64_t id);

  // A failed edit: try again (it is ordered after the edits made before the retry) or drop it.
  Status Retry(const OpId& op_id);
  Status Discard(const OpId& op_id);

  Client& client() { return *client_; }
  const std::string& user() const { return client_->user(); }

 private:
  struct ListState {
    Fold base;              // sent ops up to base_seq (at most the stream's cursor)
    uint64_t base_seq = 0;  // the last folded seq
    bool stale = true;      // a change event came after the last read
    Fold shown;             // base + own unordered ops, as of the last read (edits check tasks here)
    TaskList view;          // base + own unordered ops, as of the last read
  };

  explicit Tasks(std::unique_ptr<Client> client);
  void OnChanges(const std::vector<Change>& changes);
  // Brings `list`'s state up to date (under mu_); NotFound when the stream holds no op of this adapter.
  Result<const TaskList*> Refresh(std::string_view list);
  // The live task check every edit makes, then the submit.
  Result<OpId> Edit(std::string_view list, std::string_view kind, const OpId& task, std::string payload);

  std::unique_ptr<Client> client_;
  uint64_t client_sub_ = 0;
  std::mutex mu_;  // guards lists_; never held across a Submit, Retry or Discard (they deliver events)
  std::map<std::string, ListState, std::less<>> lists_;
};

}  // namespace outpost::tasks

#endif  // OUTPOST_TASKS_TASKS_H_
