// The Xietong console: a live board of the tasks in the user's scope, fed by the /ws event
// stream (snapshot, then events tagged with their Raft log index), with resume on reconnect
// to any node of the group. Uses only the public HTTP and WebSocket API.
"use strict";

const TZ = "Asia/Shanghai";
const RECONNECT_DELAY_MS_MIN = 300;
/// How often the bureau tree's online dots are refreshed (presence entries live 30 s).
const PRESENCE_REFRESH_MS = 15_000;
const RECONNECT_DELAY_MS_MAX = 3000;
const CLIENT_PING_MS = 5000;
const TOAST_MS = 3500;
const DUE_SOON_MS = 60 * 60 * 1000;
const OPEN_STATES = ["created", "dispatched", "acknowledged", "completed", "returned"];
const TABS = ["all", "dispatched", "acknowledged", "completed", "returned", "closed"];
const KINDS = ["risk_alert", "lead", "emergency", "assignment", "referral", "inspection"];
// Inspections come only from a campaign's draw (双随机): the create form does not offer them.
const CREATABLE_KINDS = KINDS.filter((kind) => kind !== "inspection");
const SEVERITIES = ["low", "normal", "high", "critical"];
const SOURCES = ["spot_check", "complaint", "big_data", "referral", "assignment", "media", "public_opinion", "third_party"];
const OUTCOMES = ["no_violation", "reminded", "interviewed", "warned", "penalized", "transferred"];
/// The results an inspection may record (抽查结果), instead of the outcomes of other tasks.
const INSPECTION_OUTCOMES = ["no_problem_found", "corrected", "penalized", "not_found_at_address", "case_opened"];

const S = {
  lang: localStorage.getItem("xt-lang") || "zh",
  // A person's session lives as long as the tab; a machine token until signed out.
  token: sessionStorage.getItem("xt-session") || localStorage.getItem("xt-token") || "",
  me: null,
  members: [],          // host:port of every node of the group
  nodeIndex: 0,         // which member the live connection uses
  tasks: new Map(),     // id -> task JSON
  lastIndex: null,      // last log index fully received
  ws: null,
  reconnectDelay: RECONNECT_DELAY_MS_MIN,
  everConnected: false,
  bureaus: new Map(),   // code -> {code, name, parent, level}
  filter: { tab: "all", kind: "", overdue: false, q: "", bureau: null },
  selected: null,
  picked: new Set(),    // task ids ticked for a bulk action (bulk.js)
  truncated: 0,
  seenEmergencies: new Set(),
  pingTimer: null,
  online: new Map(),    // bureau code -> users with a console open (presence; needs Redis)
  presenceOff: false,   // the server has no presence (no Redis): no dots, no polling
};

const $ = (sel) => document.querySelector(sel);
const t = (key, vars) => {
  let text = key.split(".").reduce((o, k) => (o ? o[k] : undefined), I18N[S.lang]) ?? key;
  for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, v);
  return text;
};
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const within = (code, ancestor) => {
  for (let c = code, guard = 0; c && guard < 6; c = S.bureaus.get(c)?.parent, guard++) if (c === ancestor) return true;
  return false;
};
// Names of bureaus outside this console's tree (another province's county a task was handed
// to), learnt from the tasks that name them.
const otherNames = new Map();
const bureauName = (code) => (code ? S.bureaus.get(code)?.name || otherNames.get(code) || code : "—");
// The page's own scheme for every call: a console served over TLS never calls in clear.
const SECURE = location.protocol === "https:";
const apiBase = () => `${SECURE ? "https" : "http"}://${S.members[S.nodeIndex] || location.host}`;

function fmtTime(iso, withDate = true) {
  if (!iso) return "—";
  const opts = { timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(opts, { month: "2-digit", day: "2-digit" });
  return new Intl.DateTimeFormat(S.lang === "zh" ? "zh-CN" : "en-GB", opts).format(new Date(iso));
}

function fmtSpan(ms) {
  const sec = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  if (d) return `${d}${t("d")}${h}${t("h")}`;
  if (h) return `${h}${t("h")}${m}${t("m")}`;
  return `${m}${t("m")}${String(s).padStart(2, "0")}${t("s")}`;
}

// The deadline that runs now is the ledger's to say (ack, completion, a complaint's or a
// publication's clock, whichever ends first); the console only counts it down.
function runningDeadline(task) {
  return task.running_deadline || null;
}

function countdown(task) {
  const deadline = runningDeadline(task);
  if (!deadline) return { text: "—", cls: "" };
  const left = new Date(deadline) - Date.now();
  if (left < 0) return { text: `${t("overdue_by")} ${fmtSpan(left)}`, cls: "overdue", left };
  return { text: `${t("remaining")} ${fmtSpan(left)}`, cls: left < DUE_SOON_MS ? "due-soon" : "", left };
}

function isOverdue(task) {
  const deadline = runningDeadline(task);
  return Boolean(deadline && new Date(deadline) < Date.now());
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${S.token}`, ...(options.headers || {}) };
  if (options.body && !headers["Content-Type"]) headers["Content-Type"] = "application/json";
  const response = await fetch(apiBase() + path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body?.error?.message || response.statusText), { status: response.status, code: body?.error?.code });
  return body;
}

function toast(text, kind = "") {
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.textContent = text;
  $("#toasts").append(el);
  setTimeout(() => el.remove(), TOAST_MS);
}

// ---------- language ----------
function applyLanguage() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => (el.textContent = t(el.dataset.i18n)));
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => (el.placeholder = t(el.dataset.i18nPlaceholder)));
  if (S.me) {
    $("#app-title").textContent = `${S.me.bureau_name || ""} ${t("title")}`;
    renderAll();
  }
}
document.querySelectorAll("[data-lang]").forEach((a) => a.addEventListener("click", (e) => {
  e.preventDefault();
  S.lang = a.dataset.lang;
  localStorage.setItem("xt-lang", S.lang);
  applyLanguage();
}));

// ---------- login ----------
async function login(token) {
  S.token = token.trim();
  try {
    S.me = await api("/api/v1/me");
    S.departments = S.departmentsLoading = null;
  } catch (error) {
    $("#login-error").textContent = error.message;
    forgetToken();
    return;
  }
  if (isSession(S.token)) sessionStorage.setItem("xt-session", S.token);
  else localStorage.setItem("xt-token", S.token);
  const cluster = await api("/api/v1/cluster").catch(() => null);
  // A page served by a member moves between the group's nodes when one dies; a page served by
  // a gateway (or any proxy: its host is no member) stays on its own origin.
  const members = cluster ? cluster.members.map((m) => m.addr) : [];
  S.members = members.includes(location.host) ? members : [location.host];
  S.nodeIndex = Math.max(0, S.members.indexOf(location.host));
  await loadBureaus();
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#user-label").textContent = S.me.display_name || S.me.user;
  $("#bureau-label").textContent = `${S.me.bureau_name || ""} ${S.me.bureau}`;
  $("#create-open").hidden = S.me.role !== "command";
  $("#mine-toggle").hidden = !S.me.person;
  if (S.me.person) keepSessionAlive();
  $("[data-view=campaigns]").hidden = S.me.role !== "command";
  setupFilters();
  applyLanguage();
  connect();
  refreshPresence();
  setInterval(refreshPresence, PRESENCE_REFRESH_MS);
  // Leadership judges response: its home is the metrics view; everyone else's the board.
  // Another department's inspector reads only their team's joint inspections: no metrics.
  $("[data-view=metrics]").hidden = S.me.role === "department";
  if (S.me.role === "leadership") showView("metrics");
}

$("#login-button").addEventListener("click", () => login($("#login-token").value));
$("#login-token").addEventListener("keydown", (e) => e.key === "Enter" && login(e.target.value));
$("#logout").addEventListener("click", async () => {
  // A person signs out everywhere (a session cannot be ended alone).
  if (isSession(S.token)) await api("/api/v1/sessions/sign_out", { method: "POST" }).catch(() => null);
  forgetToken();
  location.reload();
});

function forgetToken() {
  S.token = "";
  localStorage.removeItem("xt-token");
  sessionStorage.removeItem("xt-session");
}

// ---------- live connection ----------
function setConn(state, text) {
  const el = $("#conn-status");
  el.className = `conn conn-${state}`;
  const node = S.members[S.nodeIndex] ? ` · ${t("node")} ${S.members[S.nodeIndex]}` : "";
  el.textContent = `${text}${node}`;
  el.dataset.state = state;
}

function connect() {
  setConn(S.everConnected ? "reconnecting" : "connecting", t(S.everConnected ? "reconnecting" : "connecting"));
  const ws = new WebSocket(`${SECURE ? "wss" : "ws"}://${S.members[S.nodeIndex] || location.host}/ws`);
  S.ws = ws;
  let welcomed = false;
  ws.onopen = () => {
    const hello = { type: "hello", token: S.token, scope: S.me.bureau };
    if (S.lastIndex !== null) hello.since = S.lastIndex;
    ws.send(JSON.stringify(hello));
    clearInterval(S.pingTimer);
    S.pingTimer = setInterval(() => ws.readyState === 1 && ws.send('{"type":"ping"}'), CLIENT_PING_MS);
  };
  ws.onmessage = (message) => {
    const msg = JSON.parse(message.data);
    switch (msg.type) {
      case "welcome":
        welcomed = true;
        S.reconnectDelay = RECONNECT_DELAY_MS_MIN;
        break;
      case "snapshot":
        msg.tasks.forEach(learnNames);
        S.tasks = new Map(msg.tasks.map((task) => [task.id, task]));
        msg.tasks.filter((task) => task.kind === "emergency").forEach((task) => S.seenEmergencies.add(task.id));
        S.truncated = msg.truncated ? msg.tasks.length : 0;
        S.lastIndex = msg.index;
        setConn("live", S.everConnected ? t("snapshot") : t("live"));
        S.everConnected = true;
        renderAll();
        break;
      case "events":
        applyEvents(msg);
        break;
      case "resumed":
        S.lastIndex = Math.max(S.lastIndex ?? 0, msg.index);
        setConn("live", t("resumed", { n: msg.replayed }));
        S.everConnected = true;
        renderAll();
        break;
      case "heartbeat":
        S.lastIndex = Math.max(S.lastIndex ?? 0, msg.index);
        break;
      case "resync":
        S.lastIndex = null; // too far behind: start over from a snapshot
        break;
      case "error":
        toast(msg.message, "error");
        if (msg.code === "unauthorized") sessionEndedOrRenewed();
        break;
    }
  };
  ws.onclose = () => {
    clearInterval(S.pingTimer);
    if (S.ws !== ws) return;
    setConn("reconnecting", t("reconnecting"));
    // Try the next node of the group; back off while none answers.
    S.nodeIndex = (S.nodeIndex + 1) % Math.max(1, S.members.length);
    if (!welcomed) S.reconnectDelay = Math.min(RECONNECT_DELAY_MS_MAX, S.reconnectDelay * 2);
    setTimeout(connect, S.reconnectDelay);
  };
}

// At most one entry per bureau of the country (a few thousand): the map never grows beyond it.
function learnNames(task) {
  if (task.origin_bureau_name) otherNames.set(task.origin_bureau, task.origin_bureau_name);
  if (task.assignee_bureau_name) otherNames.set(task.assignee_bureau, task.assignee_bureau_name);
}

function upsert(task) {
  learnNames(task);
  const existing = S.tasks.get(task.id);
  if (existing && existing.version > task.version) return false;
  S.tasks.set(task.id, task);
  return !existing;
}

function applyEvents(msg) {
  const fresh = [];
  for (const task of msg.tasks) {
    if (upsert(task)) fresh.push(task.id);
    if (task.kind === "emergency" && !S.seenEmergencies.has(task.id) && task.state === "dispatched") {
      S.seenEmergencies.add(task.id);
      raiseAlarm(task);
    }
    // An escalation to this user's bureau, a miss on a task this user dispatched, a handover
    // that is stuck or refused, or a jurisdiction dispute to settle here, alarms.
    const last = task.timeline[task.timeline.length - 1];
    const mine = task.origin_bureau === S.me.bureau;
    if (last && ((last.action === "escalate" && last.assignee_bureau === S.me.bureau) ||
        (["ack_missed", "completion_missed", "forward_stuck", "forward_refused", "acceptance_missed",
          "notification_missed", "severity_raised"].includes(last.action) && mine) ||
        (last.action === "receive" && task.received_from?.purpose === "dispute" && mine))) {
      raiseAlarm(task, t(`act.${last.action === "receive" ? "dispute" : last.action}`));
    }
  }
  for (const id of msg.removed) S.tasks.delete(id);
  S.lastIndex = msg.index;
  renderAll(new Set(fresh));
}

// ---------- alarm ----------
function raiseAlarm(task, label) {
  $("#alarm-text").textContent = `${label ? `${label} · ` : ""}${task.title} · ${bureauName(task.assignee_bureau)} · ${fmtTime(task.updated_at)}`;
  $("#alarm").hidden = false;
  if ($("#sound-toggle").checked) beep();
}
$("#alarm-dismiss").addEventListener("click", () => ($("#alarm").hidden = true));

function beep() {
  try {
    const ctx = new AudioContext();
    [0, 0.35, 0.7].forEach((at) => {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.2);
    });
  } catch (_) { /* audio unavailable */ }
}

// ---------- filters ----------
function setupFilters() {
  const tabs = $("#state-tabs");
  tabs.innerHTML = "";
  for (const tab of TABS) {
    const button = document.createElement("button");
    button.dataset.tab = tab;
    button.addEventListener("click", () => { S.filter.tab = tab; renderBoard(); });
    tabs.append(button);
  }
  $("#kind-filter").addEventListener("change", (e) => { S.filter.kind = e.target.value; renderBoard(); });
  $("#overdue-filter").addEventListener("change", (e) => { S.filter.overdue = e.target.checked; renderBoard(); });
  $("#mine-filter").addEventListener("change", (e) => { S.filter.mine = e.target.checked; renderBoard(); });
  $("#search").addEventListener("input", (e) => { S.filter.q = e.target.value.trim().toLowerCase(); renderBoard(); });
  $("#search").addEventListener("keydown", (e) => {
    const text = e.target.value.trim().toUpperCase();
    if (e.key !== "Enter") return;
    // A USCC opens its enterprise file; anything else searches every task, closed ones too.
    if (USCC_PATTERN.test(text)) openEntity(text);
    else if (e.target.value.trim().length >= 2) openSearch(e.target.value.trim());
  });
}

function matches(task) {
  const f = S.filter;
  if (f.tab === "all" ? !OPEN_STATES.includes(task.state) : f.tab === "acknowledged" ? task.state !== "acknowledged" : task.state !== f.tab) return false;
  if (f.kind && task.kind !== f.kind) return false;
  if (f.overdue && !isOverdue(task)) return false;
  if (f.mine && !handledByMe(task)) return false;
  if (f.bureau && !(within(task.assignee_bureau, f.bureau) || within(task.origin_bureau, f.bureau))) return false;
  if (f.q) {
    const hay = `${task.title} ${task.subject.name} ${task.subject.uscc || ""} ${task.id}`.toLowerCase();
    if (!hay.includes(f.q)) return false;
  }
  return true;
}

// ---------- rendering ----------
function renderAll(fresh) {
  if (S.view === "metrics") return;
  renderKpis();
  renderTree();
  renderBoard(fresh);
  if (S.selected) renderDrawer();
}

function renderKpis() {
  let ack = 0, progress = 0, review = 0, overdue = 0, emergency = 0;
  for (const task of S.tasks.values()) {
    if (task.state === "dispatched") ack++;
    if (task.state === "acknowledged" || task.state === "returned") progress++;
    if (task.state === "completed") review++;
    if (isOverdue(task)) overdue++;
    if (task.kind === "emergency" && OPEN_STATES.includes(task.state)) emergency++;
  }
  $("#kpi-ack").textContent = ack;
  $("#kpi-progress").textContent = progress;
  $("#kpi-review").textContent = review;
  $("#kpi-overdue").textContent = overdue;
  $("#kpi-emergency").textContent = emergency;
  document.title = `(${ack}) ${t("title")}`;
  document.querySelectorAll("#state-tabs button").forEach((button) => {
    const tab = button.dataset.tab;
    const n = [...S.tasks.values()].filter((task) => (tab === "all" ? OPEN_STATES.includes(task.state) : task.state === tab)).length;
    button.textContent = `${tab === "all" ? t("all") : t(`state.${tab}`)} (${n})`;
    button.classList.toggle("active", S.filter.tab === tab);
  });
  const kind = $("#kind-filter");
  const current = kind.value;
  kind.innerHTML = `<option value="">${t("all_kinds")}</option>` + KINDS.map((k) => `<option value="${k}">${t(`kind_.${k}`)}</option>`).join("");
  kind.value = current;
}

// The bureau tree of the user's province, stations included: names for everything the console
// shows. Loaded at sign-in and again after a change of the organisation.
async function loadBureaus() {
  const province = S.me.bureau === "000000" ? "000000" : `${S.me.bureau.slice(0, 2)}0000`;
  const tree = await api(`/api/v1/bureaus?root=${province}`);
  S.bureaus = new Map(tree.bureaus.map((b) => [b.code, b]));
}

function renderTree() {
  const counts = new Map();
  for (const task of S.tasks.values()) {
    if (!OPEN_STATES.includes(task.state) || !task.assignee_bureau) continue;
    for (let c = task.assignee_bureau, guard = 0; c && guard < 6; c = S.bureaus.get(c)?.parent, guard++) {
      const entry = counts.get(c) || { open: 0, overdue: 0 };
      entry.open++;
      if (isOverdue(task)) entry.overdue++;
      counts.set(c, entry);
    }
  }
  const root = S.me.bureau;
  const item = (code, depth) => {
    const b = S.bureaus.get(code);
    const c = counts.get(code) || { open: 0, overdue: 0 };
    const share = c.open ? c.overdue / c.open : 0;
    const tint = share > 0.3 ? "hot" : share > 0 ? "warm" : "";
    const selected = S.filter.bureau === code ? "selected" : "";
    const online = S.online.get(code);
    const dot = online === undefined ? "" :
      `<i class="presence ${online ? "on" : "off"}" data-online="${online}" title="${esc(t(online ? "online_n" : "nobody_online_short", { n: online }))}"></i>`;
    const station = b?.level === "station" ? `<b class="unit-badge">${esc(t("station_badge"))}</b>` : "";
    return `<li class="depth-${Math.min(depth, 3)} ${tint} ${selected}" data-bureau="${code}"><span>${dot}${station}${esc(b?.name || code)}</span>` +
      `<span class="count">${c.open}${c.overdue ? ` / <em>${c.overdue}</em>` : ""}</span></li>`;
  };
  // A unit closed or retired stays in the tree only while it has open work.
  const children = (code) => [...S.bureaus.values()].filter((b) => b.parent === code && (!b.retired || counts.get(b.code)));
  // The root's children always; deeper units (counties, then their stations) when their parent
  // is the one filtered to or lies above it, or when they have open work.
  const branch = (code, depth) => {
    let html = item(code, depth);
    const expanded = depth === 0 || (S.filter.bureau && within(S.filter.bureau, code));
    for (const child of children(code)) {
      if (depth === 0 || expanded || counts.get(child.code)) html += branch(child.code, depth + 1);
    }
    return html;
  };
  const html = branch(root, 0);
  const tree = $("#bureau-tree");
  tree.innerHTML = html;
  renderStationsButton();
  renderPeopleButton();
  tree.querySelectorAll("li").forEach((li) => li.addEventListener("click", () => {
    S.filter.bureau = S.filter.bureau === li.dataset.bureau || li.dataset.bureau === root ? null : li.dataset.bureau;
    renderAll();
  }));
}

function renderBoard(fresh = new Set()) {
  const rows = [...S.tasks.values()].filter(matches);
  rows.sort((a, b) => {
    const oa = isOverdue(a), ob = isOverdue(b);
    if (oa !== ob) return oa ? -1 : 1;
    const la = countdown(a).left ?? Infinity, lb = countdown(b).left ?? Infinity;
    return la !== lb ? la - lb : b.id - a.id;
  });
  $("#task-rows").innerHTML = rows.map((task) => {
    const cd = countdown(task);
    const cls = [task.kind === "emergency" ? "emergency" : "", cd.cls, fresh.has(task.id) ? "fresh" : "", S.selected === task.id ? "selected" : ""].join(" ");
    return `<tr data-task-id="${task.id}" data-state="${task.state}" class="${cls}">` +
      `<td><input type="checkbox" class="pick" data-pick="${task.id}" ${S.picked.has(task.id) ? "checked" : ""}> ${task.id}</td><td><span class="chip kind-${task.kind}">${esc(t(`kind_.${task.kind}`))}</span></td>` +
      `<td><span class="sev sev-${task.severity}">${esc(t(`sev.${task.severity}`))}</span></td>` +
      `<td class="title">${esc(task.title)}</td>` +
      `<td class="subject">${esc(task.subject.name)}${task.subject.uscc ? `<small><a href="#" data-uscc="${esc(task.subject.uscc)}">${esc(task.subject.uscc)}</a></small>` : "<small></small>"}</td>` +
      `<td>${esc(bureauName(task.handling_unit || task.assignee_bureau))}${task.lead_handler ? `<small class="handler">${esc(t("lead_short"))} ${esc(task.lead_handler.name)}</small>` : ""}</td>` +
      `<td class="state">${esc(t(`state.${task.state}`))}${taskBadges(task)}</td>` +
      `<td class="countdown ${cd.cls}" data-countdown="${task.id}">${cd.text}</td></tr>`;
  }).join("");
  $("#empty").hidden = rows.length > 0;
  $("#truncated").hidden = !S.truncated;
  $("#truncated").textContent = t("truncated", { n: S.truncated });
  $("#task-rows").querySelectorAll("tr").forEach((tr) => tr.addEventListener("click", () => openDrawer(Number(tr.dataset.taskId))));
  bindUsccLinks($("#task-rows"));
  bindPicks();
}

/// Badges after a task's state: signals merged into it, its complaint channel, and where it
/// stands between groups: handed over (to which group, and whether it arrived or is stuck),
/// received (from which group), or kept here for want of a group with jurisdiction.
function taskBadges(task) {
  const h = task.handover, r = task.received_from;
  const extra = [];
  if (task.intake && task.intake.signals > 1) extra.push(` <span class="fed">${esc(t("intake.badge", { n: task.intake.signals }))}</span>`);
  if (task.complaint) extra.push(` <span class="fed">${esc(t(`complaint.${task.complaint.channel}`))}</span>`);
  return extra.join("") + placeBadge(task, h, r);
}

function placeBadge(task, h, r) {
  if (h && h.stuck) return ` <span class="fed fed-alarm">${esc(t("fed.stuck"))}</span>`;
  if (h) return ` <span class="fed">${esc(t(h.delivered ? "fed.at" : "fed.sending", { g: h.to_group_name }))}</span>`;
  if (task.jurisdiction_unrouted) return ` <span class="fed fed-alarm">${esc(t("fed.unrouted"))}</span>`;
  if (r) return ` <span class="fed">${esc(t(`fed.from_${r.purpose}`, { g: r.from_group_name }))}</span>`;
  return "";
}

// Countdowns tick every second without re-rendering the board.
setInterval(() => {
  const now = new Date();
  $("#clock").textContent = fmtTime(now.toISOString(), false);
  $("#date").textContent = new Intl.DateTimeFormat(S.lang === "zh" ? "zh-CN" : "en-GB", { timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit", weekday: "short" }).format(now);
  document.querySelectorAll("[data-countdown]").forEach((cell) => {
    const task = S.tasks.get(Number(cell.dataset.countdown));
    if (!task) return;
    const cd = countdown(task);
    cell.textContent = cd.text;
    cell.className = `countdown ${cd.cls}`;
  });
}, 1000);

// ---------- drawer and actions ----------
function openDrawer(id) {
  S.selected = id;
  $("#drawer").hidden = false;
  renderDrawer();
  renderBoard();
}
$("#drawer-close").addEventListener("click", () => { S.selected = null; $("#drawer").hidden = true; renderBoard(); });

// The ledger decides which actions a task leaves open (its policy), and sends them by side with
// every task; the console shows the actions of the sides its user stands on (the same rule as
// the ledger's `policy::stands_on`).
function sidesOf(task) {
  const me = S.me;
  const sides = [];
  if (me.role === "command" && within(task.origin_bureau, me.bureau)) sides.push("dispatcher");
  const assignee = task.assignee_bureau;
  if (assignee && ((me.role === "operator" && (assignee === me.bureau || task.handling_unit === me.bureau)) ||
    (me.role === "command" && within(assignee, me.bureau)))) sides.push("assignee");
  if ((me.role === "command" || me.role === "operator") && task.origin_bureau === me.bureau) sides.push("desk");
  return sides;
}

function allowedActions(task) {
  const open = task.actions || {};
  // An on-site record is made on the inspector's phone (/m/), not at the desk.
  const actions = sidesOf(task).flatMap((side) => open[side] || [])
    .filter((action) => action !== "record_on_site" && personAllows(task, action));
  // Who reported is shown to the registering bureau's command centre only.
  if (task.complaint && S.me.role === "command" && task.origin_bureau === S.me.bureau) actions.push("show_reporter");
  return actions;
}

// Units a task may be dispatched to: active ones within the user's bureau, stations included.
function assigneeOptions(selected) {
  return [...S.bureaus.values()].filter((b) => within(b.code, S.me.bureau) && (!b.retired || b.code === selected))
    .map((b) => `<option value="${b.code}" ${b.code === selected ? "selected" : ""}>${esc(b.name)} ${b.code}</option>`).join("");
}

// Regions an entity may be registered in: active regions of GB/T 2260, never a station.
function regionOptions() {
  return [...S.bureaus.values()].filter((b) => within(b.code, S.me.bureau) && !b.retired && b.level !== "station")
    .map((b) => `<option value="${b.code}">${esc(b.name)} ${b.code}</option>`).join("");
}

function renderDrawer() {
  const task = S.tasks.get(S.selected);
  if (!task) { $("#drawer-body").innerHTML = ""; return; }
  const actions = allowedActions(task);
  const timeline = task.timeline.slice().reverse().map((e) =>
    `<li><time>${fmtTime(e.at)}</time> <b>${esc(t(`act.${e.action}`))}</b> ${esc(e.actor_name || e.actor)} (${esc(bureauName(e.actor_bureau))})` +
    `${e.handler && ["remind", "escalate", "ack_missed", "completion_missed"].includes(e.action) ? ` · ${esc(t("lead_short"))} ${esc(e.handler.name)}` : ""}` +
    `${e.assignee_bureau ? ` → ${esc(bureauName(e.assignee_bureau))}` : ""}${e.outcome ? ` · ${esc(t(`out.${e.outcome}`))}` : ""}` +
    `${e.note ? `<div class="note">${esc(e.note)}</div>` : ""}</li>`).join("");
  $("#drawer-body").innerHTML = `
    <h2><span class="chip kind-${task.kind}">${esc(t(`kind_.${task.kind}`))}</span> #${task.id} ${esc(task.title)}</h2>
    <p><span class="sev sev-${task.severity}">${esc(t(`sev.${task.severity}`))}</span> · <b id="drawer-state">${esc(t(`state.${task.state}`))}</b> · ${esc(t(`src.${task.source}`))} · v${task.version}</p>
    <div class="card"><h3>${t("subject")}</h3>
      <p>${esc(task.subject.name)}<br>${t("uscc")}: ${task.subject.uscc ? `<a href="#" class="uscc-link" data-uscc="${esc(task.subject.uscc)}" title="${esc(t("entity_file"))}">${esc(task.subject.uscc)}</a>` : "—"}<br>${t("region")}: ${esc(task.subject.region_name || task.subject.region_code)}<br>${esc(task.subject.address)}</p></div>
    <div class="card"><h3>${t("deadlines")}</h3>
      <p>${t("origin")}: ${esc(bureauName(task.origin_bureau))} · ${t("assignee")}: ${esc(bureauName(task.assignee_bureau))}<br>
      ${handlersLine(task)}
      ${t("ack_deadline")}: ${fmtTime(task.ack_deadline)} · ${t("complete_deadline")}: ${fmtTime(task.complete_deadline)}<br>
      ${task.extension_requested_deadline ? `${t("act.request_extension")}: ${fmtTime(task.extension_requested_deadline)}<br>` : ""}
      <span class="countdown ${countdown(task).cls}" data-countdown="${task.id}">${countdown(task).text}</span></p></div>
    ${federationCard(task)}
    ${intakeCard(task)}
    ${complaintCard(task)}
    ${inspectionCard(task)}
    ${jointCard(task)}
    ${siteRecordsCard(task)}
    ${task.description ? `<p class="description">${esc(task.description)}</p>` : ""}
    <div class="actions">${actions.map((a) => `<button data-action="${a}" class="${a === "ack" || a === "close" ? "primary" : ""}">${esc(t(`act.${a}`))}</button>`).join("")}</div>
    <div id="action-form"></div>
    <h3>${t("timeline")}</h3><ol class="timeline">${timeline}</ol>`;
  $("#drawer-body").querySelectorAll("[data-action]").forEach((button) => button.addEventListener("click", () => actionForm(task, button.dataset.action)));
  bindUsccLinks($("#drawer-body"));
  showAttachments($("#drawer-body"));
  bindJointForm(task);
}

// ---------- the enterprise file (一企一档) ----------
// Everything the group holds about one market entity that this user may see, closed tasks too,
// newest first, from GET /api/v1/entities/{uscc}; reached from any USCC on the page, or by
// typing a USCC into the search box and pressing Enter.
const USCC_PATTERN = /^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$/;

function bindUsccLinks(root) {
  root.querySelectorAll("[data-uscc]").forEach((link) => link.addEventListener("click", (event) => {
    event.preventDefault();
    event.stopPropagation();
    openEntity(link.dataset.uscc);
  }));
}

async function openEntity(uscc, cursor = null) {
  S.selected = null;
  $("#drawer").hidden = false;
  const body = $("#drawer-body");
  let file;
  try {
    file = await api(`/api/v1/entities/${encodeURIComponent(uscc)}?limit=50${cursor ? `&cursor=${cursor}` : ""}`);
  } catch (error) {
    body.innerHTML = `<p class="error">${esc(error.message)}</p>`;
    return;
  }
  body.innerHTML = `
    <h2 id="entity-title">${esc(t("entity_file"))} · ${esc(file.uscc)}</h2>
    <p>${file.names.map(esc).join(" / ") || ""}</p>
    ${riskFileCard(file.risk)}
    ${file.tasks.length ? taskTable(file.tasks, "entity-tasks") : `<p class="muted">${esc(t("entity_none"))}</p>`}
    ${file.next_cursor ? `<button id="entity-more">${esc(t("more"))}</button>` : ""}`;
  bindTaskTable(body, file.tasks);
  if (file.next_cursor) $("#entity-more").addEventListener("click", () => openEntity(uscc, file.next_cursor));
}

// The entity's risk file: the credit-risk system's class, the ledger's events that raise a
// draw's class, and how often it was inspected this year against the group's cap. Internal.
function riskFileCard(risk) {
  if (!risk) return "";
  const credit = risk.credit_risk_class ? `${t(`risk.${risk.credit_risk_class}`)} · ${fmtTime(risk.classified_at)}` : t("erisk.none");
  const cap = risk.yearly_cap ? ` / ${t("erisk.cap")} ${risk.yearly_cap}` : "";
  const years = risk.inspections_by_year.map((y) => `${y.year}: ${y.inspections}`).join("，");
  const lines = [`${esc(t("erisk.credit"))}: ${esc(credit)}`,
    `${esc(t("erisk.findings"))} ${risk.findings} · ${esc(t("erisk.complaints"))} ${risk.complaints} · ${esc(t("erisk.overdue"))} ${risk.overdue_tasks}`,
    `${esc(t("erisk.this_year"))}: ${risk.inspections_this_year}${esc(cap)}${years ? ` · ${esc(t("erisk.years"))} ${esc(years)}` : ""}`];
  if (risk.at_cap) lines.push(`<strong>${esc(t("erisk.at_cap"))}</strong>`);
  return `<div class="card" id="entity-risk"><h3>${esc(t("erisk.title"))}</h3><p>${lines.join("<br>")}</p></div>`;
}

// A table of tasks in the drawer (the enterprise file, search results); a row opens its task.
function taskTable(tasks, className) {
  tasks.forEach(learnNames);
  const rows = tasks.map((task) =>
    `<tr data-entity-task="${task.id}"><td>#${task.id}</td><td>${esc(t(`kind_.${task.kind}`))}</td><td>${esc(task.title)}</td>` +
    `<td>${esc(task.subject.name)}</td><td>${esc(bureauName(task.assignee_bureau))}</td><td>${esc(t(`state.${task.state}`))}</td><td>${fmtTime(task.updated_at)}</td></tr>`).join("");
  return `<table class="tasks ${className}"><tbody>${rows}</tbody></table>`;
}

function bindTaskTable(root, tasks) {
  root.querySelectorAll("[data-entity-task]").forEach((row) => row.addEventListener("click", () => {
    const task = tasks.find((x) => String(x.id) === row.dataset.entityTask);
    upsert(task);
    openDrawer(task.id);
  }));
}

// ---------- search ----------
// Every task of the group this user may see, open or closed, whose enterprise name or title
// holds the words typed (two characters of Chinese are enough), from GET /api/v1/search.
async function openSearch(q) {
  S.selected = null;
  $("#drawer").hidden = false;
  const body = $("#drawer-body");
  let found;
  try {
    found = await api(`/api/v1/search?q=${encodeURIComponent(q)}&limit=50`);
  } catch (error) {
    body.innerHTML = `<p class="error">${esc(error.message)}</p>`;
    return;
  }
  body.innerHTML = `
    <h2 id="search-title">${esc(t("search_results"))} · ${esc(found.q)}</h2>
    ${found.tasks.length ? taskTable(found.tasks, "search-tasks") : `<p class="muted">${esc(t("search_none"))}</p>`}
    ${found.more ? `<p class="muted">${esc(t("search_more"))}</p>` : ""}`;
  bindTaskTable(body, found.tasks);
}

function intakeCard(task) {
  const i = task.intake;
  if (!i) return "";
  const links = i.evidence.map((href) => `<a href="${esc(href)}" target="_blank" rel="noopener noreferrer">${esc(href)}</a>`).join("<br>");
  return `<div class="card"><h3>${t("intake.title")}</h3><p>${esc(t("intake.summary", { source: i.source, n: i.signals }))}<br>` +
    `${t("intake.range")}: ${fmtTime(i.first_observed)} – ${fmtTime(i.last_observed)}<br>${links}</p></div>`;
}

function inspectionCard(task) {
  const i = task.inspection;
  if (!i) return "";
  const lines = [`${t("insp.campaign")}: #${i.campaign} ${esc(i.campaign_name)}`,
    `${t("insp.items")}: ${esc(i.items.map((item) => item.name).join("、"))}`,
    `${t("insp.inspectors")}: ${esc(i.inspectors.join("、"))}`,
    `${t("insp.risk")}: ${esc(t(`risk.${i.risk_class}`))}${i.top_up ? ` · ${t("insp.top_up")}` : ""}`];
  if (i.publication) lines.push(`${t(`insp.${i.publication}`)}${i.publish_deadline && i.publication === "pending" ? ` · ${t("insp.publish_by")}: ${fmtTime(i.publish_deadline)}` : ""}`);
  return `<div class="card"><h3>${t("insp.title")}</h3><p>${lines.join("<br>")}</p></div>`;
}

// ---------- joint inspections with other departments (部门联合抽查) ----------
// The departments of the group (names, and the signed-in inspector's own), from
// GET /api/v1/departments, read once per sign-in when a joint inspection is first shown.
function loadDepartments() {
  // A failed read shows codes for names this time and is tried again at the next drawer.
  S.departmentsLoading ||= api("/api/v1/departments")
    .catch(() => { S.departmentsLoading = null; return { departments: [], mine: null }; })
    .then((departments) => (S.departments = departments));
  return S.departmentsLoading;
}

function departmentName(code) {
  const found = S.departments?.departments.find((d) => d.code === code);
  return found ? found.name : code;
}

/// The departments whose items the inspection has, each one's part (its last), and, for the
/// department's own inspector on the team while it is worked, the form for its part.
function jointCard(task) {
  const i = task.inspection;
  if (!i || !i.departments.length) return "";
  if (!S.departments) loadDepartments().then(() => { if (S.selected === task.id) renderDrawer(); });
  const last = {};
  for (const part of i.department_parts) last[part.department] = part;
  const lines = i.departments.map((code) => {
    const part = last[code];
    return part
      ? `${esc(departmentName(code))}：${esc(t(`out.${part.outcome}`))} · ${esc(part.summary)} <span class="muted">(${esc(part.inspector)} ${fmtTime(part.at)})</span>`
      : `${esc(departmentName(code))}：<span class="warn">${esc(t("joint.awaited"))}</span>`;
  });
  const mine = S.departments?.mine;
  const open = ["dispatched", "acknowledged", "returned"].includes(task.state);
  const onTeam = S.me?.person?.inspector && i.inspectors.includes(S.me.person.inspector);
  const form = mine && open && onTeam && i.departments.includes(mine)
    ? `<form id="joint-form" class="action-form"><h4>${esc(t("joint.enter"))}</h4>
        <label>${t("outcome")}<select name="outcome">${INSPECTION_OUTCOMES.map((o) => `<option value="${o}">${esc(t(`out.${o}`))}</option>`).join("")}</select></label>
        <label>${esc(t("joint.summary"))}<textarea name="summary" required maxlength="2000"></textarea></label>
        <button type="submit" class="primary">${t("confirm")}</button></form>`
    : "";
  return `<div class="card" id="joint-card"><h3>${esc(t("joint.title"))}</h3><p>${lines.join("<br>")}</p>${form}</div>`;
}

function bindJointForm(task) {
  const form = $("#joint-form");
  if (!form) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form).entries());
    try {
      const updated = await api(`/api/v1/tasks/${task.id}/department-part`, {
        method: "POST",
        headers: { "Idempotency-Key": `console-${crypto.randomUUID ? crypto.randomUUID() : Math.random()}` },
        body: JSON.stringify({ outcome: data.outcome, summary: data.summary }),
      });
      upsert(updated);
      toast(`${t("act.department_part")} · ${t("done")}`, "ok");
      renderAll();
    } catch (error) {
      toast(`${t("failed")}: ${error.message}`, "error");
    }
  });
}

function complaintCard(task) {
  const c = task.complaint;
  if (!c) return "";
  const lines = [`${t(`complaint.${c.channel}`)} · ${t(c.real_name ? "complaint.real_name" : "complaint.anonymous")}`,
    `${t("complaint.accept_by")}: ${fmtTime(c.accept_deadline)}`];
  if (c.decision) lines.push(`${t(`complaint.${c.decision}`)} ${fmtTime(c.decided_at)}`);
  if (c.notify_deadline) lines.push(`${t("complaint.notify_by")}: ${fmtTime(c.notify_deadline)}${c.notified_at ? ` · ${t("act.notify_reporter")} ${fmtTime(c.notified_at)}` : ""}`);
  return `<div class="card"><h3>${t("complaint.title")}</h3><p>${lines.join("<br>")}</p><p id="reporter"></p></div>`;
}

/// Who reported is fetched only on request, from the one route that shows it.
async function showReporter(task) {
  try {
    const r = await api(`/api/v1/tasks/${task.id}/reporter`);
    $("#reporter").textContent = `${t("complaint.reporter")}: ${r.name || "—"} · ${r.phone || "—"}`;
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

function federationCard(task) {
  const h = task.handover, r = task.received_from;
  if (!h && !r && !task.jurisdiction_unrouted) return "";
  const lines = [];
  if (h) {
    lines.push(`${t(`fed.purpose_${h.purpose}`)} → ${esc(h.to_group_name)} · ${t("fed.forward_id")} ${esc(h.forward_id)}`);
    lines.push(h.delivered ? `${t("act.forward_delivered")} ${fmtTime(h.delivered_at)} · #${h.target_task_id}` : esc(t(h.stuck ? "fed.stuck" : "fed.sending", { g: h.to_group_name })));
  }
  if (r) lines.push(`${esc(t(`fed.from_${r.purpose}`, { g: r.from_group_name }))} · ${t("fed.forward_id")} ${esc(r.forward_id)} · #${r.from_task_id}`);
  if (task.jurisdiction_unrouted) lines.push(esc(t("fed.unrouted_long")));
  return `<div class="card"><h3>${t("fed.title")}</h3><p>${lines.join("<br>")}</p></div>`;
}

function actionForm(task, action) {
  // Acknowledge and close need no input: one click.
  if (action === "show_reporter") return showReporter(task);
  if (["ack", "close", "resume", "accept_complaint", "publish", "claim"].includes(action)) return act(task, action, {});
  if (action === "assign" || action === "hand_down") return handlerForm(task, action);
  // The ledger's rule of which actions must say why (sent with /api/v1/me).
  const needsReason = S.me.actions.some((rule) => rule.name === action && rule.requires_note);
  const outcomes = task.inspection ? INSPECTION_OUTCOMES : OUTCOMES;
  $("#action-form").innerHTML = `<form class="action-form">
    ${action === "designate" ? `<label>${t("fed.group")}<input name="group" required pattern="[0-9]{6}" maxlength="6" placeholder="440100"></label>` : ""}
    ${action === "dispatch" ? `<label>${t("assignee")}<select name="assignee_bureau">${assigneeOptions(task.assignee_bureau)}</select></label>` : ""}
    ${action === "complete" ? `<label>${t("outcome")}<select name="outcome">${outcomes.map((o) => `<option value="${o}">${esc(t(`out.${o}`))}</option>`).join("")}</select></label>` : ""}
    <label>${t("note")}<textarea name="note" ${needsReason ? "required" : ""} maxlength="2000"></textarea></label>
    <button type="submit" class="primary" data-confirm="${action}">${t("confirm")}</button></form>`;
  $("#action-form form").addEventListener("submit", (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(e.target).entries());
    if (needsReason && !data.note.trim()) return toast(t("reason_required"), "error");
    act(task, action, data);
  });
}

async function act(task, action, fields) {
  try {
    const updated = await api(`/api/v1/tasks/${task.id}/${action}`, {
      method: "POST",
      headers: { "Idempotency-Key": `console-${crypto.randomUUID ? crypto.randomUUID() : Math.random()}` },
      body: JSON.stringify({ version: task.version, ...fields }),
    });
    upsert(updated);
    toast(`${t(`act.${action}`)} · ${t("done")}`, "ok");
    renderAll();
    if (action === "dispatch") warnIfNobodyOnline(updated.assignee_bureau);
  } catch (error) {
    if (error.code === "version_conflict") {
      toast(t("version_changed"), "warn");
      upsert(await api(`/api/v1/tasks/${task.id}`));
      renderAll();
    } else {
      toast(`${t("failed")}: ${error.message}`, "error");
    }
  }
}

// Who has a console open, for the dots in the bureau tree: the user's bureau and the bureaus
// directly below it, and below the one the tree is filtered to. Lower bureaus' operators see
// only their own work and are not polled for.
async function refreshPresence() {
  if (!S.me || S.me.role === "operator" || S.me.role === "department" || S.presenceOff) return;
  const roots = [...new Set([S.me.bureau, S.filter.bureau].filter(Boolean))];
  for (const root of roots) {
    try {
      const presence = await api(`/api/v1/presence?bureau=${root}`);
      for (const b of presence.bureaus) S.online.set(b.code, b.online);
    } catch (error) {
      if (error.code === "presence_off") S.presenceOff = true;
      return;
    }
  }
  if (S.view !== "metrics") renderTree();
}

// After a dispatch: when nobody of the assignee bureau has a console open, say so, so the
// dispatcher can phone them. Presence needs Redis on the server; without it there is no warning.
async function warnIfNobodyOnline(bureau) {
  if (!bureau) return;
  try {
    const presence = await api(`/api/v1/presence?bureau=${bureau}`);
    const own = presence.bureaus.find((b) => b.code === bureau);
    if (own && own.online === 0) toast(`${own.name} ${t("nobody_online")}`, "warn");
  } catch (_) {
    // presence_off (no Redis) or not allowed: nothing to warn about.
  }
}

// ---------- create ----------
function fillSelect(select, values, prefix) {
  select.innerHTML = values.map((v) => `<option value="${v}">${esc(t(`${prefix}.${v}`))}</option>`).join("");
}
$("#create-open").addEventListener("click", () => {
  const form = $("#create-form");
  fillSelect(form.kind, CREATABLE_KINDS, "kind_");
  fillSelect(form.severity, SEVERITIES, "sev");
  form.severity.value = "normal";
  fillSelect(form.source, SOURCES, "src");
  form.region_code.innerHTML = regionOptions();
  form.assignee_bureau.innerHTML = `<option value="">—</option>` + assigneeOptions(null);
  $("#create-error").textContent = "";
  $("#create-dialog").showModal();
});
$("#create-cancel").addEventListener("click", () => $("#create-dialog").close());
$("#create-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = Object.fromEntries(new FormData(e.target).entries());
  const body = {
    kind: f.kind, severity: f.severity, source: f.source, title: f.title, description: f.description,
    subject: { name: f.subject_name, region_code: f.region_code, address: f.address, ...(f.uscc ? { uscc: f.uscc } : {}) },
  };
  try {
    const key = crypto.randomUUID ? crypto.randomUUID() : String(Math.random());
    const created = await api("/api/v1/tasks", { method: "POST", headers: { "Idempotency-Key": `console-create-${key}` }, body: JSON.stringify(body) });
    upsert(created);
    if (f.assignee_bureau) {
      const dispatched = await api(`/api/v1/tasks/${created.id}/dispatch`, {
        method: "POST", headers: { "Idempotency-Key": `console-dispatch-${key}` },
        body: JSON.stringify({ version: created.version, assignee_bureau: f.assignee_bureau }),
      });
      upsert(dispatched);
      warnIfNobodyOnline(f.assignee_bureau);
    }
    $("#create-dialog").close();
    e.target.reset();
    toast(`${t("act.create")} #${created.id} · ${t("done")}`, "ok");
    renderAll();
  } catch (error) {
    $("#create-error").textContent = error.message;
  }
});

applyLanguage();
// Signed in again from the kept token once every script of the page is loaded.
document.addEventListener("DOMContentLoaded", () => { if (S.token) login(S.token); });
