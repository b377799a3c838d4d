"""Speech encoder-decoders (Whisper, Speech2Text, …): what each output token attended to in a recording.

The recording goes through the model's own feature extractor; the target is generated (the model's own
``generate``, so Whisper's start tokens and suppressed tokens are its own) or given, then scored in one
teacher-forced pass like every encoder-decoder. Encoder positions are laid on a time axis derived from the
feature extractor (hop_length / sampling_rate seconds per input frame) and the encoder's convolution strides.
Token times come from transformers' Whisper implementation (alignment heads + DTW), used, not rewritten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attncli.choices import Purpose
from attncli.errors import NotSupportedError, UsageError
from attncli.families.base import Modality, stack_attentions
from attncli.families.encdec import Decoded, EncoderDecoder, decoder_positions

if TYPE_CHECKING:
    import numpy as np

    from attncli.families.loaded import LoadedModel


class SpeechSeq2Seq(EncoderDecoder):
    """Audio in, text out: the decoder's cross-attention runs over the encoder's frames of the recording."""

    name = "speech encoder-decoder"
    examples = "Whisper, Speech2Text"
    modality = Modality.speech
    purposes = frozenset({Purpose.align})
    default_class = "AutoModelForSpeechSeq2Seq"
    processor_class = "AutoProcessor"

    def matches(self, config: Any) -> bool:
        """Configs with mel-spectrogram inputs, or transformers' speech encoder-decoder."""
        return hasattr(config, "num_mel_bins") or getattr(config, "model_type", "") == "speech-encoder-decoder"

    def split_processor(self, loaded: "LoadedModel") -> tuple[Any, Any]:
        """(tokenizer, feature extractor): both are needed, so a folder without either is refused."""
        proc = loaded.processor
        tokenizer, extractor = getattr(proc, "tokenizer", None), getattr(proc, "feature_extractor", None)
        if tokenizer is None or extractor is None:
            missing = "feature extractor (preprocessor_config.json)" if extractor is None else "tokenizer"
            raise NotSupportedError(f"{loaded.ref.model_id} has no {missing}",
                                    "its folder needs a processor: a feature extractor and a tokenizer")
        return tokenizer, extractor


def encoder_stride(model: Any) -> int:
    """How many input frames one encoder position covers: the product of the encoder's convolution strides."""
    import torch

    stride = 1
    for module in model.get_encoder().modules():
        if isinstance(module, torch.nn.Conv1d):
            stride *= int(module.stride[0])
    return stride


def special_ids(loaded: "LoadedModel", tokenizer: Any) -> set[int]:
    """Ids that are not words: the tokenizer's special ids, every added special token, Whisper's timestamps.

    A Whisper tokenizer saved without its timestamp tokens in the special list would otherwise let <|2.10|>
    through as a word; ids past <|notimestamps|> are Whisper's timestamps whatever the tokenizer says.
    """
    special = set(tokenizer.all_special_ids)
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    special |= {int(i) for i, tok in decoder.items() if getattr(tok, "special", False)}
    gen = loaded.model.generation_config
    for name in ("decoder_start_token_id", "eos_token_id", "no_timestamps_token_id", "prev_sot_token_id"):
        value = getattr(gen, name, None)
        if isinstance(value, int):
            special.add(value)
    stamps = getattr(gen, "no_timestamps_token_id", None)
    if isinstance(stamps, int):
        special |= set(range(stamps, int(loaded.config.vocab_size)))
    return special


def encode(loaded: "LoadedModel", inputs: dict[str, Any], attentions: bool = True) -> Any:
    """The encoder's one pass (with its self-attention if asked): generate and the teacher-forced pass reuse it."""
    import torch

    name = loaded.model.main_input_name
    with torch.inference_mode():
        return loaded.model.get_encoder()(inputs[name], output_attentions=attentions, return_dict=True)


def decoder_prompt(loaded: "LoadedModel", inputs: dict[str, Any], encoded: Any) -> list[int]:
    """The tokens the model's own generate starts from (Whisper: start, language, task, no-timestamps)."""
    import warnings

    import torch

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = loaded.model.generate(**inputs, encoder_outputs=encoded, max_new_tokens=1, do_sample=False,
                                    num_beams=1, return_dict_in_generate=True)
    ids = out.sequences[0].tolist()
    return ids[:-1] or ids


def leading_prompt(ids: list[int], special: set[int], eos: int | None) -> list[int]:
    """The prompt generate started from: the leading special tokens other than the end token."""
    n = 0
    while n < len(ids) - 1 and ids[n] in special and ids[n] != eos:
        n += 1
    return ids[:n]


def default_new_tokens(seconds: float) -> int:
    """Enough tokens for a window of speech: fast speech is about 4 tokens a second, so 6 a second plus 16."""
    return max(64, math.ceil(6 * seconds) + 16)


def speech_ids(loaded: "LoadedModel", family: SpeechSeq2Seq, inputs: dict[str, Any], prompt: list[int],
               target: str | None, max_new_tokens: int, num_beams: int, encoded: Any = None) -> list[int]:
    """The prompt and the target: generated by the model's own generate, or the given text and the end token."""
    import warnings

    import torch

    tokenizer, _ = family.split_processor(loaded)
    limit = decoder_positions(loaded.config, family)
    if target is not None:
        if not target.strip():
            raise UsageError("the target text is empty", "give at least one word, or leave it out to generate")
        text_ids = list(tokenizer(" " + target.strip(), add_special_tokens=False, verbose=False)["input_ids"])
        special = set(tokenizer.all_special_ids)
        if not [i for i in text_ids if i not in special]:
            raise UsageError(f"the target {target.strip()!r} has no tokens this model's tokenizer knows")
        eos = family.eos_id(loaded.model)
        ids = prompt + text_ids + ([eos] if eos is not None else [])
        if limit is not None and len(ids) - 1 > limit:
            raise UsageError(f"the target and its {len(prompt)} start tokens make {len(ids) - 1} decoder steps, "
                             f"but the decoder takes at most {limit}", "give a shorter target")
        return ids
    start = len(prompt) or 4  # not chosen yet: Whisper's longest prompt (start, language, task, no-timestamps)
    if limit is not None and start + max_new_tokens > limit:
        raise UsageError(f"--max-new-tokens {max_new_tokens} and the {start} start tokens pass the decoder's "
                         f"{limit} positions", f"give at most {limit - start}")
    extra = {"encoder_outputs": encoded} if encoded is not None else {}
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generation-config advice is not for users
        out = loaded.model.generate(**inputs, **extra, max_new_tokens=max_new_tokens, num_beams=num_beams,
                                    do_sample=False, num_return_sequences=1, return_dict_in_generate=True)
    return out.sequences[0].tolist()


def teacher_force_encoded(loaded: "LoadedModel", encoded: Any, ids: list[int]) -> Decoded:
    """The teacher-forced decoder pass over ids[:-1] on the encoder output already computed.

    An encoder pass run without its attentions gives an empty (0, heads, 0, 0) encoder array.
    """
    import numpy as np
    import torch

    decoder_in = torch.tensor([ids[:-1]], device=loaded.device)  # (1, target)
    with torch.inference_mode():
        out = loaded.model(encoder_outputs=encoded, decoder_input_ids=decoder_in, output_attentions=True)
    heads = int(out.cross_attentions[0].shape[1])
    kept = encoded.attentions is not None
    return Decoded(encoder=stack_attentions(encoded.attentions, "encoder attention") if kept
                   else np.zeros((0, heads, 0, 0), dtype=np.float32),
                   decoder=stack_attentions(out.decoder_attentions, "decoder self-attention"),
                   cross=stack_attentions(out.cross_attentions, "cross-attention"),
                   logits=out.logits[0].detach().float().cpu().numpy())


def alignment_heads(model: Any, n_layers: int, n_heads: int) -> tuple[list[list[int]], str, bool]:
    """(heads, where they come from, fallback?): the generation config's alignment heads, else the last half."""
    heads = getattr(model.generation_config, "alignment_heads", None)
    if heads:
        return [[int(layer), int(head)] for layer, head in heads], "the alignment heads of the generation config", False
    first = n_layers // 2
    span = f"{first}" if first == n_layers - 1 else f"{first}-{n_layers - 1}"
    heads = [[layer, head] for layer in range(first, n_layers) for head in range(n_heads)]
    return heads, (f"all {len(heads)} heads of decoder layer{'s' if first < n_layers - 1 else ''} {span}, the last "
                   "half (the generation config names no alignment_heads)"), True


def time_words(loaded: "LoadedModel", tokenizer: Any, cross: "np.ndarray", ids: list[int], prompt: int,
               special: set[int], mel_frames: int, frame_seconds: float, level: Any,
               audio_seconds: float) -> tuple[list[float | None], dict[str, Any]]:
    """Token times and word spans (speech_timing), and how they were found, for the capture's timing field."""
    from attncli.families import speech_timing as st

    if not str(getattr(loaded.config, "model_type", "")).startswith("whisper"):
        return [], {"method": None, "note": "no token times: cross-attention timing (alignment heads + DTW) is "
                                            "Whisper's; this model has no alignment heads"}
    frames = mel_frames // 2  # encoder positions that hold the recording (the rest is the extractor's padding)
    eos = getattr(loaded.model.generation_config, "eos_token_id", None)
    eos = eos[0] if isinstance(eos, list) else eos
    text, rows = st.dtw_rows(ids, prompt, special, eos)
    heads, origin, fallback = alignment_heads(loaded.model, int(cross.shape[0]), int(cross.shape[1]))
    timing: dict[str, Any] = {"heads": heads, "heads_from": origin, "prompt_tokens": prompt, "fallback": fallback}
    if not text or frames < 1:
        return [None] * (len(ids) - 1), {**timing, "method": None, "note": "no token times: no words to place"
                                         if not text else "no token times: the recording is shorter than one frame"}
    starts = st.dtw_times(cross, heads, rows, frames, frame_seconds, median_width=MEDIAN_WIDTH)
    words = st.word_spans(tokenizer, ids, text, starts, audio_seconds)
    moved = st.snap_to_sound(words, level, audio_seconds)
    split = st.split_at_dips(words, level)
    timing.update(
        method=("dynamic time warping over the cross-attention of the alignment heads (each frame normalised over "
                f"the tokens, median filter of {MEDIAN_WIDTH} frames, mean of the heads), on the rows that predict "
                "each word and the end token (OpenAI Whisper's timing); "
                + (f"then each word's span set to the stretch of sound (frames louder than {level.cut:.1f} dBFS, "
                   f"joined across quiet gaps under {st.MERGE_GAP * 1000:g} ms) it overlaps most (a stretch several "
                   "words share: the first starts it, the last ends it), and a boundary two "
                   f"words still share moved to the quietest frame from {st.DIP_BEFORE * 1000:g} ms before to "
                   f"{st.DIP_AFTER * 1000:g} ms after it" if level.cut is not None else
                   "the recording's loudness range is too small to tell sound from pause, so DTW's spans are kept "
                   "(a word ends where the next begins)")),
        median_filter=MEDIAN_WIDTH, loudness_threshold_db=None if level.cut is None else round(level.cut, 2),
        snapped_words=moved, split_boundaries=split, words=words)
    return st.token_times(len(ids) - 1, text, starts), timing


MEDIAN_WIDTH = 7  # OpenAI Whisper's and transformers' default


def no_speech(loaded: "LoadedModel", tokenizer: Any, logits: "np.ndarray", ids: list[int], prompt: int,
              special: set[int], level: Any) -> str | None:
    """Why the recording holds no speech (its level, or Whisper's no-speech probability), or None."""
    import numpy as np

    if level.peak < SILENT_DB:
        return f"the recording is silent (loudest {level.peak:.0f} dBFS)"
    nospeech = next((i for i in tokenizer.convert_tokens_to_ids(["<|nospeech|>", "<|nocaptions|>"])
                     if isinstance(i, int) and i != tokenizer.unk_token_id and i in special), None)
    if nospeech is None:
        return None
    row = logits[0].astype(np.float64)  # the start token's row: Whisper's no-speech probability
    prob = float(np.exp(row[nospeech] - row.max()) / np.exp(row - row.max()).sum())
    text = [k for k in range(prompt, len(ids)) if ids[k] not in special]
    if not text:
        return None
    shifted = logits.astype(np.float64)
    logp = [float(shifted[k - 1, ids[k]] - shifted[k - 1].max() - np.log(np.exp(shifted[k - 1] - shifted[k - 1].max())
                                                                        .sum())) for k in text]
    if prob > NO_SPEECH_PROB and float(np.mean(logp)) < NO_SPEECH_LOGPROB:
        return (f"no speech: Whisper's no-speech probability is {prob:.2f} and the words average a log-probability "
                f"of {np.mean(logp):.2f}")
    return None


SILENT_DB = -60.0  # loudest 20 ms below this: nothing to transcribe
NO_SPEECH_PROB, NO_SPEECH_LOGPROB = 0.6, -1.0  # OpenAI Whisper's no_speech_threshold and logprob_threshold


@dataclass
class Window:
    """One model window of the recording: its samples' place in the file and everything the model did on it."""

    offset: float  # seconds from the start of the file
    seconds: float  # of audio in this window
    features: Any  # (1, bins, input frames) tensor, padded to the model's window
    mel_frames: int  # input frames that hold audio
    ids: list[int]  # prompt + target
    prompt: int
    decoded: Decoded
    special: list[bool]  # per target token (ids[1:])
    times: list[float | None]
    timing: dict[str, Any]
    max_new_tokens: int


def run_window(loaded: "LoadedModel", family: SpeechSeq2Seq, samples: "np.ndarray", offset: float, *,
               target: str | None = None, text_ids: list[int] | None = None, max_new_tokens: int | None = None,
               num_beams: int = 1, encoder_attention: bool = True) -> Window:
    """Encode one window once, generate (or take the given text), teacher-force, and time its words."""
    import inspect

    from attncli.families.speech_timing import loudness

    tokenizer, extractor = family.split_processor(loaded)
    rate, hop = int(extractor.sampling_rate), int(extractor.hop_length)
    features = extractor(samples, sampling_rate=rate, return_tensors="pt")
    accepted = inspect.signature(loaded.model.forward).parameters
    inputs = {k: v.to(loaded.device) for k, v in features.items() if k in accepted}
    feats = features[loaded.model.main_input_name]  # (1, bins, input frames)
    mel_frames = min(math.ceil(len(samples) / hop), int(feats.shape[-1]))
    seconds = len(samples) / rate
    if max_new_tokens is None:
        room = decoder_positions(loaded.config, family)
        max_new_tokens = default_new_tokens(seconds)
        if room is not None:
            max_new_tokens = min(max_new_tokens, room - 4)
    encoded = encode(loaded, inputs, encoder_attention)
    special_set = special_ids(loaded, tokenizer)
    if target is None and text_ids is None:  # one generate: its output starts with the prompt it chose
        ids = speech_ids(loaded, family, inputs, [], None, max_new_tokens, num_beams, encoded)
        prompt = leading_prompt(ids, special_set, family.eos_id(loaded.model))
    else:
        prompt = decoder_prompt(loaded, inputs, encoded)
        if text_ids is not None:
            eos = family.eos_id(loaded.model)
            ids = prompt + text_ids + ([eos] if eos is not None else [])
        else:
            ids = speech_ids(loaded, family, inputs, prompt, target, max_new_tokens, num_beams, encoded)
    decoded = teacher_force_encoded(loaded, encoded, ids)
    stride = encoder_stride(loaded.model)
    if int(decoded.cross.shape[-1]) != math.ceil(feats.shape[-1] / stride):
        raise NotSupportedError(f"{loaded.ref.model_id}: the decoder attends to {decoded.cross.shape[-1]} encoder "
                                f"positions, but {feats.shape[-1]} input frames / stride {stride} make "
                                f"{math.ceil(feats.shape[-1] / stride)}", "the time axis would be wrong")
    level = loudness(samples, rate)
    times, timing = time_words(loaded, tokenizer, decoded.cross, ids, len(prompt), special_set, mel_frames,
                               hop / rate * stride, level, seconds)
    if target is None and text_ids is None:
        silent = no_speech(loaded, tokenizer, decoded.logits, ids, len(prompt), special_set, level)
        if silent:
            timing.update(no_speech=silent, words=[])
    if offset:
        times = [None if t is None else round(t + offset, 6) for t in times]
        for word in timing.get("words", []):
            word["start"], word["end"] = round(word["start"] + offset, 3), round(word["end"] + offset, 3)
            word["dtw"] = [round(v + offset, 3) for v in word["dtw"]]
    return Window(offset, seconds, feats, mel_frames, ids, len(prompt), decoded, [i in special_set for i in ids[1:]],
                  times, timing, max_new_tokens)


def _text(tokenizer: Any, ids: list[int], special: list[bool]) -> str:
    """The target's words without special tokens."""
    return tokenizer.decode([i for i, s in zip(ids[1:], special) if not s]).strip()


FAMILY = SpeechSeq2Seq()
