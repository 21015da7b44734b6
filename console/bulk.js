// Bulk actions (批量操作) on the board: tick tasks (or every task the filters show), pick an
// action every ticked task offers this user, and send it once: POST /api/v1/tasks/bulk/{action}
// answers task by task, and the tasks it could not act on stay ticked, with the reason shown.
// Uses only the public HTTP API.
"use strict";

// Actions that name a record, people or a station per task, or only show something: one task
// at a time, in the drawer.
const BULK_EXCLUDED = new Set(["record_on_site", "assign", "hand_down", "show_reporter"]);
// Refusals listed under the bar at most; the count covers all of them.
const BULK_REFUSALS_LISTED_MAX = 20;

function pickedTasks() {
  return [...S.picked].map((id) => S.tasks.get(id)).filter(Boolean);
}

// Called after each board render: binds the boxes and brings the bar up to date.
function bindPicks() {
  $("#task-rows").querySelectorAll("input.pick").forEach((box) => {
    box.addEventListener("click", (event) => event.stopPropagation());
    box.addEventListener("change", () => {
      const id = Number(box.dataset.pick);
      if (box.checked) S.picked.add(id); else S.picked.delete(id);
      renderBulkBar();
    });
  });
  renderBulkBar();
}

function renderBulkBar() {
  for (const id of S.picked) if (!S.tasks.has(id)) S.picked.delete(id);
  const tasks = pickedTasks();
  $("#bulk-bar").hidden = tasks.length === 0;
  if (!tasks.length) return;
  $("#bulk-count").textContent = t("bulk.picked", { n: tasks.length });
  const common = tasks.map(allowedActions).reduce((a, b) => a.filter((x) => b.includes(x))).filter((a) => !BULK_EXCLUDED.has(a));
  const select = $("#bulk-action");
  // Rebuilt only when the choice changes, so a live update does not undo what the user picked.
  if (select.dataset.actions !== common.join()) {
    const current = select.value;
    select.dataset.actions = common.join();
    select.innerHTML = common.map((a) => `<option value="${a}" ${a === current ? "selected" : ""}>${esc(t(`act.${a}`))}</option>`).join("");
    renderBulkFields();
  }
  $("#bulk-run").disabled = common.length === 0;
}

// The fields the chosen action takes for every task: the assignee of a dispatch, the outcome of
// a completion.
function renderBulkFields() {
  const action = $("#bulk-action").value;
  const outcomes = pickedTasks().every((task) => task.inspection) ? INSPECTION_OUTCOMES : OUTCOMES;
  $("#bulk-fields").innerHTML =
    (action === "dispatch" ? `<select name="assignee_bureau">${assigneeOptions()}</select>` : "") +
    (action === "complete" ? `<select name="outcome">${outcomes.map((o) => `<option value="${o}">${esc(t(`out.${o}`))}</option>`).join("")}</select>` : "");
}

async function runBulk() {
  const action = $("#bulk-action").value;
  if (!action) return;
  const fields = Object.fromEntries([...$("#bulk-fields").querySelectorAll("select")].map((s) => [s.name, s.value]));
  const note = $("#bulk-note").value.trim();
  if (S.me.actions.some((rule) => rule.name === action && rule.requires_note) && !note) return toast(t("reason_required"), "error");
  $("#bulk-run").disabled = true;
  try {
    const answer = await api(`/api/v1/tasks/bulk/${action}`, {
      method: "POST",
      headers: { "Idempotency-Key": `console-bulk-${crypto.randomUUID ? crypto.randomUUID() : Math.random()}` },
      body: JSON.stringify({ tasks: [...S.picked], note, ...fields }),
    });
    const refused = answer.results.filter((item) => item.outcome === "refused");
    for (const item of answer.results) if (item.outcome !== "refused") S.picked.delete(item.task);
    $("#bulk-result").innerHTML = `${esc(t("bulk.result", { done: answer.done, refused: answer.refused }))}` +
      refused.slice(0, BULK_REFUSALS_LISTED_MAX).map((item) => `<br>#${item.task} ${esc(item.error.message)}`).join("");
    toast(t("bulk.result", { done: answer.done, refused: answer.refused }), refused.length ? "warn" : "ok");
    $("#bulk-note").value = "";
    $("#pick-all").checked = S.picked.size > 0;
  } catch (error) {
    toast(`${t("failed")}: ${error.message}`, "error");
  }
  renderAll();
}

$("#pick-all").addEventListener("change", (event) => {
  const rows = [...$("#task-rows").querySelectorAll("input.pick")];
  for (const box of rows) if (event.target.checked) S.picked.add(Number(box.dataset.pick)); else S.picked.delete(Number(box.dataset.pick));
  renderAll();
});
$("#bulk-action").addEventListener("change", renderBulkFields);
$("#bulk-run").addEventListener("click", runBulk);
$("#bulk-clear").addEventListener("click", () => { S.picked.clear(); $("#pick-all").checked = false; $("#bulk-result").textContent = ""; renderAll(); });
