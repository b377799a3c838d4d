// The query/key panel (bertviz's neuron view): for the selected token and head, its query vector q, each key
// vector k, the products q∘k, their sum (the score), the score × the model's scaling, the mask and the softmax.
// The vectors are the capture's float32 values; the softmax is offered only where it reproduces the captured
// weights (checked when the page was written, D.qk.check), else the panel names the model's extra score terms.
const QK = { q: [], k: [], allowed: null };
const QK_ROWS = 64;  // all keys up to this many, else the largest scores

async function loadQk() {
  const f32 = (b) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  QK.q = (await Promise.all(D.qk.query.map(inflate))).map(f32);
  QK.k = (await Promise.all(D.qk.key.map(inflate))).map(f32);
  QK.allowed = await inflate(D.qk.allowed);
}

// A strip of d cells: blue below 0, red above, on ±top.
function strip(values, top) {
  const c = el("canvas", { class: "qk-strip", width: values.length, height: 1 });
  const ctx = c.getContext("2d"), img = ctx.createImageData(values.length, 1);
  values.forEach((v, i) => {
    const t = Math.min(1, Math.abs(v) / top), on = v >= 0;
    img.data.set([255 - (on ? 0 : 200) * t, 255 - 200 * t, 255 - (on ? 200 : 0) * t, 255], 4 * i);
  });
  ctx.putImageData(img, 0, 0);
  return c;
}

function vecText(values) { return Array.from(values, (v) => v.toFixed(4)).join(" "); }

function drawQk() {
  const Q = D.qk, box = $("qk-box"), note = $("qk-note"), body = $("qk").tBodies[0], head = $("qk").tHead;
  box.hidden = false;
  body.replaceChildren(); head.replaceChildren(); $("qk-query").textContent = ""; $("qk-key").textContent = "";
  const L = layersOf()[S.layer], slot = Q.layers.indexOf(L), n = Q.n, d = Q.d;
  box.dataset.layer = String(L);
  if (S.method !== "attention") { note.textContent = "The query/key view explains the attention method's weights: switch Method to attention."; return; }
  if (slot < 0) { note.textContent = `No query/key vectors for layer ${L} on this page (kept: layers ${Q.layers.join(", ")}).`; return; }
  if (S.head < 0) { note.textContent = "Scores are per head: pick one head (Head, or keys , and .) to see its query and key vectors."; return; }
  const h = S.head, qi = S.query, q = QK.q[slot].subarray((h * n + qi) * d, (h * n + qi + 1) * d);
  const scaling = Q.scaling[slot], ok = Q.check[slot] <= Q.tolerance;
  const keyVec = (j) => QK.k[slot].subarray((h * n + j) * d, (h * n + j + 1) * d);
  const rows = [];
  let top = 1e-12, vmax = 1e-12;
  for (const v of q) vmax = Math.max(vmax, Math.abs(v));
  for (let j = 0; j < n; j++) {
    const k = keyVec(j), prod = new Float64Array(d);
    let score = 0;
    for (let i = 0; i < d; i++) { prod[i] = q[i] * k[i]; score += prod[i]; top = Math.max(top, Math.abs(prod[i])); vmax = Math.max(vmax, Math.abs(k[i])); }
    rows.push({ j, k, prod, score, scaled: score * scaling, allowed: QK.allowed[qi * n + j] > 0 });
  }
  let m = -Infinity, z = 0;
  for (const r of rows) if (r.allowed) m = Math.max(m, r.scaled);
  for (const r of rows) { r.e = r.allowed ? Math.exp(r.scaled - m) : 0; z += r.e; }
  for (const r of rows) r.softmax = r.e / z;
  const stored = matRow(ARR.attention, S.layer, h, qi);
  note.textContent = `Layer ${L}, head ${h}, query “${queriesOf()[qi]}” (row ${qi}): score = q·k = Σ q∘k over ${d} ` +
    `dimensions; scaled = score × ${scaling.toPrecision(6)} (the scaling the model passed to its attention function); ` +
    `masked keys get −∞; weight = softmax of the scaled scores over the row. Vectors are the capture's float32 values ` +
    `(query and key after position embeddings such as RoPE; grouped key heads repeated to each query head). ` +
    (ok ? `Check: at this layer the softmax of these products gives the captured weights within ${Q.check[slot].toExponential(1)} ` +
           `(every head and row). Models whose scores have extra terms (position bias, soft-capping, sinks) may differ; this one does not.`
       : `At this layer the softmax of q·k × scaling differs from the captured weights by up to ${Q.check[slot].toPrecision(2)}: ` +
         `this model's scores have ${Q.terms}, so no softmax of the bare products is shown; the weight column is the captured one.`);
  note.dataset.ok = ok ? "1" : "0";
  $("qk-query").replaceChildren(el("b", {}, "q: "), strip(q, vmax), el("code", {}, vecText(q)));
  const shown = n <= QK_ROWS ? rows : [...rows].sort((a, b) => b.score - a.score || a.j - b.j).slice(0, QK_ROWS).sort((a, b) => a.j - b.j);
  const cols = ["#", "key", "k", "q∘k", "q·k", "× scaling", ok ? "softmax" : "", "captured weight", "bound"];
  head.append(el("tr"));
  for (const c of cols) head.rows[0].append(el("th", {}, c));
  for (const r of shown) {
    const tr = el("tr", { "data-key": r.j, "data-score": String(r.score), "data-scaled": String(r.scaled),
                          "data-softmax": ok ? String(r.softmax) : "", "data-weight": stored ? String(stored.v[r.j]) : "",
                          "data-err": stored ? String(stored.e[r.j]) : "" });
    if (r.j === S.key) tr.className = "selected";
    tr.append(el("td", { class: "i" }, String(r.j)), el("td", {}, keysOf()[r.j]));
    const kc = el("td"), pc = el("td");
    kc.append(strip(r.k, vmax)); pc.append(strip(r.prod, top));
    tr.append(kc, pc, el("td", { class: "w" }, r.score.toFixed(4)), el("td", { class: "w" }, r.allowed ? r.scaled.toFixed(4) : "masked"),
              el("td", { class: "w" }, ok ? r.softmax.toFixed(6) : ""),
              el("td", { class: "w" }, stored ? fmt(stored.v[r.j], stored.e[r.j]) : ""), el("td", { class: "e" }, stored ? fmtErr(stored.e[r.j]) : ""));
    tr.addEventListener("click", () => set({ key: r.j }));
    body.append(tr);
  }
  if (shown.length < n) $("qk-key").append(`The ${shown.length} largest scores of ${n} keys, in key order. `);
  const sel = rows[Math.min(S.key, n - 1)];
  $("qk-key").append(el("b", {}, `key ${sel.j} “${keysOf()[sel.j]}”: k = `), el("code", {}, vecText(sel.k)),
                     el("b", {}, " q∘k = "), el("code", {}, vecText(sel.prod)), ` (sum ${sel.score.toFixed(6)}). Click a row to pick its key. ` +
                     "Strips: blue below 0, red above; q and k on one scale, q∘k on its own.");
}
