// The wall screen (大屏): the command centre's live picture at a distance. Signed in once with a
// leadership or command token, then left running for weeks: it follows the /ws event stream
// (snapshot, then events tagged with their log index; resumes by index on any node of the
// group), shows when it is behind or cut off, keeps every collection bounded, and reloads
// itself when the node it came from runs another build. Read-only: nothing here is clicked.
"use strict";

const STAGE_WIDTH = 1920;
const STAGE_HEIGHT = 1080;
const TZ = "Asia/Shanghai";
/// Rows each side list shows; the feed keeps this many events.
const LIST_ROWS = 9;
const FEED_ROWS = 12;
/// Open tasks kept at most (a snapshot sends up to 2,000; events add): the page never grows.
const TASKS_KEPT_MAX = 5000;
/// Without a message for this long (heartbeats come every few seconds) the data is stale.
const STALE_MS = 15_000;
const RECONNECT_DELAY_MS_MIN = 300;
const RECONNECT_DELAY_MS_MAX = 5000;
const CLIENT_PING_MS = 5000;
/// The server-wide counts per bureau and the headline figures, read again this often.
const COUNTS_REFRESH_MS = 60_000;
const FIGURES_REFRESH_MS = 60_000;
const CAMPAIGNS_REFRESH_MS = 300_000;
/// How often the page asks whether the node runs another build (then it reloads).
const BUILD_CHECK_MS = 60_000;
/// A list longer than its rows turns a page this often.
const ROTATE_MS = 8000;
/// A tile flashes this long after an emergency lands in it (and while it waits for its ack).
const FLASH_MS = 30_000;
const TERMINAL = ["closed", "cancelled"];

const W = {
  token: localStorage.getItem("xt-wall-token") || "",
  me: null,
  members: [],
  nodeIndex: 0,
  bureaus: new Map(),     // code -> {code, name, parent}
  tiles: [],              // codes of the tiles: the scope itself, then its children
  counts: new Map(),      // tile code -> {open, overdue}
  tasks: new Map(),       // id -> task (open work in scope)
  feed: [],               // the newest events, newest first
  emergencies: new Map(), // id -> emergency task waiting for its ack
  flashUntil: new Map(),  // tile code -> time its flash ends
  lastIndex: null,
  lastMessageAt: 0,
  replaying: false,
  sound: false,
  ws: null,
  reconnectDelay: RECONNECT_DELAY_MS_MIN,
  rotation: 0,
  build: document.querySelector('meta[name="xietong-build"]')?.content || "",
};

const $ = (sel) => document.querySelector(sel);
const SECURE = location.protocol === "https:";
const apiBase = () => `${SECURE ? "https" : "http"}://${W.members[W.nodeIndex] || location.host}`;

/// Personal data never reaches the page unmasked (脱敏): mobile numbers and resident ID numbers
/// in any text the wall shows. Company names and USCCs stay in full.
function mask(text) {
  return String(text ?? "")
    .replace(/(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)/g, "$1****$2")
    .replace(/(?<![\dA-Za-z])(\d{6})(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(\d{3}[\dXx])(?![\dA-Za-z])/g, "$1********$2");
}
/// Text for the page: masked, then escaped.
const txt = (s) => mask(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

const parts = (date, options) => Object.fromEntries(new Intl.DateTimeFormat("zh-CN", { timeZone: TZ, hourCycle: "h23", ...options })
  .formatToParts(date).map((p) => [p.type, p.value]));
const hhmm = (iso) => { const p = parts(new Date(iso), { hour: "2-digit", minute: "2-digit" }); return `${p.hour}:${p.minute}`; };
const beijingDay = (date) => { const p = parts(date, { year: "numeric", month: "2-digit", day: "2-digit" }); return `${p.year}-${p.month}-${p.day}`; };
function span(ms) {
  const minutes = Math.floor(Math.abs(ms) / 60000);
  if (minutes < 60) return `${minutes}分`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}时${minutes % 60}分`;
  return `${Math.floor(hours / 24)}天${hours % 24}时`;
}
const bureauName = (code) => W.bureaus.get(code)?.name || code || "—";
const KIND = { risk_alert: "风险预警", lead: "线索", emergency: "突发", assignment: "交办", referral: "移送", inspection: "抽查" };
const STATE = { created: "待派发", dispatched: "待签收", acknowledged: "办理中", completed: "待审核", returned: "已退回", closed: "已办结", cancelled: "已撤销" };

// ---------- the stage: one transform ----------
/// `?seams=N`: the wall is N panels wide (2, 3 or 4). The columns' gaps are then laid on the
/// seams between panels, so no text is cut by a bezel: for 3 the side columns end at a third;
/// for 2 and 4 the centre is symmetric about the middle seam and holds an even number of tile
/// columns (its middle gap on the seam), and for 4 the sides end at a quarter.
const [SEAMS, SEAM_ROWS] = (new URLSearchParams(location.search).get("seams") || "").split("x").map((n) => Number(n) || 0);
/// Space kept clear on each side of a horizontal seam, in stage pixels.
const SEAM_MARGIN = 10;
const SIDE_WIDTH = { 3: 596, 4: 436 }[SEAMS] || 480;
function fitStage() {
  $("#stage").style.gridTemplateColumns = `${SIDE_WIDTH}px minmax(0, 1fr) ${SIDE_WIDTH}px`;
  const scale = Math.min(innerWidth / STAGE_WIDTH, innerHeight / STAGE_HEIGHT);
  const left = (innerWidth - STAGE_WIDTH * scale) / 2;
  const top = (innerHeight - STAGE_HEIGHT * scale) / 2;
  $("#stage").style.transform = `translate(${left}px, ${top}px) scale(${scale})`;
}
addEventListener("resize", fitStage);

// ---------- sign-in ----------
async function api(path) {
  const response = await fetch(apiBase() + path, { headers: { Authorization: `Bearer ${W.token}` }, cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body?.error?.message || response.statusText), { status: response.status });
  return body;
}

async function login(token) {
  W.token = token.trim();
  try {
    W.me = await api("/api/v1/me");
    if (!["leadership", "command"].includes(W.me.role)) throw new Error("大屏需要领导或指挥中心账号");
  } catch (error) {
    $("#login-error").textContent = error.message;
    localStorage.removeItem("xt-wall-token");
    return;
  }
  localStorage.setItem("xt-wall-token", W.token);
  const cluster = await api("/api/v1/cluster").catch(() => null);
  const members = cluster ? cluster.members.map((m) => m.addr) : [];
  W.members = members.includes(location.host) ? members : [location.host];
  W.nodeIndex = Math.max(0, W.members.indexOf(location.host));
  const tree = await api(`/api/v1/bureaus?root=${W.me.bureau}`);
  W.bureaus = new Map(tree.bureaus.map((b) => [b.code, b]));
  W.tiles = [W.me.bureau, ...tree.bureaus.filter((b) => b.parent === W.me.bureau).map((b) => b.code)];
  $("#login").hidden = true;
  $("#stage").hidden = false;
  $("#w-title").textContent = `${W.me.bureau_name || ""} 指挥调度平台`;
  $("#w-scope").textContent = `${W.me.bureau_name || W.me.bureau} 辖区`;
  $("#w-sound").hidden = false;
  fitStage();
  layoutTiles();
  connect();
  refreshCounts();
  refreshFigures();
  refreshCampaigns();
  setInterval(refreshCounts, COUNTS_REFRESH_MS);
  setInterval(refreshFigures, FIGURES_REFRESH_MS);
  setInterval(refreshCampaigns, CAMPAIGNS_REFRESH_MS);
  setInterval(checkBuild, BUILD_CHECK_MS);
  tick();
  setInterval(tick, 1000);
  setInterval(() => { W.rotation += 1; renderLists(); }, ROTATE_MS);
}
$("#login-button").addEventListener("click", () => login($("#login-token").value));
$("#login-token").addEventListener("keydown", (e) => e.key === "Enter" && login(e.target.value));
$("#w-sound").addEventListener("click", () => {
  W.sound = !W.sound;
  $("#w-sound").textContent = W.sound ? "声音已开启" : "开启声音";
});

// ---------- the live stream ----------
function setConn(state, text) {
  const el = $("#w-conn");
  el.dataset.state = state;
  el.textContent = text;
}

function connect() {
  setConn("connecting", "连接中");
  const ws = new WebSocket(`${SECURE ? "wss" : "ws"}://${W.members[W.nodeIndex] || location.host}/ws`);
  W.ws = ws;
  let welcomed = false;
  let ping = null;
  ws.onopen = () => {
    const hello = { type: "hello", token: W.token, scope: W.me.bureau };
    if (W.lastIndex !== null) hello.since = W.lastIndex;
    W.replaying = W.lastIndex !== null;
    ws.send(JSON.stringify(hello));
    ping = setInterval(() => ws.readyState === 1 && ws.send('{"type":"ping"}'), CLIENT_PING_MS);
  };
  ws.onmessage = (message) => {
    const msg = JSON.parse(message.data);
    W.lastMessageAt = Date.now();
    switch (msg.type) {
      case "welcome":
        welcomed = true;
        W.reconnectDelay = RECONNECT_DELAY_MS_MIN;
        break;
      case "snapshot":
        W.tasks = new Map();
        W.emergencies = new Map();
        msg.tasks.forEach((task) => keep(task, false));
        takeCounts(msg.counts);
        W.lastIndex = msg.index;
        W.replaying = false;
        setConn("live", "实时");
        render();
        break;
      case "events":
        for (const task of msg.tasks) change(task);
        for (const id of msg.removed) forget(id);
        W.lastIndex = msg.index;
        render();
        break;
      case "resumed":
        W.lastIndex = Math.max(W.lastIndex ?? 0, msg.index);
        W.replaying = false;
        setConn("live", "实时");
        break;
      case "heartbeat":
        W.lastIndex = Math.max(W.lastIndex ?? 0, msg.index);
        break;
      case "resync":
        W.lastIndex = null;
        break;
      case "error":
        if (msg.code === "unauthorized") { localStorage.removeItem("xt-wall-token"); location.reload(); }
        break;
    }
  };
  ws.onclose = () => {
    clearInterval(ping);
    if (W.ws !== ws) return;
    setConn("reconnecting", "重连中");
    W.nodeIndex = (W.nodeIndex + 1) % Math.max(1, W.members.length);
    if (!welcomed) W.reconnectDelay = Math.min(RECONNECT_DELAY_MS_MAX, W.reconnectDelay * 2);
    setTimeout(connect, W.reconnectDelay);
  };
}

/// The tile a bureau's work counts under: the child of the scope it lies in, or the scope.
function tileOf(code) {
  for (let c = code, guard = 0; c && guard < 6; c = W.bureaus.get(c)?.parent, guard++) {
    if (W.tiles.includes(c) && (c !== W.me.bureau || code === W.me.bureau)) return c;
  }
  return code === W.me.bureau ? code : null;
}
const isOpen = (task) => !TERMINAL.includes(task.state);
const isOverdue = (task, now) => task.running_deadline && Date.parse(task.running_deadline) < now;

function contribution(task) {
  if (!task || !isOpen(task) || !task.assignee_bureau) return null;
  const tile = tileOf(task.assignee_bureau);
  return tile ? { tile, overdue: isOverdue(task, Date.now()) ? 1 : 0 } : null;
}
function addTo(part, sign) {
  if (!part) return;
  const counts = W.counts.get(part.tile) || { open: 0, overdue: 0 };
  counts.open = Math.max(0, counts.open + sign);
  counts.overdue = Math.max(0, counts.overdue + sign * part.overdue);
  W.counts.set(part.tile, counts);
}

function takeCounts(counts) {
  W.counts = new Map();
  for (const [bureau, c] of Object.entries(counts || {})) {
    const tile = tileOf(bureau);
    if (!tile) continue;
    const sum = W.counts.get(tile) || { open: 0, overdue: 0 };
    sum.open += c.open;
    sum.overdue += c.overdue;
    W.counts.set(tile, sum);
  }
}

function keep(task, live) {
  if (!isOpen(task)) { W.tasks.delete(task.id); } else { W.tasks.set(task.id, task); }
  if (W.tasks.size > TASKS_KEPT_MAX) W.tasks.delete(W.tasks.keys().next().value);
  const waiting = task.kind === "emergency" && task.state === "dispatched";
  if (waiting && !W.emergencies.has(task.id)) {
    W.emergencies.set(task.id, task);
    const tile = tileOf(task.assignee_bureau);
    if (tile) W.flashUntil.set(tile, Date.now() + FLASH_MS);
    if (live && !W.replaying) alarm(task);
  } else if (!waiting) {
    W.emergencies.delete(task.id);
  } else {
    W.emergencies.set(task.id, task);
  }
}

function change(task) {
  const before = W.tasks.get(task.id);
  if (before && before.version > task.version) return;
  addTo(contribution(before), -1);
  addTo(contribution(task), +1);
  keep(task, true);
  W.feed.unshift({ task, at: Date.now() });
  W.feed.length = Math.min(W.feed.length, FEED_ROWS);
}

function forget(id) {
  addTo(contribution(W.tasks.get(id)), -1);
  W.tasks.delete(id);
  W.emergencies.delete(id);
}

// ---------- sound ----------
function alarm(task) {
  if (!W.sound) return;
  try {
    const ctx = new AudioContext();
    [0, 0.4, 0.8, 1.2].forEach((at) => {
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.frequency.value = 960;
      gain.gain.value = 0.25;
      osc.connect(gain).connect(ctx.destination);
      osc.start(ctx.currentTime + at);
      osc.stop(ctx.currentTime + at + 0.25);
    });
    setTimeout(() => ctx.close(), 2000);
  } catch (_) { /* no audio device */ }
  if ("speechSynthesis" in window) {
    const line = new SpeechSynthesisUtterance(`收到突发事件，${bureauName(task.assignee_bureau)}，请及时签收`);
    line.lang = "zh-CN";
    speechSynthesis.speak(line);
  }
}

// ---------- the figures, counts and campaigns read by REST ----------
async function refreshCounts() {
  try {
    const snapshot = await api(`/api/v1/console/snapshot?scope=${W.me.bureau}`);
    takeCounts(snapshot.counts);
    renderTiles();
  } catch (_) { /* the stream keeps the counts roughly right until the next try */ }
}

async function refreshFigures() {
  const today = new Date();
  const weekday = new Date(`${beijingDay(today)}T00:00:00Z`).getUTCDay(); // 0: Sunday
  const monday = new Date(today.getTime() - ((weekday + 6) % 7) * 86400000);
  try {
    const [day, week] = await Promise.all([
      api(`/api/v1/metrics/response?bureau=${W.me.bureau}&from=${beijingDay(today)}&to=${beijingDay(today)}`),
      api(`/api/v1/metrics/response?bureau=${W.me.bureau}&from=${beijingDay(monday)}&to=${beijingDay(today)}`),
    ]);
    renderFigures("#w-kpi-today", day.total);
    renderFigures("#w-kpi-week", week.total);
  } catch (_) { /* shown again at the next refresh */ }
}

async function refreshCampaigns() {
  try {
    const list = await api("/api/v1/campaigns");
    W.campaigns = list.campaigns.filter((c) => c.state === "drawn").slice(0, 4);
  } catch (_) {
    W.campaigns = []; // a leadership account does not manage campaigns
  }
  renderLists();
}

async function checkBuild() {
  try {
    const response = await fetch("/wall", { method: "HEAD", cache: "no-store" });
    const build = response.headers.get("x-xietong-build");
    if (build && W.build && build !== W.build) location.reload();
  } catch (_) { /* the node is down: the stream reconnects elsewhere */ }
}

// ---------- rendering ----------
const rate = (value) => (value == null ? "—" : `${(value * 100).toFixed(1)}%`);
function renderFigures(target, total) {
  const figures = [
    ["派发", total.received, false], ["在办", total.open_now, false], ["超期", total.overdue_now, total.overdue_now > 0],
    ["按时签收率", rate(total.ack_on_time_rate), false], ["办结率", rate(total.completion_rate), false], ["督办", total.escalations, total.escalations > 0],
  ];
  $(target).innerHTML = figures.map(([label, value, bad]) =>
    `<div class="kpi${bad ? " alarm" : ""}"><b>${txt(typeof value === "number" ? value.toLocaleString("zh-CN") : value)}</b><span>${txt(label)}</span></div>`).join("");
}

function layoutTiles() {
  const count = W.tiles.length;
  let columns = Math.max(2, Math.ceil(Math.sqrt(count)));
  if ((SEAMS === 2 || SEAMS === 4) && columns % 2) columns += 1;
  const rows = Math.max(1, Math.ceil(count / columns));
  $("#w-tiles").style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
  $("#w-tiles").style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
  $("#w-tiles").innerHTML = W.tiles.map((code) =>
    `<div class="tile" data-bureau="${txt(code)}"><div class="name">${txt(code === W.me.bureau ? `本级 ${bureauName(code)}` : bureauName(code))}</div><div class="figures"></div></div>`).join("");
  if (SEAM_ROWS >= 2) layoutRowsOnSeams(columns, rows);
}

/// `?seams=CxR` with R ≥ 2: a wall R panels tall. The space from `top` to `bottom` (stage
/// pixels) split into bands that keep clear of the horizontal seams.
function bandsBetween(top, bottom) {
  const seams = [...Array(SEAM_ROWS - 1).keys()].map((k) => (STAGE_HEIGHT * (k + 1)) / SEAM_ROWS).filter((y) => y > top && y < bottom);
  const edges = [top, ...seams.flatMap((y) => [y - SEAM_MARGIN, y + SEAM_MARGIN]), bottom];
  const bands = [];
  for (let i = 0; i < edges.length; i += 2) bands.push([edges[i], edges[i + 1]]);
  return bands;
}

/// Where an element lies on the stage (its own coordinates, whatever the scale).
function onStage(el) {
  const stage = $("#stage").getBoundingClientRect(), r = el.getBoundingClientRect();
  const scale = stage.width / STAGE_WIDTH;
  return { top: (r.top - stage.top) / scale, bottom: (r.bottom - stage.top) / scale };
}

/// Lays the side panels and the tile rows in the bands between horizontal seams: the band of
/// an emergency floats over the top instead of pushing the page down, each side's panels are
/// grouped into one column per band, and tile rows are shared among the bands.
function layoutRowsOnSeams(columns, rows) {
  $("#stage").classList.add("seamed");
  for (const side of document.querySelectorAll(".side")) {
    const panels = [...side.querySelectorAll(".panel")];
    const { top, bottom } = onStage(side);
    const bands = bandsBetween(top + 16, bottom);
    // As even as it goes, the later bands taking the extra panels (the lists, which grow).
    const base = Math.floor(panels.length / bands.length), extra = panels.length % bands.length;
    const firstPanel = (i) => i * base + Math.max(0, i - (bands.length - extra));
    const tracks = [];
    side.replaceChildren(...bands.map(([from, to], i) => {
      if (i > 0) tracks.push(`${from - bands[i - 1][1]}px`);
      tracks.push(`${to - from}px`);
      const band = document.createElement("div");
      band.className = "seam-band";
      band.style.gridRow = `${2 * i + 1}`;
      band.append(...panels.slice(firstPanel(i), firstPanel(i + 1)));
      return band;
    }));
    side.style.gridTemplateRows = tracks.join(" ");
  }
  const tiles = $("#w-tiles");
  const { top, bottom } = onStage(tiles);
  const bands = bandsBetween(top, bottom);
  const height = bands.reduce((sum, [from, to]) => sum + (to - from), 0);
  let left = rows;
  const tracks = [];
  const firstTrackOfRow = [];
  bands.forEach(([from, to], i) => {
    if (i > 0) tracks.push(`${from - bands[i - 1][1]}px`);
    const share = i === bands.length - 1 ? left : Math.min(left, Math.round((rows * (to - from)) / height));
    left -= share;
    const gaps = Math.max(0, share - 1) * 12;
    for (let r = 0; r < share; r++) {
      if (r > 0) tracks.push("12px");
      firstTrackOfRow.push(tracks.length + 1);
      tracks.push(`${(to - from - gaps) / share}px`);
    }
    if (share === 0 && i < bands.length - 1) tracks.push(`${to - from}px`);
  });
  tiles.style.rowGap = "0";
  tiles.style.alignContent = "start";
  tiles.style.gridTemplateRows = tracks.join(" ");
  [...tiles.children].forEach((tile, i) => {
    tile.style.gridRow = `${firstTrackOfRow[Math.floor(i / columns)]}`;
    tile.style.gridColumn = `${(i % columns) + 1}`;
  });
}

function renderTiles() {
  const now = Date.now();
  for (const el of document.querySelectorAll(".tile")) {
    const code = el.dataset.bureau;
    const c = W.counts.get(code) || { open: 0, overdue: 0 };
    const share = c.open ? c.overdue / c.open : 0;
    const waiting = [...W.emergencies.values()].some((task) => tileOf(task.assignee_bureau) === code);
    el.className = `tile${c.overdue === 0 ? "" : share < 0.1 ? " warn" : " bad"}${waiting || (W.flashUntil.get(code) || 0) > now ? " flash" : ""}`;
    el.querySelector(".figures").innerHTML = `<span>在办 <b>${c.open}</b></span><span>超期 <b>${c.overdue}</b></span>`;
  }
}

function row(task, extra = "") {
  const chip = `<span class="chip${task.kind === "emergency" ? " emergency-chip" : ""}">${txt(KIND[task.kind] || task.kind)}</span>`;
  return `<span class="when">${txt(hhmm(task.updated_at))}</span>${chip}<span class="where">${txt(bureauName(task.assignee_bureau || task.origin_bureau))}</span><span class="what">${txt(task.title)} · ${txt(task.subject?.name)}</span>${extra}`;
}

/// A page of `items` that turns every ROTATE_MS when there are more than fit.
function page(items, rows) {
  if (items.length <= rows) return items;
  const start = (W.rotation * rows) % items.length;
  return [...items.slice(start), ...items.slice(0, start)].slice(0, rows);
}

function renderLists() {
  if (!W.me) return;
  const now = Date.now();
  const open = [...W.tasks.values()];
  $("#w-newest").innerHTML = W.feed.map(({ task, at }) =>
    `<li class="${now - at < 3000 ? "fresh-row" : ""}">${row(task, `<span class="late">${txt(STATE[task.state] || task.state)}</span>`)}</li>`).join("");
  const overdue = open.filter((task) => isOverdue(task, now)).sort((a, b) => Date.parse(a.running_deadline) - Date.parse(b.running_deadline));
  $("#w-overdue").innerHTML = page(overdue, LIST_ROWS).map((task) =>
    `<li>${row(task, `<span class="late">超期 ${txt(span(now - Date.parse(task.running_deadline)))}</span>`)}</li>`).join("");
  const escalated = open.filter((task) => task.escalated_to?.length).sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at));
  $("#w-escalated-count").textContent = escalated.length;
  $("#w-escalated").innerHTML = page(escalated, 6).map((task) => `<li>${row(task)}</li>`).join("");
  const stuck = open.filter((task) => task.handover?.stuck);
  $("#w-stuck-count").textContent = stuck.length;
  $("#w-stuck").innerHTML = page(stuck, 3).map((task) => `<li>${row(task)}</li>`).join("");
  const campaigns = W.campaigns || [];
  $("#w-campaigns-count").textContent = campaigns.length;
  $("#w-campaigns").innerHTML = campaigns.map((c) =>
    `<li><span class="where">${txt(c.bureau_name)}</span><span class="what">${txt(c.name)}</span><span class="late">${txt(c.draw ? `${c.draw.inspections} 户` : "")}</span></li>`).join("");
}

function renderBand() {
  const waiting = [...W.emergencies.values()].sort((a, b) => Date.parse(a.updated_at) - Date.parse(b.updated_at));
  $("#w-emergency").hidden = waiting.length === 0;
  if (!waiting.length) return;
  const task = waiting[0];
  const more = waiting.length > 1 ? ` （另有 ${waiting.length - 1} 起）` : "";
  $("#w-emergency-text").innerHTML = `${txt(task.title)} · ${txt(bureauName(task.assignee_bureau))}${txt(more)}`;
  $("#w-emergency").dataset.task = task.id;
}

function render() {
  renderTiles();
  renderLists();
  renderBand();
}

/// Once a second: the clock, the band's countdown, staleness and the tiles' flashing.
function tick() {
  const now = new Date();
  const p = parts(now, { year: "numeric", month: "2-digit", day: "2-digit", weekday: "long", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  $("#w-date").textContent = `${p.year}-${p.month}-${p.day} ${p.weekday}`;
  $("#w-clock").textContent = `${p.hour}:${p.minute}:${p.second}`;
  if (W.lastMessageAt) {
    const q = parts(new Date(W.lastMessageAt), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    $("#w-fresh").textContent = `数据更新于 ${q.hour}:${q.minute}:${q.second}`;
    if (Date.now() - W.lastMessageAt > STALE_MS && $("#w-conn").dataset.state === "live") setConn("stale", "数据滞后");
  }
  const band = W.emergencies.get(Number($("#w-emergency").dataset.task));
  if (band) {
    const ack = band.ack_deadline ? Date.parse(band.ack_deadline) - Date.now() : null;
    $("#w-emergency-clock").textContent = ack == null ? "" : ack >= 0 ? `签收剩余 ${span(ack)}` : `签收超期 ${span(ack)}`;
  }
  for (const [tile, until] of W.flashUntil) if (until < Date.now()) W.flashUntil.delete(tile);
  renderTiles();
}

if (W.token) login(W.token);
