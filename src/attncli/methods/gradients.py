"""Gradient rollout (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability").

For a target class, each layer's attention ``A`` (heads, query, key) is weighted by the gradient of the
target's logit with respect to it, negatives are clipped and heads averaged: ``Ā = mean_h (∇A ⊙ A)⁺``.
Relevance starts as the identity (every token explains itself) and accumulates from the first layer up:
``R ← R + Ā · R``. Rows of ``R`` do not sum to 1; for a classifier the row of the CLS token (or whichever
token feeds the classifier) is the explanation.

``gradient_rollout`` is pure numpy; ``attention_gradients`` runs the model forward and backward (torch,
imported lazily) to get the attention tensors and their gradients in the (layers, heads, query, key) layout.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from attncli.errors import NotSupportedError, UsageError
from attncli.methods.heads import resolve_index
from attncli.methods.spec import UPTO, Inputs, MethodInfo, Words

if TYPE_CHECKING:
    import numpy as np


def gradient_rollout(attentions: "np.ndarray", gradients: "np.ndarray", layer: int = -1) -> "np.ndarray":
    """(query, key) relevance R after ``layer``: R = I, then R ← R + mean_h((∇A ⊙ A)⁺) · R per layer."""
    import numpy as np

    if attentions.shape != gradients.shape:
        raise UsageError(f"attention {attentions.shape} and gradient {gradients.shape} shapes differ")
    layer_i = resolve_index(layer, attentions.shape[0], "layer")
    relevance = np.eye(attentions.shape[-1])  # (Q, K)
    for att, grad in zip(attentions[: layer_i + 1], gradients[: layer_i + 1]):
        cam = np.clip(grad.astype(np.float64) * att, 0.0, None).mean(axis=0)  # (Q, K), heads averaged
        relevance = relevance + cam @ relevance
    return relevance.astype(np.float32)


def gradient_rollout_layers(attentions: "np.ndarray", gradients: "np.ndarray") -> "np.ndarray":
    """Gradient rollout after every layer, (layers, Q, K): the running R of gradient_rollout."""
    import numpy as np

    if attentions.shape != gradients.shape:
        raise UsageError(f"attention {attentions.shape} and gradient {gradients.shape} shapes differ")
    relevance = np.eye(attentions.shape[-1])  # (Q, K)
    steps = []
    for att, grad in zip(attentions, gradients):
        cam = np.clip(grad.astype(np.float64) * att, 0.0, None).mean(axis=0)  # (Q, K), heads averaged
        relevance = relevance + cam @ relevance
        steps.append(relevance)
    return np.stack(steps).astype(np.float32)


def _need(inputs: Inputs) -> "np.ndarray":
    if inputs.gradients is None:
        raise UsageError("grad-rollout needs the attention gradients of a classifier",
                         "compute them with attncli.gradcapture.gradients_for(capture)")
    import numpy as np

    return np.asarray(getattr(inputs.gradients, "gradients", inputs.gradients), dtype=np.float32)


def _rows(inputs: Inputs) -> "np.ndarray":
    matrix = gradient_rollout(inputs.attentions, _need(inputs), inputs.layer)
    return matrix if inputs.queries is None else matrix[inputs.queries]


def _every_layer(inputs: Inputs) -> "np.ndarray":
    steps = gradient_rollout_layers(inputs.attentions, _need(inputs))
    return steps if inputs.queries is None else steps[:, inputs.queries]


def _words(w: Words) -> str:
    return f"gradient rollout of {w.span}" + (f" for {w.target}" if w.target else "")


METHOD = MethodInfo(name="grad-rollout", summary="gradient-weighted rollout for --target (classifiers; Chefer et al.)",
                    span=UPTO, rows=_rows, words=_words, sums_to_one=False, quantity="relevance", gradients=True,
                    every_layer=_every_layer, options=frozenset({"target"}))


@dataclass
class GradientCapture:
    """Attention and d(target logit)/d(attention) of one input.

    Shapes: ``attentions`` and ``gradients`` are ``(layers, heads, query, key)`` float32; ``logits`` is
    ``(classes,)``. ``target`` is the class index whose logit was differentiated.
    """

    attentions: "np.ndarray"
    gradients: "np.ndarray"
    logits: "np.ndarray"
    target: int
    label: str


def class_labels(config: Any) -> list[str]:
    """Class names of a classifier config, index order (``LABEL_i`` where the config has none)."""
    n = int(getattr(config, "num_labels", 0) or 0)
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]


def resolve_target(target: str | int | None, labels: Sequence[str], logits: "np.ndarray") -> int:
    """Class index from a label name or index (-1 = last); None means the predicted class."""
    import numpy as np

    if target is None:
        return int(np.argmax(logits))
    try:
        return resolve_index(int(target), len(labels), "target class", "the classifier")
    except ValueError:
        pass
    wanted = str(target).strip().lower()
    hits = [i for i, name in enumerate(labels) if name.lower() == wanted]
    if len(hits) == 1:
        return hits[0]
    shown = ", ".join(f"{i}:{name}" for i, name in enumerate(labels[:20])) + (" …" if len(labels) > 20 else "")
    if not hits:
        raise UsageError(f'--target "{target}" is not a class of this model: {shown}', "give a label or its index")
    raise UsageError(f'--target "{target}" names {len(hits)} classes', f"give its index, e.g. --target {hits[0]}")


@contextmanager
def _eager(model: Any) -> Iterator[None]:
    """Run a model with eager attention for a while: SDPA (and attncli's selective function) return no weights."""
    previous = getattr(model.config, "_attn_implementation", None)
    switch = previous not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(previous)


def attention_gradients(
    model: Any, inputs: Mapping[str, Any], targets: Sequence[str | int | None] | str | int | None = None,
    position: int | None = None,
) -> list[GradientCapture]:
    """Forward with attentions kept in the graph, backward from each item's target logit; one result per item.

    ``inputs`` is a batch for the model (``pixel_values`` or tokenizer output); ``targets`` is one target for
    every item or one per item (None: the predicted class). Items in a batch do not interact, so summing the
    chosen logits gives each item's own gradients. A token classifier (logits ``(batch, tokens, classes)``)
    explains the tag of the token at ``position``.
    """
    import torch

    labels = class_labels(model.config)
    if not labels:
        raise NotSupportedError(
            "gradient rollout needs a classifier (a model with class logits)",
            "use a ...ForImageClassification or ...ForSequenceClassification model, or --method rollout",
        )
    with torch.enable_grad(), _eager(model):
        out = model(**inputs, output_attentions=True)
        logits = getattr(out, "logits", None)
        attentions = getattr(out, "attentions", None)
        if logits is not None and logits.dim() == 3:  # a token classifier: one tag per token
            if position is None:
                raise UsageError("this model tags every token: grad-rollout explains the tag of one token",
                                 "pick the token with --token WORD|INDEX")
            if not -logits.shape[1] <= position < logits.shape[1]:
                raise UsageError(f"token {position} is out of range: the input has {logits.shape[1]} tokens")
            logits = logits[:, position]  # (B, classes): that token's tag logits
        if logits is None or logits.dim() != 2:
            raise NotSupportedError("gradient rollout needs class logits and this model returned none",
                                    "use a classifier, or --method rollout")
        if not attentions or any(a is None for a in attentions):
            raise NotSupportedError("the model returned no attention weights to differentiate",
                                    "use a model with eager attention, or --method rollout")
        if not attentions[0].requires_grad:
            raise NotSupportedError("the attention weights are not part of the autograd graph",
                                    "the model's parameters may be frozen; use --method rollout")
        batch = logits.shape[0]
        per_item = list(targets) if isinstance(targets, (list, tuple)) else [targets] * batch
        if len(per_item) != batch:
            raise UsageError(f"{len(per_item)} targets for a batch of {batch} inputs")
        plain = logits.detach().float().cpu().numpy()  # (B, classes)
        chosen = [resolve_target(t, labels, plain[b]) for b, t in enumerate(per_item)]
        score = logits[torch.arange(batch), torch.tensor(chosen, device=logits.device)].sum()
        grads = torch.autograd.grad(score, list(attentions))  # per layer (B, H, Q, K)
    att = torch.stack([a.detach() for a in attentions], dim=1).float().cpu().numpy()  # (B, L, H, Q, K)
    grad = torch.stack(list(grads), dim=1).float().cpu().numpy()  # (B, L, H, Q, K)
    return [GradientCapture(att[b], grad[b], plain[b], chosen[b], labels[chosen[b]]) for b in range(batch)]
