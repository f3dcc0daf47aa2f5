// Copyright 2026 The Outpost Authors.
//
// The operator's pages of a real outpostd (--http): /metrics read by the Prometheus project's own parser
// (python3-prometheus-client, tests/e2e/prometheus_parse.py) as traffic flows; the status page loaded in
// headless Chromium showing the numbers the server reports; who may see them (loopback only by default,
// the admin token otherwise); and that no token or payload ever appears on them.
#include <httplib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "e2e/e2e_fixture.h"

#ifndef OUTPOST_PROMETHEUS_PARSE
#define OUTPOST_PROMETHEUS_PARSE ""
#endif

namespace outpost::e2e {
namespace {

using nlohmann::json;

constexpr char kAdminToken[] = "s3cret-admin-token-0123456789";
constexpr char kSecretPayload[] = "the payload no operator page may show";
// A stream name is the app's bytes: markup, a terminal escape and invalid UTF-8 must all stay inert text.
const std::string kHostileStream = std::string("<img src=x onerror=alert(1)>\x1b[31m\xff\xfe-room");

class OpsPagesTest : public E2ETest {
 protected:
  std::vector<std::string> ServerFlags() override { return {"--http", "127.0.0.1:0"}; }

  void SetUp() override {
    E2ETest::SetUp();
    if (HasFatalFailure()) return;
    const std::string url = StatsString(data_, "media_url");
    const std::string prefix = "http://127.0.0.1:";
    ASSERT_TRUE(url.starts_with(prefix)) << url;
    port_ = std::atoi(url.c_str() + prefix.size());
    ASSERT_GT(port_, 0) << url;
  }

  httplib::Result Get(const std::string& path, httplib::Headers headers = {}) {
    httplib::Client http("127.0.0.1", port_);
    http.set_connection_timeout(10);
    http.set_read_timeout(30);
    return http.Get(path, headers);
  }

  // /metrics parsed by the Prometheus client's parser; fails the test when it is not valid.
  json Metrics() {
    auto got = Get("/metrics");
    EXPECT_TRUE(got) << httplib::to_string(got.error());
    if (!got) return json::object();
    EXPECT_EQ(got->status, 200) << got->body;
    EXPECT_TRUE(got->get_header_value("Content-Type").starts_with("text/plain; version=0.0.4"));
    const std::string path = dir_ / "metrics.txt";
    std::ofstream(path, std::ios::binary) << got->body;
    RunResult parsed = RunProgram({"/usr/bin/python3", OUTPOST_PROMETHEUS_PARSE, path});
    EXPECT_EQ(parsed.exit_code, 0) << parsed.err << "\n" << got->body;
    json out = json::parse(parsed.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(out.is_object()) << parsed.out;
    return out.is_object() ? out : json::object();
  }

  // The value of the sample `name` with `labels` (-1 when absent).
  static double Sample(const json& metrics, const std::string& family, const std::string& name,
                       const json& labels = json::object()) {
    if (!metrics.contains(family)) return -1;
    for (const json& s : metrics[family]["samples"]) {
      if (s["name"] == name && s["labels"] == labels) return s["value"].get<double>();
    }
    return -1;
  }

  // Ops from two devices of two users on one stream, the last one waited for by both. The devices stay
  // open in alice_ and bob_.
  void Traffic(int n, const std::string& stream = "ops-room") {
    alice_ = AlicePhone();
    bob_ = BobPhone();
    ASSERT_TRUE(alice_ && bob_);
    CreateStream(*alice_, stream, {"alice", "bob"});
    FollowConnected(*bob_, stream);
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE((i % 2 ? *bob_ : *alice_).Submit(stream, "chat.text", kSecretPayload).ok());
    }
    const uint64_t last = static_cast<uint64_t>(n) + 1;
    ASSERT_TRUE(
        WaitFor([&] { return CaughtUp(*alice_, stream, last) && CaughtUp(*bob_, stream, last); }, kWaitMs));
  }

  json StatusJson() {
    auto got = Get("/status.json");
    EXPECT_TRUE(got && got->status == 200);
    if (!got) return json::object();
    json out = json::parse(got->body, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(out.is_object()) << got->body;
    return out.is_object() ? out : json::object();
  }

  std::unique_ptr<Client> alice_, bob_;

  int port_ = 0;
};

TEST_F(OpsPagesTest, MetricsAreValidPrometheusTextAndMoveWithTraffic) {
  json before = Metrics();
  ASSERT_FALSE(before.empty());
  // Naming: everything under outpost_, counters end in _total (the parser strips it from the family name
  // and keeps it on the sample), histograms' buckets are cumulative and end at +Inf = count.
  for (const auto& [family, f] : before.items()) {
    EXPECT_TRUE(family.starts_with("outpost_")) << family;
    EXPECT_FALSE(f["help"].get<std::string>().empty()) << family;
    for (const json& s : f["samples"]) {
      if (f["type"] == "counter") {
        EXPECT_TRUE(s["name"].get<std::string>().ends_with("_total")) << family;
      }
    }
  }
  EXPECT_EQ(before["outpost_server_op_verdicts"]["type"], "counter");
  EXPECT_EQ(Sample(before, "outpost_server_op_verdicts", "outpost_server_op_verdicts_total",
                   {{"verdict", "applied"}}),
            0);
  EXPECT_EQ(before["outpost_server_connections"]["type"], "gauge");

  ASSERT_NO_FATAL_FAILURE(Traffic(6));
  json after = Metrics();
  const double applied = Sample(after, "outpost_server_op_verdicts", "outpost_server_op_verdicts_total",
                                {{"verdict", "applied"}});
  EXPECT_EQ(applied, 7);  // the members op and six messages
  EXPECT_GE(Sample(after, "outpost_server_connections_opened", "outpost_server_connections_opened_total"), 2);
  EXPECT_GE(Sample(after, "outpost_server_commits", "outpost_server_commits_total"), 1);
  // The same numbers as the server's own stats (stats.json is rewritten every second: wait for it).
  EXPECT_TRUE(WaitFor([&] { return daemon_.StatsField("ops_applied") == 7; }, kWaitMs));
  EXPECT_EQ(Sample(after, "outpost_server_pulls", "outpost_server_pulls_total"),
            static_cast<double>(daemon_.StatsField("pulls")));
  EXPECT_EQ(Sample(after, "outpost_server_devices_online", "outpost_server_devices_online"), 2);
  EXPECT_GE(Sample(after, "outpost_server_pushes", "outpost_server_pushes_total"), 2);
  EXPECT_GT(Sample(after, "outpost_server_received_bytes", "outpost_server_received_bytes_total"),
            Sample(before, "outpost_server_received_bytes", "outpost_server_received_bytes_total"));
  EXPECT_GT(Sample(after, "outpost_server_sent_bytes", "outpost_server_sent_bytes_total"), 0);
  EXPECT_EQ(
      Sample(after, "outpost_server_commit_duration_seconds", "outpost_server_commit_duration_seconds_count"),
      Sample(after, "outpost_server_commits", "outpost_server_commits_total"));
  // Gauges come down again: both devices gone, no device is online.
  alice_.reset();
  bob_.reset();
  EXPECT_TRUE(WaitFor(
      [&] {
        return Sample(Metrics(), "outpost_server_devices_online", "outpost_server_devices_online") == 0;
      },
      kWaitMs));

  for (const auto& [family, f] : after.items()) {
    if (f["type"] != "histogram") continue;
    double last = 0, inf = -1, count = -1;
    for (const json& s : f["samples"]) {
      const std::string name = s["name"];
      if (name.ends_with("_bucket")) {
        EXPECT_GE(s["value"].get<double>(), last) << family << " buckets must be cumulative";
        last = s["value"];
        if (s["labels"]["le"] == "+Inf") inf = last;
      } else if (name.ends_with("_count")) {
        count = s["value"];
      }
    }
    EXPECT_EQ(inf, count) << family;
  }
}

TEST_F(OpsPagesTest, StatusJsonFollowsTraffic) {
  json before = StatusJson();
  EXPECT_EQ(before["state"], "running");
  EXPECT_EQ(before["current"]["ops_applied"], 0);
  ASSERT_NO_FATAL_FAILURE(Traffic(3, kHostileStream));
  json now = StatusJson();
  EXPECT_EQ(now["current"]["ops_applied"], 4);
  EXPECT_EQ(now["current"]["devices_online"], 2);
  EXPECT_EQ(now["current"]["users_online"], 2);
  EXPECT_GE(now["commit_seconds"]["count"].get<int>(), 1);
  // The stream, and the members' feeds (@alice, @bob) that announced it; invalid bytes of the name became
  // U+FFFD, the rest is as it was.
  const std::string shown("<img src=x onerror=alert(1)>\x1b[31m\xEF\xBF\xBD\xEF\xBF\xBD-room");
  json room;
  std::vector<std::string> names;
  for (const json& st : now["streams"]) {
    names.push_back(st["stream"]);
    if (st["stream"] == shown) room = st;
  }
  EXPECT_NE(std::find(names.begin(), names.end(), "@bob"), names.end()) << now["streams"].dump();
  ASSERT_TRUE(room.is_object()) << now["streams"].dump();
  EXPECT_EQ(room["ops_applied"], 4);
  EXPECT_EQ(room["last_seq"], 4);
  // The history has a sample a second, as columns.
  EXPECT_TRUE(WaitFor([&] { return StatusJson()["history"]["t_ms"].size() >= 2; }, kWaitMs));
  json h = StatusJson()["history"];
  EXPECT_EQ(h["t_ms"].size(), h["ops_applied"].size());
}

TEST_F(OpsPagesTest, PagesShowNoTokenAndNoPayload) {
  ASSERT_NO_FATAL_FAILURE(Traffic(2));
  for (const char* path : {"/metrics", "/status.json", "/", "/status.js"}) {
    auto got = Get(path);
    ASSERT_TRUE(got) << path;
    EXPECT_EQ(got->status, 200) << path;
    for (const std::string& secret : {alice_phone_token_, bob_phone_token_, std::string(kSecretPayload)}) {
      EXPECT_EQ(got->body.find(secret), std::string::npos) << path << " shows a secret";
    }
    // Never readable by another origin, never framed, never cached.
    EXPECT_FALSE(got->has_header("Access-Control-Allow-Origin")) << path;
    EXPECT_EQ(got->get_header_value("X-Frame-Options"), "DENY") << path;
    EXPECT_EQ(got->get_header_value("Cache-Control"), "no-store") << path;
  }
  // Self-contained: nothing is loaded from anywhere else.
  auto page = Get("/");
  ASSERT_TRUE(page);
  EXPECT_FALSE(std::regex_search(page->body, std::regex(R"re((src|href)\s*=\s*"?(https?:)?//)re")))
      << page->body;
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  auto unknown = Get("/.env");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
}

TEST_F(OpsPagesTest, LoopbackOnlyWithoutAnAdminToken) {
  // A page of another site that reaches 127.0.0.1 through DNS rebinding sends its own name as the Host.
  auto rebound = Get("/status.json", {{"Host", "attacker.example:" + std::to_string(port_)}});
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 403);
  EXPECT_NE(rebound->body.find("--admin-token-file"), std::string::npos) << rebound->body;
  for (const std::string host : {"localhost", "127.0.0.1", "[::1]"}) {
    auto ok = Get("/metrics", {{"Host", host + ":" + std::to_string(port_)}});
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << host;
  }
  // The tus routes are untouched: still a bearer token of a device.
  auto upload = Get("/files/nothing");
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->status, 401);
}

class OpsPagesTokenTest : public OpsPagesTest {
 protected:
  std::vector<std::string> ServerFlags() override {
    const std::string file = dir_ / "admin-token";
    std::ofstream(file) << kAdminToken << "\n";
    return {"--http", "127.0.0.1:0", "--admin-token-file", file};
  }
};

TEST_F(OpsPagesTokenTest, TheAdminTokenIsRequired) {
  auto none = Get("/metrics");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_NE(none->get_header_value("WWW-Authenticate").find("Basic"), std::string::npos);
  auto wrong = Get("/metrics", {{"Authorization", std::string("Bearer ") + kAdminToken + "x"}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  // A device's token is not an admin token.
  auto device = Get("/metrics", {{"Authorization", "Bearer " + alice_phone_token_}});
  ASSERT_TRUE(device);
  EXPECT_EQ(device->status, 401);
  auto bearer = Get("/metrics", {{"Authorization", std::string("Bearer ") + kAdminToken}});
  ASSERT_TRUE(bearer);
  EXPECT_EQ(bearer->status, 200);
  // The browser's way: HTTP Basic, any user, the token as the password; from any Host.
  httplib::Client http("127.0.0.1", port_);
  http.set_basic_auth("admin", kAdminToken);
  auto basic = http.Get("/status.json", {{"Host", "status.example.org"}});
  ASSERT_TRUE(basic);
  EXPECT_EQ(basic->status, 200);
  EXPECT_TRUE(json::parse(basic->body, nullptr, false).is_object());
}

TEST(OpsPagesFlagsTest, BadAdminTokenFilesAreUsageErrors) {
  TempDir dir;
  const std::string data = dir / "data";
  const std::string short_token = dir / "short";
  std::ofstream(short_token) << "tooshort\n";
  const std::string spaced = dir / "spaced";
  std::ofstream(spaced) << "a token with spaces in it\n";
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  const Case cases[] = {
      {{"--admin-token-file", short_token}, "needs --http"},
      {{"--http", "127.0.0.1:0", "--admin-token-file", dir / "missing"}, "--admin-token-file"},
      {{"--http", "127.0.0.1:0", "--admin-token-file", short_token}, "at least 16"},
      {{"--http", "127.0.0.1:0", "--admin-token-file", spaced}, "without spaces"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"--data", data, "--listen", "tcp://127.0.0.1:0"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    RunResult r = RunOutpostd(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

// --- the status page in a real browser
// ----------------------------------------------------------------------

// The text of the element with id `id` in Chromium's DOM dump ("" when absent).
std::string ElementText(const std::string& dom, const std::string& id) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex("id=\"" + id + "\"[^>]*>([^<]*)<"))) return "";
  return m[1];
}

TEST_F(OpsPagesTest, StatusPageInChromiumShowsTheServersNumbers) {
  ASSERT_NO_FATAL_FAILURE(Traffic(4, kHostileStream));
  // Quiet now: the page's numbers and the server's own must agree exactly.
  ASSERT_TRUE(WaitFor([&] { return daemon_.StatsField("ops_applied") == 5; }, kWaitMs))
      << daemon_.StatsJson();
  const std::string profile = dir_.Subdir("chromium-profile");
  // --virtual-time-budget: the page's timers run (it polls /status.json) for 3 s of virtual time, network
  // waits not counted, then the DOM is printed. --no-sandbox: CI runs as root, where Chromium's sandbox
  // cannot start; the page is our own.
  RunResult r =
      RunProgram({"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000", "--dump-dom",
                  "http://127.0.0.1:" + std::to_string(port_) + "/"},
                 120'000, {"LANG=C.UTF-8"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& dom = r.out;
  EXPECT_EQ(ElementText(dom, "link"), "live") << dom;
  EXPECT_EQ(ElementText(dom, "state"), "running");
  EXPECT_EQ(ElementText(dom, "ops-applied"), std::to_string(daemon_.StatsField("ops_applied")));
  EXPECT_EQ(ElementText(dom, "pulls"), std::to_string(daemon_.StatsField("pulls")));
  EXPECT_EQ(ElementText(dom, "connections"), std::to_string(daemon_.StatsField("connections")));
  EXPECT_EQ(ElementText(dom, "commits"), std::to_string(daemon_.StatsField("commits")));
  EXPECT_EQ(ElementText(dom, "devices-online"), "2");
  // The stream's name is in the table as text: its markup was not run or parsed.
  EXPECT_NE(dom.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos) << dom;
  EXPECT_EQ(dom.find("<img"), std::string::npos) << dom;
  std::smatch updates;
  ASSERT_TRUE(std::regex_search(dom, updates, std::regex(R"re(data-updates="(\d+)")re"))) << dom;
  EXPECT_GE(std::stoi(updates[1]), 2) << "the page did not refresh itself";
  // No script error: the page's own error box stays hidden, and the console logged none.
  EXPECT_NE(dom.find("id=\"js-error\" hidden"), std::string::npos) << dom;
  for (const std::string needle : {"Uncaught", "CONSOLE(", "Refused to"}) {
    EXPECT_EQ(r.err.find(needle), std::string::npos) << "console: " << r.err;
  }
}

}  // namespace
}  // namespace outpost::e2e
