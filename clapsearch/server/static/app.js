// clapsearch page: plain JS, no build step, no external assets. Everything from the disk
// (file names, folders, error messages) is inserted with textContent, never as HTML.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const DEFAULT_K = 25;
const DEBOUNCE_MS = 180;

const ui = {
  q: $("#q"), folder: $("#folder"), k: $("#k"), results: $("#results"), count: $("#count"),
  error: $("#error"), empty: $("#empty"), exports: $("#exports"), drop: $("#drop"),
  player: $("#player"), file: $("#file"), status: $("#status"), statusBtn: $("#status-btn"),
  row: $("#row"),
};

// The state that lives in the URL: ?q=...&k=...&folder=...&like=<file id>&at=<seconds>
let view = { q: "", k: DEFAULT_K, folder: "", like: null, at: null };
let hits = [];          // the shown results (the API's hit objects)
let payload = null;     // the last API answer, for export
let label = "";         // what the results are for, in words
let selected = -1;
let playing = -1;
let seq = 0;            // latest request wins
let typingTimer = 0;
const peaks = new Map(); // file id -> Promise of the peaks answer
let libraryRoot = "";    // the deepest folder holding every indexed file

// --- URL state -------------------------------------------------------------------------
function fromURL() {
  const p = new URLSearchParams(location.search);
  const k = parseInt(p.get("k"), 10);
  const like = parseInt(p.get("like"), 10);
  const at = parseFloat(p.get("at"));
  return {
    q: p.get("q") || "", k: k > 0 ? k : DEFAULT_K, folder: p.get("folder") || "",
    like: like > 0 ? like : null, at: Number.isFinite(at) ? at : null,
  };
}

function toURL(v) {
  const p = new URLSearchParams();
  if (v.like) { p.set("like", v.like); if (v.at != null) p.set("at", v.at); }
  else if (v.q) p.set("q", v.q);
  if (v.k !== DEFAULT_K) p.set("k", v.k);
  if (v.folder) p.set("folder", v.folder);
  const s = p.toString();
  return s ? "?" + s : location.pathname;
}

function navigate(v, push) {
  view = v;
  history[push ? "pushState" : "replaceState"]({ view: v }, "", toURL(v));
  return run(v);
}

window.addEventListener("popstate", (e) => {
  view = (e.state && e.state.view) || fromURL();
  if (e.state && e.state.dropped && e.state.answer) {  // a search by a dropped file: no URL
    ++seq;
    syncControls(view);
    show(e.state.answer, `sounds like ${e.state.dropped}`, 0);
    return;
  }
  run(view);
});

// --- API -------------------------------------------------------------------------------
async function api(url, options) {
  let r;
  try { r = await fetch(url, options); }
  catch { throw new Error("The server cannot be reached; is `clapsearch serve` still running?"); }
  let body = null;
  try { body = await r.json(); } catch { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || `The server answered ${r.status}.`);
  return body;
}

function filterParams(v) {
  const p = new URLSearchParams({ k: String(v.k) });
  if (v.folder) p.set("prefix", v.folder);
  return p;
}

async function run(v) {
  const mine = ++seq;
  syncControls(v);
  if (!v.q && !v.like) { showEmpty(); return; }
  const p = filterParams(v);
  let url;
  if (v.like) {
    if (v.at != null) p.set("at", v.at);
    url = `/api/files/${v.like}/similar?${p}`;
  } else {
    p.append("q", v.q);
    url = `/api/search?${p}`;
  }
  const t0 = performance.now();
  try {
    const answer = await api(url);
    if (mine !== seq) return;
    const what = v.like ? `sounds like ${basename(answer.queries[0].query)}` : `“${v.q}”`;
    show(answer, what, performance.now() - t0);
  } catch (err) {
    if (mine === seq) showError(err.message);
  }
}

async function searchFile(file) {
  if (!file) return;
  const mine = ++seq;
  ui.q.value = "";
  const v = { ...view, q: "", like: null, at: null };
  view = v;
  history.pushState({ view: v, dropped: file.name }, "", toURL(v));
  const p = filterParams(v);
  p.set("name", file.name.slice(0, 200));
  ui.count.textContent = `Listening to ${file.name}…`;
  const t0 = performance.now();
  try {
    const answer = await api(`/api/search/audio?${p}`, {
      method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
    });
    if (mine !== seq) return;
    history.replaceState({ view: v, dropped: file.name, answer }, "", toURL(v));
    show(answer, `sounds like ${file.name}`, performance.now() - t0);
  } catch (err) {
    if (mine === seq) showError(err.message);
  }
}

// --- rendering -------------------------------------------------------------------------
function syncControls(v) {
  if (document.activeElement !== ui.q) ui.q.value = v.q;
  ui.k.value = String(v.k);
  if (![...ui.k.options].some((o) => o.value === String(v.k))) {
    ui.k.add(new Option(String(v.k), String(v.k), true, true));
  }
  ensureFolderOption(v.folder);
  ui.folder.value = v.folder;
}

function showEmpty() {
  hits = []; payload = null;
  stop();
  ui.results.replaceChildren();
  ui.error.hidden = true;
  ui.empty.hidden = false;
  ui.exports.hidden = true;
  ui.count.textContent = "";
  document.title = "clapsearch";
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
  ui.count.textContent = "";
}

function show(answer, what, ms) {
  stop();
  payload = answer;
  label = what;
  hits = answer.queries[0].results;
  ui.error.hidden = true;
  ui.empty.hidden = true;
  ui.exports.hidden = hits.length === 0;
  const n = hits.length;
  ui.count.textContent = n
    ? `${n} ${n === 1 ? "sound" : "sounds"} for ${what}${ms ? ` · ${Math.round(ms)} ms` : ""}`
    : `No sounds match ${what}${view.folder ? " in this folder" : ""}.`;
  document.title = `${what} · clapsearch`;
  for (const note of answer.notes || []) showError(note);
  ui.results.replaceChildren(...hits.map(makeRow));
  selected = -1;
  requestAnimationFrame(() => hits.forEach((_, i) => loadWave(i)));
}

function makeRow(hit, i) {
  const li = ui.row.content.firstElementChild.cloneNode(true);
  li.dataset.index = String(i);
  li.id = `hit-${i}`;
  $(".name", li).textContent = basename(hit.path);
  $(".name", li).title = hit.path;
  $(".folder", li).textContent = shortFolder(dirname(hit.path));
  $(".folder", li).title = dirname(hit.path);
  $(".score", li).textContent = hit.score.toFixed(3);
  $(".span", li).textContent = `at ${clock(hit.start)}–${clock(hit.end)}`;
  $(".dur", li).textContent = `of ${clock(hit.duration)}`;
  $(".play", li).setAttribute("aria-label", `Play ${basename(hit.path)}`);
  $(".like", li).setAttribute("aria-label", `More like ${basename(hit.path)}`);
  li.setAttribute("aria-label", `${i + 1}. ${basename(hit.path)}, score ${hit.score.toFixed(2)}`);
  $(".play", li).addEventListener("click", () => { select(i, false); toggle(i); });
  $(".like", li).addEventListener("click", () => moreLike(i));
  $("canvas", li).addEventListener("click", (e) => seekFromClick(i, e));
  li.addEventListener("click", (e) => { if (e.target === li || e.target.closest(".meta")) select(i, false); });
  li.addEventListener("dragstart", (e) => dragOut(hit, e));
  return li;
}

function rowOf(i) { return ui.results.children[i] || null; }

// --- waveform --------------------------------------------------------------------------
function loadWave(i) {
  const li = rowOf(i);
  if (!li) return;
  const canvas = $("canvas", li);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(64, Math.round(canvas.clientWidth * dpr));
  canvas.height = Math.round(44 * dpr);
  const hit = hits[i];
  const n = Math.min(4096, Math.max(16, Math.round(canvas.width / (2 * dpr))));
  const key = `${hit.file_id}:${n}`;
  if (!peaks.has(key)) {
    peaks.set(key, api(`/api/files/${hit.file_id}/peaks?n=${n}`).catch((err) => {
      peaks.delete(key);
      return { error: err.message };
    }));
  }
  peaks.get(key).then((p) => {
    if (hits[i] !== hit) return;
    li.peaks = p;
    draw(i);
  });
}

function draw(i) {
  const li = rowOf(i);
  if (!li || !li.peaks) return;
  const canvas = $("canvas", li);
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  const hit = hits[i];
  const p = li.peaks;
  ctx.clearRect(0, 0, w, h);
  if (p.error) {
    ctx.fillStyle = "#9aa3ad";
    ctx.font = `${12 * (window.devicePixelRatio || 1)}px system-ui`;
    ctx.fillText(p.error, 6, h / 2 + 4);
    canvas.setAttribute("aria-label", p.error);
    return;
  }
  const dur = p.duration || hit.duration || 1;
  const x0 = (hit.start / dur) * w;
  const x1 = (hit.end / dur) * w;
  ctx.fillStyle = "rgba(245, 165, 36, 0.16)";
  ctx.fillRect(x0, 0, Math.max(2, x1 - x0), h);
  const now = i === playing ? ui.player.currentTime : -1;
  const xp = now >= 0 ? (now / dur) * w : -1;
  const n = p.buckets;
  const bw = w / n;
  const mid = h / 2;
  for (let b = 0; b < n; b++) {
    const lo = p.peaks[2 * b];
    const hi = p.peaks[2 * b + 1];
    const x = b * bw;
    const inHit = x + bw > x0 && x < x1;
    const played = x < xp;
    ctx.fillStyle = inHit ? (played ? "#ffe0a8" : "#f5a524") : played ? "#cfd6df" : "#5b6676";
    const top = mid - hi * mid * 0.95;
    const bottom = mid - lo * mid * 0.95;
    ctx.fillRect(x, top, Math.max(1, bw - 0.5), Math.max(1, bottom - top));
  }
  if (xp >= 0) {
    ctx.fillStyle = "#4cc9f0";
    ctx.fillRect(xp, 0, 2, h);
  }
}

// --- playback --------------------------------------------------------------------------
function toggle(i) {
  const hit = hits[i];
  if (!hit) return;
  if (i === playing) {
    if (ui.player.paused) ui.player.play().catch(playError); else ui.player.pause();
    return;
  }
  playFrom(i, hit.start);
}

function playFrom(i, t) {
  const hit = hits[i];
  const prev = playing;
  playing = i;
  if (prev >= 0 && prev !== i) { markPlaying(prev, false); draw(prev); }
  const src = `/api/files/${hit.file_id}/audio`;
  if (ui.player.dataset.fileId !== String(hit.file_id)) {
    ui.player.dataset.fileId = String(hit.file_id);
    ui.player.src = src;
  }
  if (ui.player.readyState >= 1) {
    ui.player.currentTime = t;
  } else {  // metadata not loaded yet: the start position now, checked again when it is
    try { ui.player.currentTime = t; } catch { /* older engines */ }
    ui.player.addEventListener("loadedmetadata", () => {
      if (Math.abs(ui.player.currentTime - t) > 0.25) ui.player.currentTime = t;
    }, { once: true });
  }
  ui.player.play().catch(playError);  // inside the click: allowed to start sound
}

function stop() {
  if (playing >= 0) markPlaying(playing, false);
  playing = -1;
  ui.player.pause();
}

function playError(err) {
  if (err && err.name === "AbortError") return;
  showError(`This file cannot be played here (${err && err.message ? err.message : "unknown error"}).`);
}

function markPlaying(i, on) {
  const li = rowOf(i);
  if (!li) return;
  li.classList.toggle("playing", on);
  $(".play", li).setAttribute("aria-label", `${on ? "Pause" : "Play"} ${basename(hits[i].path)}`);
}

ui.player.addEventListener("play", () => { if (playing >= 0) markPlaying(playing, true); tick(); });
ui.player.addEventListener("pause", () => { if (playing >= 0) { markPlaying(playing, false); draw(playing); } });
ui.player.addEventListener("ended", () => { if (playing >= 0) { markPlaying(playing, false); draw(playing); } });
ui.player.addEventListener("error", () => {
  if (playing >= 0) showError(`${basename(hits[playing].path)} cannot be played (the server refused it or the browser cannot decode it).`);
});

function tick() {
  if (playing < 0 || ui.player.paused) return;
  draw(playing);
  requestAnimationFrame(tick);
}

function seekFromClick(i, e) {
  const canvas = e.currentTarget;
  const rect = canvas.getBoundingClientRect();
  const frac = Math.min(1, Math.max(0, (e.clientX - rect.left) / rect.width));
  const dur = (rowOf(i).peaks && rowOf(i).peaks.duration) || hits[i].duration;
  select(i, false);
  if (i === playing && ui.player.readyState >= 1) {
    ui.player.currentTime = frac * dur;
    if (ui.player.paused) ui.player.play().catch(playError);
    draw(i);
  } else {
    playFrom(i, frac * dur);
  }
}

// --- selection and keyboard ------------------------------------------------------------
function select(i, focus = true) {
  if (i < 0 || i >= hits.length) return;
  if (selected >= 0 && rowOf(selected)) rowOf(selected).classList.remove("selected");
  selected = i;
  const li = rowOf(i);
  li.classList.add("selected");
  if (focus) { li.focus(); li.scrollIntoView({ block: "nearest" }); }
}

function moreLike(i) {
  const hit = hits[i];
  if (!hit) return;
  ui.q.value = "";
  navigate({ ...view, q: "", like: hit.file_id, at: null }, true);
}

document.addEventListener("keydown", (e) => {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  const t = e.target;
  const inField = t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement;
  if (t === ui.q && e.key === "ArrowDown" && hits.length) { e.preventDefault(); select(0); return; }
  if (t === ui.q && e.key === "Enter") { e.preventDefault(); clearTimeout(typingTimer); commitTyping(true); return; }
  if (inField) return;
  if (e.key === "/") { e.preventDefault(); ui.q.focus(); ui.q.select(); return; }
  if (e.key === "Escape") { ui.player.pause(); return; }
  if (!hits.length) return;
  const inRow = t.closest && t.closest(".hit");
  if (e.key === "ArrowDown") { e.preventDefault(); select(Math.min(hits.length - 1, selected + 1)); }
  else if (e.key === "ArrowUp") {
    e.preventDefault();
    if (selected <= 0) { ui.q.focus(); } else select(selected - 1);
  } else if (e.key === " " && (!inRow || t.classList.contains("hit"))) {
    e.preventDefault();
    if (selected < 0) select(0);
    toggle(selected);
  } else if ((e.key === "m" || e.key === "M") && selected >= 0) {
    e.preventDefault();
    moreLike(selected);
  } else if (e.key === "Enter" && t.classList && t.classList.contains("hit")) {
    e.preventDefault();
    toggle(selected);
  }
});

// --- typing, filters -------------------------------------------------------------------
function commitTyping(push) {
  const q = ui.q.value.trim();
  if (q === view.q && !view.like && !push) return;
  const wasText = !view.like && view.q !== "";
  navigate({ ...view, q, like: null, at: null }, push || !wasText);
}

ui.q.addEventListener("input", () => {
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => commitTyping(false), DEBOUNCE_MS);
});
$("#search").addEventListener("submit", (e) => { e.preventDefault(); commitTyping(true); });
ui.k.addEventListener("change", () => navigate({ ...view, k: parseInt(ui.k.value, 10) }, true));
ui.folder.addEventListener("change", () => navigate({ ...view, folder: ui.folder.value }, true));
$("#pick").addEventListener("click", () => ui.file.click());
ui.file.addEventListener("change", () => { searchFile(ui.file.files[0]); ui.file.value = ""; });

async function loadFolders() {
  try {
    const { folders } = await api("/api/folders");
    const total = new Map();
    for (const { folder, files } of folders) {
      for (let f = folder; f && f !== "/"; f = dirname(f)) total.set(f, (total.get(f) || 0) + files);
    }
    const all = [...total.keys()].sort();
    const root = commonRoot(folders.map((f) => f.folder));
    libraryRoot = root;
    document.querySelectorAll("#results .hit").forEach((li, i) => {
      if (hits[i]) $(".folder", li).textContent = shortFolder(dirname(hits[i].path));
    });
    const options = all.filter((f) => f.length >= root.length).map((f) => {
      const rel = f === root ? f : f.slice(root.length).replace(/^\//, "");
      const depth = f === root ? 0 : rel.split("/").length;
      return new Option(`${"\u2003".repeat(depth)}${rel} (${total.get(f)})`, f);
    });
    ui.folder.replaceChildren(new Option("All folders", ""), ...options);
    ensureFolderOption(view.folder);
    ui.folder.value = view.folder;
  } catch { /* the folder list is a nicety; searches still work */ }
}

function ensureFolderOption(folder) {
  if (folder && ![...ui.folder.options].some((o) => o.value === folder)) {
    ui.folder.add(new Option(folder, folder));
  }
}

// A folder as people name it: from the library's top folder down ("sounds/animals").
function shortFolder(folder) {
  if (!libraryRoot || (folder !== libraryRoot && !folder.startsWith(libraryRoot + "/"))) return folder;
  const top = dirname(libraryRoot) === "/" ? libraryRoot : libraryRoot.slice(dirname(libraryRoot).length + 1);
  return top + folder.slice(libraryRoot.length);
}

function commonRoot(paths) {
  if (!paths.length) return "";
  let root = paths[0];
  for (const p of paths) while (root && p !== root && !p.startsWith(root + "/")) root = dirname(root);
  return root;
}

// --- drop a file, drag a result out ----------------------------------------------------
let dragDepth = 0;
const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
window.addEventListener("dragenter", (e) => { if (!hasFiles(e)) return; e.preventDefault(); dragDepth++; ui.drop.hidden = false; });
window.addEventListener("dragover", (e) => { if (!hasFiles(e)) return; e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
window.addEventListener("dragleave", (e) => { if (!hasFiles(e)) return; if (--dragDepth <= 0) { dragDepth = 0; ui.drop.hidden = true; } });
window.addEventListener("drop", (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  dragDepth = 0;
  ui.drop.hidden = true;
  searchFile(e.dataTransfer.files[0]);
});

function dragOut(hit, e) {
  const url = new URL(`/api/files/${hit.file_id}/audio?download=1`, location.href).href;
  const name = basename(hit.path);
  e.dataTransfer.effectAllowed = "copy";
  e.dataTransfer.setData("DownloadURL", `${mimeOf(name)}:${name.replace(/:/g, "_")}:${url}`);
  e.dataTransfer.setData("text/uri-list", url);
  e.dataTransfer.setData("text/plain", hit.path);
}

function mimeOf(name) {
  const ext = name.split(".").pop().toLowerCase();
  return { wav: "audio/wav", flac: "audio/flac", mp3: "audio/mpeg", ogg: "audio/ogg", opus: "audio/ogg",
    m4a: "audio/mp4", aif: "audio/aiff", aiff: "audio/aiff" }[ext] || "application/octet-stream";
}

// --- export ----------------------------------------------------------------------------
ui.exports.addEventListener("click", (e) => {
  const kind = e.target.dataset && e.target.dataset.export;
  if (!kind || !payload) return;
  const stem = "clapsearch-" + (label.replace(/[^\p{L}\p{N}]+/gu, "-").replace(/^-|-$/g, "").slice(0, 60) || "results");
  if (kind === "json") save(`${stem}.json`, "application/json", JSON.stringify(payload.queries[0], null, 2));
  if (kind === "csv") {
    const q = (s) => `"${String(s).replace(/"/g, '""')}"`;
    const lines = ["rank,score,start,end,duration,path",
      ...hits.map((h, i) => [i + 1, h.score.toFixed(4), h.start, h.end, h.duration.toFixed(3), q(h.path)].join(","))];
    save(`${stem}.csv`, "text/csv", lines.join("\r\n") + "\r\n");
  }
  if (kind === "m3u") {
    const lines = ["#EXTM3U", ...hits.flatMap((h) => [`#EXTINF:${Math.round(h.duration)},${basename(h.path)}`, h.path])];
    save(`${stem}.m3u`, "audio/x-mpegurl", lines.join("\n") + "\n");
  }
});

function save(name, type, text) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// --- status view -----------------------------------------------------------------------
ui.statusBtn.addEventListener("click", async () => {
  const open = ui.status.hidden;
  ui.status.hidden = !open;
  ui.statusBtn.setAttribute("aria-expanded", String(open));
  if (!open) return;
  try {
    const [st, fails] = await Promise.all([api("/api/status"), api("/api/failures")]);
    const facts = [
      ["Index", st.index], ["Files", st.files.toLocaleString()], ["Windows", st.segments.toLocaleString()],
      ["Failed", st.failed.toLocaleString()], ["Audio", hours(st.duration_s)],
      ["Model", `${st.model} (dim ${st.dim})`],
      ["Search", st.recall_at_10 == null ? `${st.index_type} (exact)` : `${st.index_type} (recall@10 ${st.recall_at_10.toFixed(3)})`],
      ["On disk", `${(st.bytes_on_disk / 1e6).toFixed(1)} MB`],
    ];
    $("#status-facts").replaceChildren(...facts.flatMap(([k, v]) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      return [dt, dd];
    }));
    const body = $("#failures tbody");
    body.replaceChildren(...fails.errors.map((f) => {
      const tr = document.createElement("tr");
      for (const v of [f.path, f.reason, f.detail]) { const td = document.createElement("td"); td.textContent = v; tr.append(td); }
      return tr;
    }));
    $("#failures").hidden = fails.errors.length === 0;
    $("#fail-empty").hidden = fails.errors.length !== 0;
  } catch (err) {
    showError(err.message);
  }
});

// --- helpers ---------------------------------------------------------------------------
function basename(p) { return String(p).split("/").pop(); }
function dirname(p) { const s = String(p); const i = s.lastIndexOf("/"); return i > 0 ? s.slice(0, i) : "/"; }
function clock(s) {
  if (!Number.isFinite(s)) return "";
  const t = Math.round(s * 10) / 10;
  const m = Math.floor(t / 60);
  const sec = (t - m * 60).toFixed(1).padStart(4, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}
function hours(s) { return s >= 3600 ? `${(s / 3600).toFixed(2)} h` : `${(s / 60).toFixed(1)} min`; }

window.addEventListener("resize", () => { clearTimeout(window.__rs); window.__rs = setTimeout(() => hits.forEach((_, i) => loadWave(i)), 200); });

// --- start -----------------------------------------------------------------------------
view = fromURL();
history.replaceState({ view }, "", toURL(view));
loadFolders();
run(view);
