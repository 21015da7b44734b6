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
