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

    def query_token(self, query: str) -> int:
        """Token index of a query: '(ROW,COL)' or 'ROW,COL', a patch index (row-major) or a prefix name ('cls')."""
        from attncli.errors import UsageError

        text = query.strip()
        for i, label in enumerate(self.prefix_labels):
            if text.lower() in (label.lower(), label.strip("[]").lower()):
                return i
        try:
            numbers = [int(p) for p in text.replace("(", "").replace(")", "").split(",")]
        except ValueError:
            numbers = []
        if len(numbers) == 1:  # a patch index, row-major from 0
            return self.prefix + _index(numbers[0], self.n_patches, "patch")
        if len(numbers) != 2:
            raise UsageError(f"--token {query!r}: give a patch as ROW,COL (e.g. 3,4), a patch index "
                             f"(0..{self.n_patches - 1}) or a prefix token ({', '.join(self.prefix_labels)})")
        return self.token_of(_index(numbers[0], self.rows, "row"), _index(numbers[1], self.cols, "column"))


def _index(value: int, count: int, what: str) -> int:
    """0-based index with -1 meaning the last (methods.heads.resolve_index's rule, for the grid's own numbers)."""
    from attncli.errors import UsageError

    if -count <= value < count:
        return value % count
    raise UsageError(f"{what} {value} is out of range: the patch grid has {count} {what}s (0..{count - 1}, "
                     "or -1 for the last)")
