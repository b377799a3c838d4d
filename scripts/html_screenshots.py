"""Make the README's screenshots of the interactive HTML view (offline: the embedded models, Debian's chromium).

    python scripts/html_screenshots.py [OUT_DIR]        # default docs/

Writes html-text.png (MiniLM on the quickstart sentence, token "it" at layer 2, the lines of heads 3 and 9)
and html-image.png (DINOv2-S on samples/chelsea.png, [CLS] at layer 9, sinks marked), plus the two pages they
show, and prints the page sizes of the issue's two budget shapes (real attention statistics, and random noise).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from attncli.capture import Capture
from attncli.sources import capture_text
from attncli.grid import PatchGrid
from attncli.views.interactive import Initial, interactive_view
from attncli.render.html import html_document, write_html
from attncli.sources import capture_image

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]
CAT = "The cat sat on the mat because it was tired."


def softmaxed(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random attention: standard-normal logits softmaxed over keys (near-uniform rows: hard to compress)."""
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    x = np.exp(x - x.max(axis=-1, keepdims=True))
    return x / x.sum(axis=-1, keepdims=True)


def real_like() -> dict[str, Capture]:
    """The issue's two budget shapes filled with real attention (no ViT-B/16 or BERT-base weights offline):
    DINOv2-S heads of two photos cropped to 197 tokens, and MiniLM heads over two 512-token texts."""
    heads = [capture_image(f"samples/{name}.png", "dinov2-small").attentions for name in ("chelsea", "coffee")]
    att = np.concatenate(heads, axis=1)[..., :197, :197].astype(np.float64)
    vit = _vit(att / att.sum(-1, keepdims=True))
    words = " ".join(open("samples/sentences.txt", encoding="utf-8").read().split())
    texts = [capture_text((words + " ") * 20, "minilm"), capture_text((CAT + " ") * 60, "minilm")]
    bert = np.concatenate([c.attentions[..., :512, :512] for c in texts], axis=0)
    return {"ViT-B/16 shape, real DINOv2-S attention": vit,
            "BERT-base 512 shape, real MiniLM attention": _bert(bert)}


def _vit(att: np.ndarray) -> Capture:
    grid = PatchGrid(14, 14, 16, 16, 224, 224)
    labels = ["[CLS]"] + [f"({r},{c})" for r in range(14) for c in range(14)]
    noise = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)  # the worst PNG
    return Capture(att.astype(np.float32), labels, [True] + [False] * 196, "vit-base-patch16-224", kind="image",
                   grid=grid, image=noise, source="noise.png")


def _bert(att: np.ndarray) -> Capture:
    words = ["[CLS]"] + [f"w{i}" for i in range(510)] + ["[SEP]"]
    return Capture(att.astype(np.float32), words, [True] + [False] * 510 + [True], "bert-base-uncased",
                   text=" ".join(words[1:-1]))


def budget_sizes() -> dict[str, float]:
    """Page sizes in MB of the issue's two budget shapes: real attention statistics, then random noise."""
    captures = real_like()
    captures["ViT-B/16, random softmaxed noise (worst case)"] = _vit(softmaxed((12, 12, 197, 197), 7))
    captures["BERT-base 512, random softmaxed noise (worst case)"] = _bert(softmaxed((12, 12, 512, 512), 8))
    out = {}
    for name, cap in captures.items():
        start = time.perf_counter()
        view = interactive_view(cap)
        size = len(html_document(view).encode())
        out[name] = size / 1e6
        print(f"{name}: {size / 1e6:.2f} MB, layers dropped: {view.dropped or 'none'} "
              f"({time.perf_counter() - start:.1f} s)")
    return out


def shoot(pages: dict[str, tuple[Path, list]], out: Path) -> None:
    """Open each page offline in headless chromium, run its actions, and save a screenshot."""
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("ATTN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        for name, (path, actions) in pages.items():
            context = browser.new_context(viewport={"width": 1200, "height": 860}, offline=True,
                                          color_scheme="light", device_scale_factor=1)
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:"))
                          else r.abort())
            page = context.new_page()
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']")
            for act in actions:
                act(page)
            page.mouse.move(0, 0)
            page.screenshot(path=str(out / f"{name}.png"))
            context.close()
        browser.close()


def main() -> None:
    """Write the two pages and their screenshots, and print the budget sizes."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="attn-html-"))
    text = capture_text(CAT, "minilm")
    text_page = write_html(interactive_view(text, methods=("attention", "rollout"), initial=Initial(layer=2, query="it")),
                           work / "text.html")
    os.chdir(ROOT)  # the page names the image as given: samples/shapes/000_star.png
    image = capture_image("samples/chelsea.png", "dinov2-small")
    image_page = write_html(interactive_view(image, methods=("attention", "rollout"), initial=Initial(layer=9)),
                            work / "image.html")
    shoot({
        "html-text": (text_page, [lambda p: p.check("#heads-pick input[data-head='3']"),
                                  lambda p: p.check("#heads-pick input[data-head='9']")]),
        "html-image": (image_page, []),
    }, out)
    print(f"screenshots in {out}: html-text.png, html-image.png (pages in {work})")
    budget_sizes()


if __name__ == "__main__":
    main()
