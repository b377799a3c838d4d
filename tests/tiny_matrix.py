"""The architecture matrix: one tiny random model per architecture attncli claims, and what each command does with it.

Every model is built from its transformers config (hidden size 32, 2 layers, no network) with weights drawn wide
enough that attention is peaked, and with the architecture's own feature made to matter on a short input: a
sliding window narrower than the sentence, a small soft-cap, nonzero sinks, grouped-query heads, ALiBi, relative
position bias, register tokens. ``ARCHS`` declares, per architecture and command, whether the command works or
is refused and why; tests/test_matrix.py checks each declaration against the command (every capture equal to the
model's eager attention with ``output_attentions=True``), and scripts/supported_models.py renders the same
declarations as docs/supported-models.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# Commands in table order; "page" is `explain -o page.html` for text and `heatmap IMAGE -o page.html` for images.
COMMANDS = ("explain", "heatmap", "stats", "classify", "patches", "generate", "align", "page")
SENTENCE = "the cat sat on the mat because it was tired and the dog ran"
WORKS = "works"
HIDDEN, LAYERS, HEADS = 32, 2, 4
STD = 0.3  # weight scale: random attention is peaked, so a wrong soft-cap, sink or window shows


@dataclass(frozen=True)
class Arch:
    """One architecture of the matrix: how to build its tiny model and what each command does with it."""

    key: str  # short id, used in test ids and file names
    name: str  # the architecture as the docs name it
    group: str  # "text encoder", "causal LM", "encoder-decoder", "vision", "speech"
    feature: str  # what the tiny model exercises
    build: Callable[[Path], Path]
    outcomes: dict[str, str] = field(default_factory=dict)  # command -> WORKS or "refused: why"

    def works(self, command: str) -> bool:
        """Whether the command is declared to work on this architecture."""
        return self.outcomes.get(command) == WORKS


# -- weights and tokenizers ------------------------------------------------------------------------------------

def widen(model: Any, std: float = STD) -> Any:
    """Redraw every matrix and embedding from N(0, std), so random attention is peaked instead of uniform."""
    import torch

    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:
                param.normal_(0.0, std)
            elif name.endswith("sinks"):  # gpt-oss: one learned sink logit per head
                param.normal_(1.0, 1.0)
    return model


def _wordpiece(folder: Path, cls_sep: bool = True, limit: int = 64) -> Any:
    """A WordPiece tokenizer over the tiny vocabulary ([CLS] text [SEP])."""
    from transformers import BertTokenizer

    from tiny import WORDS

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS, "<s>", "</s>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizer(vocab=str(folder / "vocab.txt"), model_max_length=limit)


def _bpe(limit: int = 64) -> Any:
    """The byte-level BPE of tests/tiny.py (<|endoftext|> is id 0), about 300 pieces."""
    from tiny import _bpe as bpe

    return bpe(limit)


def _save(model: Any, processor: Any, folder: Path, *extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(folder)
    for p in (processor, *extra):
        if p is not None:
            p.save_pretrained(folder)
    return folder


def text_model(cls_name: str, config_name: str, causal: bool, after: Callable[[Any], None] | None = None,
               **config: Any) -> Callable[[Path], Path]:
    """A builder of a tiny text model: a WordPiece tokenizer for encoders, the byte-level BPE for causal LMs."""
    def build(folder: Path) -> Path:
        import torch
        import transformers

        tok = _bpe() if causal else _wordpiece(folder)
        size = {"vocab_size": 320 if causal else 40}
        if not causal:
            size.update(pad_token_id=0)
        else:
            size.update(bos_token_id=0, eos_token_id=0, pad_token_id=0)
        cfg = getattr(transformers, config_name)(**{**size, **config})
        torch.manual_seed(0)
        model = widen(getattr(transformers, cls_name)(cfg))
        if after is not None:
            after(model)
        return _save(model, tok, folder)
    return build


def _llama_like(**extra: Any) -> dict:
    return {"hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": LAYERS,
            "num_attention_heads": HEADS, "num_key_value_heads": 2, "max_position_embeddings": 64, **extra}


def _bert_like(**extra: Any) -> dict:
    return {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "intermediate_size": 2 * HIDDEN, "max_position_embeddings": 64, **extra}


# -- encoder-decoders, vision, speech ----------------------------------------------------------------------------

def seq2seq(maker: str) -> Callable[[Path], Path]:
    """tests/tiny_seq2seq.py's builders, with hidden size 32 where they take it."""
    def build(folder: Path) -> Path:
        import tiny_seq2seq

        return getattr(tiny_seq2seq, maker)(folder, hidden=HIDDEN, heads=HEADS)
    return build


def bart_like(cls_name: str, config_name: str, **extra: Any) -> Callable[[Path], Path]:
    """mBART / Pegasus: BART's tokenizer recipe (<s> text </s>) on the model's own config."""
    def build(folder: Path) -> Path:
        import torch
        import transformers

        import tiny_seq2seq

        tiny_seq2seq.make_bart(folder / "_bart", hidden=HIDDEN, heads=HEADS)
        tok = transformers.AutoTokenizer.from_pretrained(folder / "_bart")
        cfg = getattr(transformers, config_name)(
            vocab_size=len(tok), d_model=HIDDEN, encoder_layers=LAYERS, decoder_layers=LAYERS,
            encoder_attention_heads=HEADS, decoder_attention_heads=HEADS, encoder_ffn_dim=2 * HIDDEN,
            decoder_ffn_dim=2 * HIDDEN, max_position_embeddings=64, bos_token_id=0, pad_token_id=1, eos_token_id=2,
            forced_eos_token_id=2, **extra)
        torch.manual_seed(0)
        model = widen(getattr(transformers, cls_name)(cfg), 0.5)
        import shutil

        shutil.rmtree(folder / "_bart")
        return _save(model, tok, folder)
    return build


def vision(cls_name: str, config_name: str, image: int = 32, patch: int = 8, **extra: Any) -> Callable[[Path], Path]:
    """A tiny image model (a 4×4 patch grid) with a ViT image processor, labelled like tests/tiny_vision.py."""
    def build(folder: Path) -> Path:
        import torch
        import transformers

        from tiny_vision import LABELS

        cfg = getattr(transformers, config_name)(
            image_size=image, patch_size=patch, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
            num_attention_heads=HEADS, intermediate_size=2 * HIDDEN, num_labels=len(LABELS), id2label=LABELS,
            label2id={v: k for k, v in LABELS.items()}, **extra)
        torch.manual_seed(0)
        return _save(widen(getattr(transformers, cls_name)(cfg)), _image_processor(image), folder)
    return build


def _image_processor(image: int) -> Any:
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    return ViTImageProcessorPil(size={"height": image, "width": image})


def dual(cls_name: str, config_name: str, text_config: dict, vision_config: dict) -> Callable[[Path], Path]:
    """A dual encoder (CLIP, SigLIP): text and image towers, a BPE tokenizer and an image processor."""
    def build(folder: Path) -> Path:
        import torch
        import transformers

        tok = _bpe()
        common = dict(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                      intermediate_size=2 * HIDDEN)
        cfg = getattr(transformers, config_name)(
            text_config={**common, "vocab_size": len(tok), "max_position_embeddings": 64, **text_config},
            vision_config={**common, "image_size": 32, "patch_size": 8, **vision_config})
        torch.manual_seed(0)
        model = widen(getattr(transformers, cls_name)(cfg))
        return _save(model, tok, folder, _image_processor(32))
    return build


def whisper(folder: Path) -> Path:
    """tests/tiny_speech.py's Whisper."""
    from tiny_speech import make_whisper

    return make_whisper(folder)


def wav2vec2(folder: Path) -> Path:
    """A tiny wav2vec2 encoder (convolutional feature encoder, then self-attention) with its feature extractor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                         intermediate_size=2 * HIDDEN, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=32)
    torch.manual_seed(0)
    return _save(Wav2Vec2Model(cfg), Wav2Vec2FeatureExtractor(), folder)


def _sinks(model: Any) -> None:
    """gpt-oss: sinks far from zero, so leaving them out changes every row."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("sinks"):
                param.copy_(torch.linspace(-1.0, 2.0, param.numel()))


# -- the matrix ------------------------------------------------------------------------------------------------

TEXT_ENCODER = {"explain": WORKS, "heatmap": WORKS, "stats": WORKS, "page": WORKS,
                "align": "refused: has no cross-attention"}
CAUSAL = {**TEXT_ENCODER, "generate": WORKS}
SEQ2SEQ = {"explain": "refused: is a text encoder-decoder", "align": WORKS}
VISION = {"heatmap": WORKS, "stats": WORKS, "classify": WORKS, "patches": WORKS, "page": WORKS}
BACKBONE = {"heatmap": WORKS, "stats": WORKS, "classify": "refused: no trained classification head", "patches": WORKS,
            "page": WORKS}

DUAL = {**BACKBONE, "explain": WORKS, "classify": "refused: is a dual encoder"}

ARCHS: list[Arch] = [
    # text encoders
    Arch("bert", "BERT", "text encoder", "absolute positions",
         text_model("BertModel", "BertConfig", False, **_bert_like()), TEXT_ENCODER),
    Arch("roberta", "RoBERTa", "text encoder", "positions offset by the pad id",
         text_model("RobertaModel", "RobertaConfig", False, **_bert_like(max_position_embeddings=70)), TEXT_ENCODER),
    Arch("distilbert", "DistilBERT", "text encoder", "no token types",
         text_model("DistilBertModel", "DistilBertConfig", False, dim=HIDDEN, n_layers=LAYERS, n_heads=HEADS,
                    hidden_dim=2 * HIDDEN, max_position_embeddings=64), TEXT_ENCODER),
    Arch("albert", "ALBERT", "text encoder", "one layer module shared by every layer",
         text_model("AlbertModel", "AlbertConfig", False, embedding_size=16, **_bert_like()),
         TEXT_ENCODER),
    Arch("electra", "ELECTRA", "text encoder", "embedding size below the hidden size",
         text_model("ElectraModel", "ElectraConfig", False, embedding_size=16, **_bert_like()), TEXT_ENCODER),
    Arch("deberta-v2", "DeBERTa-v2", "text encoder", "disentangled relative attention",
         text_model("DebertaV2Model", "DebertaV2Config", False, relative_attention=True, position_buckets=8,
                    max_relative_positions=16, pos_att_type=["p2c", "c2p"], **_bert_like()), TEXT_ENCODER),
    Arch("xlm-roberta", "XLM-R", "text encoder", "positions offset by the pad id",
         text_model("XLMRobertaModel", "XLMRobertaConfig", False, **_bert_like(max_position_embeddings=70)),
         TEXT_ENCODER),
    Arch("mpnet", "MPNet", "text encoder", "relative position bias",
         text_model("MPNetModel", "MPNetConfig", False, **_bert_like()),
         TEXT_ENCODER),
    Arch("modernbert", "ModernBERT", "text encoder", "local attention window (4) narrower than the sentence",
         text_model("ModernBertModel", "ModernBertConfig", False, hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
                    num_hidden_layers=LAYERS, num_attention_heads=HEADS, max_position_embeddings=64,
                    local_attention=4, layer_types=["sliding_attention", "full_attention"], cls_token_id=2,
                    sep_token_id=3, bos_token_id=2, eos_token_id=3), TEXT_ENCODER),
    # causal LMs
    Arch("gpt2", "GPT-2", "causal LM", "learned positions",
         text_model("GPT2LMHeadModel", "GPT2Config", True, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS,
                    n_positions=64), CAUSAL),
    Arch("gpt-neox", "GPT-NeoX", "causal LM", "partial rotary (rotary_pct 0.5)",
         text_model("GPTNeoXForCausalLM", "GPTNeoXConfig", True, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                    num_attention_heads=HEADS, intermediate_size=2 * HIDDEN, max_position_embeddings=64,
                    rotary_pct=0.5), CAUSAL),
    Arch("gpt-j", "GPT-J", "causal LM", "interleaved partial rotary (rotary_dim 4)",
         text_model("GPTJForCausalLM", "GPTJConfig", True, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS,
                    n_positions=64, rotary_dim=4), CAUSAL),
    Arch("opt", "OPT", "causal LM", "learned positions offset by 2",
         text_model("OPTForCausalLM", "OPTConfig", True, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                    num_attention_heads=HEADS, ffn_dim=2 * HIDDEN, word_embed_proj_dim=HIDDEN,
                    max_position_embeddings=64), CAUSAL),
    Arch("bloom", "BLOOM", "causal LM", "ALiBi",
         text_model("BloomForCausalLM", "BloomConfig", True, hidden_size=HIDDEN, n_layer=LAYERS, n_head=HEADS),
         CAUSAL),
    Arch("falcon", "Falcon (rotary)", "causal LM", "rotary, multi-query",
         text_model("FalconForCausalLM", "FalconConfig", True, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                    num_attention_heads=HEADS, multi_query=True, alibi=False, max_position_embeddings=64), CAUSAL),
    Arch("falcon-alibi", "Falcon (ALiBi)", "causal LM", "ALiBi",
         text_model("FalconForCausalLM", "FalconConfig", True, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                    num_attention_heads=HEADS, multi_query=False, alibi=True, max_position_embeddings=64), CAUSAL),
    Arch("llama", "Llama", "causal LM", "rotary, grouped-query (4 heads, 2 KV)",
         text_model("LlamaForCausalLM", "LlamaConfig", True, **_llama_like()), CAUSAL),
    Arch("mistral", "Mistral", "causal LM", "sliding window (4) narrower than the sentence",
         text_model("MistralForCausalLM", "MistralConfig", True, **_llama_like(sliding_window=4)), CAUSAL),
    Arch("mixtral", "Mixtral", "causal LM", "mixture of experts, sliding window (4)",
         text_model("MixtralForCausalLM", "MixtralConfig", True,
                    **_llama_like(sliding_window=4, num_local_experts=2, num_experts_per_tok=1)), CAUSAL),
    Arch("qwen2", "Qwen2", "causal LM", "grouped-query, q/k/v biases",
         text_model("Qwen2ForCausalLM", "Qwen2Config", True, **_llama_like()), CAUSAL),
    Arch("qwen3", "Qwen3", "causal LM", "q/k RMS norm, grouped-query",
         text_model("Qwen3ForCausalLM", "Qwen3Config", True, **_llama_like(head_dim=8)), CAUSAL),
    Arch("gemma", "Gemma", "causal LM", "scaled embeddings, grouped-query",
         text_model("GemmaForCausalLM", "GemmaConfig", True, **_llama_like(head_dim=8)), CAUSAL),
    Arch("gemma2", "Gemma-2", "causal LM", "attention soft-capping (2.0), sliding window (4) on layer 0",
         text_model("Gemma2ForCausalLM", "Gemma2Config", True,
                    **_llama_like(head_dim=8, attn_logit_softcapping=2.0, sliding_window=4,
                                  query_pre_attn_scalar=8)), CAUSAL),
    Arch("gemma3", "Gemma-3", "causal LM", "q/k norm, sliding window (4) on layer 0, local rotary base",
         text_model("Gemma3ForCausalLM", "Gemma3TextConfig", True,
                    **_llama_like(head_dim=8, sliding_window=4, query_pre_attn_scalar=8,
                                  layer_types=["sliding_attention", "full_attention"])), CAUSAL),
    Arch("gpt-oss", "gpt-oss", "causal LM", "attention sinks (-1 to 2), sliding window (4), mixture of experts",
         text_model("GptOssForCausalLM", "GptOssConfig", True, after=_sinks,
                    **_llama_like(head_dim=8, sliding_window=4, num_local_experts=2, num_experts_per_tok=1,
                                  layer_types=["sliding_attention", "full_attention"],
                                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0})), CAUSAL),
    Arch("phi3", "Phi-3", "causal LM", "fused qkv projection, grouped-query",
         text_model("Phi3ForCausalLM", "Phi3Config", True, **_llama_like()), CAUSAL),
    Arch("olmo2", "OLMo-2", "causal LM", "q/k RMS norm over all heads",
         text_model("Olmo2ForCausalLM", "Olmo2Config", True, **_llama_like()), CAUSAL),
    # encoder-decoders
    Arch("t5", "T5", "encoder-decoder", "relative position bias", seq2seq("make_t5"), SEQ2SEQ),
    Arch("bart", "BART", "encoder-decoder", "learned positions offset by 2", seq2seq("make_bart"), SEQ2SEQ),
    Arch("marian", "Marian", "encoder-decoder", "sinusoidal positions", seq2seq("make_marian"), SEQ2SEQ),
    Arch("mbart", "mBART", "encoder-decoder", "pre-norm layers",
         bart_like("MBartForConditionalGeneration", "MBartConfig", decoder_start_token_id=2), SEQ2SEQ),
    Arch("pegasus", "Pegasus", "encoder-decoder", "sinusoidal positions, pre-norm",
         bart_like("PegasusForConditionalGeneration", "PegasusConfig", decoder_start_token_id=1), SEQ2SEQ),
    # vision
    Arch("vit", "ViT", "vision", "[CLS] + 4×4 patches", vision("ViTForImageClassification", "ViTConfig"), VISION),
    Arch("deit", "DeiT", "vision", "[CLS], [DIST], patches",
         vision("DeiTForImageClassificationWithTeacher", "DeiTConfig"), VISION),
    Arch("beit", "BEiT", "vision", "relative position bias in every layer",
         vision("BeitForImageClassification", "BeitConfig", use_relative_position_bias=True), VISION),
    Arch("dinov2", "DINOv2", "vision", "[CLS] + patches, layer scale",
         vision("Dinov2ForImageClassification", "Dinov2Config"), VISION),
    Arch("dinov2-registers", "DINOv2 with registers", "vision", "[CLS], 4 registers, patches",
         vision("Dinov2WithRegistersForImageClassification", "Dinov2WithRegistersConfig", num_register_tokens=4),
         VISION),
    Arch("clip-vision", "CLIP vision tower", "vision", "[CLS] + patches, quick-GELU",
         vision("CLIPVisionModel", "CLIPVisionConfig"), BACKBONE),
    Arch("clip", "CLIP (dual encoder)", "vision", "image tower for images, text tower for text",
         dual("CLIPModel", "CLIPConfig", {"eos_token_id": 0, "bos_token_id": 0, "pad_token_id": 0}, {}),
         DUAL),
    Arch("siglip", "SigLIP (dual encoder)", "vision", "no [CLS]: 16 patches, attention-pooling head",
         dual("SiglipModel", "SiglipConfig", {"max_position_embeddings": 64, "bos_token_id": 0, "eos_token_id": 0,
                                              "pad_token_id": 0}, {}),
         DUAL),
    # speech
    Arch("whisper", "Whisper", "speech", "mel frames, cross-attention timing", whisper,
         {"explain": "refused: is a speech encoder-decoder", "align": WORKS}),
    Arch("wav2vec2", "wav2vec2", "speech", "a speech encoder with no decoder", wav2vec2,
         {"explain": "refused: it is a speech encoder", "align": "refused: it is a speech encoder"}),
]

BY_KEY = {a.key: a for a in ARCHS}
