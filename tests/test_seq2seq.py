"""Cross-attention capture (`attn align`, `attn caption`) on tiny random Marian, T5, ViT+GPT-2 and BLIP models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tiny_seq2seq import make_bart, make_blip, make_marian, make_t5, make_vit_gpt2
from tiny_vision import make_vit, photo

from attncli.capture import Capture
from attncli.errors import UsageError

SOURCE = "the cat sat on the mat"


@pytest.fixture(scope="session")
def s2s_models(tmp_path_factory) -> dict[str, Path]:
    """The five tiny encoder-decoders, built once."""
    root = tmp_path_factory.mktemp("s2s")
    return {"marian": make_marian(root / "marian"), "t5": make_t5(root / "t5"), "bart": make_bart(root / "bart"),
            "ved": make_vit_gpt2(root / "ved"), "blip": make_blip(root / "blip")}


@pytest.fixture(scope="session")
def loaded(s2s_models):
    """Each tiny model loaded once through the real loader."""
    from attncli.models import load_model as load_cross_model

    from attncli.choices import Purpose

    return {name: load_cross_model(str(path), Purpose.caption if name in ("ved", "blip") else Purpose.align)
            for name, path in s2s_models.items()}


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> Path:
    """A 48×40 photo-like RGB image (not square: the processor resizes it to 32×32)."""
    return photo(tmp_path_factory.mktemp("img") / "photo.png")


def _rows_sum_to_one(a: np.ndarray) -> bool:
    return bool(np.allclose(a.sum(axis=-1), 1.0, atol=1e-5))


# --- capture: shapes, rows, labels -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["marian", "t5", "bart"])
def test_align_capture_shapes_and_rows(loaded, name):
    from attncli.sources import capture_align

    cap = capture_align(SOURCE, loaded[name], max_new_tokens=6)
    n_src, n_tgt = len(cap.tokens), len(cap.target_tokens)
    assert cap.kind == "text" and cap.text == SOURCE
    assert cap.attentions.shape == (2, 2, n_src, n_src)  # encoder self-attention
    assert cap.cross_attentions.shape == (2, 2, n_tgt, n_src)
    assert cap.decoder_attentions.shape == (2, 2, n_tgt, n_tgt)
    assert cap.cross_attentions.dtype == np.float32
    assert len(cap.target_special) == len(cap.target_scores) == n_tgt and 1 <= n_tgt <= 6
    for arr in (cap.attentions, cap.cross_attentions, cap.decoder_attentions):
        assert _rows_sum_to_one(arr)
    # The decoder is causal: no step attends to a later one.
    assert np.allclose(np.triu(cap.decoder_attentions, k=1), 0.0)
    assert all(0.0 <= p <= 1.0 for p in cap.target_scores)
    assert cap.decoding["mode"] == "generated" and cap.decoding["strategy"] == "greedy"


@pytest.mark.parametrize("name", ["marian", "t5"])
def test_align_labels_line_up_with_tokens(loaded, name):
    from attncli.inputs import clean_label
    from attncli.sources import capture_align

    tok = loaded[name].processor
    cap = capture_align(SOURCE, loaded[name], target="die katze sass")
    src_ids = tok(SOURCE)["input_ids"]
    assert cap.tokens == [r if r in tok.all_special_tokens else clean_label(r) for r in tok.convert_ids_to_tokens(src_ids)]
    assert cap.special == [i in tok.all_special_ids for i in src_ids]
    tgt_ids = tok(text_target="die katze sass")["input_ids"]  # ends with </s>
    assert cap.target_tokens == [r if r in tok.all_special_tokens else clean_label(r)
                                 for r in tok.convert_ids_to_tokens(tgt_ids)]
    assert cap.target_tokens[-1] == "</s>" and cap.target_special[-1] and not any(cap.target_special[:-1])
    assert cap.target_text == tok.decode(tgt_ids, skip_special_tokens=True)
    assert cap.cross_attentions.shape[2:] == (len(tgt_ids), len(src_ids))
    assert cap.decoding == {"mode": "given", "scored": "teacher-forced"}


def test_bart_target_keeps_its_leading_bos(loaded):
    """BART trains on labels "<s> ... </s>" after the start token </s>: a given target is scored the same way."""
    from attncli.sources import capture_align

    cap = capture_align(SOURCE, loaded["bart"], target="die katze")
    tok = loaded["bart"].processor
    assert cap.target_tokens[0] == "<s>" and cap.target_tokens[-1] == "</s>"
    assert cap.target_special == [True] + [False] * (len(cap.target_tokens) - 2) + [True]
    assert len(cap.target_tokens) == len(tok(text_target="die katze")["input_ids"])
    assert cap.tokens[1:3] == ["the", "cat"]  # source labels from the fast tokenizer's offsets


@pytest.mark.parametrize("name", ["ved", "blip"])
def test_caption_capture_grid_image_and_rows(loaded, image, name):
    from attncli.sources import capture_caption

    cap = capture_caption(image, loaded[name], max_new_tokens=4)
    grid = cap.grid
    assert (grid.rows, grid.cols, grid.prefix, grid.prefix_labels) == (4, 4, 1, ("[CLS]",))
    assert cap.kind == "image" and cap.source == str(image)
    assert cap.tokens[0] == "[CLS]" and cap.tokens[1] == "(0,0)" and cap.tokens[-1] == "(3,3)"
    assert cap.image.shape == (32, 32, 3) and cap.image.dtype == np.uint8
    assert cap.attentions.shape == (2, 2, 17, 17)
    assert cap.cross_attentions.shape == (2, 2, len(cap.target_tokens), 17)
    assert _rows_sum_to_one(cap.cross_attentions) and _rows_sum_to_one(cap.attentions)
    assert 1 <= len(cap.target_tokens) <= 4


@pytest.mark.parametrize("name, end", [("ved", "<|endoftext|>"), ("blip", "[SEP]")])
def test_given_caption_is_scored_word_by_word(loaded, image, name, end):
    from attncli.sources import capture_caption

    cap = capture_caption(image, loaded[name], text="a cat on the mat")
    assert cap.target_tokens == ["a", "cat", "on", "the", "mat", end]
    assert cap.target_special == [False] * 5 + [True]
    assert cap.target_text == "a cat on the mat"
    assert cap.cross_attentions.shape[2] == 6


# --- teacher forcing equals the generated path -----------------------------------------------------------------

def _inputs(name, loaded, image):
    from attncli.images import load_image
    tok, images = loaded.family.split_processor(loaded)
    if name in ("marian", "t5", "bart"):
        return dict(tok(SOURCE, return_tensors="pt"))
    return {"pixel_values": images(images=[load_image(image)], return_tensors="pt")["pixel_values"]}


@pytest.mark.parametrize("name", ["marian", "t5", "bart", "ved", "blip"])
def test_teacher_forced_scoring_equals_generation(loaded, image, name):
    """Step t of generation attends and scores exactly like row t of the teacher-forced pass over its tokens."""
    import torch

    from attncli.sources import capture_align, capture_caption

    lm = loaded[name]
    inputs = _inputs(name, lm, image)
    with torch.inference_mode():
        gen = lm.model.generate(**inputs, max_new_tokens=5, do_sample=False, num_beams=1, output_attentions=True,
                                output_logits=True, return_dict_in_generate=True)
    if name in ("marian", "t5", "bart"):
        cap = capture_align(SOURCE, lm, max_new_tokens=5)
    else:
        cap = capture_caption(image, lm, max_new_tokens=5)
    steps = gen.sequences.shape[1] - 1
    assert len(cap.target_tokens) == steps == len(gen.logits)
    for t in range(steps):
        logits = gen.logits[t][0].float()
        probs = torch.softmax(logits, -1)
        assert cap.target_scores[t] == pytest.approx(float(probs[gen.sequences[0, t + 1]]), abs=1e-5)
        if name != "blip":  # BLIP's generate returns only the text decoder's self-attention
            step = torch.stack([layer[0, :, -1] for layer in gen.cross_attentions[t]]).numpy()  # (L, H, source)
            # float32 rounding differs between the cached step-by-step pass and the full pass (~2e-5 on the
            # peaked tiny T5); a wrong row or an off-by-one step would differ by whole tenths.
            np.testing.assert_allclose(cap.cross_attentions[:, :, t], step, atol=1e-4)


def test_beam_search_keeps_the_best_beam(loaded):
    import torch

    from attncli.families.encdec import generate_ids
    from attncli.sources import capture_align

    lm = loaded["marian"]
    tok, _ = lm.family.split_processor(lm)
    with torch.inference_mode():
        best = lm.model.generate(**tok(SOURCE, return_tensors="pt"), max_new_tokens=6, num_beams=3,
                                 do_sample=False)[0].tolist()
    assert generate_ids(lm, lm.family, dict(tok(SOURCE, return_tensors="pt")), 6, 3) == best
    cap = capture_align(SOURCE, lm, max_new_tokens=6, num_beams=3)
    assert len(cap.target_tokens) == len(best) - 1
    assert cap.decoding["strategy"] == "beam search (best beam)" and cap.decoding["num_beams"] == 3
    assert _rows_sum_to_one(cap.cross_attentions)


# --- bad inputs ------------------------------------------------------------------------------------------------

def test_empty_texts_are_usage_errors(loaded, image):
    from attncli.sources import capture_align, capture_caption

    with pytest.raises(UsageError, match="source text is empty"):
        capture_align("  ", loaded["marian"])
    with pytest.raises(UsageError, match="target text is empty"):
        capture_align(SOURCE, loaded["marian"], target=" ")
    with pytest.raises(UsageError, match="target text is empty"):
        capture_caption(image, loaded["ved"], text="")


def test_outputs_longer_than_the_decoder_are_refused(loaded, image):
    from attncli.sources import capture_caption

    with pytest.raises(UsageError, match="the target has 101 tokens but the decoder takes at most 64"):
        capture_caption(image, loaded["ved"], text=" ".join(["cat"] * 100))
    with pytest.raises(UsageError, match="--max-new-tokens 65 is more than the decoder's 64 positions"):
        capture_caption(image, loaded["ved"], max_new_tokens=65)
    cap = capture_caption(image, loaded["ved"], text=" ".join(["cat"] * 63))  # 63 words + end token: just fits
    assert cap.cross_attentions.shape[2] == 64


def test_wrong_kind_of_model_is_named(loaded, image):
    from attncli.sources import capture_align, capture_caption

    with pytest.raises(UsageError, match=r"is a vision encoder-decoder \(vision-encoder-decoder\), but attn align takes"):
        capture_align(SOURCE, loaded["ved"])
    with pytest.raises(UsageError, match=r"is a text encoder-decoder \(t5\), but attn caption takes"):
        capture_caption(image, loaded["t5"])


def test_models_without_cross_attention_are_refused(tiny_bert, tiny_gpt2, tmp_path, image):
    from attncli.sources import capture_align, capture_caption

    with pytest.raises(UsageError) as info:
        capture_align(SOURCE, str(tiny_bert))
    assert "has no cross-attention" in str(info.value) and "Marian/opus-mt, T5, BART" in str(info.value)
    vit = make_vit(tmp_path / "vit")
    with pytest.raises(UsageError) as info:
        capture_caption(image, str(vit))
    assert "(vit) and has no cross-attention" in str(info.value) and "VisionEncoderDecoder" in str(info.value)
    with pytest.raises(UsageError, match=r"\(gpt2\) and has no cross-attention"):
        capture_align(SOURCE, str(tiny_gpt2))


# --- store, views ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["t5", "ved"])
def test_capture_round_trips_through_the_store(loaded, image, tmp_path, name):
    from attncli.sources import capture_align, capture_caption
    from attncli.store import load_capture, save_capture

    cap = capture_align(SOURCE, loaded[name], max_new_tokens=3) if name == "t5" else \
        capture_caption(image, loaded[name], max_new_tokens=3)
    back = load_capture(save_capture(cap, tmp_path / "c.npz"))
    for field in ("attentions", "cross_attentions", "decoder_attentions"):
        np.testing.assert_array_equal(getattr(back, field), getattr(cap, field))
    for field in ("tokens", "special", "target_tokens", "target_special", "target_scores", "target_text", "decoding",
                  "grid", "kind", "warnings"):
        assert getattr(back, field) == getattr(cap, field), field


def _hand_capture() -> Capture:
    """2 target tokens × 3 source tokens, worked by hand; the last of each side is special."""
    cross = np.array([[[[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]]]], dtype=np.float32)  # (1 layer, 1 head, 2, 3)
    return Capture(attentions=np.full((1, 1, 3, 3), 1 / 3, dtype=np.float32), tokens=["Hallo", "Welt", "</s>"],
                   special=[False, False, True], model_id="hand", kind="text", text="Hallo Welt",
                   cross_attentions=cross, decoder_attentions=np.array([[[[1, 0], [0.5, 0.5]]]], dtype=np.float32),
                   target_tokens=["Hello", "</s>"], target_special=[False, True], target_scores=[0.75, 0.5],
                   target_text="Hello", decoding={"mode": "given", "scored": "teacher-forced"})


def test_align_view_best_and_skip_special():
    from attncli.views.cross import align_view

    view = align_view(_hand_capture())
    assert view.best() == [(0, pytest.approx(0.5)), (0, pytest.approx(0.1))]  # never the special </s>
    doc = view.to_dict()
    assert doc["schema"] == "attncli.align/1" and doc["weights"] == [[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]]
    assert doc["best"][1] == {"target": 1, "token": "</s>", "source": 0, "source_token": "Hallo", "weight": 0.1}
    hidden = align_view(_hand_capture(), skip_special=True)
    assert hidden.target_labels == ["Hello"] and hidden.source_labels == ["Hallo", "Welt"]
    np.testing.assert_allclose(hidden.matrix, [[0.5 / 0.7, 0.2 / 0.7]], rtol=1e-6)  # renormalised over kept tokens


def test_align_table_renders_exactly():
    from rich.console import Console

    from attncli.views.cross import align_view
    from attncli.render.cross import align_table

    console = Console(record=True, width=80, color_system=None)
    console.print(align_table(align_view(_hand_capture())))
    assert console.export_text() == (
        "Decoder layer 0 · its only head · hand\n"
        "source: Hallo Welt\n"
        "target: Hello  [given (2 tokens), scored with teacher forcing]\n"
        "rows: target tokens; columns: the source tokens they attend to (rows sum to 1)\n"
        "┏━━━━━━━━━━━━━━━━━┳━━━━━┳━━━━┳━━━━┳━━━━━━━━━━━━┳━━━┓\n"
        "┃target ↓ source →┃Hallo┃Welt┃</s>┃ best source┃  p┃\n"
        "┡━━━━━━━━━━━━━━━━━╇━━━━━╇━━━━╇━━━━╇━━━━━━━━━━━━╇━━━┩\n"
        "│Hello            │  .50│ .20│ .30│ Hallo 0.50 │.75│\n"
        "│</s>             │  .10│ .10│ .80│ Hallo 0.10 │.50│\n"
        "└─────────────────┴─────┴────┴────┴────────────┴───┘\n"
    )


def test_caption_view_top_patches_and_prefix(loaded, image):
    from attncli.views.cross import caption_view
    from attncli.sources import capture_caption

    cap = capture_caption(image, loaded["blip"], text="a cat")
    view = caption_view(cap, layer=-1, head=1)
    row = cap.cross_attentions[-1, 1]  # (target, source)
    np.testing.assert_allclose(view.maps.sum(axis=(1, 2)) + view.prefix.sum(axis=1), 1.0, atol=1e-5)
    for w, top in enumerate(view.top(3)):
        weights = [v for _, _, v in top]
        assert weights == sorted(weights, reverse=True)
        r, c, v = top[0]
        assert v == pytest.approx(float(row[w, 1:].max())) and cap.tokens[cap.grid.token_of(r, c)] == f"({r},{c})"
    doc = view.to_dict(2)
    assert doc["schema"] == "attncli.caption/1" and [w["token"] for w in doc["words"]] == ["a", "cat", "[SEP]"]
    assert len(doc["words"][0]["top"]) == 2 and set(doc["words"][0]["prefix"]) == {"[CLS]"}
    with pytest.raises(UsageError, match="layer 5 is out of range: the decoder has 2 layers"):
        caption_view(cap, layer=5)


# --- CLI -------------------------------------------------------------------------------------------------------

def test_cli_align_json_png_and_heatmap_rerender(cli, s2s_models, tmp_path):
    png = tmp_path / "align.png"
    code, out, err = cli("align", SOURCE, "--model", str(s2s_models["marian"]), "--target", "die katze",
                         "--json", "-o", str(png))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "attncli.align/1" and doc["layer"] == 1 and doc["fuse"] == "mean"
    assert [t["token"] for t in doc["target"]["tokens"]][-1] == "</s>"
    assert len(doc["weights"]) == len(doc["target"]["tokens"])
    assert all(len(r) == len(doc["source"]["tokens"]) for r in doc["weights"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in err
    code, out, err = cli("heatmap", "-o", str(tmp_path / "again.png"))
    assert code == 0, err
    assert (tmp_path / "again.png").read_bytes()[:4] == b"\x89PNG"
    code, out, err = cli("heatmap", "--terminal", "--head", "0")
    assert code == 0, err
    assert "Decoder layer 1 · head 0" in out and "best source" in out


def test_cli_caption_table_and_per_word_figure(cli, s2s_models, image, tmp_path):
    png = tmp_path / "words.png"
    code, out, err = cli("caption", str(image), "--model", str(s2s_models["ved"]), "--max-new-tokens", "3",
                         "-o", str(png), "--save", str(tmp_path / "cap.npz"))
    assert code == 0, err
    assert "1st patch" in out and "on [CLS]" in out and "4×4 patches of 8×8 px" in out
    assert "stopped at --max-new-tokens 3" in err
    assert png.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "cap.npz").is_file()
    code, out, err = cli("heatmap", str(tmp_path / "cap.npz"), "-o", str(tmp_path / "again.png"))
    assert code == 0, err and (tmp_path / "again.png").is_file()


def test_cli_bad_inputs_are_one_line(cli, s2s_models, image, tiny_bert):
    marian, ved = str(s2s_models["marian"]), str(s2s_models["ved"])
    cases = [
        (("align", "", "--model", marian), 2, "the text is empty"),
        (("align", SOURCE, "--model", marian, "--target", ""), 2, "--target is empty"),
        (("align", str(image), "--model", marian), 2, "is an image; attn align takes text"),
        (("align", SOURCE, "--model", ved), 2, "is a vision encoder-decoder (vision-encoder-decoder), but attn align"),
        (("caption", str(image), "--model", marian), 2, "is a text encoder-decoder (marian), but attn caption"),
        (("caption", str(image), "--model", ved, "--text", " "), 2, "--text is empty"),
        (("caption", str(image), "--model", ved, "-o", "words.txt"), 2, "unknown figure format"),
        (("align", SOURCE, "--model", str(tiny_bert)), 2, "has no cross-attention"),
        (("align", SOURCE, "--model", marian, "--layer", "7"), 2, "the decoder has 2 layers"),
    ]
    for args, want_code, message in cases:
        code, out, err = cli(*args)
        assert code == want_code, (args, err)
        assert err.startswith("attn: error:") and message in err and err.count("\n") == 1, (args, err)


def test_default_models_offline_fail_in_one_line(cli):
    for args in (("align", SOURCE), ("caption", str(Path(__file__).parent / "no-such.png"))):
        code, out, err = cli(*args)
        assert code in (1, 2) and err.count("\n") == 1, err
    code, out, err = cli("align", SOURCE)
    assert code == 1 and "Helsinki-NLP/opus-mt-en-de" in err and "--model PATH" in err and "minilm" not in err


def test_help_of_align_and_caption_imports_nothing_heavy():
    from test_imports import _heavy_after

    assert _heavy_after(["align", "--help"]) == ""
    assert _heavy_after(["caption", "--help"]) == ""
