// The inspection-item list (随机抽查事项清单) in the campaign view: the list in force with its
// version, each item's legal basis, organising level and origin; adopting the national list the
// deployment ships; a province's own additions (added with their legal basis and a reason,
// retired with a reason); and the list's versions. Uses only the public HTTP API.
"use strict";

// Levels in the order of the tree: an item of level L may be organised at L or above.
const ORGANISER_DEPTH = { national: 0, province: 1, prefecture: 2, county: 3 };

// Whether the user's bureau may organise a campaign with `item`.
function mayOrganise(item) {
  const level = S.bureaus.get(S.me.bureau)?.level;
  return level in ORGANISER_DEPTH && ORGANISER_DEPTH[level] <= ORGANISER_DEPTH[item.organiser];
}

function isProvince() {
  return S.bureaus.get(S.me.bureau)?.level === "province";
}

async function loadItemList() {
  if (!$("#item-form").elements.length) renderItemForm();
  try {
    renderItemList(await api("/api/v1/inspection-item-list"));
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

function renderItemList(list) {
  $("#item-list-version").textContent = list.adopted ? t("il.version", { n: list.version }) : t("il.shipped");
  $("#item-list-adopt").hidden = list.adopted && !isProvince();
  const coverage = list.coverage;
  $("#item-coverage").textContent = coverage
    ? t("il.coverage", { rate: `${(coverage.rate * 100).toFixed(1)}%`, items: coverage.items, matters: coverage.matters }) : "";
  const rows = list.items.map((item) => {
    const origin = item.origin === "national" ? t("il.national") : t("il.added_by", { name: item.origin_name });
    const own = item.origin === S.me.bureau && !item.retired;
    const retire = own ? `<button type="button" class="retire-item" data-code="${esc(item.code)}">${t("il.retire")}</button>` : "";
    return `<tr data-item="${esc(item.code)}" class="${item.retired ? "muted" : ""}"><td>${esc(item.code)}</td><td>${esc(item.name)}</td>` +
      `<td>${esc(item.basis)}</td><td>${esc(t(`il.org_${item.organiser}`))}</td><td>${esc(origin)}</td>` +
      `<td>${item.retired ? esc(t("il.retired")) : ""}${retire}</td></tr>`;
  }).join("");
  $("#item-list").innerHTML = `<thead><tr><th>${t("il.code")}</th><th>${t("il.name")}</th><th>${t("il.basis")}</th>` +
    `<th>${t("il.organiser")}</th><th>${t("il.origin")}</th><th></th></tr></thead><tbody>${rows}</tbody>`;
  $("#item-history").innerHTML = list.versions.slice().reverse().map((v) =>
    `<tr><td>${esc(t("il.version", { n: v.number }))}</td><td>${esc(t(`il.step_${v.change}`))}</td>` +
    `<td>${esc(v.matters ?? [...v.added, ...v.revised, ...v.retired].join("、"))}</td><td>${esc(v.by)}</td><td>${esc(fmtTime(v.at))}</td><td>${esc(v.reason)}</td></tr>`).join("");
  $("#item-add").hidden = !(list.adopted && isProvince());
  $("#item-list").querySelectorAll(".retire-item").forEach((button) => button.addEventListener("click", async () => {
    const reason = prompt(t("il.retire_reason"));
    if (!reason) return;
    await changeItemList(`/api/v1/inspection-items/${encodeURIComponent(button.dataset.code)}/retire`, { reason });
  }));
}

function renderItemForm() {
  $("#item-form").innerHTML = `
    <label>${t("il.code")}<input name="code" required maxlength="32" pattern="[A-Za-z0-9._\\-]+"></label>
    <label>${t("il.name")}<input name="name" required maxlength="100"></label>
    <label>${t("il.basis")}<input name="basis" required maxlength="1000"></label>
    <label>${t("il.organiser")}<select name="organiser">${["province", "prefecture", "county"].map((o) =>
      `<option value="${o}"${o === "county" ? " selected" : ""}>${esc(t(`il.org_${o}`))}</option>`).join("")}</select></label>
    <label>${t("il.expertise")}<input name="expertise" required maxlength="64"></label>
    <label>${t("il.industries")}<input name="industries" maxlength="500"></label>
    <label>${t("il.reason")}<input name="reason" required maxlength="2000"></label>
    <button type="submit" class="primary" id="item-submit">${t("il.add")}</button>`;
}

// Sends one change of the list; the list and the campaign form are read again after it.
async function changeItemList(path, body) {
  try {
    await api(path, { method: "POST", body: JSON.stringify(body) });
    toast(t("done"), "ok");
    loadCampaigns();
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

$("#matters-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await changeItemList("/api/v1/inspection-item-list/matters", { total: Number(new FormData(e.target).get("total")) });
  e.target.reset();
});

$("#item-list-adopt").addEventListener("click", () => changeItemList("/api/v1/inspection-item-list/national", {}));

$("#item-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(e.target);
  const industries = data.get("industries").split(/[,，、\s]+/).filter(Boolean);
  await changeItemList("/api/v1/inspection-items", {
    code: data.get("code").trim(), name: data.get("name").trim(), basis: data.get("basis").trim(),
    organiser: data.get("organiser"), expertise: data.get("expertise").trim(), industries,
    reason: data.get("reason").trim(),
  });
  e.target.reset();
});
