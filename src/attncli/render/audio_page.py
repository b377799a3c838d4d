"""The audio page of `attn align AUDIO -o page.html`: one self-contained file, nothing fetched.

The spectrogram the model saw (a PNG), the words on the time axis under it, and the recording itself (a 16-bit
WAV of the samples the model read: mono, at the model's rate) are embedded as data: URLs. Hovering a word draws
the frames it attends to (the mean of its tokens' rows of the shown layer) over the spectrogram; clicking a word
plays the recording from the word's start. Each word's row is stored scaled to its own maximum in 1/255 steps
(said on the page); the numbers themselves are in --json.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from attncli.render.html import render as html_render
from attncli.cache import write_atomic
from attncli.views.speech import SpeechPage

CSP = "default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
PX_PER_SECOND = 120

STYLE = """
body{font:14px system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:16px;margin:0 0 4px} .notes{color:#555;font-size:12px;margin:0 0 10px;padding-left:18px}
#scroll{overflow-x:auto;border:1px solid #ccc;position:relative}
#track{position:relative}
#spec{display:block;height:160px} #att{position:absolute;left:0;top:0;height:160px;pointer-events:none}
#words{position:relative;height:44px;background:#f4f4f4}
.w{position:absolute;height:19px;line-height:19px;font-size:12px;text-align:center;overflow:hidden;
   white-space:nowrap;background:#dbe8ff;border:1px solid #7aa7ff;border-radius:3px;cursor:pointer;box-sizing:border-box}
.w:hover,.w.on{background:#ffd27a;border-color:#e39b00}
#head{position:absolute;top:0;width:2px;height:204px;background:#e00;pointer-events:none;left:0}
#axis{position:relative;height:18px;font-size:11px;color:#666}
#axis span{position:absolute;top:2px}
#info{margin:8px 0;font-size:13px;min-height:18px}
"""

SCRIPT = """
const D = JSON.parse(document.getElementById('data').textContent);
const pps = D.pps, track = document.getElementById('track'), att = document.getElementById('att');
const audio = document.getElementById('audio'), info = document.getElementById('info');
const head = document.getElementById('head');
att.width = Math.max(1, Math.round(D.seconds * pps)); att.style.width = att.width + 'px';
function row(i) {
  const w = D.words[i], raw = atob(w.att), out = new Float32Array(D.frames);
  for (let k = 0; k < raw.length; k++) out[w.first + k] = raw.charCodeAt(k) / 255;
  return out;
}
function draw(i) {
  const g = att.getContext('2d'); g.clearRect(0, 0, att.width, att.height);
  if (i < 0) return;
  const r = row(i), fw = D.frame * pps;
  for (let f = 0; f < r.length; f++) {
    if (r[f] <= 0) continue;
    g.fillStyle = 'rgba(0,200,255,' + (0.15 + 0.75 * r[f]).toFixed(3) + ')';
    const h = att.height * r[f];
    g.fillRect(f * fw, att.height - h, Math.max(1, fw), h);
  }
}
const box = document.getElementById('words');
D.words.forEach((w, i) => {
  const el = document.createElement('div');
  el.className = 'w'; el.textContent = w.word; el.title = w.word + ': ' + w.start.toFixed(2) + '-' + w.end.toFixed(2) + ' s';
  el.style.left = (w.start * pps) + 'px'; el.style.width = Math.max(4, (w.end - w.start) * pps) + 'px';
  el.style.top = (i % 2 ? 23 : 2) + 'px';  // two lanes: a short word is never under its neighbour
  el.addEventListener('mouseenter', () => { draw(i); info.textContent = el.title + ' · attends most to ' + w.peak.toFixed(2) + ' s'; });
  el.addEventListener('mouseleave', () => { draw(D.selected); });
  el.addEventListener('click', () => {
    document.querySelectorAll('.w.on').forEach(e => e.classList.remove('on')); el.classList.add('on');
    D.selected = i; draw(i); audio.currentTime = w.start; audio.play();
  });
  box.appendChild(el);
});
D.selected = -1;
const axis = document.getElementById('axis');
const step = D.seconds > 60 ? 5 : 1;
for (let t = 0; t <= D.seconds; t += step) {
  const s = document.createElement('span'); s.style.left = (t * pps) + 'px'; s.textContent = t + ' s'; axis.appendChild(s);
}
function tick() { head.style.left = (audio.currentTime * pps) + 'px'; requestAnimationFrame(tick); }
requestAnimationFrame(tick);
document.body.dataset.ready = '1';
"""


def _wav(samples: Any, rate: int) -> bytes:
    """16-bit PCM mono WAV bytes."""
    import wave

    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def _spectrogram_png(spec: Any, width: int) -> bytes:
    """The feature matrix (bins, frames) as a PNG `width` pixels wide, low frequencies at the bottom."""
    import numpy as np
    from matplotlib import colormaps
    from PIL import Image

    values = np.asarray(spec, dtype=np.float64)[::-1]  # (bins, frames), flipped: bin 0 at the bottom
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    rgb = (colormaps["magma"](scaled)[..., :3] * 255).astype(np.uint8)
    image = Image.fromarray(rgb).resize((max(1, width), 160), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def page_data(page: SpeechPage) -> dict:
    """What the page's script reads: words with their attention rows (uint8, base64), the time axis."""
    import numpy as np

    view = page.view
    words = []
    for word, row in zip(view.words, page.word_rows()):
        nz = np.flatnonzero(row > 0)
        first, last = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, 0)
        top = float(row.max()) if row.size else 0.0
        q = np.round(row[first:last] / top * 255).astype(np.uint8) if top > 0 else np.zeros(0, np.uint8)
        words.append({"word": word["word"], "start": float(word["start"]), "end": float(word["end"]),
                      "first": first, "att": base64.b64encode(q.tobytes()).decode("ascii"),
                      "peak": float(first + int(np.argmax(row[first:last]))) * view.frame_seconds if q.size else 0.0})
    return {"pps": PX_PER_SECOND, "seconds": view.audio_seconds, "frame": view.frame_seconds,
            "frames": len(view.frame_times), "words": words}


def page_document(page: SpeechPage) -> str:
    """The whole page as one string."""
    view = page.view
    width = max(1, round(view.audio_seconds * PX_PER_SECOND))
    png = base64.b64encode(_spectrogram_png(view.spectrogram, width)).decode("ascii") \
        if view.spectrogram is not None and view.spectrogram.size else ""
    wav = base64.b64encode(_wav(page.samples, page.rate)).decode("ascii")
    notes = [*view.notes,
             f"audio: the {page.rate} Hz mono samples the model read (16-bit here); spectrogram: the model's input "
             "features, colours scaled to their range",
             "hover a word: the frames it attends to (mean of its tokens, this layer), each word scaled to its own "
             "maximum in 1/255 steps; click a word: play from its start; exact weights: --json"]
    data = json.dumps(page_data(page), separators=(",", ":")).replace("<", "\\u003c")
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        f"<title>{html.escape(('attn · ' + view.title)[:200])}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(view.title)}</h1>\n<ul class=\"notes\">{items}</ul>\n"
        f"<audio id=\"audio\" controls src=\"data:audio/wav;base64,{wav}\"></audio>\n<div id=\"info\"></div>\n"
        f"<div id=\"scroll\"><div id=\"track\" style=\"width:{width}px\">"
        f"<img id=\"spec\" alt=\"spectrogram\" style=\"width:{width}px\" src=\"data:image/png;base64,{png}\">"
        "<canvas id=\"att\" height=\"160\"></canvas><div id=\"words\"></div><div id=\"axis\"></div>"
        "<div id=\"head\"></div></div></div>\n"
        f"<script id=\"data\" type=\"application/json\">{data}</script>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


@html_render.register
def _(view: SpeechPage, path: Path | None = None, **options: Any) -> Path:
    """Write the audio page atomically."""
    if path is None:
        raise ValueError("the audio page is written to a file")
    return write_atomic(Path(path), page_document(view).encode("utf-8"))
