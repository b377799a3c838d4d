"""Make the README's screenshots of the interactive HTML view (offline: the embedded models, Debian's chromium).

    python scripts/html_screenshots.py [OUT_DIR]        # default docs/

Writes html-text.png (MiniLM on the quickstart sentence, token "it" selected) and html-image.png (the shapes
ViT on samples/shapes/000_star.png, a patch selected), plus the two pages they show, and prints the page sizes
of the issue's two budget captures (random softmaxed attention of a ViT-B/16 and a 512-token BERT-base).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from attncli.capture import Capture, capture_text
from attncli.grid import PatchGrid
from attncli.views.interactive import interactive_view
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


def budget_sizes() -> dict[str, float]:
    """Page sizes in MB of the two captures the issue names (a noise image for the ViT: the worst PNG)."""
    grid = PatchGrid(14, 14, 16, 16, 224, 224)
    labels = ["[CLS]"] + [f"({r},{c})" for r in range(14) for c in range(14)]
    noise = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    vit = Capture(softmaxed((12, 12, 197, 197), 7), labels, [True] + [False] * 196, "vit-base-patch16-224",
                  kind="image", grid=grid, image=noise, source="noise.png")
    words = ["[CLS]"] + [f"w{i}" for i in range(510)] + ["[SEP]"]
    bert = Capture(softmaxed((12, 12, 512, 512), 8), words, [True] + [False] * 510 + [True], "bert-base-uncased",
                   text=" ".join(words[1:-1]))
    out = {}
    for name, cap in (("ViT-B/16, 12×12×197×197", vit), ("BERT-base, 512 tokens, 12×12×512×512", bert)):
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
    it = text.tokens.index("it")
    text_page = write_html(interactive_view(text, methods=("attention", "rollout")), work / "text.html")
    os.chdir(ROOT)  # the page names the image as given: samples/shapes/000_star.png
    image = capture_image("samples/shapes/000_star.png", "shapes")
    image_page = write_html(interactive_view(image, methods=("attention", "rollout")), work / "image.html")
    shoot({
        "html-text": (text_page, [lambda p: p.click(f"#qcol li[data-index='{it}']"),
                                  lambda p: p.select_option("#layer", "2")]),
        "html-image": (image_page, [lambda p: p.select_option("#layer", "5")]),
    }, out)
    print(f"screenshots in {out}: html-text.png, html-image.png (pages in {work})")
    budget_sizes()


if __name__ == "__main__":
    main()
