// Images and captions: the picture as the model saw it, its patch grid, and one query's attention over it.
function IMAGE_VIEW() {
  const G = D.grid, SIDE = 448, QUERIES = () => queriesOf();
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
  function focus() { return preview !== null && patchQueries() ? preview : S.query; }

  function draw() {
    const q = focus(), r = shownRow(q), ctx = over.getContext("2d");
    ctx.clearRect(0, 0, W, H);
    const who = QUERIES()[q] + (patchQueries() && q >= PREFIX && !QUERIES()[q].startsWith("(") ? ` (${Math.floor((q - PREFIX) / G.cols)}, ${(q - PREFIX) % G.cols})` : "");
    if ($("prefixes")) $("prefixes").hidden = !patchQueries();
    if ($("words")) $("words").hidden = patchQueries();
    for (const b of document.querySelectorAll(patchQueries() ? "#prefixes button" : "#words .tok"))
      b.classList.toggle("selected", +b.dataset.index === q);
    if (!r) {  // flow is stored for the prefix rows only
      readout(`From ${who}`, [], ["#", "patch (row, col)", "weight", "bound", ""], 0, 0);
      $("note").textContent = `${S.method} was computed for the prefix tokens only: pick ${G.prefix_labels.join(" or ")} (key c)`;
      $("prefix-share").textContent = "";
      drawGrid(ctx, q);
      return;
    }
    const patches = Array.from({ length: G.rows * G.cols }, (_, p) => PREFIX + p);
    const [lo, hi] = range(patches.map((t) => r.v[t]));
    for (let row = 0; row < G.rows; row++) for (let col = 0; col < G.cols; col++) {
      const w = Math.min(1, Math.max(0, (r.v[tokenOf(row, col)] - lo) / (hi - lo)));  // dark where the query does not look
      ctx.fillStyle = `rgba(0, 0, 0, ${(0.8 * (1 - w)).toFixed(3)})`;
      ctx.fillRect(col * cw, row * ch, cw, ch);
    }
    drawGrid(ctx, q);
    colourBar($("stage-bar"), [lo, hi], `patch shading: dark at ${S.scale === "zero" ? "0" : S.scale === "minmax" ? "the row's smallest patch" : "its 1st percentile"}, ` +
      `clear at ${S.scale === "percentile" ? "its 99th percentile" : "the largest patch weight"} of this query`,
      "linear-gradient(to right, #333, #fff)");
    rowReadout(`From ${who}: top patches`, r, patches, (t) => { const p = t - PREFIX; return `(${Math.floor(p / G.cols)}, ${p % G.cols})`; },
      ["#", "patch (row, col)", "weight", "bound", ""]);
    for (const tr of $("readout").tBodies[0].rows) {
      const p = +tr.dataset.index - PREFIX;
      Object.assign(tr.dataset, { row: Math.floor(p / G.cols), col: p % G.cols });
    }
    let share = 0, err = 0;
    const parts = G.prefix_labels.map((label, i) => { share += r.v[i]; err += r.e[i]; return `${label} ${fmt(r.v[i], r.e[i])}`; });
    const ps = $("prefix-share");
    ps.textContent = `to prefix tokens: ${fmt(share, err)} ${fmtErr(err)} (${parts.join(", ")})` + (S.hide ? " — hidden" : "");
    ps.dataset.weight = String(share);
    $("note").textContent = preview !== null && patchQueries() ? "hovering: click to keep this patch" : "";
    const [sinks, where] = shownSinks();
    $("sink-note").textContent = sinks.length ? `Dashed orange: patch sinks of ${where} ` +
      `(patches that soak up ≥ 10× the uniform share of all queries' attention, heads averaged): ` +
      sinks.map((t) => `(${Math.floor((t - PREFIX) / G.cols)}, ${(t - PREFIX) % G.cols})`).join(", ") : "";
    $("sink-note").dataset.sinks = sinks.join(",");
  }

  // The sinks of the layers the map reads: its layer for attention; every layer up to it for rollout, flow and
  // grad-rollout, which combine them. Returns [tokens, words naming the layers].
  function shownSinks() {
    const L = layersOf()[S.layer], all = D.sinks || {};
    if (!METHOD[S.method] || METHOD[S.method].span === "layer") return [all[String(L)] || [], `layer ${L}`];
    const found = new Map();
    for (const [layer, tokens] of Object.entries(all)) {
      if (Number(layer) <= L) for (const t of tokens) if (!found.has(t)) found.set(t, layer);
    }
    const layers = [...new Set(found.values())].sort((a, b) => a - b);
    return [[...found.keys()], `layer${layers.length > 1 ? "s" : ""} ${layers.join(", ")} (combined into this map)`];
  }

  function drawGrid(ctx, q) {
    ctx.strokeStyle = "rgba(255, 255, 255, 0.25)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let c = 1; c < G.cols; c++) { ctx.moveTo(c * cw + 0.5, 0); ctx.lineTo(c * cw + 0.5, H); }
    for (let r = 1; r < G.rows; r++) { ctx.moveTo(0, r * ch + 0.5); ctx.lineTo(W, r * ch + 0.5); }
    ctx.stroke();
    const sinks = D.kind === "image" ? shownSinks()[0] : [];
    ctx.save();
    ctx.strokeStyle = "rgb(255, 160, 0)"; ctx.lineWidth = 2; ctx.setLineDash([4, 3]);
    for (const t of sinks) { const p = t - PREFIX; ctx.strokeRect((p % G.cols) * cw + 2, Math.floor(p / G.cols) * ch + 2, cw - 4, ch - 4); }
    ctx.restore();
    if (patchQueries() && q >= PREFIX) {
      const p = q - PREFIX;
      ctx.strokeStyle = "rgb(255, 64, 64)";
      ctx.lineWidth = 2;
      ctx.strokeRect((p % G.cols) * cw + 1, Math.floor(p / G.cols) * ch + 1, cw - 2, ch - 2);
    }
  }

  function move(dx, dy) {
    if (!patchQueries()) {
      let q = S.query;
      for (let j = q + (dx || dy); j >= 0 && j < QUERIES().length; j += dx || dy) if (queryVisible(j)) { q = j; break; }
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
    const r = matRow(thumbArray(), li, h, S.query);
    return { w: G.cols, h: G.rows, v: r ? r.v.slice(PREFIX) : new Float64Array(G.rows * G.cols) };
  }

  Object.assign(VIEW, {
    build() {
      const pic = el("div", { class: "picture" });
      img.style.width = W + "px";
      pic.append(img, over);
      $("stage").append(pic);
      over.addEventListener("mousemove", (e) => {
        const cell = cellAt(e);
        if (!cell) return;
        const t = tokenOf(...cell), r = shownRow(S.query);
        over.title = `patch (${cell[0]}, ${cell[1]})` + (r ? `: ${fmt(r.v[t], r.e[t])} from ${QUERIES()[S.query]}` : "");
        if (patchQueries() && preview !== t) { preview = t; draw(); }
      });
      over.addEventListener("mouseleave", () => { preview = null; draw(); });
      over.addEventListener("click", (e) => {
        const cell = cellAt(e);
        if (cell && patchQueries()) { preview = null; set({ query: tokenOf(...cell) }); }
      });
      const prefixes = el("div", { id: "prefixes" });  // an image page's, or a caption's encoder's, [CLS] and co.
      G.prefix_labels.forEach((label, i) => {
        const b = el("button", { "data-index": i, type: "button" }, label);
        b.addEventListener("click", () => set({ query: i }));
        prefixes.append(b);
      });
      $("stage").append(prefixes);
      const box = el("div", { id: "words" });
      if (D.kind === "image") {
        if (D.predictions.length) $("stage").append(el("p", {}, "Prediction: " +
          D.predictions.slice(0, 3).map((p) => `${p.label} ${(100 * p.score).toFixed(1)}%`).join(", ")));
      } else {
        QUERIES().forEach((t, i) => {
          const w = el("span", { class: "tok" + (qspecialOf()[i] ? " special" : ""), "data-index": i }, t);
          w.append(el("span", { class: "p", title: "model probability of this word" }, D.target_scores[i].toFixed(2)));
          w.addEventListener("mouseenter", () => set({ query: i }));
          w.addEventListener("click", () => set({ query: i }));
          box.append(w);
        });
      }
      if (D.kind !== "image") $("stage").append(box);
    },
    draw, move, unpreview() { preview = null; }, thumb,
    rehide() {
      for (const w of document.querySelectorAll("#words .tok")) w.classList.toggle("hidden", !queryVisible(+w.dataset.index));
      if (!queryVisible(S.query)) S.query = Math.max(0, QUERIES().findIndex((_, q) => queryVisible(q)));
    },
    home() { set({ query: patchQueries() ? 0 : D.focus }); },
    thumbKey() { return `${S.query}`; },
  });
}

// Captions: the picture for the cross-attention (words over patches) and the encoder's self-attention (patches
// over patches); the token view for the decoder's self-attention (words over words). Each keeps its own query.
function CAPTION_VIEW() {
  TEXT_VIEW();
  const text = Object.assign({}, VIEW);
  IMAGE_VIEW();
  const image = Object.assign({}, VIEW);
  let mode = null, space = null, pictureNodes = [];
  function enter() {  // show the stage the current method needs; a new query space starts at its first query
    const m = S.method === "decoder" ? "text" : "image", sp = S.method === "encoder" ? "patches" : "words";
    if (space !== null && sp !== space) Object.assign(S, { query: sp === "patches" ? 0 : D.focus, side: "query" });
    space = sp;
    if (m === mode) return mode === "image" ? image : text;
    mode = m;
    document.body.classList.toggle("kind-caption", m === "image");  // the matrix shows for the decoder's words
    if (m === "image") { $("stage").replaceChildren(...pictureNodes); $("heads-box").hidden = true; }
    else { $("stage").replaceChildren(); text.reset(); }
    return mode === "image" ? image : text;
  }
  Object.assign(VIEW, {
    build() {
      text.build();
      $("stage").replaceChildren();
      image.build();
      pictureNodes = [...$("stage").children];
      mode = "image"; space = S.method === "encoder" ? "patches" : "words";
      enter();
    },
    draw() { enter().draw(); }, move(dx, dy) { enter().move(dx, dy); }, rehide() { enter().rehide(); },
    unpreview() { image.unpreview(); text.unpreview(); }, thumb(li, h) { return enter().thumb(li, h); },
    home() { enter().home(); }, thumbKey() { return enter().thumbKey(); },
  });
}
