// The MEFF web player: a Subsonic client of its own peer (the library, covers, bytes and
// playlists come from /rest/ with the session cookie), plus /api/ for what Subsonic lacks.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { csrf: null, queue: [], pos: -1, view: "library", libMode: "albums", offset: 0, searchSeq: 0 };
const PAGE = 60;

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
  return e;
}

function clock(s) {
  s = Math.max(0, Math.floor(s || 0));
  const m = Math.floor(s / 60), r = String(s % 60).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

async function api(method, params = {}, post = false) {
  const q = new URLSearchParams({ f: "json", c: "meff-web", v: "1.16.1", ...params });
  const opts = post ? { method: "POST", headers: { "X-CSRF-Token": state.csrf || "" } } : {};
  const r = await fetch(`/rest/${method}?${q}`, opts);
  const j = await r.json();
  const s = j["subsonic-response"];
  if (s.status !== "ok") throw new Error(s.error ? s.error.message : "failed");
  return s;
}

function streamUrl(id) { return `/rest/stream?id=${encodeURIComponent(id)}`; }
function coverUrl(id, size) { return id ? `/rest/getCoverArt?id=${encodeURIComponent(id)}&size=${size}` : ""; }

async function start() {
  const s = await (await fetch("/api/session")).json();
  if (!s.logged_in) {
    $("#login").classList.remove("hidden");
    $("#login-who").textContent = `Peer ${s.user}` + (s.has_password ? "" : " — no password set yet: run `meff password`, or open the link the peer printed.");
    return;
  }
  state.csrf = s.csrf;
  $("#app").classList.remove("hidden");
  showLibrary(true);
  refreshMesh();
  setInterval(() => { if (state.view === "mesh") refreshMesh(); if (state.view === "peer") refreshPeer(); }, 2000);
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/login", { method: "POST", body: new URLSearchParams({ password: $("#login-password").value }) });
  if (r.ok) { location.reload(); return; }
  const j = await r.json().catch(() => ({}));
  $("#login-error").textContent = j.error || "login failed";
});

// ---- views
function show(view) {
  state.view = view;
  for (const v of document.querySelectorAll(".view")) v.classList.add("hidden");
  $(`#view-${view}`).classList.remove("hidden");
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.view === view);
  if (view === "mesh") refreshMesh();
  if (view === "peer") refreshPeer();
  if (view === "playlists") showPlaylists();
}
for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => {
  $("#search").value = "";
  show(t.dataset.view);
});

$("#show-albums").addEventListener("click", () => { state.libMode = "albums"; showLibrary(true); });
$("#show-artists").addEventListener("click", () => { state.libMode = "artists"; showLibrary(true); });
$("#more").addEventListener("click", () => showLibrary(false));

function albumTile(a) {
  const img = a.coverArt ? el("img", { src: coverUrl(a.coverArt, 300), loading: "lazy", alt: "" }) : el("div", { class: "nocover" });
  return el("div", { class: "album", dataset: { id: a.id }, onclick: () => showAlbum(a.id) },
    img, el("div", { class: "t" }, a.name), el("div", { class: "a" }, a.artist || ""));
}

async function showLibrary(reset) {
  $("#show-albums").classList.toggle("active", state.libMode === "albums");
  $("#show-artists").classList.toggle("active", state.libMode === "artists");
  const body = $("#library-body");
  if (reset) { state.offset = 0; body.replaceChildren(); }
  if (state.libMode === "albums") {
    const s = await api("getAlbumList2", { type: "alphabeticalByName", size: PAGE, offset: state.offset });
    const albums = s.albumList2.album || [];
    let grid = body.querySelector(".grid");
    if (!grid) { grid = el("div", { class: "grid" }); body.append(grid); }
    for (const a of albums) grid.append(albumTile(a));
    state.offset += albums.length;
    $("#more").classList.toggle("hidden", albums.length < PAGE);
  } else {
    const s = await api("getArtists");
    body.replaceChildren();
    for (const idx of s.artists.index || []) {
      body.append(el("h3", {}, idx.name));
      for (const a of idx.artist || []) body.append(el("div", { class: "artist-row", onclick: () => showArtist(a.id) }, a.name, el("span", { class: "note" }, ` · ${a.albumCount} albums`)));
    }
    $("#more").classList.add("hidden");
  }
  show("library");
}

async function showArtist(id) {
  const s = await api("getArtist", { id });
  const body = $("#library-body");
  const grid = el("div", { class: "grid" });
  for (const a of s.artist.album || []) grid.append(albumTile(a));
  body.replaceChildren(el("h2", {}, s.artist.name), grid);
  $("#more").classList.add("hidden");
  show("library");
}

function songRow(song) {
  return el("div", { class: "song-row", dataset: { id: song.id, name: song.meffName || "" } },
    el("span", { class: "title", onclick: () => playNow([song], 0) }, `${song.track ? song.track + ". " : ""}${song.title}`, el("span", { class: "note" }, song.artist ? ` — ${song.artist}` : "")),
    el("span", { class: "dur" }, clock(song.duration)),
    el("button", { class: "play-btn", title: "play", onclick: () => playNow([song], 0) }, "▶"),
    el("button", { class: "queue-btn", title: "add to queue", onclick: () => enqueue([song]) }, "+"),
    el("button", { class: "speaker-btn", title: "play on this peer's speakers", onclick: () => peerCmd(`stream -- ${quote(song.meffName)}`) }, "Peer"),
    el("button", { class: "playlist-btn", title: "add to playlist", onclick: () => addToPlaylist(song) }, "+ list"));
}

async function showAlbum(id) {
  const s = await api("getAlbum", { id });
  const a = s.album;
  const songs = a.song || [];
  const head = el("div", { class: "album-head" },
    a.coverArt ? el("img", { src: coverUrl(a.coverArt, 200), width: 120, height: 120, alt: "" }) : "",
    el("h2", {}, a.name), el("p", { class: "note" }, `${a.artist || ""} ${a.year ? "· " + a.year : ""} · ${songs.length} tracks · ${clock(a.duration)}`),
    el("button", { id: "play-album", onclick: () => playNow(songs, 0) }, "Play album"), " ",
    el("button", { onclick: () => enqueue(songs) }, "Add to queue"));
  $("#library-body").replaceChildren(head, ...songs.map(songRow));
  $("#more").classList.add("hidden");
  show("library");
}

// ---- search as you type (server-side, paged)
let searchTimer = null;
$("#search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 120);
});
async function runSearch() {
  const q = $("#search").value.trim();
  if (!q) { show("library"); return; }
  const seq = ++state.searchSeq;
  const s = await api("search3", { query: q, artistCount: 10, albumCount: 12, songCount: 50 });
  if (seq !== state.searchSeq) return;
  const r = s.searchResult3;
  const body = $("#search-body");
  body.replaceChildren();
  body.dataset.query = q; // which query these rows answer: typing may have rendered a shorter one first
  if ((r.artist || []).length) {
    body.append(el("h3", {}, "Artists"));
    for (const a of r.artist) body.append(el("div", { class: "artist-row", onclick: () => showArtist(a.id) }, a.name));
  }
  if ((r.album || []).length) {
    body.append(el("h3", {}, "Albums"));
    const grid = el("div", { class: "grid" });
    for (const a of r.album) grid.append(albumTile(a));
    body.append(grid);
  }
  body.append(el("h3", {}, "Tracks"));
  const songs = r.song || [];
  if (!songs.length) body.append(el("p", { class: "note" }, "No track matches."));
  for (const s2 of songs) body.append(songRow(s2));
  for (const v of document.querySelectorAll(".view")) v.classList.add("hidden");
  $("#view-search").classList.remove("hidden");
}

// ---- the browser's own queue and <audio>
const audio = $("#audio");
function renderQueue() {
  const ol = $("#queue");
  ol.replaceChildren(...state.queue.map((s, i) => el("li", { class: i === state.pos ? "current" : "", dataset: { id: s.id } },
    el("span", { onclick: () => playAt(i) }, s.title),
    el("button", { title: "up", onclick: () => moveQueue(i, -1) }, "▲"),
    el("button", { title: "down", onclick: () => moveQueue(i, 1) }, "▼"),
    el("button", { title: "remove", onclick: () => removeQueue(i) }, "✕"))));
}
function playNow(songs, at) { state.queue = songs.slice(); playAt(at); }
function enqueue(songs) {
  state.queue.push(...songs);
  if (state.pos < 0) playAt(0); else renderQueue();
}
function moveQueue(i, d) {
  const j = i + d;
  if (j < 0 || j >= state.queue.length) return;
  [state.queue[i], state.queue[j]] = [state.queue[j], state.queue[i]];
  if (state.pos === i) state.pos = j; else if (state.pos === j) state.pos = i;
  renderQueue();
}
function removeQueue(i) {
  state.queue.splice(i, 1);
  if (i < state.pos) state.pos--;
  else if (i === state.pos) { if (state.queue.length) playAt(Math.min(i, state.queue.length - 1)); else { audio.pause(); state.pos = -1; } }
  renderQueue();
}
function playAt(i) {
  if (i < 0 || i >= state.queue.length) return;
  state.pos = i;
  const s = state.queue[i];
  audio.src = streamUrl(s.id);
  audio.play().catch(() => {});
  $("#now-title").textContent = s.title;
  $("#now-artist").textContent = s.artist || "";
  $("#now-cover").src = s.coverArt ? coverUrl(s.coverArt, 100) : "";
  $("#now-cover").classList.toggle("hidden", !s.coverArt);
  renderQueue();
  api("scrobble", { id: s.id, submission: "false" }, true).catch(() => {});
}
$("#next").addEventListener("click", () => playAt(state.pos + 1));
$("#prev").addEventListener("click", () => (audio.currentTime > 3 ? (audio.currentTime = 0) : playAt(state.pos - 1)));
$("#play").addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
$("#shuffle").addEventListener("click", () => {
  const cur = state.queue[state.pos];
  const rest = state.queue.filter((_, i) => i !== state.pos);
  for (let i = rest.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [rest[i], rest[j]] = [rest[j], rest[i]]; }
  state.queue = cur ? [cur, ...rest] : rest;
  state.pos = cur ? 0 : -1;
  renderQueue();
});
$("#clear-queue").addEventListener("click", () => { state.queue = []; state.pos = -1; audio.pause(); renderQueue(); });
audio.addEventListener("ended", () => playAt(state.pos + 1));
audio.addEventListener("play", () => ($("#play").textContent = "Pause"));
audio.addEventListener("pause", () => ($("#play").textContent = "Play"));
audio.addEventListener("loadedmetadata", () => { $("#seek").max = audio.duration || 0; $("#duration").textContent = clock(audio.duration); });
audio.addEventListener("timeupdate", () => {
  if (!state.seeking) $("#seek").value = audio.currentTime;
  $("#time").textContent = clock(audio.currentTime);
});
$("#seek").addEventListener("input", () => { state.seeking = true; });
$("#seek").addEventListener("change", () => { audio.currentTime = Number($("#seek").value); state.seeking = false; });

// ---- playlists (shared with the CLI's)
async function showPlaylists() {
  const s = await api("getPlaylists");
  const body = $("#playlists-body");
  body.replaceChildren();
  for (const p of s.playlists.playlist || []) {
    body.append(el("div", { class: "playlist-row", dataset: { id: p.id } },
      el("span", { class: "title", onclick: () => showPlaylist(p.id) }, p.name), el("span", { class: "note" }, `${p.songCount} tracks`),
      el("button", { onclick: async () => { const l = await api("getPlaylist", { id: p.id }); playNow(l.playlist.entry || [], 0); } }, "▶"),
      el("button", { onclick: async () => { if (confirm(`Delete playlist '${p.name}' for everyone?`)) { await api("deletePlaylist", { id: p.id }, true); showPlaylists(); } } }, "✕")));
  }
}
async function showPlaylist(id) {
  const s = await api("getPlaylist", { id });
  const songs = s.playlist.entry || [];
  const rows = songs.map((song, i) => {
    const row = songRow(song);
    row.append(el("button", { title: "remove from playlist", onclick: async () => { await api("updatePlaylist", { playlistId: id, songIndexToRemove: i }, true); showPlaylist(id); } }, "−"));
    return row;
  });
  $("#playlists-body").replaceChildren(el("h2", {}, s.playlist.name), el("button", { onclick: () => playNow(songs, 0) }, "Play"), ...rows);
}
$("#new-playlist").addEventListener("submit", async (e) => {
  e.preventDefault();
  const name = $("#new-playlist-name").value.trim();
  if (!name) return;
  await api("createPlaylist", { name }, true).catch((err) => alert(err.message));
  $("#new-playlist-name").value = "";
  showPlaylists();
});
async function addToPlaylist(song) {
  const s = await api("getPlaylists");
  const names = (s.playlists.playlist || []).map((p) => p.name);
  const name = prompt(`Add '${song.title}' to which playlist?${names.length ? " (" + names.join(", ") + ")" : ""}`);
  if (!name) return;
  const found = (s.playlists.playlist || []).find((p) => p.name === name);
  if (found) await api("updatePlaylist", { playlistId: found.id, songIdToAdd: song.id }, true);
  else await api("createPlaylist", { name, songId: song.id }, true);
}

// ---- the mesh
async function refreshMesh() {
  const r = await fetch("/api/mesh");
  if (!r.ok) return;
  const s = await r.json();
  const tbody = $("#mesh-table tbody");
  const me = el("tr", { class: "self" }, el("td", {}, `${s.name} (this peer)`), el("td", { class: "state-alive" }, "alive"), el("td", {}, "—"), el("td", {}, "—"));
  tbody.replaceChildren(me, ...s.peers.map((p) => el("tr", { dataset: { name: p.name } },
    el("td", {}, p.name), el("td", { class: `state state-${p.state}` }, p.state),
    el("td", {}, p.rtt_ms == null ? "—" : `${p.rtt_ms.toFixed(1)} ms`), el("td", { class: "path" }, p.path))));
}

// ---- this peer's own playback (its speakers)
function quote(s) { return `'${String(s).replace(/'/g, "'\\''")}'`; }
async function peerCmd(command) {
  const r = await fetch("/api/control", { method: "POST", headers: { "X-CSRF-Token": state.csrf || "", "Content-Type": "application/json" }, body: JSON.stringify({ command }) });
  const j = await r.json().catch(() => ({}));
  $("#peer-result").textContent = (j.lines || []).join("\n") || j.error || "";
  if (!r.ok && !$("#peer-result").textContent) $("#peer-result").textContent = "failed";
  refreshPeer();
}
for (const b of document.querySelectorAll("[data-cmd]")) b.addEventListener("click", () => peerCmd(b.dataset.cmd));
$("#peer-volume").addEventListener("change", () => peerCmd(`volume ${$("#peer-volume").value}`));
async function refreshPeer() {
  const r = await fetch("/api/now");
  if (!r.ok) return;
  const j = await r.json();
  const p = j.playing;
  $("#peer-playing").textContent = p
    ? `${p.paused ? "Paused" : "Playing"}: ${p.title || p.name}${p.artist ? " — " + p.artist : ""} ${clock(p.position_s)}/${clock(p.duration_s)} from ${p.source || "?"}`
    : "Nothing plays on this peer.";
  if (p) $("#peer-volume").value = p.volume;
}

// ---- upload by drag and drop (a push, with progress and the overwrite rule)
function upload(file, replace = false) {
  const item = el("div", { class: "upload-item" }, el("div", {}, file.name), el("progress", { max: 1, value: 0 }), el("div", { class: "note upload-status" }, "sending"));
  $("#uploads").append(item);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/upload?${new URLSearchParams({ file: file.name, replace: replace ? "1" : "0" })}`);
  xhr.setRequestHeader("X-CSRF-Token", state.csrf || "");
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) item.querySelector("progress").value = e.loaded / e.total; };
  xhr.upload.onload = () => (item.querySelector(".upload-status").textContent = "storing on the peers…");
  xhr.onload = () => {
    let j = {};
    try { j = JSON.parse(xhr.responseText); } catch (_) { }
    const status = item.querySelector(".upload-status");
    if (xhr.status === 200) {
      status.textContent = j.already_there ? `already in the network as '${j.name}'` : `pushed '${j.name}' to ${j.copies} peers`;
      item.classList.add("done");
      if (state.view === "library") showLibrary(true);
    } else if (xhr.status === 409 && !replace && confirm(`${j.error}\n\nReplace it?`)) {
      item.remove();
      upload(file, true);
    } else {
      status.textContent = j.error || `failed (${xhr.status})`;
      status.classList.add("error");
    }
    setTimeout(() => item.remove(), 15000);
  };
  xhr.send(file);
}
$("#upload-input").addEventListener("change", (e) => { for (const f of e.target.files) upload(f); e.target.value = ""; });
let dragDepth = 0;
window.addEventListener("dragenter", (e) => { e.preventDefault(); dragDepth++; $("#drop-overlay").classList.remove("hidden"); });
window.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; $("#drop-overlay").classList.add("hidden"); } });
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => {
  e.preventDefault(); dragDepth = 0;
  $("#drop-overlay").classList.add("hidden");
  for (const f of e.dataTransfer.files) upload(f);
});

start();
