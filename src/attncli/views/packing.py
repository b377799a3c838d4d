"""How the interactive page stores weights: 8-bit codes per row plus each row's largest weights exactly.

Every stored row ``r`` (one query of one head of one layer) is kept as

* 8-bit codes on its own scale: ``q = round((r - low) / scale)`` with ``low = min(0, r.min())`` and
  ``scale = (r.max() - low) / 255``; the page reads ``low + q * scale``, within ``scale / 2`` of the capture
  (at most the row's largest weight / 510). A row of small weights gets a fine scale of its own.
* its ``TOP`` largest weights exactly (float32, with their key indices, in the capture's order: value
  descending, ties by index). The page shows those values as they are, orders the row's top entries by them,
  and caps the coded value of every other key at the smallest of them (the capture's value is at most that,
  so the cap only brings it closer). So top-1 … top-``TOP`` of every row are the capture's.

For attention (several heads) one more table holds the top weights of the heads' mean, so the page's default
fused view ranks exactly too. Layers are zlib streams (base64), inflated by the browser's DecompressionStream.

Why this code: measured on MiniLM (512 tokens) and DINOv2-S (257 tokens), codes per row cost 0.38 and 0.47
bytes a weight after deflate (per-matrix 0.15/0.28, a log code 0.81/0.85, float16 1.7), which keeps a
ViT-B/16 page under 5 MB and a 512-token BERT-base page under 25 MB; a log code would not.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import numpy as np

LEVELS = 255  # 8 bits per weight
TOP = 5  # exact weights kept per row

PRECISION = (f"weights stored as 8-bit codes with one scale per row (error ≤ scale/2 = the row's largest "
             f"weight/510) plus each row's {TOP} largest weights exactly (float32)")


def _b64(data: bytes, level: int = 6) -> str:
    """deflate (the smaller of two strategies) then base64."""
    return base64.b64encode(_deflate(data, level)).decode("ascii")


def _unb64(text: str) -> bytes:
    return zlib.decompress(base64.b64decode(text))


@dataclass(frozen=True)
class PackedArray:
    """A ``(layers, heads, query, key)`` array as per-row 8-bit codes plus exact top weights, one chunk per layer.

    Per stored layer: ``chunks`` (uint8 codes, (heads, query, key)), ``rows`` (float32 lows then scales, each
    (heads, query); empty when no value is negative: lows are 0 and scales the top weight / 255) and ``tops`` (uint16 key indices then float32 values, each (heads + fused, query, top)).
    ``fused`` is 1 when the tops carry an extra "head": the mean of the heads. ``layers`` are model layer
    numbers; ``queries`` the token index of each stored query row (None: every token, in order).
    """

    shape: tuple[int, int, int, int]
    layers: tuple[int, ...]
    chunks: list[str]
    rows: list[str]
    tops: list[str]
    top: int
    fused: int
    queries: tuple[int, ...] | None = None
    negative: bool = False  # some row has a negative value (its low is below 0)

    @property
    def nbytes(self) -> int:
        """Characters of base64 this array adds to the page."""
        return sum(len(c) + len(r) + len(t) for c, r, t in zip(self.chunks, self.rows, self.tops))

    def layer_bytes(self, layer: int) -> int:
        """Base64 characters of one stored model layer."""
        i = self.layers.index(layer)
        return len(self.chunks[i]) + len(self.rows[i]) + len(self.tops[i])

    def keep(self, layers: Sequence[int]) -> "PackedArray":
        """The same array restricted to some of its stored layers."""
        idx = [self.layers.index(l) for l in layers]
        return PackedArray((len(idx), *self.shape[1:]), tuple(layers), [self.chunks[i] for i in idx],
                           [self.rows[i] for i in idx], [self.tops[i] for i in idx], self.top, self.fused,
                           self.queries, self.negative)

    def lows_scales(self) -> "tuple[np.ndarray, np.ndarray]":
        """(lows, scales), each (layers, heads, query) float64: what each row's codes start from and step by.

        Without negative values every low is 0 and every scale the row's largest weight / 255, read from the
        top table (``rows`` is empty then); otherwise both are stored as float32.
        """
        import numpy as np

        _, h, q, _ = self.shape
        if not self.negative:
            top1 = self.top_table()[1][:, :h, :, 0].astype(np.float64)  # (layers, heads, query)
            return np.zeros_like(top1), top1 / LEVELS
        both = np.stack([np.frombuffer(_unb64(r), dtype="<f4").reshape(2, h, q) for r in self.rows])
        return both[:, 0].astype(np.float64), both[:, 1].astype(np.float64)

    def scales(self) -> "np.ndarray":
        """(layers, heads, query) step of each row's codes (the error bound is half of it)."""
        return self.lows_scales()[1]

    def max_error(self) -> float:
        """The largest error bound (scale/2) of a coded weight, over every stored row."""
        return float(self.scales().max(initial=0.0)) / 2

    def top_table(self) -> "tuple[np.ndarray, np.ndarray]":
        """(indices, values), each (layers, heads + fused, query, top)."""
        import numpy as np

        _, h, q, _ = self.shape
        idx, val = [], []
        for t in self.tops:
            raw = _unb64(t)
            n = (h + self.fused) * q * self.top
            idx.append(np.frombuffer(raw[: 2 * n], dtype="<u2").reshape(h + self.fused, q, self.top))
            val.append(np.frombuffer(raw[2 * n:], dtype="<f4").reshape(h + self.fused, q, self.top))
        return np.stack(idx), np.stack(val)

    def unpack(self) -> "np.ndarray":
        """Decode to float64 ``(layers, heads, query, key)`` exactly as the page does (codes, tops, cap)."""
        import numpy as np

        _, heads, q, k = self.shape
        idx, val = self.top_table()
        out = []
        lows, scales = self.lows_scales()
        for li, chunk in enumerate(self.chunks):
            codes = np.frombuffer(_unb64(chunk), dtype=np.uint8).reshape(heads, q, k)
            m = lows[li][..., None] + codes * scales[li][..., None]  # (H, Q, K)
            cap = val[li, :heads, :, -1].astype(np.float64)[..., None]  # smallest exact top value
            m = np.minimum(m, cap)
            np.put_along_axis(m, idx[li, :heads].astype(np.int64), val[li, :heads].astype(np.float64), axis=-1)
            out.append(m)
        return np.stack(out)

    def to_dict(self) -> dict:
        """Plain dict for the page's JSON."""
        d = asdict(self)
        d["shape"], d["layers"] = list(self.shape), list(self.layers)
        d["queries"] = None if self.queries is None else list(self.queries)
        return d


def pack(array: "np.ndarray", layers: Sequence[int], queries: Sequence[int] | None = None,
         level: int = 6, fused: bool | None = None) -> PackedArray:
    """Code ``(layers, heads, query, key)`` weights per row in 8 bits and keep each row's top weights exactly."""
    import numpy as np

    if array.ndim != 4 or array.shape[0] != len(layers):
        raise ValueError(f"expected (layers={len(layers)}, heads, query, key), got {array.shape}")
    _, n_heads, _, n_keys = array.shape
    if n_keys > 65535:
        raise ValueError(f"{n_keys} keys: the page indexes keys with 16 bits")
    fused = n_heads > 1 if fused is None else fused
    top = min(TOP, n_keys)
    chunks, rows, tops, negative = [], [], [], False
    for layer in array:  # one layer at a time: float64 copies of a 512-token layer are 25 MB, not 300
        m = layer.astype(np.float64)  # (H, Q, K)
        low = np.minimum(m.min(axis=-1), 0.0)  # (H, Q)
        negative = negative or bool((low < 0).any())
        scale = (m.max(axis=-1) - low) / LEVELS  # (H, Q)
        safe = np.where(scale > 0, scale, 1.0)
        codes = np.rint((m - low[..., None]) / safe[..., None]).clip(0, LEVELS).astype(np.uint8)
        chunks.append(_b64(codes.tobytes(), level))
        rows.append(_b64(np.concatenate([low, scale]).astype("<f4").tobytes(), level) if (low < 0).any() else "")
        ranked = np.concatenate([layer, layer.astype(np.float64).mean(axis=0, keepdims=True)]) if fused else layer
        order = np.argsort(-np.asarray(ranked, dtype=np.float64), axis=-1, kind="stable")[..., :top]  # (H', Q, T)
        values = np.take_along_axis(np.asarray(ranked, dtype=np.float32), order, axis=-1)
        tops.append(_b64(order.astype("<u2").tobytes() + values.astype("<f4").tobytes(), level))
    if not negative:  # every low is 0 and every scale is the row's largest weight / 255: the top table has it
        rows = [""] * len(rows)
    return PackedArray(tuple(int(n) for n in array.shape), tuple(int(l) for l in layers), chunks, rows, tops, top,
                       int(fused), None if queries is None else tuple(int(q) for q in queries), negative)


def _deflate(data: bytes, level: int) -> bytes:
    """The smaller of two zlib streams: ordinary deflate, or Huffman coding alone.

    Diffuse attention (near-uniform rows) has few repeats for LZ77 to find, and Huffman-only coding beats it
    at a tenth of the time; peaked attention, full of zero runs, is where ordinary deflate wins.
    """
    huffman = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    candidates = [huffman.compress(data) + huffman.flush(), zlib.compress(data, level)]
    return min(candidates, key=len)
