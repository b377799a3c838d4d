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
        """(index, weight, other data) of each row the page's #readout shows."""
        rows = self.page.eval_on_selector_all(
            "#readout tbody tr", "rs => rs.map(r => Object.assign({}, r.dataset))")
        return [(int(r.pop("index")), float(r.pop("weight")), r) for r in rows]

    def bound(self) -> float:
        return float(self.page.eval_on_selector("#precision", "e => e.dataset.bound"))

    def screenshot_variance(self) -> float:
        from PIL import Image

        shot = Image.open(io.BytesIO(self.page.screenshot(full_page=True))).convert("L")
        return float(np.asarray(shot, dtype=np.float64).std())

    def close(self) -> None:
        assert self.errors == []
        assert all(u.startswith("file:") for u in self.requests), self.requests  # nothing left the machine
        self.context.close()


def check_row(page: Page, want: np.ndarray, bound: float) -> None:
    """The readout's weights equal the capture's to the stated precision (and the page states that bound)."""
    rows = page.readout()
    assert rows
    got = np.array([w for _, w, _ in rows])
    idx = [i for i, _, _ in rows]
    assert abs(page.bound() - bound) < 1e-12
    assert np.abs(got - want[idx]).max() <= bound + 1e-6


def head_bound(view, layer_pos: int, head: int | None, name: str = "attention") -> float:
    scales = view.arrays[name].scales[layer_pos]
    return (max(scales) if head is None else scales[head]) / 2


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
    assert "8 bits" in p.inner_text("#precision")

    cat = cap.tokens.index("cat")
    p.click(f"#qcol li[data-index='{cat}']")
    assert page.status()["query"] == str(cat)
    check_row(page, att[1].mean(0)[cat], head_bound(view, 1, None))

    p.keyboard.press("[")  # layer 0
    p.keyboard.press(".")  # head 0
    st = page.status()
    assert st["layer"] == "0" and st["head"] == "0" and "head 0" in st["text"]
    check_row(page, att[0, 0, cat], head_bound(view, 0, 0))
    p.select_option("#head", "1")
    p.keyboard.press("ArrowDown")  # the next token
    check_row(page, att[0, 1, cat + 1], head_bound(view, 0, 1))

    p.select_option("#head", "-1")
    p.select_option("#fuse", "max")
    assert "max of 2 heads" in page.status()["text"]
    check_row(page, att[0].max(0)[cat + 1], head_bound(view, 0, None))

    p.select_option("#method", "rollout")
    p.select_option("#layer", "1")
    assert "rollout of layers 0–1 (max)" in page.status()["text"]
    check_row(page, rollout_layers(cap.attentions, "max")[1, cat + 1].astype(np.float64),
              head_bound(view, 1, 0, "rollout-max"))

    # Special tokens hidden: their columns go and each row is renormalised over the rest.
    p.select_option("#method", "attention")
    p.select_option("#fuse", "mean")
    p.keyboard.press("s")
    rows = page.readout()
    keep = [i for i, s in enumerate(cap.special) if not s]
    assert [i for i, _, _ in rows] == keep
    want = att[1].mean(0)[cat + 1][keep]
    got = np.array([w for _, w, _ in rows])
    assert abs(got.sum() - 1) < 1e-9 and np.abs(got - want / want.sum()).max() <= 3 * page.bound() + 1e-6
    assert p.is_hidden("#qcol li[data-index='0']")

    # Key side: hovering a key token shows the column (each query's weight to it).
    p.keyboard.press("s")
    p.click(f"#kcol li[data-index='{cat}']")
    check_row(page, att[1].mean(0)[:, cat], head_bound(view, 1, None))

    # Thumbnails: layers × heads tiles; a click selects that head.
    assert p.locator("#thumbs canvas").count() == 4
    p.click("#thumbs canvas[data-layer='0'][data-head='1']")
    st = page.status()
    assert st["layer"] == "0" and st["head"] == "1"
    assert p.locator("#thumbs canvas.current").count() == 1
    assert page.screenshot_variance() > 5
    page.close()


# --- image -----------------------------------------------------------------------------------------------------

def click_patch(page: Page, row: int, col: int, grid) -> None:
    box = page.page.locator("#overlay").bounding_box()
    page.page.mouse.click(box["x"] + (col + 0.5) * box["width"] / grid.cols,
                          box["y"] + (row + 0.5) * box["height"] / grid.rows)


def check_top_patches(page: Page, row_weights: np.ndarray, grid, bound: float) -> None:
    rows = page.readout()
    patches = row_weights[grid.prefix:]
    assert len(rows) == min(10, grid.n_patches)
    for index, weight, data in rows:
        r, c = int(data["row"]), int(data["col"])
        assert index == grid.token_of(r, c) and abs(weight - row_weights[index]) <= bound + 1e-6
    # Listed largest first, and nothing left out is larger than the last one listed (up to the precision).
    weights = [w for _, w, _ in rows]
    assert weights == sorted(weights, reverse=True)
    assert np.sort(patches)[::-1][len(rows) - 1] <= weights[-1] + 2 * bound + 1e-6


def test_image_page_cls_patches_keyboard_layers_and_heads(browser, models, tmp_path):
    from attncli.sources import capture_image

    cap = capture_image(models["photo"], str(models["vit"]))
    att, grid = cap.attentions.astype(np.float64), cap.grid
    view = interactive_view(cap)
    page = Page(browser, write_html(view, tmp_path / "image.html"))
    p = page.page
    assert page.status()["query"] == "0"  # [CLS] first
    check_top_patches(page, att[1].mean(0)[0], grid, head_bound(view, 1, None))
    share = float(p.eval_on_selector("#prefix-share", "e => e.dataset.weight"))
    assert abs(share - att[1].mean(0)[0, 0]) <= head_bound(view, 1, None) + 1e-6

    click_patch(page, 2, 1, grid)
    assert page.status()["query"] == str(grid.token_of(2, 1))
    check_top_patches(page, att[1].mean(0)[grid.token_of(2, 1)], grid, head_bound(view, 1, None))
    p.keyboard.press("ArrowRight")
    p.keyboard.press("ArrowUp")
    assert page.status()["query"] == str(grid.token_of(1, 2))
    p.keyboard.press("[")
    p.keyboard.press(".")
    p.keyboard.press(".")  # head 1
    st = page.status()
    assert st["layer"] == "0" and st["head"] == "1"
    check_top_patches(page, att[0, 1, grid.token_of(1, 2)], grid, head_bound(view, 0, 1))
    p.keyboard.press("c")  # back to [CLS]
    check_top_patches(page, att[0, 1, 0], grid, head_bound(view, 0, 1))
    assert p.locator("#thumbs canvas").count() == 4
    assert page.screenshot_variance() > 5
    page.close()


def test_image_page_flow_is_offered_for_the_prefix_row_only(browser, models, tmp_path):
    from attncli.methods.flow import attention_flow
    from attncli.sources import capture_image

    cap = capture_image(models["photo"], str(models["vit"]))
    view = interactive_view(cap, methods=("flow",))
    page = Page(browser, write_html(view, tmp_path / "flow.html"))
    assert page.status()["method"] == "flow"
    check_top_patches(page, attention_flow(cap.attentions, 1, queries=[0])[0].astype(np.float64), cap.grid,
                      head_bound(view, 1, 0, "flow"))
    click_patch(page, 0, 0, cap.grid)
    assert page.readout() == [] and "prefix tokens only" in page.page.inner_text("#note")
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
    last = len(cap.target_tokens) - 1
    p.hover(f"#words .tok[data-index='{last}']")
    assert page.status()["query"] == str(last)
    check_top_patches(page, cross[-1].mean(0)[last], grid, head_bound(view, -1, None))
    p.keyboard.press("ArrowLeft")
    p.keyboard.press(",")  # the last head
    check_top_patches(page, cross[-1, -1, last - 1], grid, head_bound(view, -1, cap.n_heads - 1))
    page.close()


def test_align_page_target_rows_and_source_columns(browser, models, tmp_path):
    from attncli.sources import capture_align

    cap = capture_align("the cat sat on the mat", str(models["marian"]), max_new_tokens=4)
    cross = cap.cross_attentions.astype(np.float64)  # (L, H, T, S)
    view = interactive_view(cap)
    page = Page(browser, write_html(view, tmp_path / "align.html"))
    p = page.page
    assert p.locator("#qcol li").count() == len(cap.target_tokens) and p.locator("#kcol li").count() == len(cap.tokens)
    p.click("#qcol li[data-index='1']")
    check_row(page, cross[1].mean(0)[1], head_bound(view, 1, None))
    p.hover("#kcol li[data-index='2']")
    check_row(page, cross[1].mean(0)[:, 2], head_bound(view, 1, None))
    p.click("#kcol li[data-index='2']")  # keep that source token, then move away (hover follows the pointer)
    p.mouse.move(0, 0)
    assert page.status()["side"] == "key" and page.status()["key"] == "2"
    p.select_option("#layer", "0")
    p.select_option("#head", "0")
    check_row(page, cross[0, 0, :, 2], head_bound(view, 0, 0))
    assert page.screenshot_variance() > 5
    page.close()


def test_long_input_page_loads_and_reads_right(browser, tmp_path):
    """400 tokens: a 160k-cell matrix (spreading it into Math.max once overflowed the stack)."""
    from attncli.capture import Capture

    n = 400
    x = np.random.default_rng(0).standard_normal((2, 2, n, n)).astype(np.float32)
    att = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    words = ["[CLS]"] + [f"w{i}" for i in range(n - 2)] + ["[SEP]"]
    cap = Capture(att, words, [True] + [False] * (n - 2) + [True], "long", text=" ".join(words[1:-1]))
    view = interactive_view(cap)
    page = Page(browser, write_html(view, tmp_path / "long.html"))
    page.page.click("#qcol li[data-index='7']")
    check_row(page, att[1].mean(0)[7].astype(np.float64), head_bound(view, 1, None))
    page.close()
