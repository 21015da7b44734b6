// The leadership view (指标): response metrics of the user's bureau (or the bureau picked in
// the tree) over a period, from GET /api/v1/metrics/response. Headline figures, a trend chart
// drawn as inline SVG (no build step, no chart library), a ranking of child bureaus sortable by
// every measure, drill-down into the tasks behind a row, and a CSV download.
"use strict";

const M = { from: null, to: null, sortKey: "received", sortDown: true, report: null, trend: null };

const RANK_COLUMNS = [
  ["received", "count"], ["acknowledged", "count"], ["ack_on_time_rate", "rate"], ["completion_rate", "rate"],
  ["completion_on_time_rate", "rate"], ["ack_median_secs", "secs"], ["complete_median_secs", "secs"],
  ["overdue_now", "count"], ["escalations", "count"], ["inspection_record_rate", "rate"],
  ["random_inspection_ratio", "rate"],
];

const isoDate = (date) => new Date(date.getTime() + 8 * 3600 * 1000).toISOString().slice(0, 10);
function fmtRate(value) { return value == null ? "—" : `${(value * 100).toFixed(1)}%`; }
function fmtSecs(secs) {
  if (secs == null) return "—";
  if (secs < 3600) return `${Math.round(secs / 60)}${t("m")}`;
  if (secs < 86400) return `${(secs / 3600).toFixed(1)}${t("h")}`;
  return `${(secs / 86400).toFixed(1)}${t("d")}`;
}
function fmtFigure(value, type) {
  if (type === "rate") return fmtRate(value);
  if (type === "secs") return fmtSecs(value);
  return value == null ? "—" : String(value);
}

function metricsBureau() { return S.filter.bureau || S.me.bureau; }

function setPeriod(days) {
  const today = new Date();
  M.to = isoDate(today);
  M.from = isoDate(new Date(today.getTime() - (days - 1) * 86400 * 1000));
  $("#metrics-from").value = M.from;
  $("#metrics-to").value = M.to;
}

async function loadMetrics() {
  if (!M.from) setPeriod(30);
  const base = `/api/v1/metrics/response?bureau=${metricsBureau()}&from=${M.from}&to=${M.to}`;
  const days = (Date.parse(M.to) - Date.parse(M.from)) / 86400000 + 1;
  try {
    [M.report, M.trend] = await Promise.all([api(`${base}&by=child`), api(`${base}&by=${days > 62 ? "week" : "day"}`)]);
    renderMetrics();
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

function renderMetrics() {
  if (!M.report) return;
  const total = M.report.total;
  $("#metrics-title").textContent = `${bureauName(metricsBureau())} · ${M.from} – ${M.to}`;
  const tiles = [
    ["received", total.received, "count"], ["completion_rate", total.completion_rate, "rate"],
    ["ack_on_time_rate", total.ack_on_time_rate, "rate"], ["completion_on_time_rate", total.completion_on_time_rate, "rate"],
    ["ack_median_secs", total.ack_median_secs, "secs"], ["complete_median_secs", total.complete_median_secs, "secs"],
    ["overdue_now", total.overdue_now, "count"], ["escalations", total.escalations, "count"],
  ];
  $("#metrics-tiles").innerHTML = tiles.map(([key, value, type]) =>
    `<div class="kpi${key === "overdue_now" && value > 0 ? " alarm-kpi" : ""}" data-figure="${key}"><b>${esc(fmtFigure(value, type))}</b><span>${esc(t(`mt.${key}`))}</span></div>`).join("");
  renderTrend();
  renderRanking();
}

/// Received per day (bars) and the completion rate (line), as inline SVG.
function renderTrend() {
  const rows = M.trend.rows;
  const width = 900, height = 220, pad = 36;
  if (!rows.length) { $("#metrics-trend").innerHTML = `<p class="muted">${esc(t("no_tasks"))}</p>`; return; }
  const maxReceived = Math.max(1, ...rows.map((r) => r.figures.received));
  const step = (width - 2 * pad) / rows.length;
  const bars = rows.map((r, i) => {
    const h = (r.figures.received / maxReceived) * (height - 2 * pad);
    return `<rect class="bar" x="${pad + i * step + step * 0.15}" y="${height - pad - h}" width="${step * 0.7}" height="${h}"><title>${esc(r.key)}: ${r.figures.received}</title></rect>`;
  }).join("");
  const points = rows.map((r, i) => r.figures.completion_rate == null ? null :
    `${pad + i * step + step / 2},${height - pad - r.figures.completion_rate * (height - 2 * pad)}`).filter(Boolean).join(" ");
  const labels = rows.map((r, i) => (rows.length <= 14 || i % Math.ceil(rows.length / 10) === 0)
    ? `<text class="axis" x="${pad + i * step + step / 2}" y="${height - pad + 14}" text-anchor="middle">${esc(r.key.slice(5))}</text>` : "").join("");
  $("#metrics-trend").innerHTML = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(t("mt.trend"))}">
    <line class="axis-line" x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}"/>
    ${bars}<polyline class="rate-line" points="${points}"/>
    <text class="axis" x="${pad}" y="${pad - 10}">${esc(t("mt.received"))} (max ${maxReceived})</text>
    <text class="axis rate-label" x="${width - pad}" y="${pad - 10}" text-anchor="end">${esc(t("mt.completion_rate"))} 0–100%</text>
    ${labels}</svg>`;
}

function renderRanking() {
  const rows = M.report.rows.slice();
  const value = (row) => row.figures[M.sortKey];
  rows.sort((a, b) => {
    const va = value(a), vb = value(b);
    if (va == null && vb == null) return a.key.localeCompare(b.key);
    if (va == null) return 1;
    if (vb == null) return -1;
    return M.sortDown ? vb - va : va - vb;
  });
  const head = `<tr><th>${esc(t("mt.bureau"))}</th>${RANK_COLUMNS.map(([key]) =>
    `<th data-sort="${key}" class="${key === M.sortKey ? "sorted" : ""}">${esc(t(`mt.${key}`))}${key === M.sortKey ? (M.sortDown ? " ▼" : " ▲") : ""}</th>`).join("")}</tr>`;
  const body = rows.map((row) => `<tr data-bureau="${esc(row.key)}"><td>${esc(row.name || row.key)}</td>${RANK_COLUMNS.map(([key, type]) =>
    `<td>${esc(fmtFigure(row.figures[key], type))}</td>`).join("")}</tr>`).join("");
  $("#metrics-ranking").innerHTML = `<thead>${head}</thead><tbody>${body}</tbody>`;
  $("#metrics-ranking").querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
    M.sortDown = M.sortKey === th.dataset.sort ? !M.sortDown : true;
    M.sortKey = th.dataset.sort;
    renderRanking();
  }));
  // Drill down: the tasks behind a row are the board filtered to that bureau.
  $("#metrics-ranking").querySelectorAll("tbody tr").forEach((tr) => tr.addEventListener("click", () => {
    S.filter.bureau = tr.dataset.bureau === S.me.bureau ? null : tr.dataset.bureau;
    showView("board");
  }));
}

async function downloadCsv() {
  const response = await fetch(`${apiBase()}/api/v1/metrics/response?bureau=${metricsBureau()}&from=${M.from}&to=${M.to}&by=child&format=csv`,
    { headers: { Authorization: `Bearer ${S.token}` } });
  const blob = await response.blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `response-metrics-${metricsBureau()}-${M.from}-${M.to}.csv`;
  link.click();
  URL.revokeObjectURL(link.href);
}

function showView(view) {
  S.view = view;
  $("#board-view").hidden = view !== "board";
  $("#metrics").hidden = view !== "metrics";
  $("#campaigns").hidden = view !== "campaigns";
  document.querySelectorAll("[data-view]").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  if (view === "metrics") loadMetrics(); else if (view === "campaigns") loadCampaigns(); else renderAll();
}

document.querySelectorAll("[data-view]").forEach((b) => b.addEventListener("click", () => showView(b.dataset.view)));
document.querySelectorAll("[data-period]").forEach((b) => b.addEventListener("click", () => { setPeriod(Number(b.dataset.period)); loadMetrics(); }));
$("#metrics-apply").addEventListener("click", () => { M.from = $("#metrics-from").value; M.to = $("#metrics-to").value; loadMetrics(); });
$("#metrics-csv").addEventListener("click", () => downloadCsv().catch((e) => toast(`${t("failed")}: ${e.message}`, "error")));
