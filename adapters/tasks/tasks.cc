// Copyright 2026 The Outpost Authors.
//
// The task list adapter (tasks.h): payload codec, the fold, and the per-list state kept in memory.
#include "outpost/tasks/tasks.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "outpost/membership.h"

namespace outpost::tasks {
namespace {

// A page of Client::Since; doubled while a full page ends in unsent ops (tasks.h, Refresh).
constexpr size_t kPageOps = 256;
constexpr size_t kPageOpsMax = size_t{1} << 20;
constexpr size_t kOpIdTextBytes = 36;

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// A task id in a payload: exactly the 36 bytes OpId::ToString writes, not nil.
std::optional<OpId> ParseTaskId(std::string_view text) {
  if (text.size() != kOpIdTextBytes) return std::nullopt;
  auto id = OpId::Parse(text);
  if (!id.ok() || id->IsNil()) return std::nullopt;
  return *id;
}

// An anchor: empty is nil (the kind says what nil means), else a task id.
std::optional<OpId> ParseAnchor(std::string_view text) {
  if (text.empty()) return OpId{};
  return ParseTaskId(text);
}

// Splits "A\nB" at its first '\n'; false when there is none.
bool SplitField(std::string_view payload, std::string_view* first, std::string_view* rest) {
  const size_t nl = payload.find('\n');
  if (nl == std::string_view::npos) return false;
  *first = payload.substr(0, nl);
  *rest = payload.substr(nl + 1);
  return true;
}

std::string AnchorText(const OpId& anchor) { return anchor.IsNil() ? std::string() : anchor.ToString(); }

// The task an edit op is about, for FailedEdit (nil for an add, a title, or an unreadable payload).
OpId TaskOf(const OpInfo& op) {
  if (op.kind == kAddKind || op.kind == kTitleKind) return {};
  std::string_view head = op.payload;
  head = head.substr(0, head.find('\n'));
  auto id = ParseTaskId(head);
  return id ? *id : OpId{};
}

Status CheckListId(std::string_view list) {
  if (list.empty()) return Status::InvalidArgument("list id is empty");
  if (StartsWith(list, kFeedPrefix)) {
    return Status::InvalidArgument("list id " + QuoteForMessage(list) + " starts with \"" +
                                   std::string(kFeedPrefix) + "\", which is kept for membership feeds");
  }
  return Status::OK();
}

}  // namespace

Status ValidateTitle(std::string_view title) {
  if (title.empty()) return Status::InvalidArgument("title is empty");
  if (title.size() > kTitleBytesMax) {
    return Status::InvalidArgument("title is " + std::to_string(title.size()) + " bytes; at most " +
                                   std::to_string(kTitleBytesMax) + " are allowed");
  }
  for (char c : title) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      return Status::InvalidArgument("title " + QuoteForMessage(title) + " holds a control byte");
    }
  }
  if (!IsUtf8(title)) return Status::InvalidArgument("title " + QuoteForMessage(title) + " is not UTF-8");
  return Status::OK();
}

// ---- Fold ----

size_t Fold::IndexOf(const OpId& task) const {
  return static_cast<size_t>(std::find(order_.begin(), order_.end(), task) - order_.begin());
}

bool Fold::Live(const OpId& task) const {
  auto it = entries_.find(task);
  return it != entries_.end() && !it->second.removed;
}

void Fold::Apply(const OpInfo& op, bool pending) {
  std::string_view kind = op.kind;
  if (!StartsWith(kind, kKindPrefix)) return;
  any_ = true;
  std::string_view payload = op.payload;
  std::string_view first, rest;
  // The live task an edit names (marked pending when `pending`); nullptr when it is unknown or removed, and
  // when `text` is not a task id (then *malformed is set).
  auto live_entry = [&](std::string_view text, bool* malformed) -> Entry* {
    auto id = ParseTaskId(text);
    if (!id) {
      *malformed = true;
      return nullptr;
    }
    auto it = entries_.find(*id);
    if (it == entries_.end() || it->second.removed) return nullptr;  // unknown or removed: a no-op
    it->second.pending = it->second.pending || pending;
    return &it->second;
  };
  bool malformed = false;
  if (kind == kTitleKind) {
    if (ValidateTitle(payload).ok()) {
      title_ = std::string(payload);
    } else {
      malformed = true;
    }
  } else if (kind == kAddKind) {
    std::optional<OpId> anchor;
    if (!SplitField(payload, &first, &rest) || !(anchor = ParseAnchor(first)) || !ValidateTitle(rest).ok() ||
        op.op_id.IsNil()) {
      malformed = true;
    } else if (!entries_.count(op.op_id)) {
      entries_[op.op_id] = Entry{std::string(rest), false, false, pending, op.user};
      if (!anchor->IsNil() && Live(*anchor)) {
        order_.insert(order_.begin() + static_cast<std::ptrdiff_t>(IndexOf(*anchor) + 1), op.op_id);
      } else {
        order_.push_back(op.op_id);  // no anchor, or a removed or unknown one: at the end
      }
    }
  } else if (kind == kCompleteKind || kind == kReopenKind) {
    if (Entry* e = live_entry(payload, &malformed)) e->done = kind == kCompleteKind;
  } else if (kind == kRenameKind) {
    if (!SplitField(payload, &first, &rest) || !ValidateTitle(rest).ok()) {
      malformed = true;
    } else if (Entry* e = live_entry(first, &malformed)) {
      e->title = std::string(rest);
    }
  } else if (kind == kMoveKind) {
    std::optional<OpId> anchor;
    if (!SplitField(payload, &first, &rest) || !(anchor = ParseAnchor(rest))) {
      malformed = true;
    } else {
      const auto task = ParseTaskId(first);
      if (!task) {
        malformed = true;
      } else if (Live(*task) && *anchor != *task && (anchor->IsNil() || Live(*anchor))) {
        entries_[*task].pending = entries_[*task].pending || pending;
        order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(IndexOf(*task)));
        const size_t at = anchor->IsNil() ? 0 : IndexOf(*anchor) + 1;
        order_.insert(order_.begin() + static_cast<std::ptrdiff_t>(at), *task);
      }
    }
  } else if (kind == kRemoveKind) {
    auto id = ParseTaskId(payload);
    if (!id) {
      malformed = true;
    } else if (Live(*id)) {
      entries_[*id].removed = true;
      order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(IndexOf(*id)));
    }
  } else {
    malformed = true;  // a kind of a later version of this adapter, or garbage
  }
  if (malformed) ++invalid_ops_;
}

std::vector<Task> Fold::Tasks() const {
  std::vector<Task> out;
  out.reserve(order_.size());
  for (const OpId& id : order_) {
    const Entry& e = entries_.at(id);
    out.push_back(Task{id, e.title, e.done, e.pending, e.author});
  }
  return out;
}

// ---- Tasks ----

Result<std::unique_ptr<Tasks>> Tasks::Open(ClientOptions options) {
  if (options.user.empty()) {
    return Status::InvalidArgument("Tasks::Open needs a user: lists are shared between users");
  }
  options.follow_memberships = true;
  auto client = Client::Open(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<Tasks>(new Tasks(std::move(client).value()));
}

Tasks::Tasks(std::unique_ptr<Client> client) : client_(std::move(client)) {
  client_sub_ = client_->Subscribe("", [this](const std::vector<Change>& changes) { OnChanges(changes); });
}

Tasks::~Tasks() {
  // No call of OnChanges runs after this returns, so mu_ and lists_ may go before client_.
  client_->Unsubscribe(client_sub_);
}

void Tasks::OnChanges(const std::vector<Change>& changes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Change& c : changes) {
    auto it = lists_.find(c.stream);
    if (it != lists_.end()) it->second.stale = true;
  }
}

Result<const TaskList*> Tasks::Refresh(std::string_view list) {
  auto it = lists_.find(list);
  if (it == lists_.end()) it = lists_.emplace(std::string(list), ListState{}).first;
  ListState& st = it->second;
  if (!st.stale) return &st.view;

  uint64_t cursor = 0;
  auto c = client_->Cursor(list);
  if (c.ok()) {
    cursor = *c;
  } else if (c.status().code() != Status::Code::kNotFound) {
    return c.status();
  }
  // Sent ops up to the cursor go into the base fold for good: every op at or below it is merged, so none
  // can come later. Own acknowledged ops above it (the server ordered them, but ops of others before them
  // are not merged yet) and unsent ops are applied on a copy only.
  std::vector<OpInfo> top_sent, unsent;
  uint64_t after = st.base_seq;
  size_t n = kPageOps;
  while (true) {
    auto page = client_->Since(list, after, n);
    if (!page.ok()) return page.status();
    unsent.clear();
    uint64_t last_sent = after;
    for (OpInfo& op : *page) {
      if (op.state == OpState::kSent) {
        last_sent = op.seq;
        if (op.seq <= cursor && top_sent.empty()) {
          st.base.Apply(op);
          st.base_seq = op.seq;
        } else {
          top_sent.push_back(std::move(op));
        }
      } else {
        unsent.push_back(std::move(op));
      }
    }
    if (page->size() < n) break;
    after = last_sent;
    // A full page that ends in unsent ops may have more after it: read again from its last sent op, with a
    // larger page (tasks.h; the outbox is what makes it larger).
    if (page->back().state != OpState::kSent) {
      if (n >= kPageOpsMax)
        return Status::Full("more than " + std::to_string(kPageOpsMax) + " unsent ops in list " +
                            QuoteForMessage(list));
      n *= 2;
    }
  }

  st.shown = st.base;
  TaskList view;
  view.id = std::string(list);
  for (const OpInfo& op : top_sent) st.shown.Apply(op);
  for (const OpInfo& op : unsent) {
    if (!StartsWith(op.kind, kKindPrefix)) continue;
    if (op.state == OpState::kFailed) {
      view.failed.push_back(FailedEdit{op.op_id, op.kind, TaskOf(op), op.last_error});
    } else {
      st.shown.Apply(op, /*pending=*/true);
    }
  }
  if (!st.shown.any() && view.failed.empty()) {
    return Status::NotFound("no task list " + QuoteForMessage(list) + " on this device");
  }
  view.title = st.shown.title();
  view.tasks = st.shown.Tasks();
  view.folded_seq = st.base_seq;
  view.invalid_ops = st.shown.invalid_ops();
  auto members = client_->Members(list);
  if (members.ok()) view.members = std::move(members).value();
  st.view = std::move(view);
  st.stale = false;
  return &st.view;
}

Result<TaskList> Tasks::Get(std::string_view list) {
  if (Status s = CheckListId(list); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto view = Refresh(list);
  if (!view.ok()) return view.status();
  return **view;
}

Result<std::vector<ListInfo>> Tasks::Lists() {
  auto streams = client_->Streams();
  if (!streams.ok()) return streams.status();
  std::vector<ListInfo> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const StreamInfo& s : *streams) {
    if (StartsWith(s.stream, kFeedPrefix)) continue;
    auto view = Refresh(s.stream);
    if (!view.ok()) {
      if (view.status().code() == Status::Code::kNotFound) continue;  // another adapter's stream
      return view.status();
    }
    ListInfo info{s.stream, (*view)->title, (*view)->tasks.size(), 0, s.outbox, s.failed};
    for (const Task& t : (*view)->tasks) info.done += t.done ? 1 : 0;
    out.push_back(std::move(info));
  }
  return out;
}

Result<OpId> Tasks::CreateList(std::string_view id, std::string_view title,
                               const std::vector<std::string>& members) {
  if (Status s = CheckListId(id); !s.ok()) return s;
  if (Status s = ValidateTitle(title); !s.ok()) return s;
  std::vector<std::string> names;
  for (const auto& m : members) {
    if (Status s = ValidateUserName(m); !s.ok()) return s;
    if (std::find(names.begin(), names.end(), m) == names.end()) names.push_back(m);
  }
  if (std::find(names.begin(), names.end(), user()) == names.end()) names.insert(names.begin(), user());
  // One transaction: the list never exists here without its title, and the server orders the members op
  // first (a device's ops of a stream keep their order), so the title op is a member's.
  std::vector<NewOp> ops(2);
  ops[0] = NewOp{std::string(id), std::string(kMembersKind), EncodeMembers(names), {}};
  ops[1] = NewOp{std::string(id), std::string(kTitleKind), std::string(title), {}};
  auto ids = client_->SubmitBatch(ops);
  if (!ids.ok()) return ids.status();
  return ids->front();
}

Result<OpId> Tasks::Edit(std::string_view list, std::string_view kind, const OpId& task,
                         std::string payload) {
  if (Status s = CheckListId(list); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto view = Refresh(list);
    if (!view.ok()) return view.status();
    if (!task.IsNil() && !lists_.find(list)->second.shown.Live(task)) {
      return Status::NotFound("no task " + task.ToString() + " in list " + QuoteForMessage(list) +
                              " (never added here, or removed)");
    }
  }
  // Not under mu_: Submit delivers the change events of its commit, and OnChanges takes mu_.
  return client_->Submit(list, kind, payload);
}

Result<OpId> Tasks::Add(std::string_view list, std::string_view title, const OpId& after) {
  if (Status s = ValidateTitle(title); !s.ok()) return s;
  if (Status s = CheckListId(list); !s.ok()) return s;
  // The anchor must be live; Edit checks the task it is given, so hand it the anchor.
  return Edit(list, kAddKind, after, AnchorText(after) + "\n" + std::string(title));
}

Result<OpId> Tasks::Complete(std::string_view list, const OpId& task) {
  if (task.IsNil()) return Status::InvalidArgument("task id is nil");
  return Edit(list, kCompleteKind, task, task.ToString());
}

Result<OpId> Tasks::Reopen(std::string_view list, const OpId& task) {
  if (task.IsNil()) return Status::InvalidArgument("task id is nil");
  return Edit(list, kReopenKind, task, task.ToString());
}

Result<OpId> Tasks::Rename(std::string_view list, const OpId& task, std::string_view title) {
  if (task.IsNil()) return Status::InvalidArgument("task id is nil");
  if (Status s = ValidateTitle(title); !s.ok()) return s;
  return Edit(list, kRenameKind, task, task.ToString() + "\n" + std::string(title));
}

Result<OpId> Tasks::Move(std::string_view list, const OpId& task, const OpId& after) {
  if (task.IsNil()) return Status::InvalidArgument("task id is nil");
  if (after == task) return Status::InvalidArgument("a task cannot be moved after itself");
  if (!after.IsNil()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = CheckListId(list); !s.ok()) return s;
    auto view = Refresh(list);
    if (!view.ok()) return view.status();
    if (!lists_.find(list)->second.shown.Live(after)) {
      return Status::NotFound("no task " + after.ToString() + " in list " + QuoteForMessage(list) +
                              " to move after (never added here, or removed)");
    }
  }
  return Edit(list, kMoveKind, task, task.ToString() + "\n" + AnchorText(after));
}

Result<OpId> Tasks::Remove(std::string_view list, const OpId& task) {
  if (task.IsNil()) return Status::InvalidArgument("task id is nil");
  return Edit(list, kRemoveKind, task, task.ToString());
}

uint64_t Tasks::Subscribe(std::string_view list, ListCallback callback) {
  return client_->Subscribe(list, [callback = std::move(callback)](const std::vector<Change>& changes) {
    std::vector<ListChange> out;
    for (const Change& c : changes) {
      const bool op_change = c.kind == Change::Kind::kAdded || c.kind == Change::Kind::kUpdated ||
                             c.kind == Change::Kind::kRemoved;
      if (!op_change || StartsWith(c.stream, kFeedPrefix)) continue;
      if (!StartsWith(c.op_kind, kKindPrefix) && c.op_kind != kMembersKind) continue;
      out.push_back(ListChange{c.kind, c.stream, c.op_id, c.op_kind, c.state, c.own, c.seq});
    }
    if (!out.empty()) callback(out);
  });
}

void Tasks::Unsubscribe(uint64_t id) { client_->Unsubscribe(id); }

Status Tasks::Retry(const OpId& op_id) { return client_->Retry(op_id); }

Status Tasks::Discard(const OpId& op_id) { return client_->Discard(op_id); }

}  // namespace outpost::tasks
