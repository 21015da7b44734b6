// The campaign view (双随机抽查计划) of command-centre users: the campaigns the user can see with
// their state and strata; a form to plan one from the inspection-item list (the items the
// user's level may organise; the list itself is item_list.js); for a planned
// campaign, the beacon a second person enters to draw it; and the inspector directory, enrolled
// from a roster file. Uses only the public HTTP API.
"use strict";
const C = { items: [], inspectors: [] };
// Inspectors listed on the page at most; the count covers all of them.
const INSPECTORS_LISTED_MAX = 200;

async function loadCampaigns() {
  try {
    // The list changes in the app (item_list.js): read each time the view opens.
    const [items, { campaigns }, { inspectors }] =
      await Promise.all([api("/api/v1/inspection-items"), api("/api/v1/campaigns"), api("/api/v1/inspectors")]);
    // Organising levels hold once the group adopted its list (an item of the shipped list is
    // listed in version 0).
    C.items = items.filter((item) => item.listed_in === 0 || mayOrganise(item));
    loadItemList();
    loadRegister();
    loadPlan();
    C.inspectors = inspectors;
    renderCampaignForm();
    renderCampaigns(campaigns);
    renderInspectors(inspectors);
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

// Inspector selection modes (执法人员选派方式); the last two name stations.
const INSPECTOR_MODES = ["whole_bureau", "office_and_stations", "stations", "station"];
const RISK_CLASSES = ["high", "normal", "low"];

// A labelled tick box (or, with type "radio", a choice of one) of the form.
function check(name, value, label, type = "checkbox") {
  return `<label class="check"><input type="${type}" name="${name}" value="${esc(value)}"> ${esc(label)}</label>`;
}

function renderCampaignForm() {
  const regions = [...S.bureaus.values()].filter((b) => within(b.code, S.me.bureau));
  const industries = [...new Set(C.items.flatMap((item) => item.industries))].sort();
  $("#campaign-form").innerHTML = `
    <label>${t("cp.name")}<input name="name" required maxlength="200"></label>
    <label>${t("cp.scope")}<select name="region">${regions.map((b) => `<option value="${b.code}">${esc(b.name)} ${b.code}</option>`).join("")}</select></label>
    <fieldset class="items"><legend>${t("insp.items")}</legend>${C.items.map((item) =>
      check("items", item.code, `${item.code} ${item.name}`)).join("")}</fieldset>
    <label class="check"><input type="checkbox" name="targeted"> ${t("cp.targeted")}</label>
    <fieldset class="items" id="campaign-targets" hidden><legend>${t("cp.targets")}</legend>
      ${industries.map((code) => check("industries", code, industryName(code))).join("")}
      ${RISK_CLASSES.map((c) => check("risk_classes", c, t(`risk.${c}`))).join("")}</fieldset>
    <p class="hint">${esc(t("cp.ratio_hint"))}</p>
    <label>${t("cp.ratio_high")}<input name="high" type="number" min="0.01" max="100" step="0.01" value="10"></label>
    <label>${t("cp.ratio_normal")}<input name="normal" type="number" min="0.01" max="100" step="0.01" value="5"></label>
    <label>${t("cp.ratio_low")}<input name="low" type="number" min="0.01" max="100" step="0.01" value="3"></label>
    <label>${t("cp.mode")}<select name="mode">${INSPECTOR_MODES.map((m) => `<option value="${m}">${t(`cp.mode_${m}`)}</option>`).join("")}</select></label>
    <fieldset class="items" id="campaign-stations" hidden><legend>${t("cp.stations")}</legend></fieldset>
    <label>${t("cp.team")}<input name="team" type="number" min="2" max="8" value="2"></label>
    <label>${t("cp.complete_by")}<input name="complete_by" type="date"></label>
    <label>${t("ap.batch")}<select name="batch"></select></label>
    <button type="submit" class="primary" id="campaign-submit">${t("cp.plan")}</button>`;
  const form = $("#campaign-form");
  form.elements.targeted.addEventListener("change", () => { $("#campaign-targets").hidden = !form.elements.targeted.checked; });
  form.elements.mode.addEventListener("change", renderStationChoice);
  form.elements.region.addEventListener("change", renderStationChoice);
  renderBatchChoice();
}

// An industry's name in the console's language; a code the console does not know shows as is.
function industryName(code) {
  const name = t(`industry.${code}`);
  return name === `industry.${code}` ? code : name;
}

// The stations of the scope's inspectors, for the modes that draw within stations: several
// may be ticked for 若干所内随机, one for 单一所内随机.
function renderStationChoice() {
  const form = $("#campaign-form");
  const mode = form.elements.mode.value;
  const box = $("#campaign-stations");
  box.hidden = mode !== "stations" && mode !== "station";
  const region = form.elements.region.value;
  const stations = [...new Set(C.inspectors.filter((i) => i.active && i.station && within(i.bureau, region)).map((i) => i.station))].sort();
  const kind = mode === "station" ? "radio" : "checkbox";
  box.innerHTML = `<legend>${t("cp.stations")}</legend>` + (stations.length
    ? stations.map((s) => check("stations", s, s, kind)).join("")
    : `<span class="muted">${t("cp.no_stations")}</span>`);
}

function renderCampaigns(campaigns) {
  const rows = campaigns.map((c) => {
    const draw = c.draw;
    const strata = draw ? draw.strata.filter((s) => s.population).map((s) =>
      `${esc(s.item)}·${esc(t(`risk.${s.risk_class}`))} ${s.quota}/${s.population}`).join("<br>") : "";
    const sealer = c.state === "planned" && c.created_by !== S.me.user
      ? `<form class="draw-form" data-campaign="${c.id}"><input name="beacon" required maxlength="256" placeholder="${t("cp.beacon")}"><button class="primary">${t("cp.draw")}</button></form>`
      : c.state === "planned" ? `<span class="muted">${t("cp.second_person")}</span>` : "";
    return `<tr data-campaign="${c.id}" data-state="${c.state}"><td>${c.id}</td><td>${esc(c.name)}</td><td>${esc(c.bureau_name)}</td>` +
      `<td>${esc(c.items.map((i) => i.name).join("、"))}</td><td>${esc(t(`cp.state_${c.state}`))}</td>` +
      `<td>${draw ? `${draw.inspections} / ${draw.eligible}` : c.drawing ? `${c.drawing.parts_recorded} / ${c.drawing.parts}` : ""}</td><td class="strata">${strata}</td><td>${sealer}</td></tr>`;
  }).join("");
  $("#campaign-list").innerHTML = `<thead><tr><th>${t("col_id")}</th><th>${t("cp.name")}</th><th>${t("cp.organiser")}</th>` +
    `<th>${t("insp.items")}</th><th>${t("col_state")}</th><th>${t("cp.drawn")}</th><th>${t("cp.strata")}</th><th></th></tr></thead><tbody>${rows}</tbody>`;
  $("#campaign-list").querySelectorAll(".draw-form").forEach((form) => form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const beacon = new FormData(form).get("beacon").trim();
      const drawn = await api(`/api/v1/campaigns/${form.dataset.campaign}/draw`, { method: "POST", body: JSON.stringify({ beacon }) });
      toast(t("cp.drawn_n", { n: drawn.draw.inspections }), "ok");
      loadCampaigns();
    } catch (error) {
      toast(`${t("failed")}: ${error.message}`, "error");
    }
  }));
}

function renderInspectors(inspectors) {
  const active = inspectors.filter((i) => i.active);
  $("#inspector-count").textContent = t("cp.inspectors_n", { n: active.length });
  const rows = active.slice(0, INSPECTORS_LISTED_MAX).map((i) =>
    `<tr data-inspector="${esc(i.id)}"><td>${esc(i.id)}</td><td>${esc(i.name)}</td><td>${esc(i.bureau_name)}</td>` +
    `<td>${esc(i.station || t("cp.office"))}</td><td>${esc(i.expertise.join("、"))}</td><td>${i.qualified ? "✓" : ""}</td></tr>`).join("");
  $("#inspector-list").innerHTML = `<thead><tr><th>${t("col_id")}</th><th>${t("cp.inspector_name")}</th><th>${t("cp.inspector_bureau")}</th>` +
    `<th>${t("cp.inspector_station")}</th><th>${t("cp.expertise")}</th><th>${t("cp.qualified")}</th></tr></thead><tbody>${rows}</tbody>`;
}

$("#roster-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = new FormData(e.target).get("roster");
  try {
    const text = await file.text();
    const { inspectors } = await api("/api/v1/inspectors/roster", { method: "POST", body: text, headers: { "Content-Type": "text/csv" } });
    toast(t("cp.enrolled_n", { n: inspectors.length }), "ok");
    e.target.reset();
    loadCampaigns();
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
});

$("#campaign-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(e.target);
  const targeted = data.get("targeted") === "on";
  const request = {
    name: data.get("name").trim(),
    items: data.getAll("items"),
    scope: {
      region: data.get("region"),
      industries: targeted ? data.getAll("industries") : [],
      risk_classes: targeted ? data.getAll("risk_classes") : [],
    },
    targeted,
    ratios_percent: { high: Number(data.get("high")), normal: Number(data.get("normal")), low: Number(data.get("low")) },
    inspector_mode: { mode: data.get("mode"), stations: ["stations", "station"].includes(data.get("mode")) ? data.getAll("stations") : [] },
    inspectors_per_inspection: Number(data.get("team")),
  };
  // A date picked is the end of that day in Beijing time, when the inspections are due.
  if (data.get("complete_by")) request.complete_by = `${data.get("complete_by")}T23:59:59+08:00`;
  // The batch of the annual plan it carries out (annual_plan.js).
  if (data.get("batch")) request.batch = { year: P.year, number: Number(data.get("batch")) };
  try {
    await api("/api/v1/campaigns", { method: "POST", body: JSON.stringify(request) });
    toast(t("done"), "ok");
    loadCampaigns();
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
});
