"""Model loading through the real code: local folders, an offline HF cache, aliases, and every failure."""

from __future__ import annotations

import json
import shutil

import pytest

from attncli.errors import DeviceError, ModelLoadError, ModelNotFoundError, UsageError
from attncli.models import EMBEDDED, load_model, resolve_model, verify_sha256
from tiny import lay_out_hub_cache


def test_local_bert_loads_selective_in_eval_mode(tiny_bert):
    loaded = load_model(str(tiny_bert))
    assert loaded.ref.kind == "local"
    assert loaded.model.training is False
    assert loaded.config._attn_implementation == "attncli_selective"  # SDPA plus the asked weights
    assert loaded.device == "cpu"


def test_alias_and_hub_id_of_embedded_model_resolve_offline():
    by_alias = resolve_model("minilm")
    by_id = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert by_alias == by_id
    assert by_alias.kind == "alias" and by_alias.model_id == "sentence-transformers/all-MiniLM-L6-v2"


def test_unknown_hub_id_offline_names_alias_and_path():
    with pytest.raises(ModelNotFoundError) as info:
        load_model("no-such-org/no-such-model")
    text = str(info.value)
    assert "--model minilm" in text and "--model PATH" in text


@pytest.mark.parametrize("ref, message", [("./missing-folder", "no such model folder"), ("", "empty")])
def test_bad_local_refs(ref, message):
    with pytest.raises(UsageError, match=message):
        resolve_model(ref)


def test_folder_without_config(tmp_path):
    with pytest.raises(UsageError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_missing_device_is_clear():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceError, match="--device cpu"):
        load_model("minilm", device="cuda")


def test_sha256_mismatch_is_refused(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not the weights")
    with pytest.raises(ModelLoadError, match="pinned sha256"):
        verify_sha256(weights, EMBEDDED["minilm"].sha256)


def test_embedded_minilm_sha256_matches():
    ref = resolve_model("minilm")
    verify_sha256(ref.embedded.locate() / "model.safetensors", ref.embedded.sha256)


def test_remote_code_needs_the_flag(tiny_bert, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "configuration_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"}
    config["model_type"] = "custom-remote"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="--trust-remote-code"):
        load_model(str(folder))


def test_hub_cache_resolves_offline(tiny_bert, tmp_path, attn):
    hf_home = tmp_path / "hf"
    lay_out_hub_cache(hf_home, "tiny-org/tiny-bert", tiny_bert)
    proc = attn("explain", "the cat sat", "--model", "tiny-org/tiny-bert", "--json",
                env={"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["model"] == "tiny-org/tiny-bert"
    assert [t["text"] for t in doc["tokens"]] == ["[CLS]", "the", "cat", "sat", "[SEP]"]


def test_an_unreachable_hub_is_decided_per_load(tiny_bert, tmp_path, monkeypatch):
    """A failed hub probe makes that one load read the cache (every file of it); the process keeps its hub."""
    import os

    import huggingface_hub.constants
    import transformers

    import attncli.models

    hf_home = tmp_path / "hf"
    lay_out_hub_cache(hf_home, "tiny-org/tiny-bert", tiny_bert)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hf_home / "hub"))  # read at import time
    monkeypatch.delenv("HF_HUB_OFFLINE")  # the user did not ask for offline
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    probes: list[int] = []
    monkeypatch.setattr(attncli.models, "_hub_reachable", lambda timeout=3.0: probes.append(1) or False)
    asked: list[tuple[str, object]] = []  # (what loaded, its local_files_only)
    for owner in (transformers.AutoConfig, transformers.AutoTokenizer, transformers.PreTrainedModel):
        original = owner.from_pretrained.__func__

        def spy(cls, *args, _original=original, **kwargs):
            asked.append((cls.__name__, kwargs.get("local_files_only")))
            return _original(cls, *args, **kwargs)

        monkeypatch.setattr(owner, "from_pretrained", classmethod(spy))
    before = dict(os.environ)
    for attempt in (1, 2):
        loaded = load_model("tiny-org/tiny-bert")
        assert loaded.ref.kind == "hub" and loaded.local_files_only
        assert len(probes) == attempt  # each load asks the hub again: nothing was switched off for the process
        assert dict(os.environ) == before and huggingface_hub.constants.HF_HUB_OFFLINE is False
    called = {name for name, _ in asked}
    assert {"AutoConfig", "AutoTokenizer", "BertModel"} <= called, called
    assert all(local is True for _, local in asked), asked


def test_uncached_hub_id_in_subprocess_is_one_line(tmp_path, attn):
    proc = attn("explain", "hello", "--model", "no-org/nothing", env={"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--model minilm" in lines[0] and "Traceback" not in proc.stderr


def test_missing_embedded_files_are_named(monkeypatch, tmp_path):
    from dataclasses import replace

    monkeypatch.setitem(EMBEDDED, "shapes", replace(EMBEDDED["shapes"], locate=lambda: tmp_path / "gone"))
    with pytest.raises(ModelLoadError, match="embedded model 'shapes' is missing"):
        resolve_model("shapes")
