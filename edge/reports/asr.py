"""Speech → text for voice reports: PyAV decoding and faster-whisper on the CPU.

Any container PyAV reads (wav, mp3, m4a, amr, ogg …) is decoded and resampled to 16 kHz
mono float32 in-process (no ffmpeg binary). The Whisper model is loaded once per process
(int8, few threads) and prompted with the domain's vocabulary and place names; the
transcript is normalised (simplified characters, punctuation, sound-alike place names
and keywords re-spelled, digits in addresses).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.reports.normalize import PhoneticCorrector, normalize_transcript
from pipelines.report_extract import Place

__all__ = [
    "AudioError",
    "SAMPLE_RATE",
    "Transcript",
    "decode_audio",
    "load_model",
    "Transcriber",
    "build_prompt",
    "build_hotwords",
    "districts_of",
    "DOMAIN_TERMS",
    "VOCAB_MODES",
]

DOMAIN_TERMS: tuple[str, ...] = (
    "消防通道", "井盖", "燃气", "天然气", "积水", "高空抛物", "落水", "溺水", "堰塘", "网格",
    "单元", "起火", "冒烟", "漏水", "占道", "噪音", "油烟", "垃圾", "报警", "被困", "冒充",
    "供水", "下水道", "污水", "路灯", "护栏", "排烟管", "地沟油",
)  # fmt: skip
"""Domain words Whisper base tends to mishear (消防 → 小房, 栋 → 洞): biased towards them."""

VOCAB_MODES = ("none", "terms", "prompt", "hotwords", "both")

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """Audio that cannot be decoded, or holds no usable sound."""


@dataclass(frozen=True)
class Transcript:
    """One transcription.

    Attributes:
        text: normalised transcript (simplified, punctuated, places re-spelled).
        raw_text: what the model printed.
        duration_s: audio length in seconds.
        elapsed_s: wall time of the recognition (excluding model load).
        language: detected/forced language.
    """

    text: str
    raw_text: str
    duration_s: float
    elapsed_s: float
    language: str = "zh"

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio time."""
        return self.elapsed_s / self.duration_s if self.duration_s > 0 else 0.0


def decode_audio(source: str | Path | bytes, max_seconds: float | None = None) -> np.ndarray:
    """Decode an audio file or bytes to 16 kHz mono float32 in [-1, 1].

    Args:
        source: a path, or the file's bytes.
        max_seconds: stop with AudioError when the audio is longer than this.

    Raises:
        AudioError: undecodable input, no audio stream, or too long.
    """
    import av

    handle: Any = io.BytesIO(source) if isinstance(source, bytes | bytearray) else str(source)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(handle, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("expected an audio stream, found none")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    chunks.append(arr)
                    total += arr.size
                if max_seconds is not None and total > max_seconds * SAMPLE_RATE:
                    raise AudioError(f"expected at most {max_seconds:g} s of audio, found more")
            for out in resampler.resample(None):
                arr = out.to_ndarray().reshape(-1)
                chunks.append(arr)
                total += arr.size
    except AudioError:
        raise
    except Exception as exc:  # PyAV raises many error types for bad input
        raise AudioError(
            f"expected a decodable audio file (wav, mp3, m4a, amr, ogg), found an unreadable one: {exc}"
        ) from None
    if not chunks or total == 0:
        raise AudioError("expected audio samples, found none")
    pcm = np.concatenate(chunks).astype(np.float32) / 32768.0
    if max_seconds is not None and pcm.size > max_seconds * SAMPLE_RATE:
        raise AudioError(
            f"expected at most {max_seconds:g} s of audio, found {pcm.size / SAMPLE_RATE:.1f} s"
        )
    return pcm


def is_silent(pcm: np.ndarray, threshold_dbfs: float = -50.0) -> bool:
    """True when the loudest 50 ms stretch stays below ``threshold_dbfs``."""
    if pcm.size == 0:
        return True
    win = SAMPLE_RATE // 20
    n = pcm.size // win
    if n == 0:
        rms = float(np.sqrt(np.mean(pcm**2)))
    else:
        frames = pcm[: n * win].reshape(n, win)
        rms = float(np.sqrt(np.mean(frames**2, axis=1)).max())
    return bool(20 * np.log10(max(rms, 1e-9)) < threshold_dbfs)


_MODELS: dict[tuple[str, int, str], Any] = {}
_MODELS_LOCK = threading.Lock()


def load_model(
    model: str | Path | None = None, cpu_threads: int = 2, compute_type: str = "int8"
) -> Any:
    """The faster-whisper model, loaded once per process per (path, threads, compute type).

    Args:
        model: a manifest name (default ``whisper-base``) or a CTranslate2 folder.
        cpu_threads: intra-op threads.
        compute_type: CTranslate2 compute type (int8 on the CPU).
    """
    from shaobing.models import resolve_model

    path = resolve_model(str(model or "whisper-base"))
    key = (str(path), cpu_threads, compute_type)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from faster_whisper import WhisperModel

            t0 = time.perf_counter()
            _MODELS[key] = WhisperModel(
                str(path), device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
            )
            log.info("loaded %s in %.1f s", path, time.perf_counter() - t0)
        return _MODELS[key]


def build_prompt(places: Sequence[Place], keywords: Sequence[str], max_chars: int = 90) -> str:
    """A short initial prompt in the reports' own style (simplified, punctuated, digits).

    Registry places are written as whole addresses (区+镇/街道+社区, no separators) so the
    model copies that form; a few domain words follow.
    """
    by_name = {p.name: p for p in places}
    chains: list[str] = []
    for p in places:
        if p.id is None or p.kind != "community":
            continue
        town = by_name.get(p.parent or "")
        district = by_name.get(town.parent or "") if town is not None else None
        chains.append("".join(x.name for x in (district, town, p) if x is not None))
    text = "重庆市网格员事件报告，" + "，".join(chains[:3]) + "3栋楼下。"
    extra = "，".join(k for k in keywords if 2 <= len(k) <= 4)
    text = (text + extra)[:max_chars]
    return text.rstrip("，") + "。"


def build_hotwords(places: Sequence[Place], terms: Sequence[str], max_chars: int = 120) -> str:
    """Hotwords: the deployment's own place names (registry places and aliases), then domain terms.

    Only registry places (those with an id or inside a registry unit) are used; the built-in
    Chongqing towns are too many to help. Kept short: a long list costs decoding time and
    makes Whisper copy names that were not said.
    """
    names: list[str] = []
    for p in places:
        if p.id is None and p.kind != "landmark":
            continue
        if p.kind == "grid" and ("网格" in p.name or " " in p.name):
            continue
        names.append(p.name)
    words = list(dict.fromkeys([*names, *terms]))
    out: list[str] = []
    used = 0
    for w in words:
        if used + len(w) + 1 > max_chars:
            break
        out.append(w)
        used += len(w) + 1
    return " ".join(out)


def districts_of(places: Sequence[Place]) -> dict[str, str]:
    """Place name → the district it lies in (following ``parent``), for places under one."""
    by_name = {p.name: p for p in places}
    out: dict[str, str] = {}
    for p in places:
        cur, seen = p, 0
        while cur.parent and seen < 5:
            nxt = by_name.get(cur.parent)
            if nxt is None:
                break
            cur, seen = nxt, seen + 1
        if cur is not p and cur.kind == "district":
            out[p.name] = cur.name
    return out


class Transcriber:
    """Transcribes report audio with one shared model and the domain's vocabulary."""

    def __init__(
        self,
        places: Sequence[Place],
        keywords: Sequence[str],
        model: str | Path | None = None,
        cpu_threads: int = 2,
        beam_size: int = 1,
        domain: bool = True,
        vocab: str = "both",
    ) -> None:
        """Prepare the prompt and the sound-alike corrector (the model loads on first use).

        Args:
            places: gazetteer (registry places and the built-in districts/towns).
            keywords: taxonomy keywords.
            model: manifest name or folder (default ``whisper-base``).
            cpu_threads: CTranslate2 threads.
            beam_size: decoding beam (1 = greedy, fastest).
            domain: prompt with the vocabulary and re-spell sound-alikes (off for general speech).
            vocab: how the vocabulary biases decoding: ``prompt`` (initial prompt in the reports'
                style with registry places), ``terms`` (the same without places), ``hotwords``
                (registry names and domain terms), ``both`` or ``none``.
        """
        if vocab not in VOCAB_MODES:
            raise ValueError(f"expected vocab in {VOCAB_MODES}, found {vocab!r}")
        self.model_name = model
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.prompt: str | None = None
        self.hotwords: str | None = None
        self.corrector: PhoneticCorrector | None = None
        if domain:
            if vocab in ("prompt", "both", "terms"):
                self.prompt = build_prompt(
                    places if vocab != "terms" else (),
                    ["消防通道", "井盖", "燃气", "积水", "高空抛物", "落水"],
                )
            if vocab in ("hotwords", "both"):
                self.hotwords = build_hotwords(places, DOMAIN_TERMS) or None
            self.corrector = PhoneticCorrector(
                [p.name for p in places],
                [*keywords, *DOMAIN_TERMS],
                districts_of(places),
                short_terms=[t for t in DOMAIN_TERMS if len(t) == 2],
            )

    @property
    def model(self) -> Any:
        """The loaded WhisperModel (cached per process)."""
        return load_model(self.model_name, self.cpu_threads)

    def transcribe(
        self, source: str | Path | bytes | np.ndarray, max_seconds: float | None = None
    ) -> Transcript:
        """Decode (unless given samples), recognise and normalise one recording.

        Raises:
            AudioError: the input cannot be decoded.
        """
        pcm = (
            source
            if isinstance(source, np.ndarray)
            else decode_audio(source, max_seconds=max_seconds)
        )
        duration = pcm.size / SAMPLE_RATE
        model = self.model
        t0 = time.perf_counter()
        segments, info = model.transcribe(
            pcm,
            language="zh",
            task="transcribe",
            beam_size=self.beam_size,
            vad_filter=True,
            vad_parameters={"min_silence_duration_ms": 500},
            initial_prompt=self.prompt,
            hotwords=self.hotwords,
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        raw = "，".join(s.text.strip() for s in segments if s.text.strip())
        elapsed = time.perf_counter() - t0
        text = normalize_transcript(raw, self.corrector) if raw else ""
        return Transcript(
            text=text,
            raw_text=raw,
            duration_s=round(duration, 3),
            elapsed_s=round(elapsed, 3),
            language=str(info.language),
        )
