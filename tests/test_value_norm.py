"""value-norm (Kobayashi et al. 2020) against a direct computation written out by hand on tiny models.

The hand computation takes the model's own weights: the layer's input x (the hidden state, after the pre-attention
norm where the block has one), v = x W_V + b_V cut into heads, f_h(x_j) = v_h(x_j) W_O^h with W_O^h the head's
columns of the output projection (its bias left out), and α from transformers' eager attention
(``output_attentions=True``); then ‖α^h_ij f_h(x_j)‖ per head and ‖Σ_h α^h_ij f_h(x_j)‖ for the heads fused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attncli.capture import Capture, Selection
from attncli.choices import Purpose
from attncli.methods.dispatch import method_rows

TEXT = "the cat sat on the mat because it was tired"
TOL = {"rtol": 1e-6, "atol": 1e-6}  # float32 end to end


def norms(alpha: torch.Tensor, f: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per head (H, N, N) ‖α^h_ij f_h(x_j)‖ and fused (N, N) ‖Σ_h α^h_ij f_h(x_j)‖; alpha (H, N, N), f (N, H, D)."""
    moved = alpha[:, :, :, None] * f.permute(1, 0, 2)[:, None]  # (H, N_i, N_j, D): what head h moves from j to i
    return torch.linalg.norm(moved, dim=-1).numpy(), torch.linalg.norm(moved.sum(0), dim=-1).numpy()


def transformed(v: torch.Tensor, w_o: torch.Tensor, heads: int) -> torch.Tensor:
    """f_h(x_j) (N, H, D) from value vectors v (N, H*d) and a Linear's W_O (D, H*d): head h's columns."""
    n, d = v.shape[0], v.shape[1] // heads
    return torch.einsum("jhd,ohd->jho", v.reshape(n, heads, d), w_o.reshape(w_o.shape[0], heads, d))


def captured(folder, purpose: Purpose, value) -> Capture:
    """attncli's capture of the value vectors (selective attention, every layer kept)."""
    from attncli.sources import load

    loaded = load(str(folder), purpose)
    selection = Selection(extras=("value_gram",))
    if purpose is Purpose.text:
        from attncli.families.text_capture import capture_text

        return capture_text(value, loaded, selection)
    from attncli.families.vit import capture_image

    return capture_image(value, loaded, selection=selection)


def check(capture: Capture, expected: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Every layer's per-head and fused value-norm rows equal the hand computation."""
    assert capture.extras["value_gram"].shape == (capture.n_layers, capture.n_tokens, capture.n_heads,
                                                  capture.n_heads)
    for layer, (per_head, fused) in enumerate(expected):
        for h in range(capture.n_heads):
            got = method_rows(capture.attentions, "value-norm", layer, head=h, extras=capture.extras)
            np.testing.assert_allclose(got, per_head[h], **TOL)
        np.testing.assert_allclose(method_rows(capture.attentions, "value-norm", layer, extras=capture.extras),
                                   fused, **TOL)


@torch.inference_mode()
def test_bert_value_norm_is_the_hand_computation(tmp_path):
    from tiny import make_bert
    from transformers import AutoTokenizer, BertModel

    folder = make_bert(tmp_path / "bert", heads=4)
    capture = captured(folder, Purpose.text, TEXT)
    model = BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    enc = AutoTokenizer.from_pretrained(folder)(TEXT, return_tensors="pt")
    out = model(**enc, output_attentions=True, output_hidden_states=True)
    assert enc["input_ids"].shape[1] == capture.n_tokens
    expected = []
    for layer, block in enumerate(model.encoder.layer):
        x = out.hidden_states[layer][0]  # (N, D): BERT's attention reads the hidden state itself (post-norm)
        v = x @ block.attention.self.value.weight.T + block.attention.self.value.bias  # (N, H*d)
        f = transformed(v, block.attention.output.dense.weight, 4)  # BertSelfOutput.dense is W_O
        expected.append(norms(out.attentions[layer][0], f))
    check(capture, expected)


@torch.inference_mode()
def test_vit_value_norm_is_the_hand_computation(tmp_path):
    from PIL import Image
    from tiny_vision import make_vit, photo
    from transformers import ViTModel

    from attncli.families.vit import preprocess
    from attncli.sources import load

    folder = make_vit(tmp_path / "vit", heads=4, hidden=16)
    image = photo(tmp_path / "p.png")
    capture = captured(folder, Purpose.image, image)
    loaded = load(str(folder), Purpose.image)
    pixels = preprocess([Image.open(image).convert("RGB")], loaded.processor, loaded.config).pixel_values
    model = ViTModel.from_pretrained(folder, attn_implementation="eager", add_pooling_layer=False).eval()
    out = model(pixel_values=pixels, output_attentions=True, output_hidden_states=True)
    expected = []
    for layer, block in enumerate(model.layers):
        x = block.layernorm_before(out.hidden_states[layer][0])  # (N, D): pre-norm block
        v = x @ block.attention.v_proj.weight.T + block.attention.v_proj.bias
        f = transformed(v, block.attention.o_proj.weight, 4)
        expected.append(norms(out.attentions[layer][0], f))
    check(capture, expected)


@torch.inference_mode()
def test_gpt2_value_norm_uses_the_conv1d_projection_transposed(tiny_gpt2):
    from transformers import AutoTokenizer, GPT2Model

    capture = captured(tiny_gpt2, Purpose.text, TEXT)
    model = GPT2Model.from_pretrained(tiny_gpt2, attn_implementation="eager").eval()
    enc = AutoTokenizer.from_pretrained(tiny_gpt2)(TEXT, return_tensors="pt")
    if enc["input_ids"].shape[1] != capture.n_tokens:  # attncli puts the BOS token first
        enc = {"input_ids": torch.cat([torch.zeros(1, 1, dtype=torch.long), enc["input_ids"]], dim=1)}
    out = model(**enc, output_attentions=True, output_hidden_states=True)
    expected = []
    width = model.config.n_embd
    for layer, block in enumerate(model.h):
        x = block.ln_1(out.hidden_states[layer][0])
        v = x @ block.attn.c_attn.weight[:, 2 * width:] + block.attn.c_attn.bias[2 * width:]  # Conv1D: (in, out)
        f = transformed(v, block.attn.c_proj.weight.T, model.config.n_head)  # c_proj.weight is (in, out)
        expected.append(norms(out.attentions[layer][0], f))
    check(capture, expected)


@torch.inference_mode()
def test_llama_value_norm_repeats_the_grouped_value_heads(tmp_path):
    from tiny import make_llama
    from transformers import AutoTokenizer, LlamaModel

    folder = make_llama(tmp_path / "llama")  # 4 heads, 2 KV heads
    capture = captured(folder, Purpose.text, TEXT)
    model = LlamaModel.from_pretrained(folder, attn_implementation="eager").eval()
    enc = AutoTokenizer.from_pretrained(folder)(TEXT, return_tensors="pt")
    if enc["input_ids"].shape[1] != capture.n_tokens:
        enc = {"input_ids": torch.cat([torch.zeros(1, 1, dtype=torch.long), enc["input_ids"]], dim=1)}
    out = model(**enc, output_attentions=True, output_hidden_states=True)
    expected = []
    for layer, block in enumerate(model.layers):
        x = block.input_layernorm(out.hidden_states[layer][0])
        v = block.self_attn.v_proj(x)  # (N, KV*d)
        n, kv, heads = v.shape[0], 2, 4
        v = v.reshape(n, kv, -1).repeat_interleave(heads // kv, dim=1).reshape(n, -1)  # as repeat_kv
        f = transformed(v, block.self_attn.o_proj.weight, heads)
        expected.append(norms(out.attentions[layer][0], f))
    check(capture, expected)


def test_value_norm_of_one_row_is_that_row_of_the_matrix():
    rng = np.random.default_rng(0)
    att = rng.random((2, 3, 5, 5)).astype(np.float32)
    att /= att.sum(-1, keepdims=True)
    f = rng.normal(size=(2, 5, 3, 4))  # (L, K, H, D)
    extras = {"value_gram": np.einsum("lkhd,lkgd->lkhg", f, f).astype(np.float32)}
    whole = method_rows(att, "value-norm", 1, extras=extras)
    np.testing.assert_allclose(method_rows(att, "value-norm", 1, queries=[3], extras=extras), whole[[3]])
    hand = np.linalg.norm(np.einsum("hij,jhd->ijd", att[1], f[1]), axis=-1)
    np.testing.assert_allclose(whole, hand, rtol=1e-5)


def toy_capture() -> Capture:
    """3 tokens, 1 layer, 2 heads; f_h(x_j) chosen so every norm is worked out by hand below."""
    att = np.array([[[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.25, 0.25]],
                     [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]]]], dtype=np.float32)  # (1, 2, 3, 3)
    f = np.array([[[0.2, 0.0], [0.0, 0.0]],  # token 0: head 0 moves (0.2, 0), head 1 nothing
                  [[3.0, 0.0], [0.0, 4.0]],  # token 1: orthogonal vectors of norm 3 and 4
                  [[1.0, 0.0], [1.0, 0.0]]])  # token 2: the same vector in both heads
    gram = np.einsum("khd,kgd->khg", f, f)[None].astype(np.float32)  # (1, K, H, H)
    return Capture(attentions=att, tokens=["[CLS]", "a", "b"], special=[True, False, False], model_id="toy",
                   extras={"value_gram": gram})


def test_toy_value_norm_worked_by_hand():
    cap = toy_capture()
    fused = method_rows(cap.attentions, "value-norm", 0, extras=cap.extras)
    # row 1: 0.5·(0.2, 0) from [CLS]; 0.5·(3, 0) + 1·(0, 4) = (1.5, 4) from a → 4.272; nothing from b
    # row 2: 0.5·(0.2, 0); 0.25·(3, 0) + 0.5·(0, 4) = (0.75, 2) → 2.136; 0.25·(1, 0) + 0.5·(1, 0) → 0.75
    np.testing.assert_allclose(fused, [[0.2, 0, 0], [0.1, np.hypot(1.5, 4), 0], [0.1, np.hypot(0.75, 2), 0.75]],
                               rtol=1e-6)
    np.testing.assert_allclose(method_rows(cap.attentions, "value-norm", 0, head=1, extras=cap.extras),
                               [[0, 0, 0], [0, 4, 0], [0, 2, 0.5]], rtol=1e-6)


def test_terminal_matrix_of_value_norm_exactly():
    from rich.console import Console

    from attncli.choices import Format
    from attncli.render import render
    from attncli.views.common import MapSpec
    from attncli.views.explain import TokenMatrix, layer_matrix

    view = layer_matrix(toy_capture(), MapSpec(method="value-norm"), view=TokenMatrix)
    console = Console(record=True, width=80, color_system=None)
    console.print(render(view, Format.terminal, width=80), crop=False)
    assert console.export_text(styles=False) == EXPECTED_MATRIX


def test_explain_value_norm_json_end_to_end(cli, tiny_bert):
    from transformers import AutoTokenizer, BertModel

    code, out, err = cli("explain", TEXT, "--model", str(tiny_bert), "--method", "value-norm", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "value-norm" and doc["layer"] == 1 and doc["fuse"] == "mean"
    assert doc["title"].startswith("Layer 1 · value-norm ‖Σ_h α·f(x)‖ over 2 heads")
    assert "rows do not sum to 1" in doc["notes"][0]
    with torch.inference_mode():
        model = BertModel.from_pretrained(tiny_bert, attn_implementation="eager").eval()
        out = model(**AutoTokenizer.from_pretrained(tiny_bert)(TEXT, return_tensors="pt"), output_attentions=True,
                    output_hidden_states=True)
        block = model.encoder.layer[1]
        v = out.hidden_states[1][0] @ block.attention.self.value.weight.T + block.attention.self.value.bias
        _, fused = norms(out.attentions[1][0], transformed(v, block.attention.output.dense.weight, 2))
    np.testing.assert_allclose(doc["weights"], fused, atol=1e-6)  # JSON rounds to 6 decimals
    assert doc["top"][0]["attends"][0]["weight"] == round(float(fused[0].max()), 6)


def test_value_norm_refused_where_the_value_vectors_cannot_be_recorded(cli, tiny_bert, tmp_path):
    from attncli.capture import Capture
    from attncli.store import save_capture

    saved = save_capture(Capture(np.full((1, 1, 2, 2), 0.5, np.float32), ["a", "b"], [False, False], "toy"),
                         tmp_path / "old.npz")
    code, out, err = cli("heatmap", str(saved), "--method", "value-norm", "--terminal")
    assert code != 0 and out == "" and len(err.strip().splitlines()) == 1
    assert "again with --method value-norm added" in err
    code, out, err = cli("explain", TEXT, "--model", str(tiny_bert), "--method", "value-norm", "--fuse", "max")
    assert code == 2 and "--fuse max: value-norm combines the heads its own way" in err


EXPECTED_MATRIX = """\
Layer 0 · value-norm ‖Σ_h α·f(x)‖ over 2 heads · toy
rows: each column token's norm to the row token (rows do not sum to 1)
┏━━━━━━━━━━━━━┳━━━━━┳━━━┳━━━┓
┃query ↓ key →┃[CLS]┃  a┃  b┃
┡━━━━━━━━━━━━━╇━━━━━╇━━━╇━━━┩
│[CLS]        │  .20│.00│.00│
│a            │  .10│4.3│.00│
│b            │  .10│2.1│.75│
└─────────────┴─────┴───┴───┘
"""  # 4.272 and 2.136 (test_toy_value_norm_worked_by_hand) in three characters


@pytest.mark.slow  # a Chromium start: about a minute on the shared machine
def test_page_switches_to_value_norm_with_the_registry_words(tiny_bert, tmp_path):
    """The page offers value-norm from the view's method facts: its title words, no fusion choice, its rows exact."""
    import test_html_browser as hb

    if hb.chromium_path() is None:
        pytest.skip("no Chromium executable found")
    from playwright.sync_api import sync_playwright

    from attncli.render.html import write_html
    from attncli.views.interactive import interactive_view

    cap = captured(tiny_bert, Purpose.text, TEXT)
    view = interactive_view(cap, methods=("value-norm", "rollout"))
    assert view.methods == ["value-norm", "rollout", "attention"]
    want = method_rows(cap.attentions, "value-norm", 1, extras=cap.extras).astype(np.float64)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=hb.chromium_path(), args=hb.ARGS)
        page = hb.Page(browser, write_html(view, tmp_path / "vn.html"))
        st = page.status()
        assert st["method"] == "value-norm" and "layer 1 · value-norm ‖Σ_h α·f(x)‖ over 2 heads" in st["text"]
        assert page.page.is_disabled("#fuse")
        cat = cap.tokens.index("cat")
        page.page.click(f"#qcol li[data-index='{cat}']")
        hb.check_row(page, want[cat])
        browser.close()
