"""The interactive HTML page in a real headless Chromium (Debian's `chromium`, driven by Playwright), offline.

Each test opens a page written from a tiny real model's capture, selects tokens and patches with the mouse
and the keyboard, and checks the weights the page shows against the capture, within the stored precision.
Skipped only when no Chromium executable is found (`.ci/run` installs Debian's `chromium` when missing).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_seq2seq import make_blip, make_marian
from tiny_vision import make_vit, photo

from attncli.views.interactive import interactive_view
from attncli.render.html import write_html

CAT = "The cat sat on the mat because it was tired."
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]


def chromium_path() -> str | None:
    """$ATTN_CHROMIUM, else Debian's /usr/bin/chromium, else a chromium or chrome on PATH."""
    for candidate in (os.environ.get("ATTN_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium executable found (install Debian's chromium: apt-get install -y chromium, "
                    "or set ATTN_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


class Page:
    """A page opened offline, with every request and page error recorded."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready='1']", timeout=10_000)

    def _route(self, route):
        url = route.request.url
        self.requests.append(url)
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            route.abort()

    def status(self) -> dict:
        return self.page.eval_on_selector("#status", "e => Object.assign({text: e.textContent}, e.dataset)")

    def readout(self) -> list[tuple[int, float, dict]]:
        """(index, weight, other data incl. its bound "err") of each row the page's #readout shows."""
        rows = self.page.eval_on_selector_all(
            "#readout tbody tr", "rs => rs.map(r => Object.assign({}, r.dataset))")
        return [(int(r.pop("index")), float(r.pop("weight")), r) for r in rows]

    def screenshot_variance(self) -> float:
        from PIL import Image

        shot = Image.open(io.BytesIO(self.page.screenshot(full_page=True))).convert("L")
        return float(np.asarray(shot, dtype=np.float64).std())

    def close(self) -> None:
        assert self.errors == []
        assert all(u.startswith("file:") for u in self.requests), self.requests  # nothing left the machine
        self.context.close()


def check_row(page: Page, want: np.ndarray, keys: list[int] | None = None, row: bool = True) -> None:
    """The readout lists the largest weights first, each equal to the capture's within the bound it states."""
    rows = page.readout()
    assert rows
    keys = list(range(len(want))) if keys is None else keys
    assert len(rows) == min(12, len(keys))
    for index, weight, data in rows:
        assert abs(weight - want[index]) <= float(data["err"]) + 1e-6, (index, weight, want[index], data)
    listed = [i for i, _, _ in rows]
    order = sorted(keys, key=lambda k: (-want[k], k))
    errs = [float(d["err"]) for _, _, d in rows]
    # nothing left out is larger than the last one listed (up to the bounds stated)
    assert max((want[k] for k in keys if k not in listed), default=-1) <= want[listed[-1]] + 2 * max(errs) + 1e-6
    exact = [i for i, _, d in rows if float(d["err"]) == 0]
    assert not row or exact == order[:len(exact)]  # the exact entries are the capture's top ones, in its order


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("html-models")
    return {"vit": make_vit(root / "vit"), "blip": make_blip(root / "blip"), "marian": make_marian(root / "marian"),
            "photo": photo(root / "photo.png")}


# --- text ------------------------------------------------------------------------------------------------------

def test_text_page_tokens_layers_heads_fusion_rollout_and_hiding(browser, tiny_bert, tmp_path):
    from attncli.sources import capture_text
    from attncli.methods.rollout import rollout_layers

    cap = capture_text(CAT, str(tiny_bert))
    att = cap.attentions.astype(np.float64)  # (L, H, Q, K)
    view = interactive_view(cap, methods=("attention", "rollout"))
    page = Page(browser, write_html(view, tmp_path / "text.html"))
    p = page.page
    st = page.status()
    assert st["layer"] == "1" and st["head"] == "fused" and st["method"] == "attention"
    assert str(tiny_bert) in st["text"] and CAT in st["text"] and "mean of 2 heads" in st["text"]
    assert "8-bit codes with one scale per row" in p.inner_text("#precision")

    cat = cap.tokens.index("cat")
    p.click(f"#qcol li[data-index='{cat}']")
    assert page.status()["query"] == str(cat)
    check_row(page, att[1].mean(0)[cat])

    p.keyboard.press("[")  # layer 0
    p.keyboard.press(".")  # head 0
    st = page.status()
    assert st["layer"] == "0" and st["head"] == "0" and "head 0" in st["text"]
    check_row(page, att[0, 0, cat])
    p.select_option("#head", "1")
    p.keyboard.press("ArrowDown")  # the next token
    check_row(page, att[0, 1, cat + 1])

    p.select_option("#head", "-1")
    p.select_option("#fuse", "max")
    assert "max of 2 heads" in page.status()["text"]
    check_row(page, att[0].max(0)[cat + 1], row=False)  # max of heads: values exact where both are, no stored rank

    p.select_option("#method", "rollout")
    p.select_option("#layer", "1")
    assert "rollout of layers 0–1 (max)" in page.status()["text"]
    check_row(page, rollout_layers(cap.attentions, "max")[1, cat + 1].astype(np.float64))

    # Special tokens hidden: their columns go and each row is renormalised from the stored values, each number
    # within the bound the page states for it (the error of the sum included).
    p.select_option("#method", "attention")
    p.select_option("#fuse", "mean")
    p.keyboard.press("s")
    keep = [i for i, s in enumerate(cap.special) if not s]
    row = att[1].mean(0)[cat + 1]
    want = np.zeros_like(row)
    want[keep] = row[keep] / row[keep].sum()
    check_row(page, want, keep)
    assert p.is_hidden("#qcol li[data-index='0']")
    assert "renormalised from the stored values" in p.inner_text("#precision")

    # Key side: clicking a key token shows the column (each query's weight to it).
    p.keyboard.press("s")
    p.click(f"#kcol li[data-index='{cat}']")
    check_row(page, att[1].mean(0)[:, cat], row=False)  # a column: its exact entries are each row's own top

    # Thumbnails: layers × heads tiles on one scale (its bar says so); a click selects that head.
    assert p.locator("#thumbs canvas").count() == 4
    assert "one scale for every tile" in p.inner_text("#thumbs-bar")
    p.click("#thumbs canvas[data-layer='0'][data-head='1']")
    st = page.status()
    assert st["layer"] == "0" and st["head"] == "1"
    assert p.locator("#thumbs canvas.current").count() == 1
    p.check("#tiles")
    assert "own scale" in p.inner_text("#thumbs-bar")
    # Legends: the matrix has axis labels and a colour bar with its range; the selection sits beside it.
    assert "keys →" in p.inner_text("#matrix-keys") and "queries ↓" in p.inner_text("#matrix-queries")
    lo, hi = (float(p.eval_on_selector("#matrix-bar", f"e => e.dataset.{k}")) for k in ("lo", "hi"))
    assert lo == 0 and abs(hi - att[0, 1].max()) <= att[0, 1].max() / 510 + 1e-6
    mark, matrix = p.locator("#matrix-mark").bounding_box(), p.locator("#matrix").bounding_box()
    assert mark["y"] + mark["height"] <= matrix["y"] + 1 or mark["x"] + mark["width"] <= matrix["x"] + 1
    assert page.screenshot_variance() > 5
    page.close()


def test_several_heads_draw_lines_in_their_own_colours(browser, tiny_bert, tmp_path):
    from attncli.sources import capture_text

    cap = capture_text(CAT, str(tiny_bert))
    page = Page(browser, write_html(interactive_view(cap), tmp_path / "heads.html"))
    p = page.page
    p.click("#qcol li[data-index='2']")
    before = p.eval_on_selector("#lines", "c => c.toDataURL()")
    p.check("#heads-pick input[data-head='0']")
    p.check("#heads-pick input[data-head='1']")
    assert wait_url(p, ("heads=0%2C1", "heads=0,1"))
    assert p.eval_on_selector("#lines", "c => c.toDataURL()") != before
    colours = p.eval_on_selector_all("#heads-pick label", "ls => ls.map(l => getComputedStyle(l).color)")
    assert len(set(colours)) == 2
    page.close()


def wait_url(p, parts: tuple[str, ...], seconds: float = 3.0) -> bool:
    """Wait until the page's URL holds one of parts (the page writes its fragment just after drawing)."""
    for _ in range(int(seconds / 0.05)):
        if any(part in p.url for part in parts):
            return True
        p.wait_for_timeout(50)
    return False


# --- the command's view, and the URL fragment ----------------------------------------------------------------

def page_data(path: Path) -> dict:
    import json

    text = path.read_text()
    return json.loads(text.split('<script id="attn-data" type="application/json">', 1)[1].split("</script>", 1)[0])


def test_page_opens_on_what_the_command_asked_for(browser, cli, tiny_bert, models, tmp_path):
    pages = {
        "image": ("heatmap", str(models["photo"]), "--model", str(models["vit"]), "--query", "1,2", "--layer", "0",
                  "--head", "1"),
        "plain": ("explain", CAT, "--model", str(tiny_bert)),
        "token": ("explain", CAT, "--model", str(tiny_bert), "--token", "it", "--layer", "0", "--head", "1"),
        "rollout": ("explain", CAT, "--model", str(tiny_bert), "--token", "cat", "--method", "rollout",
                    "--fuse", "max", "--skip-special", "--scale", "percentile"),
        "heatmap": ("heatmap", "--text", CAT, "--model", str(tiny_bert), "--query", "sat", "--layer", "0"),
    }
    seen = {}
    for name, args in pages.items():
        out = tmp_path / f"{name}.html"
        code, _, err = cli(*args, "-o", str(out))
        assert code == 0, err
        seen[name] = out.read_bytes()
        page = Page(browser, out)
        seen[name + "-status"] = page.status()
        page.close()
    assert len({seen[n] for n in pages}) == len(pages)  # five commands, five different pages
    st = seen["image-status"]
    grid = page_data(tmp_path / "image.html")["grid"]
    assert (st["layer"], st["head"], st["query"]) == ("0", "1", str(grid["prefix"] + 1 * grid["cols"] + 2))
    tokens = page_data(tmp_path / "plain.html")["tokens"]
    st = seen["token-status"]
    assert (st["layer"], st["head"], st["method"], st["query"]) == ("0", "1", "attention", str(tokens.index("it")))
    st = seen["rollout-status"]
    assert (st["layer"], st["method"], st["fuse"], st["query"], st["hide"], st["scale"]) == \
        ("1", "rollout", "max", str(tokens.index("cat")), "1", "percentile")
    st = seen["heatmap-status"]
    assert (st["layer"], st["query"]) == ("0", str(tokens.index("sat")))
    st = seen["plain-status"]
    assert (st["layer"], st["head"], st["method"], st["hide"]) == ("1", "fused", "attention", "0")


def test_the_url_fragment_keeps_the_view(browser, tiny_bert, tmp_path):
    from attncli.sources import capture_text

    path = write_html(interactive_view(capture_text(CAT, str(tiny_bert)), methods=("attention", "rollout")),
                      tmp_path / "link.html")
    page = Page(browser, path)
    p = page.page
    p.click("#qcol li[data-index='4']")
    p.select_option("#layer", "0")
    p.select_option("#head", "1")
    p.select_option("#scale", "minmax")
    p.keyboard.press("s")
    assert wait_url(p, ("hide=1",))  # the fragment follows the view (just after drawing)
    link, want = p.url, page.status()
    assert "#" in link and "query=4" in link
    page.close()
    again = Page(browser, Path(path))  # a fresh tab on the link reopens the same view
    # the fresh tab writes its own (default) fragment 100 ms after drawing: let that happen before following the
    # link, or it lands after the goto and the reload reads the default view (seen under load)
    assert wait_url(again.page, ("layer=",))
    again.page.goto(link)
    again.page.reload()
    again.page.wait_for_selector("body[data-ready='1']")
    got = again.status()
    for k in ("layer", "head", "method", "query", "hide", "scale", "text"):
        assert got[k] == want[k], k
    again.close()


# --- top-1 and top-5 of every row, as the page ranks them ------------------------------------------------------

TOPS_JS = """(fused) => {
  const out = {}, arr = ARR.attention, [L, H, Q, K] = arr.shape, keys = [...Array(K).keys()];
  for (let li = 0; li < L; li++) for (let h = fused ? -1 : 0; h < H; h++) {
    const rows = [];
    for (let q = 0; q < Q; q++) rows.push(ranked(rawRow(q, li, h, "attention", "mean"), keys).slice(0, 5));
    out[`${li},${h}`] = rows;
  }
  return out;
}"""


def check_every_row(page: Page, weights: np.ndarray) -> int:
    """Every row of every layer and head (and the heads' mean): the page's top 5 are the capture's. Rows checked."""
    tops = page.page.evaluate(TOPS_JS, True)
    n = 0
    w = weights.astype(np.float64)
    for li in range(w.shape[0]):
        for h in range(-1, w.shape[1]):
            m = w[li].mean(0) if h < 0 else w[li, h]
            want = np.argsort(-m, axis=-1, kind="stable")[:, :5]
            got = np.array(tops[f"{li},{h}"])
            assert np.array_equal(got[:, 0], want[:, 0]), (li, h)  # top-1
            assert np.array_equal(got, want), (li, h)  # top-5, in order
            n += len(got)
    return n


def test_top5_of_every_row_is_the_captures_text_dinov2_and_align(browser, real_dinov2, tiny_bert, models, tmp_path,
                                                                  capsys):
    from attncli.sources import capture_align, capture_image, capture_text

    root = Path(__file__).resolve().parents[1]
    text = capture_text(CAT, "minilm")
    image = capture_image(root / "samples" / "chelsea.png", "dinov2-small")
    align = capture_align("the cat sat on the mat", str(models["marian"]), max_new_tokens=4)
    counts = {}
    for name, cap, weights in (("text", text, text.attentions), ("dinov2", image, image.attentions),
                               ("align", align, align.cross_attentions)):
        page = Page(browser, write_html(interactive_view(cap), tmp_path / f"{name}.html"))
        counts[name] = check_every_row(page, weights)
        if name == "text":  # and the readout, as the user reads it, for some rows
            for q in (1, 5, 8):
                page.page.click(f"#qcol li[data-index='{q}']")
                listed = [i for i, _, _ in page.readout()][:5]
                want = np.argsort(-weights[-1].astype(np.float64).mean(0)[q], kind="stable")[:5]
                assert listed == list(want)
        page.close()
    with capsys.disabled():
        print(f"\ntop-1/top-5 equal on every row (heads and their mean): {counts}")
    assert counts["dinov2"] == 12 * 7 * 257


# --- image -----------------------------------------------------------------------------------------------------

def click_patch(page: Page, row: int, col: int, grid) -> None:
    box = page.page.locator("#overlay").bounding_box()
    page.page.mouse.click(box["x"] + (col + 0.5) * box["width"] / grid.cols,
                          box["y"] + (row + 0.5) * box["height"] / grid.rows)


def check_top_patches(page: Page, row_weights: np.ndarray, grid) -> None:
    check_row(page, row_weights, list(range(grid.prefix, grid.n_tokens)))
    for index, _, data in page.readout():
        assert index == grid.token_of(int(data["row"]), int(data["col"]))


def test_image_page_cls_patches_keyboard_layers_and_heads(browser, models, tmp_path):
    from attncli.sources import capture_image

    cap = capture_image(models["photo"], str(models["vit"]))
    att, grid = cap.attentions.astype(np.float64), cap.grid
    view = interactive_view(cap)
    page = Page(browser, write_html(view, tmp_path / "image.html"))
    p = page.page
    assert page.status()["query"] == "0"  # [CLS] first
    check_top_patches(page, att[1].mean(0)[0], grid)
    share = float(p.eval_on_selector("#prefix-share", "e => e.dataset.weight"))
    assert abs(share - att[1].mean(0)[0, 0]) <= att[1, :, 0].max() / 510 + 1e-6

    click_patch(page, 2, 1, grid)
    assert page.status()["query"] == str(grid.token_of(2, 1))
    check_top_patches(page, att[1].mean(0)[grid.token_of(2, 1)], grid)
    p.keyboard.press("ArrowRight")
    p.keyboard.press("ArrowUp")
    assert page.status()["query"] == str(grid.token_of(1, 2))
    p.keyboard.press("[")
    p.keyboard.press(".")
    p.keyboard.press(".")  # head 1
    st = page.status()
    assert st["layer"] == "0" and st["head"] == "1"
    check_top_patches(page, att[0, 1, grid.token_of(1, 2)], grid)
    p.keyboard.press("c")  # back to [CLS]
    check_top_patches(page, att[0, 1, 0], grid)
    assert p.locator("#thumbs canvas").count() == 4
    assert "one scale for every tile" in p.inner_text("#thumbs-bar")
    assert float(p.eval_on_selector("#stage-bar", "e => e.dataset.hi")) > 0
    assert page.screenshot_variance() > 5
    page.close()


def test_image_page_flow_is_offered_for_the_prefix_row_only(browser, models, tmp_path):
    from attncli.methods.flow import attention_flow
    from attncli.sources import capture_image

    cap = capture_image(models["photo"], str(models["vit"]))
    view = interactive_view(cap, methods=("flow",))
    page = Page(browser, write_html(view, tmp_path / "flow.html"))
    assert page.status()["method"] == "flow"
    check_top_patches(page, attention_flow(cap.attentions, 1, queries=[0])[0].astype(np.float64), cap.grid)
    click_patch(page, 0, 0, cap.grid)
    assert page.readout() == [] and "prefix tokens only" in page.page.inner_text("#note")
    page.close()


def test_dinov2_page_marks_sinks_and_answers_clicks_fast(browser, real_dinov2, tmp_path, capsys):
    from attncli.sources import capture_image
    from attncli.views.sinks import capture_sinks

    root = Path(__file__).resolve().parents[1]
    from attncli.methods.registry import Method

    cap = capture_image(root / "samples" / "chelsea.png", "dinov2-small")
    view = interactive_view(cap, methods=[Method.attention, Method.rollout])
    page = Page(browser, write_html(view, tmp_path / "dino.html"))
    p = page.page
    want = {str(s.layer): [] for s in capture_sinks(cap)}
    for s in capture_sinks(cap):
        want[str(s.layer)].append(s.token)
    assert view.sinks == want
    layer = max(want, key=lambda k: len(want[k]), default=None)
    if layer is not None:
        p.select_option("#layer", layer)
        assert p.eval_on_selector("#sink-note", "e => e.dataset.sinks") == ",".join(map(str, want[layer]))
        p.select_option("#method", "rollout")  # rollout combines every layer up to the last: all their sinks
        p.select_option("#layer", str(cap.n_layers - 1))
        marked = p.eval_on_selector("#sink-note", "e => e.dataset.sinks").split(",")
        assert sorted(map(int, marked)) == sorted({t for tokens in want.values() for t in tokens})
        assert "combined into this map" in p.inner_text("#sink-note")
    times = []
    for row, col in ((3, 4), (8, 8), (12, 2), (5, 14), (1, 1)):
        box = p.locator("#overlay").bounding_box()
        x, y = box["x"] + (col + 0.5) * box["width"] / 16, box["y"] + (row + 0.5) * box["height"] / 16
        times.append(p.evaluate("""([x, y]) => { const t = performance.now();
          document.getElementById("overlay").dispatchEvent(new MouseEvent("click", {clientX: x, clientY: y, bubbles: true}));
          document.body.offsetHeight; return performance.now() - t; }""", [x, y]))
    with capsys.disabled():
        print(f"\nDINOv2-S page: patch click {sorted(times)[2]:.1f} ms median of {len(times)} ({view.nbytes / 1e6:.2f} MB)")
    assert sorted(times)[2] <= 50
    page.close()


# --- cross-attention -------------------------------------------------------------------------------------------

def test_caption_page_words_overlay_their_patches(browser, models, tmp_path):
    from attncli.sources import capture_caption

    cap = capture_caption(models["photo"], str(models["blip"]), max_new_tokens=5)
    cross, grid = cap.cross_attentions.astype(np.float64), cap.grid
    view = interactive_view(cap)
    page = Page(browser, write_html(view, tmp_path / "caption.html"))
    p = page.page
    assert "cross-attention" in page.status()["text"]
    assert [w for w in p.eval_on_selector_all("#warnings li", "ls => ls.map(l => l.textContent)") if "rollout" in w] == []
    last = len(cap.target_tokens) - 1
    p.hover(f"#words .tok[data-index='{last}']")
    assert page.status()["query"] == str(last)
    check_top_patches(page, cross[-1].mean(0)[last], grid)
    p.keyboard.press("ArrowLeft")
    p.keyboard.press(",")  # the last head
    check_top_patches(page, cross[-1, -1, last - 1], grid)
    # the image encoder's self-attention: patch maps, as the image page draws them
    assert view.methods == ["attention", "encoder", "decoder"]
    p.select_option("#method", "encoder")
    st = page.status()
    assert "encoder self-attention" in st["text"] and st["query"] == "0"  # its own queries: the image's, [CLS] first
    enc, dec = cap.attentions.astype(np.float64), cap.decoder_attentions.astype(np.float64)
    head = int(st["head"]) if st["head"] != "fused" else None
    check_top_patches(page, enc[-1].mean(0)[0] if head is None else enc[-1, head, 0], grid)
    p.select_option("#head", "0")
    click_patch(page, 1, 2, grid)
    assert page.status()["query"] == str(grid.token_of(1, 2))
    check_top_patches(page, enc[-1, 0, grid.token_of(1, 2)], grid)
    p.select_option("#layer", "0")
    check_top_patches(page, enc[0, 0, grid.token_of(1, 2)], grid)
    assert p.locator("#thumbs canvas").count() == enc.shape[0] * enc.shape[1]
    # the text decoder's self-attention: the token view, words over words, with its matrix
    p.select_option("#method", "decoder")
    assert "decoder self-attention" in page.status()["text"]
    assert p.locator("#qcol li").count() == len(cap.target_tokens) == p.locator("#kcol li").count()
    assert p.locator("#matrix-box").is_visible() and not p.locator("#overlay").is_visible()
    p.click(f"#qcol li[data-index='{last}']")
    check_row(page, dec[0, 0, last])
    # and back to the picture: the words' cross-attention again
    p.select_option("#method", "attention")
    assert p.locator("#overlay").is_visible() and not p.locator("#matrix-box").is_visible()
    p.hover(f"#words .tok[data-index='{last}']")
    check_top_patches(page, cross[0, 0, last], grid)
    assert page.errors == []
    page.close()


def test_align_page_target_rows_source_columns_and_self_attention(browser, models, tmp_path):
    from attncli.sources import capture_align

    cap = capture_align("the cat sat on the mat", str(models["marian"]), max_new_tokens=4)
    cross = cap.cross_attentions.astype(np.float64)  # (L, H, T, S)
    view = interactive_view(cap)
    page = Page(browser, write_html(view, tmp_path / "align.html"))
    p = page.page
    assert p.locator("#warnings li").count() == 0
    assert p.locator("#qcol li").count() == len(cap.target_tokens) and p.locator("#kcol li").count() == len(cap.tokens)
    p.click("#qcol li[data-index='1']")
    check_row(page, cross[1].mean(0)[1])
    p.hover("#kcol li[data-index='2']")
    check_row(page, cross[1].mean(0)[:, 2], row=False)
    p.click("#kcol li[data-index='2']")  # keep that source token, then move away (hover follows the pointer)
    p.mouse.move(0, 0)
    assert page.status()["side"] == "key" and page.status()["key"] == "2"
    p.select_option("#layer", "0")
    p.select_option("#head", "0")
    check_row(page, cross[0, 0, :, 2], row=False)
    # the encoder's and the decoder's own self-attention
    p.select_option("#method", "encoder")
    assert "encoder self-attention" in page.status()["text"]
    assert p.locator("#qcol li").count() == len(cap.tokens) == p.locator("#kcol li").count()
    p.click("#qcol li[data-index='1']")
    check_row(page, cap.attentions[0, 0, 1].astype(np.float64))
    if cap.decoder_attentions is not None:
        p.select_option("#method", "decoder")
        assert p.locator("#qcol li").count() == len(cap.target_tokens)
        p.click("#qcol li[data-index='1']")
        check_row(page, cap.decoder_attentions[0, 0, 1].astype(np.float64))
    assert page.screenshot_variance() > 5
    page.close()


# --- long inputs and narrow screens ----------------------------------------------------------------------------

def long_capture(n: int, layers: int = 1, heads: int = 2):
    from attncli.capture import Capture

    x = np.random.default_rng(0).standard_normal((layers, heads, n, n)).astype(np.float32) * 2
    att = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    words = ["[CLS]"] + [f"w{i}" for i in range(n - 2)] + ["[SEP]"]
    return Capture(att, words, [True] + [False] * (n - 2) + [True], "long", text=" ".join(words[1:-1])), att


CLICKS = (7, 300, 1000, 1500, 2000, 42, 999, 1200, 64, 1800, 500, 1700, 3, 1100, 77)


def open_and_click(browser, path: Path) -> tuple[Page, float, float, float, list[float]]:
    """Open the page and click 15 tokens: (page, seconds from navigation to ready, seconds with Playwright's own
    work, median click ms, click times)."""
    import json
    import time

    start = time.perf_counter()
    page = Page(browser, path)  # waits for body[data-ready]
    wall = time.perf_counter() - start  # with Playwright's own work (a new context, the goto round trips)
    p = page.page
    opened = json.loads(p.eval_on_selector("body", "b => b.dataset.timing"))["since_navigation"] / 1000
    times = [p.evaluate("""(q) => { const t = performance.now();
          document.querySelector(`#qcol li[data-index='${q}']`).click();
          document.body.offsetHeight; return performance.now() - t; }""", q) for q in CLICKS]
    return page, opened, wall, sorted(times)[len(times) // 2], times


@pytest.mark.slow  # a timing measurement: pytest -m slow
def test_2048_tokens_open_in_2_s_and_answer_a_click_in_50_ms(browser, tmp_path, capsys):
    """Timed on a machine shared with other work: the best of three openings (the least disturbed) is checked."""
    cap, att = long_capture(2048)
    path = write_html(interactive_view(cap), tmp_path / "long.html")
    runs = []
    for attempt in range(3):
        page, opened, wall, click, times = open_and_click(browser, path)
        runs.append((opened, click))
        with capsys.disabled():
            print(f"\n2048 tokens ({path.stat().st_size / 1e6:.1f} MB), run {attempt + 1}: open {opened:.2f} s from "
                  f"navigation to ready ({wall:.2f} s with Playwright's context and goto), click median "
                  f"{click:.1f} ms (max {max(times):.1f})")
        if opened <= 2.0 and click <= 50:
            break
        page.close()
    assert min(o for o, _ in runs) <= 2.0 and min(c for _, c in runs) <= 50, runs
    p = page.page
    check_row(page, att[0].mean(0)[CLICKS[-1]].astype(np.float64))  # the last token clicked
    assert len(p.eval_on_selector_all("#readout td.i", "ts => ts.map(t => t.textContent)")) == 12
    assert p.eval_on_selector("#matrix", "c => c.dataset.pooled") == "512x512"
    # the keyboard moves the selection and keeps it on screen
    p.focus("#stage")
    for _ in range(40):
        p.keyboard.press("ArrowRight")
    assert page.status()["query"] == "117"  # 77 + 40
    sel = p.locator("#qcol li.selected").bounding_box()
    stage = p.locator("#stage").bounding_box()
    assert stage["y"] <= sel["y"] and sel["y"] + sel["height"] <= stage["y"] + stage["height"] + 1
    page.close()


def test_nothing_is_cut_off_at_390_px(browser, models, tiny_bert, tmp_path):
    from attncli.sources import capture_image, capture_text

    for name, cap in (("image", capture_image(models["photo"], str(models["vit"]))),
                      ("text", capture_text(CAT, str(tiny_bert)))):
        path = write_html(interactive_view(cap), tmp_path / f"{name}.html")
        page = Page(browser, path)
        page.context.close()
        context = browser.new_context(viewport={"width": 390, "height": 844}, offline=True)
        p = context.new_page()
        p.goto(path.as_uri())
        p.wait_for_selector("body[data-ready='1']")
        assert p.evaluate("document.documentElement.scrollWidth") <= 390, name
        for sel in ("#stage", "#readout", "#matrix", "#controls"):
            box = p.locator(sel).bounding_box()
            if box:
                assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 0.5, (name, sel, box)
        context.close()


# --- attn stats -o ---------------------------------------------------------------------------------------------

def test_stats_page_shows_the_table_and_a_click_shows_the_head(browser, cli, tiny_bert, tmp_path):
    out = tmp_path / "stats.html"
    code, _, err = cli("stats", CAT, "--model", str(tiny_bert), "-o", str(out))
    assert code == 0, err
    data = page_data(out)
    page = Page(browser, out)
    p = page.page
    assert p.is_visible("#stats-box") and p.locator("#stats tbody tr").count() == len(data["stats"]["heads"]) == 4
    assert "role" in p.inner_text("#stats thead")
    p.click("#stats tbody tr[data-layer='0'][data-head='1']")
    st = page.status()
    assert st["layer"] == "0" and st["head"] == "1"
    assert p.locator("#stats tbody tr.current").count() == 1
    page.close()


PRINTED_JS = """() => {
  // every printed weight and its printed bound cover the stored value's interval [w - e, w + e]
  const bad = [];
  for (let i = 0; i < 20000; i++) {
    const w = Math.random() ** 3, e = 10 ** (-2 - 4 * Math.random());
    const text = fmt(w, e), bound = parseFloat(fmtErr(e).slice(1));
    if (text.startsWith("<")) { if (w + e > parseFloat(text.slice(1)) + 1e-12) bad.push([w, e, text]); }
    else if (Math.abs(parseFloat(text) - w) + e > bound + 1e-12) bad.push([w, e, text, fmtErr(e)]);
  }
  return bad.slice(0, 5);
}"""


def test_every_printed_number_and_its_printed_bound_cover_the_stored_interval(browser, tiny_bert, tmp_path):
    """The readout's digits are rounded: the bound it prints adds that rounding, and '<x' is the most it can be."""
    from attncli.sources import capture_text

    cap = capture_text(CAT, str(tiny_bert))
    page = Page(browser, write_html(interactive_view(cap), tmp_path / "printed.html"))
    assert page.page.evaluate(PRINTED_JS) == []
    page.close()
