// Pictures and legends: the colour map, colour ranges under the page's scale, colour bars, the thumbnails.
// Viridis-like colours, 256 precomputed: index = round(255 t) for t in [0, 1].
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const LUT = new Uint8ClampedArray(256 * 4);
for (let i = 0; i < 256; i++) {
  const t = i / 255 * (STOPS.length - 1), j = Math.min(STOPS.length - 2, Math.floor(t)), f = t - j;
  for (let c = 0; c < 3; c++) LUT[i * 4 + c] = Math.round(STOPS[j][c] + f * (STOPS[j + 1][c] - STOPS[j][c]));
  LUT[i * 4 + 3] = 255;
}
function colour(t) { const i = 4 * Math.round(255 * Math.min(1, Math.max(0, t))); return [LUT[i], LUT[i + 1], LUT[i + 2]]; }

// The colour range of some values under the page's scale: zero (0..max), minmax, percentile (1st..99th).
function range(values, scale = S.scale) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (!isFinite(lo)) return [0, 1];
  if (scale === "zero") lo = Math.min(0, lo);
  else if (scale === "percentile") {
    const sorted = Float64Array.from(values).sort(), n = sorted.length - 1;
    lo = sorted[Math.round(0.01 * n)]; hi = sorted[Math.round(0.99 * n)];
  }
  if (hi <= lo) hi = lo + (Math.abs(lo) || 1);
  return [lo, hi];
}

function paint(canvas, w, h, values, lohi) {
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h), [lo, hi] = lohi || range(values, "zero");
  const k = 255 / (hi - lo), px = img.data;
  for (let i = 0; i < w * h; i++) {
    const c = 4 * Math.round(Math.min(255, Math.max(0, (values[i] - lo) * k)));
    px[4 * i] = LUT[c]; px[4 * i + 1] = LUT[c + 1]; px[4 * i + 2] = LUT[c + 2]; px[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return ctx;
}

function num(v) { return v === 0 ? "0" : Math.abs(v) < 1e-3 ? v.toExponential(1) : String(+v.toPrecision(3)); }

// A colour bar: the gradient and its two ends, with what they mean (a "data-lo"/"data-hi" for tests).
function colourBar(box, [lo, hi], words, gradient) {
  box.replaceChildren();
  const bar = el("span", { class: "bar" });
  bar.style.background = gradient || `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map((t) => `rgb(${colour(t)})`).join(", ")})`;
  box.append(el("span", { class: "lo" }, num(lo)), bar, el("span", { class: "hi" }, num(hi)),
             el("span", { class: "what" }, words));
  Object.assign(box.dataset, { lo, hi });
}

let thumbKey = null;
function drawThumbs() {
  const box = $("thumbs"), key = VIEW.thumbKey() + S.tiles + S.method;
  const arr = ARR.attention, H = arr.shape[1];
  if (key !== thumbKey) {
    thumbKey = key;
    box.replaceChildren();
    box.style.gridTemplateColumns = `auto repeat(${H}, auto)`;
    box.append(el("span"));
    for (let h = 0; h < H; h++) box.append(el("span", {}, `head ${h}`));
    const tiles = arr.layers.map((_, li) => Array.from({ length: H }, (_, h) => VIEW.thumb(li, h)));
    let top = 1e-12;
    for (const row of tiles) for (const t of row) top = maxOf(t.v, top);
    arr.layers.forEach((L, li) => {
      box.append(el("span", {}, `layer ${L}`));
      for (let h = 0; h < H; h++) {
        const t = tiles[li][h], c = el("canvas", { "data-layer": L, "data-head": h, title: `layer ${L}, head ${h}` });
        paint(c, t.w, t.h, t.v, [0, S.tiles ? maxOf(t.v) : top]);
        c.addEventListener("click", () => set({ layer: li, head: h, method: "attention" }));
        box.append(c);
      }
    });
    colourBar($("thumbs-bar"), [0, top], S.tiles ? "each tile on its own scale (0 to its own largest value)"
      : "one scale for every tile: 0 to the largest value of any tile");
    if (S.tiles) $("thumbs-bar").querySelector(".hi").textContent = "own max";
  }
  for (const c of box.querySelectorAll("canvas")) {
    const on = S.method === "attention" && +c.dataset.layer === layersOf()[S.layer] && +c.dataset.head === S.head;
    c.classList.toggle("current", on);
  }
}

