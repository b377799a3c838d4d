// `attn stats -o page.html`: the per-head statistics as a sortable table; a click shows that head's map.
function STATS_VIEW() {
  const T = D.stats, cols = T.columns || Object.keys(T.heads[0] || {});
  let key = "layer", down = false;
  $("stats-box").hidden = false;
  document.querySelector("main").before($("stats-box"));  // the table above the map a click shows
  const notes = [T.title, ...(T.notes || [])].filter(Boolean);
  if (T.sinks && T.sinks.length) notes.push(`sink tokens: ${T.sinks.map((s) => `${s.token} (${s.index})`).join(", ")}`);
  $("stats-note").textContent = notes.join(" · ");
  const head = $("stats").tHead;
  head.replaceChildren(el("tr"));
  for (const c of cols) {
    const th = el("th", { "data-column": c, title: "sort by " + c }, c);
    th.addEventListener("click", () => { down = key === c ? !down : c !== "layer" && c !== "head" && c !== "role"; key = c; rows(); });
    head.rows[0].append(th);
  }
  function cell(v) { return v === null || v === undefined ? "—" : typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v); }
  function rows() {
    const list = [...T.heads].sort((a, b) => {
      const x = a[key], y = b[key];
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return (down ? -c : c) || a.layer - b.layer || a.head - b.head;
    });
    $("stats").tBodies[0].replaceChildren(...list.map((h) => {
      const tr = el("tr", { "data-layer": h.layer, "data-head": h.head });
      for (const c of cols) tr.append(el("td", {}, cell(h[c])));
      tr.addEventListener("click", () => {
        const li = ARR.attention.layers.indexOf(h.layer);
        if (li >= 0) set({ layer: li, head: h.head, method: "attention" });
      });
      return tr;
    }));
    mark();
  }
  function mark() {
    for (const tr of $("stats").tBodies[0].rows)
      tr.classList.toggle("current", S.method === "attention" && +tr.dataset.layer === layersOf()[S.layer] && +tr.dataset.head === S.head);
  }
  rows();
  const draw = VIEW.draw;
  VIEW.draw = () => { draw(); mark(); };
}
