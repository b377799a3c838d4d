"use strict";
// attncli interactive view: shared state, weight decoding, selectors, keyboard, readout and thumbnails.
// Weights arrive as 8-bit codes per (query, key) matrix: value = low + code * scale (see #precision).
const D = JSON.parse(document.getElementById("attn-data").textContent);
const $ = (id) => document.getElementById(id);
const CROSS = D.kind === "align" || D.kind === "caption";
const QUERIES = CROSS ? D.target_tokens : D.tokens;   // row labels
const QSPECIAL = CROSS ? D.target_special : D.special;
const KEYS = D.tokens;                                 // column labels
const KSPECIAL = D.special;
const PREFIX = D.grid ? D.grid.prefix : 0;
const NORMALISED = { attention: true, rollout: true, flow: true, "grad-rollout": false };
const S = { layer: D.layers.length - 1, head: -1, fuse: "mean", method: D.methods[0], query: D.focus,
            side: "query", key: 0, hide: false };
const ARR = {};
// Filled by the kind's module: build, draw, move(dx, dy), home, rehide, unpreview, thumb(li, h) -> {w, h, v}, thumbKey.
const VIEW = {};

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
    const a = Object.assign({}, spec, { bytes: await Promise.all(spec.chunks.map(inflate)) });
    if (spec.queries) a.qpos = new Map(spec.queries.map((q, i) => [q, i]));
    delete a.chunks;
    ARR[name] = a;
  }
}

function arrayFor(method, fuse) {
  if (method === "rollout") return ARR["rollout-" + fuse];
  return ARR[method];
}

// One stored matrix row as numbers; null when that query was not stored (flow: prefix rows only).
function matRow(arr, li, h, q) {
  const pos = arr.qpos ? arr.qpos.get(q) : q;
  if (pos === undefined) return null;
  const Q = arr.shape[2], K = arr.shape[3], b = arr.bytes[li];
  const s = arr.scales[li][h], lo = arr.lows[li][h], off = (h * Q + pos) * K;
  const out = new Float64Array(K);
  for (let k = 0; k < K; k++) out[k] = lo + b[off + k] * s;
  return out;
}

// The row of query q before hiding: one head, or the heads fused in the page (mean, max, min).
function rawRow(q, li = S.layer, head = S.head, method = S.method, fuse = S.fuse) {
  const arr = arrayFor(method, fuse);
  if (method !== "attention") return matRow(arr, li, 0, q);
  if (head >= 0) return matRow(arr, li, head, q);
  const H = arr.shape[1], acc = matRow(arr, li, 0, q);
  for (let h = 1; h < H; h++) {
    const r = matRow(arr, li, h, q);
    for (let k = 0; k < acc.length; k++) {
      if (fuse === "mean") acc[k] += r[k];
      else if (fuse === "max") acc[k] = Math.max(acc[k], r[k]);
      else acc[k] = Math.min(acc[k], r[k]);
    }
  }
  if (fuse === "mean") for (let k = 0; k < acc.length; k++) acc[k] /= H;
  return acc;
}

function keyVisible(k) { return !(S.hide && KSPECIAL[k]); }
function queryVisible(q) { return !(S.hide && QSPECIAL[q] && D.kind !== "image"); }  // an image's [CLS] row stays

// The row the page shows: hidden special keys set to 0 and, for methods whose rows sum to 1, renormalised.
function shownRow(q, li = S.layer, head = S.head) {
  const r = rawRow(q, li, head);
  if (!r || !S.hide) return r;
  let total = 0;
  for (let k = 0; k < r.length; k++) { if (!keyVisible(k)) r[k] = 0; total += r[k]; }
  if (NORMALISED[S.method] && total > 0) for (let k = 0; k < r.length; k++) r[k] /= total;
  return r;
}

// Error bound of the shown numbers before renormalising: the largest scale/2 of the matrices used.
function bound(li = S.layer) {
  const arr = arrayFor(S.method, S.fuse);
  const scales = S.method === "attention" && S.head < 0 ? arr.scales[li] : [arr.scales[li][Math.max(S.head, 0)]];
  return maxOf(scales, 0) / 2;
}

// Largest value (at least floor) without spreading: Math.max(...v) overflows the stack for big matrices.
function maxOf(values, floor = 1e-12) {
  let top = floor;
  for (const v of values) if (v > top) top = v;
  return top;
}

function fmt(w) { return w.toFixed(4); }

function headWords() {
  const H = D.n_heads, L = D.layers[S.layer];
  if (S.method === "attention") return S.head >= 0 ? `head ${S.head}` : `${S.fuse} of ${H} heads`;
  const span = L === 0 ? "layer 0" : `layers 0–${L}`;
  if (S.method === "rollout") return `rollout of ${span} (${S.fuse}${D.discard_ratio ? ", discard " + D.discard_ratio : ""})`;
  if (S.method === "flow") return `attention flow through ${span} (mean)`;
  return `gradient rollout of ${span}` + (D.target_label ? ` for ${D.target_label}` : "");
}

function updateStatus() {
  const st = $("status"), L = D.layers[S.layer];
  const what = CROSS ? " · cross-attention" : S.method === "attention" ? " · attention" : "";  // other methods name themselves
  st.textContent = `${D.model_id} · ${D.input || D.kind} · layer ${L}${CROSS ? " (decoder)" : ""} · ${headWords()}${what}`;
  Object.assign(st.dataset, { layer: L, head: S.method === "attention" && S.head >= 0 ? S.head : "fused",
                              fuse: S.fuse, method: S.method, query: S.query, side: S.side, key: S.key });
  $("precision").textContent = `${D.precision}; this view: ±${bound().toPrecision(3)} ` +
    `(whole file ≤ ±${D.max_error.toPrecision(3)})` + (S.hide ? "; rows renormalised after hiding special tokens" : "");
  $("precision").dataset.bound = bound();
}

// Readout: entries [{index, label, weight, extra}] as table rows carrying data-index and data-weight.
function readout(title, entries, head) {
  $("readout-title").textContent = title;
  const thead = $("readout").tHead, body = $("readout").tBodies[0];
  thead.replaceChildren(el("tr"));
  for (const h of head) thead.rows[0].append(el("th", {}, h));
  const top = maxOf(entries.map((e) => e.weight));
  body.replaceChildren(...entries.map((e) => {
    const tr = el("tr", Object.assign({ "data-index": e.index, "data-weight": String(e.weight) }, e.data || {}));
    if (e.selected) tr.className = "selected";
    tr.append(el("td", {}, e.label), el("td", { class: "w" }, fmt(e.weight)));
    const bar = el("td", { class: "bar" }), span = el("span");
    span.style.width = `${Math.round(60 * Math.max(0, e.weight) / top)}px`;
    bar.append(span);
    tr.append(bar);
    return tr;
  }));
}

// Viridis-like colour for t in [0, 1].
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(t) {
  t = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t)), f = t - i, a = STOPS[i], b = STOPS[i + 1];
  return [0, 1, 2].map((c) => Math.round(a[c] + f * (b[c] - a[c])));
}

function paint(canvas, w, h, values, max) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  const top = max || maxOf(values);
  for (let i = 0; i < w * h; i++) {
    const c = colour(values[i] / top);
    img.data.set([c[0], c[1], c[2], 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return ctx;
}

let thumbKey = null;
function drawThumbs() {
  const box = $("thumbs"), key = VIEW.thumbKey();
  if (key !== thumbKey) {
    thumbKey = key;
    box.replaceChildren();
    box.style.gridTemplateColumns = `auto repeat(${D.n_heads}, auto)`;
    box.append(el("span"));
    for (let h = 0; h < D.n_heads; h++) box.append(el("span", {}, `head ${h}`));
    D.layers.forEach((L, li) => {
      box.append(el("span", {}, `layer ${L}`));
      for (let h = 0; h < D.n_heads; h++) {
        const t = VIEW.thumb(li, h), c = el("canvas", { "data-layer": L, "data-head": h,
          title: `layer ${L}, head ${h}` });
        paint(c, t.w, t.h, t.v);
        c.addEventListener("click", () => set({ layer: li, head: h, method: "attention" }));
        box.append(c);
      }
    });
  }
  for (const c of box.querySelectorAll("canvas")) {
    const on = S.method === "attention" && +c.dataset.layer === D.layers[S.layer] && +c.dataset.head === S.head;
    c.classList.toggle("current", on);
  }
}

function syncControls() {
  $("layer").value = S.layer; $("head").value = S.head; $("fuse").value = S.fuse; $("method").value = S.method;
  $("head").disabled = S.method !== "attention";
  $("fuse").disabled = (S.method === "attention" && S.head >= 0) || S.method === "flow" || S.method === "grad-rollout";
  $("hide-special").checked = S.hide;
}

function update() {
  syncControls();
  updateStatus();
  VIEW.draw();
  drawThumbs();
}

function set(changes) { Object.assign(S, changes); update(); }

function cycle(list, value, step) { return list[(list.indexOf(value) + step + list.length) % list.length]; }

function buildControls() {
  D.layers.forEach((L, li) => $("layer").append(el("option", { value: li }, `${L}${CROSS ? " (decoder)" : ""}`)));
  $("head").append(el("option", { value: -1 }, "all (fused)"));
  for (let h = 0; h < D.n_heads; h++) $("head").append(el("option", { value: h }, String(h)));
  for (const m of D.methods) $("method").append(el("option", { value: m }, m));
  if (D.methods.length < 2) $("method-box").hidden = true;
  $("layer").addEventListener("change", (e) => set({ layer: +e.target.value }));
  $("head").addEventListener("change", (e) => set({ head: +e.target.value }));
  $("fuse").addEventListener("change", (e) => set({ fuse: e.target.value }));
  $("method").addEventListener("change", (e) => set({ method: e.target.value }));
  $("hide-special").addEventListener("change", (e) => { S.hide = e.target.checked; VIEW.rehide(); update(); });
  for (const w of D.warnings) $("warnings").append(el("li", {}, w));
  const dropped = D.dropped.length ? ` Layers not in this file: ${D.dropped.join(", ")}.` : "";
  $("about").textContent = `attncli interactive view · ${D.kind} · ${D.n_layers} layers × ${D.n_heads} heads, ` +
    `layers in this file: ${D.layers.join(", ")}.${dropped}`;
}

function onKey(e) {
  if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" || e.ctrlKey || e.metaKey || e.altKey) return;
  const heads = [-1, ...Array.from({ length: D.n_heads }, (_, h) => h)];
  const act = {
    ArrowLeft: () => VIEW.move(-1, 0), ArrowRight: () => VIEW.move(1, 0),
    ArrowUp: () => VIEW.move(0, -1), ArrowDown: () => VIEW.move(0, 1),
    "[": () => set({ layer: Math.max(0, S.layer - 1) }),
    "]": () => set({ layer: Math.min(D.layers.length - 1, S.layer + 1) }),
    ",": () => set({ head: cycle(heads, S.head, -1), method: "attention" }),
    ".": () => set({ head: cycle(heads, S.head, 1), method: "attention" }),
    f: () => set({ fuse: cycle(["mean", "max", "min"], S.fuse, 1) }),
    m: () => set({ method: cycle(D.methods, S.method, 1) }),
    s: () => { S.hide = !S.hide; VIEW.rehide(); update(); },
    c: () => VIEW.home(),
  }[e.key];
  if (act) { e.preventDefault(); VIEW.unpreview(); act(); }  // the keyboard wins over the hovered token
}

async function main() {
  buildControls();
  try {
    await loadArrays();
  } catch (err) {
    $("status").textContent = `could not decompress the weights: ${err} (this page needs a browser with DecompressionStream)`;
    return;
  }
  (CROSS && D.kind === "caption" || D.kind === "image" ? IMAGE_VIEW : TEXT_VIEW)();
  VIEW.build();
  document.addEventListener("keydown", onKey);
  update();
  document.body.dataset.ready = "1";
}
window.addEventListener("DOMContentLoaded", main);
