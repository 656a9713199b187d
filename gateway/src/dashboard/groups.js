// The run groups pages of the dashboard: the groups list, and one group with its timeline (an
// SVG Gantt chart of its members), its matrix grid, its members and their tests merged into one
// table. Plain JavaScript over the JSON API (docs/groups.md). app.js routes `#groups` and
// `#group/<id>` here, hands over its live events (`followGroupChanges`) and links a member run's
// page to its group (`groupMemberLink`).
"use strict";

const groups = {
  cursor: null, groupId: null, group: null, testCases: null, runs: {},
  testSort: "status", reload: null, reloadPosition: null, ticker: null,
};

const SVG = "http://www.w3.org/2000/svg";
const GANTT = { label: 170, width: 900, row: 26, bar: 16, axis: 28 };
const TEST_ORDER = { error: 0, failed: 1, skipped: 2, passed: 3 };

function wallTime(milliseconds) { return milliseconds == null ? "" : `${(milliseconds / 1000).toFixed(1)} s`; }
function millis(iso) { return iso ? new Date(iso).getTime() : null; }

// Ids are UUIDv7: groups (and members) started together share their first (time) digits, so
// their links show the last ones too.
function idLink(hash, id) {
  const a = document.createElement("a");
  a.href = `${hash}/${id}`;
  a.textContent = `${id.slice(0, 8)}…${id.slice(-4)}`;
  a.title = id;
  return a;
}

function groupLink(groupId) { return idLink("#group", groupId); }

// A member in words: `shard N`, or its combination (`linux · py3.11 · X=1`).
function memberLabel(member) {
  const c = member.combination;
  if (!c) { return `shard ${member.shard}`; }
  const parts = combinationParts(c).filter((part) => part);
  return parts.length ? parts.join(" · ") : `member ${member.shard}`;
}

// A combination's dimensions as strings: labels, python, env ("" where not given).
function combinationParts(c) {
  return [
    (c.labels || []).join("+"),
    c.python ? `py${c.python}` : "",
    Object.entries(c.env || {}).map(([name, value]) => `${name}=${value}`).join(" "),
  ];
}

// The member summaries added up (while the group runs, the group has none yet).
function addSummaries(summaries) {
  const total = { passed: 0, failed: 0, skipped: 0, errors: 0 };
  for (const s of summaries) { for (const key of Object.keys(total)) { total[key] += s[key] || 0; } }
  return total;
}

async function testCaseNames() {
  if (!groups.testCases) {
    const cases = await api("GET", "/api/v1/test-cases");
    groups.testCases = Object.fromEntries(cases.map((c) => [c.test_case_id, c.name]));
  }
  return groups.testCases;
}

// The groups list, newest first; `more` appends the next page.
async function loadGroups(more) {
  const params = new URLSearchParams({ limit: "25" });
  if ($("#groups-status").value) { params.set("status", $("#groups-status").value); }
  if (more && groups.cursor) { params.set("cursor", groups.cursor); }
  const [page, names] = await Promise.all([api("GET", `/api/v1/groups?${params}`), testCaseNames()]);
  const body = $("#groups-table tbody");
  if (!more) { body.replaceChildren(); }
  for (const g of page.items) {
    const row = document.createElement("tr");
    row.dataset.groupId = g.group_id;
    row.dataset.status = g.status;
    cell(row, groupLink(g.group_id));
    cell(row, statusBadge(g.status));
    cell(row, g.kind); cell(row, g.members); cell(row, names[g.test_case_id] ?? g.test_case_id.slice(0, 8));
    cell(row, g.user); cell(row, when(g.started_at)); cell(row, wallTime(g.duration_ms)); cell(row, summary(g.summary));
    body.append(row);
  }
  groups.cursor = page.next_cursor;
  $("#groups-more").disabled = !page.next_cursor;
}

// One group's page; `position`: a log position the answer must include.
async function loadGroup(groupId, position) {
  const fresh = position ? `?min_position=${position}` : "";
  const g = await api("GET", `/api/v1/groups/${groupId}${fresh}`);
  if (groups.groupId !== groupId) { return; }
  groups.group = g;
  groupHeader(g);
  drawGantt(g);
  drawMatrix(g);
  memberTable(g);
  await mergedTests(g);
  groupTicker(g);
}

function groupHeader(g) {
  $("#group-id").textContent = g.group_id;
  $("#group-status").replaceChildren(statusBadge(g.status));
  const facts = $("#group-facts");
  facts.replaceChildren();
  fact(facts, "Status", statusBadge(g.status));
  fact(facts, "Kind", g.kind);
  const testCase = document.createElement("a");
  testCase.href = `#test-case/${g.test_case_id}`;
  testCase.textContent = g.test_case_name ?? g.test_case_id;
  fact(facts, "Test case", testCase);
  fact(facts, "User", g.user);
  fact(facts, "Members", `${g.ended} of ${g.members} ended`);
  fact(facts, "Started", when(g.started_at));
  fact(facts, "Finished", when(g.finished_at));
  const wall = g.duration_ms ?? (g.status === "running" ? Date.now() - millis(g.started_at) : null);
  const against = [g.ideal_ms != null ? `ideal ${wallTime(g.ideal_ms)}` : "", g.predicted_ms != null ? `predicted ${wallTime(g.predicted_ms)}` : ""]
    .filter((s) => s).join(", ");
  const wallFact = `${wallTime(wall)}${g.duration_ms == null && wall != null ? " so far" : ""}${against ? ` (${against})` : ""}`;
  fact(facts, "Wall time", wallFact);
  const ended = g.member_runs.filter((m) => m.summary).map((m) => m.summary);
  fact(facts, "Summary", g.summary ? summary(g.summary) : ended.length ? `${summary(addSummaries(ended))} so far` : "");
  if (g.labels.length) { fact(facts, "Labels", g.labels.join(", ")); }
  if (Object.keys(g.env || {}).length) { fact(facts, "Env", Object.entries(g.env).map(([k, v]) => `${k}=${v}`).join(" ")); }
  if (g.unknown_tests) { fact(facts, "Tests without history", g.unknown_tests); }
  if (g.cancel_requested) { fact(facts, "Cancelled", g.cancel_reason ?? "yes"); }
  $("#cancel-group").hidden = g.status !== "running" || g.cancel_requested;
  $("#group-junit").href = `/api/v1/groups/${g.group_id}/junit`;
}

function svg(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) { element.setAttribute(key, value); }
  if (parent) { parent.append(element); }
  return element;
}

// A round step for about `ticks` ticks over `span` seconds (1, 2 or 5 × 10^k).
function tickStep(span, ticks) {
  const raw = Math.max(span / ticks, 0.001);
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((f) => f * power).find((step) => step >= raw);
}

// The timeline: one row per member, its wait (queued → assigned) pale, its run (started, or
// assigned, → finished, or now) coloured by status; a dashed mark at its predicted end; the time
// axis in seconds from the group's start. Offsets are left in `data-start-ms`/`data-end-ms`.
function drawGantt(g) {
  const origin = millis(g.started_at);
  const now = Date.now();
  const offset = (iso) => (iso ? Math.max(0, millis(iso) - origin) : null);
  const rows = g.member_runs.map((m) => {
    const queued = offset(m.queued_at) ?? 0;
    const assigned = offset(m.assigned_at);
    const end = offset(m.finished_at) ?? now - origin;
    const start = offset(m.started_at) ?? assigned;
    return { m, queued, waitEnd: assigned ?? end, start, end, predicted: m.predicted_ms };
  });
  const farthest = Math.max(1000, g.duration_ms ?? 0, g.ideal_ms ?? 0,
    ...rows.map((r) => Math.max(r.end, r.start != null && r.predicted != null ? r.start + r.predicted : 0)));
  const step = tickStep(farthest / 1000, 8);
  const span = Math.ceil(farthest / 1000 / step) * step * 1000;
  const plot = GANTT.width - GANTT.label - 10;
  const x = (ms) => GANTT.label + (ms / span) * plot;
  const height = rows.length * GANTT.row + GANTT.axis;
  const chart = svg("svg", { id: "gantt-svg", width: GANTT.width, height, viewBox: `0 0 ${GANTT.width} ${height}`,
    "data-span-ms": span, role: "img", "aria-label": "timeline of the group's members" });
  const axis = svg("g", { class: "gantt-axis" }, chart);
  for (let t = 0; t <= span / 1000 + 1e-9; t += step) {
    const at = x(t * 1000);
    svg("line", { x1: at, x2: at, y1: 0, y2: height - GANTT.axis + 4, class: "gantt-grid" }, axis);
    const label = svg("text", { x: at, y: height - 8, "text-anchor": "middle" }, axis);
    label.textContent = `${Number(t.toFixed(3))} s`;
  }
  if (g.ideal_ms != null) {
    const ideal = svg("line", { x1: x(g.ideal_ms), x2: x(g.ideal_ms), y1: 0, y2: height - GANTT.axis,
      class: "gantt-ideal", "data-ideal-ms": g.ideal_ms }, chart);
    svg("title", {}, ideal).textContent = `ideal makespan ${wallTime(g.ideal_ms)}`;
  }
  rows.forEach((r, index) => chart.append(ganttRow(r, index, x)));
  $("#group-gantt").replaceChildren(chart);
}

function ganttRow(r, index, x) {
  const top = index * GANTT.row;
  const middle = top + GANTT.row / 2;
  const row = svg("g", { class: "gantt-row", "data-shard": r.m.shard, "data-status": r.m.status, "data-run-id": r.m.run_id });
  const link = svg("a", { href: `#run/${r.m.run_id}` }, row);
  const label = svg("text", { x: 4, y: middle + 4, class: "gantt-label" }, link);
  label.textContent = memberLabel(r.m);
  const barTop = middle - GANTT.bar / 2;
  const bar = (cls, start, end, title) => {
    const rect = svg("rect", { class: cls, x: x(start), y: barTop, height: GANTT.bar,
      width: Math.max(2, x(end) - x(start)), "data-start-ms": Math.round(start), "data-end-ms": Math.round(end) }, row);
    svg("title", {}, rect).textContent = title;
  };
  bar("gantt-wait", r.queued, r.waitEnd, `${memberLabel(r.m)}: waiting ${wallTime(r.waitEnd - r.queued)}`);
  if (r.start != null) {
    bar(`gantt-bar fill-${r.m.status}`, r.start, r.end, `${memberLabel(r.m)}: ${r.m.status}, ${wallTime(r.end - r.start)}`);
  }
  if (r.predicted != null) {
    const at = x((r.start ?? r.waitEnd) + r.predicted);
    const mark = svg("line", { class: "gantt-predicted", x1: at, x2: at, y1: top + 2, y2: top + GANTT.row - 2,
      "data-predicted-ms": r.predicted }, row);
    svg("title", {}, mark).textContent = `predicted ${wallTime(r.predicted)}`;
  }
  return row;
}

// The matrix: rows are the first dimension that varies, columns the others (one row if only
// one varies); each cell links its member's run and is coloured by its status.
function drawMatrix(g) {
  const block = $("#group-matrix-block");
  block.hidden = g.kind !== "matrix";
  const table = $("#group-matrix");
  table.replaceChildren();
  if (block.hidden) { return; }
  const parts = g.member_runs.map((m) => combinationParts(m.combination || {}));
  const varying = [0, 1, 2].filter((d) => new Set(parts.map((p) => p[d])).size > 1);
  const rowDim = varying.length > 1 ? varying[0] : null;
  const colDims = varying.filter((d) => d !== rowDim);
  const rowKey = (p) => (rowDim == null ? "" : p[rowDim]);
  const colKey = (p) => colDims.map((d) => p[d]).join(" · ") || "all";
  const rowKeys = [...new Set(parts.map(rowKey))];
  const colKeys = [...new Set(parts.map(colKey))];
  const head = document.createElement("tr");
  head.append(document.createElement("th"));
  for (const key of colKeys) { const th = document.createElement("th"); th.textContent = key; head.append(th); }
  table.append(head);
  for (const key of rowKeys) {
    const row = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = key;
    row.append(th);
    for (const column of colKeys) {
      const index = parts.findIndex((p) => rowKey(p) === key && colKey(p) === column);
      const td = document.createElement("td");
      if (index >= 0) {
        const m = g.member_runs[index];
        td.className = `matrix-cell fill-${m.status}`;
        td.dataset.status = m.status;
        td.dataset.shard = m.shard;
        const a = document.createElement("a");
        a.href = `#run/${m.run_id}`;
        a.textContent = m.status;
        a.title = `${memberLabel(m)}: ${m.status}`;
        td.append(a);
      }
      row.append(td);
    }
    table.append(row);
  }
}

function memberTable(g) {
  const body = $("#group-members tbody");
  body.replaceChildren();
  for (const m of g.member_runs) {
    const row = document.createElement("tr");
    row.dataset.shard = m.shard;
    cell(row, memberLabel(m)); cell(row, idLink("#run", m.run_id)); cell(row, statusBadge(m.status));
    cell(row, g.kind === "shards" ? m.tests : "all"); cell(row, wallTime(m.predicted_ms));
    cell(row, m.machine_name); cell(row, m.venv_name); cell(row, wallTime(m.duration_ms)); cell(row, summary(m.summary));
    body.append(row);
  }
}

// Every ended member's tests (its run's page), fetched once per member status.
async function mergedTests(g) {
  await Promise.all(g.member_runs.filter((m) => m.finished_at).map(async (m) => {
    const known = groups.runs[m.run_id];
    if (known && known.status === m.status && known.attempt === m.attempt) { return; }
    const run = await api("GET", `/api/v1/runs/${m.run_id}`);
    groups.runs[m.run_id] = { status: m.status, attempt: m.attempt, tests: run.tests || [] };
  }));
  drawTests(g);
}

function drawTests(g) {
  const rows = [];
  for (const m of g.member_runs) {
    for (const t of (groups.runs[m.run_id] || {}).tests || []) { rows.push({ ...t, member: m }); }
  }
  const key = groups.testSort;
  const compare = {
    status: (a, b) => (TEST_ORDER[a.status] ?? 9) - (TEST_ORDER[b.status] ?? 9),
    member: (a, b) => a.member.shard - b.member.shard,
    name: (a, b) => a.name.localeCompare(b.name),
    classname: (a, b) => (a.classname || "").localeCompare(b.classname || ""),
    duration_ms: (a, b) => (b.duration_ms ?? 0) - (a.duration_ms ?? 0),
  }[key];
  rows.sort((a, b) => compare(a, b) || a.member.shard - b.member.shard || a.name.localeCompare(b.name));
  const body = $("#group-tests tbody");
  body.replaceChildren();
  for (const t of rows) {
    const row = document.createElement("tr");
    row.dataset.shard = t.member.shard;
    row.dataset.status = t.status;
    const member = document.createElement("a");
    member.href = `#run/${t.member.run_id}`;
    member.textContent = memberLabel(t.member);
    cell(row, member); cell(row, t.name); cell(row, t.classname); cell(row, statusBadge(t.status));
    cell(row, `${t.duration_ms} ms`); cell(row, t.message);
    body.append(row);
  }
  for (const th of document.querySelectorAll("#group-tests th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === key);
  }
}

// While the group runs, its running bars and wall time grow with the clock.
function groupTicker(g) {
  clearInterval(groups.ticker);
  groups.ticker = null;
  if (g.status !== "running") { return; }
  groups.ticker = setInterval(() => {
    if ($("#group-view").hidden || !groups.group || groups.group.status !== "running") {
      clearInterval(groups.ticker);
      groups.ticker = null;
      return;
    }
    groupHeader(groups.group);
    drawGantt(groups.group);
  }, 1000);
}

async function cancelGroup() {
  $("#group-result").textContent = "";
  try {
    const answer = await api("POST", `/api/v1/groups/${groups.groupId}/cancel`, { reason: "cancelled from the dashboard" });
    $("#group-result").textContent = "cancellation requested";
    await loadGroup(groups.groupId, answer.position);
  } catch (error) {
    $("#group-result").textContent = error.message;
  }
}

// Refetches the shown group at most every 300 ms, at the latest position heard of.
function reloadGroupSoon(position) {
  groups.reloadPosition = Math.max(groups.reloadPosition ?? 0, position ?? 0);
  if (groups.reload) { return; }
  groups.reload = setTimeout(() => {
    const at = groups.reloadPosition;
    groups.reload = null;
    groups.reloadPosition = null;
    if (groups.groupId && !$("#group-view").hidden) { loadGroup(groups.groupId, at).catch(console.error); }
    if (!$("#groups-view").hidden) { loadGroups(false).catch(console.error); }
  }, 300);
}

function isMember(runId) {
  return Boolean(groups.group && groups.group.member_runs.some((m) => m.run_id === runId));
}

// Listens to the dashboard's live events: a `group` change of the shown group (or any, on the
// list), or a `run` change of one of its members, refetches.
function followGroupChanges(source) {
  source.addEventListener("group", (event) => {
    const change = JSON.parse(event.data);
    if (change.group_id === groups.groupId || !$("#groups-view").hidden) { reloadGroupSoon(change.position); }
  });
  source.addEventListener("run", (event) => {
    const change = JSON.parse(event.data);
    if (groups.groupId && (change.group_id === groups.groupId || isMember(change.run_id))) { reloadGroupSoon(change.position); }
  });
}

// On a member run's page: "member of group …, shard N".
function groupMemberLink(run) {
  const span = document.createElement("span");
  span.id = "run-group";
  span.append("member of group ", groupLink(run.group_id), `, shard ${run.shard}`);
  return span;
}

// Routes the groups pages; false when `hash` is not one of them.
async function groupsRoute(hash) {
  groups.groupId = null;
  groups.group = null;
  clearInterval(groups.ticker);
  if (hash === "#groups") {
    show("groups-view");
    groups.cursor = null;
    await loadGroups(false);
  } else if (hash.startsWith("#group/")) {
    groups.groupId = hash.slice(7);
    groups.runs = {};
    show("group-view");
    $("#group-result").textContent = "";
    $("#group-gantt").replaceChildren();
    await loadGroup(groups.groupId);
  } else {
    return false;
  }
  return true;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#groups-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    groups.cursor = null;
    loadGroups(false).catch(console.error);
  });
  $("#groups-more").addEventListener("click", () => loadGroups(true).catch(console.error));
  $("#cancel-group").addEventListener("click", cancelGroup);
  for (const th of document.querySelectorAll("#group-tests th[data-sort]")) {
    th.addEventListener("click", () => {
      groups.testSort = th.dataset.sort;
      if (groups.group) { drawTests(groups.group); }
    });
  }
});
