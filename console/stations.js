// The stations (市场监管所) of a county, for command-centre users of the county or above: the
// county's stations with their areas, enrol one, rename it, change its areas, close it with a
// reason, reopen it. Opened from the bureau tree when a county is selected (or is the user's
// own bureau). Uses only the public HTTP API; the tree is reloaded after each change.
"use strict";
const ST = { county: null };

// The county the panel is for: the one filtered to in the tree, or the user's own.
function stationsCounty() {
  const code = S.filter.bureau || S.me.bureau;
  return S.bureaus.get(code)?.level === "county" ? code : null;
}

function renderStationsButton() {
  const county = S.me?.role === "command" ? stationsCounty() : null;
  const button = $("#stations-open");
  button.hidden = !county;
  if (county) button.textContent = t("st.manage", { county: bureauName(county) });
}

async function loadStations() {
  $("#stations-title").textContent = t("st.title", { county: bureauName(ST.county) });
  $("#stations-error").textContent = "";
  try {
    const { stations } = await api(`/api/v1/stations?bureau=${ST.county}&include_closed=true`);
    $("#station-rows").innerHTML = stations.map((s) => {
      const open = !s.closed_at;
      const buttons = open
        ? `<button type="button" data-st="rename">${esc(t("st.rename"))}</button><button type="button" data-st="areas">${esc(t("st.set_areas"))}</button><button type="button" data-st="close">${esc(t("st.close"))}</button>`
        : `<button type="button" data-st="reopen">${esc(t("st.reopen"))}</button>`;
      return `<tr data-station="${esc(s.code)}" class="${open ? "" : "closed"}"><td>${esc(s.code)}</td><td class="name">${esc(s.name)}</td>` +
        `<td>${esc(s.areas.join("、"))}</td><td>${open ? "" : esc(t("st.closed"))}</td><td>${buttons}</td></tr>`;
    }).join("") || `<tr><td>${esc(t("st.none"))}</td></tr>`;
    $("#station-rows").querySelectorAll("button[data-st]").forEach((button) =>
      button.addEventListener("click", () => stationAction(button.closest("tr").dataset.station, button.dataset.st)));
  } catch (error) {
    $("#stations-error").textContent = error.message;
  }
}

const splitAreas = (text) => text.split(/[,，、|\s]+/).map((a) => a.trim()).filter(Boolean);

async function stationAction(code, action) {
  const station = S.bureaus.get(code);
  let body;
  if (action === "rename") {
    const name = prompt(t("st.name"), station?.name || "");
    if (!name) return;
    body = { name };
  } else if (action === "areas") {
    const areas = prompt(t("st.areas_hint"), "");
    if (areas === null) return;
    body = { areas: splitAreas(areas) };
  } else if (action === "close") {
    const note = prompt(t("reason_required"), "");
    if (!note) return;
    body = { note };
  } else {
    body = {};
  }
  await changeStations(`/api/v1/stations/${code}/${action}`, body);
}

async function changeStations(path, body) {
  try {
    const station = await api(path, { method: "POST", body: JSON.stringify(body) });
    toast(`${station.name} · ${t("done")}`, "ok");
    await loadBureaus();
    renderAll();
    await loadStations();
  } catch (error) {
    $("#stations-error").textContent = error.message;
  }
}

$("#stations-open").addEventListener("click", () => {
  ST.county = stationsCounty();
  if (!ST.county) return;
  $("#station-form").reset();
  $("#stations-dialog").showModal();
  loadStations();
});
$("#stations-close").addEventListener("click", () => $("#stations-dialog").close());
$("#station-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = Object.fromEntries(new FormData(e.target).entries());
  await changeStations("/api/v1/stations", { county: ST.county, name: f.name.trim(), areas: splitAreas(f.areas || "") });
  e.target.reset();
});
