"""What every model family says about itself: how it is loaded, what it reads, what its tokens are.

A family is one module under ``attncli.families`` holding one instance of a :class:`Family` subclass. The
registry (``attncli.families.FAMILIES``) asks each in turn whether a config belongs to it; the commands ask the
family found whether it can serve them (:class:`Purpose`). Adding a family is one module and one line there.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from attncli.choices import Purpose
from attncli.errors import CaptureError

if TYPE_CHECKING:
    import numpy as np


class Modality(str, Enum):
    """What the encoder (or the only stack) of a model reads."""

    text = "text"
    image = "image"
    speech = "speech"


class Family:
    """One kind of architecture. Subclasses set the attributes and override what differs."""

    name = "model"  # how the family is called in messages, e.g. "text encoder"
    examples = ""  # a few model types a reader knows, e.g. "BERT, RoBERTa, MiniLM"
    modality = Modality.text
    cross = False  # has cross-attention from a decoder to an encoder
    purposes: frozenset[Purpose] = frozenset()
    default_class = "AutoModel"  # used when config.architectures names no class transformers has
    processor_class = "AutoTokenizer"
    unsupported: str | None = None  # why no command can use this family yet (said instead of "wrong kind")
    instead: str | None = None  # with unsupported: what to use instead (the hint), else the command's own needs

    def matches(self, config: Any) -> bool:
        """Whether a transformers config describes a model of this family."""
        raise NotImplementedError

    def describe(self) -> str:
        """'text encoder (BERT, RoBERTa, MiniLM)'."""
        return f"{self.name} ({self.examples})" if self.examples else self.name

    def model_class(self, config: Any, purpose: Purpose) -> Any:
        """The class that loads the checkpoint with its task head: the one its config names, else the default."""
        import transformers

        for name in getattr(config, "architectures", None) or []:
            cls = getattr(transformers, str(name), None)
            if cls is not None:
                return cls
        return getattr(transformers, self.default_class)

    def load_config(self, config: Any, purpose: Purpose) -> Any:
        """The config the model class loads with: the checkpoint's own (a dual encoder's tower takes its part)."""
        return config

    def processor_for(self, location: str, purpose: Purpose, **options: Any) -> Any:
        """The processor a command's input goes through (the family's one processor unless it has several).

        ``options`` are the model load's from_pretrained arguments (trust_remote_code, local_files_only).
        """
        return self.processor(location, **options)

    def processor(self, location: str, **options: Any) -> Any:
        """The tokenizer or image processor that prepares inputs like the model was trained on."""
        import transformers

        return getattr(transformers, self.processor_class).from_pretrained(location, **options)

    def prefix_labels(self, config: Any) -> tuple[str, ...]:
        """Names of the tokens an image encoder puts before its patches (none for text)."""
        return ()


def is_causal_lm(config: Any) -> bool:
    """A config whose architectures are causal language models (GPT-2, Llama, …)."""
    names = [str(a) for a in getattr(config, "architectures", None) or []]
    if any(n.endswith(("ForCausalLM", "LMHeadModel")) for n in names):
        return True
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    model_type = getattr(config, "model_type", "")
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def end_token(model: Any) -> int | None:
    """The token that ends generation: the generation config's, else the model config's (the first of several)."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if eos else None
    return eos


def generated(ids: list[int], max_new_tokens: int, num_beams: int, eos: int | None) -> dict[str, Any]:
    """How tokens were generated, for the capture and the JSON output (the same keys for every command)."""
    return {"mode": "generated", "strategy": "greedy" if num_beams == 1 else "beam search (best beam)",
            "num_beams": num_beams, "max_new_tokens": max_new_tokens, "scored": "teacher-forced",
            "finished": eos is not None and bool(ids) and ids[-1] == eos}


def last_logits(model: Any, n: int) -> dict[str, Any]:
    """Forward arguments that keep only the last n positions' logits, where the model takes them.

    A causal LM otherwise returns (tokens, vocabulary) logits: 1.6 GB for GPT-2 on 8,192 tokens, never read.
    """
    import inspect

    return {"logits_to_keep": n} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}


def stack_attentions(attentions: Any, what: str = "attention", item: int | None = 0) -> "np.ndarray":
    """Tuple of per-layer (batch, heads, q, k) tensors → (layers, heads, q, k) float32 for one batch item.

    ``item=None`` keeps the whole batch: (batch, layers, heads, q, k).
    """
    if attentions is None or len(attentions) == 0 or any(a is None for a in attentions):
        raise CaptureError(
            f"the model returned no {what} weights",
            "it likely computes attention in a fused kernel; attncli loads models with eager attention, "
            "so this architecture does not support returning them yet",
        )
    import torch

    if item is None:
        stacked = torch.stack(tuple(attentions), dim=1)  # (B, L, H, Q, K)
    else:
        stacked = torch.stack([a[item] for a in attentions])  # (L, H, Q, K)
    return stacked.detach().to(torch.float32).cpu().numpy()
