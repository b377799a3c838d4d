"""The hostile world of test_hostile: tiny models, broken models, broken files and captures, unwritable folders."""

from __future__ import annotations

import os

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np


def _broken_models(root: Path, bert: Path, gpt2: Path) -> None:
    """A truncated safetensors file, a pickle-only checkpoint, a tokenizer that yields no tokens, missing weights."""
    import torch

    cut = shutil.copytree(bert, root / "cut-weights")
    data = (bert / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    junk = shutil.copytree(bert, root / "junk-weights")
    (junk / "model.safetensors").write_bytes(b"\xff" * 64)
    pickle = shutil.copytree(bert, root / "pickle")
    (pickle / "model.safetensors").unlink()
    from safetensors.torch import load_file

    torch.save(load_file(bert / "model.safetensors"), pickle / "pytorch_model.bin")
    empty = shutil.copytree(gpt2, root / "zero-tokens")
    tok = json.loads((empty / "tokenizer.json").read_text())
    # A normaliser that removes every character: any text becomes zero tokens (and the model adds none).
    tok["normalizer"] = {"type": "Replace", "pattern": {"Regex": "[\\s\\S]"}, "content": ""}
    (empty / "tokenizer.json").write_text(json.dumps(tok))
    partial = shutil.copytree(bert, root / "missing-weights")
    tensors = load_file(bert / "model.safetensors")
    from safetensors.torch import save_file

    save_file({k: v for k, v in tensors.items() if "layer.1." not in k}, partial / "model.safetensors",
              metadata={"format": "pt"})


def _broken_captures(root: Path, good: Path) -> None:
    """Capture files that are not whole: truncated, not a zip, missing arrays, wrong shapes, NaN, bad grid."""
    data = good.read_bytes()
    (root / "trunc.npz").write_bytes(data[: len(data) // 2])
    (root / "junk.npz").write_bytes(b"not a zip at all")
    with np.load(good, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def variant(name: str, **changes) -> None:
        np.savez(root / name, **{k: v for k, v in {**arrays, **changes}.items() if v is not None})

    layer_keys = sorted(k for k in arrays if k.startswith("attentions."))  # the store keeps one array per layer

    def layers(change) -> dict:
        """Every layer's array changed the same way."""
        return {k: change(arrays[k]) for k in layer_keys}

    variant("noatt.npz", **{k: None for k in layer_keys}, __meta__=np.frombuffer(json.dumps(
        {k: v for k, v in json.loads(bytes(arrays["__meta__"]).decode()).items() if k != "attentions_layers"}
    ).encode(), dtype=np.uint8))
    variant("nometa.npz", __meta__=None)
    variant("flat.npz", **layers(lambda a: a[0]))  # 3-D once the layers are stacked
    first = arrays[layer_keys[0]].copy()
    first[0, 0, 0] = np.nan
    variant("nan.npz", **{layer_keys[0]: first})
    variant("rows.npz", **layers(lambda a: a * 3))  # rows sum to 3
    variant("short.npz", **layers(lambda a: a[:, :-1, :-1]))  # fewer positions than tokens
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    variant("badjson.npz", __meta__=np.frombuffer(b"{not json", dtype=np.uint8))
    variant("nokind.npz", __meta__=np.frombuffer(json.dumps({**meta, "kind": "sound"}).encode(), dtype=np.uint8))
    with zipfile.ZipFile(root / "pickled.npz", "w") as zf:
        zf.writestr("__meta__.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
                    + b" " * 52 + b"\n" + b"\x80\x04N.")


def _image_captures(root: Path, good_image: Path) -> None:
    """An image capture whose grid does not match its tokens."""
    with np.load(good_image, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(bytes(arrays["__meta__"]).decode())
    meta["grid"]["rows"] += 1
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(root / "badgrid.npz", **arrays)


def _files(root: Path) -> None:
    """Images good and bad, texts good and bad, an empty folder."""
    from PIL import Image

    Image.new("RGB", (40, 32), (200, 30, 30)).save(root / "img.png")
    (root / "notes.png").write_text("just text")
    data = (root / "img.png").read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) // 2])
    (root / "text.txt").write_text("the cat sat on the mat")
    (root / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "empty.txt").write_text("  \n")
    (root / "nothing").mkdir()
    from tiny_speech import tone, write_wav

    write_wav(root / "tone.wav", tone(0.3))
    (root / "notwav.wav").write_text("just text")
    write_wav(root / "empty.wav", tone(0.0))
    (root / "cut.wav").write_bytes((root / "tone.wav").read_bytes()[:30])
    (root / "song.flac").write_bytes(b"fLaC" + bytes(40))
    write_wav(root / "slow.wav", tone(0.3), rate=100)


def mount(folder: Path, *options: str) -> bool:
    """Mount a tmpfs at folder (root only); False when this machine does not allow it."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def fill(folder: Path) -> None:
    """Fill a small filesystem until it has no space left."""
    with open(folder / "ballast", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def build(root: Path, cli) -> dict[str, str]:
    """Everything the battery's cases name, as {placeholder: path}."""
    from tiny import make_bert, make_gpt2
    from tiny_classifier import make_bert_classifier
    from tiny_seq2seq import make_marian
    from tiny_speech import make_whisper
    from tiny_vision import make_vit

    models = root / "models"
    bert, gpt2 = make_bert(models / "bert"), make_gpt2(models / "gpt2")
    paths = {"bert": bert, "gpt2": gpt2, "vit": make_vit(models / "vit"), "marian": make_marian(models / "marian"),
             "cls": make_bert_classifier(models / "cls"), "whisper": make_whisper(models / "whisper")}
    _broken_models(models, bert, gpt2)
    files = root / "files"
    files.mkdir()
    _files(files)
    caps = root / "caps"
    caps.mkdir()
    code, _, err = cli("explain", "the cat sat on the mat", "--model", str(bert), "--save", str(caps / "good.npz"))
    assert code == 0, err
    os.environ["ATTN_CAPTURE_BUDGET_MB"] = "0"  # a capture of one layer's [CLS] row: views that need more refuse
    try:
        code, _, err = cli("heatmap", str(files / "img.png"), "--model", str(paths["vit"]), "--save",
                           str(caps / "image.npz"), "-o", str(root / "img-map.png"))
    finally:
        del os.environ["ATTN_CAPTURE_BUDGET_MB"]
    assert code == 0, err
    (root / "img-map.png").unlink()
    _one_row(caps / "image.npz")
    _broken_captures(caps, caps / "good.npz")
    _image_captures(caps, caps / "image.npz")
    for name in ("cut-weights", "junk-weights", "pickle", "zero-tokens", "missing-weights"):
        paths[name.replace("-", "_")] = models / name
    paths.update(files=files, caps=caps, img=files / "img.png", ro=root / "ro", full=root / "full")
    return {k: str(v) for k, v in paths.items()}


def _one_row(path: Path) -> None:
    """Cut an image capture down to [CLS]'s row (a heatmap keeps every row of its layer for the sink check; older
    captures kept only that row, and views that need more must still refuse them)."""
    from attncli.store import load_capture, save_capture

    cap = load_capture(path)
    cap.attentions, cap.query_ids = cap.attentions[:, :, :1].copy(), [0]
    cut = path.with_name("one-row.npz")
    save_capture(cap, cut)
    cut.replace(path)
