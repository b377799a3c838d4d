// Text and align: query tokens on the left, key tokens on the right, lines between them; a matrix; thumbnails.
function TEXT_VIEW() {
  let preview = null;  // {side, index} while the mouse is over a token
  const lines = el("canvas", { id: "lines", "aria-hidden": "true" });
  const qcol = el("ol", { id: "qcol", class: "qcol", "aria-label": CROSS ? "target tokens" : "query tokens" });
  const kcol = el("ol", { id: "kcol", class: "kcol", "aria-label": CROSS ? "source tokens" : "key tokens" });

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

  function focus() { return preview || { side: S.side, index: S.side === "query" ? S.query : S.key }; }

  function visible(n, isVisible) { return Array.from({ length: n }, (_, i) => i).filter(isVisible); }

  // Weights from the focused token: its row (query side) or its column (key side).
  function weights(f) {
    if (f.side === "query") {
      const r = shownRow(f.index);
      return visible(KEYS.length, keyVisible).map((k) => ({ index: k, weight: r[k] }));
    }
    return visible(QUERIES.length, queryVisible).map((q) => ({ index: q, weight: shownRow(q)[f.index] }));
  }

  function draw() {
    const f = focus(), ws = weights(f);
    const top = maxOf(ws.map((w) => w.weight));
    const from = f.side === "query" ? qcol : kcol, to = f.side === "query" ? kcol : qcol;
    for (const li of document.querySelectorAll(".columns .tok")) {
      li.style.setProperty("--w", 0);
      li.classList.toggle("selected", li.parentNode === from && +li.dataset.index === f.index);
    }
    for (const w of ws) to.children[w.index].style.setProperty("--w", (0.75 * w.weight / top).toFixed(3));
    // lines
    const box = lines.getBoundingClientRect(), height = Math.max(qcol.offsetHeight, kcol.offsetHeight);
    lines.width = 160; lines.height = height; lines.style.height = height + "px";
    const ctx = lines.getContext("2d"), colour = getComputedStyle(document.documentElement).getPropertyValue("--accent");
    const y = (li) => { const r = li.getBoundingClientRect(); return r.top - box.top + r.height / 2; };
    const y0 = y(from.children[f.index]);
    for (const w of ws) {
      if (w.weight <= 0) continue;
      const y1 = y(to.children[w.index]);
      ctx.strokeStyle = `rgba(${colour}, ${Math.min(1, w.weight / top).toFixed(3)})`;
      ctx.lineWidth = 1 + 3 * w.weight / top;
      ctx.beginPath();
      if (f.side === "query") { ctx.moveTo(0, y0); ctx.lineTo(160, y1); } else { ctx.moveTo(160, y0); ctx.lineTo(0, y1); }
      ctx.stroke();
    }
    const labels = f.side === "query" ? KEYS : QUERIES;
    const who = (f.side === "query" ? QUERIES : KEYS)[f.index];
    const title = f.side === "query" ? `From “${who}” (row ${f.index}) to each ${CROSS ? "source" : "key"} token`
      : `To “${who}” (column ${f.index}) from each ${CROSS ? "target" : "query"} token`;
    readout(title, ws.map((w) => ({ index: w.index, label: labels[w.index], weight: w.weight })), ["token", "weight", ""]);
    $("note").textContent = preview ? "hovering: click to keep this token" : "";
    drawMatrix(f);
  }

  // The whole (query, key) matrix of the current layer/head/method, visible rows and columns only.
  let matrixKey = null, matrixImage = null;
  function drawMatrix(f) {
    const qs = visible(QUERIES.length, queryVisible), ks = visible(KEYS.length, keyVisible);
    const key = [S.layer, S.head, S.fuse, S.method, S.hide].join();
    const canvas = $("matrix");
    if (key !== matrixKey) {  // recompute only when the matrix changes, not when the focus moves
      const v = new Float64Array(qs.length * ks.length);
      qs.forEach((q, i) => { const r = shownRow(q); ks.forEach((k, j) => { v[i * ks.length + j] = r[k]; }); });
      matrixImage = paint(canvas, ks.length, qs.length, v).getImageData(0, 0, ks.length, qs.length);
      matrixKey = key;
      canvas.dataset.rows = qs.join(",");
    }
    const ctx = canvas.getContext("2d");
    ctx.putImageData(matrixImage, 0, 0);
    ctx.fillStyle = "rgba(255, 64, 64, 0.9)";
    const at = (f.side === "query" ? qs : ks).indexOf(f.index);
    if (f.side === "query") ctx.fillRect(0, at, Math.max(1, ks.length / 64), 1);
    else ctx.fillRect(at, 0, 1, Math.max(1, qs.length / 64));
  }

  function move(dx, dy) {
    const step = dx + dy, n = S.side === "query" ? QUERIES.length : KEYS.length;
    const ok = S.side === "query" ? queryVisible : keyVisible;
    let i = S.side === "query" ? S.query : S.key;
    for (let j = i + step; j >= 0 && j < n; j += step) if (ok(j)) { i = j; break; }
    set(S.side === "query" ? { query: i } : { key: i });
  }

  function rehide() {
    for (const li of qcol.children) li.classList.toggle("hidden", !queryVisible(+li.dataset.index));
    for (const li of kcol.children) li.classList.toggle("hidden", !keyVisible(+li.dataset.index));
    if (!queryVisible(S.query)) S.query = Math.max(0, QUERIES.findIndex((_, q) => queryVisible(q)));
    if (!keyVisible(S.key)) S.key = Math.max(0, KEYS.findIndex((_, k) => keyVisible(k)));
  }

  // Thumbnail of one head: its whole matrix pooled to at most 48 × 48 cells (mean of each block).
  function thumb(li, h) {
    const Q = QUERIES.length, K = KEYS.length, th = Math.min(Q, 48), tw = Math.min(K, 48);
    const v = new Float64Array(th * tw), n = new Float64Array(th * tw);
    for (let q = 0; q < Q; q++) {
      const r = matRow(ARR.attention, li, h, q), y = Math.floor(q * th / Q);
      for (let k = 0; k < K; k++) { const i = y * tw + Math.floor(k * tw / K); v[i] += r[k]; n[i] += 1; }
    }
    for (let i = 0; i < v.length; i++) v[i] /= n[i];
    return { w: tw, h: th, v };
  }

  Object.assign(VIEW, {
    build() {
      QUERIES.forEach((t, i) => qcol.append(token(t, i, QSPECIAL[i], "query", CROSS ? D.target_scores[i] : undefined)));
      KEYS.forEach((t, i) => kcol.append(token(t, i, KSPECIAL[i], "key")));
      const cols = el("div", { class: "columns" });
      cols.append(qcol, lines, kcol);
      $("stage").append(cols);
      $("matrix").addEventListener("click", (e) => {
        const r = e.target.getBoundingClientRect(), rows = e.target.dataset.rows.split(",").map(Number);
        set({ side: "query", query: rows[Math.min(rows.length - 1, Math.floor((e.clientY - r.top) / r.height * rows.length))] });
      });
    },
    draw, move, unpreview() { preview = null; }, rehide, thumb,
    home() { set({ side: "query", query: D.focus }); },
    thumbKey() { return "matrix"; },
  });
}
