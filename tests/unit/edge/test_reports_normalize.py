"""Transcript normalisation: simplified characters, punctuation, digits, sound-alike places."""

from __future__ import annotations

import numpy as np
import pytest

from edge.reports import load_context
from edge.reports.asr import SAMPLE_RATE, AudioError, decode_audio, is_silent
from edge.reports.normalize import (
    PhoneticCorrector,
    normalize_numbers_in_text,
    normalize_punctuation,
    normalize_transcript,
    syllable_cost,
    to_simplified,
)
from shaobing.paths import shared_dir

CTX = load_context()
CORR = PhoneticCorrector([p.name for p in CTX.places], CTX.keywords)


def test_simplified_and_punctuation() -> None:
    assert to_simplified("緊急情況，現在人還在水裡") == "紧急情况，现在人还在水里"
    assert normalize_punctuation("有人落水,快来 救人") == "有人落水，快来，救人。"
    assert normalize_punctuation("好的。") == "好的。"


def test_numbers_before_units_and_sound_alike_of_dong() -> None:
    assert normalize_numbers_in_text("三洞二单元五零二室") == "3栋2单元502室"
    assert normalize_numbers_in_text("十二楼") == "12楼"
    assert normalize_numbers_in_text("卫东村三组") == "卫东村三组"


def test_syllable_cost() -> None:
    assert syllable_cost("bei", "bei") == 0
    assert syllable_cost("zhan", "zan") == 0.25  # zh/z
    assert syllable_cost("long", "nong") == 0.25  # n/l
    assert syllable_cost("xin", "xing") == 0.25  # in/ing
    assert syllable_cost("ma", "pu") == 1.0


@pytest.mark.parametrize(
    ("heard", "fixed"),
    [
        ("被被区天府镇有人落水", "北碚区天府镇"),  # homophone of a registry district
        ("于北区隆西街道", "渝北区龙溪街道"),  # built-in district and street
        ("沙瓶罢区次气口接到一位老人", "沙坪坝区磁器口街道"),  # 街道 heard as 接到
        ("代家钩社区第二网格", "代家沟社区"),
        ("楼下小房通道被占了", "消防通道"),  # keyword by sound
    ],
)
def test_sound_alike_places_and_keywords(heard: str, fixed: str) -> None:
    assert fixed in CORR.correct(heard)


def test_correct_text_is_left_alone() -> None:
    for text in ("居民接到冒充公检法的电话。", "水漫到楼道里了。", "今天天气很好，大家注意安全。"):
        assert CORR.correct(text) == text


def test_full_chain_on_a_whisper_style_line() -> None:
    out = normalize_transcript("於中區七星港街道的消防通道上堆滿了紙箱,三洞樓下", CORR)
    assert out.startswith("渝中区七星岗街道的消防通道")
    assert "3栋楼下" in out and "，" in out and out.endswith("。")
    assert CTX.extract(out).type == "fire_lane_blocked"


def test_decode_wav_and_silence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    wav = shared_dir() / "data" / "reports" / "audio" / "dev_00.wav"
    if not wav.is_file():
        pytest.skip("spoken dev set not present")
    pcm = decode_audio(wav)
    assert pcm.dtype == np.float32 and 5.0 < pcm.size / SAMPLE_RATE < 8.0
    assert not is_silent(pcm)
    assert is_silent(np.zeros(SAMPLE_RATE, dtype=np.float32))
    with pytest.raises(AudioError, match="at most"):
        decode_audio(wav, max_seconds=2.0)
    with pytest.raises(AudioError):
        decode_audio(b"\x00\x01garbage" * 100)


# --------------------------------------------------------------------------- does not invent

from edge.reports.asr import DOMAIN_TERMS, districts_of  # noqa: E402

GUARDED = PhoneticCorrector(
    [p.name for p in CTX.places],
    [*CTX.keywords, *DOMAIN_TERMS],
    districts_of(CTX.places),
    short_terms=[t for t in DOMAIN_TERMS if len(t) == 2],
)


def test_correct_reports_keep_their_places_and_types() -> None:
    """Typed reports are already right: correcting them must not move a place or a type."""
    import csv
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "data" / "reports"
    changed = []
    for name in ("corpus_dev.tsv", "corpus_heldout.tsv"):
        with (data / name).open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                out = GUARDED.correct(r["text"])
                a, b = CTX.extract(r["text"]), CTX.extract(out)
                if (a.location.address, a.type) != (b.location.address, b.type):
                    changed.append((r["text"], out))
    assert not changed, changed[:5]


@pytest.mark.parametrize(
    ("heard", "stays"),
    [
        ("南岸区南坪街道有人摆摊", "南坪街道"),  # a known street is never swapped for another
        ("綦江区古南街道路灯坏了", "綦江区"),  # a known district neither (not 黔江区)
        ("江津区支坪镇的场镇街道全是水", "场镇街道"),  # not 昌州街道: that one is in 荣昌区
        ("文昌社区有人吵架", "文昌社区"),  # the unit word stays (not 文长寿区)
        ("一位老人摔倒了", "一位"),  # 2-character words move only on the same tones (not 异味)
        ("厨房有烟冒出来", "有烟"),  # not 油烟
    ],
)
def test_correction_does_not_invent(heard: str, stays: str) -> None:
    assert stays in GUARDED.correct(heard)


@pytest.mark.parametrize(
    ("heard", "fixed"),
    [
        ("九龙坡区线加弯街道民主村", "谢家湾街道"),  # misheard first syllable
        ("荣昌区长州街道", "昌州街道"),  # polyphone 长 read zhang
        ("垃圾桶满了拉基散落一地", "垃圾散落"),  # same syllables and tones
        ("两辆车辈困", "被困"),
    ],
)
def test_correction_still_fixes_homophones(heard: str, fixed: str) -> None:
    assert fixed in GUARDED.correct(heard)
