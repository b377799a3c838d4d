"""Tiny random vision transformers built from configs and saved with an image processor (no network)."""

from __future__ import annotations

from pathlib import Path

LABELS = {0: "cat", 1: "dog", 2: "fish"}


def _save(model, folder: Path, image_size: int) -> Path:
    """Save a model with a ViT image processor that resizes to image_size (the PIL one: no torchvision here)."""
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    ViTImageProcessorPil(size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


def _common(image_size: int, patch_size: int, layers: int, heads: int, hidden: int) -> dict:
    return dict(image_size=image_size, patch_size=patch_size, hidden_size=hidden, num_hidden_layers=layers,
                num_attention_heads=heads, intermediate_size=hidden * 2, num_labels=len(LABELS), id2label=LABELS,
                label2id={v: k for k, v in LABELS.items()})


def make_vit(folder: Path, image_size: int = 32, patch_size: int = 8, layers: int = 2, heads: int = 2,
             hidden: int = 16) -> Path:
    """A ViTForImageClassification: [CLS] + (image_size/patch_size)² patches."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    return _save(ViTForImageClassification(ViTConfig(**_common(image_size, patch_size, layers, heads, hidden))),
                 folder, image_size)


def make_deit(folder: Path, image_size: int = 32, patch_size: int = 8, layers: int = 2, heads: int = 2,
              hidden: int = 16) -> Path:
    """A distilled DeiT (DeiTForImageClassificationWithTeacher): [CLS], [DIST], then patches."""
    import torch
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher

    torch.manual_seed(0)
    config = DeiTConfig(**_common(image_size, patch_size, layers, heads, hidden))
    return _save(DeiTForImageClassificationWithTeacher(config), folder, image_size)


def make_registers(folder: Path, image_size: int = 32, patch_size: int = 8, registers: int = 3, layers: int = 2,
                   heads: int = 2, hidden: int = 16) -> Path:
    """A DINOv2 classifier with register tokens: [CLS], registers, then patches."""
    import torch
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersForImageClassification

    torch.manual_seed(0)
    config = Dinov2WithRegistersConfig(num_register_tokens=registers,
                                       **_common(image_size, patch_size, layers, heads, hidden))
    return _save(Dinov2WithRegistersForImageClassification(config), folder, image_size)


def make_beit(folder: Path, image_size: int = 32, patch_size: int = 8, layers: int = 2, heads: int = 2,
              hidden: int = 16) -> Path:
    """A BEiT classifier (relative position bias, no absolute position embeddings)."""
    import torch
    from transformers import BeitConfig, BeitForImageClassification

    torch.manual_seed(0)
    return _save(BeitForImageClassification(BeitConfig(**_common(image_size, patch_size, layers, heads, hidden))),
                 folder, image_size)


def make_swin(folder: Path) -> Path:
    """A tiny Swin classifier (windowed attention: not supported, on purpose)."""
    import torch
    from transformers import SwinConfig, SwinForImageClassification

    torch.manual_seed(0)
    config = SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2], window_size=4,
                        num_labels=len(LABELS), id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    return _save(SwinForImageClassification(config), folder, 32)


def photo(path: Path, size: tuple[int, int] = (48, 40), mode: str = "RGB", **save_kwargs) -> Path:
    """A small synthetic picture (gradient + a bright square) saved in the given mode."""
    import numpy as np
    from PIL import Image

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), np.full_like(xx, 90)], axis=-1)
    rgb[h // 4: h // 2, w // 4: w // 2] = 250
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save_kwargs)
    return path


def make_backbone(folder: Path, kind: str = "dinov2", image_size: int = 32, patch_size: int = 8) -> Path:
    """A head-free ViTModel or Dinov2Model (saved without any classifier), with an image processor."""
    import torch
    import transformers

    torch.manual_seed(0)
    config_cls, model_cls = {"vit": ("ViTConfig", "ViTModel"), "dinov2": ("Dinov2Config", "Dinov2Model")}[kind]
    config = getattr(transformers, config_cls)(image_size=image_size, patch_size=patch_size, hidden_size=16,
                                               num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                               mlp_ratio=2)
    return _save(getattr(transformers, model_cls)(config), folder, image_size)
