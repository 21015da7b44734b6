// The entity register (市场主体名录库) in the campaign view: the directory version draws start
// from, how many of the registration system's changes (设立/变更/吊销/注销) it does not take in
// yet (the next draw freezes them in), and the versions, each imported whole or frozen from the
// one before. Uses only the public HTTP API.
"use strict";

// Versions listed at most (newest first).
const REGISTER_VERSIONS_LISTED_MAX = 10;

async function loadRegister() {
  try {
    renderRegister(await api("/api/v1/register"));
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
}

function renderRegister(register) {
  const current = register.versions[0];
  $("#register-state").textContent = current
    ? t("rg.state", { n: current.number, entities: current.entities.toLocaleString(), journal: register.journal_length.toLocaleString() })
    : t("rg.none");
  const pending = register.pending_changes;
  $("#register-pending").textContent = pending == null ? (current ? t("rg.unbased") : "") : t("rg.pending", { n: pending.toLocaleString() });
  const rows = register.versions.slice(0, REGISTER_VERSIONS_LISTED_MAX).map((version) => {
    const how = version.frozen_from != null ? t("rg.frozen", { n: version.frozen_from })
      : version.through != null ? t("rg.imported") : t("rg.imported_old");
    const through = version.through != null ? t("rg.through", { n: version.through.toLocaleString() }) : "";
    return `<tr data-version="${version.number}"><td>${t("rg.version", { n: version.number })}</td><td>${version.entities.toLocaleString()}</td>` +
      `<td>${esc(how)}</td><td>${esc(through)}</td><td>${esc(version.sha256.slice(0, 12))}</td><td>${esc(fmtTime(version.at))}</td></tr>`;
  });
  $("#register-versions").innerHTML =
    `<tr><th>${t("rg.col_version")}</th><th>${t("rg.col_entities")}</th><th>${t("rg.col_how")}</th><th>${t("rg.col_through")}</th><th>SHA-256</th><th>${t("rg.col_at")}</th></tr>` +
    rows.join("");
}
