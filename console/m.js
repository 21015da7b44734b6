// The inspectors' phone page (/m/): sign in, my open tasks, and the on-site record
// (现场检查记录) of one: the checklist's points, notes, the firm's representative, the position,
// photos from the camera and signatures drawn on screen, then the result.
//
// It works without a network once loaded: the page is cached by its service worker (sw.js),
// my tasks and their checklists are kept in localStorage when loaded, and a finished record
// waits in IndexedDB (with its files) until it is sent. Each record is sent with one
// Idempotency-Key however often it is tried, so a resend after a lost answer is one record;
// its files are uploaded first (POST /api/v1/attachments) and their hashes named by the record.
"use strict";

const TOKEN_KEY = "xt.m.token";
const TASKS_KEY = "xt.m.tasks";
const CHECKLIST_KEY = (id) => `xt.m.checklist.${id}`;
const OPEN_STATES = ["dispatched", "acknowledged", "returned"];
// The waiting records are tried again this often while any wait (and at once when the
// browser says it is back online).
const RETRY_MS = 3000;
// A session lasts half an hour; the page renews it well before while it is open and online.
const RENEW_MS = 10 * 60 * 1000;
// A photo's longer edge is brought down to this before it is kept: a phone's 12–50 MP photo
// becomes some 0.5–1 MB (a node takes at most 10 MiB), and an outage's queue stays small.
const PHOTO_EDGE_MAX = 2048;
const PHOTO_JPEG_QUALITY = 0.85;
const CONFORMITY = [["conforms", "符合"], ["does_not_conform", "不符合"], ["not_applicable", "不适用"]];

const $ = (selector) => document.querySelector(selector);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const M = { token: localStorage.getItem(TOKEN_KEY), me: null, tasks: [], task: null, checklist: null, photos: [], position: null, pads: [], sending: false };

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// A failed answer carries its status and code; a failed fetch (no network) is a TypeError.
async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (M.token) headers.Authorization = `Bearer ${M.token}`;
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  const response = await fetch(path, { method: options.method || "GET", headers, body: options.body });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body?.error?.message || response.statusText), { status: response.status, code: body?.error?.code });
  return body;
}
const offlineError = (error) => error instanceof TypeError;

// ---------- the outbox (IndexedDB) ----------
function outbox() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("xietong-m", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("outbox", { keyPath: "id" });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}
async function outboxDo(mode, act) {
  const db = await outbox();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("outbox", mode);
    const request = act(tx.objectStore("outbox"));
    tx.oncomplete = () => resolve(request?.result);
    tx.onerror = () => reject(tx.error);
  });
}
const outboxAll = () => outboxDo("readonly", (store) => store.getAll());
const outboxPut = (item) => outboxDo("readwrite", (store) => store.put(item));
const outboxDelete = (id) => outboxDo("readwrite", (store) => store.delete(id));

// ---------- sending ----------
async function sendOne(item) {
  for (const file of item.files) {
    if (file.sha) continue;
    const uploaded = await api("/api/v1/attachments", { method: "POST", body: file.blob, headers: { "Content-Type": file.blob.type || "application/octet-stream" } });
    file.sha = uploaded.sha256;
    await outboxPut(item);
  }
  if (item.stage === "record") {
    // The same file picked twice is named once (the ledger refuses a file named twice).
    const named = new Set();
    const attachments = item.files.filter((f) => !named.has(f.sha) && named.add(f.sha))
      .map((f) => ({ sha256: f.sha, kind: f.kind, signer: f.signer }));
    try {
      await api(`/api/v1/tasks/${item.task}/record_on_site`, { method: "POST", headers: { "Idempotency-Key": item.key }, json: { record: { ...item.record, attachments } } });
    } catch (error) {
      // The node that decides lacks a file (it was down when it was uploaded): upload again.
      if (error.code === "attachment_missing") { item.files.forEach((f) => (f.sha = null)); await outboxPut(item); }
      throw error;
    }
    item.stage = item.outcome ? "complete" : "done";
    await outboxPut(item);
  }
  if (item.stage === "complete") {
    await api(`/api/v1/tasks/${item.task}/complete`, { method: "POST", headers: { "Idempotency-Key": `${item.key}-complete` }, json: { outcome: item.outcome, note: "依据现场检查记录" } });
  }
  await outboxDelete(item.id);
}

async function send() {
  if (M.sending || !M.token) return;
  M.sending = true;
  try {
    for (const item of await outboxAll()) {
      try {
        await sendOne(item);
      } catch (error) {
        if (offlineError(error)) break;
        if (error.status === 401) { showSignIn("登录已过期，请重新登录；待发送的记录会保留"); break; }
        if (error.code === "attachment_missing") continue;
        item.error = error.message;
        await outboxPut(item);
      }
    }
  } finally {
    M.sending = false;
    await renderWaiting();
  }
}

async function renderWaiting() {
  const items = await outboxAll();
  $("#waiting").hidden = items.length === 0;
  $("#waiting-summary").textContent = `${items.length} 份记录待发送${navigator.onLine ? "" : "（离线，联网后自动发送）"}`;
  $("#waiting-list").innerHTML = items.map((item) =>
    `<li data-waiting="${esc(item.task)}">#${esc(item.task)} ${esc(item.title)} · ${item.files.length} 个附件${item.error ? ` <span class="failed">${esc(item.error)}</span>` : ""}</li>`).join("");
}

// ---------- signing in ----------
function showSignIn(message = "") {
  $("#sign-in").hidden = false;
  $("#tasks").hidden = true;
  $("#record").hidden = true;
  $("#sign-out").hidden = true;
  $("#sign-in-error").textContent = message;
}

async function signIn() {
  try {
    const session = await api("/api/v1/sessions", { method: "POST", json: { login: $("#login").value.trim(), password: $("#password").value } });
    M.token = session.token;
    localStorage.setItem(TOKEN_KEY, M.token);
    $("#password").value = "";
    $("#sign-in").hidden = true;
    await start();
  } catch (error) {
    $("#sign-in-error").textContent = offlineError(error) ? "无网络，无法登录" : error.message;
  }
}

async function renew() {
  if (!M.token || !navigator.onLine) return;
  try {
    const renewed = await api("/api/v1/sessions/renew", { method: "POST" });
    M.token = renewed.token;
    localStorage.setItem(TOKEN_KEY, M.token);
  } catch (_) { /* the next call that needs it says why */ }
}

// ---------- my tasks ----------
async function loadTasks() {
  try {
    const page = await api("/api/v1/tasks?mine=true&limit=200");
    M.tasks = page.tasks.filter((task) => OPEN_STATES.includes(task.state));
    localStorage.setItem(TASKS_KEY, JSON.stringify(M.tasks));
    // Each open task's checklist, so its form opens without a network.
    await Promise.all(M.tasks.map(async (task) => {
      const checklist = await api(`/api/v1/tasks/${task.id}/checklist`);
      localStorage.setItem(CHECKLIST_KEY(task.id), JSON.stringify(checklist));
    }));
    $("#tasks-error").textContent = "";
  } catch (error) {
    if (error.status === 401) { showSignIn("请登录"); return; }
    M.tasks = JSON.parse(localStorage.getItem(TASKS_KEY) || "[]");
    $("#tasks-error").textContent = offlineError(error) ? "离线：显示上次加载的任务" : error.message;
  }
  renderTasks();
}

function renderTasks() {
  $("#tasks").hidden = false;
  $("#record").hidden = true;
  $("#task-list").innerHTML = M.tasks.length ? M.tasks.map((task) =>
    `<button type="button" class="task" data-task="${task.id}">#${task.id} ${esc(task.title)}<small>${esc(task.subject?.name)} · ${esc(task.subject?.address)}</small></button>`).join("")
    : "<p>暂无待办任务</p>";
  document.querySelectorAll("[data-task]").forEach((button) => button.addEventListener("click", () => openTask(Number(button.dataset.task))));
}

// ---------- the record form ----------
function pointInput(item, point) {
  const name = `p-${item.code}-${point.code}`;
  if (point.answer === "conformity") {
    return `<div class="choices">${CONFORMITY.map(([value, label]) =>
      `<label><input type="radio" name="${esc(name)}" value="${value}"><span>${label}</span></label>`).join("")}</div>`;
  }
  const mode = point.answer === "number" ? `inputmode="decimal"` : "";
  return `<input name="${esc(name)}" ${mode} maxlength="1000">`;
}

function openTask(id) {
  M.task = M.tasks.find((task) => task.id === id);
  M.checklist = JSON.parse(localStorage.getItem(CHECKLIST_KEY(id)) || "null");
  if (!M.task || !M.checklist) { $("#tasks-error").textContent = "该任务的检查要点未加载，请联网后刷新"; return; }
  M.photos = [];
  M.position = null;
  $("#record").reset();
  $("#thumbs").innerHTML = "";
  $("#position").textContent = "";
  $("#record-error").textContent = "";
  $("#record-title").textContent = `#${M.task.id} ${M.task.title}`;
  $("#record-subject").textContent = `${M.task.subject?.name ?? ""} ${M.task.subject?.address ?? ""}`;
  const points = M.checklist.items.flatMap((item) => item.check_points.map((point) =>
    `<div class="point"><b>${esc(point.code)}</b> ${esc(point.wording)}<div class="basis">${esc(item.name)} · ${esc(point.basis)}</div>
      ${pointInput(item, point)}<input name="r-${esc(item.code)}-${esc(point.code)}" placeholder="说明（可选）" maxlength="1000"></div>`));
  $("#points").hidden = points.length === 0;
  $("#point-list").innerHTML = points.join("");
  // Both inspectors of a drawn team sign, and the firm's representative.
  const inspectors = M.task.inspection?.inspectors?.length ? M.task.inspection.inspectors : [M.me?.display_name || "执法人员"];
  const signers = [...inspectors.map((badge) => ({ kind: "inspector_signature", signer: badge, label: `执法人员 ${badge} 签名` })),
    { kind: "representative_signature", signer: null, label: "当事人签名" }];
  $("#signatures").innerHTML = "<h2>签名</h2>" + signers.map((s, n) =>
    `<label>${esc(s.label)}</label><canvas class="signature" data-pad="${n}" width="600" height="280"></canvas><button type="button" class="secondary" data-clear="${n}">重签</button>`).join("");
  M.pads = signers.map((s, n) => ({ ...s, canvas: document.querySelector(`[data-pad="${n}"]`), drawn: false }));
  M.pads.forEach(signaturePad);
  document.querySelectorAll("[data-clear]").forEach((button) => button.addEventListener("click", () => {
    const pad = M.pads[Number(button.dataset.clear)];
    pad.canvas.getContext("2d").clearRect(0, 0, pad.canvas.width, pad.canvas.height);
    pad.drawn = false;
  }));
  $("#tasks").hidden = true;
  $("#record").hidden = false;
  window.scrollTo(0, 0);
}

// Drawing with a finger (or a mouse) on a canvas.
function signaturePad(pad) {
  const context = pad.canvas.getContext("2d");
  context.lineWidth = 4; context.lineCap = "round"; context.strokeStyle = "#000";
  let last = null;
  const at = (event) => {
    const box = pad.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.canvas.width / box.width, (event.clientY - box.top) * pad.canvas.height / box.height];
  };
  pad.canvas.addEventListener("pointerdown", (event) => {
    last = at(event);
    // Keeps the strokes when a finger leaves the canvas; a pointer the browser does not know
    // (a synthetic one) cannot be captured, and draws all the same.
    try { pad.canvas.setPointerCapture(event.pointerId); } catch (_) { /* not captured */ }
  });
  pad.canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    context.beginPath(); context.moveTo(...last); context.lineTo(...next); context.stroke();
    last = next;
    pad.drawn = true;
  });
  const end = () => { last = null; };
  pad.canvas.addEventListener("pointerup", end);
  pad.canvas.addEventListener("pointercancel", end);
}

const canvasBlob = (canvas) => new Promise((resolve) => canvas.toBlob(resolve, "image/png"));

async function submitRecord(event) {
  event.preventDefault();
  const form = $("#record");
  const answers = [];
  for (const item of M.checklist.items) {
    for (const point of item.check_points) {
      const value = point.answer === "conformity"
        ? form.querySelector(`[name="p-${CSS.escape(item.code)}-${CSS.escape(point.code)}"]:checked`)?.value
        : form.querySelector(`[name="p-${CSS.escape(item.code)}-${CSS.escape(point.code)}"]`)?.value.trim();
      if (!value) continue;
      const remark = form.querySelector(`[name="r-${CSS.escape(item.code)}-${CSS.escape(point.code)}"]`)?.value.trim() || "";
      answers.push({ item: item.code, point: point.code, answer: value, remark });
    }
  }
  const representative = $("#rep-name").value.trim() ? { name: $("#rep-name").value.trim(), title: $("#rep-title").value.trim() } : null;
  const files = M.photos.map((blob) => ({ kind: "photo", signer: "", blob, sha: null }));
  for (const pad of M.pads) {
    if (!pad.drawn) continue;
    const signer = pad.signer ?? representative?.name ?? "当事人";
    files.push({ kind: pad.kind, signer, blob: await canvasBlob(pad.canvas), sha: null });
  }
  const item = {
    id: uuid(), key: uuid(), task: M.task.id, title: M.task.title, files, outcome: $("#outcome").value || null, stage: "record", error: null,
    record: { checklist: M.checklist.checklist, answers, notes: $("#notes").value.trim(), representative, position: M.position, made_at: new Date().toISOString() },
  };
  await outboxPut(item);
  await renderWaiting();
  renderTasks();
  send();
}

function locate() {
  if (!navigator.geolocation) { $("#position").textContent = "此设备无法定位"; return; }
  $("#position").textContent = "定位中…";
  navigator.geolocation.getCurrentPosition((found) => {
    M.position = { latitude: found.coords.latitude, longitude: found.coords.longitude, accuracy_m: found.coords.accuracy };
    $("#position").textContent = `${M.position.latitude.toFixed(5)}, ${M.position.longitude.toFixed(5)}（±${Math.round(M.position.accuracy_m)} 米）`;
  }, (error) => { $("#position").textContent = `未能定位：${error.message}`; }, { enableHighAccuracy: true, timeout: 15000 });
}

// ---------- start ----------
function showNetwork() {
  $("#net").dataset.online = String(navigator.onLine);
  $("#net").textContent = navigator.onLine ? "在线" : "离线";
  renderWaiting();
}

async function start() {
  if (!M.token) { showSignIn(); return; }
  $("#sign-out").hidden = false;
  try { M.me = await api("/api/v1/me"); } catch (error) {
    if (error.status === 401) { showSignIn("请登录"); return; }
  }
  await loadTasks();
  await renderWaiting();
  send();
}

$("#sign-in-button").addEventListener("click", signIn);
$("#sign-out").addEventListener("click", () => { localStorage.removeItem(TOKEN_KEY); M.token = null; showSignIn(); });
$("#record").addEventListener("submit", submitRecord);
$("#back").addEventListener("click", renderTasks);
$("#locate").addEventListener("click", locate);
// The photo as kept: shrunk to PHOTO_EDGE_MAX as a JPEG when larger (turned upright by its
// orientation), else as taken; as taken when the browser cannot decode it.
async function keptPhoto(file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = PHOTO_EDGE_MAX / Math.max(bitmap.width, bitmap.height);
    if (scale >= 1) { bitmap.close(); return file; }
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return (await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", PHOTO_JPEG_QUALITY))) || file;
  } catch (_) {
    return file;
  }
}

$("#photos").addEventListener("change", async (event) => {
  const picked = [...event.target.files];
  event.target.value = "";
  for (const file of picked) {
    const photo = await keptPhoto(file);
    M.photos.push(photo);
    $("#thumbs").insertAdjacentHTML("beforeend", `<img alt="" src="${URL.createObjectURL(photo)}">`);
  }
});
window.addEventListener("online", () => { showNetwork(); send(); });
window.addEventListener("offline", showNetwork);
setInterval(async () => { if ((await outboxAll()).length) send(); }, RETRY_MS);
setInterval(renew, RENEW_MS);
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/m/sw.js", { scope: "/m/" }).catch(() => {});
showNetwork();
start();
