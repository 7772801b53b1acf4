// The console page: polls the JSON API, renders rows with textContent only (callbacks are untrusted input).
"use strict";

const state = { changed: 0, selected: null, sid: null };
const MAX_ROWS = 1000;
const $ = (id) => document.getElementById(id);

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function badge(td, outcome) {
  td.textContent = "";
  const span = document.createElement("span");
  span.className = "outcome o-" + outcome.replace(/ /g, "-");
  span.textContent = outcome;
  td.appendChild(span);
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Twilio-Events-Console": "1" },
    body: JSON.stringify(body),
  };
  const response = await fetch("api/" + path, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function putRow(tbody, entry) {
  // A new callback goes on top; one that changed (a worker ran it) is redrawn where it is.
  const row = document.createElement("tr");
  const old = tbody.querySelector('tr[data-id="' + entry.id + '"]');
  if (old) old.replaceWith(row); else tbody.insertBefore(row, tbody.firstChild);
  row.dataset.id = entry.id;
  row.className = "new";
  if (state.selected && state.selected.id === entry.id) row.classList.add("selected");
  cell(row, clock(entry.at));
  cell(row, entry.listener);
  cell(row, entry.channel);
  cell(row, entry.status);
  const sid = cell(row, "", "sid");
  if (entry.sid) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = entry.sid;
    button.title = "show this SID's timeline";
    button.addEventListener("click", (event) => { event.stopPropagation(); showTimeline(entry.sid); });
    sid.appendChild(button);
  }
  cell(row, entry.verdict, "verdict");
  cell(row, entry.handler ? entry.handler + "()" : "");
  badge(cell(row, ""), entry.outcome);
  cell(row, entry.duration_ms);
  cell(row, entry.replay_of ? "replay of " + entry.replay_of : "", "replay");
  row.addEventListener("click", () => showDetail(entry.id));
}

async function poll() {
  try {
    const data = await api("callbacks?since=" + state.changed);
    const tbody = $("callbacks").tBodies[0];
    const fresh = data.callbacks.slice().reverse();
    for (const entry of fresh) {
      putRow(tbody, entry);
      state.changed = Math.max(state.changed, entry.changed);
    }
    while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(-1);
    $("empty").hidden = tbody.rows.length > 0;
    $("live").textContent = "live";
    $("live").className = "";
    if (fresh.length && state.sid) await showTimeline(state.sid);
  } catch (error) {
    $("live").textContent = "not connected: " + error.message;
    $("live").className = "down";
  }
}

async function showTimeline(sid) {
  state.sid = sid;
  const data = await api("timeline/" + encodeURIComponent(sid));
  $("timeline").hidden = false;
  $("timeline-sid").textContent = sid;
  const tbody = $("timeline-rows");
  tbody.textContent = "";
  data.rows.forEach((entry, index) => {
    const row = tbody.insertRow();
    row.dataset.id = entry.id;
    cell(row, index + 1);
    cell(row, clock(entry.at));
    cell(row, entry.channel);
    cell(row, entry.status);
    cell(row, entry.sequence);
    badge(cell(row, ""), entry.outcome);
    const marks = cell(row, "");
    for (const mark of entry.marks) {
      const span = document.createElement("span");
      span.className = "mark mark-" + mark;
      span.textContent = mark;
      marks.appendChild(span);
    }
    row.addEventListener("click", () => showDetail(entry.id));
  });
}

async function showDetail(id) {
  const entry = await api("callbacks/" + id);
  state.selected = entry;
  document.querySelectorAll("tr.selected").forEach((row) => row.classList.remove("selected"));
  document.querySelectorAll('#callbacks tr[data-id="' + id + '"]').forEach((row) => row.classList.add("selected"));
  $("detail").hidden = false;
  $("detail-id").textContent = "#" + entry.id + " (" + entry.channel + " " + entry.status + ")";
  $("detail-facts").textContent = "POST " + entry.path + " -> HTTP " + entry.http_status + ", " + entry.outcome +
    "; signature " + entry.verdict + "; idempotency token " + (entry.token || "none");
  const params = $("detail-params");
  params.textContent = "";
  for (const [name, value] of entry.params) {
    const row = params.insertRow();
    cell(row, name);
    cell(row, value);
  }
  $("detail-response").textContent = (entry.response_type ? entry.response_type + "\n\n" : "") +
    (entry.response_body || "(empty body)");
  $("replay-new").disabled = $("replay-same").disabled = !entry.replayable;
  $("replay-same").disabled = !entry.replayable || !entry.token;
  $("replay-result").textContent = "";
}

async function replay(sameToken) {
  if (!state.selected) return;
  try {
    const result = await api("replay", { id: state.selected.id, same_token: sameToken });
    $("replay-result").textContent = "Sent #" + result.replayed + " again, signed with " + result.signed_with +
      ", idempotency token " + result.token + (result.same_token ? " (the same)" : " (new)") +
      ": HTTP " + result.http_status;
    await poll();
  } catch (error) {
    $("replay-result").textContent = "Replay failed: " + error.message;
  }
}

async function pollInbox() {
  try {
    const data = await api("inbox");
    if (!data.durable) return;
    $("inbox").hidden = false;
    const counts = data.counts;
    $("inbox-counts").textContent = "queued " + counts.queued + " \u00b7 running " + counts.running +
      " \u00b7 dead " + counts.dead + (counts.delayed ? " \u00b7 waiting to be retried " + counts.delayed : "");
    const tbody = $("dead").tBodies[0];
    tbody.textContent = "";
    for (const letter of data.dead) {
      const row = tbody.insertRow();
      row.dataset.id = letter.id;
      cell(row, letter.id);
      cell(row, letter.channel);
      cell(row, letter.sid);
      cell(row, letter.status);
      cell(row, letter.attempts);
      cell(row, letter.error, "error");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "retry";
      button.textContent = "Retry";
      button.addEventListener("click", () => inboxAction("inbox/retry", { id: letter.id }));
      cell(row, "").appendChild(button);
    }
  } catch (error) {
    $("inbox-counts").textContent = "inbox unavailable: " + error.message;
  }
}

async function inboxAction(path, body) {
  try {
    const result = await api(path, body);
    $("inbox-result").textContent = "retried" in result
      ? result.retried + " dead letter(s) queued again" : result.purged + " dead letter(s) deleted";
  } catch (error) {
    $("inbox-result").textContent = "Failed: " + error.message;
  }
  await pollInbox();
}

document.addEventListener("DOMContentLoaded", () => {
  $("replay-new").addEventListener("click", () => replay(false));
  $("replay-same").addEventListener("click", () => replay(true));
  $("retry-all").addEventListener("click", () => inboxAction("inbox/retry", {}));
  $("purge").addEventListener("click", () => {
    if (window.confirm("Delete every dead letter?")) inboxAction("inbox/purge", {});
  });
  poll();
  setInterval(poll, 1000);
  if (document.body.dataset.durable === "true") {
    pollInbox();
    setInterval(pollInbox, 2000);
  }
});
