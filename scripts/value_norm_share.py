"""How much of each token's attention goes to [CLS] and [SEP], as raw weights and as value-norm (docs/methods.md).

    python scripts/value_norm_share.py [TEXT] [--model MODEL]

Per layer, over the ordinary tokens' query rows (specials excluded as queries): the share of the raw weight (heads
averaged) on the special tokens' columns, and the share of ‖Σ_h α·f(x)‖ (value-norm, the heads' vectors summed)
on them, each row's share taken of that row's total; then the mean norm ‖f_h(x_j)‖ of the specials' transformed
value vectors against the ordinary tokens' (heads averaged). Kobayashi et al. (2020) found the large raw weights
on [CLS]/[SEP] carry small vectors.
"""

from __future__ import annotations

import argparse

import numpy as np

from attncli.capture import Selection
from attncli.choices import Purpose
from attncli.families.text_capture import capture_text
from attncli.methods.dispatch import method_rows
from attncli.sources import load


def main() -> None:
    """Print one line per layer."""
    parser = argparse.ArgumentParser()
    parser.add_argument("text", nargs="?", default="The cat sat on the mat because it was tired.")
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args()
    capture = capture_text(args.text, load(args.model, Purpose.text), Selection(extras=("value_gram",)))
    special = np.array(capture.special)
    ordinary = np.flatnonzero(~special)
    print(f"{capture.model_id} · {capture.n_tokens} tokens · specials: "
          f"{', '.join(t for t, s in zip(capture.tokens, capture.special) if s)} · rows: the {len(ordinary)} ordinary tokens")
    print("layer  raw share  value-norm share  ‖f(x)‖ specials  ‖f(x)‖ others")
    raw_all, norm_all = [], []
    for layer in range(capture.n_layers):
        raw = method_rows(capture.attentions, "attention", layer, queries=ordinary)  # (R, K), rows sum to 1
        norm = method_rows(capture.attentions, "value-norm", layer, queries=ordinary, extras=capture.extras)
        raw_share = raw[:, special].sum(-1).mean()
        norm_share = (norm[:, special].sum(-1) / norm.sum(-1)).mean()
        size = np.sqrt(np.einsum("khh->kh", capture.extras["value_gram"][layer])).mean(-1)  # (K,) heads averaged
        raw_all.append(raw_share)
        norm_all.append(norm_share)
        print(f"{layer:5d}  {raw_share:9.3f}  {norm_share:16.3f}  {size[special].mean():15.3f}  "
              f"{size[~special].mean():13.3f}")
    print(f"  all  {np.mean(raw_all):9.3f}  {np.mean(norm_all):16.3f}")


if __name__ == "__main__":
    main()
