// Text and align: query tokens on the left, key tokens on the right, lines between them; a matrix; thumbnails.
// Long inputs (more than LINES_MAX tokens) flow as one paragraph shaded by the selected token's row instead.
const LINES_MAX = 96;
const MATRIX_MAX = 512;  // matrix cells per side before pooling
const HEAD_HUES = [0, 210, 120, 30, 280, 170, 330, 60, 240, 90, 0, 190, 300, 20, 140, 260];
function TEXT_VIEW() {
  let preview = null;  // {side, index} while the mouse is over a token
  let built = null;    // which token lists the columns hold ("self", "encoder", "decoder")
  const lines = el("canvas", { id: "lines", "aria-hidden": "true" });
  let qcol, kcol, flow = false;

  function token(label, i, special, side, prob) {
    const li = el("li", { class: "tok" + (special ? " special" : ""), "data-index": i, "data-side": side }, label);
    if (prob !== undefined) li.append(el("span", { class: "p", title: "model probability of this token" }, prob.toFixed(2)));
    li.addEventListener("mouseenter", () => { preview = { side, index: i }; draw(); });
    li.addEventListener("mouseleave", () => { preview = null; draw(); });
    li.addEventListener("click", () => {
      preview = null;
      if (side === "query") set({ side, query: i }); else set({ side, key: i });
    });
    return li;
  }

  // (Re)build the token lists for the current array's queries and keys.
  function columns() {
    const group = S.method === "encoder" || S.method === "decoder" ? S.method : "self";
    if (group === built) return;
    built = group;
    const Q = queriesOf(), K = keysOf(), same = Q === K;
    flow = same && Q.length > LINES_MAX;
    const stage = $("stage");
    stage.replaceChildren();
    if (flow) {  // one paragraph: click a token to show its row over the others
      qcol = el("ol", { id: "qcol", class: "flow", "aria-label": "tokens: click one to see where it looks" });
      Q.forEach((t, i) => qcol.append(token(t, i, qspecialOf()[i], "query")));
      kcol = qcol;
      stage.append(qcol);
    } else {
      qcol = el("ol", { id: "qcol", class: "qcol", "aria-label": CROSS && group === "self" ? "target tokens" : "query tokens" });
      kcol = el("ol", { id: "kcol", class: "kcol", "aria-label": CROSS && group === "self" ? "source tokens" : "key tokens" });
      const probs = CROSS && group === "self" ? D.target_scores : null;
      Q.forEach((t, i) => qcol.append(token(t, i, qspecialOf()[i], "query", probs ? probs[i] : undefined)));
      K.forEach((t, i) => kcol.append(token(t, i, kspecialOf()[i], "key")));
      const cols = el("div", { class: "columns" });
      cols.append(qcol, lines, kcol);
      stage.append(cols);
    }
    $("heads-box").hidden = flow || arrayFor().shape[1] < 2;
    if (S.query >= Q.length) S.query = 0;
    if (S.key >= K.length) S.key = 0;
    matrixKey = null;
  }

  function focus() {
    const f = preview || { side: S.side, index: S.side === "query" ? S.query : S.key };
    return flow ? { side: "query", index: f.index } : f;
  }

  function visible(n, isVisible) { return Array.from({ length: n }, (_, i) => i).filter(isVisible); }

  // Weights from the focused token: its row (query side) or its column (key side), with their bounds.
  function weights(f) {
    if (f.side === "query") return shownRow(f.index);
    const qs = visible(queriesOf().length, queryVisible), v = new Float64Array(queriesOf().length), e = new Float64Array(v.length);
    for (const q of qs) { const r = shownRow(q); v[q] = r.v[f.index]; e[q] = r.e[f.index]; }
    return { v, e, top: null, rows: qs };
  }

  function draw() {
    columns();
    const f = focus(), r = weights(f);
    const ids = f.side === "query" ? visible(keysOf().length, keyVisible) : r.rows;
    const vals = ids.map((i) => r.v[i]), [lo, hi] = range(vals);
    const from = f.side === "query" ? qcol : kcol, to = f.side === "query" ? kcol : qcol;
    for (const li of $("stage").querySelectorAll(".tok.selected")) li.classList.remove("selected");
    // 32 shades; only tokens whose shade changes are touched (a long text's click restyles dozens, not thousands)
    const shade = new Int8Array(to.children.length);
    for (const i of ids) shade[i] = Math.round(32 * Math.min(1, Math.max(0, r.v[i] - lo) / (hi - lo)));
    const tint = (li, w) => { if (li._w !== w) { li._w = w; li.style.setProperty("--w", (0.8 * w / 32).toFixed(3)); } };
    for (let i = 0; i < shade.length; i++) tint(to.children[i], shade[i]);
    if (from !== to) for (const li of from.children) tint(li, 0);
    from.children[f.index].classList.add("selected");
    colourBar($("stage-bar"), [lo, hi], `token shading (32 steps): ${S.scale === "zero" ? "0" : S.scale === "minmax" ? "min" : "1st pct"} ` +
      `to ${S.scale === "percentile" ? "99th pct" : "max"} of this ${f.side === "query" ? "row" : "column"}`,
      "linear-gradient(to right, rgba(var(--accent), 0), rgba(var(--accent), 0.8))");
    if (!flow) drawLines(f, r, ids, lo, hi, from, to);
    const labels = f.side === "query" ? keysOf() : queriesOf();
    const who = (f.side === "query" ? queriesOf() : keysOf())[f.index];
    const title = f.side === "query" ? `From “${who}” (row ${f.index}) to each ${CROSS && S.method === "attention" ? "source" : "key"} token`
      : `To “${who}” (column ${f.index}) from each ${CROSS && S.method === "attention" ? "target" : "query"} token`;
    rowReadout(title, r, ids, (k) => labels[k], ["#", "token", "weight", "bound", ""]);
    $("note").textContent = preview ? "hovering: click to keep this token" : "";
    drawMatrix(f);
  }

  // Lines from the focused token: one colour, or one hue per picked head (each head on the same colour range).
  function drawLines(f, r, ids, lo, hi, from, to) {
    const box = lines.getBoundingClientRect(), height = Math.max(qcol.offsetHeight, kcol.offsetHeight);
    const W = lines.offsetWidth || 160;
    lines.width = W; lines.height = height; lines.style.height = height + "px";
    const ctx = lines.getContext("2d"), accent = getComputedStyle(document.documentElement).getPropertyValue("--accent");
    const y = (li) => { const b = li.getBoundingClientRect(); return b.top - box.top + b.height / 2; };
    const y0 = y(from.children[f.index]);
    const sets = S.heads.length && f.side === "query" && arrayFor().shape[1] > 1
      ? S.heads.map((h) => ({ r: shownRow(f.index, S.layer, h), rgb: `hsl(${HEAD_HUES[h % 16]} 80% 45% / ` }))
      : [{ r, rgb: `rgba(${accent}, ` }];
    let top = hi;
    if (sets.length > 1 || sets[0].r !== r) for (const s of sets) for (const i of ids) top = Math.max(top, s.r.v[i]);
    for (const s of sets) for (const i of ids) {
      const w = (s.r.v[i] - (sets[0].r === r ? lo : 0)) / (top - (sets[0].r === r ? lo : 0));
      if (!(w > 0)) continue;
      ctx.strokeStyle = `${s.rgb}${Math.min(1, w).toFixed(3)})`;
      ctx.lineWidth = 1 + 3 * Math.min(1, w);
      const y1 = y(to.children[i]);
      ctx.beginPath();
      if (f.side === "query") { ctx.moveTo(0, y0); ctx.lineTo(W, y1); } else { ctx.moveTo(W, y0); ctx.lineTo(0, y1); }
      ctx.stroke();
    }
  }

  // The whole (query, key) matrix of the current layer/head/method, visible rows and columns only.
  let matrixKey = null, matrixRange = [0, 1];
  function drawMatrix(f) {
    const qs = visible(queriesOf().length, queryVisible), ks = visible(keysOf().length, keyVisible);
    const key = [S.layer, S.head, S.fuse, S.method, S.hide, S.scale].join();
    const canvas = $("matrix");
    if (key !== matrixKey) {  // recompute only when the matrix changes, not when the focus moves
      // Above MATRIX_MAX rows or columns, each cell is the mean of a block (said under the matrix): the canvas is
      // shown 300 px wide, and painting 4 M cells made a long text's page slow to open.
      const ph = Math.min(qs.length, MATRIX_MAX), pw = Math.min(ks.length, MATRIX_MAX);
      const v = new Float64Array(ph * pw), n = new Float64Array(ph * pw), row = new Float64Array(keysOf().length);
      const col = Int32Array.from(ks, (_, j) => Math.floor(j * pw / ks.length));
      for (let i = 0; i < qs.length; i++) {
        rowFast(qs[i], row);
        const y = Math.floor(i * ph / qs.length) * pw;
        for (let j = 0; j < ks.length; j++) { v[y + col[j]] += row[ks[j]]; n[y + col[j]] += 1; }
      }
      for (let i = 0; i < v.length; i++) v[i] /= n[i];
      matrixRange = range(v);
      paint(canvas, pw, ph, v, matrixRange);
      matrixKey = key;
      canvas.dataset.rows = qs.join(",");
      canvas.dataset.cols = ks.join(",");
      const Q = queriesOf(), K = keysOf();
      $("matrix-keys").textContent = `keys → (columns: ${ks.length} ${CROSS && S.method === "attention" ? "source" : ""} tokens, ` +
        `“${K[ks[0]]}” … “${K[ks[ks.length - 1]]}”)`;
      $("matrix-queries").textContent = `queries ↓ (rows: “${Q[qs[0]]}” … “${Q[qs[qs.length - 1]]}”)`;
      const pooled = ph < qs.length || pw < ks.length
        ? `; pooled to ${ph} × ${pw} cells, each the mean of a block of about ${Math.ceil(qs.length / ph)} × ${Math.ceil(ks.length / pw)}` : "";
      colourBar($("matrix-bar"), matrixRange, `matrix colours: ${S.scale === "zero" ? "0 to max" : S.scale === "minmax" ? "min to max" : "1st to 99th percentile"} of this matrix${pooled}`);
      canvas.dataset.pooled = pooled ? `${ph}x${pw}` : "";
    }
    // The selection is marked beside the matrix (a ▶ at the row, or ▼ over the column), hiding no cell.
    const mark = $("matrix-mark"), at = (f.side === "query" ? qs : ks).indexOf(f.index);
    const pc = (100 * (at + 0.5) / (f.side === "query" ? qs.length : ks.length)).toFixed(3);
    if (f.side === "query") {  // percentages of the canvas' box: no layout read in a click
      Object.assign(mark.style, { left: "-11px", top: `calc(${pc}% - 5px)` }); mark.textContent = "▶";
    } else {
      Object.assign(mark.style, { left: `calc(${pc}% - 5px)`, top: "-11px" }); mark.textContent = "▼";
    }
    mark.dataset.at = String(f.index);
  }

  function move(dx, dy) {
    const side = flow ? "query" : S.side, step = dx + dy, n = side === "query" ? queriesOf().length : keysOf().length;
    const ok = side === "query" ? queryVisible : keyVisible;
    let i = side === "query" ? S.query : S.key;
    for (let j = i + step; j >= 0 && j < n; j += step) if (ok(j)) { i = j; break; }
    set(side === "query" ? { query: i, side } : { key: i });
  }

  function rehide() {
    columns();
    for (const li of qcol.children) li.classList.toggle("hidden", !queryVisible(+li.dataset.index));
    if (!flow) for (const li of kcol.children) li.classList.toggle("hidden", !keyVisible(+li.dataset.index));
    if (!queryVisible(S.query)) S.query = Math.max(0, queriesOf().findIndex((_, q) => queryVisible(q)));
    if (!keyVisible(S.key)) S.key = Math.max(0, keysOf().findIndex((_, k) => keyVisible(k)));
  }

  // Thumbnail of one head: its whole matrix pooled to at most 48 × 48 cells (mean of each block).
  function thumb(li, h) {
    const arr = thumbArray(), Q = arr.shape[2], K = arr.shape[3], th = Math.min(Q, 48), tw = Math.min(K, 48);
    const v = new Float64Array(th * tw), n = new Float64Array(th * tw), r = new Float64Array(K);
    const col = Int32Array.from({ length: K }, (_, k) => Math.floor(k * tw / K));
    for (let q = 0; q < Q; q++) {
      r.fill(0); addRow(arr, li, h, q, r);
      const y = Math.floor(q * th / Q) * tw;
      for (let k = 0; k < K; k++) { v[y + col[k]] += r[k]; n[y + col[k]] += 1; }
    }
    for (let i = 0; i < v.length; i++) v[i] /= n[i];
    return { w: tw, h: th, v };
  }

  function pickHeads() {
    const box = $("heads-pick");
    for (let h = 0; h < D.n_heads; h++) {
      const c = el("input", { type: "checkbox", "data-head": h, title: `draw head ${h}'s lines in this colour` });
      c.checked = S.heads.includes(h);
      c.addEventListener("change", () => set({ heads: [...box.querySelectorAll("input:checked")].map((x) => +x.dataset.head) }));
      const l = el("label", { class: "head-pick" });
      l.style.color = `hsl(${HEAD_HUES[h % 16]} 80% 40%)`;
      l.append(c, String(h));
      box.append(l);
    }
  }

  Object.assign(VIEW, {
    build() {
      columns();
      pickHeads();
      $("matrix").addEventListener("click", (e) => {
        const r = e.target.getBoundingClientRect(), rows = e.target.dataset.rows.split(",").map(Number);
        set({ side: "query", query: rows[Math.min(rows.length - 1, Math.floor((e.clientY - r.top) / r.height * rows.length))] });
      });
    },
    draw, move, unpreview() { preview = null; }, rehide, thumb,
    reset() { built = null; },  // the stage was emptied (a caption page coming back from its picture)
    home() { set({ side: "query", query: D.focus }); },
    thumbKey() { return "matrix"; },
  });
}
