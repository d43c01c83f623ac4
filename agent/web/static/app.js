// synthloop web UI: plain JS, no build step. Polls the run state; every action is one JSON request.
"use strict";

const TASKS = ["detection", "instance_segmentation", "semantic_segmentation", "captioning",
  "referring_expressions", "scene_graph"];
const FORMATS = ["coco", "yolo", "voc", "hf"];  // the ExportFormat enum's values, in its order
const $ = (id) => document.getElementById(id);

const ui = {
  run: null,          // current run id (null: composing a new run)
  since: 0,           // next conversation event to fetch
  pendingKey: null,   // which pending spec the table shows (so polling does not clobber edits)
  spec: null,         // the spec shown in the table
  tab: "kept",
  galleryKey: "",     // what the gallery last showed (refresh when it changes)
  galleryLimit: 60,
  pair: null,
  polling: null,
  inflight: false,    // a state request is under way
  again: false,       // poll once more when it returns
  csrf: null,         // this session's CSRF token (GET /api/session), sent on every POST
};

// ------------------------------------------------------------------------------------------ helpers

// The session's CSRF token: the server refuses a POST without it (a page of another site cannot read it).
async function csrfToken(renew = false) {
  if (!ui.csrf || renew) {
    const response = await fetch("/api/session", { credentials: "same-origin" });
    ui.csrf = (await response.json()).csrf;
  }
  return ui.csrf;
}

// fetch with the CSRF header on anything but GET; a stale token (server restarted) is renewed once.
async function fetchWithCsrf(path, opts, retried = false) {
  const method = (opts.method || "GET").toUpperCase();
  if (method !== "GET") opts.headers = { ...(opts.headers || {}), "X-Synthloop-CSRF": await csrfToken(retried) };
  const response = await fetch(path, opts);
  if (response.status === 403 && method !== "GET" && !retried) {
    const body = await response.clone().json().catch(() => ({}));
    if ((body.error || "").includes("CSRF")) return fetchWithCsrf(path, opts, true);
  }
  return response;
}

async function api(path, options = {}) {
  const opts = { credentials: "same-origin", ...options };
  if (opts.json !== undefined) {
    opts.method = opts.method || "POST";
    opts.headers = { "Content-Type": "application/json" };
    opts.body = JSON.stringify(opts.json);
    delete opts.json;
  }
  const response = await fetchWithCsrf(path, opts);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  }
  return body;
}

function showError(err) {
  const box = $("error");
  if (!err) { box.hidden = true; box.textContent = ""; return; }
  box.textContent = String(err.message || err);
  box.hidden = false;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// --------------------------------------------------------------------------------------------- runs

async function refreshRuns() {
  try {
    const data = await api("/api/runs");
    const list = $("runs");
    list.replaceChildren(...data.runs.map((run) => el("li", {
      class: run.id === ui.run ? "active" : "", "data-run": run.id, title: run.id,
      onclick: () => openRun(run.id),
    }, el("span", { class: "run-title", text: run.title }),
    el("span", { class: `badge ${run.status}`, text: run.status }),
    el("span", { class: "run-count", text: run.total ? `${run.kept}/${run.total}` : "" }))));
  } catch (err) { showError(err); }
}

function resetView() {
  ui.since = 0; ui.pendingKey = null; ui.spec = null; ui.galleryKey = ""; ui.pair = null;
  ui.galleryLimit = 60;
  $("messages").replaceChildren();
  $("spec-panel").hidden = true;
  $("progress").hidden = true;
  $("results").hidden = true;
  $("resume").hidden = true;
  $("download").hidden = true;
  $("status").hidden = true;
  showError(null);
}

function newRun() {
  ui.run = null;
  resetView();
  $("run-title").textContent = "New run";
  $("messages").append(el("div", { class: "msg assistant", text: "What dataset do you want? Describe the " +
    "images, the objects, how many, and the formats (COCO, YOLO, Hugging Face)." }));
  $("chat-input").placeholder = "e.g. 200 kitchen scenes with cups and plates, masks, COCO and YOLO";
  $("chat-input").focus();
  refreshRuns();
}

function openRun(id) {
  ui.run = id;
  resetView();
  $("run-title").textContent = id;
  refreshRuns();
  poll();
}

// ------------------------------------------------------------------------------------- conversation

function addMessage(event) {
  const classes = ["msg", event.role];
  if (event.error) classes.push("error-msg");
  if (event.warning) classes.push("warning-msg");
  if (event.note) classes.push("note-msg");
  const node = el("div", { class: classes.join(" "), "data-seq": event.seq });
  if (event.summary) node.append(el("pre", { text: event.text }));
  else node.textContent = event.text;
  if (event.questions && event.questions.length) node.classList.add("question");
  $("messages").append(node);
  $("messages").scrollTop = $("messages").scrollHeight;
}

async function send(event) {
  event.preventDefault();
  const input = $("chat-input");
  const text = input.value.trim();
  if (!text || $("send").disabled) return;
  showError(null);
  $("send").disabled = true;  // one request per click: a double click must not start two runs
  try {
    if (!ui.run) {
      const created = await api("/api/runs", { json: { request: text } });
      input.value = "";
      openRun(created.id);
    } else {
      await api(`/api/runs/${ui.run}/reply`, { json: { text } });
      input.value = "";
      poll();
    }
  } catch (err) { showError(err); } finally { $("send").disabled = false; }
}

async function replyAction(action, extra = {}) {
  showError(null);
  try {
    await api(`/api/runs/${ui.run}/reply`, { json: { action, ...extra } });
    poll();
  } catch (err) { showError(err); }
}

// --------------------------------------------------------------------------------------- spec table

function input(field, value, type = "text", attrs = {}) {
  return el("input", { "data-field": field, type, value: value ?? "", ...attrs });
}

function renderSpec(spec, editable) {
  ui.spec = spec;
  const rows = [];
  const row = (label, ...cells) => rows.push(el("tr", {}, el("th", { text: label }), el("td", {}, ...cells)));
  const objects = el("table", { class: "objects", id: "objects-table" },
    el("tr", {}, el("th", { text: "class" }), el("th", { text: "min" }), el("th", { text: "max" }),
      el("th", { text: "attributes" }), el("th")));
  spec.objects.forEach((obj) => objects.append(objectRow(obj)));
  row("objects", objects, el("button", { type: "button", class: "small", id: "add-class", text: "+ class",
    onclick: () => $("objects-table").append(objectRow({ name: "", min_count: 0, max_count: 2, attributes: [] })) }));
  row("images", input("n_images", spec.n_images, "number", { min: 1 }));
  row("size", input("width", spec.width, "number", { min: 32, max: 4096 }), " × ",
    input("height", spec.height, "number", { min: 32, max: 4096 }));
  row("tasks", ...TASKS.map((t) => el("label", { class: "check" },
    el("input", { type: "checkbox", "data-task": t, checked: spec.tasks.includes(t) }), t.replace(/_/g, " "))));
  row("formats", ...FORMATS.map((f) => el("label", { class: "check" },
    el("input", { type: "checkbox", "data-format": f, checked: spec.formats.includes(f) }), f)));
  const difficulty = el("select", { "data-field": "difficulty" },
    ...["easy", "medium", "hard"].map((d) => el("option", { value: d, selected: d === spec.difficulty, text: d })));
  row("difficulty", difficulty);
  row("splits", ...["train", "val", "test"].map((s) => el("label", { class: "check" }, `${s} `,
    input(`split_${s}`, spec.splits[s], "number", { step: 0.05, min: 0, max: 1 }))));
  row("scene", input("scene", spec.scene));
  row("style", input("style", spec.style));
  row("seed", input("seed", spec.seed, "number", { min: 0 }));
  if (spec.defaults_used && spec.defaults_used.length) row("defaults", el("span", { class: "muted",
    text: spec.defaults_used.join("; ") }));
  (spec.notices || []).forEach((n) => row(n.kind === "cannot_deliver" ? "cannot deliver" : "not understood",
    el("strong", { class: "notice", text: n.reason ? `${n.text} — ${n.reason}` : n.text })));
  // where each class's objects come from (the renderer's and the layout sampler's plan), before approval
  if (spec.plan_notes && spec.plan_notes.length) row("objects from", el("ul", { class: "plan-notes" },
    ...spec.plan_notes.map((note) => el("li", { text: note }))));
  if (spec.questions && spec.questions.length) {
    row("question", el("strong", { text: questionText(spec.questions[0]) }));
  }
  const table = el("table", { class: "spec" }, ...rows);
  table.querySelectorAll("input, select, button").forEach((n) => { n.disabled = !editable; });
  $("spec-table").replaceChildren(table);
  for (const id of ["apply-edit", "approve", "cancel"]) $(id).disabled = !editable;
  document.querySelector("#spec-panel .actions").hidden = !editable;
  $("spec-state").textContent = editable ? "— waiting for your approval" : "";
  $("spec-panel").hidden = false;
}

// Questions are {source, text}; spec files written before that hold plain strings.
function questionText(question) {
  return typeof question === "string" ? question : question.text;
}

function objectRow(obj) {
  return el("tr", { class: "object-row" },
    el("td", {}, input("name", obj.name, "text", { class: "obj-name", placeholder: "class" })),
    el("td", {}, input("min_count", obj.min_count, "number", { min: 0, class: "num" })),
    el("td", {}, input("max_count", obj.max_count, "number", { min: 0, class: "num" })),
    el("td", {}, input("attributes", (obj.attributes || []).join(", "), "text", { placeholder: "e.g. red" })),
    el("td", {}, el("button", { type: "button", class: "small", title: "remove", text: "×",
      onclick: (e) => e.target.closest("tr").remove() })));
}

function collectSpec() {
  const spec = JSON.parse(JSON.stringify(ui.spec));
  const value = (field) => document.querySelector(`#spec-table [data-field="${field}"]`).value;
  const number = (field) => Number(value(field));
  spec.objects = [...document.querySelectorAll("#objects-table .object-row")].map((tr) => {
    const get = (f) => tr.querySelector(`[data-field="${f}"]`).value;
    const prompt = (ui.spec.objects.find((o) => o.name === get("name").trim()) || {}).prompt || "";
    return { name: get("name").trim().toLowerCase(), prompt, min_count: Number(get("min_count")),
      max_count: Number(get("max_count")),
      attributes: get("attributes").split(",").map((a) => a.trim()).filter(Boolean) };
  });
  spec.n_images = number("n_images");
  spec.width = number("width");
  spec.height = number("height");
  spec.seed = number("seed");
  spec.difficulty = value("difficulty");
  spec.scene = value("scene");
  spec.style = value("style");
  spec.tasks = TASKS.filter((t) => document.querySelector(`[data-task="${t}"]`).checked);
  spec.formats = FORMATS.filter((f) => document.querySelector(`[data-format="${f}"]`).checked);
  spec.splits = { train: number("split_train"), val: number("split_val"), test: number("split_test") };
  return spec;
}

// ------------------------------------------------------------------------------------------- polling

async function poll() {
  if (ui.inflight) { ui.again = true; return; }  // one request at a time, so events arrive once, in order
  ui.inflight = true;
  try { await pollOnce(); } finally { ui.inflight = false; }
  if (ui.again) { ui.again = false; poll(); }
}

async function pollOnce() {
  const id = ui.run;
  if (!id) return;
  let state;
  try {
    state = await api(`/api/runs/${id}/state?since=${ui.since}`);
  } catch (err) { showError(err); return; }
  if (id !== ui.run) return;
  state.events.forEach(addMessage);
  ui.since = state.next;
  const badge = $("status");
  badge.hidden = false;
  badge.textContent = state.status;
  badge.className = `badge ${state.status}`;
  $("resume").hidden = state.alive || !["stopped", "error"].includes(state.status);
  const download = $("download");
  download.hidden = !state.exported;
  download.href = `/api/runs/${id}/download.zip`;

  const waiting = state.pending !== null && state.status === "waiting";
  const key = waiting ? `pending-${state.next}-${JSON.stringify(state.pending.spec)}` : `spec-${state.status}`;
  if (state.spec && key !== ui.pendingKey) {
    ui.pendingKey = key;
    renderSpec(state.pending ? state.pending.spec : state.spec, waiting);
  }
  $("chat-input").placeholder = waiting
    ? (state.pending.questions.length ? "Answer the question…" : "'yes' to run, 'cancel', or describe a change")
    : "Ask for another dataset with + New run";

  const started = state.kept + state.rejected > 0 || ["running", "exporting", "done"].includes(state.status);
  if (state.total && started) {
    $("progress").hidden = false;
    const share = Math.min(100, Math.round((100 * state.kept) / state.total));
    $("bar-fill").style.width = `${share}%`;
    $("progress-text").textContent = `${state.status}: kept ${state.kept}/${state.total} · ` +
      `rejected ${state.rejected} attempts` + (state.exported ? " · exported" : "");
  }
  $("label-count").textContent = state.labels ? `${state.labels} human label(s) saved` : "";
  const galleryKey = `${state.kept}-${state.rejected}-${state.exported}-${ui.tab}-${ui.galleryLimit}`;
  if (started && galleryKey !== ui.galleryKey) {
    ui.galleryKey = galleryKey;
    $("results").hidden = false;
    refreshGallery();
  }
  if (["done", "cancelled", "error", "stopped"].includes(state.status) && !state.alive) refreshRuns();
}

// ------------------------------------------------------------------------------------------- gallery

async function refreshGallery() {
  if (!ui.run) return;
  const ab = ui.tab === "ab";
  $("ab").hidden = !ab;
  $("gallery").hidden = ab;
  $("gallery-more").hidden = true;
  document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === ui.tab));
  if (ab) { if (!ui.pair) nextPair(); return; }
  if (ui.tab === "agreement") { showAgreement(); return; }
  try {
    const data = await api(`/api/runs/${ui.run}/samples?kind=${ui.tab}&limit=${ui.galleryLimit}`);
    $("gallery").replaceChildren(...data.samples.map(card));
    if (!data.samples.length) $("gallery").append(el("p", { class: "muted", text: `no ${ui.tab} samples yet` }));
    $("gallery-more").hidden = data.total <= data.samples.length;
  } catch (err) { showError(err); }
}

function caption(sample) {
  const id = sample.image_id !== null ? ` · COCO id ${sample.image_id}` : "";
  const split = sample.split ? ` · ${sample.split}` : "";
  const attempt = sample.kind === "rejected" ? ` · attempt ${sample.attempt}` : "";
  return `${sample.sample_id}${split}${id}${attempt}`;
}

// Where a sample's objects came from (the renderer's provenance): one line per object, the background, references.
function originLines(origins) {
  if (!origins) return [];
  const lines = origins.objects.map((o) => `${o.category || "object"}: ${o.asset || "?"}` +
    (o.source ? ` (${[o.source, o.licence].filter(Boolean).join(", ")})` : ""));
  if (origins.background) lines.push(`background: ${origins.background}` +
    (origins.background_file ? ` (${origins.background_file})` : ""));
  if (origins.references) lines.push(`references: ${typeof origins.references === "string" ? origins.references
    : Object.entries(origins.references).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  return lines;
}

function card(sample) {
  const votes = sample.kind === "kept" ? el("div", { class: "votes" },
    el("button", { class: "small ok", text: "✓ accept", onclick: (e) => vote(e, sample, "accept") }),
    el("button", { class: "small bad", text: "✗ reject", onclick: (e) => vote(e, sample, "reject") })) : null;
  const lines = originLines(sample.origins);
  const origins = lines.length ? el("details", { class: "origins" }, el("summary", { text: "objects from" }),
    el("ul", {}, ...lines.map((line) => el("li", { text: line })))) : null;
  return el("figure", { class: `card ${sample.kind}`, "data-sample": sample.name },
    el("img", { src: sample.url, alt: sample.name, loading: "lazy", title: lines.join("\n") || undefined }),
    el("figcaption", {}, el("div", { class: "cap", text: caption(sample) }),
      el("ul", { class: "reasons" }, ...sample.reasons.map((r) => el("li", { text: r }))), origins, votes));
}

async function showAgreement() {
  // The critic's agreement with the votes cast here: metrics with 95% intervals, and where they disagree.
  try {
    const report = await api(`/api/runs/${ui.run}/agreement`);
    $("gallery").replaceChildren(el("pre", { class: "agreement", text: report.text || "no votes yet" }),
      ...(report.notes || []).map((n) => el("p", { class: "muted", text: n })));
  } catch (err) { showError(err); }
}

async function vote(event, sample, label) {
  try {
    const result = await api(`/api/runs/${ui.run}/labels`, { json: { sample: sample.name, label } });
    const figure = event.target.closest("figure");
    figure.dataset.vote = label;
    figure.querySelector(".votes").append(el("span", { class: "voted", text: `saved: ${label}` }));
    $("label-count").textContent = `${result.count} human label(s) saved`;
  } catch (err) { showError(err); }
}

function abFigure(which, sample) {
  return [el("img", { src: sample.url, alt: `${which}: ${sample.name}` }),
    el("figcaption", {}, el("div", { class: "cap", text: `${which.toUpperCase()} · ${caption(sample)}` }),
      el("ul", { class: "reasons" }, ...sample.reasons.map((r) => el("li", { text: r }))))];
}

async function nextPair() {
  try {
    ui.pair = await api(`/api/runs/${ui.run}/pair`);
    $("ab-a").replaceChildren(...abFigure("a", ui.pair.a));
    $("ab-b").replaceChildren(...abFigure("b", ui.pair.b));
    $("ab").dataset.pair = String(Number($("ab").dataset.pair || 0) + 1);  // pairs shown so far
  } catch (err) { showError(err); }
}

async function voteAB(winner) {
  if (!ui.pair) return;
  try {
    const result = await api(`/api/runs/${ui.run}/labels`,
      { json: { a: ui.pair.a.name, b: ui.pair.b.name, winner } });
    $("label-count").textContent = `${result.count} human label(s) saved`;
    await nextPair();
  } catch (err) { showError(err); }
}

// ------------------------------------------------------------------------------------------- uploads

async function upload(path, file) {
  showError(null);
  const response = await fetchWithCsrf(path, { method: "POST", body: file, credentials: "same-origin",
    headers: { "Content-Type": "application/octet-stream" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status}`);
  return body;
}

async function uploadSpec(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  try { openRun((await upload("/api/spec-upload", file)).id); } catch (err) { showError(err); }
}

function say(text, warning = false) {
  $("messages").append(el("div", { class: `msg assistant ${warning ? "warning-msg" : "note-msg"}`, text }));
  $("messages").scrollTop = $("messages").scrollHeight;
}

async function uploadReference(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  try {
    const result = await upload("/api/references", file);
    say(`Stored reference image ${result.name} (${result.type}, ${result.bytes} bytes; ${result.count} in all). ` +
      `Next runs: ${result.use}.`, result.warning);
    refreshUserData();
  } catch (err) { showError(err); }
}

// A zip of the user's data: a reference COCO set (/api/reference-data) or cut-outs (/api/assets).
async function uploadZip(event, path, what) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  try {
    const result = await upload(`${path}?name=${encodeURIComponent(file.name)}`, file);
    say(`Stored ${what} ${result.set.name}: ${setSummary(result.set)}. New runs use it.`);
    renderUserData(result);
  } catch (err) { showError(err); }
}

function setSummary(set) {
  if (!set) return "";
  if (Array.isArray(set.classes)) {
    return `${set.classes.join(", ")} · ${set.n_images} image(s), ${set.n_objects} object(s)`;
  }
  return Object.entries(set.classes || {}).map(([name, n]) => `${name} ${n}`).join(", ");
}

function dataRow(id, label, value, detail, clear, warn = false) {
  $(id).replaceChildren(...[el("span", { class: "data-label", text: label }),
    el("span", { class: "data-value", text: value }),
    clear ? el("button", { type: "button", class: "small", text: "clear", title: `clear the ${label}`,
      onclick: clear }) : null,
    detail ? el("span", { class: `data-detail${warn ? " warn" : ""}`, text: detail }) : null].filter(Boolean));
}

function renderUserData(status) {
  const configured = status.configured || {};
  const fromServer = (key) => configured[key] ? `server: ${configured[key]}` : "";
  dataRow("data-reference", "reference set", status.reference ? status.reference.name : "none",
    status.reference ? setSummary(status.reference) : fromServer("reference_coco"),
    status.reference ? () => clearData("/api/reference-data") : null);
  dataRow("data-assets", "cut-outs", status.assets ? status.assets.name : "none",
    status.assets ? setSummary(status.assets) : fromServer("assets_dir"),
    status.assets ? () => clearData("/api/assets") : null);
  const refs = status.references || { count: 0 };
  dataRow("data-references", "reference images", String(refs.count), refs.count ? refs.use : "",
    refs.count ? () => clearData("/api/references") : null, refs.warning);
}

async function refreshUserData() {
  try { renderUserData(await api("/api/user-data")); } catch (err) { showError(err); }
}

async function clearData(path) {
  showError(null);
  try { renderUserData(await api(path, { method: "DELETE" })); } catch (err) { showError(err); }
}

// --------------------------------------------------------------------------------------------- wiring

$("chat-form").addEventListener("submit", send);
$("new-run").addEventListener("click", newRun);
$("approve").addEventListener("click", () => replyAction("approve"));
$("cancel").addEventListener("click", () => replyAction("cancel"));
$("apply-edit").addEventListener("click", () => replyAction("edit", { spec: collectSpec() }));
$("resume").addEventListener("click", async () => {
  try { await api(`/api/runs/${ui.run}/resume`, { method: "POST" }); poll(); } catch (err) { showError(err); }
});
$("more").addEventListener("click", () => { ui.galleryLimit += 60; ui.galleryKey = ""; poll(); });
document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => {
  ui.tab = b.dataset.tab; ui.galleryKey = ""; refreshGallery();
}));
$("vote-a").addEventListener("click", () => voteAB("a"));
$("vote-b").addEventListener("click", () => voteAB("b"));
$("vote-tie").addEventListener("click", () => voteAB("tie"));
$("ab-skip").addEventListener("click", nextPair);
$("spec-file").addEventListener("change", uploadSpec);
$("ref-file").addEventListener("change", uploadReference);
$("refset-file").addEventListener("change", (e) => uploadZip(e, "/api/reference-data", "reference set"));
$("assets-file").addEventListener("change", (e) => uploadZip(e, "/api/assets", "cut-outs"));

refreshRuns();
refreshUserData();
ui.polling = setInterval(() => { if (ui.run) poll(); }, 500);
setInterval(refreshRuns, 5000);
