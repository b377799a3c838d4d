"""A corpus run's checkpoint: the running sums and how far the run got, in one .npz written atomically.

Written after every chunk (temp file in the same folder, then rename), so a run stopped at any moment — Ctrl-C,
``kill -9``, a lost machine — leaves the last whole chunk's state. A run given the same corpus, model and
options resumes from it: it skips the inputs already counted and ends with the same sums an uninterrupted run
has (the chunks are the same, so even the order of the additions is).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attncli.corpus.aggregate import Running
from attncli.errors import UsageError

META = "__meta__"


def default_path(key: dict) -> Path:
    """Where a run's checkpoint goes unless --checkpoint says: the cache folder, named by the run's options."""
    import hashlib

    from attncli.cache import cache_dir

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "corpus" / f"run-{digest}.npz"


def save(path: Path, running: Running, meta: dict) -> None:
    """Write the sums and the meta (key, inputs done, chunks done) atomically."""
    import io

    import numpy as np

    from attncli.cache import write_atomic

    buf = io.BytesIO()
    arrays = {name: np.asarray(value) for name, value in running.state().items()}
    np.savez(buf, **arrays, **{META: np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())


def load(path: Path, key: dict) -> tuple[Running, dict] | None:
    """The checkpoint at path when it belongs to this run (same key); None when there is none."""
    import numpy as np

    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data[META]).decode())
            arrays = {name: data[name] for name in data.files if name != META}
    except Exception as exc:  # a damaged file says so, in one line
        raise UsageError(f"checkpoint {path} cannot be read ({type(exc).__name__})",
                         "delete it, or run again with --restart") from None
    if meta.get("key") != key:
        raise UsageError(f"checkpoint {path} belongs to another run (corpus, model or options differ)",
                         "run again with --restart to start over, or give another --checkpoint")
    return Running(arrays), meta


def remove(path: Path) -> None:
    """Delete a finished run's checkpoint."""
    path.unlink(missing_ok=True)


def describe(meta: dict[str, Any]) -> str:
    """'resuming after 1,024 inputs (checkpoint …)'."""
    return f"resuming after {meta['done']:,} inputs"
