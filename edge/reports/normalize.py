"""Transcript normalisation: simplified characters, punctuation, digits in addresses, and
re-spelling of misheard place names and keywords by sound (pinyin).

Whisper prints traditional characters and writes unknown place names as homophones
(北碚 → 被被, 消防 → 小房, 三栋 → 三洞). The :class:`PhoneticCorrector` compares the
toneless pinyin of each stretch of the transcript with the vocabulary (gazetteer names
with their 区/街道/镇/社区 ending, taxonomy keywords) and re-spells stretches that sound
like a term, allowing the usual Mandarin/Sichuanese confusions (z/zh, n/l, an/ang, in/ing …).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipelines.report_extract import NUMERAL_CHARS, normalize_numbers

__all__ = [
    "to_simplified",
    "normalize_punctuation",
    "PhoneticCorrector",
    "normalize_transcript",
    "syllable_cost",
]

_HAN = re.compile(r"[\u4e00-\u9fff]")


@lru_cache(maxsize=1)
def _t2s() -> object:
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional → simplified Chinese (OpenCC t2s)."""
    conv = _t2s()
    return str(conv.convert(text))  # type: ignore[attr-defined]


_PUNCT = str.maketrans({",": "，", "!": "！", "?": "？", ";": "；", ":": "：", "、": "、"})


def normalize_punctuation(text: str) -> str:
    """Chinese punctuation, no stray spaces, and a full stop at the end."""
    text = text.strip().translate(_PUNCT)
    # Whisper sometimes prints a lone ０ for a pause between words
    text = re.sub(r"(?<=[\u4e00-\u9fff])[0０](?=[\u4e00-\u9fff]|\s*$)", "，", text)
    text = re.sub(r"\s+", " ", text)
    # Whisper spaces out the parts of an address (江北区 石马河街道): one place phrase, no comma
    text = re.sub(r"(?<=[区县镇道村路街巷号栋元组格]) (?=[\u4e00-\u9fff0-9])", "", text)
    text = re.sub(r"(?<=[\u4e00-\u9fff，。！？；：]) (?=[\u4e00-\u9fff])", "，", text)
    text = re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff，。！？])", "", text)
    text = re.sub(r"([，。！？；])\1+", r"\1", text)
    text = re.sub(r"[，、；：]+([。！？])", r"\1", text)
    text = re.sub(r"\.(?!\d)", "。", text)
    text = text.rstrip("，、；：")
    if text and text[-1] not in "。！？":
        text += "。"
    return text


# --------------------------------------------------------------------------- pinyin

_INITIALS = (
    "zh",
    "ch",
    "sh",
    "b",
    "p",
    "m",
    "f",
    "d",
    "t",
    "n",
    "l",
    "g",
    "k",
    "h",
    "j",
    "q",
    "x",
    "r",
    "z",
    "c",
    "s",
    "y",
    "w",
)
_FUZZY_INITIALS = {
    frozenset(p)
    for p in (
        ("z", "zh"),
        ("c", "ch"),
        ("s", "sh"),
        ("n", "l"),
        ("f", "h"),
        ("r", "l"),
        ("j", "z"),
        ("q", "c"),
        ("x", "s"),
    )
}
_FUZZY_FINALS = {
    frozenset(p)
    for p in (
        ("an", "ang"),
        ("en", "eng"),
        ("in", "ing"),
        ("ian", "iang"),
        ("uan", "uang"),
        ("o", "uo"),
        ("e", "o"),
        ("v", "i"),
        ("ong", "eng"),
        ("u", "v"),
    )
}


def _split(syl: str) -> tuple[str, str]:
    # y/w are spelling, not sounds: yan is -ian, wei is -uei (舰 jian ~ 堰 yan share -ian)
    if syl.startswith("y"):
        rest = syl[1:]
        if rest.startswith("u"):
            return "", "v" + rest[1:]
        return "", rest if rest.startswith("i") else "i" + rest
    if syl.startswith("w"):
        rest = syl[1:]
        return "", rest if rest.startswith("u") else "u" + rest
    for ini in _INITIALS:
        if syl.startswith(ini) and len(syl) > len(ini):
            return ini, syl[len(ini) :]
    return "", syl


def syllable_cost(a: str, b: str) -> float:
    """0 same sound, 0.25 a usual confusion, 0.5 same initial or final, 1 different."""
    if a == b:
        return 0.0
    ia, fa = _split(a)
    ib, fb = _split(b)
    same_i = ia == ib or frozenset((ia, ib)) in _FUZZY_INITIALS
    same_f = fa == fb or frozenset((fa, fb)) in _FUZZY_FINALS
    if same_i and same_f:
        return 0.25
    if ia == ib or fa == fb:
        return 0.5
    return 1.0


@lru_cache(maxsize=4096)
def _pinyin(text: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    # one item per character: non-Chinese characters stand for themselves
    return tuple(lazy_pinyin(text, style=Style.NORMAL, errors=lambda s: list(s)))  # type: ignore[arg-type,return-value]


@lru_cache(maxsize=1)
def _phrases() -> frozenset[str]:
    from pypinyin.phrases_dict import phrases_dict

    return frozenset(w for w in phrases_dict if 2 <= len(w) <= 4)


def _is_common_word(window: str) -> bool:
    """A word of the dictionary (大家 stays 大家, not 打架)."""
    return window in _phrases()


_CANON_INITIAL = {"zh": "z", "ch": "c", "sh": "s", "l": "n", "r": "n", "f": "h", "j": "z", "q": "c", "x": "s"}  # fmt: skip
_CANON_FINAL = {"ang": "an", "eng": "en", "ing": "in", "iang": "ian", "uang": "uan", "uo": "o", "e": "o", "v": "i", "u": "i", "ong": "en"}  # fmt: skip


def _sound_key(syl: str) -> str:
    """A coarse class of a syllable: two syllables within a usual confusion share it."""
    ini, fin = _split(syl)
    return _CANON_INITIAL.get(ini, ini) + "|" + _CANON_FINAL.get(fin, fin)


@lru_cache(maxsize=4096)
def _tones(text: str) -> tuple[str, ...]:
    from pypinyin import Style, lazy_pinyin

    # only called on Chinese characters (windows and keywords checked to be Han)
    out = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    return tuple(str(x) for x in out)


@dataclass(frozen=True)
class _Term:
    text: str
    syllables: tuple[str, ...]
    limit: float
    kind: str = "keyword"
    district: str | None = None
    tones: tuple[str, ...] | None = None  # short keywords: the heard tones must match too


def _place_limit(n: int) -> float:
    return {1: 0.0, 2: 0.25, 3: 0.5, 4: 0.75, 5: 1.0}.get(n, 1.25)


def _keyword_limit(n: int) -> float:
    # short words collide with everyday speech (一位/异味, 有烟/油烟): only long terms move
    return {1: -1.0, 2: 0.0, 3: 0.25, 4: 0.25}.get(n, 0.5)


ADDRESS_WORDS: tuple[str, ...] = (
    "隧道",
    "渡口",
    "码头",
    "广场",
    "步行街",
    "菜市场",
    "下穿隧道",
    "小区",
)
"""Address nouns whose sound-alikes are rare in speech: re-spelled only on an exact sound match."""

_DISTRICT_END = ("区", "县")
# a heard stretch that ends in a unit word keeps that unit (文昌社区 is not 文长寿区)
_UNITS = ("社区", "街道", "区", "县", "镇", "村", "乡", "路", "街")


def _same_unit(window: str, term: str) -> bool:
    unit = next((u for u in _UNITS if window.endswith(u)), None)
    return unit is None or term.endswith(unit)


class PhoneticCorrector:
    """Re-spells stretches of a transcript that sound like a known term.

    Guards against inventing places: a stretch that already is a known term (a place of the
    gazetteer, a keyword) or a dictionary word is never re-spelled; a candidate's first
    syllable must be a usual confusion of the heard one; a place whose district is known
    is not written into a report that names another district; short keywords (2 characters)
    are never re-spelled.
    """

    def __init__(
        self,
        places: Iterable[str],
        keywords: Iterable[str] = (),
        districts: Mapping[str, str] | None = None,
        short_terms: Iterable[str] = (),
    ) -> None:
        """Build the matcher.

        Args:
            places: place names with their endings (北碚区, 天府镇, 代家沟社区 …); a name of
                3+ characters before 街道/镇/社区 also counts on its own (杨家坪, 较场口),
                matched more strictly.
            keywords: taxonomy keywords and other domain words (消防通道, 燃气 …).
            districts: place name → the district it lies in (for the consistency check).
            short_terms: the only 2-character words that may be re-spelled (domain nouns that
                Whisper mishears: 燃气, 积水, 垃圾 …), on the same syllables and tones only.
        """
        districts = districts or {}
        terms: dict[str, _Term] = {}
        names = [n for n in places if len(n) >= 2 and all(_HAN.match(ch) for ch in n)]
        for name in names:
            terms[name] = _Term(
                name, _pinyin(name), _place_limit(len(name)), "place", districts.get(name)
            )
        for name in names:
            stem = re.sub(r"(街道|社区|镇)$", "", name)
            if stem != name and len(stem) >= 3 and stem not in terms:
                terms[stem] = _Term(stem, _pinyin(stem), 0.25, "place", districts.get(name))
        for word in ADDRESS_WORDS:
            terms.setdefault(word, _Term(word, _pinyin(word), 0.0))
        short = set(short_terms)
        for kw in [*keywords, *short]:
            if len(kw) == 2 and kw not in short:
                continue
            limit = _keyword_limit(len(kw))
            if limit >= 0 and kw not in terms and all(_HAN.match(ch) for ch in kw):
                # a 2-character keyword moves only on the same syllables with the same tones
                tones = _tones(kw) if len(kw) == 2 else None
                terms[kw] = _Term(kw, _pinyin(kw), limit, tones=tones)
        # index by (length, position, sound class of the 1st or 2nd syllable): only plausible
        # terms are tried, and a misheard first syllable (线加弯 → 谢家湾) still finds its term
        self._index: dict[tuple[int, int, str], list[_Term]] = {}
        for t in terms.values():
            for pos in range(min(2, len(t.text))):
                key = (len(t.text), pos, _sound_key(t.syllables[pos]))
                self._index.setdefault(key, []).append(t)
        self._lengths = sorted({len(t) for t in terms}, reverse=True)
        self._known = set(terms)
        self._districts = {n for n in names if n.endswith(_DISTRICT_END)}

    def correct(self, text: str) -> str:
        """Return ``text`` with sound-alike stretches replaced by the known terms."""
        if not text:
            return text
        syl = _pinyin(text)
        if len(syl) != len(text):
            return text
        keys = [_sound_key(x) for x in syl]
        protected = [False] * len(text)
        for n in self._lengths:
            for i in range(0, len(text) - n + 1):
                if text[i : i + n] in self._known:
                    for k in range(i, i + n):
                        protected[k] = True
        said = {d for d in self._districts if d in text}
        candidates: list[tuple[float, int, int, str]] = []
        for n in self._lengths:
            for i in range(0, len(text) - n + 1):
                window = text[i : i + n]
                if window in self._known or not all(_HAN.match(ch) for ch in window):
                    continue
                terms = list(self._index.get((n, 0, keys[i]), ()))
                if n > 1:
                    terms += [t for t in self._index.get((n, 1, keys[i + 1]), ()) if t not in terms]
                if not terms or _is_common_word(window):
                    continue
                ws = syl[i : i + n]
                for t in terms:
                    if t.tones is not None and _tones(window) != t.tones:
                        continue
                    if t.district and said and t.district not in said:
                        continue  # 江津区…昌州街道: a street of another district is not meant
                    if not _same_unit(window, t.text):
                        continue
                    cost = 0.0
                    for a, b in zip(ws, t.syllables, strict=True):
                        cost += syllable_cost(a, b)
                        if cost > t.limit:
                            break
                    if cost <= t.limit:
                        shared = sum(a == b for a, b in zip(window, t.text, strict=True))
                        candidates.append((cost - 0.3 * n - 0.01 * shared, i, n, t.text))
        candidates.sort()
        taken = [False] * len(text)
        out = list(text)
        for _, i, n, term in candidates:
            if any(taken[i : i + n]):
                continue
            # a correct known word inside the window stays, unless the term covers it entirely
            if any(protected[i : i + n]) and not self._covers_protected(text, i, n):
                continue
            for k in range(n):
                out[i + k] = term[k]
                taken[i + k] = True
        return "".join(out)

    def _covers_protected(self, text: str, i: int, n: int) -> bool:
        for m in self._lengths:
            for j in range(max(0, i - m + 1), min(len(text) - m, i + n - 1) + 1):
                if text[j : j + m] in self._known and (j < i or j + m > i + n):
                    return False
        return True


# --------------------------------------------------------------------------- numbers

_UNIT_HOMOPHONES = re.compile(
    rf"([{NUMERAL_CHARS}]+)(洞|动|冻|东|懂)(?=[^\u4e00-\u9fff]|楼|单|[一二三四五六七八九十0-9]|$|旁|下|门|前|后|的)"
)
_ROOM_RE = re.compile(r"([一二三四五六七八九零〇两]{3,4})(室|房)")


def normalize_numbers_in_text(text: str) -> str:
    """三洞 → 3栋 (a numeral before a sound-alike of 栋), then digits before 号/栋/单元/层/楼/室."""
    text = _UNIT_HOMOPHONES.sub(lambda m: m.group(1) + "栋", text)
    return normalize_numbers(text)


def normalize_transcript(text: str, corrector: PhoneticCorrector | None = None) -> str:
    """Full chain: simplified → punctuation → sound-alike correction → digits in addresses."""
    text = to_simplified(text)
    text = normalize_punctuation(text).replace("、", "")
    if corrector is not None:
        text = corrector.correct(text)
    return normalize_numbers_in_text(text)


def vocabulary_terms(
    place_names: Sequence[str], keywords: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Place names plus the forms without their ending (代家沟社区 → 代家沟) and the keywords."""
    places = list(dict.fromkeys(place_names))
    return places, [k for k in dict.fromkeys(keywords) if k not in places]
