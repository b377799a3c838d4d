"""Enumerated choices shared by the core and the CLI (no heavy imports here)."""

from __future__ import annotations

from enum import Enum


class Device(str, Enum):
    """Where the model runs."""

    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class TorchDtype(str, Enum):
    """The dtype a model's weights are loaded in (attention weights still come back as float32)."""

    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


class DeviceMap(str, Enum):
    """How accelerate spreads a model over the GPUs, the CPU and disk (its device_map strategies)."""

    auto = "auto"
    balanced = "balanced"
    sequential = "sequential"


class Fuse(str, Enum):
    """How the heads of one layer are combined into a single map."""

    mean = "mean"
    max = "max"
    min = "min"


class Purpose(str, Enum):
    """What a command needs a model for; the model's family says whether it can serve it."""

    text = "text"  # self-attention over text tokens (explain, stats, heatmap --text)
    image = "image"  # self-attention over an image's patch grid (heatmap, patches, stats)
    image_classification = "image-classification"  # the same, with a trained classifier (classify, evaluate)
    text_classification = "text-classification"  # a trained text classifier (grad-rollout on text)
    align = "align"  # cross-attention from output text to source text (attn align)
    caption = "caption"  # cross-attention from output text to an image (attn caption)
    generate = "generate"  # a causal LM's self-attention over its prompt and what it generated (attn generate)


class Kind(str, Enum):
    """What a capture's (source) tokens are."""

    text = "text"
    image = "image"
    audio = "audio"  # encoder frames of a recording (attn align AUDIO): labelled by their start time


class Scale(str, Enum):
    """How a map's colours span its values."""

    zero = "zero"  # 0 .. max: honest for weights, a wash when all values are close
    minmax = "minmax"  # min .. max of the values shown
    percentile = "percentile"  # 1st .. 99th percentile: one outlier does not flatten the rest


class Format(str, Enum):
    """Where a view goes: one renderer module per format (attncli.render)."""

    terminal = "terminal"  # rich tables and shaded grids on stdout
    json = "json"  # a stable document on stdout
    csv = "csv"  # rows for spreadsheets (attn stats)
    figure = "figure"  # PNG, SVG or PDF file
    html = "html"  # one standalone interactive page


class StoreDtype(str, Enum):
    """How a saved capture stores attention weights."""

    float16 = "float16"
    float32 = "float32"


class TrainingSet(str, Enum):
    """A narrow set an embedded model was trained on: its captures carry it (``arch["trained_on"]``), so a view
    can say when an input is unlike it without knowing which model that was."""

    shapes = "synthetic shapes"  # attncli.synthetic: the shapes model
