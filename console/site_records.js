// On-site inspection records (现场检查记录) in the task drawer: each record with its checklist
// answers, the firm's representative, where it was made, its digest, and its photos and
// signatures, fetched with the console's token (an <img> cannot send one) and shown from blob
// URLs. Records are made on the inspectors' phones, not here.
"use strict";

const SR_ANSWER_CLASS = { conforms: "ok", does_not_conform: "bad", not_applicable: "" };
// A conformity answer in words; a number or a text as written.
const srAnswer = (answer) => (answer in SR_ANSWER_CLASS ? t(`sr.answer.${answer}`) : answer);

function siteRecordsCard(task) {
  const records = task.site_records || [];
  if (!records.length) return "";
  const one = (r) => {
    const answers = r.answers.map((a) =>
      `<tr><td>${esc(a.point)}</td><td>${esc(a.wording)}<div class="basis">${esc(a.basis)}</div></td>` +
      `<td class="${SR_ANSWER_CLASS[a.answer] ?? ""}">${esc(srAnswer(a.answer))}` +
      `${a.remark ? `<div class="note">${esc(a.remark)}</div>` : ""}</td></tr>`).join("");
    const files = r.attachments.map((f) => f.media_type.startsWith("image/")
      ? `<figure><img alt="" data-attachment="${esc(f.sha256)}" data-task="${task.id}"><figcaption>${esc(t(`sr.kind.${f.kind}`))}${f.signer ? ` · ${esc(f.signer)}` : ""}</figcaption></figure>`
      : `<a href="#" data-file-link="attachments/${esc(f.sha256)}" data-task="${task.id}">${esc(t(`sr.kind.${f.kind}`))} (PDF)</a>`).join("");
    const where = r.position ? `${r.position.latitude.toFixed(5)}, ${r.position.longitude.toFixed(5)} (±${Math.round(r.position.accuracy_m)} m)` : "—";
    return `<div class="site-record">
      <p><b>${esc(t("sr.number", { n: r.number }))}</b> · ${esc(r.recorded_by.split(":").pop())} · ${fmtTime(r.recorded_at)}
        · <span class="${r.complete ? "ok" : "bad"}">${esc(t(r.complete ? "sr.complete" : "sr.incomplete"))}</span><br>
        ${esc(t("sr.representative"))}: ${r.representative ? `${esc(r.representative.name)} ${esc(r.representative.title)}` : "—"} · ${esc(t("sr.position"))}: ${esc(where)}<br>
        <span class="digest">${esc(t("sr.digest"))}: ${esc(r.digest)}</span>
        · <a href="#" data-file-link="site_records/${r.number}/document" data-task="${task.id}">${esc(t("sr.document"))}</a></p>
      ${answers ? `<table class="answers">${answers}</table>` : ""}
      ${r.notes ? `<p class="note">${esc(r.notes)}</p>` : ""}
      <div class="attachments">${files}</div></div>`;
  };
  return `<div class="card site-records"><h3>${esc(t("sr.title"))}</h3>${records.map(one).join("")}</div>`;
}

// `file` below the task: `attachments/<sha256>` or `site_records/<n>/document`.
async function taskFileBlob(taskId, file) {
  const response = await fetch(`${apiBase()}/api/v1/tasks/${taskId}/${file}`, { headers: { Authorization: `Bearer ${S.token}` } });
  // The server's JSON error says why (document_font_missing, attachment_unavailable, …).
  if (!response.ok) throw new Error((await response.json().catch(() => null))?.error?.message || response.statusText);
  return response.blob();
}

// Fills the drawer's record images; a PDF (an attachment, a record's document) opens in a new tab.
function showAttachments(root) {
  root.querySelectorAll("img[data-attachment]").forEach((img) => {
    taskFileBlob(img.dataset.task, `attachments/${img.dataset.attachment}`)
      .then((blob) => { img.src = URL.createObjectURL(blob); })
      .catch(() => img.replaceWith(Object.assign(document.createElement("span"), { textContent: "—" })));
  });
  root.querySelectorAll("[data-file-link]").forEach((link) => link.addEventListener("click", async (event) => {
    event.preventDefault();
    try {
      const blob = await taskFileBlob(link.dataset.task, link.dataset.fileLink);
      window.open(URL.createObjectURL(blob), "_blank", "noopener");
    } catch (error) {
      toast(error.message, "error");
    }
  }));
}
