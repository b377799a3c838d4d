"""The patch grid of a vision transformer, derived from its config (never hard-coded)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PatchGrid:
    """How an image's tokens map to patches.

    Token order is ``prefix`` special tokens (CLS, distillation, registers, named in ``prefix_labels``)
    followed by ``rows * cols`` patches in row-major order.
    """

    rows: int
    cols: int
    patch_height: int
    patch_width: int
    image_height: int
    image_width: int
    prefix: int = 1
    prefix_labels: tuple[str, ...] = ("[CLS]",)

    @property
    def n_patches(self) -> int:
        """Number of image patches (rows × cols)."""
        return self.rows * self.cols

    @property
    def n_tokens(self) -> int:
        """Prefix tokens plus patches: the sequence length the model sees."""
        return self.prefix + self.n_patches

    def token_of(self, row: int, col: int) -> int:
        """Sequence index of the patch at (row, col)."""
        return self.prefix + row * self.cols + col

    def cell_of(self, token: int) -> tuple[int, int]:
        """(row, col) of a patch token; prefix tokens have no cell."""
        if token < self.prefix:
            raise ValueError(f"token {token} is a prefix token ({self.prefix_labels[token]}), not a patch")
        idx = token - self.prefix
        return divmod(idx, self.cols)

    def to_dict(self) -> dict:
        """Plain dict for JSON and the capture store."""
        d = asdict(self)
        d["prefix_labels"] = list(self.prefix_labels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PatchGrid":
        """Inverse of to_dict."""
        d = dict(d)
        d["prefix_labels"] = tuple(d.get("prefix_labels", ()))
        return cls(**d)
