"""Text report → structured event fields (type, location, severity, elements).

Pure and stdlib-only (the severity levels come from the stdlib-only
:mod:`shaobing.severity`): the edge (voice reports) and the hub (Open311, the worker's
mobile page) both call :func:`extract`. The caller passes the taxonomy as plain data
(``shaobing.taxonomy.default_taxonomy()`` or a mapping of the same shape) and a
gazetteer (place names, e.g. from :func:`gazetteer_from_registry`).

Rules, not lists of sentences:

* **type** — keyword/synonym scoring over the taxonomy's ``keywords`` (plus each type's
  Chinese name); a keyword right after a negator (没有、不是、并非 …) does not count;
  every type that scores close to the best is kept as a candidate.
* **location** — a grammar of Chinese address parts (区/县, 镇/街道/乡, 村/社区, 组, 网格,
  路/街/巷/大道, 号, 小区, 栋/幢/单元/楼/层/室, landmarks such as 广场/渡口/隧道/步行街/
  菜市场/江边) chained left to right; the best contiguous run is the address, written as
  in the text with digits before 号/栋/幢/单元/层/楼/室. Known gazetteer names anchor
  the run and give the grid.
* **severity** — the type's default, raised (never lowered) by the taxonomy's
  ``severity_cues`` that are not negated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.report_lexicon import (
    CALM_CUES,
    CONCEPT_RULES,
    EMERGENCY_CUES,
    EMERGENCY_RULES,
    PREVENTION_PREFIXES,
    SETTING_KEYWORDS,
    SYNONYMS,
    URGENT_CUES,
    URGENT_RULES,
    WEIGHT,
)
from shaobing.severity import SEVERITIES

__all__ = [
    "Place",
    "ReportLocation",
    "ReportFields",
    "extract",
    "gazetteer_from_registry",
    "default_places",
    "cn_to_int",
    "normalize_numbers",
    "CHONGQING_DISTRICTS",
    "CHONGQING_TOWNS",
]


# --------------------------------------------------------------------------- gazetteer data

CHONGQING_DISTRICTS: tuple[str, ...] = (
    "渝中区", "江北区", "南岸区", "九龙坡区", "沙坪坝区", "大渡口区", "北碚区", "渝北区",
    "巴南区", "万州区", "涪陵区", "黔江区", "长寿区", "江津区", "合川区", "永川区",
    "南川区", "綦江区", "大足区", "璧山区", "铜梁区", "潼南区", "荣昌区", "开州区",
    "梁平区", "武隆区", "两江新区", "高新区", "城口县", "丰都县", "垫江县", "忠县",
    "云阳县", "奉节县", "巫山县", "巫溪县", "石柱县", "秀山县", "酉阳县", "彭水县",
)  # fmt: skip

# Streets (街道) and towns (镇) of Chongqing by district: a public gazetteer used to
# recognise and (for speech) re-spell place names; a deployment adds its own registry.
CHONGQING_TOWNS: dict[str, tuple[str, ...]] = {
    "渝中区": ("解放碑街道", "七星岗街道", "较场口街道", "朝天门街道", "望龙门街道", "南纪门街道",
            "上清寺街道", "菜园坝街道", "两路口街道", "大溪沟街道", "大坪街道", "化龙桥街道", "石油路街道"),
    "江北区": ("观音桥街道", "华新街街道", "五里店街道", "江北城街道", "石马河街道", "大石坝街道",
            "寸滩街道", "铁山坪街道", "郭家沱街道", "复盛镇", "鱼嘴镇", "五宝镇"),
    "南岸区": ("铜元局街道", "花园路街道", "南坪街道", "海棠溪街道", "龙门浩街道", "弹子石街道",
            "南山街道", "天文街道", "南坪镇", "涂山镇", "鸡冠石镇", "峡口镇", "长生桥镇",
            "迎龙镇", "广阳镇"),
    "九龙坡区": ("杨家坪街道", "黄桷坪街道", "谢家湾街道", "石坪桥街道", "石桥铺街道", "中梁山街道",
             "渝州路街道", "二郎街道", "九龙街道", "华岩镇", "白市驿镇", "走马镇", "含谷镇",
             "西彭镇", "铜罐驿镇", "陶家镇", "巴福镇", "金凤镇", "石板镇", "九龙镇"),
    "沙坪坝区": ("小龙坎街道", "沙坪坝街道", "渝碚路街道", "磁器口街道", "童家桥街道", "石井坡街道",
             "詹家溪街道", "井口街道", "歌乐山街道", "山洞街道", "新桥街道", "天星桥街道",
             "土湾街道", "覃家岗街道", "陈家桥街道", "虎溪街道", "西永街道", "联芳街道",
             "井口镇", "歌乐山镇", "青木关镇", "凤凰镇", "回龙坝镇", "曾家镇", "土主镇", "中梁镇"),
    "大渡口区": ("新山村街道", "跃进村街道", "九宫庙街道", "茄子溪街道", "春晖路街道", "八桥镇",
             "建胜镇", "跳磴镇"),
    "北碚区": ("天生街道", "朝阳街道", "北温泉街道", "东阳街道", "龙凤桥街道", "歇马街道",
            "澄江镇", "蔡家岗街道", "童家溪镇", "天府镇", "施家梁镇", "水土街道", "复兴街道",
            "三圣镇", "静观镇", "柳荫镇", "金刀峡镇"),
    "渝北区": ("双龙湖街道", "回兴街道", "龙溪街道", "龙山街道", "龙塔街道", "双凤桥街道", "人和街道",
            "天宫殿街道", "翠云街道", "大竹林街道", "悦来街道", "康美街道", "鸳鸯街道", "礼嘉街道",
            "仙桃街道", "宝圣湖街道", "王家街道", "木耳镇", "古路镇", "石船镇", "统景镇",
            "大盛镇", "洛碛镇", "玉峰山镇", "兴隆镇", "茨竹镇", "大湾镇"),
    "巴南区": ("鱼洞街道", "龙洲湾街道", "李家沱街道", "花溪街道", "南泉街道", "一品街道",
            "南彭街道", "惠民街道", "界石镇", "圣灯山镇", "木洞镇", "双河口镇", "麻柳嘴镇",
            "丰盛镇", "二圣镇", "东温泉镇", "姜家镇", "天星寺镇", "接龙镇", "石滩镇", "石龙镇",
            "安澜镇", "跳石镇"),
    "荣昌区": ("昌元街道", "昌州街道", "广顺街道", "双河街道", "安富街道", "峰高街道",
            "吴家镇", "直升镇", "盘龙镇", "仁义镇", "河包镇", "古昌镇"),
    "江津区": ("几江街道", "德感街道", "鼎山街道", "双福街道", "圣泉街道", "支坪镇", "白沙镇",
            "珞璜镇", "油溪镇", "吴滩镇", "石门镇", "先锋镇", "四面山镇"),
    "永川区": ("中山路街道", "胜利路街道", "南大街街道", "茶山竹海街道", "大安街道", "陈食街道",
            "卫星湖街道", "朱沱镇", "松溉镇", "仙龙镇", "来苏镇"),
    "合川区": ("合阳城街道", "钓鱼城街道", "南津街街道", "盐井街道", "草街街道", "云门街道",
            "大石街道", "太和镇", "钱塘镇", "龙市镇", "渭沱镇"),
    "璧山区": ("璧城街道", "璧泉街道", "青杠街道", "来凤街道", "丁家街道", "大路街道",
            "河边镇", "七塘镇", "正兴镇", "健龙镇"),
    "涪陵区": ("敦仁街道", "崇义街道", "荔枝街道", "江北街道", "李渡街道", "龙桥街道",
            "马鞍街道", "南沱镇", "白涛街道", "蔺市街道"),
    "万州区": ("高笋塘街道", "太白街道", "牌楼街道", "双河口街道", "龙都街道", "周家坝街道",
            "沙河街道", "钟鼓楼街道", "百安坝街道", "五桥街道", "陈家坝街道", "天城镇"),
    "长寿区": ("凤城街道", "晏家街道", "江南街道", "渡舟街道", "邻封镇", "但渡镇"),
    "綦江区": ("古南街道", "文龙街道", "三江街道", "万东镇", "东溪镇", "打通镇"),
    "大足区": ("龙岗街道", "棠香街道", "龙滩子街道", "智凤街道", "宝顶镇", "三驱镇"),
    "铜梁区": ("巴川街道", "东城街道", "南城街道", "蒲吕街道", "旧县街道", "安居镇"),
    "南川区": ("东城街道", "南城街道", "西城街道", "金佛山镇", "水江镇"),
    "潼南区": ("梓潼街道", "桂林街道", "双江镇", "龙形镇"),
    "黔江区": ("城东街道", "城南街道", "城西街道", "正阳街道", "舟白街道"),
}  # fmt: skip


@dataclass(frozen=True)
class Place:
    """One gazetteer entry.

    Attributes:
        name: the full name as people write it (e.g. 代家沟社区, 北碚区).
        kind: district, town, community, grid, road or landmark.
        id: registry id, when it comes from a registry.
        grid_id: the grid this place resolves to (a grid itself, or a community with one grid).
        parent: the enclosing place's name (a town's district …).
    """

    name: str
    kind: str
    id: str | None = None
    grid_id: str | None = None
    parent: str | None = None


def default_places() -> list[Place]:
    """The built-in Chongqing districts and towns (no grids)."""
    places = [Place(name=d, kind="district") for d in CHONGQING_DISTRICTS]
    for district, towns in CHONGQING_TOWNS.items():
        places.extend(Place(name=t, kind="town", parent=district) for t in towns)
    return places


def gazetteer_from_registry(
    data: Mapping[str, Any] | None, include_defaults: bool = True
) -> list[Place]:
    """Places of a grid registry (parsed YAML: districts → towns → communities → grids).

    Args:
        data: the registry mapping (``configs/demo/registry.yaml`` shape), or None.
        include_defaults: add the built-in Chongqing districts and towns.
    """
    places: list[Place] = []

    def inside(aliases: Any, parent: str, grid_id: str | None) -> None:
        # aliases of a town or community: roads, landmarks, estates, rivers inside it
        for alias in aliases or []:
            atext = " ".join(str(alias).split())
            if len(atext) >= 2 and atext != parent:
                places.append(Place(name=atext, kind="landmark", grid_id=grid_id, parent=parent))

    for d in (data or {}).get("districts") or []:
        dname = str(d.get("name", ""))
        if dname:
            places.append(Place(name=dname, kind="district", id=d.get("id")))
            inside(d.get("aliases"), dname, None)
        for t in d.get("towns") or []:
            tname = str(t.get("name", ""))
            if tname:
                places.append(Place(name=tname, kind="town", id=t.get("id"), parent=dname or None))
                inside(t.get("aliases"), tname, None)
            for c in t.get("communities") or []:
                cname = str(c.get("name", ""))
                grids = list(c.get("grids") or [])
                only = str(grids[0]["id"]) if len(grids) == 1 and grids[0].get("id") else None
                if cname:
                    places.append(
                        Place(
                            name=cname,
                            kind="community",
                            id=c.get("id"),
                            grid_id=only,
                            parent=tname or None,
                        )
                    )
                    inside(c.get("aliases"), cname, only)
                for g in grids:
                    gname = re.sub(r"[（(].*?[)）]", "", str(g.get("name", ""))).strip()
                    if not (gname and g.get("id")):
                        continue
                    gid = str(g["id"])
                    places.append(
                        Place(name=gname, kind="grid", id=gid, grid_id=gid, parent=cname or None)
                    )
                    # aliases: other names of the grid; "代家沟社区 3栋" = all parts present
                    for alias in g.get("aliases") or []:
                        atext = " ".join(str(alias).split())
                        if atext and atext != gname:
                            places.append(
                                Place(
                                    name=atext,
                                    kind="grid",
                                    id=gid,
                                    grid_id=gid,
                                    parent=cname or None,
                                )
                            )
    if include_defaults:
        known = {p.name for p in places}
        places.extend(p for p in default_places() if p.name not in known)
    return places


# --------------------------------------------------------------------------- numbers

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
NUMERAL_CHARS = "0123456789零〇一二两三四五六七八九十百千"
_FULLWIDTH = str.maketrans(
    "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ",
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
)


def cn_to_int(text: str) -> int | None:
    """Chinese or Arabic numerals → int (一百二十八 → 128, 一二八 → 128, 12 → 12); None if not a number."""
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if any(ch not in _CN_DIGITS and ch not in _CN_UNITS and not ch.isdigit() for ch in text):
        return None
    if not any(ch in _CN_UNITS for ch in text):
        digits = "".join(str(_CN_DIGITS[ch]) if ch in _CN_DIGITS else ch for ch in text)
        return int(digits)
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch.isdigit():
            current = int(ch)
        else:
            unit = _CN_UNITS[ch]
            total += (current or 1) * unit
            current = 0
    return total + current


_NUM_UNIT_RE = re.compile(rf"([{NUMERAL_CHARS}]+)(号楼|号院|号|栋|幢|单元|层|楼|室)")


def normalize_numbers(address: str) -> str:
    """Digits before 号/栋/幢/单元/层/楼/室 (三栋 → 3栋, 一百二十八号 → 128号); other numerals stay."""

    def sub(m: re.Match[str]) -> str:
        value = cn_to_int(m.group(1))
        return f"{value}{m.group(2)}" if value is not None else m.group(0)

    return _NUM_UNIT_RE.sub(sub, address)


# --------------------------------------------------------------------------- results


@dataclass
class ReportLocation:
    """Where a report says it happened."""

    address: str | None = None
    grid_id: str | None = None
    district: str | None = None
    town: str | None = None
    community: str | None = None
    places: list[str] = field(default_factory=list)


@dataclass
class ReportFields:
    """What :func:`extract` found in one report."""

    type: str
    types: list[str]
    severity: str
    location: ReportLocation
    summary: str
    confidence: float
    needs_confirmation: bool
    elements: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    cues: list[str] = field(default_factory=list)
    matched: dict[str, list[str]] = field(default_factory=dict)
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class _TypeVocab:
    code: str
    name: str
    severity: str
    keywords: tuple[str, ...]
    family: str
    weights: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Vocab:
    types: tuple[_TypeVocab, ...]
    cues: Mapping[str, tuple[str, ...]]

    def get(self, code: str) -> _TypeVocab | None:
        return next((t for t in self.types if t.code == code), None)


def _field(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


_VOCAB_CACHE: dict[int, tuple[Any, _Vocab]] = {}


def _vocab(taxonomy: Any) -> _Vocab:
    """Taxonomy keywords and names plus the lexicon's synonyms, each with its role weight."""
    cached = _VOCAB_CACHE.get(id(taxonomy))
    if cached is not None and cached[0] is taxonomy:
        return cached[1]
    types_raw = _field(taxonomy, "types", {}) or {}
    types = []
    for code, spec in dict(types_raw).items():
        name = str(_field(spec, "name", code))
        weights: dict[str, float] = {}
        for k in (str(k) for k in (_field(spec, "keywords", ()) or ())):
            weights[k] = WEIGHT["setting"] if k in SETTING_KEYWORDS else WEIGHT["cue"]
        for part in re.split(r"[/／、（）()\s]+", name):
            if len(part) >= 2:
                weights[part] = max(weights.get(part, 0.0), WEIGHT["event"])
        syn = SYNONYMS.get(str(code))
        if syn is not None:
            for role in ("setting", "cue", "event"):
                for w in getattr(syn, role):
                    weights[w] = max(weights.get(w, 0.0), WEIGHT[role])
        types.append(
            _TypeVocab(
                code=str(code),
                name=name,
                severity=str(_field(spec, "severity", "normal")),
                keywords=tuple(weights),
                family=str(_field(spec, "family", code) or code),
                weights=weights,
            )
        )
    cues_raw = _field(taxonomy, "severity_cues", {}) or {}
    cues = {str(k): tuple(str(w) for w in v or ()) for k, v in dict(cues_raw).items()}
    vocab = _Vocab(types=tuple(types), cues=cues)
    if len(_VOCAB_CACHE) > 8:
        _VOCAB_CACHE.clear()
    _VOCAB_CACHE[id(taxonomy)] = (taxonomy, vocab)
    return vocab


# --------------------------------------------------------------------------- negation

_NEGATORS = ("没有", "没", "不是", "并非", "并没有", "无", "未", "不", "别", "非")
_NOT_NEGATION = (
    "不停",
    "不断",
    "不少",
    "不住",
    "不得了",
    "不知",
    "不能",
    "不行",
    "不清",
    "不了",
    "不到",
    "不够",
    "不足",
    "不好",
    "无法",
    "没人",
    "不会吧",
    "没多久",
    "没过多久",
    "不一会",
    "不晓得",
    "不管",
    "不顾",
    "不到",
    "没法",
)
_CLAUSE_BREAK = set("，。！？；：,.!?;:\n\t ")


def _negated(text: str, start: int, window: int = 4) -> bool:
    """True when a negator sits in the few characters before ``start`` in the same clause."""
    lo = start
    while lo > 0 and start - lo < window and text[lo - 1] not in _CLAUSE_BREAK:
        lo -= 1
    before = text[lo:start]
    if not before:
        return False
    cleaned = before
    for ok in _NOT_NEGATION:
        cleaned = cleaned.replace(ok, "#" * len(ok))
    return any(neg in cleaned for neg in _NEGATORS)


def _find_all(text: str, word: str) -> Iterable[int]:
    i = text.find(word)
    while i >= 0:
        yield i
        i = text.find(word, i + 1)


def _clauses(text: str) -> list[str]:
    return [c for c in re.split(r"[，。！？；：,.!?;:\n]", text) if c]


# --------------------------------------------------------------------------- type scoring

_SEVERITY_BIAS = {"normal": 1.0, "urgent": 1.05, "emergency": 1.1}


def _concepts(text: str, known: set[str]) -> list[tuple[str, float, str]]:
    """Concept rules that fire: (type, weight, the words that made it)."""
    fired: list[tuple[str, float, str]] = []
    clauses = _clauses(text)
    for rule in CONCEPT_RULES:
        if rule.code not in known:
            continue
        for clause in [text] if rule.sentence else clauses:
            if any(u in clause for u in rule.unless):
                continue
            words = []
            for group in rule.groups:
                w = next((g for g in group if g in clause), None)
                if w is None:
                    break
                words.append(w)
            else:
                fired.append((rule.code, rule.weight, "+".join(words)))
                break
    return fired


def _score_types(text: str, vocab: _Vocab) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Scores per type from words (by role) and concept rules.

    A keyword right after a negator does not count; one that lies inside a longer matched
    keyword of another type (溺水 inside 防溺水) does not count either. Each word counts
    once. Within a family (fire: smoke, fire, gas; water: intrusion, drowning) the more
    severe type ranks at least as high as its family when its own evidence is comparable:
    smoke seen with fire is a fire.
    """
    occ: list[tuple[int, int, str, str, float]] = []
    for t in vocab.types:
        for kw in t.keywords:
            if not kw:
                continue
            for pos in _find_all(text, kw):
                if _negated(text, pos) and not kw.startswith(_NEGATORS):
                    continue
                occ.append((pos, pos + len(kw), t.code, kw, t.weights.get(kw, 1.0)))
    scores: dict[str, float] = {}
    hits: dict[str, list[str]] = {}
    counted: set[tuple[str, str]] = set()
    for s, e, code, kw, w in occ:
        if (code, kw) in counted:
            continue
        if any(
            s2 <= s and e <= e2 and (e2 - s2) > (e - s) and c2 != code for s2, e2, c2, _, _ in occ
        ):
            continue
        # a shorter word of the same type inside a longer one adds nothing
        if any(
            s2 <= s and e <= e2 and (e2 - s2) > (e - s) and c2 == code for s2, e2, c2, _, _ in occ
        ):
            continue
        counted.add((code, kw))
        scores[code] = scores.get(code, 0.0) + w * (1.0 + 0.25 * max(0, min(len(kw), 6) - 2))
        hits.setdefault(code, []).append(kw)
    for code, weight, words in _concepts(text, {t.code for t in vocab.types}):
        scores[code] = scores.get(code, 0.0) + weight
        hits.setdefault(code, []).append(words)
    by_code = {t.code: t for t in vocab.types}
    out = {
        code: total * _SEVERITY_BIAS.get(by_code[code].severity, 1.0)
        for code, total in scores.items()
    }
    families: dict[str, list[str]] = {}
    for code in out:
        families.setdefault(by_code[code].family, []).append(code)
    for members in families.values():
        if len(members) < 2:
            continue
        top = max(out[c] for c in members)
        strong = [c for c in members if out[c] >= 0.6 * top]
        worst = max(strong, key=lambda c: (_sev_rank(by_code[c].severity), out[c]))
        out[worst] = max(out[worst], top + 0.01)
    return {code: round(v, 3) for code, v in out.items()}, hits


def _sev_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


# --------------------------------------------------------------------------- address grammar


@dataclass(frozen=True)
class _Suffix:
    text: str
    kind: str
    min_name: int
    max_name: int
    weight: float


_STRONG: tuple[_Suffix, ...] = tuple(
    sorted(
        [
            _Suffix("区", "district", 2, 4, 2.0),
            _Suffix("县", "district", 1, 3, 2.0),
            _Suffix("市", "city", 2, 3, 1.0),
            _Suffix("街道", "town", 2, 5, 3.0),
            _Suffix("镇", "town", 1, 4, 3.0),
            _Suffix("乡", "town", 2, 4, 2.0),
            _Suffix("社区", "community", 1, 5, 3.0),
            _Suffix("村", "community", 1, 4, 3.0),
            _Suffix("大道", "road", 1, 5, 3.0),
            _Suffix("支路", "road", 1, 5, 3.0),
            _Suffix("路", "road", 1, 5, 3.0),
            _Suffix("大街", "road", 1, 4, 3.0),
            _Suffix("街", "road", 1, 4, 2.5),
            _Suffix("巷", "road", 1, 4, 2.5),
            _Suffix("胡同", "road", 1, 4, 2.5),
            _Suffix("步行街", "landmark", 0, 5, 2.5),
            _Suffix("农贸市场", "landmark", 0, 5, 2.0),
            _Suffix("菜市场", "landmark", 0, 5, 2.0),
            _Suffix("市场", "landmark", 1, 5, 2.0),
            _Suffix("广场", "landmark", 0, 5, 2.0),
            _Suffix("渡口", "landmark", 0, 5, 2.0),
            _Suffix("码头", "landmark", 0, 5, 2.0),
            _Suffix("隧道", "landmark", 0, 6, 2.0),
            _Suffix("大桥", "landmark", 1, 5, 2.0),
            _Suffix("立交", "landmark", 1, 5, 2.0),
            _Suffix("公园", "landmark", 0, 5, 2.0),
            _Suffix("江边", "landmark", 0, 3, 1.5),
            _Suffix("河边", "landmark", 0, 3, 1.5),
            _Suffix("湖边", "landmark", 0, 3, 1.5),
            _Suffix("岸边", "landmark", 0, 3, 1.5),
            _Suffix("江滩", "landmark", 0, 3, 1.5),
            _Suffix("小区", "landmark", 0, 5, 2.0),
            _Suffix("花园", "landmark", 1, 5, 2.0),
            _Suffix("大厦", "landmark", 1, 5, 2.0),
            _Suffix("商场", "landmark", 1, 5, 1.5),
            _Suffix("小学", "landmark", 1, 5, 1.5),
            _Suffix("中学", "landmark", 1, 5, 1.5),
            _Suffix("医院", "landmark", 1, 5, 1.5),
            _Suffix("地铁站", "landmark", 0, 5, 1.5),
            _Suffix("公交站", "landmark", 0, 5, 1.5),
            _Suffix("车站", "landmark", 1, 5, 1.5),
            _Suffix("加油站", "landmark", 0, 5, 1.5),
            _Suffix("工业园", "landmark", 0, 5, 1.5),
            _Suffix("水库", "landmark", 1, 4, 1.5),
            _Suffix("十字路口", "landmark", 0, 4, 1.5),
            _Suffix("路口", "landmark", 0, 4, 1.5),
            # institutions, estates, landmarks (a name of 2+ characters before them)
            _Suffix("大学", "landmark", 2, 6, 2.0),
            _Suffix("学院", "landmark", 2, 6, 2.0),
            _Suffix("学校", "landmark", 2, 5, 1.5),
            _Suffix("幼儿园", "landmark", 1, 5, 1.5),
            _Suffix("中心", "landmark", 2, 5, 1.5),
            _Suffix("新城", "landmark", 2, 4, 2.0),
            _Suffix("新区", "landmark", 2, 4, 2.0),
            _Suffix("步道", "landmark", 2, 4, 2.0),
            _Suffix("绿道", "landmark", 2, 4, 2.0),
            _Suffix("老街", "road", 1, 4, 2.5),
            _Suffix("正街", "road", 1, 4, 2.5),
            _Suffix("古镇", "landmark", 1, 4, 2.5),
            _Suffix("天街", "landmark", 1, 4, 2.5),
            _Suffix("下穿道", "landmark", 0, 5, 2.0),
            _Suffix("地下通道", "landmark", 0, 5, 1.5),
            _Suffix("植物园", "landmark", 1, 4, 2.0),
            _Suffix("动物园", "landmark", 1, 4, 2.0),
            _Suffix("乐园", "landmark", 2, 4, 2.0),
            _Suffix("工业园", "landmark", 0, 5, 1.5),
            _Suffix("产业园", "landmark", 1, 5, 1.5),
            _Suffix("森林公园", "landmark", 1, 4, 2.0),
            _Suffix("景区", "landmark", 2, 5, 2.0),
            _Suffix("酒店", "landmark", 2, 5, 1.5),
            _Suffix("宾馆", "landmark", 2, 5, 1.5),
            _Suffix("体育馆", "landmark", 1, 5, 1.5),
            _Suffix("图书馆", "landmark", 1, 5, 1.5),
            _Suffix("火车站", "landmark", 0, 5, 1.5),
            _Suffix("汽车站", "landmark", 0, 5, 1.5),
            _Suffix("电站", "landmark", 1, 4, 1.5),
            _Suffix("水厂", "landmark", 1, 4, 1.5),
            _Suffix("大院", "landmark", 1, 4, 1.5),
            _Suffix("家园", "landmark", 1, 4, 1.5),
            _Suffix("苑", "landmark", 2, 4, 1.5),
            # natural features: rivers, lakes, creeks, ponds, reservoirs, hills
            _Suffix("江", "water", 1, 3, 2.0),
            _Suffix("河", "water", 1, 3, 2.0),
            _Suffix("湖", "water", 1, 3, 2.0),
            _Suffix("溪", "water", 1, 3, 2.0),
            _Suffix("堰塘", "water", 1, 3, 1.5),
            _Suffix("水塘", "water", 1, 3, 1.5),
            _Suffix("湿地", "landmark", 1, 4, 1.5),
            _Suffix("山", "landmark", 2, 3, 1.5),
        ],
        key=lambda s: -len(s.text),
    )
)

# Chongqing toponym endings (较场口, 杨家坪, 沙坪坝, 观音桥 …): only where they continue an address.
_WEAK_ENDINGS = "口坪坝湾沱碑门寺岗铺垭嘴坡塘沟桥场湖溪山庙岩"
# words that are not place names although they end like one
_GENERIC = {
    "乡村",
    "农村",
    "马路",
    "公路",
    "道路",
    "大路",
    "小路",
    "山路",
    "街道",
    "社区",
    "城区",
    "小区",
    "市区",
    "郊区",
    "景区",
    "园区",
    "片区",
    "辖区",
    "地区",
    "山区",
    "库区",
    "灾区",
    "全区",
    "本区",
    "超市",
    "城市",
    "都市",
    "门市",
    "夜市",
    "上街",
    "逛街",
    "大街",
    "本村",
    "全村",
    "村里",
    "半路",
    "一路",
    "沿路",
    "上路",
    "走路",
    "过路",
    "修路",
    "挖路",
    "堵路",
    "让路",
    "带路",
    "路路",
    "中心",
    "学校",
    "新区",
    "上山",
    "下山",
    "爬山",
    "荒山",
    "后山",
    "高山",
    "深山",
    "山山",
}
# characters that end a natural feature's name when read backwards (掉进河 is not a river)
_WATER_NAME_STOP = set("下跳进过沿到入掉落冲滑栽游渡往去来向条个座片的在了里边")
_NOT_AFTER = {
    "路": "灯面况过线费由径障况",
    "江": "北南东西津州区县镇村路街桥口坝滩岸大城阳源安都门水里",
    "河": "北南东西津州区县镇村路街桥口坝岸大城阳源安都门水里流道",
    "湖": "北南区县镇村路街桥口岸大城水里上中面",
    "溪": "区县镇村路街桥口水里上中",
    "山": "区县镇村路街上下中坡顶脚洞",
    "街": "道头坊上边",
    "区": "域别",
    "市": "场民政",
    "村": "民里子委",
    "乡": "村镇下亲",
    "县": "城",
}
_STOP_CHARS = set(
    "的在是有了到往向从把被给为说我你他她它们就也还又很着吗呢吧啊呀个位那这哪些每各段条根辆户只栋层对于及与或而且但，。！？；：、,.!?;:\"'“”‘’（）()《》【】[] \t\n"
)
_STOP_WORDS = (
    "反映", "报告", "发现", "看到", "听说", "位于", "来自", "住在", "路过", "经过", "附近", "旁边",
    "今天", "昨天", "刚才", "现在", "早上", "上午", "中午", "下午", "晚上", "凌晨", "居民", "群众",
    "网格员", "市民", "业主", "情况", "麻烦", "这边", "那边", "我们", "一家", "一位", "一个", "一段",
    "一条", "一辆", "一名", "一处", "一座", "一户", "一片", "一间", "一所", "一块", "一根", "某", "有人", "紧急", "报警", "投诉", "举报", "门前", "对面",
)  # fmt: skip
_NUM_COMPONENT_RE = re.compile(
    rf"(第[{NUMERAL_CHARS}]+(?:网格|组|社))|([{NUMERAL_CHARS}]+(?:号楼|号院|号|栋|幢|单元|层|楼|室|组|社))|([A-Za-z](?:栋|座|区))"
)
_QUANTIFIER_FOLLOW = ("高层", "大楼", "楼房", "房子", "写字楼", "居民楼", "建筑", "住宅", "厂房")


@dataclass
class _Comp:
    start: int
    end: int
    kind: str
    weight: float


def _stop_mask(text: str) -> list[bool]:
    mask = [ch in _STOP_CHARS for ch in text]
    for word in _STOP_WORDS:
        for pos in _find_all(text, word):
            for i in range(pos, pos + len(word)):
                mask[i] = True
    return mask


def _numeric_components(text: str) -> list[_Comp]:
    comps = []
    for m in _NUM_COMPONENT_RE.finditer(text):
        s, e = m.start(), m.end()
        token = m.group(0)
        if (
            token[0] in "一两"
            and token[1:] in ("栋", "幢", "层", "楼")
            and text.startswith(_QUANTIFIER_FOLLOW, e)
        ):
            continue  # 一栋高层 = "a high-rise", not building no. 1
        if token.endswith(("层", "楼")) and s > 0 and text[s - 1] in "了盖建搭有高":
            continue  # 加盖了一层 = "one storey", not the first floor
        if token.endswith(("楼", "层")) and s > 0 and text[s - 1] in "一二两三四五六七八九十几":
            continue
        kind = "grid" if token.endswith("网格") else "number"
        comps.append(_Comp(s, e, kind, 2.0 if kind == "grid" else 1.0))
    return comps


def _strong_components(text: str, mask: list[bool], numeric: list[_Comp]) -> list[_Comp]:
    found: list[tuple[int, _Suffix]] = []
    i = 0
    n = len(text)
    while i < n:
        for suf in _STRONG:
            if text.startswith(suf.text, i):
                nxt = text[i + len(suf.text) : i + len(suf.text) + 1]
                if nxt and nxt in _NOT_AFTER.get(suf.text, ""):
                    continue
                if suf.text == "街" and text.startswith("街道", i):
                    continue
                found.append((i, suf))
                i += len(suf.text) - 1
                break
        i += 1
    events: list[tuple[int, int, _Comp | _Suffix]] = [(c.start, 0, c) for c in numeric]
    events += [(pos, 1, suf) for pos, suf in found]
    events.sort(key=lambda e: (e[0], e[1]))
    comps: list[_Comp] = []
    prev_end = -1
    for pos, _, item in events:
        if isinstance(item, _Comp):
            if item.start >= prev_end:
                comps.append(_Comp(item.start, item.end, item.kind, item.weight))
                prev_end = item.end
            continue
        suf = item
        end = pos + len(suf.text)
        if pos < prev_end:
            continue
        start = pos
        while (
            start > 0
            and pos - start < suf.max_name
            and not mask[start - 1]
            and start - 1 >= max(prev_end, 0)
            and not (suf.kind == "water" and text[start - 1] in _WATER_NAME_STOP)
        ):
            start -= 1
        if comps and start == prev_end and pos == prev_end and suf.min_name > 0:
            # 石油路街道, 民主村社区: the name is the previous part
            last = comps[-1]
            if (
                last.kind in ("road", "community", "landmark", "town", "weak", "water")
                or suf.kind == "community"
            ):
                comps[-1] = _Comp(last.start, end, suf.kind, max(last.weight, suf.weight))
                prev_end = end
                continue
        name = text[start:pos]
        chained = bool(comps) and start == prev_end
        if len(name) < suf.min_name or ((name + suf.text) in _GENERIC and not chained):
            continue
        if (
            suf.min_name > 0
            and not (comps and start == prev_end)
            and len(name) < max(suf.min_name, 1)
        ):
            continue
        comps.append(_Comp(start, end, suf.kind, suf.weight))
        prev_end = end
    return comps


def _weak_components(text: str, mask: list[bool], comps: list[_Comp]) -> list[_Comp]:
    """Fill the gap right after each part with a Chongqing toponym (较场口, 黄桷坪 …)."""
    out = list(comps)
    for idx, c in enumerate(comps):
        limit = comps[idx + 1].start if idx + 1 < len(comps) else len(text)
        # name of 1..2 chars + ending; right after a river or lake the ending alone continues
        # the name (红旗河沟, 溪口, 江湾)
        for length in range(3, 0 if c.kind == "water" else 1, -1):
            e = c.end + length
            if e > limit:
                continue
            piece = text[c.end : e]
            if any(mask[c.end : e]) or piece[-1] not in _WEAK_ENDINGS:
                continue
            out.append(_Comp(c.end, e, "weak", 1.0))
            break
    out.sort(key=lambda x: x.start)
    return out


def _gazetteer_hits(text: str, places: Sequence[Place]) -> list[tuple[int, int, Place]]:
    hits = []
    for p in places:
        if len(p.name) < 2 or " " in p.name:
            continue
        for pos in _find_all(text, p.name):
            hits.append((pos, pos + len(p.name), p))
    return hits


# words that place a spot relative to a place (万达广场门口, 洪崖洞旁边, 大桥下游)
_RELATIONS: tuple[str, ...] = tuple(
    sorted(
        (
            "旁边", "对面", "门口", "附近", "下游", "上游", "路口", "后面", "背后", "下面", "底下",
            "边上", "外面", "后门", "前面", "脚下", "一带", "周边", "隔壁", "侧门", "大门",
            "出口", "入口", "里面", "上面", "对岸", "桥下", "桥底下", "转角", "拐角", "边边上",
        ),
        key=lambda w: -len(w),
    )
)  # fmt: skip
# filler between two parts of one place phrase (代家沟社区那个3栋, 街道的龙水湖边)
_FILLERS = frozenset(("的", "那个", "这个", "那", "这", "那边的", "这边的", "里的", "的那个", "里面的", "那边", "这边"))  # fmt: skip


_ADMIN_KINDS = ("district", "city", "town", "community")


def _relation_components(text: str, mask: list[bool], comps: list[_Comp]) -> list[_Comp]:
    """A relation word after a part, or after a short unsuffixed name that follows a part.

    "X旁边" keeps the relation in the phrase; "街道 + 洪崖洞 + 旁边" makes 洪崖洞 a landmark:
    a name the grammar does not know is a place when a relation word pins it.
    """
    out = list(comps)
    starts = sorted(c.start for c in comps)
    for c in comps:
        nxt = next((st for st in starts if st >= c.end), len(text))
        rel = next((r for r in _RELATIONS if text.startswith(r, c.end)), None)
        if rel is not None and c.end + len(rel) <= nxt:
            out.append(_Comp(c.end, c.end + len(rel), "relation", 0.5))
            continue
        if c.kind in ("number", "relation"):
            continue
        for k in range(2, 7):
            e = c.end + k
            if e > nxt or any(mask[c.end : e]):
                break
            rel = next((r for r in _RELATIONS if text.startswith(r, e)), None)
            if rel is not None and e + len(rel) <= nxt:
                out.append(_Comp(c.end, e, "landmark", 1.5))
                out.append(_Comp(e, e + len(rel), "relation", 0.5))
                break
    out.sort(key=lambda x: (x.start, -x.end))
    return out


def _runs(comps: list[_Comp], text: str = "") -> list[list[_Comp]]:
    runs: list[list[_Comp]] = []
    for c in comps:
        if runs and runs[-1][-1].end == c.start:
            runs[-1].append(c)
        elif runs and runs[-1][-1].end > c.start:
            continue
        elif (
            runs
            and c.kind != "relation"
            and runs[-1][-1].kind != "number"
            and text[runs[-1][-1].end : c.start] in _FILLERS
        ):
            runs[-1].append(c)
        elif (
            runs
            and text[runs[-1][-1].end : c.start] == "，"
            and runs[-1][-1].kind in _ADMIN_KINDS
            and c.kind in _ADMIN_KINDS + ("road", "landmark", "water", "grid")
        ):
            runs[-1].append(c)  # 江北区，石马河街道: a comma inside one address
        else:
            runs.append([c])
    return runs


_KIND_RANK = {"landmark": 5, "grid": 4, "community": 3, "town": 2, "district": 1}


_NAME_KINDS = ("district", "city", "town", "community", "road", "grid")


def _mask_names(text: str, places: Sequence[Place]) -> str:
    """``text`` with the names of admin units and roads blanked out (same length).

    Words inside a name are not events: 钓鱼城街道 is not fishing, 钱塘镇 not a pond, 石马河
    街道 not a river. Landmarks and natural features stay (红旗堰塘里 … is about the pond).
    """
    mask = _stop_mask(text)
    comps = _strong_components(text, mask, _numeric_components(text))
    # a part chained to another part is a name (合川区钱塘镇); a lone "冒充社区" may not be
    chained = {
        i
        for i, c in enumerate(comps)
        if (i > 0 and comps[i - 1].end == c.start)
        or (i + 1 < len(comps) and comps[i + 1].start == c.end)
    }
    spans = [
        (c.start, c.end) for i, c in enumerate(comps) if c.kind in _NAME_KINDS and i in chained
    ]
    spans += [(s, e) for s, e, p in _gazetteer_hits(text, places) if p.kind in _NAME_KINDS]
    if not spans:
        return text
    out = list(text)
    for s, e in spans:
        for i in range(s, e):
            out[i] = "#"
    return "".join(out)


def _locate(text: str, places: Sequence[Place]) -> ReportLocation:
    mask = _stop_mask(text)
    numeric = _numeric_components(text)
    comps = _weak_components(text, mask, _strong_components(text, mask, numeric))
    hits = _gazetteer_hits(text, places)
    # a known name not covered by the grammar still counts as a part
    for s, e, p in hits:
        if not any(c.start <= s and e <= c.end for c in comps):
            comps = [c for c in comps if c.end <= s or c.start >= e]
            comps.append(_Comp(s, e, p.kind, 3.0))
    comps.sort(key=lambda c: (c.start, -c.end))
    comps = _relation_components(text, mask, comps)
    runs = _runs(comps, text)
    best: list[_Comp] | None = None
    best_score = 0.0
    for run in runs:
        s, e = run[0].start, run[-1].end
        score = sum(c.weight for c in run)
        score += sum(3.0 for hs, he, _ in hits if s <= hs and he <= e)
        if run and all(c.kind in ("number", "weak") for c in run):
            score *= 0.5
        if score > best_score:
            best, best_score = run, score
    loc = ReportLocation()
    if best is not None:
        s, e = best[0].start, best[-1].end
        loc.address = normalize_numbers(text[s:e])
        inside = [p for hs, he, p in hits if s <= hs and he <= e]
    else:
        inside = []
    matched = inside or [p for _, _, p in hits]
    matched.sort(key=lambda p: -_KIND_RANK.get(p.kind, 0))
    loc.places = list(dict.fromkeys(p.name for p in matched))
    by_name = {p.name: p for p in places}
    for p in matched:
        if p.kind == "district" and not loc.district:
            loc.district = p.name
        elif p.kind == "town" and not loc.town:
            loc.town = p.name
        elif p.kind == "community" and not loc.community:
            loc.community = p.name
        if p.grid_id and not loc.grid_id:
            loc.grid_id = p.grid_id
    # a multi-part alias of a grid ("代家沟社区 3栋"): every part in the text
    if not loc.grid_id or (matched and matched[0].kind != "grid"):
        where = normalize_numbers(text)
        for p in places:
            if p.kind == "grid" and p.grid_id and " " in p.name:
                if all(normalize_numbers(x) in where for x in p.name.split(" ")):
                    loc.grid_id = p.grid_id
                    break
    # 代家沟社区第二网格 written as two parts
    if not loc.grid_id and loc.community and loc.address:
        m = re.search(rf"第[{NUMERAL_CHARS}]+网格", loc.address)
        if m:
            g = by_name.get(loc.community + m.group(0))
            if g is not None and g.grid_id:
                loc.grid_id = g.grid_id
    # fill the enclosing town/district of a known community or town
    start = matched[0] if matched else None
    seen = 0
    while start is not None and start.parent and seen < 4:
        parent = by_name.get(start.parent)
        if parent is None:
            break
        if parent.kind == "community" and not loc.community:
            loc.community = parent.name
        elif parent.kind == "town" and not loc.town:
            loc.town = parent.name
        elif parent.kind == "district" and not loc.district:
            loc.district = parent.name
        start, seen = parent, seen + 1
    return loc


# --------------------------------------------------------------------------- elements

_COLOURS = "白黑红蓝银灰绿黄金棕紫橙粉"
_VEHICLES = (
    "小轿车", "轿车", "小车", "面包车", "货车", "大货车", "小货车", "卡车", "皮卡", "越野车", "SUV",
    "出租车", "网约车", "电瓶车", "电动车", "摩托车", "三轮车", "自行车", "公交车", "渣土车", "私家车", "汽车", "车",
)  # fmt: skip
_VEHICLE_RE = re.compile(rf"([{_COLOURS}])色的?({'|'.join(_VEHICLES)})")
_VEHICLE_PLAIN_RE = re.compile(rf"({'|'.join(_VEHICLES[:-2])})")
_PLATE_RE = re.compile(
    r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z][·\s]?[A-Z0-9]{5,6}"
)
_COUNT_RE = re.compile(
    rf"([{NUMERAL_CHARS}]+|几|好几|十几|几十)(个|名|位|辆|户|只|条|处|人|次)(?!时|月)"
)
_DURATION_RE = re.compile(
    rf"((?:[{NUMERAL_CHARS}]+|几|好几|半)(?:个)?多?(?:小时|钟头|分钟|天|周|星期|个月|月|年)(?:多)?|半(?:个)?小时|一整天|一整晚|一上午|一下午|一晚上|一整夜|整晚|通宵)"
)
_HEART_RE = re.compile(rf"(?:心率|心跳)[^0-9{NUMERAL_CHARS}，。]{{0,6}}([0-9]+|[{NUMERAL_CHARS}]+)")
_FLOOR_RE = re.compile(r"([0-9]+|[一二两三四五六七八九十]+)(?:楼|层)")


def _elements(text: str) -> dict[str, Any]:
    el: dict[str, Any] = {}
    vehicles = [{"colour": m.group(1), "vehicle": m.group(2)} for m in _VEHICLE_RE.finditer(text)]
    if not vehicles:
        vehicles = [
            {"colour": None, "vehicle": m.group(1)} for m in _VEHICLE_PLAIN_RE.finditer(text)
        ][:3]
    if vehicles:
        el["vehicles"] = vehicles
    plates = [re.sub(r"[·\s]", "", p) for p in _PLATE_RE.findall(text.upper())]
    if plates:
        el["plates"] = plates
    counts = []
    for m in _COUNT_RE.finditer(text):
        value = cn_to_int(m.group(1))
        counts.append({"text": m.group(0), "value": value, "unit": m.group(2)})
    if counts:
        el["counts"] = counts
    durations = [m.group(0) for m in _DURATION_RE.finditer(text)]
    if durations:
        el["durations"] = durations
    heart = _HEART_RE.search(text)
    if heart:
        hr = cn_to_int(heart.group(1))
        if hr is not None:
            el["heart_rate"] = hr
    floors = [cn_to_int(m.group(1)) for m in _FLOOR_RE.finditer(text)]
    floors = [f for f in floors if f is not None and 0 < f < 300]
    if floors:
        el["floor"] = floors[0]
    return el


# --------------------------------------------------------------------------- extract

_PUNCT_NORMAL = str.maketrans(
    {",": "，", "!": "！", "?": "？", ";": "；", ":": "：", "\u3000": " "}
)


def _clean(text: str) -> str:
    text = text.translate(_FULLWIDTH).translate(_PUNCT_NORMAL)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text)


def _severity(text: str, base: str, vocab: _Vocab) -> tuple[str, list[str]]:
    """The type's default raised by danger to people now (cues, cue pairs), never lowered.

    A cue that is negated (没有人受伤) or said to be over (还好没人 …) does not count.
    """
    level = SEVERITIES.index(base) if base in SEVERITIES else 0
    masked = text
    for calm in CALM_CUES:
        masked = masked.replace(calm, "#" * len(calm))
    for prefix in PREVENTION_PREFIXES:
        masked = re.sub(rf"{prefix}[\u4e00-\u9fff]{{1,3}}", lambda m: "#" * len(m.group(0)), masked)
    cues: list[str] = []
    words: dict[str, set[str]] = {
        "urgent": set(vocab.cues.get("urgent", ())) | set(URGENT_CUES),
        "emergency": set(vocab.cues.get("emergency", ())) | set(EMERGENCY_CUES),
    }
    for sev in ("urgent", "emergency"):
        for cue in sorted(words[sev], key=lambda w: -len(w)):
            for pos in _find_all(masked, cue):
                if _negated(masked, pos) and not cue.startswith(_NEGATORS):
                    continue
                cues.append(cue)
                level = max(level, SEVERITIES.index(sev))
                break
    for sev, rules in (("urgent", URGENT_RULES), ("emergency", EMERGENCY_RULES)):
        for clause in _clauses(masked):
            for first, second in rules:
                a = next((w for w in first if w in clause), None)
                b = next((w for w in second if w in clause), None)
                if a and b:
                    cues.append(f"{a}+{b}")
                    level = max(level, SEVERITIES.index(sev))
    return SEVERITIES[level], list(dict.fromkeys(cues))


def _summary(
    fields_type: str, name: str, loc: ReportLocation, el: Mapping[str, Any], cues: Sequence[str]
) -> str:
    parts = [loc.address or ""]
    detail = [name]
    if el.get("vehicles"):
        v = el["vehicles"][0]
        detail.append(f"{v['colour'] or ''}{'色' if v['colour'] else ''}{v['vehicle']}")
    if el.get("plates"):
        detail.append(el["plates"][0])
    if "heart_rate" in el:
        detail.append(f"心率{el['heart_rate']}")
    if el.get("durations"):
        detail.append(f"持续{el['durations'][0]}")
    detail.extend(c for c in cues[:2] if not any(c in d for d in detail))
    line = " ".join(p for p in parts if p)
    return (f"{line} " if line else "") + "，".join(detail)


_NGRAM_MIN_P = 0.9  # the fallback's guess must be this sure to replace `other`


def _ngram_guess(text: str, known: set[str]) -> str | None:
    from pipelines.report_ngram import default_model

    model = default_model()
    if model is None:
        return None
    ranked = model.predict(text)
    if ranked and ranked[0][1] >= _NGRAM_MIN_P and ranked[0][0] in known - {"other"}:
        return ranked[0][0]
    return None


def extract(
    text: str, taxonomy_data: Any, gazetteer: Sequence[Place] | None = None
) -> ReportFields:
    """Extract event fields from one report sentence.

    Args:
        text: the report (simplified Chinese; traditional characters and ASR noise should
            be normalised by the caller).
        taxonomy_data: ``shaobing.taxonomy.Taxonomy`` or a mapping of the same shape
            (``types`` → code → {name, severity, keywords}; ``severity_cues``).
        gazetteer: known places (:func:`gazetteer_from_registry`); None → built-in places.

    Returns:
        The fields; ``type`` is ``other`` with ``needs_confirmation`` when nothing matched.
    """
    vocab = _vocab(taxonomy_data)
    places = list(gazetteer) if gazetteer is not None else default_places()
    clean = _clean(text or "")
    if not clean or not re.search(r"[\u4e00-\u9fffA-Za-z0-9]", clean):
        return ReportFields(
            type="other", types=["other"], severity="normal", location=ReportLocation(), summary="无法识别的报告",
            confidence=0.0, needs_confirmation=True, text=clean,
        )  # fmt: skip
    places_list = list(places)
    unnamed = _mask_names(clean, places_list)
    scores, hits = _score_types(unnamed, vocab)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    guessed = False
    if ranked:
        primary, top = ranked[0]
        types = [code for code, s in ranked if s >= 0.2 * top][:4]
    else:
        primary, top, types = "other", 0.0, ["other"]
    if not ranked:
        # no word and no rule names a type: the n-gram model's guess, to be confirmed
        guess = _ngram_guess(unnamed, {t.code for t in vocab.types})
        if guess is not None and guess != primary:
            primary, guessed = guess, True
            types = [guess, *[c for c in types if c not in (guess, "other")]][:4]
    tv = vocab.get(primary)
    base = tv.severity if tv else "normal"
    name = tv.name if tv else "其他"
    severity, cues = _severity(unnamed, base, vocab)
    loc = _locate(clean, places)
    el = _elements(clean)
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    margin = (top - second) / top if top else 0.0
    confidence = (
        0.0
        if not ranked
        else min(0.97, 0.35 + 0.15 * min(top, 3.0) + 0.15 * margin + (0.1 if loc.address else 0.0))
    )
    needs = (
        guessed
        or primary == "other"
        or top < 1.0
        or margin < 0.15
        or not (loc.address or loc.grid_id)
    )
    summary = _summary(primary, name, loc, el, cues)[:200]
    return ReportFields(
        type=primary, types=types, severity=severity, location=loc, summary=summary,
        confidence=round(confidence, 3), needs_confirmation=needs, elements=el,
        scores=dict(ranked), cues=cues, text=clean,
        matched={code: list(dict.fromkeys(hits[code])) for code in types if code in hits},
    )  # fmt: skip
