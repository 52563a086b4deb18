// The try-the-model page: upload or record a clip, POST it to /page/analyze, draw what comes back.
// Recording captures raw PCM with the Web Audio API and sends a 16-bit WAV, so the server needs no codec.
"use strict";

const EMOTIONS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"];
// the same colour per emotion as the figures of `ser predict --plot`
const COLORS = {angry: "#d62728", disgust: "#8c564b", fear: "#9467bd", happy: "#ffbf00",
                neutral: "#7f7f7f", sad: "#1f77b4", surprise: "#2ca02c"};
const MAX_RECORD_S = 30;
const $ = (id) => document.getElementById(id);

// -- the voice (speaker group) of this page session -------------------------------------------------

function newGroupId() {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return "page-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function groupId() {
  let id = sessionStorage.getItem("ser-group");
  if (!id) { id = newGroupId(); sessionStorage.setItem("ser-group", id); }
  return id;
}

function showVoice(norm) {
  const text = $("voice-text");
  if (!norm || norm.mode === "none") {
    text.textContent = "This model does not adapt to a voice: every clip is scaled by the training set's statistics.";
  } else if (norm.by_group) {
    text.textContent = `Heard enough of your voice (${norm.group_clips} clips): clips are now normalised by your own voice.`;
  } else {
    const n = norm.group_clips || 0, need = norm.min_group_size;
    text.textContent = `Heard ${n} of ${need} clips of your voice: after ${need - n} more, the model normalises ` +
      "by your own voice instead of the training speakers' average.";
  }
}

// -- talking to the server ---------------------------------------------------------------------------

function setStatus(text) { $("status").textContent = text; }

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
  if (text) $("result").hidden = true;  // never leave an earlier clip's answer under a new clip's error
}

async function analyse(blob, filename) {
  showError("");
  setStatus(`Analysing ${filename}\u2026`);
  const form = new FormData();
  form.append("file", blob, filename);
  form.append("group", groupId());
  let response, body;
  try {
    response = await fetch("/page/analyze", {method: "POST", body: form});
    body = await response.json().catch(() => null);
  } catch (err) {
    setStatus("");
    showError("Could not reach the server: is `ser serve` still running?");
    return;
  }
  if (!response.ok) {
    setStatus("");
    const detail = body && typeof body.detail === "string" ? body.detail : `the server answered ${response.status}`;
    showError(`This clip could not be analysed: ${detail}`);
    return;
  }
  setStatus(`Analysed ${filename}.`);
  render(body);
}

// -- drawing -------------------------------------------------------------------------------------------

function pct(p) { return (100 * p).toFixed(1) + "%"; }

function render(r) {
  const p = r.prediction;
  $("result").hidden = false;
  $("emotion").textContent = p.emotion;
  $("emotion").style.color = COLORS[p.emotion];
  $("confidence").textContent = `${pct(p.confidence)} confident`;
  $("clip-info").textContent = `${p.filename || "clip"}, ${p.duration_s.toFixed(2)} s, normalised by ` +
    (p.normalised_by === "group" ? "your voice" : "the training set");
  drawBars(p.probabilities);
  drawRadar($("radar"), p.probabilities);
  drawWaveform($("waveform"), r.waveform);
  $("spectrogram").src = r.spectrogram;
  const box = $("timeline-box");
  box.hidden = !r.timeline;
  if (r.timeline) {
    const t = r.timeline;
    const silent = t.segments.filter((s) => !s.probabilities).length;
    $("timeline-text").textContent = `${t.segments.length} windows of ${t.window_s} s, one every ${t.hop_s} s ` +
      "(each drawn at its centre; the colours add up to 1)" +
      (silent ? `; ${silent} without speech, left blank.` : ".");
    drawTimeline($("timeline"), t);
  }
  showVoice(r.normalisation);
}

function drawBars(probs) {
  const bars = $("bars");
  bars.replaceChildren();
  for (const e of EMOTIONS) {
    const row = document.createElement("div");
    row.className = "row";
    row.dataset.emotion = e;
    const name = document.createElement("span");
    name.textContent = e;
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = pct(probs[e]);
    fill.style.background = COLORS[e];
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = pct(probs[e]);
    row.append(name, track, value);
    bars.append(row);
  }
}

function drawRadar(canvas, probs) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, cx = w / 2, cy = h / 2 + 4, radius = Math.min(w, h) / 2 - 42;
  const top = Math.max(0.5, ...EMOTIONS.map((e) => probs[e]));
  const angle = (i) => -Math.PI / 2 + (2 * Math.PI * i) / EMOTIONS.length;
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = "#d9dde5";
  ctx.fillStyle = "#5b6475";
  ctx.font = "12px system-ui, sans-serif";
  for (const ring of [0.25, 0.5, 0.75, 1]) {
    ctx.beginPath();
    EMOTIONS.forEach((_, i) => {
      const x = cx + radius * ring * Math.cos(angle(i)), y = cy + radius * ring * Math.sin(angle(i));
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.closePath();
    ctx.stroke();
  }
  EMOTIONS.forEach((e, i) => {
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(cx + radius * Math.cos(angle(i)), cy + radius * Math.sin(angle(i)));
    ctx.stroke();
    const lx = cx + (radius + 22) * Math.cos(angle(i)), ly = cy + (radius + 16) * Math.sin(angle(i));
    ctx.textAlign = Math.abs(Math.cos(angle(i))) < 0.2 ? "center" : Math.cos(angle(i)) > 0 ? "left" : "right";
    ctx.fillText(e, lx - (ctx.textAlign === "left" ? 14 : ctx.textAlign === "right" ? -14 : 0), ly + 4);
  });
  const best = EMOTIONS.reduce((a, b) => (probs[b] > probs[a] ? b : a));
  ctx.beginPath();
  EMOTIONS.forEach((e, i) => {
    const r = (radius * probs[e]) / top;
    const x = cx + r * Math.cos(angle(i)), y = cy + r * Math.sin(angle(i));
    i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
  });
  ctx.closePath();
  ctx.globalAlpha = 0.3;
  ctx.fillStyle = COLORS[best];
  ctx.fill();
  ctx.globalAlpha = 1;
  ctx.strokeStyle = COLORS[best];
  ctx.lineWidth = 2;
  ctx.stroke();
  ctx.lineWidth = 1;
}

function drawWaveform(canvas, wf) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, mid = h / 2, n = wf.min.length;
  const scale = (mid - 6) / Math.max(wf.peak, 1e-6);
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#f6f7f9";
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "#2f5fd0";
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const x = (i + 0.5) * (w / n);
    ctx.moveTo(x, mid - wf.max[i] * scale);
    ctx.lineTo(x, mid - wf.min[i] * scale + 0.5);
  }
  ctx.stroke();
  ctx.fillStyle = "#5b6475";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.fillText(`${wf.duration_s.toFixed(2)} s, peak ${wf.peak.toFixed(3)}`, w - 6, 14);
}

function drawTimeline(canvas, t) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 40, bottom = 22, plotW = w - left - 8, plotH = h - bottom - 8;
  // each window at its centre, held flat out to the recording's first and last sample
  const segs = [t.segments[0], ...t.segments, t.segments[t.segments.length - 1]];
  const start = segs[0].start_s, end = segs[segs.length - 1].end_s;
  const xs = segs.map((s, i) => (i === 0 ? start : i === segs.length - 1 ? end : (s.start_s + s.end_s) / 2));
  const x = (sec) => left + ((sec - start) / (end - start)) * plotW;
  const y = (p) => 8 + plotH * (1 - p);
  ctx.clearRect(0, 0, w, h);
  const below = new Array(segs.length).fill(0);
  for (const e of EMOTIONS) {  // stacked areas: each emotion on top of the ones before it
    const above = below.map((b, i) => b + (segs[i].probabilities ? segs[i].probabilities[e] : 0));
    ctx.beginPath();
    xs.forEach((sec, i) => (i ? ctx.lineTo(x(sec), y(above[i])) : ctx.moveTo(x(sec), y(above[i]))));
    for (let i = xs.length - 1; i >= 0; i--) ctx.lineTo(x(xs[i]), y(below[i]));
    ctx.closePath();
    ctx.fillStyle = COLORS[e];
    ctx.fill();
    above.forEach((v, i) => (below[i] = v));
  }
  ctx.strokeStyle = "#5b6475";
  ctx.fillStyle = "#5b6475";
  ctx.font = "11px system-ui, sans-serif";
  ctx.strokeRect(left, 8, plotW, plotH);
  ctx.textAlign = "right";
  for (const p of [0, 0.5, 1]) ctx.fillText(p.toFixed(1), left - 4, y(p) + 4);
  ctx.textAlign = "center";
  const step = Math.max(1, Math.ceil((end - start) / 10));
  for (let sec = Math.ceil(start); sec <= end; sec += step) ctx.fillText(`${sec}s`, x(sec), h - 6);
  const legend = $("legend");
  legend.replaceChildren(...EMOTIONS.map((e) => {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = COLORS[e];
    item.append(swatch, e);
    return item;
  }));
}

// -- the model card --------------------------------------------------------------------------------

function table(headers, rows) {
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  headers.forEach((text) => { const th = document.createElement("th"); th.textContent = text; head.append(th); });
  const tbody = t.createTBody();
  for (const row of rows) {
    const tr = tbody.insertRow();
    row.forEach((v) => {
      const td = tr.insertCell();
      td.textContent = v === undefined || v === null ? "" : typeof v === "number" ? v.toFixed(4).replace(/\.?0+$/, "") : String(v);
      if (typeof v === "number") td.className = "num";
    });
  }
  return t;
}

function para(text, cls) {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  return p;
}

async function loadModel() {
  const body = $("model-body");
  let m;
  try {
    const r = await fetch("/model");
    if (!r.ok) throw new Error(String(r.status));
    m = await r.json();
  } catch (err) {
    body.replaceChildren(para("The model card could not be loaded.", "error"));
    return;
  }
  const info = m.info || {};
  const parts = [
    para(`${m.name}: ${m.kind} (${m.framework}), input ${m.input}. Trained on ${info.protocol || "a speaker holdout"}: ` +
         "every score below is measured on speakers the model never heard."),
  ];
  if (m.normalize) {
    parts.push(para(m.normalize.mode === "none" ? "Normalisation: the training set's global statistics." :
      `Normalisation per ${m.normalize.mode}: a voice is scaled by its own statistics once it has ` +
      `${m.normalize.min_group_size} clips.`));
  }
  const data = info.data || {};
  if (Object.keys(data).length) {
    const h = document.createElement("h3"); h.textContent = "Data";
    parts.push(h, table(["split", "speakers", "utterances", "corpora"],
      Object.entries(data).map(([s, d]) => [s, d.speakers, d.utterances, (d.corpora || []).join(", ")])));
  }
  const metrics = info.metrics || {};
  if (Object.keys(metrics).length) {
    const h = document.createElement("h3"); h.textContent = "Scores (UAR: the mean recall over the seven emotions)";
    parts.push(h, table(["split", "UAR", "accuracy", "macro-F1"],
      Object.entries(metrics).map(([s, v]) => [s, v.uar, v.accuracy, v.macro_f1])));
    const corpusRows = [];
    for (const [s, v] of Object.entries(metrics)) {
      for (const [c, cv] of Object.entries(v.by_corpus || {})) corpusRows.push([s, c, cv.n, cv.uar, cv.accuracy]);
    }
    if (corpusRows.length) {
      const hc = document.createElement("h3"); hc.textContent = "Per corpus";
      parts.push(hc, table(["split", "corpus", "clips", "UAR", "accuracy"], corpusRows));
    }
  }
  body.replaceChildren(...parts);
}

// -- upload and recording ------------------------------------------------------------------------------

$("upload-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) { showError("Choose an audio file first (WAV, FLAC or OGG)."); return; }
  analyse(file, file.name);
});
$("file").addEventListener("change", () => { if ($("file").files[0]) $("upload-form").requestSubmit(); });

$("new-voice").addEventListener("click", () => {
  sessionStorage.setItem("ser-group", newGroupId());
  $("voice-text").textContent = "Starting a new voice: the next clips are a new speaker.";
});

function encodeWav(chunks, sampleRate) {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const buffer = new ArrayBuffer(44 + 2 * n);
  const v = new DataView(buffer);
  const text = (o, s) => [...s].forEach((ch, i) => v.setUint8(o + i, ch.charCodeAt(0)));
  text(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); text(8, "WAVE");
  text(12, "fmt "); v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, sampleRate, true); v.setUint32(28, 2 * sampleRate, true); v.setUint16(32, 2, true);
  v.setUint16(34, 16, true); text(36, "data"); v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, o += 2) {
      const s = Math.max(-1, Math.min(1, c[i]));
      v.setInt16(o, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return new Blob([buffer], {type: "audio/wav"});
}

let recording = null;

async function startRecording() {
  showError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser gives no microphone to this page (open the page at 127.0.0.1 or over a secure connection).");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({audio: {echoCancellation: false, noiseSuppression: false,
                                                                 autoGainControl: false}});
  } catch (err) {
    showError(`No microphone: ${err.message || err.name}. Allow the microphone for this page, or upload a file.`);
    return;
  }
  const ctx = new AudioContext();
  await ctx.resume();
  const source = ctx.createMediaStreamSource(stream);
  const proc = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  proc.onaudioprocess = (ev) => { chunks.push(new Float32Array(ev.inputBuffer.getChannelData(0))); };
  source.connect(proc);
  proc.connect(ctx.destination);
  const started = performance.now();
  const timer = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    $("rec-time").textContent = `recording ${s.toFixed(1)} s`;
    if (s >= MAX_RECORD_S) stopRecording();
  }, 100);
  recording = {stream, ctx, source, proc, chunks, timer};
  $("record").disabled = true;
  $("stop").disabled = false;
  setStatus("Recording\u2026 speak, then press Stop.");
}

async function stopRecording() {
  if (!recording) return;
  const {stream, ctx, source, proc, chunks, timer} = recording;
  recording = null;
  clearInterval(timer);
  source.disconnect();
  proc.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  const rate = ctx.sampleRate;
  await ctx.close();
  $("record").disabled = false;
  $("stop").disabled = true;
  $("rec-time").textContent = "";
  if (!chunks.length) { showError("Nothing was recorded: is the microphone muted?"); return; }
  analyse(encodeWav(chunks, rate), "recording.wav");
}

$("record").addEventListener("click", startRecording);
$("stop").addEventListener("click", stopRecording);

showVoice(null);
$("voice-text").textContent = "Clips you send are remembered as one voice for this page session.";
loadModel();
