// The page at / : pick a served model, send it an image, sentences or a WAV, and show what it answers.
// Plain browser JavaScript, no build step. It uses only the inference API (/api/models, /predictions/<name>).
"use strict";

const $ = (id) => document.getElementById(id);
const KINDS = { vision: "image", text: "text", audio: "audio" };
let models = [];

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("status").textContent = "";
}

function clearMessages() {
  $("error").hidden = true;
  $("status").textContent = "";
}

function currentModel() {
  return models.find((m) => m.name === $("model").value);
}

async function loadModels() {
  try {
    const health = await fetch("/ping");
    const body = await health.json();
    $("health").textContent = body.status;
    $("health").className = "badge " + (health.ok ? "ok" : "bad");
  } catch (e) {
    $("health").textContent = "unreachable";
    $("health").className = "badge bad";
  }
  const answer = await fetch("/api/models");
  models = await answer.json();
  const select = $("model");
  select.innerHTML = "";
  for (const m of models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = m.task ? `${m.name} — ${m.task}` : `${m.name} — unavailable`;
    option.disabled = !m.task;
    select.appendChild(option);
  }
  const usable = models.find((m) => m.task);
  if (usable) select.value = usable.name;
  if (!models.length) showError("No models are served. Register one with POST /models on the management port.");
  chooseModel();
}

function chooseModel() {
  const m = currentModel();
  const kind = m ? KINDS[m.modality] : null;
  for (const k of ["image", "text", "audio"]) $("panel-" + k).hidden = kind !== k;
  $("model-info").textContent = m ? `version ${m.version}, ${m.status}` + (m.error ? `: ${m.error}` : "") : "";
  clearMessages();
}

async function predict(body, contentType) {
  const m = currentModel();
  clearMessages();
  $("status").textContent = `Running ${m.name}…`;
  const started = performance.now();
  const answer = await fetch(`/predictions/${encodeURIComponent(m.name)}`, {
    method: "POST",
    headers: { "Content-Type": contentType },
    body,
  });
  const type = answer.headers.get("content-type") || "";
  const data = type.includes("json") ? await answer.json() : await answer.text();
  if (!answer.ok) {
    throw new Error(typeof data === "object" && data.message ? `${answer.status}: ${data.message}` : `${answer.status}`);
  }
  $("status").textContent = `${m.name} answered in ${(performance.now() - started).toFixed(0)} ms`;
  return data;
}

// ------------------------------------------------------------------ images: top-5 bars

function renderBars(top) {
  const bars = $("bars");
  bars.innerHTML = "";
  const entries = Object.entries(top);
  entries.forEach(([label, p], i) => {
    const row = document.createElement("div");
    row.className = "bar-row";
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = label;
    const track = document.createElement("div");
    track.className = "bar-track";
    const fill = document.createElement("div");
    fill.className = "bar-fill" + (i === 0 ? " first" : "");
    fill.style.width = `${Math.max(p * 100, 0.5).toFixed(2)}%`;
    track.appendChild(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${(p * 100).toFixed(2)}%`;
    row.append(name, track, value);
    bars.appendChild(row);
  });
  $("top1").textContent = entries.length ? entries[0][0] : "";
  $("top1-line").hidden = !entries.length;
}

async function sendImage(file) {
  if (!file) return;
  const preview = $("preview");
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("bars").innerHTML = "";
  $("top1-line").hidden = true;
  try {
    renderBars(await predict(file, file.type || "application/octet-stream"));
  } catch (e) {
    showError(e.message);
  }
}

// ------------------------------------------------------------------ text: similarity matrix

function cosineMatrix(vectors) {
  const unit = vectors.map((v) => {
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
    return v.map((x) => x / norm);
  });
  return unit.map((a) => unit.map((b) => a.reduce((s, x, i) => s + x * b[i], 0)));
}

function renderMatrix(sentences, sim) {
  const table = $("matrix");
  table.innerHTML = "";
  const head = table.insertRow();
  head.appendChild(document.createElement("th"));
  sentences.forEach((_, j) => {
    const th = document.createElement("th");
    th.textContent = `${j + 1}`;
    head.appendChild(th);
  });
  sentences.forEach((text, i) => {
    const row = table.insertRow();
    const th = document.createElement("th");
    th.className = "sentence";
    th.textContent = `${i + 1}. ${text}`;
    row.appendChild(th);
    sim[i].forEach((value) => {
      const cell = row.insertCell();
      cell.textContent = value.toFixed(2);
      const light = 100 - Math.round(Math.max(value, 0) * 55);
      cell.style.background = `hsl(210, 80%, ${light}%)`;
      cell.style.color = light < 60 ? "#fff" : "#123";
    });
  });
}

async function embedSentences() {
  const sentences = $("sentences").value.split("\n").map((s) => s.trim()).filter((s) => s);
  if (!sentences.length) {
    showError("Type at least one sentence.");
    return;
  }
  try {
    const embeddings = await predict(JSON.stringify(sentences), "application/json");
    renderMatrix(sentences, cosineMatrix(embeddings));
  } catch (e) {
    showError(e.message);
  }
}

// ------------------------------------------------------------------ audio: transcript

async function sendAudio(file) {
  if (!file) return;
  const player = $("player");
  player.src = URL.createObjectURL(file);
  player.hidden = false;
  $("transcript").textContent = "";
  try {
    $("transcript").textContent = await predict(file, file.type || "audio/wav");
  } catch (e) {
    showError(e.message);
  }
}

function dropZone(zone, onFile) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFile(e.dataTransfer.files[0]);
  });
}

$("model").addEventListener("change", chooseModel);
$("image-input").addEventListener("change", (e) => sendImage(e.target.files[0]));
$("audio-input").addEventListener("change", (e) => sendAudio(e.target.files[0]));
$("embed").addEventListener("click", embedSentences);
dropZone($("drop-image"), sendImage);
dropZone($("drop-audio"), sendAudio);
loadModels().catch((e) => showError(`Cannot list the models: ${e.message}`));
