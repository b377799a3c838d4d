"""Measure patch sinks and token norms of the dinov2-small backbone on photos (the numbers in docs/real-photos.md).

    python scripts/measure_sinks.py PHOTO [PHOTO ...]

Independent of attncli's capture path: transformers' eager Dinov2Model with output_attentions and
output_hidden_states, on the model folder attncli converted (run `attn heatmap PHOTO --model dinov2-small` once).
Per photo it prints the sinks the rule in attncli.methods.sinks finds (layer, patch, share with heads averaged),
for each the head that puts the most of its attention there and how much (mean over every query), the
max/median ratio of the patch tokens' norms after the last layer (before and after the final layer norm), and
the top patch of [CLS]'s rollout through every layer with and without --drop-sinks, and the largest difference
between these eager weights and the ones attncli's own capture keeps (`attn heatmap PHOTO --layers all`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoImageProcessor, Dinov2Model

from attncli.dinov2 import cached_folder
from attncli.images import load_image
from attncli.methods.rollout import rollout
from attncli.methods.sinks import patch_sinks, sink_columns


def main(paths: list[str]) -> None:
    """Print one block per photo."""
    from attncli.choices import Purpose
    from attncli.families.vit import capture_image
    from attncli.models import load_model

    loaded = load_model("dinov2-small", Purpose.image)
    folder = cached_folder()
    model = Dinov2Model.from_pretrained(folder, attn_implementation="eager").eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    patch = model.config.patch_size
    for path in paths:
        image = load_image(path)
        pixels = processor(images=[image], return_tensors="pt")["pixel_values"]  # (1, 3, H, W)
        with torch.no_grad():
            out = model(pixel_values=pixels, output_attentions=True, output_hidden_states=True)
        att = torch.stack(out.attentions)[:, 0].float().numpy()  # (L, H, Q, K)
        rows, cols = pixels.shape[-2] // patch, pixels.shape[-1] // patch
        found = patch_sinks(att, 1, rows, cols)
        kept = capture_image(path, loaded).attentions  # (L, H, Q, K), attncli's capture path
        print(f"== {Path(path).name} {image.size[0]}×{image.size[1]}; attncli capture vs eager: max |diff| "
              f"{float(abs(kept - att).max()):.1e}")
        for layer, sinks in enumerate(found):
            for s in sinks:
                per_head = att[layer, :, :, s["token"]].mean(axis=-1)  # (H,) mean over every query
                h = int(per_head.argmax())
                print(f"  sink layer {layer} ({s['row']},{s['col']}): {s['share']:.1%} heads averaged; "
                      f"head {h} puts {per_head[h]:.1%} of its attention there")
        for name, hidden in (("last layer output", out.hidden_states[-1]), ("after final norm", out.last_hidden_state)):
            norms = hidden[0, 1:].norm(dim=-1).numpy()  # (patches,)
            print(f"  patch norm max/median {name}: {norms.max() / np.median(norms):.2f}")
        for drop in (False, True):
            columns = sink_columns(found) if drop else None
            row = rollout(att, -1, drop=columns)[0, 1:]  # (patches,) [CLS]'s row
            order = np.argsort(-row)[:2]
            top = ", ".join(f"({i // cols},{i % cols}) {row[i]:.3f}" for i in order)
            print(f"  rollout top{' --drop-sinks' if drop else ''}: {top}")


if __name__ == "__main__":
    main(sys.argv[1:])
