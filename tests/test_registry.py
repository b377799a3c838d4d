"""The method registry is the one list of methods: the CLI's choices, its help and the page read it."""

from __future__ import annotations

import re
from pathlib import Path

from attncli.methods.registry import METHODS, MODULES, Method, info, page_info

ASSETS = Path(__file__).resolve().parent.parent / "src" / "attncli" / "render" / "html_assets"


def test_the_enum_is_the_registry():
    assert [m.value for m in Method] == list(METHODS) and len(METHODS) == len(MODULES)
    assert all(info(m).name == m.value for m in Method)


def test_declarations_are_consistent():
    for m in METHODS.values():
        assert m.span in ("layer", "upto") and m.summary and m.options <= {"discard_ratio", "drop_sinks", "target"}
        assert not (m.raw and m.extras), "raw weights read nothing but the attention"


def test_help_lists_every_method(cli):
    code, out, _ = cli("explain", "--help")
    flat = " ".join(out.split())
    assert code == 0 and "|".join(METHODS) in flat.replace(" ", "") or all(name in flat for name in METHODS)


def test_the_page_names_no_method_but_attention():
    """The page's JavaScript takes each method's facts from the view (page_info), not from a list of its own."""
    names = [n for n in METHODS if n != "attention"]
    for js in ASSETS.glob("*.js"):
        text = js.read_text(encoding="utf-8")
        assert not [n for n in names if re.search(rf'(===|!==|\[)\s*"{re.escape(n)}"', text)], js.name
    facts = page_info(0.9, "cat", 12)
    assert facts["rollout"]["words"] == "rollout of {span} ({fuse}, discard 0.9)" and facts["rollout"]["fuses"]
    assert not facts["grad-rollout"]["normalised"] and facts["grad-rollout"]["words"].endswith("for cat")
