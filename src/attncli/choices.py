"""Enumerated choices shared by the core and the CLI (no heavy imports here)."""

from __future__ import annotations

from enum import Enum


class Device(str, Enum):
    """Where the model runs."""

    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class Fuse(str, Enum):
    """How the heads of one layer are combined into a single map."""

    mean = "mean"
    max = "max"
    min = "min"


class Task(str, Enum):
    """What a model is loaded for: picks the Auto classes."""

    text = "text"
    image_classification = "image-classification"
    text_classification = "text-classification"
    seq2seq = "seq2seq"
    image_to_text = "image-to-text"


class Method(str, Enum):
    """How a map is computed from the attention (see attncli.methods)."""

    attention = "attention"
    rollout = "rollout"
    flow = "flow"
    grad_rollout = "grad-rollout"
