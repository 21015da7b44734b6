// People on the console: signing in with a login and password (a session token that lives as
// long as the tab, renewed while it is open), what a person may do on a task (claim, assign,
// give back, hand down; the ledger decides, the page offers only what it would accept), the
// handlers shown on a task, and "my tasks". Uses only the public HTTP API.
"use strict";
// A session lasts half an hour unless renewed; the page renews it well before.
const SESSION_RENEW_MS = 10 * 60 * 1000;

const isSession = (token) => token.startsWith("xs1.");

$("#sign-in-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = Object.fromEntries(new FormData(e.target).entries());
  $("#login-error").textContent = "";
  try {
    const response = await fetch(`${apiBase()}/api/v1/sessions`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ login: f.login.trim(), password: f.password }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body?.error?.message || response.statusText);
    await login(body.token);
  } catch (error) {
    $("#login-error").textContent = error.message;
  }
});

function keepSessionAlive() {
  clearInterval(S.renewTimer);
  S.renewTimer = setInterval(async () => {
    try {
      const renewed = await api("/api/v1/sessions/renew", { method: "POST" });
      S.token = renewed.token;
      sessionStorage.setItem("xt-session", S.token);
    } catch (error) {
      sessionEndedOrRenewed();
    }
  }, SESSION_RENEW_MS);
}

// The live connection was refused: the session ended (account disabled, password changed,
// signed out elsewhere) or only the token it opened with expired after a renewal.
async function sessionEndedOrRenewed() {
  try {
    await api("/api/v1/me");
    S.ws?.close(); // the current token still works: connect again with it
  } catch (error) {
    forgetToken();
    location.reload();
  }
}

const myId = () => S.me?.person?.id;
const hasRole = (role) => Boolean(S.me?.person?.roles.includes(role));

function handledByMe(task) {
  const me = myId();
  return me !== undefined && (task.lead_handler?.id === me || (task.supporting_handlers || []).some((h) => h.id === me));
}

// Whether the signed-in person may take `action` on `task` by the ledger's rules of handling
// (machine tokens act as the unit's desk: assign, give back and hand down, never claim).
function personAllows(task, action) {
  const person = S.me.person;
  const unit = task.handling_unit || task.assignee_bureau;
  const head = person && hasRole("head") && (person.unit === unit || person.unit === task.assignee_bureau);
  const lead = task.lead_handler;
  const isLead = person && lead?.id === person.id;
  switch (action) {
    case "claim": return Boolean(person) && !lead && person.unit === unit && (hasRole("handler") || hasRole("head"));
    case "assign": return !person || head;
    case "release": return Boolean(lead) && (!person || isLead || head);
    case "hand_down": {
      const stations = [...S.bureaus.values()].some((b) => b.parent === task.assignee_bureau && b.level === "station" && !b.retired);
      const manages = !person || (person.unit === task.assignee_bureau && (hasRole("head") || hasRole("dispatcher")));
      return (stations || Boolean(task.handling_unit)) && manages;
    }
    case "feedback": return !person || !lead || isLead || head || handledByMe(task);
    case "complete": case "request_extension": case "pause": case "resume":
      return !person || !lead || isLead || head;
    default: return true;
  }
}

function handlersLine(task) {
  const parts = [];
  if (task.handling_unit) parts.push(`${t("handling_unit")}: ${esc(task.handling_unit_name || bureauName(task.handling_unit))}`);
  if (task.lead_handler) parts.push(`${t("lead")}: <b class="lead-handler">${esc(task.lead_handler.name)}</b>`);
  if (task.supporting_handlers?.length) parts.push(`${t("supporting")}: ${esc(task.supporting_handlers.map((h) => h.name).join("、"))}`);
  return parts.length ? `${parts.join(" · ")}<br>` : "";
}

// The form of an assignment (the unit's handlers: a lead and supporting ones) or of a hand-down
// (the assignee county's open stations, or the county itself to take it back).
async function handlerForm(task, action) {
  const form = $("#action-form");
  let fields;
  if (action === "assign") {
    const unit = task.handling_unit || task.assignee_bureau;
    let people = [];
    try {
      ({ people } = await api(`/api/v1/people?unit=${unit}`));
    } catch (error) {
      return toast(`${t("failed")}: ${error.message}`, "error");
    }
    const handlers = people.filter((p) => p.unit === unit && (p.roles.includes("handler") || p.roles.includes("head")));
    const options = handlers.map((p) => `<option value="${p.id}">${esc(p.name)} (${esc(p.login)})</option>`).join("");
    fields = `<label>${t("lead")}<select name="lead" required>${options}</select></label>` +
      `<label>${t("supporting")}<select name="supporting" multiple size="4">${options}</select></label>`;
  } else {
    const units = [...S.bureaus.values()].filter((b) => b.parent === task.assignee_bureau && b.level === "station" && !b.retired);
    const options = [S.bureaus.get(task.assignee_bureau) || { code: task.assignee_bureau, name: task.assignee_bureau }, ...units]
      .filter((b) => b.code !== (task.handling_unit || task.assignee_bureau))
      .map((b) => `<option value="${b.code}">${esc(b.name)} ${b.code}</option>`).join("");
    fields = `<label>${t("handling_unit")}<select name="unit" required>${options}</select></label>`;
  }
  form.innerHTML = `<form class="action-form">${fields}<button type="submit" class="primary" data-confirm="${action}">${t("confirm")}</button></form>`;
  form.querySelector("form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (action === "hand_down") return act(task, action, { unit: e.target.unit.value });
    const lead = Number(e.target.lead.value);
    const supporting = [...e.target.supporting.selectedOptions].map((o) => Number(o.value)).filter((id) => id !== lead);
    act(task, action, { lead, supporting });
  });
}

// ---------- accounts (人员) ----------
// The accounts of the unit selected in the tree (or the user's own) and the stations below it,
// for a command centre or a person who manages accounts: make one, disable or enable it, reset
// its password, change its roles. The ledger decides who may; the page offers it to those who
// could.
const ROLES = ["dispatcher", "head", "handler", "leadership", "accounts"];
const PP = { unit: null };

function managesPeople() {
  if (!S.me) return false;
  return S.me.person ? hasRole("accounts") || hasRole("dispatcher") : S.me.role === "command";
}

function peopleUnit() {
  return S.filter.bureau || S.me.bureau;
}

function renderPeopleButton() {
  const button = $("#people-open");
  button.hidden = !managesPeople();
  if (!button.hidden) button.textContent = t("pp.manage", { unit: bureauName(peopleUnit()) });
}

async function loadPeople() {
  $("#people-title").textContent = t("pp.title", { unit: bureauName(PP.unit) });
  $("#people-error").textContent = "";
  try {
    const { people } = await api(`/api/v1/people?unit=${PP.unit}&include_disabled=true`);
    $("#people-rows").innerHTML = people.map((p) => {
      const buttons = `<button type="button" data-pp="${p.enabled ? "disable" : "enable"}">${esc(t(`pp.${p.enabled ? "disable" : "enable"}`))}</button>` +
        `<button type="button" data-pp="password">${esc(t("pp.reset"))}</button><button type="button" data-pp="roles">${esc(t("pp.set_roles"))}</button>`;
      return `<tr data-person="${p.id}" class="${p.enabled ? "" : "closed"}"><td>${esc(p.login)}</td><td class="name">${esc(p.name)}</td>` +
        `<td>${esc(p.unit_name)}</td><td>${esc(p.roles.map((r) => t(`role.${r}`)).join("、"))}</td>` +
        `<td>${p.enabled ? "" : esc(t("pp.disabled"))}</td><td>${buttons}</td></tr>`;
    }).join("") || `<tr><td>${esc(t("pp.none"))}</td></tr>`;
    $("#people-rows").querySelectorAll("button[data-pp]").forEach((button) =>
      button.addEventListener("click", () => personAction(Number(button.closest("tr").dataset.person), button.dataset.pp)));
  } catch (error) {
    $("#people-error").textContent = error.message;
  }
}

async function personAction(id, action) {
  let body;
  if (action === "disable") {
    const note = prompt(t("reason_required"), "");
    if (!note) return;
    body = { note };
  } else if (action === "password") {
    const password = prompt(t("pp.new_password"), "");
    if (!password) return;
    body = { password };
  } else if (action === "roles") {
    const roles = prompt(t("pp.roles_hint"), "");
    if (!roles) return;
    body = { roles: roles.split(/[,，、\s]+/).filter(Boolean) };
  } else {
    body = {};
  }
  await changePeople(`/api/v1/people/${id}/${action}`, body);
}

async function changePeople(path, body) {
  try {
    const person = await api(path, { method: "POST", body: JSON.stringify(body) });
    toast(`${person.name} · ${t("done")}`, "ok");
    await loadPeople();
  } catch (error) {
    $("#people-error").textContent = error.message;
  }
}

$("#people-open").addEventListener("click", () => {
  PP.unit = peopleUnit();
  const form = $("#person-form");
  form.reset();
  const units = [...S.bureaus.values()].filter((b) => !b.retired && (b.code === PP.unit || (b.level === "station" && b.parent === PP.unit)));
  form.unit.innerHTML = units.map((b) => `<option value="${b.code}">${esc(b.name)} ${b.code}</option>`).join("");
  form.querySelector("fieldset.roles").innerHTML = `<legend>${esc(t("pp.roles"))}</legend>` +
    ROLES.map((r) => `<label class="check"><input type="checkbox" name="roles" value="${r}"> ${esc(t(`role.${r}`))}</label>`).join("");
  $("#people-dialog").showModal();
  loadPeople();
});
$("#people-close").addEventListener("click", () => $("#people-dialog").close());
$("#person-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(e.target);
  const body = { login: data.get("login").trim(), name: data.get("name").trim(), unit: data.get("unit"),
    roles: data.getAll("roles"), password: data.get("password") };
  await changePeople("/api/v1/people", body);
  e.target.reset();
});
