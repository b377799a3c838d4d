// Images and captions: the picture as the model saw it, its patch grid, and one query's attention over it.
function IMAGE_VIEW() {
  const G = D.grid, SIDE = 448;
  const zoom = SIDE / Math.max(G.image_width, G.image_height);
  const W = Math.round(G.image_width * zoom), H = Math.round(G.image_height * zoom);
  const cw = G.patch_width * zoom, ch = G.patch_height * zoom;
  const img = el("img", { id: "pic", src: D.image_uri || "", alt: "the image as the model saw it", width: W, height: H });
  const over = el("canvas", { id: "overlay", width: W, height: H });
  let preview = null;  // query (image) or patch cell (caption) under the mouse

  function cellAt(e) {
    const r = over.getBoundingClientRect();
    const col = Math.floor((e.clientX - r.left) / r.width * W / cw), row = Math.floor((e.clientY - r.top) / r.height * H / ch);
    return row >= 0 && row < G.rows && col >= 0 && col < G.cols ? [row, col] : null;
  }
  function tokenOf(row, col) { return PREFIX + row * G.cols + col; }
  function focus() { return preview !== null && D.kind === "image" ? preview : S.query; }

  function draw() {
    const q = focus(), r = shownRow(q), ctx = over.getContext("2d");
    ctx.clearRect(0, 0, W, H);
    const who = QUERIES[q] + (D.kind === "image" && q >= PREFIX ? ` (${Math.floor((q - PREFIX) / G.cols)}, ${(q - PREFIX) % G.cols})` : "");
    for (const b of document.querySelectorAll("#prefixes button, #words .tok"))
      b.classList.toggle("selected", +b.dataset.index === q);
    if (!r) {  // flow is stored for the prefix rows only
      readout(`From ${who}`, [], ["patch (row, col)", "weight", ""]);
      $("note").textContent = `${S.method} was computed for the prefix tokens only: pick ${G.prefix_labels.join(" or ")} (key c)`;
      $("prefix-share").textContent = "";
      drawGrid(ctx, q);
      return;
    }
    let top = 1e-12;
    for (let p = 0; p < G.rows * G.cols; p++) top = Math.max(top, r[PREFIX + p]);
    for (let row = 0; row < G.rows; row++) for (let col = 0; col < G.cols; col++) {
      const w = r[tokenOf(row, col)] / top;  // dark where the query does not look, clear where it does
      ctx.fillStyle = `rgba(0, 0, 0, ${(0.8 * (1 - w)).toFixed(3)})`;
      ctx.fillRect(col * cw, row * ch, cw, ch);
    }
    drawGrid(ctx, q);
    const patches = Array.from({ length: G.rows * G.cols }, (_, p) => p)
      .sort((a, b) => r[PREFIX + b] - r[PREFIX + a] || a - b).slice(0, 10);
    readout(`From ${who}: top patches`, patches.map((p) => {
      const row = Math.floor(p / G.cols), col = p % G.cols;
      return { index: PREFIX + p, label: `(${row}, ${col})`, weight: r[PREFIX + p], data: { "data-row": row, "data-col": col } };
    }), ["patch (row, col)", "weight", ""]);
    let share = 0;
    const parts = G.prefix_labels.map((label, i) => { share += r[i]; return `${label} ${fmt(r[i])}`; });
    const ps = $("prefix-share");
    ps.textContent = `to prefix tokens: ${fmt(share)} (${parts.join(", ")})` + (S.hide ? " — hidden" : "");
    ps.dataset.weight = String(share);
    $("note").textContent = preview !== null && D.kind === "image" ? "hovering: click to keep this patch" : "";
  }

  function drawGrid(ctx, q) {
    ctx.strokeStyle = "rgba(255, 255, 255, 0.25)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let c = 1; c < G.cols; c++) { ctx.moveTo(c * cw + 0.5, 0); ctx.lineTo(c * cw + 0.5, H); }
    for (let r = 1; r < G.rows; r++) { ctx.moveTo(0, r * ch + 0.5); ctx.lineTo(W, r * ch + 0.5); }
    ctx.stroke();
    if (D.kind === "image" && q >= PREFIX) {
      const p = q - PREFIX;
      ctx.strokeStyle = "rgb(255, 64, 64)";
      ctx.lineWidth = 2;
      ctx.strokeRect((p % G.cols) * cw + 1, Math.floor(p / G.cols) * ch + 1, cw - 2, ch - 2);
    }
  }

  function move(dx, dy) {
    if (D.kind === "caption") {
      let q = S.query;
      for (let j = q + (dx || dy); j >= 0 && j < QUERIES.length; j += dx || dy) if (queryVisible(j)) { q = j; break; }
      return set({ query: q });
    }
    if (S.query < PREFIX) return set({ query: tokenOf(0, 0) });
    const p = S.query - PREFIX;
    const row = Math.min(G.rows - 1, Math.max(0, Math.floor(p / G.cols) + dy));
    const col = Math.min(G.cols - 1, Math.max(0, (p % G.cols) + dx));
    set({ query: tokenOf(row, col) });
  }

  // Thumbnail of one head: the selected query's weights over the patch grid.
  function thumb(li, h) {
    const r = matRow(ARR.attention, li, h, S.query) || new Float64Array(KEYS.length);
    return { w: G.cols, h: G.rows, v: r.slice(PREFIX) };
  }

  Object.assign(VIEW, {
    build() {
      const pic = el("div", { class: "picture" });
      img.style.width = W + "px"; img.style.height = H + "px";
      over.style.width = W + "px"; over.style.height = H + "px";
      pic.append(img, over);
      $("stage").append(pic);
      over.addEventListener("mousemove", (e) => {
        const cell = cellAt(e);
        if (!cell) return;
        const t = tokenOf(...cell), r = shownRow(S.query);
        over.title = `patch (${cell[0]}, ${cell[1]})` + (r ? `: ${fmt(r[t])} from ${QUERIES[S.query]}` : "");
        if (D.kind === "image" && preview !== t) { preview = t; draw(); }
      });
      over.addEventListener("mouseleave", () => { preview = null; draw(); });
      over.addEventListener("click", (e) => {
        const cell = cellAt(e);
        if (cell && D.kind === "image") { preview = null; set({ query: tokenOf(...cell) }); }
      });
      const box = el("div", { id: D.kind === "image" ? "prefixes" : "words" });
      if (D.kind === "image") {
        G.prefix_labels.forEach((label, i) => {
          const b = el("button", { "data-index": i, type: "button" }, label);
          b.addEventListener("click", () => set({ query: i }));
          box.append(b);
        });
        if (D.predictions.length) $("stage").append(el("p", {}, "Prediction: " +
          D.predictions.slice(0, 3).map((p) => `${p.label} ${(100 * p.score).toFixed(1)}%`).join(", ")));
      } else {
        QUERIES.forEach((t, i) => {
          const w = el("span", { class: "tok" + (QSPECIAL[i] ? " special" : ""), "data-index": i }, t);
          w.append(el("span", { class: "p", title: "model probability of this word" }, D.target_scores[i].toFixed(2)));
          w.addEventListener("mouseenter", () => set({ query: i }));
          w.addEventListener("click", () => set({ query: i }));
          box.append(w);
        });
      }
      $("stage").append(box);
    },
    draw, move, unpreview() { preview = null; }, thumb,
    rehide() {
      for (const w of document.querySelectorAll("#words .tok")) w.classList.toggle("hidden", !queryVisible(+w.dataset.index));
      if (!queryVisible(S.query)) S.query = Math.max(0, QUERIES.findIndex((_, q) => queryVisible(q)));
    },
    home() { set({ query: D.kind === "image" ? 0 : D.focus }); },
    thumbKey() { return `${S.query}`; },
  });
}
