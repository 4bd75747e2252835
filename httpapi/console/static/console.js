// The operators' console: a client of the public API (/api/v1) and nothing
// else. Pages are rendered from the URL's hash (#/collections, #/unit/ID…);
// text from the API is always inserted as text, never as markup.
"use strict";

const TOKEN_KEY = "blockstore.token";
const PAGE = 20; // rows per page of a list

const state = {
  access: null,     // "write" or "read", from GET /api/v1/stats
  poll: null,       // timer of the running sweep's progress
  changes: null,    // AbortController of the Changes view's requests
};

// ---- the API -----------------------------------------------------------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// api calls the API with the session's token and returns the parsed JSON
// (or the Response when raw). 401 opens the token form. opts.signal aborts
// the request (an AbortError, not an APIError).
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.json);
  }
  const resp = await fetch(path, { method: opts.method || "GET", headers, body: opts.body, cache: "no-store", signal: opts.signal });
  if (!resp.ok) {
    let code = "", message = resp.status + " " + resp.statusText;
    try {
      const e = (await resp.json()).error;
      if (e) { code = e.code; message = e.message; }
    } catch (_) { /* not JSON */ }
    if (resp.status === 401) showTokenForm(token() ? "The token was refused: " + message : "This server requires a bearer token.");
    throw new APIError(resp.status, code, message);
  }
  if (opts.raw) return resp;
  if (resp.status === 204) return null;
  return resp.json();
}

// ---- formatting ----------------------------------------------------------

const numFmt = new Intl.NumberFormat("en-US");
function num(n) { return n === null || n === undefined ? "–" : numFmt.format(n); }

// bytes formats a size with binary units (KiB, MiB, GiB…).
function bytes(n) {
  if (n === null || n === undefined) return "–";
  // A no-break space keeps a figure and its unit on one line.
  if (n < 1024) return numFmt.format(n) + "\u00a0B";
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n, i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + "\u00a0" + units[i];
}

function when(t) {
  if (!t) return "–";
  const d = new Date(t);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC").replace("Z", " UTC");
}

function seconds(s) { return s < 1 ? (s * 1000).toFixed(0) + " ms" : s.toFixed(s < 10 ? 2 : 1) + " s"; }
function shortHash(h) { return h ? h.slice(0, 12) + "…" : "–"; }
function shortID(id) { return id ? id.slice(0, 8) : "–"; }
function ver(v) { return v === null || v === undefined ? "draft" : "v" + v; }

// ---- DOM helpers ------------------------------------------------------------

// el builds an element: attrs are properties or attributes, children are
// nodes or strings (inserted as text).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function facts(pairs) {
  return el("dl", { class: "facts" }, pairs.filter(Boolean).map(([k, v, id]) => [el("dt", {}, k), el("dd", { id }, v)]));
}

function table(head, rows, opts = {}) {
  return el("div", { class: "table-wrap" }, el("table", { id: opts.id },
    el("thead", {}, el("tr", {}, head.map(h => el("th", { class: h.num ? "num" : h.cls, scope: "col" }, h.label || h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: head.length, class: "muted" }, opts.empty || "None.")))));
}

function cell(v, cls) { return el("td", { class: cls }, v); }
function numCell(v) { return el("td", { class: "num" }, v); }
function badge(text, kind) { return el("span", { class: "badge " + (kind || "") }, text); }
function errorBox(err) { return el("p", { class: "error", role: "alert" }, "Error: " + (err && err.message || err)); }

function mount(title, ...content) {
  const main = document.getElementById("main");
  main.replaceChildren(el("h1", {}, title), ...content);
  document.title = title + " · Blockstore console";
}

// ---- token and access ----------------------------------------------------

function showTokenForm(why) {
  const form = document.getElementById("token-form");
  document.getElementById("token-why").textContent = why;
  form.hidden = false;
  document.getElementById("token-input").focus();
}

function setupToken() {
  const form = document.getElementById("token-form");
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    const v = document.getElementById("token-input").value.trim();
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    document.getElementById("token-input").value = "";
    form.hidden = true;
    state.access = null;
    route();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    form.hidden = true;
    state.access = null;
    route();
  });
  document.getElementById("token-cancel").addEventListener("click", () => { form.hidden = true; });
  document.getElementById("token-change").addEventListener("click", () =>
    showTokenForm(token() ? "Replace or forget the token of this tab." : "Enter a token for this server."));
}

// loadAccess asks GET /api/v1/stats what the token may do, once per token.
async function loadAccess() {
  if (state.access) return state.access;
  const s = await api("/api/v1/stats");
  setAccess(s.access);
  return s;
}

function setAccess(access) {
  state.access = access;
  const b = document.getElementById("access");
  b.hidden = false;
  b.textContent = access === "read" ? "read-only token" : token() ? "write token" : "open server";
}

function readOnly() { return state.access === "read"; }
const READ_ONLY_WHY = "Your token is read-only (--read-token): sweeps need the write token.";

// ---- pages ---------------------------------------------------------------

async function overview() {
  const s = await api("/api/v1/stats");
  setAccess(s.access);
  const d = s.deployment;
  const kind = { embedded: "Embedded (Pebble + directory)", production: "PostgreSQL + S3", mixed: "Mixed" }[d.kind] || d.kind;
  const ready = r => r.ready ? badge("ready", "ok") : [badge("not ready", "bad"), " ", el("span", { class: "error" }, r.error || "")];
  const t = s.totals;
  let storage;
  if (t) {
    const ratio = t.stored_bytes > 0 ? t.referenced_bytes / t.stored_bytes : null;
    const saved = Math.max(0, t.referenced_bytes - t.stored_bytes);
    storage = [
      facts([
        ["Stored (live blobs)", bytes(t.stored_bytes), "bytes-stored"],
        ["Referenced by all versions", bytes(t.referenced_bytes), "bytes-referenced"],
        ["Dedup ratio", ratio === null ? "–" : ratio.toFixed(2) + "×", "dedup"],
        ["Saved by dedup", bytes(saved), "saved"],
      ]),
      el("p", { class: "hint" }, "Referenced counts every stored version of every unit and asset, drafts included, as if each kept its own copy."),
    ];
  } else {
    storage = el("p", { class: "muted" }, s.totals_error || "This index engine reports no totals.");
  }
  mount("Overview",
    el("div", { class: "grid" },
      el("section", { class: "panel", id: "deployment", "aria-labelledby": "h-dep" }, el("h2", { id: "h-dep" }, "Deployment"),
        facts([
          ["Kind", kind, "deployment-kind"],
          ["Index", d.index + " · " + d.index_location],
          ["Blobs", d.blobs + " · " + d.blobs_location],
          ["Index readiness", ready(s.readiness.index), "ready-index"],
          ["Blob store readiness", ready(s.readiness.blobs), "ready-blobs"],
          ["Your access", s.access === "read" ? "read-only" : "read and write"],
        ])),
      el("section", { class: "panel", id: "totals", "aria-labelledby": "h-tot" }, el("h2", { id: "h-tot" }, "Totals"),
        t ? facts([
          ["Collections", el("a", { href: "#/collections" }, num(t.collections)), "total-collections"],
          ["Units", num(t.units), "total-units"],
          ["Assets", num(t.assets), "total-assets"],
          ["Versions", num(t.versions), "total-versions"],
          ["Blobs", num(t.blobs), "total-blobs"],
        ]) : el("p", { class: "muted" }, "–")),
      el("section", { class: "panel", id: "storage", "aria-labelledby": "h-sto" }, el("h2", { id: "h-sto" }, "Storage"), storage),
      el("section", { class: "panel", id: "last-gc", "aria-labelledby": "h-gc" }, el("h2", { id: "h-gc" }, "Last sweep"),
        s.last_gc ? runSummary(s.last_gc) : el("p", { class: "muted" }, "No sweep has run yet."),
        el("p", {}, el("a", { href: "#/gc" }, "Garbage collection →")))),
    el("section", { class: "panel", "aria-labelledby": "h-col" }, el("h2", { id: "h-col" }, "Collections"),
      await collectionTable("", 5),
      el("p", {}, el("a", { href: "#/collections" }, "All collections →"))));
}

function runStatus(r) {
  if (r.status === "running" || !r.finished_at) return badge("running", "warn");
  if (r.status === "failed") return badge("failed", "bad");
  return badge(r.dry_run ? "dry run" : "swept", r.dry_run ? "" : "ok");
}

function runSummary(r) {
  return facts([
    ["Run", el("a", { href: "#/gc/" + encodeURIComponent(r.id) }, r.id)],
    ["Status", [runStatus(r), r.error ? [" ", el("span", { class: "error" }, r.error)] : null], "last-gc-status"],
    ["Started", when(r.started_at)],
    ["Finished", when(r.finished_at)],
    [r.dry_run ? "Would free" : "Freed", bytes(r.bytes_freed) + " in " + num(r.blobs_deleted) + (r.blobs_deleted === 1 ? " blob" : " blobs"), "last-gc-freed"],
  ]);
}

// collectionTable lists one page of collections with their stats.
async function collectionTable(cursor, limit) {
  const q = "?limit=" + limit + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
  const page = await api("/api/v1/collections" + q);
  const stats = await Promise.all(page.items.map(c =>
    api("/api/v1/collections/" + c.uuid + "/stats").catch(() => null)));
  const rows = page.items.map((c, i) => {
    const st = stats[i];
    return el("tr", {},
      cell(el("a", { href: "#/collection/" + c.uuid }, c.name || "(no name)")),
      cell(el("span", { class: "mono", title: c.uuid }, shortID(c.uuid)), "wide-only"),
      numCell(st ? num(st.units) : "–"),
      numCell(st ? num(st.assets) : "–"),
      numCell(st ? bytes(st.bytes) : "–"),
      cell(when(c.created_at), "wide-only"));
  });
  const t = table(["Name", { label: "UUID", cls: "wide-only" }, { label: "Units", num: true }, { label: "Assets", num: true },
    { label: "Logical size", num: true }, { label: "Created", cls: "wide-only" }], rows, { id: "collections", empty: "No collections yet." });
  t.nextCursor = page.next_cursor || "";
  return t;
}

async function collections(params) {
  const cursor = params.get("cursor") || "";
  const t = await collectionTable(cursor, PAGE);
  const nav = el("div", { class: "actions" },
    cursor ? el("a", { href: "#/collections" }, "← First page") : null,
    t.nextCursor ? el("a", { href: "#/collections?cursor=" + encodeURIComponent(t.nextCursor), id: "next-page" }, "Next page →") : null);
  mount("Collections", el("section", { class: "panel" }, t, nav),
    el("p", { class: "hint" }, "Logical size: the latest published version of every unit and asset, before deduplication."));
}

// moreList renders a list that loads further pages on demand.
function moreList(path, head, row, id, empty) {
  const tbody = el("tbody");
  const t = el("div", { class: "table-wrap" }, el("table", { id },
    el("thead", {}, el("tr", {}, head.map(h => el("th", { class: h.num ? "num" : h.cls, scope: "col" }, h.label || h)))), tbody));
  const more = el("button", { type: "button", hidden: true }, "Load more");
  const status = el("p", { class: "muted" }, "Loading…");
  let cursor = "";
  async function load() {
    more.disabled = true;
    try {
      const sep = path.includes("?") ? "&" : "?";
      const page = await api(path + sep + "limit=" + PAGE + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      page.items.forEach(it => tbody.append(row(it)));
      cursor = page.next_cursor || "";
      more.hidden = !cursor;
      status.textContent = tbody.children.length ? "" : empty;
    } catch (err) {
      status.replaceChildren(errorBox(err));
    }
    more.disabled = false;
  }
  more.addEventListener("click", load);
  load();
  return el("div", {}, t, status, more);
}

async function collection(id) {
  const c = await api("/api/v1/collections/" + id);
  const st = await api("/api/v1/collections/" + id + "/stats").catch(() => null);
  const base = "/api/v1/collections/" + id;
  mount(c.name || "(unnamed collection)",
    el("section", { class: "panel" }, facts([
      ["UUID", el("span", { class: "mono" }, c.uuid)],
      ["Version", "v" + c.version + " · " + when(c.created_at)],
      ["Description", c.description || "–"],
      ["Owner / author", (c.owner || "–") + " / " + (c.author || "–")],
      ["License", c.license || "–"],
      ["Garbage collect", c.garbage_collect ? "yes" : "no"],
      ["Contents", st ? num(st.units) + " units, " + num(st.assets) + " assets, " + bytes(st.bytes) : "–"],
    ]), el("p", {}, el("a", { href: "#/changes?collection=" + c.uuid, id: "collection-changes" }, "Changes in this collection →"))),
    el("section", { class: "panel" }, el("h2", {}, "Units"),
      moreList(base + "/units", ["Name", { label: "Version", num: true }, { label: "Size", num: true },
        { label: "Hash", cls: "wide-only" }, { label: "Links", num: true }, { label: "Created", cls: "wide-only" }],
      u => el("tr", {},
        cell(el("a", { href: "#/unit/" + u.uuid }, u.name || shortID(u.uuid))),
        numCell(ver(u.version)), numCell(bytes(u.size)),
        cell(el("span", { class: "mono", title: u.hash }, shortHash(u.hash)), "wide-only"),
        numCell(num(u.links.length)), cell(when(u.created_at), "wide-only")), "units", "No units.")),
    el("section", { class: "panel" }, el("h2", {}, "Assets"),
      moreList(base + "/assets", ["Name", { label: "Type", cls: "wide-only" }, { label: "Version", num: true },
        { label: "Size", num: true }, { label: "Hash", cls: "wide-only" }],
      a => el("tr", {},
        cell(el("a", { href: "#/asset/" + a.uuid }, a.name || shortID(a.uuid))),
        cell(a.media_type, "wide-only"), numCell(ver(a.version)), numCell(bytes(a.size)),
        cell(el("span", { class: "mono", title: a.hash }, shortHash(a.hash)), "wide-only")), "assets", "No assets.")));
}

function historySection(kind, id, current) {
  return el("section", { class: "panel" }, el("h2", {}, "Version history"),
    moreList("/api/v1/" + kind + "s/" + id + "/versions", [{ label: "Version", num: true }, "Created", { label: "Size", num: true },
      { label: "Hash", cls: "wide-only" }],
    v => el("tr", {},
      numCell(v.version === current ? el("strong", {}, ver(v.version) + " (shown)") :
        el("a", { href: "#/" + kind + "/" + id + "/" + v.version }, ver(v.version))),
      cell(when(v.created_at)), numCell(bytes(v.size)),
      cell(el("span", { class: "mono", title: v.hash }, shortHash(v.hash)), "wide-only")), "history", "No published versions."));
}

function linkedBySection(kind, id) {
  return el("section", { class: "panel" }, el("h2", {}, "Linked by"),
    moreList("/api/v1/" + kind + "s/" + id + "/linked-by", ["Unit", { label: "Version", num: true }, { label: "Pinned to", num: true }],
      u => el("tr", {},
        cell(el("a", { href: "#/unit/" + u.uuid }, u.name || shortID(u.uuid))),
        numCell(ver(u.version)), numCell(u.link_version ? "v" + u.link_version : "latest")),
      "linked-by", "No unit's latest version links here."));
}

async function unit(id, n) {
  const path = "/api/v1/units/" + id + (n ? "/versions/" + n : "");
  const u = await api(path + "?expand=links");
  const olx = el("pre", { class: "olx", id: "olx", tabindex: "0", "aria-label": "OLX" }, "Loading OLX…");
  api(path + "/olx", { raw: true }).then(r => r.text()).then(t => { olx.textContent = t; })
    .catch(err => olx.replaceChildren(errorBox(err)));
  const links = u.links.map(l => el("tr", {},
    cell(el("a", { href: "#/" + l.kind + "/" + l.target }, shortID(l.target))),
    cell(l.kind), numCell(l.version ? "v" + l.version : "latest"),
    numCell(l.resolved ? ver(l.resolved.version) : "missing"),
    numCell(l.resolved ? bytes(l.resolved.size) : "–")));
  mount("Unit " + (u.name || shortID(u.uuid)),
    el("section", { class: "panel" }, facts([
      ["UUID", el("span", { class: "mono" }, u.uuid)],
      ["Collection", el("a", { href: "#/collection/" + u.collection }, shortID(u.collection))],
      ["Version", ver(u.version) + " · " + when(u.created_at), "unit-version"],
      ["Size", bytes(u.size)],
      ["Hash", el("span", { class: "mono" }, u.hash)],
      ["Garbage collect", u.garbage_collect ? "yes" : "no"],
    ])),
    el("section", { class: "panel" }, el("h2", {}, "OLX"), olx),
    el("section", { class: "panel" }, el("h2", {}, "Links"),
      table(["Target", "Kind", { label: "Pin", num: true }, { label: "Resolves to", num: true }, { label: "Size", num: true }], links,
        { id: "links", empty: "No links." })),
    linkedBySection("unit", id),
    historySection("unit", id, u.version));
}

async function asset(id, n) {
  const path = "/api/v1/assets/" + id + (n ? "/versions/" + n : "");
  const a = await api(path);
  const download = el("button", { type: "button", id: "download" }, "Download");
  const status = el("span", { class: "hint" });
  download.addEventListener("click", () => downloadAsset(path + "/content", a, status));
  mount("Asset " + (a.name || shortID(a.uuid)),
    el("section", { class: "panel" }, facts([
      ["UUID", el("span", { class: "mono" }, a.uuid)],
      ["Collection", el("a", { href: "#/collection/" + a.collection }, shortID(a.collection))],
      ["Version", ver(a.version) + " · " + when(a.created_at)],
      ["Media type", a.media_type],
      ["Size", bytes(a.size)],
      ["Hash", el("span", { class: "mono" }, a.hash)],
      ["Garbage collect", a.garbage_collect ? "yes" : "no"],
    ]), el("div", { class: "actions" }, download, status)),
    linkedBySection("asset", id),
    historySection("asset", id, a.version));
}

// downloadAsset saves an asset's bytes. Without a token a plain link lets
// the browser stream them to disk; a token must go in a header, which a
// link cannot carry, so the bytes are fetched into memory first.
async function downloadAsset(path, a, status) {
  const name = a.name || a.uuid;
  if (!token()) {
    el("a", { href: path, download: name }).click();
    return;
  }
  status.textContent = "Downloading " + bytes(a.size) + " through this tab…";
  try {
    const blob = await (await api(path, { raw: true })).blob();
    const url = URL.createObjectURL(blob);
    el("a", { href: url, download: name }).click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    status.textContent = "";
  } catch (err) {
    status.replaceChildren(errorBox(err));
  }
}

// ---- garbage collection --------------------------------------------------

function reportView(r) {
  const phases = (r.phases || []).map(p => el("tr", {},
    cell(p.name), numCell(seconds(p.seconds)), numCell(num(p.items)), numCell(bytes(p.bytes))));
  return el("div", { class: "report" },
    facts([
      ["Run", el("span", { class: "mono" }, r.id)],
      ["Kind", r.dry_run ? "dry run (nothing deleted)" : "sweep"],
      ["Status", [runStatus(r), r.error ? [" ", el("span", { class: "error" }, r.error)] : null]],
      ["Started / finished", when(r.started_at) + " / " + when(r.finished_at)],
      ["Retention / grace", (r.retention || "–") + " / " + (r.grace || "–")],
      [r.dry_run ? "Versions to delete" : "Versions deleted", num(r.versions_deleted), "report-versions"],
      [r.dry_run ? "Orphaned assets to delete" : "Assets deleted", num(r.assets_deleted), "report-assets"],
      [r.dry_run ? "Blobs to delete" : "Blobs deleted", num(r.blobs_deleted), "report-blobs"],
      [r.dry_run ? "Bytes to free" : "Bytes freed", bytes(r.bytes_freed), "report-bytes"],
      ["Blobs kept", num(r.blobs_kept)],
      ["Temporary data removed", num(r.temp_items_deleted) + " items, " + bytes(r.temp_bytes_freed)],
      r.progress ? ["Progress", r.progress.phase + ": " + num(r.progress.items) + " items so far", "report-progress"] : null,
    ]),
    el("h3", {}, "Phases"),
    table(["Phase", { label: "Time", num: true }, { label: "Items", num: true }, { label: "Bytes", num: true }], phases,
      { empty: "No phase finished yet." }),
    r.notes && r.notes.length ? [el("h3", {}, "Notes"), el("ul", {}, r.notes.map(n => el("li", {}, n)))] : null);
}

async function gcPage() {
  await loadAccess();
  const out = el("div", { id: "gc-report", "aria-live": "polite" });
  const dry = el("button", { type: "button", id: "gc-dry-run", class: "primary" }, "Dry run");
  const sweep = el("button", { type: "button", id: "gc-sweep", class: "danger" }, "Sweep…");
  const why = el("p", { class: "hint", id: "gc-why" });
  if (readOnly()) {
    for (const b of [dry, sweep]) { b.disabled = true; b.title = READ_ONLY_WHY; }
    why.textContent = READ_ONLY_WHY;
  }
  dry.addEventListener("click", async () => {
    dry.disabled = sweep.disabled = true;
    out.replaceChildren(el("p", { class: "muted" }, "Dry run under way…"));
    try {
      const r = await api("/api/v1/gc", { method: "POST", json: { dry_run: true } });
      out.replaceChildren(el("h2", {}, "Dry run report"), reportView(r));
      refreshRuns();
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
    dry.disabled = sweep.disabled = false;
  });
  sweep.addEventListener("click", () => confirmSweep(out, dry, sweep));
  const runs = el("div", { id: "gc-runs" });
  async function refreshRuns() {
    try {
      const list = await api("/api/v1/gc/runs?limit=20");
      runs.replaceChildren(runsTable(list.items));
      const running = list.items.find(r => !r.finished_at);
      if (running) watch(running.id, out);
    } catch (err) {
      runs.replaceChildren(errorBox(err));
    }
  }
  mount("Garbage collection",
    el("section", { class: "panel" },
      el("p", {}, "A sweep deletes versions past retention, orphaned assets and blobs nothing references (DESIGN.md). ",
        "A dry run deletes nothing and reports what a sweep would delete."),
      el("div", { class: "actions" }, dry, sweep), why, out),
    el("section", { class: "panel" }, el("h2", {}, "Past runs"), runs));
  await refreshRuns();
}

// confirmSweep runs a dry run first and shows its numbers; only then may
// the operator start the real sweep.
async function confirmSweep(out, dry, sweep) {
  dry.disabled = sweep.disabled = true;
  out.replaceChildren(el("p", { class: "muted" }, "Dry run first, to show what the sweep would delete…"));
  let r;
  try {
    r = await api("/api/v1/gc", { method: "POST", json: { dry_run: true } });
  } catch (err) {
    out.replaceChildren(errorBox(err));
    dry.disabled = sweep.disabled = false;
    return;
  }
  const go = el("button", { type: "button", class: "danger", id: "gc-confirm" }, "Delete now");
  const cancel = el("button", { type: "button", id: "gc-cancel" }, "Cancel");
  const box = el("div", { class: "panel confirm", role: "alertdialog", "aria-labelledby": "confirm-h" },
    el("h2", { id: "confirm-h" }, "Run a real sweep?"),
    el("p", {}, "The dry run found: " + num(r.versions_deleted) + " versions, " + num(r.assets_deleted) +
      " orphaned assets and " + num(r.blobs_deleted) + " blobs (" + bytes(r.bytes_freed) + ") to delete. ",
      "Deleted data cannot be brought back. Writes that happen meanwhile stay safe."),
    el("div", { class: "actions" }, go, cancel),
    reportView(r));
  out.replaceChildren(box);
  go.focus();
  cancel.addEventListener("click", () => {
    out.replaceChildren(el("p", { class: "muted" }, "Sweep cancelled; nothing was deleted."));
    dry.disabled = sweep.disabled = false;
  });
  go.addEventListener("click", async () => {
    go.disabled = cancel.disabled = true;
    try {
      const started = await api("/api/v1/gc", { method: "POST", json: { dry_run: false, wait: false } });
      watch(started.id, out);
    } catch (err) {
      out.replaceChildren(errorBox(err));
      dry.disabled = sweep.disabled = false;
    }
  });
}

// watch shows a running sweep's progress until it finishes.
function watch(id, out) {
  clearTimeout(state.poll);
  const tick = async () => {
    if (!location.hash.startsWith("#/gc")) return; // left the page
    try {
      const r = await api("/api/v1/gc/runs/" + encodeURIComponent(id));
      out.replaceChildren(el("h2", {}, r.finished_at ? "Sweep finished" : "Sweep running"),
        r.finished_at ? null : el("progress", { "aria-label": "sweep in progress" }), reportView(r));
      if (!r.finished_at) { state.poll = setTimeout(tick, 1000); return; }
      for (const b of document.querySelectorAll("#gc-dry-run, #gc-sweep")) b.disabled = readOnly();
      const runs = await api("/api/v1/gc/runs?limit=20");
      document.getElementById("gc-runs").replaceChildren(runsTable(runs.items));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  };
  tick();
}

function runsTable(items) {
  const rows = items.map(r => el("tr", {},
    cell(el("a", { href: "#/gc/" + encodeURIComponent(r.id) }, when(r.started_at))),
    cell(runStatus(r)),
    numCell(num(r.versions_deleted)), numCell(num(r.assets_deleted)), numCell(num(r.blobs_deleted)),
    numCell(bytes(r.bytes_freed)),
    numCell(r.finished_at ? seconds((new Date(r.finished_at) - new Date(r.started_at)) / 1000) : "…")));
  return table(["Started", "Status", { label: "Versions", num: true }, { label: "Assets", num: true },
    { label: "Blobs", num: true }, { label: "Bytes", num: true }, { label: "Took", num: true }], rows,
  { id: "runs", empty: "No sweep has run yet." });
}

async function gcRun(id) {
  const r = await api("/api/v1/gc/runs/" + encodeURIComponent(id));
  const out = el("div", { "aria-live": "polite" }, reportView(r));
  mount("Sweep " + id, el("p", {}, el("a", { href: "#/gc" }, "← Garbage collection")), el("section", { class: "panel" }, out));
  if (!r.finished_at) watch(id, out);
}

// ---- changes ---------------------------------------------------------------

// The feed is read oldest first from a cursor and cannot be read backwards
// from its head, so the view reads the kept history once, page by page,
// keeping the last CHANGES_SHOWN, then follows from where that read ended.
const CHANGES_SHOWN = 50;      // rows the view keeps, newest first
const CHANGES_PAGE = 1000;     // the feed's largest page
const CHANGES_MAX_PAGES = 20;  // bounds the read of the history to 20 requests
const FOLLOW_WAIT = "25s";     // each long-poll; under the API's 60 s and common proxy timeouts
const RETRY_MAX_MS = 30000;    // longest pause between retries of a failed poll

function changesURL(after, limit, collection, wait) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (after) q.set("after", after);
  if (collection) q.set("collection", collection);
  if (wait) q.set("wait", wait);
  return "/api/v1/changes?" + q;
}

// readLatest reads the kept history to its end and returns the last
// CHANGES_SHOWN changes (newest first) and the cursor to follow from. A
// filtered page may hold fewer items than asked while more follow (the
// server bounds what one page scans), so the end is where next_cursor stops
// advancing. A history too long to read here is skipped: the view then
// starts at the head, and says so.
async function readLatest(collection, signal) {
  let after = "", latest = [];
  for (let i = 0; i < CHANGES_MAX_PAGES; i++) {
    const page = await api(changesURL(after, CHANGES_PAGE, collection, ""), { signal });
    latest = latest.concat(page.items).slice(-CHANGES_SHOWN);
    const end = page.next_cursor === after || (!collection && page.items.length < CHANGES_PAGE);
    after = page.next_cursor;
    if (end) return { items: latest.reverse(), cursor: after, complete: true };
  }
  const head = await api("/api/v1/changes/head", { signal });
  return { items: [], cursor: head.cursor, complete: false };
}

// entityHref links a change to its entity in the console: the version the
// change made when there is one and it still may exist.
function entityHref(c) {
  if (c.kind === "collection") return "#/collection/" + c.uuid;
  const base = "#/" + c.kind + "/" + c.uuid;
  return c.version && c.event !== "deleted" ? base + "/" + c.version : base;
}

function changeRow(c) {
  const kind = { created: "ok", deleted: "bad", draft_deleted: "warn" }[c.event] || "";
  const v = c.version ? "v" + c.version : c.event.startsWith("draft") ? "draft" : "–";
  return el("tr", { "data-cursor": c.cursor },
    cell(when(c.at)),
    cell(badge(c.event.replace("_", " "), kind)),
    cell(c.kind),
    cell(el("a", { href: entityHref(c), class: "mono", title: c.uuid, "data-uuid": c.uuid }, shortID(c.uuid))),
    numCell(c.event === "deleted" && c.version ? v + " removed" : v),
    cell(el("a", { href: "#/collection/" + c.collection, class: "mono", title: c.collection, "data-uuid": c.collection },
      shortID(c.collection)), "wide-only"));
}

// nameEntities replaces the short UUIDs of the links under root that have
// no name yet by their entities' names, in one POST /api/v1/resolve (which
// a read token may send), and marks those the index no longer holds. Best
// effort: on any failure the short UUIDs stay.
async function nameEntities(root, signal) {
  const links = [...root.querySelectorAll("a[data-uuid]:not([data-named])")];
  const ids = [...new Set(links.map(a => a.dataset.uuid))].slice(0, 1000); // the API's most refs at once
  if (!ids.length) return;
  let r;
  try {
    r = await api("/api/v1/resolve", { method: "POST", json: { refs: ids }, signal });
  } catch (_) {
    return;
  }
  const names = new Map(r.items.map(it => [it.ref, it.name || ""]));
  const missing = new Set(r.missing);
  for (const a of links) {
    const id = a.dataset.uuid;
    if (names.get(id)) {
      a.textContent = names.get(id);
      a.classList.remove("mono");
    } else if (missing.has(id)) {
      a.textContent = shortID(id) + " (deleted)";
    }
    if (names.has(id) || missing.has(id)) a.dataset.named = "true";
  }
}

// pause waits ms, or less when signal aborts: the spacing of retries.
function pause(ms, signal) {
  return new Promise(resolve => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

const FOLLOW_OFF = "Follow is off: changes committed from now on show with Follow or after a reload.";
const GONE_NOTE = "The feed no longer holds this page's place (410 gone: older than the kept history, " +
  "or the server was restored from a backup), so the list was reloaded from the start.";

// changes renders the Changes view: the latest changes, newest first, and a
// follow toggle that long-polls for new ones. Every request of the view
// stops when route() aborts state.changes.
async function changes(params) {
  const collection = params.get("collection") || "";
  const view = new AbortController();
  state.changes = view;
  const tbody = el("tbody");
  const status = el("p", { class: "muted", id: "changes-status", "aria-live": "polite" }, "Reading the feed…");
  const note = el("p", { class: "panel notice", id: "changes-note", role: "status", hidden: true });
  const toggle = el("input", { type: "checkbox", id: "changes-follow" });
  const section = el("section", { class: "panel", id: "changes", "data-follow": "off" },
    el("div", { class: "actions" },
      el("label", { class: "follow" }, toggle, " Follow: show new changes as they are committed"),
      collection ? el("a", { href: "#/changes" }, "All collections") : null),
    status,
    el("div", { class: "table-wrap" }, el("table", { id: "changes-list" },
      el("thead", {}, el("tr", {}, ["Time", "Event", "Kind", "Entity", { label: "Version", num: true },
        { label: "Collection", cls: "wide-only" }].map(h => el("th", { class: h.num ? "num" : h.cls, scope: "col" }, h.label || h)))),
      tbody)));
  mount(collection ? "Changes in collection " + shortID(collection) : "Changes",
    el("p", { class: "hint" }, "What was committed, newest first (GET /api/v1/changes): the last " + CHANGES_SHOWN +
      " changes" + (collection ? " of this collection" : "") + ", with the entities' current names (those deleted since are marked)."),
    note, section);

  let cursor = "";
  let followCtl = null;
  function setFollow(s, text) {
    section.dataset.follow = s;
    status.textContent = text;
  }
  function showEmpty() {
    if (!tbody.children.length) tbody.append(el("tr", { class: "empty" }, el("td", { colspan: 6, class: "muted" }, "No changes yet.")));
  }
  function prepend(items) {
    if (!items.length) return;
    for (const r of tbody.querySelectorAll("tr.empty")) r.remove();
    for (const c of items) tbody.prepend(changeRow(c)); // oldest first in, newest ends on top
    while (tbody.children.length > CHANGES_SHOWN) tbody.lastChild.remove();
  }
  // load (re)reads the latest changes; a 410 while paging (a sweep pruned
  // the history meanwhile) starts it again, a bounded number of times.
  async function load(why) {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await readLatest(collection, view.signal);
        tbody.replaceChildren(...r.items.map(changeRow));
        showEmpty();
        nameEntities(tbody, view.signal);
        cursor = r.cursor;
        const notes = [why, r.complete ? "" : "The kept history holds more than " + num(CHANGES_MAX_PAGES * CHANGES_PAGE) +
          " changes, too many to read here: this list starts now. Turn on Follow to see new ones."].filter(Boolean);
        note.textContent = notes.join(" ");
        note.hidden = !notes.length;
        return;
      } catch (err) {
        if (err.status === 410 && attempt < 2) { why = GONE_NOTE; continue; }
        throw err;
      }
    }
  }
  async function follow(signal) {
    let delay = 1000;
    while (!signal.aborted) {
      setFollow("waiting", "Following: waiting for the next change…");
      let page;
      try {
        page = await api(changesURL(cursor, CHANGES_PAGE, collection, FOLLOW_WAIT), { signal });
      } catch (err) {
        if (signal.aborted) return;
        if (err.status === 410) {
          try { await load(GONE_NOTE); } catch (e) { if (!signal.aborted) stopFollow(e); return; }
          continue;
        }
        if (err.status && err.status < 500) { stopFollow(err); return; } // retrying cannot help
        setFollow("retrying", "Following: the last poll failed (" + (err.message || err) + "); trying again in " +
          Math.round(delay / 1000) + " s.");
        await pause(delay, signal);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
        continue;
      }
      // Switched off (or on again) meanwhile: a newer loop owns the cursor,
      // and taking this page too would list its changes twice.
      if (signal.aborted) return;
      delay = 1000;
      prepend(page.items);
      nameEntities(tbody, signal);
      cursor = page.next_cursor;
    }
  }
  function stopFollow(err) {
    if (followCtl) followCtl.abort();
    followCtl = null;
    toggle.checked = false;
    setFollow("off", FOLLOW_OFF);
    if (err) status.replaceChildren(errorBox(err));
  }
  toggle.addEventListener("change", () => {
    if (!toggle.checked) { stopFollow(null); return; }
    followCtl = new AbortController();
    const ctl = followCtl;
    view.signal.addEventListener("abort", () => ctl.abort(), { once: true });
    follow(ctl.signal);
  });

  toggle.disabled = true;
  await load("");
  toggle.disabled = false;
  setFollow("off", FOLLOW_OFF);
}

// ---- routing ---------------------------------------------------------------

const UUID = "([0-9a-fA-F-]{36})";
const routes = [
  [/^#?\/?$/, "overview", () => overview()],
  [/^#\/collections(?:\?(.*))?$/, "collections", m => collections(new URLSearchParams(m[1] || ""))],
  [new RegExp("^#/collection/" + UUID + "$"), "collections", m => collection(m[1])],
  [new RegExp("^#/unit/" + UUID + "(?:/(\\d+|draft))?$"), "collections", m => unit(m[1], m[2])],
  [new RegExp("^#/asset/" + UUID + "(?:/(\\d+|draft))?$"), "collections", m => asset(m[1], m[2])],
  [/^#\/gc$/, "gc", () => gcPage()],
  [/^#\/gc\/(.+)$/, "gc", m => gcRun(decodeURIComponent(m[1]))],
  [/^#\/changes(?:\?(.*))?$/, "changes", m => changes(new URLSearchParams(m[1] || ""))],
];

async function route() {
  clearTimeout(state.poll);
  // Leaving (or re-rendering) the Changes view ends its long-poll.
  if (state.changes) { state.changes.abort(); state.changes = null; }
  const hash = location.hash || "#/";
  const main = document.getElementById("main");
  for (const [re, section, render] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll("nav a[data-section]")) {
      if (a.dataset.section === section) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    main.replaceChildren(el("p", { class: "muted" }, "Loading…"));
    try {
      // What the token may do, once per token, for the header's badge.
      if (!state.access && section !== "overview") await loadAccess();
      await render(m);
    } catch (err) {
      if (err.name === "AbortError") return; // left the page meanwhile: the next one renders
      mount("Could not load this page", errorBox(err),
        err.status === 401 ? el("p", {}, "Enter a token above, then the page reloads.") : null);
    }
    // Move focus to the new page, unless the token form has asked for it.
    if (document.getElementById("token-form").hidden) main.focus({ preventScroll: true });
    return;
  }
  mount("Not found", el("p", {}, "No page at " + hash + ". ", el("a", { href: "#/" }, "Overview")));
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", () => {
  // The skip link must not change the hash, which names the page.
  document.querySelector(".skip").addEventListener("click", ev => {
    ev.preventDefault();
    document.getElementById("main").focus();
  });
  setupToken();
  route();
});
