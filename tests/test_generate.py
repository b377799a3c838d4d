"""attn generate: the teacher-forced capture equals step-by-step generation, weight for weight; views and CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tiny import make_llama  # noqa: E402

PROMPT = "The cat sat on the mat"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A 2-layer Llama (RoPE, 4 query heads sharing 2 key/value heads) with a byte-level BPE tokenizer."""
    return make_llama(tmp_path_factory.mktemp("llama"))


def _step_by_step(folder, n_new: int):
    """Greedy generation one full forward per step on an eager copy: (prompt length, new ids, probs, rows per step).

    rows[t][layer] is the (heads, P + t) attention of the last position at the step that produced new token t.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    ids = AutoTokenizer.from_pretrained(folder)(PROMPT)["input_ids"]
    n_prompt, probs, rows = len(ids), [], []
    with torch.inference_mode():
        for _ in range(n_new):
            out = model(torch.tensor([ids]), output_attentions=True)
            p = out.logits[0, -1].float().softmax(-1)  # (vocab,)
            token = int(p.argmax())
            probs.append(float(p[token]))
            rows.append([a[0, :, -1].numpy() for a in out.attentions])  # per layer (heads, P + t)
            ids.append(token)
    return n_prompt, ids[n_prompt:], probs, rows


@pytest.mark.parametrize("which", ["gpt2", "llama"])
def test_generation_equals_step_by_step(which, tiny_gpt2, tiny_llama):
    """Every weight of every generation step, and every probability, within 1e-5 of step-by-step greedy decoding."""
    from attncli.capture import ALL
    from attncli.choices import Purpose
    from attncli.families.causal_lm import capture_generate
    from attncli.models import load_model

    folder = tiny_gpt2 if which == "gpt2" else tiny_llama
    loaded = load_model(str(folder), Purpose.generate)
    cap = capture_generate(PROMPT, loaded, ALL, max_new_tokens=6)
    n_prompt, new, probs, rows = _step_by_step(folder, len(cap.target_tokens))
    assert cap.prompt_tokens == n_prompt and cap.n_tokens == n_prompt + len(new)
    assert cap.target_text == loaded.processor.decode(new, skip_special_tokens=True)
    np.testing.assert_allclose(cap.target_scores, probs, atol=1e-5)
    for t, per_layer in enumerate(rows):
        for layer, row in enumerate(per_layer):
            got = cap.attentions[layer, :, n_prompt + t - 1]  # (heads, N): the step that produced new[t]
            np.testing.assert_allclose(got[:, : n_prompt + t], row, atol=1e-5)
            assert not got[:, n_prompt + t:].any()  # the tokens after it were not there yet


def test_beams_rescored_teacher_forced(tiny_gpt2):
    """--num-beams: the best beam's tokens, each scored by the model given the tokens before it."""
    from transformers import AutoModelForCausalLM

    from attncli.choices import Purpose
    from attncli.families.causal_lm import capture_generate
    from attncli.models import load_model

    loaded = load_model(str(tiny_gpt2), Purpose.generate)
    cap = capture_generate(PROMPT, loaded, max_new_tokens=4, num_beams=3)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    ids = loaded.processor(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        best = model.generate(ids, max_new_tokens=4, num_beams=3, do_sample=False, pad_token_id=0)[0]
        logits = model(best[None]).logits[0].softmax(-1)  # (N, vocab)
    new = best[ids.shape[-1]:].tolist()
    assert cap.decoding["num_beams"] == 3 and cap.target_text == loaded.processor.decode(new)
    want = [float(logits[ids.shape[-1] + t - 1, tok]) for t, tok in enumerate(new)]
    np.testing.assert_allclose(cap.target_scores, want, atol=1e-5)


def test_generate_cli_outputs(cli, tiny_gpt2, tmp_path):
    """JSON rows sum to 1 over what each step saw; a figure and a page are written; the last capture re-renders."""
    code, out, err = cli("generate", PROMPT, "--model", str(tiny_gpt2), "--max-new-tokens", "3", "--json",
                         "-o", str(tmp_path / "g.png"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "attncli.generate/1" and doc["layer"] == 1
    tokens = doc["generated"]["tokens"]
    assert len(tokens) == 3 and [t["index"] for t in tokens] == [len(doc["prompt"]["tokens"]) + t for t in range(3)]
    assert [len(r) for r in doc["weights"]] == [len(doc["prompt"]["tokens"]) + t for t in range(3)]
    assert all(abs(sum(r) - 1) < 1e-4 for r in doc["weights"])
    assert (tmp_path / "g.png").stat().st_size > 0
    from attncli.store import last_capture_path, load_capture

    n_prompt = len(doc["prompt"]["tokens"])
    kept = load_capture(last_capture_path())  # a small capture keeps everything: any later view works on it
    assert kept.complete and kept.attentions.shape == (2, 2, n_prompt + 3, n_prompt + 3)
    code, again, err = cli("generate", "--last", "--json")
    assert code == 0 and json.loads(again)["weights"] == doc["weights"], err
    code, _, err = cli("generate", "--last", "--head", "1")
    assert code == 0, err
    code, _, err = cli("heatmap", "--terminal", "--layer", "0")
    assert code == 0, err


def test_generate_over_the_budget_keeps_the_views_rows(cli, tiny_gpt2, monkeypatch, tmp_path):
    """Over the capture budget only the view's rows are kept (one per generated token, heads fused), and said."""
    from attncli.store import last_capture_path, load_capture

    monkeypatch.setenv("ATTN_CAPTURE_BUDGET_MB", "0")
    code, out, err = cli("generate", PROMPT, "--model", str(tiny_gpt2), "--max-new-tokens", "3", "--json")
    assert code == 0, err
    assert "ATTN_CAPTURE_BUDGET_MB=" in err and "generate" in err
    doc = json.loads(out)
    kept = load_capture(last_capture_path())
    n_prompt = len(doc["prompt"]["tokens"])
    assert kept.query_ids == [n_prompt - 1 + t for t in range(3)] and kept.fused_heads == "mean"
    assert kept.attentions.shape == (1, 1, 3, n_prompt + 3)
    code, again, err = cli("generate", "--last", "--json")
    assert code == 0 and json.loads(again)["weights"] == doc["weights"], err
    code, _, err = cli("generate", "--last", "--head", "1")
    assert code == 2 and "kept only the mean of its 2 heads" in err and "--head 1" in err
    code, _, err = cli("heatmap", "--terminal")  # the matrix needs every row
    assert code == 2 and "--layers all" in " ".join(err.split())
    code, out, err = cli("generate", PROMPT, "--model", str(tiny_gpt2), "--max-new-tokens", "3", "--head", "1",
                         "-o", str(tmp_path / "g.html"))  # a page keeps everything
    assert code == 0, err
    assert "head 1" in out and "on prompt" in out and (tmp_path / "g.html").stat().st_size > 0
    code, out, err = cli("heatmap", "--json")  # a generation capture is a text capture too
    assert code == 0, err
    assert json.loads(out)["layer"] == 1
    code, _, err = cli("generate", PROMPT, "--model", str(tiny_gpt2), "--max-new-tokens", "3", "--heads", "all")
    assert code == 0, err
    code, _, err = cli("generate", "--last", "--layer", "0")
    assert code == 2 and "kept layer 1" in err and "--layers 0" in err


def test_generate_refuses_other_captures(cli, tiny_bert):
    """A capture made by explain has no generated tokens: the error names the command that makes one."""
    assert cli("explain", "the cat", "--model", str(tiny_bert))[0] == 0
    code, _, err = cli("generate", "--last")
    assert code == 2 and "not made by attn generate" in err  # another command or --last fixes it


def test_split_over_cpu_and_disk_equals_unsplit(tiny_gpt2, tmp_path):
    """device_map with a CPU budget too small for the model: part of it offloaded to disk, the same capture."""
    from attncli.capture import ALL
    from attncli.choices import Purpose
    from attncli.families.causal_lm import capture_generate
    from attncli.families.text_capture import capture_text
    from attncli.models import load_model

    whole = load_model(str(tiny_gpt2), Purpose.generate)
    split = load_model(str(tiny_gpt2), Purpose.generate, device_map="auto", max_memory={"cpu": "40KB"},
                       offload_folder=tmp_path / "offload")
    assert {"cpu", "disk"} <= set(split.model.hf_device_map.values()) and split.device == "cpu"
    assert load_model(str(tiny_gpt2), Purpose.generate, dtype="bfloat16").model.dtype == torch.bfloat16
    for run in (lambda m: capture_text(PROMPT, m, ALL), lambda m: capture_generate(PROMPT, m, max_new_tokens=4)):
        want, got = run(whole), run(split)
        assert got.tokens == want.tokens and got.attentions.dtype == np.float32
        np.testing.assert_allclose(got.attentions, want.attentions, atol=1e-6)
        np.testing.assert_allclose(got.target_scores, want.target_scores, atol=1e-6)


def test_torch_dtype_and_device_map_options(cli, tiny_gpt2):
    """--torch-dtype loads in bfloat16 (weights still stored float32, rows summing to 1); --device-map auto runs."""
    code, out, err = cli("explain", PROMPT, "--model", str(tiny_gpt2), "--torch-dtype", "bfloat16", "--json",
                         "--device-map", "auto")
    assert code == 0, err
    rows = json.loads(out)["weights"]
    assert all(abs(sum(r) - 1) < 2e-2 for r in rows)
    code, _, err = cli("explain", PROMPT, "--model", str(tiny_gpt2), "--device-map", "auto", "--device", "cuda")
    assert code in (1, 2) and ("cuda" in err)


def test_progress_reports_loading_and_each_layer(tiny_gpt2):
    """resolve() tells its callback what it is doing: the model loading, then every layer of the forward."""
    from attncli import sources
    from attncli.choices import Purpose

    heard = []
    request = sources.Request(value=PROMPT, model=str(tiny_gpt2), purpose=Purpose.generate,
                              generation=sources.Generation(None, 2, 1))
    sources.resolve(request, lambda stage, done, total: heard.append((stage.split()[0], done, total)))
    assert heard[:2] == [("loading", None, None), ("generating", None, None)]
    assert heard[2:] == [("forward", 1, 2), ("forward", 2, 2)]


def test_stages_draw_only_on_a_terminal(monkeypatch):
    """The CLI's spinner is transient on a terminal and absent otherwise (the callback is then None)."""
    import io

    from rich.console import Console

    from attncli.cli import common

    with common.stages() as report:
        assert report is None  # pytest's stderr is no terminal
    screen = io.StringIO()
    monkeypatch.setattr(common, "err", lambda: Console(file=screen, force_terminal=True, width=80))
    with common.stages() as report:
        report("forward over 9 tokens", 1, 2)
    assert "forward over 9 tokens" in screen.getvalue() and screen.getvalue().endswith("\x1b[2K")  # erased


def test_a_text_capture_of_a_causal_lm_computes_one_position_of_logits(tiny_gpt2, tiny_bert, monkeypatch):
    """explain never reads logits: a causal LM is asked for the last position's only (not tokens × vocabulary)."""
    from attncli.choices import Purpose
    from attncli.families import selective, text_capture
    from attncli.models import load_model

    seen = {}
    real = selective.capture_selected

    def spy(model, inputs, selection, *args, **call):
        weights, kept, output = real(model, inputs, selection, *args, **call)
        call.pop("progress", None)
        seen[type(model).__name__] = (call, tuple(getattr(output, "logits", output[0]).shape))
        return weights, kept, output

    monkeypatch.setattr(selective, "capture_selected", spy)
    for folder in (tiny_gpt2, tiny_bert):
        text_capture.capture_text(PROMPT, load_model(str(folder), Purpose.text))
    (gpt2_call, gpt2_shape), = [v for k, v in seen.items() if "GPT2" in k]
    assert gpt2_call == {"logits_to_keep": 1} and gpt2_shape[1] == 1
    assert [v[0] for k, v in seen.items() if "GPT2" not in k] == [{}]  # an encoder takes no such argument
