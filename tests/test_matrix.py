"""The architecture matrix: every command's capture equals the model's eager attention, refusals are one line.

Each case builds one tiny random model (tests/tiny_matrix.py), runs the command through the CLI's error boundary,
reads the last capture and compares every weight it kept with the same model loaded with eager attention and
called with ``output_attentions=True``. The default run takes the SAMPLE below (the features most easily got
wrong); ``pytest -m matrix tests/test_matrix.py`` (or ATTN_MATRIX=all) runs every architecture and command.
docs/supported-models.md is rendered from the same declarations (scripts/supported_models.py).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from tiny_matrix import ARCHS, BY_KEY, COMMANDS, WORKS
from tiny_reference import inputs_for, run_case

TOLERANCE = 1e-5
# Soft-capping, sinks with a sliding window, a shared layer module, no [CLS], a dual encoder's text tower, a speech
# encoder's refusal (BEiT's grad-rollout has its own test below).
SAMPLE = {("gemma2", "explain"), ("gpt-oss", "generate"), ("albert", "explain"), ("siglip", "heatmap"),
          ("clip", "explain"), ("wav2vec2", "explain")}
CASES = [(a.key, c) for a in ARCHS for c in COMMANDS if c in a.outcomes]
ROOT = Path(__file__).resolve().parents[1]


def _everything(config: pytest.Config) -> bool:
    """Whether this run asked for the whole matrix (-m matrix, or ATTN_MATRIX=all)."""
    return "matrix" in (config.getoption("-m") or "") or os.environ.get("ATTN_MATRIX") == "all"


@pytest.fixture(scope="session")
def matrix_model(tmp_path_factory):
    """key -> the folder of that architecture's tiny model, built once per session."""
    built: dict[str, Path] = {}

    def get(key: str) -> Path:
        if key not in built:
            built[key] = BY_KEY[key].build(tmp_path_factory.mktemp(key))
        return built[key]
    return get


@pytest.mark.matrix
@pytest.mark.parametrize("key,command", [pytest.param(k, c, id=f"{k}-{c}") for k, c in CASES])
def test_each_command_on_each_architecture(key, command, matrix_model, cli, tmp_path, request):
    if (key, command) not in SAMPLE and not _everything(request.config):
        pytest.skip("sampled: pytest -m matrix tests/test_matrix.py runs every architecture")
    arch = BY_KEY[key]
    result = run_case(arch, command, matrix_model(key), tmp_path, cli)
    expected = arch.outcomes[command]
    if expected == WORKS:
        # Under the capture budget (everything kept), then over it (only what the view reads).
        partial = run_case(arch, command, matrix_model(key), tmp_path, cli, budget="0")
        for kept, res in (("whole", result), ("partial", partial)):
            assert res.outcome == WORKS, (kept, res)
            assert res.diff is not None and res.diff <= TOLERANCE, f"{key} {command} ({kept}): {res}"
        for kept, res in (("whole", result), ("partial", partial)):
            assert res.problem is None, f"{key} {command} ({kept}): the last capture cannot be read back: {res.problem}"
    else:
        why = expected.removeprefix("refused: ")
        assert result.outcome.startswith("refused:") and why in result.outcome, result
        assert result.stderr_lines == 1 and result.code in (1, 2) and not result.last_changed, result


def test_the_sample_is_in_the_matrix():
    assert SAMPLE <= set(CASES)
    assert {a.key for a in ARCHS} >= {"bert", "roberta", "distilbert", "albert", "electra", "deberta-v2", "xlm-roberta",
                                      "mpnet", "modernbert", "gpt2", "gpt-neox", "gpt-j", "opt", "bloom", "falcon",
                                      "falcon-alibi", "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma",
                                      "gemma2", "gemma3", "gpt-oss", "phi3", "olmo2", "t5", "bart", "marian", "mbart",
                                      "pegasus", "vit", "deit", "beit", "dinov2", "dinov2-registers", "clip-vision",
                                      "clip", "siglip", "whisper", "wav2vec2"}


def test_supported_models_doc_is_current():
    spec = importlib.util.spec_from_file_location("supported_models", ROOT / "scripts" / "supported_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "docs" / "supported-models.md").read_text() == module.render(), \
        "docs/supported-models.md is stale: python scripts/supported_models.py"


def test_beit_grad_rollout_after_a_capture(matrix_model, cli, tmp_path):
    """BEiT's position index cached by the inference pass must not break grad-rollout's gradient pass."""
    image, _ = inputs_for(tmp_path)
    model = str(matrix_model("beit"))
    for argv in (["classify", str(image), "--model", model, "--method", "grad-rollout", "--json"],
                 ["heatmap", str(image), "--model", model, "--method", "grad-rollout", "-o", str(tmp_path / "g.png")]):
        code, out, err = cli(*argv)
        assert code == 0, err
