"""Model families: each config finds its family, loading keeps the task head, refusals say what a model is."""

from __future__ import annotations

import pytest

from attncli.choices import Purpose
from attncli.errors import NotSupportedError, UsageError


def configs():
    """One small config per family (no weights)."""
    import transformers as t

    return {
        "text encoder": t.BertConfig(),
        "causal language model": t.GPT2Config(),
        "llama": t.LlamaConfig(),
        "ViT-like image encoder": t.ViTConfig(),
        "deit": t.DeiTConfig(),
        "beit": t.BeitConfig(),
        "dinov2 registers": t.Dinov2WithRegistersConfig(),
        "text encoder-decoder": t.MarianConfig(),
        "t5": t.T5Config(),
        "bart": t.BartConfig(),
        "vision encoder-decoder": t.VisionEncoderDecoderConfig.from_encoder_decoder_configs(
            t.ViTConfig(), t.GPT2Config()),
        "BLIP captioner": t.BlipConfig(),
        "speech encoder-decoder": t.WhisperConfig(),
        "windowed-attention image model": t.SwinConfig(),
        "convolutional image model": t.ConvNextConfig(),
    }


EXPECTED = {"llama": "causal language model", "deit": "ViT-like image encoder", "beit": "ViT-like image encoder",
            "dinov2 registers": "ViT-like image encoder", "t5": "text encoder-decoder",
            "bart": "text encoder-decoder"}


@pytest.mark.parametrize("name", list(configs()))
def test_each_config_finds_its_family(name):
    from attncli.families import family_of

    family = family_of(configs()[name])
    assert family is not None and family.name == EXPECTED.get(name, name)


def test_refusals_say_what_the_model_is_and_what_the_command_takes():
    from attncli.families import require

    c = configs()
    assert require(c["speech encoder-decoder"], Purpose.align, "openai/whisper-tiny").name == "speech encoder-decoder"
    with pytest.raises(UsageError) as info:
        require(c["speech encoder-decoder"], Purpose.caption, "openai/whisper-tiny")
    assert str(info.value) == ("openai/whisper-tiny is a speech encoder-decoder (whisper), but attn caption takes a "
                               "BLIP captioner (BLIP) or a vision encoder-decoder (VisionEncoderDecoder, e.g. ViT+GPT-2 "
                               "captioners) (for this model use attn align AUDIO.wav)")
    with pytest.raises(UsageError, match=r"is a speech encoder-decoder \(whisper\), but attn explain takes .*"
                                         r"for this model use attn align AUDIO.wav"):
        require(c["speech encoder-decoder"], Purpose.text, "openai/whisper-tiny")
    with pytest.raises(UsageError, match=r"is a BLIP captioner \(blip\), but attn align takes .*attn caption IMAGE"):
        require(c["BLIP captioner"], Purpose.align, "blip")
    with pytest.raises(NotSupportedError, match=r"is not supported yet: it is a convolutional network and has no "
                                                r"attention weights"):
        require(c["convolutional image model"], Purpose.image_classification, "convnext")
    with pytest.raises(NotSupportedError, match="local windows"):
        require(c["windowed-attention image model"], Purpose.image, "swin")
    with pytest.raises(UsageError, match=r"\(bert\) and has no cross-attention"):  # a wrong --model: exit 2
        require(c["text encoder"], Purpose.align, "bert")
    assert require(c["llama"], Purpose.text, "llama").name == "causal language model"


def test_a_token_classifier_keeps_its_head(tmp_path, cli):
    import torch
    from transformers import BertConfig, BertForTokenClassification, BertTokenizer

    from attncli.models import load_model
    from tiny import WORDS

    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=3,
                        id2label={0: "O", 1: "B-PER", 2: "I-PER"}, label2id={"O": 0, "B-PER": 1, "I-PER": 2})
    BertForTokenClassification(config).save_pretrained(tmp_path)
    BertTokenizer(vocab=str(tmp_path / "vocab.txt"), model_max_length=32).save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), Purpose.text)
    assert type(loaded.model).__name__ == "BertForTokenClassification"  # not a bare BertModel
    assert loaded.family.name == "text encoder"
    code, out, err = cli("explain", "the cat sat", "--model", str(tmp_path), "--json")
    assert code == 0, err


def test_a_sequence_classifier_and_a_backbone_for_classification(tmp_path):
    from tiny_classifier import make_bert_classifier
    from tiny_vision import make_vit

    from attncli.models import load_model

    clf = load_model(str(make_bert_classifier(tmp_path / "clf")), Purpose.text_classification)
    assert type(clf.model).__name__ == "BertForSequenceClassification"
    import torch
    from transformers import ViTConfig, ViTModel

    vit = make_vit(tmp_path / "vit")
    backbone = tmp_path / "backbone"
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=32)).save_pretrained(backbone)
    (backbone / "preprocessor_config.json").write_text((vit / "preprocessor_config.json").read_text())
    assert type(load_model(str(backbone), Purpose.image).model).__name__ == "ViTModel"  # no random head added
    with pytest.raises(NotSupportedError, match="saved as ViTModel, with no trained classification head"):
        load_model(str(backbone), Purpose.image_classification)
    del torch
