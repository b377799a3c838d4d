"""Images in: safe loading, colour modes, folders, the patch grid from configs, capture, maps, terminal grids."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attncli.errors import CaptureError, NotSupportedError, UsageError
from tiny_vision import make_beit, make_deit, make_registers, make_vit, photo


@pytest.fixture(scope="session")
def vit(tmp_path_factory) -> Path:
    """4×4 grid of 8-px patches, [CLS] only."""
    return make_vit(tmp_path_factory.mktemp("vit"))


@pytest.fixture(scope="session")
def deit(tmp_path_factory) -> Path:
    """Distilled DeiT: [CLS] and [DIST] before the patches."""
    return make_deit(tmp_path_factory.mktemp("deit"))


@pytest.fixture(scope="session")
def registers(tmp_path_factory) -> Path:
    """DINOv2 with three register tokens."""
    return make_registers(tmp_path_factory.mktemp("reg"), registers=3)


@pytest.fixture(scope="session")
def beit(tmp_path_factory) -> Path:
    """BEiT: relative position bias, no absolute position embeddings."""
    return make_beit(tmp_path_factory.mktemp("beit"))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims width×height pixels but carries (almost) no data: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


# --- load_image: modes and orientation ---------------------------------------------------------------------


def test_rgb_image_loads_unchanged(tmp_path):
    from attncli.images import load_image

    path = photo(tmp_path / "a.png")
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (48, 40)
    assert np.array_equal(np.asarray(im), np.asarray(Image.open(path).convert("RGB")))


def test_exif_orientation_is_applied(tmp_path):
    from attncli.images import load_image

    src = Image.new("RGB", (40, 20), (255, 0, 0))
    src.paste((0, 0, 255), (0, 0, 10, 20))  # blue band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    src.save(path, exif=exif, quality=95)
    im = load_image(path)
    assert im.size == (20, 40)  # width and height swapped
    top = np.asarray(im)[2, 10]  # the left band ends up at the top after a clockwise turn
    assert top[2] > 200 and top[0] < 60


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "1", "LA"])
def test_other_modes_become_rgb(tmp_path, mode):
    from attncli.images import load_image

    suffix = ".jpg" if mode == "CMYK" else ".png"
    path = photo(tmp_path / f"img{suffix}", mode=mode)
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (48, 40)


def test_transparent_pixels_become_white(tmp_path):
    from attncli.images import load_image

    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    rgba.save(tmp_path / "t.png")
    arr = np.asarray(load_image(tmp_path / "t.png"))
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[4, 4]) == (255, 0, 0)
    pal = rgba.convert("P")
    pal.info["transparency"] = pal.getpixel((0, 0))
    pal.save(tmp_path / "p.png", transparency=pal.getpixel((0, 0)))
    assert tuple(np.asarray(load_image(tmp_path / "p.png"))[0, 0]) == (255, 255, 255)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    from attncli.images import load_image

    values = np.array([[0, 65535], [32896, 257]], dtype=np.uint16)  # 32896 = 128 * 257
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    arr = np.asarray(load_image(tmp_path / "g16.png"))
    assert arr.shape == (2, 2, 3)
    assert arr[..., 0].tolist() == [[0, 255], [128, 1]]


# --- load_image: bad files ---------------------------------------------------------------------------------


def _usage(fn, *args) -> str:
    with pytest.raises(UsageError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_folder_and_non_image_files(tmp_path):
    from attncli.images import load_image, probe_image

    for fn in (load_image, probe_image):
        assert "no such file" in _usage(fn, tmp_path / "nope.png")
        assert "is a folder" in _usage(fn, tmp_path)
        (tmp_path / "notes.png").write_text("not a picture")
        assert f"{tmp_path / 'notes.png'} is not an image" in _usage(fn, tmp_path / "notes.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image_names_the_file(tmp_path, suffix):
    from attncli.images import load_image

    rng = np.random.default_rng(0)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    message = _usage(load_image, cut)
    assert str(cut) in message and "truncated or corrupt" in message


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    from attncli.images import load_image, probe_image

    bomb = png_header_only(tmp_path / "bomb.png", 50_000, 50_000)  # 2.5 gigapixels in 100 bytes
    for fn in (probe_image, load_image):
        message = _usage(fn, bomb)
        assert str(bomb) in message and "decompression bomb" in message


def test_pixel_limit_is_checked_from_the_header(tmp_path, monkeypatch):
    from attncli.images import load_image, probe_image

    bomb = png_header_only(tmp_path / "bomb.png", 9000, 9000)  # 81 MP: over attncli's limit, under Pillow's
    for fn in (probe_image, load_image):
        assert "9000×9000 pixels is over the limit of 64,000,000" in _usage(fn, bomb)
    monkeypatch.setenv("ATTN_MAX_IMAGE_PIXELS", "1000")
    assert "over the limit of 1,000" in _usage(load_image, photo(tmp_path / "a.png"))


# --- collect_images ----------------------------------------------------------------------------------------


def test_collect_images_expands_folders_sorted_and_keeps_argument_order(tmp_path):
    from attncli.images import collect_images

    folder = tmp_path / "imgs"
    for name in ("b.png", "a.jpg", "c.webp"):
        photo(folder / name)
    (folder / "readme.txt").write_text("skip me")
    (folder / ".hidden.png").write_bytes(b"")
    single = photo(tmp_path / "z.png")
    got = collect_images([single, folder, folder / "a.jpg"])
    assert [p.name for p in got] == ["z.png", "a.jpg", "b.png", "c.webp"]  # duplicate a.jpg dropped


def test_collect_images_errors(tmp_path):
    from attncli.images import collect_images

    assert "no such file or folder" in _usage(collect_images, [tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert "no images in this folder" in _usage(collect_images, [tmp_path / "empty"])


# --- the patch grid ----------------------------------------------------------------------------------------


def test_grid_from_configs():
    from transformers import BeitConfig, DeiTConfig, Dinov2WithRegistersConfig, ViTConfig

    from attncli.families.vit import grid_from_config

    vit = grid_from_config(ViTConfig(image_size=224, patch_size=16))
    assert (vit.rows, vit.cols, vit.prefix, vit.n_tokens) == (14, 14, 1, 197)
    deit = grid_from_config(DeiTConfig(image_size=384, patch_size=16))
    assert (deit.rows, deit.prefix_labels, deit.n_tokens) == (24, ("[CLS]", "[DIST]"), 578)
    reg = grid_from_config(Dinov2WithRegistersConfig(image_size=518, patch_size=14, num_register_tokens=4),
                           image_size=(224, 224))  # the input's size wins over the config's (DINOv2 interpolates)
    assert (reg.rows, reg.prefix, reg.prefix_labels[-1], reg.n_tokens) == (16, 5, "[REG3]", 261)
    beit = grid_from_config(BeitConfig(image_size=224, patch_size=16))
    assert (beit.rows, beit.prefix) == (14, 1)
    rect = grid_from_config(ViTConfig(image_size=(64, 96), patch_size=(8, 16)))
    assert (rect.rows, rect.cols, rect.patch_height, rect.patch_width) == (8, 6, 8, 16)
    assert rect.token_of(1, 0) == 7 and rect.cell_of(7) == (1, 0)


def test_windowed_and_odd_grids_are_not_supported():
    from transformers import SwinConfig, ViTConfig

    from attncli.families.vit import grid_from_config

    with pytest.raises(NotSupportedError, match="not supported yet"):
        grid_from_config(SwinConfig())
    with pytest.raises(NotSupportedError, match="does not split"):
        grid_from_config(ViTConfig(image_size=30, patch_size=8))


def test_seen_image_undoes_the_processor(vit, tmp_path):
    from transformers import AutoConfig, AutoImageProcessor

    from attncli.families.vit import preprocess
    from attncli.images import load_image

    processor = AutoImageProcessor.from_pretrained(vit)
    src = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    src.save(tmp_path / "x.png")
    config = AutoConfig.from_pretrained(vit)
    prepared = preprocess([load_image(tmp_path / "x.png")], processor, config)
    assert prepared.pixel_values.shape == (1, 3, 32, 32)
    assert prepared.images[0].dtype == np.uint8 and prepared.images[0].shape == (32, 32, 3)
    assert np.abs(prepared.images[0].astype(int) - np.asarray(src, dtype=int)).max() <= 1


# --- capture -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("builder,prefix", [("vit", 1), ("deit", 2), ("registers", 4), ("beit", 1)])
def test_capture_images_layout_and_prefix(builder, prefix, request, tmp_path):
    from attncli.sources import capture_images

    folder = request.getfixturevalue(builder)
    paths = [photo(tmp_path / f"{i}.png", size=(40 + 8 * i, 40)) for i in range(3)]
    caps = list(capture_images(paths, str(folder), batch_size=2, top_k=3))
    assert [c.source for c in caps] == [str(p) for p in paths]
    for cap in caps:
        assert cap.kind == "image" and cap.grid.prefix == prefix and (cap.grid.rows, cap.grid.cols) == (4, 4)
        assert cap.attentions.shape == (2, 2, prefix + 16, prefix + 16) and cap.attentions.dtype == np.float32
        assert np.allclose(cap.attentions.sum(-1), 1.0, atol=1e-5)
        assert cap.tokens[:prefix] == list(cap.grid.prefix_labels) and cap.tokens[prefix] == "(0,0)"
        assert cap.special == [True] * prefix + [False] * 16
        assert cap.image.shape == (32, 32, 3)
        scores = [p.score for p in cap.predictions]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6
    # batching changes nothing: the second image alone gives the same attention and scores
    alone = next(capture_images([paths[1]], str(folder)))
    assert np.allclose(alone.attentions, caps[1].attentions, atol=1e-5)
    assert alone.predictions[0].label == caps[1].predictions[0].label


def test_sequence_length_mismatch_is_reported(vit, tmp_path, monkeypatch):
    import attncli.sources as vision

    import attncli.families.vit as vit_family

    monkeypatch.setattr(vit_family.FAMILY, "prefix_labels", lambda config: ("[CLS]", "[X]"))
    with pytest.raises(CaptureError, match="expected 18 tokens"):
        next(vision.capture_images([photo(tmp_path / "a.png")], str(vit)))


def test_position_embeddings_found_per_family(vit, registers, beit):
    from attncli.families.vit import position_embeddings
    from attncli.choices import Purpose
    from attncli.sources import load as load_image_model

    table, grid = position_embeddings(load_image_model(str(vit), Purpose.image))
    assert table.shape == (16, 16) and (grid.rows, grid.cols) == (4, 4)
    table, _ = position_embeddings(load_image_model(str(registers), Purpose.image))
    assert table.shape == (16, 16)  # registers carry no position embedding; CLS's row is dropped
    assert position_embeddings(load_image_model(str(beit), Purpose.image)) is None


# How the processor framed the file: resize, centre crop, what was cut -----------------------------------------

def _column_ruler(width: int, height: int):
    """An RGB image whose red channel is x // 4 and green channel x % 4 · 60: each column's x can be read back."""
    from PIL import Image

    x = np.tile(np.arange(width)[None, :], (height, 1))
    return Image.fromarray(np.stack([x // 4, (x % 4) * 60, np.zeros_like(x)], axis=-1).astype(np.uint8))


def test_framing_of_dinov2_preprocessing_matches_the_processor_on_a_non_square_image():
    from transformers.models.bit.image_processing_pil_bit import BitImageProcessorPil

    from attncli.dinov2 import PREPROCESSOR
    from attncli.images import framing, framing_phrase, processed_pixels

    config = {k: v for k, v in PREPROCESSOR.items() if k != "image_processor_type"}
    processor = BitImageProcessorPil(**config)
    frame = framing((741, 500), processor, (224, 224))
    # Shortest edge 500 → 224: the long side 741·224/500 = 331.97, truncated to 331; the centre 224 of 331 is kept,
    # that is 224·741/331 = 501.45 file pixels from x = 53.5·741/331 = 119.77 to 621.23.
    assert frame == {"input": [741, 500], "resized": [331, 224], "crop": [119.77, 0.0, 621.23, 500.0],
                     "output": [224, 224]}
    assert framing_phrase(frame) == "741×500 → crop 501×500 → 224×224, 32% of the width cut"
    _, [seen] = processed_pixels([_column_ruler(741, 500)], processor)  # (224, 224, 3) as the model saw it
    x = seen[112, :, 0].astype(int) * 4  # each column's file x, to within the 4-pixel step of the red channel
    assert abs(x[0] - 119.77) <= 6 and abs(x[-1] - 621.23) <= 6  # first and last columns: the crop's edges


def test_framing_phrases():
    from types import SimpleNamespace

    from attncli.images import framing, framing_phrase

    squash = SimpleNamespace(do_resize=True, size={"height": 64, "width": 64}, do_center_crop=False)
    assert framing_phrase(framing((451, 300), squash, (64, 64))) == "451×300 → 64×64, aspect not kept"
    assert framing_phrase(framing((128, 128), squash, (64, 64))) == "128×128 → 64×64"
    assert framing_phrase(framing((64, 64), squash, (64, 64))) is None
    tall = SimpleNamespace(do_resize=True, size={"shortest_edge": 224}, do_center_crop=True,
                           crop_size={"height": 224, "width": 224})
    tall_phrase = framing_phrase(framing((300, 451), tall, (224, 224)))
    assert tall_phrase == "300×451 → crop 300×301 → 224×224, 33% of the height cut"
    assert framing((300, 451), tall, (200, 200)) is None  # the pixels say otherwise: nothing is claimed
    assert framing((300, 451), SimpleNamespace(crop_pct=0.875, do_resize=True, size={"shortest_edge": 224}),
                   (224, 224)) is None
