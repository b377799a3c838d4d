"""A tiny ViT whose layer-0 head 0 puts nearly all of every query's attention on one patch: a planted sink.

How: the position embedding of the sink patch gets a large value in hidden dimension 0, so after layer 0's layer
norm that token alone has a large dimension 0; head 0's keys read only dimension 0 and its queries are one
constant vector, so every query scores that patch far above the rest.
"""

from __future__ import annotations

from pathlib import Path

IMAGE, PATCH, HIDDEN, HEADS = 48, 8, 16, 2  # [CLS] + 6×6 patches; head size 8
SINK = (2, 3)  # (row, col) of the planted sink
COLS = IMAGE // PATCH


def make_sink_vit(folder: Path, crop: bool = False) -> Path:
    """Save the model with a PIL image processor: resize to 48×48, or (crop) shortest edge 48 then a centre crop."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=IMAGE, patch_size=PATCH, hidden_size=HIDDEN, num_hidden_layers=2,
                       num_attention_heads=HEADS, intermediate_size=HIDDEN * 2, num_labels=2,
                       id2label={0: "plain", 1: "marked"}, label2id={"plain": 0, "marked": 1})
    model = ViTForImageClassification(config).eval()
    token = 1 + SINK[0] * COLS + SINK[1]
    attention = model.vit.layers[0].attention  # transformers 5 names
    proj_q, proj_k = attention.q_proj, attention.k_proj
    with torch.no_grad():
        model.vit.embeddings.position_embeddings[0, token, 0] = 100.0
        head = slice(0, HIDDEN // HEADS)
        proj_q.weight[head] = 0.0
        proj_q.bias[head] = 0.0
        proj_q.bias[0] = 10.0  # every query the same: (10, 0, …, 0)
        proj_k.weight[head] = 0.0
        proj_k.bias[head] = 0.0
        proj_k.weight[0, 0] = 10.0  # the key reads hidden dimension 0 only
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if crop:
        from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

        BitImageProcessorPil(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE},
                             do_center_crop=True).save_pretrained(folder)
    else:
        from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

        ViTImageProcessorPil(size={"height": IMAGE, "width": IMAGE}).save_pretrained(folder)
    return folder
