"""Tiny random encoder-decoder models (Marian, T5, ViT+GPT-2, BLIP) built from configs, saved like hub checkpoints."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from tiny import WORDS, make_gpt2

EN = ["the cat sat on the mat", "the dog ran to the big red house", "hello world", "a cat is tired",
      "the cat and the dog play in the house"]
# Weights drawn wider than the usual 0.02 so random attention is peaked, not uniform: views and tests
# then have real maxima to find.
INIT = 0.5
DE = ["die katze sass auf der matte", "der hund lief zum grossen roten haus", "hallo welt", "eine katze ist muede",
      "die katze und der hund spielen im haus"]


def _train_spm(folder: Path, name: str, lines: list[str], vocab_size: int) -> Path:
    """A tiny SentencePiece model trained on a few lines (the format opus-mt ships as source.spm/target.spm)."""
    import sentencepiece as spm

    corpus = folder / f"{name}.txt"
    corpus.write_text("\n".join(lines * 4) + "\n")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(folder / name), vocab_size=vocab_size,
                                   model_type="unigram", hard_vocab_limit=False, bos_id=-1, eos_id=1, unk_id=2,
                                   pad_id=0, minloglevel=2)
    corpus.unlink()
    (folder / f"{name}.vocab").unlink()
    return (folder / f"{name}.model").rename(folder / f"{name}.spm")


def make_marian(folder: Path, layers: int = 2, heads: int = 2, hidden: int = 16) -> Path:
    """A 2-layer Marian MT model with the real MarianTokenizer (source.spm, target.spm, vocab.json)."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    src = _train_spm(folder, "source", EN + [" ".join(WORDS)], 60)
    tgt = _train_spm(folder, "target", DE, 60)
    # Marian's vocab.json is the union of both sides' pieces; </s> is 0 and <pad> is the decoder start.
    vocab = {"</s>": 0, "<unk>": 1, "<pad>": 2}
    for path in (src, tgt):
        proc = spm.SentencePieceProcessor(model_file=str(path))
        for i in range(proc.get_piece_size()):
            vocab.setdefault(proc.id_to_piece(i), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*sacremoses.*")  # only its optional text normaliser
        tok = MarianTokenizer(str(src), str(tgt), str(folder / "vocab.json"), source_lang="en", target_lang="de",
                              model_max_length=64)
    config = MarianConfig(vocab_size=len(vocab), d_model=hidden, encoder_layers=layers, decoder_layers=layers,
                          encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=hidden * 2,
                          decoder_ffn_dim=hidden * 2, max_position_embeddings=64, pad_token_id=2, eos_token_id=0,
                          decoder_start_token_id=2, forced_eos_token_id=0, bos_token_id=None,
                          init_std=INIT)
    MarianMTModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_t5(folder: Path, layers: int = 2, heads: int = 2, hidden: int = 16) -> Path:
    """A 2-layer T5 with a small SentencePiece-style (Metaspace) unigram tokenizer from the tokenizers library."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    uni = Tokenizer(models.Unigram())
    uni.pre_tokenizer = pre_tokenizers.Metaspace()
    uni.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    uni.train_from_iterator(EN + DE + ["translate English to German: " + " ".join(WORDS)], trainer)
    uni.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=uni, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                  model_max_length=64)
    config = T5Config(vocab_size=uni.get_vocab_size(), d_model=hidden, d_kv=hidden // heads, d_ff=hidden * 2,
                      num_layers=layers, num_decoder_layers=layers, num_heads=heads,
                      relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                      initializer_factor=5.0)
    folder.mkdir(parents=True, exist_ok=True)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_vit_gpt2(folder: Path, layers: int = 2, heads: int = 2, hidden: int = 16, image: int = 32,
                  patch: int = 8) -> Path:
    """ViT encoder + GPT-2 decoder with cross-attention, an image processor and a tokenizer in one folder.

    Like nlpconnect/vit-gpt2-image-captioning: no processor class, so AutoProcessor finds only the tokenizer.
    """
    import torch
    from transformers import AutoTokenizer, GPT2Config, ViTConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    torch.manual_seed(0)
    gpt2_dir = make_gpt2(folder / "_gpt2", layers, heads, hidden)
    tok = AutoTokenizer.from_pretrained(gpt2_dir)
    encoder = ViTConfig(image_size=image, patch_size=patch, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=hidden * 2, initializer_range=INIT)
    decoder = GPT2Config(vocab_size=len(tok), n_embd=hidden, n_layer=layers, n_head=heads, n_positions=64,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, add_cross_attention=True,
                         is_decoder=True, initializer_range=INIT)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id = tok.bos_token_id
    config.pad_token_id = tok.eos_token_id
    config.eos_token_id = tok.eos_token_id
    model = VisionEncoderDecoderModel(config=config)
    with torch.no_grad():
        # Random weights tend to end the caption at once; a zero end-token embedding (tied to the output layer)
        # gives it logit 0 against random ones, so greedy decoding produces words up to --max-new-tokens.
        model.decoder.transformer.wte.weight[tok.eos_token_id].zero_()
    model.generation_config.decoder_start_token_id = tok.bos_token_id
    model.generation_config.pad_token_id = tok.eos_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    ViTImageProcessorPil(size={"height": image, "width": image}).save_pretrained(folder)
    for f in gpt2_dir.iterdir():
        f.unlink()
    gpt2_dir.rmdir()
    return folder


def make_blip(folder: Path, layers: int = 2, heads: int = 2, hidden: int = 16, image: int = 32,
              patch: int = 8) -> Path:
    """A BLIP captioner (ViT vision model + BERT-style text decoder) with its BlipProcessor."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", ".", *WORDS, "picture", "photo"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizer(vocab=str(folder / "vocab.txt"), bos_token="[DEC]", model_max_length=64)
    (folder / "vocab.txt").unlink()
    text = {"vocab_size": len(vocab), "hidden_size": hidden, "encoder_hidden_size": hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": hidden * 2,
            "max_position_embeddings": 64, "pad_token_id": 0, "bos_token_id": 5, "eos_token_id": 3,
            "sep_token_id": 3, "initializer_range": INIT}
    vision = {"hidden_size": hidden, "image_size": image, "patch_size": patch, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": hidden * 2, "initializer_range": INIT}
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=hidden)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    processor = BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": image, "width": image}),
                              tokenizer=tok)
    processor.save_pretrained(folder)
    return folder


def make_bart(folder: Path, layers: int = 2, heads: int = 2, hidden: int = 16) -> Path:
    """A 2-layer BART with a byte-level BPE tokenizer that wraps text as <s> ... </s>, like facebook/bart-*."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    torch.manual_seed(0)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(EN + DE + [" ".join(WORDS)], trainer)
    bpe.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", pad_token="<pad>", eos_token="</s>",
                                  unk_token="<unk>", model_max_length=64)
    config = BartConfig(vocab_size=bpe.get_vocab_size(), d_model=hidden, encoder_layers=layers, decoder_layers=layers,
                        encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=hidden * 2,
                        decoder_ffn_dim=hidden * 2, max_position_embeddings=64, bos_token_id=0, pad_token_id=1,
                        eos_token_id=2, decoder_start_token_id=2, forced_bos_token_id=0, forced_eos_token_id=2,
                        init_std=INIT)
    folder.mkdir(parents=True, exist_ok=True)
    BartForConditionalGeneration(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
