// The simulatord dashboard: lists tenants and sessions, follows one session's journal live over Server-Sent
// Events (no polling), and opens an exchange to everything the journal holds of it. Read-only.
"use strict";

const API = "/_dashboard/api";
const state = { token: "", session: null, source: null, seen: 0, detail: null };

function $(selector, root = document) { return root.querySelector(selector); }

// Builds an element: el("td", {class: "code"}, "text", child, ...). Text is always set as text, never as HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// With --auth the API takes the token as a query parameter: EventSource cannot send an Authorization header.
function url(path, params = {}) {
  const query = new URLSearchParams(params);
  if (state.token) query.set("token", state.token);
  const text = query.toString();
  return API + path + (text ? "?" + text : "");
}

function problem(text) { $("#problem").textContent = text || ""; }

async function getJSON(path) {
  const answer = await fetch(url(path), { headers: { accept: "application/json" } });
  const body = await answer.json().catch(() => ({}));
  if (answer.status === 401) $("#token-form").hidden = false;
  if (!answer.ok) throw new Error(`${answer.status} ${body.reason || ""}: ${body.error || answer.statusText}`);
  return body;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false }) +
    "." + String(Math.floor((seconds % 1) * 1000)).padStart(3, "0");
}

function ms(seconds) { return (seconds * 1000).toFixed(1) + " ms"; }

// --- tenants and sessions --------------------------------------------------------------------------------------

async function loadTenants() {
  try {
    const data = await getJSON("/tenants");
    problem("");
    const box = $("#tenants");
    box.replaceChildren();
    if (!data.tenants.length) box.append(el("p", { class: "muted" }, "No sessions yet."));
    for (const tenant of data.tenants) {
      box.append(el("div", { class: "tenant" },
        el("div", { class: "tenant-name" }, tenant.tenant),
        el("ul", {}, tenant.sessions.map((s) => el("li", {},
          el("a", {
            class: "session" + (s.name === state.session ? " current" : ""), href: "#" + s.name,
            "data-name": s.name, title: `${s.exchanges} exchanges, ${s.stubs} stubs`,
          }, s.session))))));
    }
  } catch (error) {
    problem(String(error.message || error));
  }
}

// --- one session, live ------------------------------------------------------------------------------------------

function openSession(name) {
  if (state.source) state.source.close();
  state.session = name;
  state.seen = 0;
  for (const link of document.querySelectorAll("a.session")) {
    link.classList.toggle("current", link.dataset.name === name);
  }
  closeDetail();
  const pane = $("#session");
  pane.replaceChildren(
    el("h2", {}, name),
    el("div", { id: "session-info" }),
    el("h3", {}, "Exchanges ", el("span", { id: "evicted", class: "muted" })),
    el("table", { id: "exchanges" },
      el("thead", {}, el("tr", {}, ["#", "time", "method", "path", "status", "outcome", "duration", "answered by"]
        .map((h) => el("th", {}, h)))),
      el("tbody")),
  );
  const [, tenant, , session] = name.split("/");
  // The journal's watch, as WatchExchanges follows it: everything kept, then live. On a reconnect the browser
  // sends the last event id, and the daemon resumes after it.
  const source = new EventSource(url(`/tenants/${tenant}/sessions/${session}/events`, { from: 1 }));
  state.source = source;
  source.onopen = () => live(true);
  source.onerror = () => live(false);
  source.addEventListener("exchange", (event) => addExchange(JSON.parse(event.data)));
  source.addEventListener("session", (event) => showSession(JSON.parse(event.data)));
  source.addEventListener("evicted", (event) => {
    const gap = JSON.parse(event.data).count;
    $("#evicted").textContent = `(${gap} evicted from the journal before they could be shown)`;
  });
  source.addEventListener("end", (event) => {
    source.close();
    live(false, JSON.parse(event.data).reason);
  });
}

function live(on, why) {
  const badge = $("#live");
  badge.className = "badge " + (on ? "on" : "off");
  badge.textContent = on ? "live" : why || "reconnecting…";
}

function addExchange(x) {
  const body = $("#exchanges tbody");
  if (!body) return;
  if (x.sequence <= state.seen) body.replaceChildren(); // the journal was reset: sequence numbers restarted
  state.seen = x.sequence;
  const what = x.kind === "webhook" ? `→ ${x.webhook_url} (attempt ${x.attempt})`
    : x.kind === "websocket_frame" ? `${x.frame.direction} frame on #${x.frame.connection}`
      : x.path + (x.query_string ? "?" + x.query_string : "");
  const row = el("tr", { "data-sequence": x.sequence, class: "fresh", onclick: () => openExchange(x.sequence) },
    el("td", {}, x.sequence),
    el("td", { class: "code" }, when(x.receive_time)),
    el("td", { class: "code" }, x.kind === "webhook" ? "POST" : x.method),
    el("td", { class: "code" }, what),
    el("td", {}, x.status || "–"),
    el("td", {}, el("span", { class: "badge " + x.outcome }, x.outcome),
      x.event_count ? el("span", { class: "muted" }, ` ${x.event_count} events`) : null),
    el("td", {}, ms(x.duration)),
    el("td", { class: "code" }, x.stub ? x.stub.split("/").slice(-2).join("/") :
      x.near_misses ? `${x.near_misses} near miss${x.near_misses > 1 ? "es" : ""}` : ""),
  );
  body.prepend(row); // newest first, like a log being tailed
}

function showSession(s) {
  const box = $("#session-info");
  if (!box) return;
  const scenarios = Object.entries(s.scenarios);
  box.replaceChildren(
    el("table", { class: "kv" },
      el("tr", {}, el("th", {}, "base URL"), el("td", { class: "code" }, s.base_url)),
      el("tr", {}, el("th", {}, "state"), el("td", { class: "code", id: "scenario-state" },
        (s.state || "(initial)") + (scenarios.length ? "; " + scenarios.map(([k, v]) => `${k}: ${v}`).join(", ") : ""))),
      el("tr", {}, el("th", {}, "journal"), el("td", {},
        `${s.journal.total} recorded, ${s.journal.kept} kept, ${s.journal.evicted} evicted`)),
      s.pending_deliveries ? el("tr", {}, el("th", {}, "webhooks"), el("td", {},
        `${s.pending_deliveries} deliveries pending`)) : null),
    el("h3", {}, `Stubs (${s.stub_list.length}, in the order they are tried)`),
    s.stub_list.length ? el("table", { id: "stubs" },
      el("thead", {}, el("tr", {}, ["stub", "matches", "next response", "state", "expected"]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, s.stub_list.map((stub) => el("tr", { "data-stub": stub.name },
        el("td", { class: "code" }, stub.summary || stub.id, el("br"),
          el("span", { class: "muted" }, stub.description || stub.id)),
        el("td", { class: "match-count" }, stub.match_count + (stub.times ? ` / ${stub.times}` : ""),
          stub.exhausted ? el("span", { class: "badge off" }, " exhausted") : null),
        el("td", {}, `${stub.next_response + 1} of ${stub.responses}` +
          (stub.responses > 1 ? ` (then ${stub.after_last})` : "")),
        el("td", { class: "code" }, stub.required_state || stub.next_state
          ? `${stub.scenario || "state"}: ${stub.required_state || "*"} → ${stub.next_state || "="}` : ""),
        el("td", {}, stub.expectation))))) : el("p", { class: "muted" }, "No stubs."),
  );
}

// --- one exchange -----------------------------------------------------------------------------------------------

function closeDetail() {
  const aside = $("#detail");
  aside.hidden = true;
  aside.replaceChildren();
  state.detail = null;
}

async function openExchange(sequence) {
  const [, tenant, , session] = state.session.split("/");
  for (const row of document.querySelectorAll("#exchanges tbody tr")) {
    row.classList.toggle("current", Number(row.dataset.sequence) === sequence);
  }
  try {
    showExchange(await getJSON(`/tenants/${tenant}/sessions/${session}/exchanges/${sequence}`));
  } catch (error) {
    problem(String(error.message || error));
  }
}

function table(rows, id) {
  return el("table", { id }, el("tbody", {}, rows));
}

function bodyView(body, size, truncated) {
  if (!size) return el("p", { class: "muted" }, "(no body)");
  return el("div", {},
    el("pre", { class: "body" }, body.text || `(binary, base64) ${body.base64}`),
    el("span", { class: "muted" }, `${size} bytes` + (truncated ? ", truncated in the journal" : "")));
}

function showExchange(x) {
  state.detail = x;
  const aside = $("#detail");
  aside.hidden = false;
  // The fields any near miss says differed, so that the request view can mark them: "method", "path",
  // "query.page", "headers.accept", "body..." (the matchers' own field names).
  const differs = new Set();
  for (const miss of x.near_miss_list) for (const m of miss.mismatches) differs.add(m.field);
  const mark = (field) => (differs.has(field) ? "differs" : null);
  const req = x.request;
  const shownQuery = new Set(req.query.map(([n]) => n));
  const shownHeaders = new Set(req.headers.map(([n]) => n));
  // A condition on a header or parameter the request lacks: a row saying so, marked like the others.
  const missing = [...differs].filter((f) => (f.startsWith("query.") && !shownQuery.has(f.slice(6))) ||
    (f.startsWith("headers.") && !shownHeaders.has(f.slice(8))));
  const bodyDiffers = [...differs].some((f) => f.startsWith("body"));

  const parts = [
    el("div", { class: "nav-head" },
      el("h2", {}, `#${x.sequence} `, el("span", { class: "badge " + x.outcome }, x.outcome)),
      el("button", { onclick: closeDetail }, "close")),
  ];
  if (x.curl) {
    parts.push(el("div", { class: "copy" },
      el("button", { id: "copy-curl", onclick: () => copy("curl", x.curl) }, "copy as curl"),
      el("button", { id: "copy-stub-python", onclick: () => copy("Python stub", x.stub_python) }, "copy as stub (Python)"),
      el("button", { id: "copy-stub-json", onclick: () => copy("stub JSON", x.stub_json) }, "copy as stub (JSON)")),
    el("div", { id: "copied-box", hidden: true },
      el("span", { id: "copied-label" }), el("pre", { id: "copied", class: "code" })));
  }
  if (x.kind !== "webhook" && x.kind !== "websocket_frame") {
    parts.push(
      el("h3", {}, "Request"),
      table([
        el("tr", { "data-field": "method", class: mark("method") }, el("th", {}, "method"),
          el("td", { class: "code" }, req.method)),
        el("tr", { "data-field": "path", class: mark("path") }, el("th", {}, "path"),
          el("td", { class: "code" }, req.path)),
        ...req.query.map(([n, v]) => el("tr", { "data-field": "query." + n, class: mark("query." + n) },
          el("th", { class: "code" }, "?" + n), el("td", { class: "code" }, v))),
        ...req.headers.map(([n, v]) => el("tr", { "data-field": "headers." + n, class: mark("headers." + n) },
          el("th", { class: "code" }, n), el("td", { class: "code" }, v))),
        ...missing.map((f) => el("tr", { "data-field": f, class: "differs" },
          el("th", { class: "code" }, f), el("td", { class: "muted" }, "(absent)"))),
        el("tr", {}, el("th", {}, "received"), el("td", {},
          `${when(req.receive_time || x.receive_time)}, HTTP/${req.http_version}, routed by ${req.routing}`)),
      ], "request"),
      el("div", { "data-field": "body", class: bodyDiffers ? "differs" : null },
        bodyView(req.body, req.body_size, req.body_truncated)));
  }
  if (x.near_miss_list.length) {
    parts.push(el("h3", {}, "Nearest stubs (why each missed)"));
    for (const miss of x.near_miss_list) {
      parts.push(el("div", { class: "near-miss" },
        el("div", { class: "code" }, miss.stub), miss.description ? el("div", { class: "muted" }, miss.description) : null,
        el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "expected"), el("th", {}, "got"))),
          el("tbody", {}, miss.mismatches.map((m) => el("tr", { class: "mismatch" },
            el("td", { class: "code field differs" }, m.field),
            el("td", { class: "code" }, m.expected), el("td", { class: "code" }, m.actual)))))));
    }
  }
  const res = x.response;
  if (x.kind !== "websocket_frame") {
    parts.push(
      el("h3", {}, "Response"),
      table([
        el("tr", {}, el("th", {}, "status"), el("td", {}, res.status || "(none sent)")),
        el("tr", {}, el("th", {}, "answered by"), el("td", { class: "code" }, x.stub || "(no stub)")),
        el("tr", {}, el("th", {}, "timing"), el("td", {}, `received ${when(x.receive_time)}, took ${ms(res.duration)}`)),
        el("tr", {}, el("th", {}, "behaviours"), el("td", { class: "code" }, res.behaviours.join(" → ") || "none")),
        res.event_count ? el("tr", {}, el("th", {}, "SSE events"), el("td", {}, res.event_count)) : null,
        el("tr", {}, el("th", {}, "ended"), el("td", {}, res.end)),
        res.error ? el("tr", { class: "differs" }, el("th", {}, "error"), el("td", {}, res.error)) : null,
        el("tr", {}, el("th", {}, "body"), el("td", {}, `${res.body_size} bytes (bodies are not journaled)`)),
        ...res.headers.map(([n, v]) => el("tr", {}, el("th", { class: "code" }, n), el("td", { class: "code" }, v))),
      ], "response"));
  }
  if (x.llm) {
    const l = x.llm;
    parts.push(el("h3", {}, "LLM"), table([
      ["endpoint", l.endpoint], ["model", l.model], ["messages", l.message_count], ["turn", l.turn],
      ["rule", l.rule], ["stream", String(l.stream)], ["tools", l.tools.join(", ")],
      ["tokens", `${l.input_tokens} in, ${l.output_tokens} out`], ["refused", l.refusal_reason],
    ].filter(([, v]) => v !== "" && v !== undefined).map(([k, v]) => el("tr", {}, el("th", {}, k),
      el("td", { class: "code" }, v))), "llm"));
  }
  if (x.webhook) {
    const w = x.webhook;
    parts.push(el("h3", {}, "Webhook attempt"), table([
      ["delivery", w.delivery_id], ["attempt", w.attempt], ["url", w.url], ["callback of", w.callback_of],
      ["error", w.error], ["answer body", w.response_body.text || w.response_body.base64],
    ].filter(([, v]) => v !== "" && v !== undefined).map(([k, v]) => el("tr", {}, el("th", {}, k),
      el("td", { class: "code" }, v))), "webhook"));
  }
  const frames = x.frames || (x.frame ? [{ sequence: x.sequence, ...x.frame }] : []);
  if (frames.length) {
    parts.push(el("h3", {}, "WebSocket frames"), table(frames.map((f) => el("tr", {},
      el("td", {}, "#" + f.sequence), el("td", {}, f.direction === "inbound" ? "client →" : "← simulator"),
      el("td", { class: "code" }, f.close ? `close ${f.close.code} ${f.close.reason}` :
        f.text !== undefined ? f.text : `(binary, base64) ${f.binary}`),
      el("td", { class: "muted" }, f.origin))), "frames"));
  }
  aside.replaceChildren(...parts);
}

// The copied text is also shown on the page: the clipboard is not always available (plain HTTP on another host
// than localhost), and what was copied can then be selected by hand.
async function copy(what, text) {
  $("#copied-box").hidden = false;
  $("#copied").textContent = text;
  let done = false;
  try {
    await navigator.clipboard.writeText(text);
    done = true;
  } catch (error) {
    done = false;
  }
  $("#copied-label").textContent = done ? `${what} copied to the clipboard:` : `${what} (select and copy it):`;
}

// --- start ------------------------------------------------------------------------------------------------------

function start() {
  const params = new URLSearchParams(location.search);
  state.token = params.get("token") || sessionStorage.getItem("simulatord-token") || "";
  $("#token").value = state.token;
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem("simulatord-token", state.token);
    loadTenants();
    if (state.session) openSession(state.session);
  });
  $("#refresh").addEventListener("click", loadTenants);
  $("#tenants").addEventListener("click", (event) => {
    const link = event.target.closest("a.session");
    if (!link) return;
    event.preventDefault();
    history.replaceState(null, "", location.search + "#" + link.dataset.name);
    openSession(link.dataset.name);
  });
  loadTenants().then(() => {
    const name = location.hash.slice(1);
    if (/^tenants\/[^/]+\/sessions\/[^/]+$/.test(name)) openSession(name);
  });
}

start();
