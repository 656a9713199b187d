// The insight pages of the dashboard: the tests list (and the flaky tests), one test (its
// results as a strip, its durations as a chart, why it counts as flaky, quarantine), a test
// case's trend (pass rate and durations per day as charts), and two runs compared. Plain
// JavaScript over the JSON API (docs/insights.md); charts by uPlot, served by the gateway.
// app.js routes `#tests`, `#flaky`, `#test/<id>`, `#test-case/<id>` and `#compare/<a>/<b>` here.
"use strict";

const insights = { cursors: [null], page: 0, flakyOnly: false, testId: null, charts: {} };

function percent(rate) { return rate == null ? "" : `${(rate * 100).toFixed(1)}%`; }
function ms(value) { return value == null ? "" : `${value} ms`; }
function testName(t) { return t.classname ? `${t.classname}::${t.name}` : t.name; }

function testLink(t) {
  const a = document.createElement("a");
  a.href = `#test/${t.test_id}`;
  a.textContent = testName(t);
  return a;
}

function quarantineBadge() {
  const span = document.createElement("span");
  span.className = "quarantined";
  span.textContent = "quarantined";
  return span;
}

// Draws (or redraws) a time chart into `element`: `xs` in seconds, `series` [{label, stroke,
// values}]. The points drawn are also left on the element (`data-points`), for people and tests.
function timeChart(element, title, xs, series, yValues) {
  if (insights.charts[element.id]) { insights.charts[element.id].destroy(); }
  element.replaceChildren();
  element.dataset.points = JSON.stringify({ x: xs, series: series.map((s) => ({ label: s.label, values: s.values })) });
  if (xs.length === 0) {
    element.textContent = "No data yet.";
    return;
  }
  const options = {
    title,
    width: Math.min(element.clientWidth || 900, 960),
    height: 220,
    // One point alone would get a scale of years around it: give it a day either side.
    scales: { x: xs.length === 1 ? { time: true, range: [xs[0] - 86400, xs[0] + 86400] } : { time: true } },
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, points: { show: true } }))],
    axes: [{}, yValues ? { values: yValues } : {}],
  };
  insights.charts[element.id] = new uPlot(options, [xs, ...series.map((s) => s.values)], element);
}

function seconds(iso) { return Math.floor(new Date(iso).getTime() / 1000); }

function testsQuery() {
  const params = new URLSearchParams();
  const testCase = $("#tests-test-case").value;
  if (testCase) { params.set("test_case_id", testCase); }
  const status = $("#tests-status").value;
  if (status) { params.set("status", status); }
  if (insights.flakyOnly || $("#tests-flaky").checked) { params.set("flaky", "true"); }
  if ($("#tests-quarantined").checked) { params.set("quarantined", "true"); }
  const q = $("#tests-q").value.trim();
  if (q) { params.set("q", q); }
  params.set("sort", $("#tests-sort").value);
  params.set("limit", "50");
  const cursor = insights.cursors[insights.page];
  if (cursor) { params.set("cursor", cursor); }
  return params.toString();
}

async function loadTestCaseChoices() {
  const select = $("#tests-test-case");
  if (select.options.length > 1) { return; }
  for (const c of await api("GET", "/api/v1/test-cases")) {
    const option = document.createElement("option");
    option.value = c.test_case_id;
    option.textContent = c.name;
    select.append(option);
  }
}

async function loadTests() {
  await loadTestCaseChoices();
  $("#tests-title").textContent = insights.flakyOnly ? "Flaky tests" : "Tests";
  const page = await api("GET", `/api/v1/tests?${testsQuery()}`);
  const body = $("#tests-list tbody");
  body.replaceChildren();
  for (const t of page.items) {
    const row = document.createElement("tr");
    row.dataset.testId = t.test_id;
    cell(row, testLink(t)); cell(row, statusBadge(t.last_status)); cell(row, t.runs);
    cell(row, percent(t.pass_rate)); cell(row, t.flaky ? t.flaky_score.toFixed(2) : "");
    cell(row, ms(t.duration_p50_ms)); cell(row, ms(t.duration_p90_ms)); cell(row, when(t.last_run_at));
    cell(row, t.quarantined ? quarantineBadge() : "");
    body.append(row);
  }
  insights.cursors[insights.page + 1] = page.next_cursor;
  $("#tests-next").disabled = !page.next_cursor;
}

async function loadTest(testId) {
  insights.testId = testId;
  const t = await api("GET", `/api/v1/tests/${testId}?limit=200`);
  $("#test-name").textContent = testName(t);
  const facts = $("#test-facts");
  facts.replaceChildren();
  const testCase = document.createElement("a");
  testCase.href = `#test-case/${t.test_case_id}`;
  testCase.textContent = t.test_case_id;
  fact(facts, "Test case", testCase);
  fact(facts, "Last", statusBadge(t.last_status));
  fact(facts, "Since", when(t.last_changed_at));
  fact(facts, "Results", t.runs);
  fact(facts, "Pass rate", percent(t.pass_rate));
  fact(facts, "Duration", `p50 ${ms(t.duration_p50_ms)}, p90 ${ms(t.duration_p90_ms)}`);
  fact(facts, "First seen", when(t.first_seen_at));
  if (t.last_failure_at) { fact(facts, "Last failure", `${when(t.last_failure_at)}: ${t.last_failure_message ?? ""}`); }
  fact(facts, "Flaky", t.flakiness.flaky ? `yes, score ${t.flakiness.score.toFixed(2)} over the last ${t.flakiness.window} results` : "no");
  if (t.quarantine) {
    const q = t.quarantine;
    fact(facts, "Quarantined", `since ${when(q.since)} by ${q.by}${q.until ? `, until ${when(q.until)}` : ""}: ${q.reason}`);
  }
  $("#quarantine-form").hidden = Boolean(t.quarantine);
  $("#release-button").hidden = !t.quarantine;

  const oldestFirst = [...t.history].reverse();
  const strip = $("#test-strip");
  strip.replaceChildren();
  for (const entry of oldestFirst) {
    const a = document.createElement("a");
    a.href = `#run/${entry.run_id}`;
    a.className = `r-${entry.status}`;
    a.title = `${entry.status}, ${entry.duration_ms} ms, ${when(entry.finished_at)} (attempt ${entry.attempt})`;
    strip.append(a);
  }
  timeChart($("#test-duration-chart"), "Duration (ms)", oldestFirst.map((e) => seconds(e.finished_at)),
    [{ label: "duration ms", stroke: "#0969da", values: oldestFirst.map((e) => e.duration_ms) }]);

  const flips = $("#test-flips tbody");
  flips.replaceChildren();
  for (const flip of t.flakiness.flips) {
    const row = document.createElement("tr");
    cell(row, flip.fixed ? "failed → passed" : "passed → failed");
    cell(row, runLink(flip.from_run)); cell(row, runLink(flip.to_run)); cell(row, flip.same_run ? "yes" : "");
    flips.append(row);
  }
  const history = $("#test-history tbody");
  history.replaceChildren();
  for (const entry of t.history) {
    const row = document.createElement("tr");
    cell(row, when(entry.finished_at)); cell(row, runLink(entry.run_id)); cell(row, entry.attempt);
    cell(row, statusBadge(entry.status)); cell(row, ms(entry.duration_ms)); cell(row, entry.machine_name);
    cell(row, entry.message);
    history.append(row);
  }
}

async function quarantineTest(event) {
  event.preventDefault();
  const body = { reason: $("#quarantine-reason").value };
  const until = $("#quarantine-until").value;
  if (until) { body.until = new Date(until).toISOString(); }
  try {
    const answer = await api("POST", `/api/v1/tests/${insights.testId}/quarantine`, body);
    $("#quarantine-result").textContent = "quarantined";
    await refreshTest(answer.position);
  } catch (error) {
    $("#quarantine-result").textContent = error.message;
  }
}

async function releaseTest() {
  try {
    const answer = await api("DELETE", `/api/v1/tests/${insights.testId}/quarantine`);
    $("#quarantine-result").textContent = "released";
    await refreshTest(answer.position);
  } catch (error) {
    $("#quarantine-result").textContent = error.message;
  }
}

// Reloads the test once the read models include `position` (the command's last event).
async function refreshTest(position) {
  await api("GET", `/api/v1/tests?limit=1&min_position=${position}`);
  await loadTest(insights.testId);
}

async function loadTestCase(testCaseId) {
  const cases = await api("GET", "/api/v1/test-cases");
  const found = cases.find((c) => c.test_case_id === testCaseId);
  $("#test-case-name").textContent = found ? found.name : testCaseId;
  $("#test-case-tests").href = `#tests`;
  $("#test-case-tests").onclick = () => { $("#tests-test-case").value = testCaseId; };
  const bucket = $("#trend-bucket").value;
  const trend = await api("GET", `/api/v1/test-cases/${testCaseId}/trend?bucket=${bucket}`);
  const xs = trend.points.map((p) => seconds(p.bucket));
  timeChart($("#pass-rate-chart"), "Pass rate", xs,
    [{ label: "pass rate", stroke: "#1a7f37", values: trend.points.map((p) => p.pass_rate) }],
    (u, values) => values.map((v) => `${Math.round(v * 100)}%`));
  timeChart($("#run-duration-chart"), "Run duration (ms)", xs, [
    { label: "p50", stroke: "#0969da", values: trend.points.map((p) => p.duration_p50_ms) },
    { label: "p90", stroke: "#bf3989", values: trend.points.map((p) => p.duration_p90_ms) },
  ]);
  const body = $("#trend-table tbody");
  body.replaceChildren();
  for (const p of trend.points) {
    const row = document.createElement("tr");
    cell(row, when(p.bucket)); cell(row, p.runs); cell(row, p.passed); cell(row, p.failed); cell(row, p.error);
    cell(row, percent(p.pass_rate)); cell(row, ms(p.duration_p50_ms)); cell(row, ms(p.duration_p90_ms));
    body.append(row);
  }
}

async function loadCompare(a, b) {
  const c = await api("GET", `/api/v1/runs/${a}/compare/${b}`);
  for (const [id, run] of [["#compare-a", a], ["#compare-b", b]]) {
    $(id).href = `#run/${run}`;
    $(id).textContent = run.slice(0, 8);
  }
  const lists = $("#compare-lists");
  lists.replaceChildren();
  for (const [title, tests] of [["Newly failing", c.newly_failing], ["Fixed", c.fixed],
    ["Still failing", c.still_failing], ["Added", c.added], ["Removed", c.removed]]) {
    const h = document.createElement("h3");
    h.textContent = `${title} (${tests.length})`;
    const ul = document.createElement("ul");
    ul.dataset.list = title;
    for (const t of tests) {
      const li = document.createElement("li");
      li.append(testLink(t));
      ul.append(li);
    }
    lists.append(h, ul);
  }
  const body = $("#compare-durations tbody");
  body.replaceChildren();
  for (const change of c.duration_changes) {
    const row = document.createElement("tr");
    cell(row, testLink(change)); cell(row, ms(change.before_ms)); cell(row, ms(change.after_ms));
    const relative = change.relative == null ? "" : ` (${change.relative >= 0 ? "+" : ""}${Math.round(change.relative * 100)}%)`;
    cell(row, `${change.change_ms >= 0 ? "+" : ""}${change.change_ms} ms${relative}`);
    body.append(row);
  }
}

// Routes the insight pages; false when `hash` is not one of them.
async function insightsRoute(hash) {
  if (hash === "#tests" || hash === "#flaky") {
    insights.flakyOnly = hash === "#flaky";
    if (insights.flakyOnly) { $("#tests-sort").value = "-flaky_score"; }
    insights.cursors = [null];
    insights.page = 0;
    show("tests-view");
    await loadTests();
  } else if (hash.startsWith("#test/")) {
    show("test-view");
    $("#quarantine-result").textContent = "";
    await loadTest(hash.slice(6));
  } else if (hash.startsWith("#test-case/")) {
    show("test-case-view");
    await loadTestCase(hash.slice(11));
  } else if (hash.startsWith("#compare/")) {
    const [a, b] = hash.slice(9).split("/");
    show("compare-view");
    await loadCompare(a, b);
  } else {
    return false;
  }
  return true;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#tests-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    insights.cursors = [null];
    insights.page = 0;
    loadTests().catch((error) => console.error(error));
  });
  $("#tests-next").addEventListener("click", () => { insights.page += 1; loadTests().catch(console.error); });
  $("#tests-first").addEventListener("click", () => { insights.page = 0; loadTests().catch(console.error); });
  $("#quarantine-form").addEventListener("submit", quarantineTest);
  $("#release-button").addEventListener("click", releaseTest);
  $("#trend-bucket").addEventListener("change", () => {
    const id = location.hash.slice(11);
    loadTestCase(id).catch(console.error);
  });
  $("#compare-form").addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#compare/${state.runId}/${$("#compare-other").value.trim()}`;
  });
});
