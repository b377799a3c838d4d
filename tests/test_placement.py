"""--max-memory and --offload-folder: parsed once into accelerate's max_memory, and a split model's capture is whole."""

from __future__ import annotations

import numpy as np
import pytest

from attncli.errors import UsageError
from attncli.placement import parse_max_memory, placement

PROMPT = "The cat sat on the mat"


@pytest.mark.parametrize("text, want", [
    ("0=20GiB,cpu=60GiB", {0: 20 * 2**30, "cpu": 60 * 2**30}),
    ("cpu=500MB", {"cpu": 500 * 10**6}),
    (" CPU = 1.5gb , disk=2TiB ", {"cpu": 1_500_000_000, "disk": 2 * 2**40}),
    ("1=4096,mps=.5KiB", {1: 4096, "mps": 512}),
    ("cpu=40KB", {"cpu": 40_000}),
])
def test_max_memory_parses_to_bytes(text, want):
    """GPU indices become ints, sizes exact byte counts (decimal and binary units, any case, bare bytes)."""
    got = parse_max_memory(text)
    assert got == want and list(got) == list(want)


@pytest.mark.parametrize("text", ["", "cpu", "cpu=", "=1GB", "gpu=1GB", "cuda:0=1GB", "-1=1GB", "cpu=-1GB",
                                  "cpu=1XB", "cpu=GB", "cpu=nan", "cpu=1e3", "cpu=1GB,", "cpu=1GB;disk=2GB",
                                  "²=1GB", "cpu=1GB,cpu=2GB", "0=1GB,00=2GB"])
def test_max_memory_refuses_other_forms(text):
    """Anything but DEVICE=SIZE[,...] (or a device named twice) is a usage error that shows the expected form."""
    with pytest.raises(UsageError) as err:
        parse_max_memory(text)
    assert "DEVICE=SIZE" in str(err.value) and "0=20GiB,cpu=60GiB" in str(err.value)


def test_placement_takes_the_text_form_and_checks_the_folder(tmp_path):
    """placement() accepts the text form; an offload folder that is a file and a budget without a map are refused."""
    pytest.importorskip("accelerate")
    kwargs = placement("cpu", None, "auto", "cpu=1MiB", tmp_path / "off")
    assert kwargs == {"device_map": "auto", "max_memory": {"cpu": 2**20}, "offload_folder": str(tmp_path / "off")}
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        placement("cpu", None, "auto", None, tmp_path / "file")
    with pytest.raises(UsageError, match="only apply with a device map"):
        placement("cpu", None, None, "cpu=1GB", None)


def test_bad_max_memory_is_one_usage_line(cli):
    """A bad --max-memory stops explain and generate before any model loads: exit 2, one line with the form."""
    for command in ("explain", "generate"):
        code, out, err = cli(command, PROMPT, "--device-map", "auto", "--max-memory", "cpu:1GB")
        assert code == 2 and out == "" and len(err.splitlines()) == 1, err
        assert err.startswith("attn: error: ") and "--max-memory" in err and "0=20GiB,cpu=60GiB" in err
    code, _, err = cli("explain", PROMPT, "--max-memory", "cpu=1GB")
    assert code == 2 and "only apply with a device map" in err


def test_cli_split_over_cpu_and_disk_equals_unsplit(cli, tiny_gpt2, tmp_path, monkeypatch):
    """--device-map auto --max-memory cpu=40KB --offload-folder: part of the model on disk, the same captures.

    The CLI twin of test_generate.test_split_over_cpu_and_disk_equals_unsplit.
    """
    pytest.importorskip("accelerate")
    import attncli.models
    from attncli.store import load_capture

    maps = []
    real = attncli.models.load_model

    def spy(*args, **kwargs):
        loaded = real(*args, **kwargs)
        maps.append(dict(getattr(loaded.model, "hf_device_map", {})))
        return loaded

    monkeypatch.setattr(attncli.models, "load_model", spy)
    split = ("--device-map", "auto", "--max-memory", "cpu=40KB", "--offload-folder", str(tmp_path / "offload"))
    for command, extra in (("explain", ("--layers", "all")), ("generate", ("--max-new-tokens", "4", "--layers", "all"))):
        base = (command, PROMPT, "--model", str(tiny_gpt2), *extra)
        code, _, err = cli(*base, "--save", str(tmp_path / f"{command}-whole.npz"))
        assert code == 0, err
        code, _, err = cli(*base, *split, "--save", str(tmp_path / f"{command}-split.npz"))
        assert code == 0, err
        assert maps[-2] == {} and {"cpu", "disk"} <= set(maps[-1].values())
        want = load_capture(tmp_path / f"{command}-whole.npz")
        got = load_capture(tmp_path / f"{command}-split.npz")
        assert got.tokens == want.tokens and got.attentions.shape == want.attentions.shape
        np.testing.assert_allclose(got.attentions, want.attentions, atol=1e-6)
        np.testing.assert_allclose(got.target_scores, want.target_scores, atol=1e-6)
        assert len(want.target_scores) == (4 if command == "generate" else 0)
