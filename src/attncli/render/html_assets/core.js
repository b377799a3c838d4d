"use strict";
// attncli interactive view: shared state, weight decoding, selectors, keyboard, readout, legends and thumbnails.
// Weights arrive per row as 8-bit codes on the row's own scale plus the row's top weights exactly (see #precision).
const D = JSON.parse(document.getElementById("attn-data").textContent);
const $ = (id) => document.getElementById(id);
const CROSS = D.kind === "align" || D.kind === "caption";
const PREFIX = D.grid ? D.grid.prefix : 0;
// Each method's facts from the registry (attncli.methods.registry.page_info): rows sum to 1, fusions, span, words.
const METHOD = D.method_info || {};
const NORMALISED = Object.assign({ encoder: true, decoder: true },
  Object.fromEntries(Object.entries(METHOD).map(([m, f]) => [m, f.normalised])));
const SCALES = ["zero", "minmax", "percentile"];
const READOUT_ROWS = 12;  // the readout lists this many keys, largest first
const I = D.initial || {};
const S = { layer: I.layer ?? D.layers.length - 1, head: I.head ?? -1, fuse: I.fuse || "mean",
            method: I.method || D.methods[0], query: I.query ?? D.focus, side: "query", key: 0, hide: !!I.hide,
            scale: I.scale || "zero", tiles: false, heads: [] };
const ARR = {};
// Filled by the kind's module: build, draw, move(dx, dy), home, rehide, unpreview, thumb(li, h) -> {w, h, v}, thumbKey.
const VIEW = {};
// Which tokens the rows and columns of the current array are: cross-attention, or an encoder/decoder's own.
function queriesOf(m = S.method) { return m === "encoder" ? D.tokens : m === "decoder" || CROSS ? D.target_tokens : D.tokens; }
function keysOf(m = S.method) { return m === "decoder" ? D.target_tokens : D.tokens; }
function qspecialOf(m = S.method) { return m === "encoder" ? D.special : m === "decoder" || CROSS ? D.target_special : D.special; }
function kspecialOf(m = S.method) { return m === "decoder" ? D.target_special : D.special; }
// Whether the queries are an image's tokens (an image page, or a caption's encoder): its [CLS] row stays.
function patchQueries(m = S.method) { return D.kind === "image" || (D.kind === "caption" && m === "encoder"); }
// The array the thumbnails show: the encoder's or decoder's own heads while one is shown, else the attention.
function thumbArray(m = S.method) { return m === "encoder" || m === "decoder" ? ARR[m] : ARR.attention; }

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function inflate(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function loadArrays() {
  for (const [name, spec] of Object.entries(D.arrays)) {
    const [, H, Q] = spec.shape, T = spec.top, HT = H + spec.fused;
    const a = Object.assign({}, spec, {
      bytes: await Promise.all(spec.chunks.map(inflate)),
      rowdata: spec.negative ? (await Promise.all(spec.rows.map(inflate))).map((b) => new Float32Array(b.buffer, b.byteOffset, 2 * H * Q)) : null,
      topdata: (await Promise.all(spec.tops.map(inflate))).map((b) => ({
        idx: new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + 2 * HT * Q * T)),
        val: new Float32Array(b.buffer.slice(b.byteOffset + 2 * HT * Q * T, b.byteOffset + 6 * HT * Q * T)) })),
    });
    if (spec.queries) a.qpos = new Map(spec.queries.map((q, i) => [q, i]));
    delete a.chunks; delete a.rows; delete a.tops;
    ARR[name] = a;
  }
}

function arrayFor(method = S.method, fuse = S.fuse) {
  return ARR[method + "-" + fuse] || ARR[method];  // one array per fusion (rollout), or one for all
}
function layersOf(method = S.method) { return arrayFor(method).layers; }

// Put a stored top table (head slot t) into a row: exact values (error 0), others capped at the smallest of them.
function applyTop(row, arr, li, t, pos) {
  const T = arr.top, off = (t * arr.shape[2] + pos) * T, td = arr.topdata[li];
  const cap = td.val[off + T - 1];
  for (let k = 0; k < row.v.length; k++) if (row.v[k] > cap) row.v[k] = cap;
  row.top = [];
  for (let j = 0; j < T; j++) { const k = td.idx[off + j]; row.v[k] = td.val[off + j]; row.e[k] = 0; row.top.push(k); }
  return row;
}

// One stored row as {v: values, e: error bounds, top: key indices in the capture's order}; null when not stored.
function matRow(arr, li, h, q) {
  const pos = arr.qpos ? arr.qpos.get(q) : q;
  if (pos === undefined) return null;
  const [, H, Q, K] = arr.shape, b = arr.bytes[li], off = (h * Q + pos) * K;
  // Rows without negative values start at 0 and step by their largest weight / 255 (the exact top-1).
  const rd = arr.rowdata && arr.rowdata[li];
  const lo = rd ? rd[h * Q + pos] : 0, s = rd ? rd[H * Q + h * Q + pos] : arr.topdata[li].val[(h * Q + pos) * arr.top] / 255;
  const v = new Float64Array(K), e = new Float64Array(K).fill(s / 2);
  for (let k = 0; k < K; k++) v[k] = lo + b[off + k] * s;
  return applyTop({ v, e, top: null }, arr, li, h, pos);
}

// Fast path for pictures (matrix, thumbnails): add weight × (the row as matRow decodes it) into out, no allocation.
function addRow(arr, li, h, q, out, weight = 1) {
  const pos = arr.qpos ? arr.qpos.get(q) : q;
  if (pos === undefined) return false;
  const [, H, Q, K] = arr.shape, b = arr.bytes[li], off = (h * Q + pos) * K, T = arr.top;
  const rd = arr.rowdata && arr.rowdata[li], toff = (h * Q + pos) * T, td = arr.topdata[li];
  const lo = rd ? rd[h * Q + pos] : 0, s = rd ? rd[H * Q + h * Q + pos] : td.val[toff] / 255, cap = td.val[toff + T - 1];
  for (let k = 0; k < K; k++) { const v = lo + b[off + k] * s; out[k] += weight * (v > cap ? cap : v); }
  for (let j = 0; j < T; j++) { const k = td.idx[toff + j]; out[k] += weight * (td.val[toff + j] - Math.min(lo + b[off + k] * s, cap)); }
  return true;
}

// The values of the row the page shows (as shownRow(q).v), fast when nothing is hidden and heads are one or averaged.
function rowFast(q, out) {
  const arr = arrayFor();
  if (S.hide || (arr.shape[1] > 1 && S.head < 0 && S.fuse !== "mean")) { const r = shownRow(q); if (r) out.set(r.v); return !!r; }
  out.fill(0);
  if (arr.shape[1] === 1 || S.head >= 0) return addRow(arr, S.layer, Math.max(0, arr.shape[1] === 1 ? 0 : S.head), q, out);
  const H = arr.shape[1];
  for (let h = 0; h < H; h++) if (!addRow(arr, S.layer, h, q, out, 1 / H)) return false;
  return true;
}

// The row of query q before hiding: one head, or the heads fused in the page (mean, max, min).
function rawRow(q, li = S.layer, head = S.head, method = S.method, fuse = S.fuse) {
  const arr = arrayFor(method, fuse);
  if (arr.shape[1] === 1) return matRow(arr, li, 0, q);
  if (head >= 0) return matRow(arr, li, head, q);
  const H = arr.shape[1], acc = matRow(arr, li, 0, q);
  if (!acc) return null;
  for (let h = 1; h < H; h++) {
    const r = matRow(arr, li, h, q);
    for (let k = 0; k < acc.v.length; k++) {
      if (fuse === "mean") { acc.v[k] += r.v[k]; acc.e[k] += r.e[k]; }
      else {
        acc.v[k] = fuse === "max" ? Math.max(acc.v[k], r.v[k]) : Math.min(acc.v[k], r.v[k]);
        acc.e[k] = Math.max(acc.e[k], r.e[k]);
      }
    }
  }
  acc.top = null;
  if (fuse === "mean") {
    for (let k = 0; k < acc.v.length; k++) { acc.v[k] /= H; acc.e[k] /= H; }
    if (arr.fused) applyTop(acc, arr, li, H, arr.qpos ? arr.qpos.get(q) : q);  // the mean's top weights, exact
  }
  return acc;
}

function keyVisible(k) { return !(S.hide && kspecialOf()[k]); }
function queryVisible(q) { return !(S.hide && qspecialOf()[q] && !patchQueries()); }  // an image's [CLS] row stays

// The row the page shows: hidden special keys set to 0 and, for methods whose rows sum to 1, renormalised from
// the stored values; the bound of each number grows with the error of the sum: (e + w·E) / (sum − E).
function shownRow(q, li = S.layer, head = S.head) {
  const r = rawRow(q, li, head);
  if (!r || !S.hide) return r;
  let total = 0, err = 0;
  for (let k = 0; k < r.v.length; k++) {
    if (!keyVisible(k)) { r.v[k] = 0; r.e[k] = 0; } else { total += r.v[k]; err += r.e[k]; }
  }
  if (r.top) r.top = r.top.filter(keyVisible);
  if (NORMALISED[S.method] && total > 0) {
    r.renormalised = true;
    for (let k = 0; k < r.v.length; k++) {
      if (!keyVisible(k)) continue;
      const w = r.v[k] / total;
      r.v[k] = w;
      r.e[k] = total > err ? (r.e[k] + w * err) / (total - err) : Infinity;
    }
  }
  return r;
}

// Keys of a row, largest first: the exact top entries in the capture's order, then the rest by value, then index;
// only the first n are ranked (one pass, no sort of a long row).
function ranked(r, keys, n = Infinity) {
  const inTop = new Set(r.top || []), isKey = new Set(keys);
  const head = (r.top || []).filter((k) => isKey.has(k));
  const want = Math.min(n, keys.length) - head.length, best = [];
  const before = (a, b) => r.v[a] > r.v[b] || (r.v[a] === r.v[b] && a < b);
  for (const k of keys) {
    if (inTop.has(k) || (best.length >= want && !before(k, best[best.length - 1]))) continue;
    let i = best.length;
    while (i > 0 && before(k, best[i - 1])) i--;
    best.splice(i, 0, k);
    if (best.length > want) best.pop();
  }
  return [...head, ...best];
}

// Largest value (at least floor) without spreading: Math.max(...v) overflows the stack for big matrices.
function maxOf(values, floor = 1e-12) {
  let top = floor;
  for (const v of values) if (v > top) top = v;
  return top;
}

// A number with only the digits its bound supports: exact values to 4 decimals (or 3 significant digits when
// tiny), coded ones to the decimal place of their bound; a coded value below its bound as "<bound".
// Digits a coded weight is printed with: one more than its bound's first, so the printing adds at most a twentieth.
function decimals(e) { return Math.min(7, Math.max(1, Math.ceil(-Math.log10(e)) + 1)); }
function roundUp(x, d) { const p = Math.pow(10, d); return (Math.ceil(x * p - 1e-9) / p).toFixed(d); }
// The bound as printed: the stored value's error plus the printed digits' rounding, rounded up to 2 figures.
function shownBound(e) {
  const total = e + 0.5 * Math.pow(10, -decimals(e));
  return roundUp(total, Math.max(0, 1 - Math.floor(Math.log10(total))));
}
function fmt(w, e = 0) {
  if (!isFinite(e)) return "?";
  if (e === 0) return w !== 0 && Math.abs(w) < 1e-4 ? w.toExponential(2) : w.toFixed(4);
  const d = decimals(e);
  if (Math.abs(w) < e) return "<" + roundUp(Math.abs(w) + e, d);  // the most the weight can be
  return w.toFixed(d);
}
function fmtErr(e) { return !isFinite(e) ? "?" : e === 0 ? "exact" : "±" + shownBound(e); }

function headWords() {
  const arr = arrayFor(), H = arr.shape[1], L = layersOf()[S.layer];
  const heads = S.head >= 0 ? `head ${S.head}` : `${S.fuse} of ${H} heads`;
  const M = METHOD[S.method];
  if (!M || S.method === "attention") return heads;  // raw weights (also an encoder's or decoder's own)
  const span = M.span === "layer" ? `layer ${L}` : L === 0 ? "layer 0" : `layers 0–${L}`;
  return M.words.replace("{span}", span).replace("{heads}", heads).replace("{fuse}", M.fuses ? S.fuse : "mean");
}

function what() {
  if (S.method === "encoder") return " · encoder self-attention";
  if (S.method === "decoder") return " · decoder self-attention";
  if (CROSS) return " · cross-attention";
  return S.method === "attention" ? " · attention" : "";
}

// A long input in the heading: its start and end, so the view stays on the first screen.
function short(text) { return text.length <= 160 ? text : `${text.slice(0, 100)} … ${text.slice(-40)} (${text.length} characters)`; }

function updateStatus() {
  const st = $("status"), L = layersOf()[S.layer];
  const side = S.method === "encoder" ? " (encoder)" : CROSS ? " (decoder)" : "";
  st.textContent = `${D.model_id} · ${short(D.input || D.kind)} · layer ${L}${side} · ${headWords()}${what()}`;
  const fused = S.head < 0 && arrayFor().shape[1] > 1;
  Object.assign(st.dataset, { layer: L, head: fused ? "fused" : Math.max(S.head, 0), fuse: S.fuse, method: S.method,
                              query: S.query, side: S.side, key: S.key, scale: S.scale, hide: S.hide ? 1 : 0 });
}

// Readout: entries [{index, label, weight, err, exact}] as table rows carrying data-index, data-weight, data-err.
function readout(title, entries, head, bound, total) {
  $("readout-title").textContent = title;
  const thead = $("readout").tHead, body = $("readout").tBodies[0];
  thead.replaceChildren(el("tr"));
  for (const h of head) thead.rows[0].append(el("th", {}, h));
  const top = maxOf(entries.map((e) => e.weight));
  body.replaceChildren(...entries.map((e) => {
    const tr = el("tr", Object.assign({ "data-index": e.index, "data-weight": String(e.weight),
                                        "data-err": String(e.err) }, e.data || {}));
    if (e.selected) tr.className = "selected";
    tr.append(el("td", { class: "i" }, String(e.index)), el("td", {}, e.label),
              el("td", { class: "w" }, fmt(e.weight, e.err)), el("td", { class: "e" }, fmtErr(e.err)));
    const bar = el("td", { class: "bar" }), span = el("span");
    span.style.width = `${Math.round(60 * Math.max(0, e.weight) / top)}px`;
    bar.append(span);
    tr.append(bar);
    return tr;
  }));
  const more = total > entries.length ? `; the ${entries.length} largest of ${total}` : "";
  $("precision").textContent = `${D.precision}. Shown: values to the digits their bound allows; ` +
    `largest bound in this readout ±${bound.toPrecision(2)}` + more +
    (S.hide && NORMALISED[S.method] ? "; rows renormalised from the stored values after hiding special tokens, " +
     "bounds include the error of the sum" : "") + ".";
  $("precision").dataset.bound = String(bound);
}

// Readout of a row: the largest READOUT_ROWS of the given keys, with index, label, value and bound.
function rowReadout(title, r, keys, labels, head) {
  const order = ranked(r, keys, READOUT_ROWS);
  let bound = 0;
  for (const k of keys) if (r.e[k] > bound) bound = r.e[k];
  readout(title, order.map((k) => ({ index: k, label: labels(k), weight: r.v[k], err: r.e[k] })), head, bound, keys.length);
}

function syncControls() {
  const layers = layersOf();
  if ($("layer").options.length !== layers.length || $("layer").dataset.method !== S.method) {
    $("layer").replaceChildren(...layers.map((L, li) => el("option", { value: li },
      `${L}${S.method === "encoder" ? " (encoder)" : CROSS ? " (decoder)" : ""}`)));
    $("layer").dataset.method = S.method;
  }
  const H = arrayFor().shape[1];
  $("layer").value = S.layer; $("head").value = S.head; $("fuse").value = S.fuse; $("method").value = S.method;
  $("scale").value = S.scale; $("tiles").checked = S.tiles;
  $("head").disabled = H === 1 && S.method !== "attention";
  $("fuse").disabled = (S.head >= 0 && H > 1) || (METHOD[S.method] ? !METHOD[S.method].fuses : false);
  $("hide-special").checked = S.hide;
}

// The URL fragment holds the state, so a link reopens the same view: #layer=5&head=2&method=attention&query=7…
let hashTimer = null;
function writeHash() {  // after the view is drawn, not in the click's time; the last state wins
  clearTimeout(hashTimer);
  hashTimer = setTimeout(writeHashNow, 100);
}
function writeHashNow() {
  const p = new URLSearchParams({ layer: layersOf()[S.layer], head: S.head < 0 ? "fused" : S.head, fuse: S.fuse,
    method: S.method, query: S.query, side: S.side, key: S.key, hide: S.hide ? 1 : 0, scale: S.scale,
    tiles: S.tiles ? 1 : 0 });
  if (S.heads.length) p.set("heads", S.heads.join(","));
  try { history.replaceState(null, "", "#" + p); } catch (err) { /* some file:// settings forbid it */ }
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (!p.toString()) return;
  const int = (k) => (p.has(k) && /^-?\d+$/.test(p.get(k)) ? +p.get(k) : null);
  if (p.has("method") && D.methods.includes(p.get("method"))) S.method = p.get("method");
  if (["mean", "max", "min"].includes(p.get("fuse"))) S.fuse = p.get("fuse");
  const li = layersOf().indexOf(int("layer"));
  if (li >= 0) S.layer = li; else S.layer = Math.min(S.layer, layersOf().length - 1);
  const H = arrayFor().shape[1];
  if (p.get("head") === "fused") S.head = -1; else if (int("head") !== null && int("head") >= 0 && int("head") < H) S.head = int("head");
  if (int("query") !== null && int("query") >= 0 && int("query") < queriesOf().length) S.query = int("query");
  if (int("key") !== null && int("key") >= 0 && int("key") < keysOf().length) S.key = int("key");
  if (["query", "key"].includes(p.get("side"))) S.side = p.get("side");
  if (SCALES.includes(p.get("scale"))) S.scale = p.get("scale");
  S.hide = p.get("hide") === "1"; S.tiles = p.get("tiles") === "1";
  if (p.get("heads")) S.heads = p.get("heads").split(",").map(Number).filter((h) => h >= 0 && h < D.n_heads);
}

function update() {
  syncControls();
  updateStatus();
  VIEW.draw();
  drawThumbs();
  if (D.qk) drawQk();
  writeHash();
}

function set(changes) {
  if (changes.method && changes.method !== S.method) {  // another array: keep the layer number when it has it
    const L = layersOf()[S.layer];
    Object.assign(S, { method: changes.method });
    const li = layersOf().indexOf(L);
    S.layer = li >= 0 ? li : layersOf().length - 1;
    if (S.head >= arrayFor().shape[1]) S.head = -1;
    VIEW.rehide();
  }
  Object.assign(S, changes);
  update();
}

function cycle(list, value, step) { return list[(list.indexOf(value) + step + list.length) % list.length]; }

function buildControls() {
  $("head").append(el("option", { value: -1 }, "all (fused)"));
  for (let h = 0; h < D.n_heads; h++) $("head").append(el("option", { value: h }, String(h)));
  for (const m of D.methods) $("method").append(el("option", { value: m }, m === "attention" && CROSS ? "cross-attention" : m));
  if (D.methods.length < 2) $("method-box").hidden = true;
  for (const s of SCALES) $("scale").append(el("option", { value: s }, { zero: "0 to max", minmax: "min to max",
    percentile: "1st to 99th percentile" }[s]));
  $("layer").addEventListener("change", (e) => set({ layer: +e.target.value }));
  $("head").addEventListener("change", (e) => set({ head: +e.target.value }));
  $("fuse").addEventListener("change", (e) => set({ fuse: e.target.value }));
  $("method").addEventListener("change", (e) => set({ method: e.target.value }));
  $("scale").addEventListener("change", (e) => set({ scale: e.target.value }));
  $("tiles").addEventListener("change", (e) => set({ tiles: e.target.checked }));
  $("hide-special").addEventListener("change", (e) => { S.hide = e.target.checked; VIEW.rehide(); update(); });
  for (const w of D.warnings) $("warnings").append(el("li", {}, w));
  const dropped = D.dropped.length ? ` Layers not in this file: ${D.dropped.join(", ")}.` : "";
  $("about").textContent = `attncli interactive view · ${D.kind} · ${D.n_layers} layers × ${D.n_heads} heads, ` +
    `layers in this file: ${D.layers.join(", ")}.${dropped}`;
}

function onKey(e) {
  if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
  const heads = [-1, ...Array.from({ length: arrayFor().shape[1] }, (_, h) => h)];
  const act = {
    ArrowLeft: () => VIEW.move(-1, 0), ArrowRight: () => VIEW.move(1, 0),
    ArrowUp: () => VIEW.move(0, -1), ArrowDown: () => VIEW.move(0, 1),
    "[": () => set({ layer: Math.max(0, S.layer - 1) }),
    "]": () => set({ layer: Math.min(layersOf().length - 1, S.layer + 1) }),
    ",": () => set({ head: cycle(heads, S.head, -1) }),
    ".": () => set({ head: cycle(heads, S.head, 1) }),
    f: () => set({ fuse: cycle(["mean", "max", "min"], S.fuse, 1) }),
    m: () => set({ method: cycle(D.methods, S.method, 1) }),
    s: () => { S.hide = !S.hide; VIEW.rehide(); update(); },
    c: () => VIEW.home(),
  }[e.key];
  if (act) {
    e.preventDefault(); VIEW.unpreview(); act();
    const sel = document.querySelector("#stage .selected");
    if (sel && e.key.startsWith("Arrow")) sel.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
}

async function main() {
  const t0 = performance.now(), timing = {};
  buildControls();
  try {
    await loadArrays();
    if (D.qk) await loadQk();
    timing.load = performance.now() - t0;
  } catch (err) {
    $("status").textContent = `could not decompress the weights: ${err} (this page needs a browser with DecompressionStream)`;
    return;
  }
  readHash();
  (D.kind === "caption" ? CAPTION_VIEW : D.kind === "image" ? IMAGE_VIEW : TEXT_VIEW)();
  VIEW.build();
  if (D.stats && typeof STATS_VIEW === "function") STATS_VIEW();
  document.addEventListener("keydown", onKey);
  VIEW.rehide();
  timing.build = performance.now() - t0;
  syncControls(); updateStatus();
  VIEW.draw();
  timing.draw = performance.now() - t0;
  drawThumbs();
  if (D.qk) drawQk();
  timing.thumbs = performance.now() - t0;
  writeHash();
  document.body.offsetHeight;  // the first layout, counted
  timing.ready = performance.now() - t0;
  timing.since_navigation = performance.now();  // from the start of the navigation: parsing included
  document.body.dataset.timing = JSON.stringify(timing);  // ms since the page's script started (tests read it)
  document.body.dataset.ready = "1";
}
window.addEventListener("DOMContentLoaded", main);
