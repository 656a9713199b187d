// The runledger dashboard: plain JavaScript over the JSON API (docs/api.md). The session is the
// HttpOnly cookie POST /api/v1/tokens sets; live updates come from Server-Sent Events.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { cursors: [null], page: 0, changes: null, log: null, runId: null, minPosition: null };

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  // The gateway refuses a cookie-authenticated POST/PUT/PATCH/DELETE that is not JSON (CSRF).
  if (method !== "GET") {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body === undefined ? {} : body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (response.status === 401 && path !== "/api/v1/tokens") { showLogin(); }
  if (!response.ok) {
    const message = data && data.error ? `${data.error.code}: ${data.error.message}` : response.statusText;
    throw new Error(message);
  }
  return data;
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) { td.append(content); } else { td.textContent = content ?? ""; }
  row.append(td);
  return td;
}

function runLink(runId) {
  const a = document.createElement("a");
  a.href = `#run/${runId}`;
  a.textContent = runId.slice(0, 8);
  return a;
}

function statusBadge(status) {
  const span = document.createElement("span");
  span.className = `status status-${status}`;
  span.textContent = status;
  return span;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function summary(s) { return s ? `${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped, ${s.errors} errors` : ""; }

function show(id) {
  for (const section of document.querySelectorAll("main > section")) { section.hidden = section.id !== id; }
}

function showLogin() {
  $("#nav").hidden = true;
  if (state.changes) { state.changes.close(); state.changes = null; }
  show("login");
}

async function login(event) {
  event.preventDefault();
  $("#login-error").textContent = "";
  try {
    const answer = await api("POST", "/api/v1/tokens", { username: $("#username").value, password: $("#password").value });
    $("#password").value = "";
    startSession(answer.username);
  } catch (error) {
    $("#login-error").textContent = error.message;
  }
}

function startSession(username) {
  $("#nav").hidden = false;
  $("#who").textContent = username || "";
  if (!state.changes) {
    state.changes = new EventSource("/api/v1/events/stream");
    state.changes.addEventListener("run", (event) => onRunChange(JSON.parse(event.data)));
    followGroupChanges(state.changes);
  }
  route();
}

async function logout() {
  try { await api("DELETE", "/api/v1/tokens/current"); } catch { /* already gone */ }
  showLogin();
}

function runsQuery() {
  const params = new URLSearchParams({ limit: "25", sort: $("#sort").value });
  if ($("#filter-status").value) { params.set("status", $("#filter-status").value); }
  if ($("#filter-user").value.trim()) { params.set("user", $("#filter-user").value.trim()); }
  const cursor = state.cursors[state.page];
  if (cursor) { params.set("cursor", cursor); }
  return `/api/v1/runs?${params}`;
}

async function loadRuns() {
  const page = await api("GET", runsQuery());
  const body = $("#runs-table tbody");
  body.replaceChildren();
  for (const run of page.items) {
    const row = document.createElement("tr");
    row.dataset.runId = run.run_id;
    cell(row, runLink(run.run_id));
    cell(row, statusBadge(run.status)).className = "status-cell";
    cell(row, run.test_case_name);
    cell(row, run.user);
    cell(row, run.machine_name);
    cell(row, when(run.queued_at));
    cell(row, run.duration_ms == null ? "" : `${(run.duration_ms / 1000).toFixed(1)} s`);
    cell(row, summary(run.summary));
    body.append(row);
  }
  state.cursors[state.page + 1] = page.next_cursor;
  $("#next-page").disabled = !page.next_cursor;
  $("#first-page").disabled = state.page === 0;
}

async function loadStartForm() {
  const [cases, machines] = await Promise.all([api("GET", "/api/v1/test-cases"), api("GET", "/api/v1/machines")]);
  const caseSelect = $("#start-test-case");
  caseSelect.replaceChildren(...cases.map((c) => new Option(c.name, c.test_case_id)));
  const machineSelect = $("#start-machine");
  machineSelect.replaceChildren(new Option("any", ""), ...machines.filter((m) => !m.retired).map((m) => new Option(m.name, m.machine_id)));
}

async function startRun(event) {
  event.preventDefault();
  const body = { test_case_id: $("#start-test-case").value };
  if ($("#start-machine").value) { body.machine_id = $("#start-machine").value; }
  try {
    const answer = await api("POST", "/api/v1/runs", body);
    $("#start-result").textContent = `started ${answer.run_id}`;
    // The read models may not include the new run yet: its page asks for that position.
    state.minPosition = answer.position;
    location.hash = `#run/${answer.run_id}`;
  } catch (error) {
    $("#start-result").textContent = error.message;
  }
}

let reloadTimer = null;
function onRunChange(change) {
  const row = document.querySelector(`#runs-table tr[data-run-id="${change.run_id}"]`);
  if (row && change.status) {
    row.querySelector(".status-cell").replaceChildren(statusBadge(change.status));
    state.lastPosition = change.position;
  } else if (!row && change.type === "run_requested" && state.page === 0 && !$("#runs-view").hidden) {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => loadRuns().catch(() => {}), 300);
  }
  if (state.runId === change.run_id && change.status) { loadRun(change.run_id, change.position).catch(() => {}); }
}

function fact(list, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  if (value instanceof Node) { dd.append(value); } else { dd.textContent = value ?? ""; }
  list.append(dt, dd);
}

// `position`: a log position the answer must include (the read models may lag the live events).
async function loadRun(runId, position) {
  const fresh = position ? `?min_position=${position}` : "";
  const run = await api("GET", `/api/v1/runs/${runId}${fresh}`);
  $("#run-id").textContent = run.run_id;
  const facts = $("#run-facts");
  facts.replaceChildren();
  fact(facts, "Status", statusBadge(run.status));
  fact(facts, "Test case", run.test_case_name);
  if (run.group_id) { fact(facts, "Group", groupMemberLink(run)); }
  fact(facts, "User", run.user);
  fact(facts, "Machine", run.machine_name);
  fact(facts, "Venv", run.venv_name);
  fact(facts, "Attempt", run.attempt);
  fact(facts, "Queued", when(run.queued_at));
  fact(facts, "Started", when(run.started_at));
  fact(facts, "Finished", when(run.finished_at));
  fact(facts, "Duration", run.duration_ms == null ? "" : `${run.duration_ms} ms`);
  fact(facts, "Exit code", run.exit_code);
  fact(facts, "Summary", summary(run.summary));
  if (run.reason) { fact(facts, "Reason", run.reason); }
  if (run.error_code) { fact(facts, "Error code", run.error_code); }
  if (run.queue_reason) { fact(facts, "Waiting because", run.queue_reason); }
  $("#cancel-run").hidden = ["passed", "failed", "error", "timed_out", "cancelled"].includes(run.status);
  $("#rerun-failed").hidden = !["failed", "error"].includes(run.status) || !(run.tests || []).some((t) => ["failed", "error"].includes(t.status));
  $("#rerun-result").textContent = "";
  const tests = $("#tests-table tbody");
  tests.replaceChildren();
  for (const test of run.tests || []) {
    const row = document.createElement("tr");
    cell(row, test.name); cell(row, test.classname); cell(row, statusBadge(test.status));
    cell(row, `${test.duration_ms} ms`); cell(row, test.message);
    tests.append(row);
  }
  const trail = await api("GET", `/api/v1/runs/${runId}/events${fresh}`);
  const body = $("#trail-table tbody");
  body.replaceChildren();
  for (const event of trail.events) {
    const row = document.createElement("tr");
    cell(row, event.position); cell(row, when(event.recorded_at)); cell(row, event.actor); cell(row, event.type);
    body.append(row);
  }
}

function followLog(runId) {
  if (state.log) { state.log.close(); }
  const log = $("#run-log");
  log.textContent = "";
  const source = new EventSource(`/api/v1/runs/${runId}/log`);
  source.addEventListener("output", (event) => { log.textContent += JSON.parse(event.data).text; });
  source.addEventListener("finished", (event) => {
    source.close();
    loadRun(runId, JSON.parse(event.data).position).catch(() => {});
  });
  state.log = source;
}

async function cancelRun() {
  try { await api("POST", `/api/v1/runs/${state.runId}/cancel`, { reason: "cancelled from the dashboard" }); } catch (error) { alert(error.message); }
}

// Reruns just the tests that failed in this run's last attempt, then opens the new run.
async function rerunFailed() {
  try {
    const answer = await api("POST", `/api/v1/runs/${state.runId}/rerun`, { only: "failed" });
    state.minPosition = answer.position;
    location.hash = `#run/${answer.run_id}`;
  } catch (error) {
    $("#rerun-result").textContent = error.message;
  }
}

async function loadPool() {
  const [venvs, queue] = await Promise.all([api("GET", "/api/v1/venvs"), api("GET", "/api/v1/queue")]);
  const body = $("#venvs-table tbody");
  body.replaceChildren();
  for (const venv of venvs) {
    const row = document.createElement("tr");
    cell(row, venv.name); cell(row, venv.machine_id.slice(0, 8)); cell(row, statusBadge(venv.status));
    cell(row, venv.run_id ? runLink(venv.run_id) : ""); cell(row, venv.python_version);
    body.append(row);
  }
  const waiting = $("#queue-table tbody");
  waiting.replaceChildren();
  for (const run of queue) {
    const row = document.createElement("tr");
    cell(row, run.place); cell(row, runLink(run.run_id)); cell(row, run.requested_by);
    cell(row, when(run.queued_at)); cell(row, run.reason);
    waiting.append(row);
  }
}

async function loadLab() {
  const [machines, cases] = await Promise.all([api("GET", "/api/v1/machines"), api("GET", "/api/v1/test-cases")]);
  const body = $("#machines-table tbody");
  body.replaceChildren();
  for (const m of machines) {
    const row = document.createElement("tr");
    cell(row, m.name); cell(row, `${m.host}:${m.port}`); cell(row, m.os); cell(row, m.owner);
    cell(row, (m.labels || []).join(", ")); cell(row, m.host_key); cell(row, m.retired ? "yes" : "");
    body.append(row);
  }
  const tc = $("#test-cases-table tbody");
  tc.replaceChildren();
  for (const c of cases) {
    const row = document.createElement("tr");
    const name = document.createElement("a");
    name.href = `#test-case/${c.test_case_id}`;
    name.textContent = c.name;
    cell(row, name); cell(row, c.command ?? (c.jenkins ? `Jenkins: ${c.jenkins.job}` : '')); cell(row, `${c.timeout_s} s`); cell(row, c.retries); cell(row, c.junit_xml);
    tc.append(row);
  }
}

async function route() {
  const hash = location.hash || "#runs";
  if (state.log && !hash.startsWith("#run/")) { state.log.close(); state.log = null; }
  state.runId = null;
  try {
    if (hash.startsWith("#run/")) {
      state.runId = hash.slice(5);
      show("run-view");
      followLog(state.runId);
      const position = state.minPosition;
      state.minPosition = null;
      await loadRun(state.runId, position);
    } else if (await insightsRoute(hash)) {
      // insights.js showed one of its pages.
    } else if (await groupsRoute(hash)) {
      // groups.js showed one of its pages.
    } else if (hash === "#pool") {
      show("pool-view");
      await loadPool();
    } else if (hash === "#lab") {
      show("lab-view");
      await loadLab();
    } else {
      show("runs-view");
      await Promise.all([loadRuns(), loadStartForm()]);
    }
  } catch (error) {
    console.error(error);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#start-form").addEventListener("submit", startRun);
  $("#filters").addEventListener("submit", (event) => { event.preventDefault(); state.cursors = [null]; state.page = 0; loadRuns(); });
  $("#next-page").addEventListener("click", () => { state.page += 1; loadRuns(); });
  $("#first-page").addEventListener("click", () => { state.page = 0; loadRuns(); });
  $("#cancel-run").addEventListener("click", cancelRun);
  $("#rerun-failed").addEventListener("click", rerunFailed);
  window.addEventListener("hashchange", route);
  try {
    const me = await api("GET", "/api/v1/me");
    startSession(me.username);
  } catch {
    showLogin();
  }
});
