"""Rollout, attention flow and gradient rollout: hand-worked examples and invariants."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attncli.errors import NotSupportedError, UsageError
from attncli.methods.flow import attention_flow
from attncli.methods.gradients import attention_gradients, gradient_rollout, resolve_target
from attncli.methods.rollout import discard_lowest, rollout, rollout_layers


def stochastic(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Random attention whose rows sum to 1, float32."""
    a = rng.random(shape) ** 3
    return (a / a.sum(axis=-1, keepdims=True)).astype(np.float32)


# Two one-head layers over 3 tokens, worked by hand:
#   A0 = [[1,0,0],[1,0,0],[0,1,0]]  ->  Ã0 = (A0 + I)/2 = [[1,0,0],[.5,.5,0],[0,.5,.5]]
#   A1 = [[0,0,1],[0,1,0],[1,0,0]]  ->  Ã1 = [[.5,0,.5],[0,1,0],[.5,0,.5]]
#   rollout = Ã1 · Ã0:  row 0 = .5·[1,0,0] + .5·[0,.5,.5] = [.5,.25,.25]; row 1 = [.5,.5,0]; row 2 = row 0
A0 = [[1, 0, 0], [1, 0, 0], [0, 1, 0]]
A1 = [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
HAND = [[0.5, 0.25, 0.25], [0.5, 0.5, 0.0], [0.5, 0.25, 0.25]]
# the other order, Ã0 · Ã1: row 0 = [.5,0,.5]; row 1 = .5·[.5,0,.5] + .5·[0,1,0]; row 2 = .5·[0,1,0] + .5·[.5,0,.5]
HAND_REVERSED = [[0.5, 0.0, 0.5], [0.25, 0.5, 0.25], [0.25, 0.5, 0.25]]


def hand_attention() -> np.ndarray:
    return np.array([[A0], [A1]], dtype=np.float32)  # (layers 2, heads 1, 3, 3)


def test_rollout_hand_worked_three_tokens():
    np.testing.assert_allclose(rollout(hand_attention()), HAND, atol=1e-7)
    # up to the first layer only: just Ã0
    np.testing.assert_allclose(rollout(hand_attention(), layer=0), [[1, 0, 0], [.5, .5, 0], [0, .5, .5]], atol=1e-7)


def test_rollout_layer_order_matters():
    reversed_layers = hand_attention()[::-1].copy()
    np.testing.assert_allclose(rollout(reversed_layers), HAND_REVERSED, atol=1e-7)
    assert not np.allclose(HAND, HAND_REVERSED)


def test_rollout_identity_attention_gives_identity():
    eye = np.broadcast_to(np.eye(5, dtype=np.float32), (4, 3, 5, 5)).copy()
    for fuse in ("mean", "max", "min"):
        np.testing.assert_allclose(rollout(eye, fuse=fuse), np.eye(5), atol=1e-7)


def test_rollout_rows_sum_to_one_for_every_fusion_and_discard():
    att = stochastic(np.random.default_rng(0), 6, 4, 9, 9)
    for fuse in ("mean", "max", "min"):
        for ratio in (0.0, 0.5, 0.9):
            per_layer = rollout_layers(att, fuse=fuse, discard_ratio=ratio)
            assert per_layer.shape == (6, 9, 9)
            np.testing.assert_allclose(per_layer.sum(axis=-1), 1.0, atol=1e-5)


def test_rollout_head_fusion_mean_is_the_mean_of_heads():
    # Heads [[1,0],[0,1]] and [[0,1],[1,0]] average to all 0.5; Ã = (A + I)/2 = [[.75,.25],[.25,.75]].
    att = np.array([[[[1, 0], [0, 1]], [[0, 1], [1, 0]]]], dtype=np.float32)
    np.testing.assert_allclose(rollout(att, fuse="mean"), [[0.75, 0.25], [0.25, 0.75]], atol=1e-7)
    # max fuses to all ones: (1 + 1)/2 on the diagonal, 1/2 off it, rows renormalised -> [2/3, 1/3]
    np.testing.assert_allclose(rollout(att, fuse="max"), [[2 / 3, 1 / 3], [1 / 3, 2 / 3]], atol=1e-6)


def test_discard_ratio_zero_equals_plain_rollout():
    att = stochastic(np.random.default_rng(1), 4, 3, 7, 7)
    np.testing.assert_array_equal(rollout(att, discard_ratio=0.0), rollout(att))
    assert not np.allclose(rollout(att, discard_ratio=0.8), rollout(att))


def test_discard_lowest_never_touches_the_cls_column():
    fused = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1], [0.2, 0.5, 0.3]])
    # candidates (columns 1-2, row-major): .2 .7 .3 .1 .5 .3; half of 6 = 3 lowest: .1, .2, then the first .3
    expected = [[0.1, 0.0, 0.7], [0.6, 0.0, 0.0], [0.2, 0.5, 0.3]]
    np.testing.assert_allclose(discard_lowest(fused, 0.5), expected)
    # vit-explain would also have dropped [0, 0] = 0.1, the lowest entry overall; the CLS column survives here
    with pytest.raises(UsageError):
        discard_lowest(fused, 1.0)


# Flow on two tokens and two layers, by hand. With A0 = [[0,1],[0,1]] and A1 = [[0,1],[1,0]]:
#   Ã0 = [[.5,.5],[0,1]], Ã1 = [[.5,.5],[.5,.5]].
# From output token 0 (level 2): to input 0 only via (1,0)->(0,0): 0.5; to input 1 via (1,0) 0.5 and (1,1) 0.5: 1.0.
# Normalised: [1/3, 2/3]. Rollout gives [.25, .75] for the same row: flow is not rollout.
def test_flow_hand_worked_two_layers():
    att = np.array([[[[0, 1], [0, 1]]], [[[0, 1], [1, 0]]]], dtype=np.float32)
    flow = attention_flow(att)
    np.testing.assert_allclose(flow, [[1 / 3, 2 / 3], [1 / 3, 2 / 3]], atol=1e-7)
    np.testing.assert_allclose(rollout(att)[0], [0.25, 0.75], atol=1e-7)


def test_flow_one_layer_equals_rollout_and_rows_sum_to_one():
    att = stochastic(np.random.default_rng(2), 1, 2, 6, 6)
    np.testing.assert_allclose(attention_flow(att), rollout(att), atol=1e-6)
    deep = stochastic(np.random.default_rng(3), 3, 2, 6, 6)
    np.testing.assert_allclose(attention_flow(deep).sum(axis=-1), 1.0, atol=1e-6)


def test_flow_matches_networkx_on_float_capacities():
    import networkx as nx

    att = stochastic(np.random.default_rng(4), 3, 2, 5, 5)
    fused = att.mean(axis=1).astype(np.float64)
    steps = [(m + np.eye(5)) / 2 for m in fused]
    steps = [s / s.sum(axis=-1, keepdims=True) for s in steps]
    graph = nx.DiGraph()
    for layer, step in enumerate(steps):
        for i in range(5):
            for j in range(5):
                graph.add_edge((layer + 1, i), (layer, j), capacity=float(step[i, j]))
    query = 2
    values = np.array([nx.maximum_flow_value(graph, (3, query), (0, j)) for j in range(5)])
    np.testing.assert_allclose(attention_flow(att, queries=[query])[0], values / values.sum(), atol=1e-6)


def test_flow_refuses_above_the_size_limit():
    att = stochastic(np.random.default_rng(5), 2, 1, 8, 8)
    with pytest.raises(NotSupportedError, match="too large"):
        attention_flow(att, max_work=100)


# Gradient rollout formula by hand: one layer, one head over 2 tokens.
#   A = [[.5,.5],[.25,.75]], ∇A = [[2,-2],[0,4]] -> (∇A ⊙ A)⁺ = [[1,0],[0,3]]; R = I + Ā·I = [[2,0],[0,4]].
def test_gradient_rollout_hand_worked():
    att = np.array([[[[0.5, 0.5], [0.25, 0.75]]]], dtype=np.float32)
    grad = np.array([[[[2, -2], [0, 4]]]], dtype=np.float32)
    np.testing.assert_allclose(gradient_rollout(att, grad), [[2, 0], [0, 4]])
    # two layers: R1 = R0 + Ā·R0 = [[2,0],[0,4]] + [[1,0],[0,3]]·[[2,0],[0,4]] = [[4,0],[0,16]]
    np.testing.assert_allclose(gradient_rollout(np.concatenate([att, att]), np.concatenate([grad, grad])),
                               [[4, 0], [0, 16]])


def tiny_vit():
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32, num_labels=3, id2label={0: "circle", 1: "square", 2: "star"},
                       label2id={"circle": 0, "square": 1, "star": 2})
    config._attn_implementation = "eager"
    return ViTForImageClassification(config).eval()


def manual_vit_gradients(model, pixels, target):
    """Independent forward of the tiny ViT written out by hand; a zero tensor added to each softmax output
    makes d(logit)/d(attention) the gradient with respect to that zero tensor."""
    import torch

    vit, heads = model.vit, model.config.num_attention_heads
    x = vit.embeddings(pixels)  # (1, N, D)
    n, d = x.shape[1], x.shape[2] // heads
    probes, probs = [], []
    for layer in vit.layers:
        h = layer.layernorm_before(x)
        q, k, v = (proj(h).view(1, n, heads, d).transpose(1, 2) for proj in
                   (layer.attention.q_proj, layer.attention.k_proj, layer.attention.v_proj))
        p = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)  # (1, H, N, N)
        probe = torch.zeros_like(p, requires_grad=True)
        probes.append(probe)
        probs.append(p.detach())
        ctx = ((p + probe) @ v).transpose(1, 2).reshape(1, n, heads * d)
        x = x + layer.attention.o_proj(ctx)
        x = x + layer.mlp(layer.layernorm_after(x))
    logits = model.classifier(vit.layernorm(x)[:, 0])
    grads = torch.autograd.grad(logits[0, target], probes)
    return (logits.detach()[0].numpy(), torch.stack(probs)[:, 0].numpy(), torch.stack(grads)[:, 0].numpy())


def test_attention_gradients_match_a_direct_autograd_computation_vit():
    import torch

    model = tiny_vit()
    pixels = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    for target in (None, "star", 0):
        got = attention_gradients(model, {"pixel_values": pixels}, target)[0]
        want_index = resolve_target(target, ["circle", "square", "star"], got.logits)
        logits, probs, grads = manual_vit_gradients(model, pixels, want_index)
        assert got.target == want_index
        np.testing.assert_allclose(got.logits, logits, atol=1e-5)
        np.testing.assert_allclose(got.attentions, probs, atol=1e-6)
        np.testing.assert_allclose(got.gradients, grads, atol=1e-6, rtol=1e-4)
        assert got.attentions.shape == got.gradients.shape == (2, 2, 5, 5)
    assert got.label == "circle"


def test_attention_gradients_batch_items_are_independent():
    import torch

    model = tiny_vit()
    pixels = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    batch = attention_gradients(model, {"pixel_values": pixels}, [0, 1, 2])
    for b in range(3):
        one = attention_gradients(model, {"pixel_values": pixels[b:b + 1]}, b)[0]
        np.testing.assert_allclose(batch[b].gradients, one.gradients, atol=1e-6)


def manual_bert(bert, ids):
    """A tiny BERT's encoder written out by hand (2 heads of 8), with a zero probe added to each softmax output:
    the gradient of a logit with respect to a probe is its gradient with respect to that attention map."""
    import torch

    heads, d, n = 2, 8, ids.shape[1]
    x = bert.embeddings(input_ids=ids)
    probes = []
    for layer in bert.encoder.layer:
        att = layer.attention.self
        q, k, v = (proj(x).view(1, n, heads, d).transpose(1, 2) for proj in (att.query, att.key, att.value))
        probe = torch.zeros(1, heads, n, n, requires_grad=True)
        probes.append(probe)
        ctx = ((torch.softmax(q @ k.transpose(-1, -2) / d**0.5, -1) + probe) @ v).transpose(1, 2).reshape(1, n, 16)
        x = layer.attention.output.LayerNorm(layer.attention.output.dense(ctx) + x)
        x = layer.output.LayerNorm(layer.output.dense(layer.intermediate(x)) + x)
    return x, probes


def test_attention_gradients_text_classifier_matches_direct_autograd():
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, num_labels=2, id2label={0: "neg", 1: "pos"},
                        label2id={"neg": 0, "pos": 1})
    config._attn_implementation = "eager"
    model = BertForSequenceClassification(config).eval()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    got = attention_gradients(model, {"input_ids": ids}, "pos")[0]
    assert (got.target, got.label) == (1, "pos")

    x, probes = manual_bert(model.bert, ids)
    logit = model.classifier(model.bert.pooler(x))[0, 1]
    want = torch.stack(torch.autograd.grad(logit, probes))[:, 0].numpy()
    np.testing.assert_allclose(got.gradients, want, atol=1e-6, rtol=1e-4)
    relevance = gradient_rollout(got.attentions, got.gradients)
    assert relevance.shape == (5, 5) and np.all(relevance >= 0) and np.all(np.diag(relevance) >= 1)


def test_attention_gradients_refuses_a_model_without_classes():
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=0)
    config._attn_implementation = "eager"
    import torch

    with pytest.raises(NotSupportedError, match="classifier"):
        attention_gradients(BertModel(config).eval(), {"input_ids": torch.tensor([[2, 3]])})


def test_resolve_target_by_label_index_and_prediction():
    logits = np.array([0.1, 2.0, -1.0])
    labels = ["cat", "dog", "Dog house"]
    assert resolve_target(None, labels, logits) == 1
    assert resolve_target("CAT", labels, logits) == 0
    assert resolve_target("-1", labels, logits) == 2
    with pytest.raises(UsageError, match="0:cat"):
        resolve_target("bird", labels, logits)
    with pytest.raises(UsageError, match="out of range"):
        resolve_target(7, labels, logits)


def tiny_token_classifier():
    """A 2-layer BertForTokenClassification with three tags (eager attention)."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(1)
    tags = {0: "O", 1: "B-PER", 2: "I-PER"}
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, num_labels=3, id2label=tags, label2id={v: k for k, v in tags.items()})
    config._attn_implementation = "eager"
    return BertForTokenClassification(config).eval()


def test_attention_gradients_token_classifier_matches_direct_autograd():
    import torch

    model = tiny_token_classifier()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    got = attention_gradients(model, {"input_ids": ids}, "B-PER", position=2)[0]
    assert (got.target, got.label) == (1, "B-PER") and got.logits.shape == (3,)

    x, probes = manual_bert(model.bert, ids)
    logit = model.classifier(x)[0, 2, 1]  # token 2's B-PER logit
    want = torch.stack(torch.autograd.grad(logit, probes))[:, 0].numpy()
    np.testing.assert_allclose(got.gradients, want, atol=1e-6, rtol=1e-4)
    default = attention_gradients(model, {"input_ids": ids}, None, position=2)[0]
    assert default.target == int(np.argmax(default.logits))  # default: the token's predicted tag
    with pytest.raises(UsageError, match="tags every token"):
        attention_gradients(model, {"input_ids": ids})


def test_cli_grad_rollout_explains_one_tokens_tag(cli, tmp_path):
    from transformers import BertTokenizer

    from tiny import WORDS

    model = tiny_token_classifier()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS][:30]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    model.save_pretrained(tmp_path)
    BertTokenizer(vocab=str(tmp_path / "vocab.txt"), model_max_length=32).save_pretrained(tmp_path)
    code, out, err = cli("explain", "the cat sat on the mat", "--model", str(tmp_path), "--method", "grad-rollout",
                         "--token", "cat", "--target", "B-PER", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["method"] == "grad-rollout" and doc["token"]["text"] == "cat"
    assert 'for B-PER (the tag of "cat")' in doc["title"]
    assert len(doc["layers"]) == 2 and all(min(layer["weights"]) >= 0 for layer in doc["layers"])
    code, _, err = cli("explain", "the cat sat", "--model", str(tmp_path), "--method", "grad-rollout")
    assert code == 2 and "tags every token" in err and "--token" in err and len(err.strip().splitlines()) == 1


def test_top_k_rows_equals_top_k_row_by_row_ties_included():
    import numpy as np

    from attncli.methods.heads import top_k, top_k_rows

    rng = np.random.default_rng(3)
    m = rng.random((40, 30)).astype(np.float32)
    m[::3] = np.round(m[::3], 1)  # many ties
    m[1] = 0.0  # every entry tied
    m[2, 5:] = 0.0  # a causal-like row: ties below the top few
    for k in (1, 3, 7, 30, 50):
        assert top_k_rows(m, k) == [top_k(row, k) for row in m]
