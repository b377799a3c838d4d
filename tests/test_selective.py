"""Selective capture (families.selective) equals eager attention, weight for weight, on every kind of model."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from attncli.capture import Selection  # noqa: E402
from attncli.families import selective  # noqa: E402

SELECTIONS = [Selection(budget=0), Selection(budget=0, layers=(1,)), Selection(budget=0, layers=(0, -1), heads=(1, 3), rows=(2, 5))]


def _configs():
    """(model class, config, input kind) of tiny models: BERT, GPT-2, Llama (RoPE, GQA), ViT, DeiT, T5, Marian."""
    t = transformers
    text = dict(vocab_size=50)
    vision = dict(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=3,
                  num_attention_heads=4, intermediate_size=64)
    return {
        "bert": (t.BertModel, t.BertConfig(**text, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                           intermediate_size=64), "text"),
        "gpt2": (t.GPT2LMHeadModel, t.GPT2Config(**text, n_embd=32, n_layer=3, n_head=4, bos_token_id=0,
                                                 eos_token_id=0), "text"),
        "llama-gqa": (t.LlamaForCausalLM, t.LlamaConfig(**text, hidden_size=32, num_hidden_layers=3,
                                                        num_attention_heads=4, num_key_value_heads=2,
                                                        intermediate_size=64), "text"),
        "gemma2-softcap": (t.Gemma2ForCausalLM, t.Gemma2Config(**text, hidden_size=32, num_hidden_layers=3,
                                                               num_attention_heads=4, num_key_value_heads=2,
                                                               head_dim=8, intermediate_size=64, sliding_window=4,
                                                               attn_logit_softcapping=0.5), "text"),
        "gpt-oss-sinks": (t.GptOssForCausalLM, t.GptOssConfig(**text, hidden_size=32, num_hidden_layers=3,
                                                              num_attention_heads=4, num_key_value_heads=2,
                                                              head_dim=8, intermediate_size=32, num_local_experts=2,
                                                              num_experts_per_tok=1, sliding_window=4), "text"),
        "mistral-window": (t.MistralForCausalLM, t.MistralConfig(**text, hidden_size=32, num_hidden_layers=3,
                                                                 num_attention_heads=4, num_key_value_heads=2,
                                                                 intermediate_size=64, sliding_window=3), "text"),
        "albert-shared": (t.AlbertModel, t.AlbertConfig(**text, embedding_size=16, hidden_size=32,
                                                         num_hidden_layers=3, num_attention_heads=4,
                                                         intermediate_size=64), "text"),
        "vit": (t.ViTModel, t.ViTConfig(**vision), "image"),
        "deit": (t.DeiTModel, t.DeiTConfig(**vision), "image"),
        "t5": (t.T5EncoderModel, t.T5Config(**text, d_model=32, d_kv=8, d_ff=64, num_layers=3, num_heads=4), "text"),
        "marian": (t.MarianMTModel, t.MarianConfig(**text, d_model=32, encoder_layers=3, decoder_layers=2,
                                                   encoder_attention_heads=4, decoder_attention_heads=4,
                                                   encoder_ffn_dim=64, decoder_ffn_dim=64, pad_token_id=0,
                                                   decoder_start_token_id=0), "seq2seq"),
    }


# Soft-capping, sinks, sliding windows and a shared layer: also in the default run through tests/test_matrix.py's
# sample (whole and partial captures through the commands); here every selection and chunking with -m slow.
SLOW = {"gemma2-softcap", "gpt-oss-sinks", "mistral-window", "albert-shared"}


@pytest.fixture(scope="module", params=[pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k
                                        for k in _configs()])
def pair(request):
    """(eager model, the same weights with selective attention, input kind)."""
    cls, config, kind = _configs()[request.param]
    torch.manual_seed(0)
    eager = cls._from_config(config, attn_implementation="eager").eval()
    with torch.no_grad():  # sinks start at zero: make them matter
        for name, weight in eager.named_parameters():
            if name.endswith(".sinks"):
                weight.normal_(0.0, 2.0)
    chosen = copy.deepcopy(eager)
    chosen.set_attn_implementation(selective.register())
    return eager, chosen, kind


def _same_outputs(got, want, inputs) -> None:
    """Model outputs equal eager's at every real position (a padded position's output is noise in any backend:
    with a sliding window its row may mask every key)."""
    real = inputs.get("attention_mask")
    keep = np.ones(got.shape[:2], bool) if real is None or got.shape[1] != real.shape[1] else real.numpy().astype(bool)
    np.testing.assert_allclose(got.numpy()[keep], want.numpy()[keep], atol=1e-5)


def _inputs(kind: str, padded: bool) -> dict:
    """A batch of two inputs; with ``padded`` the second text is 3 tokens shorter (padding mask)."""
    gen = torch.Generator().manual_seed(1)
    if kind == "image":
        return {"pixel_values": torch.randn(2, 3, 16, 16, generator=gen)}
    ids = torch.randint(3, 50, (2, 9), generator=gen)
    inputs = {"input_ids": ids}
    if padded:
        mask = torch.ones(2, 9, dtype=torch.long)
        mask[1, 6:] = 0
        inputs["attention_mask"] = mask
    if kind == "seq2seq":
        inputs["decoder_input_ids"] = ids[:, :4]
    return inputs


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("selection", SELECTIONS, ids=["all", "layer1", "subset"])
def test_selected_weights_equal_eager(pair, selection, padded):
    eager, chosen, kind = pair
    if kind == "image" and padded:
        pytest.skip("images have no padding")
    inputs = _inputs(kind, padded)
    with torch.inference_mode():
        out = eager(**inputs, output_attentions=True)
    every = out.encoder_attentions if kind == "seq2seq" else out.attentions
    ref = torch.stack(list(every), 1).float().numpy()  # (B, L, H, Q, K)
    weights, kept, got = selective.capture_selected(chosen, inputs, selection)
    want = ref[:, kept["layer_ids"]] if kept["layer_ids"] is not None else ref
    want = want[:, :, kept["head_ids"]] if kept["head_ids"] is not None else want
    want = want[:, :, :, kept["query_ids"]] if kept["query_ids"] is not None else want
    assert weights.shape == want.shape
    np.testing.assert_allclose(weights, want, atol=1e-5)
    first = "logits" if hasattr(out, "logits") else "last_hidden_state"
    _same_outputs(getattr(got, first), getattr(out, first), inputs)
    if selection.layers == (1,):
        assert kept["layer_ids"] == [1] and weights.shape[1] == 1


def test_only_the_asked_layers_materialise(pair):
    _, chosen, kind = pair
    with selective.Recorder(chosen, Selection(budget=0, layers=(2,)), 3, 4) as rec, torch.inference_mode():
        chosen(**_inputs(kind, False))
    assert list(rec.weights) == [2]


def test_outside_a_recorder_it_is_sdpa(pair):
    eager, chosen, kind = pair
    inputs = _inputs(kind, False)
    with torch.inference_mode():
        a, b = eager(**inputs), chosen(**inputs)
    first = "logits" if hasattr(a, "logits") else "last_hidden_state"
    np.testing.assert_allclose(getattr(a, first).numpy(), getattr(b, first).numpy(), atol=1e-5)


FUSED = {"mean": lambda w: w.mean(axis=2, keepdims=True), "max": lambda w: w.max(axis=2, keepdims=True)}


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("how", [None, "mean", "max"])
def test_row_chunks_and_fused_heads_equal_eager(pair, how, padded, monkeypatch):
    """One query row per chunk (as on a long prompt) and heads fused while capturing: still eager's weights."""
    from attncli.choices import Fuse

    eager, chosen, kind = pair
    if kind == "image" and padded:
        pytest.skip("images have no padding")
    monkeypatch.setattr(selective, "CHUNK_BYTES", 1)
    inputs = _inputs(kind, padded)
    with torch.inference_mode():
        out = eager(**inputs, output_attentions=True)
    every = out.encoder_attentions if kind == "seq2seq" else out.attentions
    ref = torch.stack(list(every), 1).float().numpy()[:, [0, 2]]  # (B, 2, H, Q, K)
    selection = Selection(budget=0, layers=(0, 2), fuse=None if how is None else Fuse(how))
    weights, kept, got = selective.capture_selected(chosen, inputs, selection)
    want = ref if how is None else FUSED[how](ref)
    assert weights.shape == want.shape and kept["fused_heads"] == how
    np.testing.assert_allclose(weights, want, atol=1e-5)
    first = "logits" if hasattr(out, "logits") else "last_hidden_state"
    _same_outputs(getattr(got, first), getattr(out, first), inputs)
    rows, _, _ = selective.capture_selected(chosen, inputs, Selection(budget=0, layers=(2,), rows=(1, 4, 8)))
    np.testing.assert_allclose(rows, ref[:, 1:, :, [1, 4, 8]], atol=1e-5)


def test_a_capture_larger_than_free_memory_is_refused_before_the_forward(pair, monkeypatch):
    import psutil

    from attncli.errors import CaptureError

    _, chosen, kind = pair
    if kind == "image":
        pytest.skip("image captures are not checked: their size is fixed by the model")

    class Tight:
        available = 4 * 2 * 3 * 4 * 9 * 9  # bytes of every layer and head of the batch: 0.9 of it is too little
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tight)
    calls = []
    monkeypatch.setattr(selective, "Recorder", lambda *a, **k: calls.append(a))
    with pytest.raises(CaptureError, match=r"3 layers × 4 heads over 9 tokens needs 0 MB.*--token"):
        selective.capture_selected(chosen, _inputs(kind, False), Selection(budget=0))
    assert calls == []  # refused before any forward
    selective.check_memory({"input_ids": torch.ones(2, 9)}, 1, 4, None)  # one layer fits: no error
