// The annual random-inspection plan (年度随机抽查工作计划) in the campaign view: the batches of
// the user's province's plan for a year with their progress (campaigns, drawn, completed,
// published, per city), the proposals cities and counties sent up, and what each side may do:
// a city proposes a batch (上报); the province adds batches or takes up proposals (采纳),
// publishes (发布), adjusts with a reason (调整) and withdraws (撤销). Uses only the public API.
// isProvince() is item_list.js's.
"use strict";

const P = { year: new Date().getFullYear() + (new Date().getMonth() >= 9 ? 1 : 0), plan: null };

async function loadPlan() {
  if (!$("#plan-form").elements.length) renderPlanForm();
  $("#plan-year").value = P.year;
  try {
    P.plan = await api(`/api/v1/annual-plans/${P.year}`);
    renderPlan();
    renderBatchChoice();
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

function renderPlan() {
  const plan = P.plan;
  const province = isProvince();
  const filed = plan.filed ? ` · ${t("ap.filed", { group: plan.filed.with_group_name, version: plan.filed.version, at: fmtTime(plan.filed.at) })}` : "";
  // In a city's own group the plan is the copy the province's group handed down (下达); in the
  // province's group, the city groups it went down to and when each last reported progress.
  const down = plan.handed_down ? ` · ${t("ap.handed_down", { group: plan.handed_down.from_group_name, version: plan.handed_down.version, at: fmtTime(plan.handed_down.received_at) })}` : "";
  const to = (plan.handed_down_to || []).map((g) => t("ap.handed_down_to", { group: g.group_name, version: g.version,
    reported: g.reported_at ? fmtTime(g.reported_at) : t("ap.not_reported") })).join("；");
  $("#plan-state").textContent = (plan.published_at ? t("ap.published_at", { at: fmtTime(plan.published_at) }) : t("ap.draft")) + filed + down + (to ? ` · ${to}` : "");
  $("#plan-publish").hidden = !province || Boolean(plan.published_at) || !plan.batches.some((b) => !b.withdrawn);
  const rows = plan.batches.map((b) => {
    const progress = `${b.progress.drawn} / ${b.progress.completed} / ${b.progress.published}`;
    const cities = b.by_bureau.map((c) => `${esc(c.name)} ${c.drawn}/${c.completed}/${c.published}`).join("<br>");
    const withdraw = province && !b.withdrawn ? `<button type="button" class="withdraw-batch" data-batch="${b.number}">${t("ap.withdraw")}</button>` : "";
    return `<tr data-batch="${b.number}" class="${b.withdrawn ? "muted" : ""}"><td>${b.number}</td><td>${esc(b.name)}</td><td>${esc(b.items.join("、"))}</td>` +
      `<td>${esc(b.scope_name)}</td><td>${b.entities}</td><td>${esc(b.starts)} ~ ${esc(b.ends)}</td>` +
      `<td>${b.withdrawn ? esc(t("ap.withdrawn")) : b.campaigns.length}</td><td>${progress}</td><td class="strata">${cities}</td><td>${withdraw}</td></tr>`;
  }).join("");
  $("#plan-batches").innerHTML = `<thead><tr><th>${t("ap.number")}</th><th>${t("ap.name")}</th><th>${t("insp.items")}</th><th>${t("cp.scope")}</th>` +
    `<th>${t("ap.entities")}</th><th>${t("ap.period")}</th><th>${t("ap.campaigns")}</th><th>${t("ap.progress")}</th><th>${t("ap.by_city")}</th><th></th></tr></thead><tbody>${rows}</tbody>`;
  const proposals = plan.proposals.map((p) => {
    const take = province && !p.taken_as ? `<button type="button" class="take-proposal" data-proposal="${p.number}">${t("ap.take")}</button>` : "";
    return `<tr data-proposal="${p.number}"><td>${p.number}</td><td>${esc(p.bureau_name)}</td><td>${esc(p.name)}</td><td>${esc(p.items.join("、"))}</td>` +
      `<td>${p.entities}</td><td>${esc(p.starts)} ~ ${esc(p.ends)}</td><td>${esc(p.note)}</td><td>${p.taken_as ? esc(t("ap.taken_as", { n: p.taken_as })) : take}</td></tr>`;
  }).join("");
  $("#plan-proposals").innerHTML = `<thead><tr><th>${t("ap.number")}</th><th>${t("ap.from")}</th><th>${t("ap.name")}</th><th>${t("insp.items")}</th>` +
    `<th>${t("ap.entities")}</th><th>${t("ap.period")}</th><th>${t("ap.note")}</th><th></th></tr></thead><tbody>${proposals}</tbody>`;
  $("#plan-history").innerHTML = plan.versions.slice().reverse().map((v) =>
    `<tr><td>${v.number}</td><td>${esc(t(`ap.step_${v.change}`))}${v.subject ? ` ${v.subject}` : ""}</td><td>${esc(v.by)}</td><td>${esc(fmtTime(v.at))}</td><td>${esc(v.reason)}</td></tr>`).join("");
  $("#plan-submit").textContent = t(province ? "ap.add" : "ap.propose");
  $("#plan-batches").querySelectorAll(".withdraw-batch").forEach((button) => button.addEventListener("click", async () => {
    const reason = prompt(t("ap.withdraw_reason"));
    if (reason) await changePlan(`/batches/${button.dataset.batch}/withdraw`, { reason });
  }));
  $("#plan-proposals").querySelectorAll(".take-proposal").forEach((button) => button.addEventListener("click", async () => {
    const p = plan.proposals.find((x) => x.number === Number(button.dataset.proposal));
    const body = { name: p.name, items: p.items, scope: p.scope, entities: p.entities, starts: p.starts, ends: p.ends, from_proposal: p.number };
    // A published plan takes up a proposal as an adjustment: it says why.
    if (plan.published_at) body.reason = prompt(t("ap.reason")) || "";
    await changePlan("/batches", body);
  }));
}

function renderPlanForm() {
  const regions = [...S.bureaus.values()].filter((b) => within(b.code, S.me.bureau) && !b.retired && b.level !== "station");
  $("#plan-form").innerHTML = `
    <label>${t("ap.name")}<input name="name" required maxlength="200"></label>
    <label>${t("insp.items")}<input name="items" required placeholder="B01, F01"></label>
    <label>${t("cp.scope")}<select name="scope">${regions.map((b) => `<option value="${b.code}">${esc(b.name)} ${b.code}</option>`).join("")}</select></label>
    <label>${t("ap.entities")}<input name="entities" type="number" min="1" required></label>
    <label>${t("ap.starts")}<input name="starts" type="date" required></label>
    <label>${t("ap.ends")}<input name="ends" type="date" required></label>
    <label>${t("ap.reason")}<input name="reason" maxlength="2000"></label>
    <button type="submit" class="primary" id="plan-submit"></button>`;
}

// The batches a new campaign may join: those of the plan shown, not withdrawn.
function renderBatchChoice() {
  const select = $("#campaign-form select[name=batch]");
  if (!select || !P.plan) return;
  select.innerHTML = `<option value="">${esc(t("ap.no_batch"))}</option>` + P.plan.batches.filter((b) => !b.withdrawn)
    .map((b) => `<option value="${b.number}">${P.plan.year} · ${b.number} ${esc(b.name)}</option>`).join("");
}

async function changePlan(path, body) {
  try {
    const answer = await api(`/api/v1/annual-plans/${P.year}${path}`, { method: "POST", body: JSON.stringify(body) });
    // A city's own group relays a proposal to the group keeping the plan.
    toast(answer && answer.relayed_to ? t("ap.relayed", { group: bureauName(answer.relayed_to), n: answer.proposal }) : t("done"), "ok");
    loadPlan();
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

$("#plan-year").addEventListener("change", (e) => { P.year = Number(e.target.value) || P.year; loadPlan(); });
$("#plan-publish").addEventListener("click", () => changePlan("/publish", {}));
$("#plan-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(e.target);
  const body = {
    name: data.get("name").trim(), items: data.get("items").split(/[,，、\s]+/).filter(Boolean), scope: data.get("scope"),
    entities: Number(data.get("entities")), starts: data.get("starts"), ends: data.get("ends"), reason: data.get("reason").trim(),
  };
  await changePlan(isProvince() ? "/batches" : "/proposals", body);
  e.target.reset();
});
