"""Structure figures for the closing notes: module sizes, import cycles and the longest import chain.

    python scripts/measure_structure.py [SRC_FOLDER]

Imports inside functions count (grimp sees them); imports under TYPE_CHECKING do not.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path


def main() -> None:
    """Print the largest modules, the import cycles and the longest chain of imports."""
    import grimp

    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src").resolve()
    sys.path.insert(0, str(src))
    graph = grimp.build_graph("attncli", exclude_type_checking_imports=True, cache_dir=None)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    sizes = sorted(((len(p.read_text().splitlines()), str(p.relative_to(src))) for p in (src / "attncli").rglob("*.py")),
                   reverse=True)
    print(f"modules: {len(sizes)}; largest: " + ", ".join(f"{name} {n}" for n, name in sizes[:3]))
    index, low, on, stack, comp = {}, {}, set(), [], {}

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                on.discard(w)
                comp[w] = v
                if w == v:
                    break

    sys.setrecursionlimit(10_000)
    for m in modules:
        if m not in index:
            strong(m)
    groups: dict[str, list[str]] = {}
    for m, c in comp.items():
        groups.setdefault(c, []).append(m)
    cycles = [sorted(g) for g in groups.values() if len(g) > 1]
    print(f"import cycles: {len(cycles)}" + "".join(f"\n  {' <-> '.join(c)}" for c in cycles))
    down = {c: {comp[n] for m in groups[c] for n in edges[m] if comp[n] != c} for c in groups}

    @functools.lru_cache(None)
    def chain(c: str) -> tuple[str, ...]:
        best = max((chain(d) for d in down[c]), key=len, default=())
        return (c,) + best

    longest = max((chain(c) for c in groups), key=len)
    print(f"longest import chain: {len(longest)} modules\n  " + " -> ".join(longest))
    floors(edges)


def floors(edges: dict[str, list[str]]) -> None:
    """Print the floors: the longest chain of imports between top-level modules and packages (attncli.X).

    Imports inside a package are left out, so this counts how many parts of attncli stand on each other (the
    import contract's layers are an upper bound on it); the package itself and __main__ are left out.
    """
    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    down: dict[str, set[str]] = {}
    for m, targets in edges.items():
        if part(m) in ("attncli", "attncli.__main__"):
            continue
        down.setdefault(part(m), set()).update(part(t) for t in targets if part(t) not in (part(m), "attncli"))

    @functools.lru_cache(None)
    def chain(p: str, seen: frozenset = frozenset()) -> tuple[str, ...]:
        best = max((chain(d, seen | {p}) for d in down.get(p, ()) if d not in seen and d != p), key=len, default=())
        return (p,) + best

    longest = max((chain(p) for p in down), key=len)
    print(f"floors (longest chain of top-level parts): {len(longest)}\n  " + " -> ".join(longest))


if __name__ == "__main__":
    main()
