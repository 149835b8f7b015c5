"""Report extraction on the project's own corpus (tests/data/reports), field by field.

* ``corpus_dev.tsv`` — written for tuning: type, location, severity each ≥ 0.95.
* ``corpus_heldout.tsv`` — written at the same time, never looked at sentence by sentence
  while tuning: each field ≥ 0.9. A rule made for one dev sentence does not lift it.
* ``corpus_fresh.tsv`` — written later in other districts' words; scored once before any
  change (type 0.84, severity 0.78), then its misses were fixed with general rules: ≥ 0.9.
* ``corpus_final.tsv`` — written last, after all the rules; scored once (type 0.86,
  location 1.0, severity 0.89), then fixed with general rules (wearable readings, devices
  with a blank picture, a drain without its cover).
* ``corpus_unseen.tsv`` — 30 reports of one more district (合川区), written after everything
  else; first score type 0.73, location 0.97, severity 0.77 — the best estimate of unseen
  text. Its misses were then fixed by general changes (names of admin units are not events:
  钓鱼城街道 is not fishing; past dangers 去年淹死过人 are warnings; drains blocked by rubbish).
* ``corpus_unseen2.tsv`` — 30 more (万州区), written after those fixes; first score type 0.93,
  location 1.0, severity 0.87 (fixes: 闹翻了 is not a vehicle that overturned, 砍刀).
* ``corpus_registry.tsv`` — places named the way residents name them (老菜市, 红旗堰塘 …),
  found only through another district's registry (its aliases).
* Every concept rule must fire on several corpus sentences of its own type and rarely on
  others: a rule written for one sentence fails here.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import yaml

from pipelines.report_extract import (
    ReportFields,
    _concepts,
    _vocab,
    extract,
    gazetteer_from_registry,
)
from pipelines.report_lexicon import CONCEPT_RULES
from shaobing.paths import shared_dir
from shaobing.taxonomy import default_taxonomy

DATA = Path(__file__).resolve().parents[2] / "data" / "reports"
TAX = default_taxonomy()
REGISTRY = gazetteer_from_registry(
    yaml.safe_load((DATA / "registry_yongchuan.yaml").read_text(encoding="utf-8"))
)


ALL = (
    "corpus_dev.tsv",
    "corpus_heldout.tsv",
    "corpus_registry.tsv",
    "corpus_fresh.tsv",
    "corpus_final.tsv",
    "corpus_unseen.tsv",
    "corpus_unseen2.tsv",
)


def rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def accuracy(
    items: list[dict[str, str]], gazetteer: list | None = None
) -> tuple[dict[str, float], list[tuple[str, str, ReportFields]]]:
    right = Counter[str]()
    misses = []
    for r in items:
        f = extract(r["text"], TAX, gazetteer)
        ok = {
            "type": f.type in r["types"].split(","),
            "location": r["location"] in (f.location.address or ""),
            "severity": f.severity in r["severities"].split(","),
        }
        right.update(k for k, v in ok.items() if v)
        misses.extend((k, r["text"], f) for k, v in ok.items() if not v)
    n = len(items)
    return {k: right[k] / n for k in ("type", "location", "severity")}, misses


def _fmt(misses: list[tuple[str, str, ReportFields]], field: str) -> str:
    return "\n".join(
        f"{t} → {f.type} | {f.location.address} | {f.severity}" for k, t, f in misses if k == field
    )


@pytest.mark.parametrize("field", ["type", "location", "severity"])
@pytest.mark.parametrize(
    ("name", "floor"),
    [
        ("corpus_dev.tsv", 0.95),
        ("corpus_heldout.tsv", 0.9),
        ("corpus_fresh.tsv", 0.9),
        ("corpus_final.tsv", 0.9),
        ("corpus_unseen.tsv", 0.9),
        ("corpus_unseen2.tsv", 0.9),
    ],
)
def test_corpus_field_accuracy(name: str, floor: float, field: str) -> None:
    acc, misses = accuracy(rows(name))
    assert acc[field] >= floor, _fmt(misses, field)


@pytest.mark.parametrize("field", ["type", "location", "severity"])
def test_registry_corpus_with_the_districts_registry(field: str) -> None:
    acc, misses = accuracy(rows("corpus_registry.tsv"), REGISTRY)
    assert acc[field] >= 0.95, _fmt(misses, field)


def test_registry_aliases_are_what_finds_the_colloquial_places() -> None:
    items = rows("corpus_registry.tsv")
    with_reg, _ = accuracy(items, REGISTRY)
    without, _ = accuracy(items)
    assert with_reg["location"] - without["location"] >= 0.2, (with_reg, without)


def test_registry_alias_resolves_to_its_unit() -> None:
    f = extract("红旗堰塘里有个小孩掉进去了。", TAX, REGISTRY)
    assert f.location.address == "红旗堰塘"
    assert (f.location.community, f.location.town, f.location.district) == (
        "萱花社区",
        "中山路街道",
        "永川区",
    )
    assert f.location.grid_id is None  # 萱花社区 has two grids
    f = extract("龙凤桥水库有人在游泳。", TAX, REGISTRY)
    assert f.location.grid_id == "yc-wxh-01"  # 石燕村 has one grid
    # a grid's own alias names the grid
    assert extract("桂花苑楼下垃圾堆成山了。", TAX, REGISTRY).location.grid_id == "yc-zs-02"


def test_corpus_covers_every_type_and_is_our_own() -> None:
    items = [r for name in ALL for r in rows(name)]
    assert len(items) >= 500
    firsts = Counter(r["types"].split(",")[0] for r in items)
    for code in TAX.types:
        assert firsts[code] >= (3 if code == "other" else 8), (code, firsts[code])
    shared = shared_dir() / "data" / "reports" / "reports_dev.tsv"
    if shared.is_file():
        with shared.open(encoding="utf-8", newline="") as fh:
            theirs = {r["text"] for r in csv.DictReader(fh, delimiter="\t")}
        assert not theirs & {r["text"] for r in items}
    held = {r["text"] for r in rows("corpus_heldout.tsv")}
    assert not held & {r["text"] for r in rows("corpus_dev.tsv")}


def test_each_concept_rule_is_general() -> None:
    """A concept rule fires on ≥ 2 sentences of its own type and is right ≥ 70 % of the time."""
    vocab = _vocab(TAX)
    known = {t.code for t in vocab.types}
    items = [r for name in ALL for r in rows(name)]
    own: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    for r in items:
        want = set(r["types"].split(","))
        for code, _, _words in _concepts(r["text"], known):
            rule = next(i for i, c in enumerate(CONCEPT_RULES) if c.code == code)
            key = f"{rule}:{code}"
            fired[key] += 1
            own[key] += code in want
    for i, rule in enumerate(CONCEPT_RULES):
        # rules of one type share a key: the first of that type
        key = f"{next(j for j, c in enumerate(CONCEPT_RULES) if c.code == rule.code)}:{rule.code}"
        if i and CONCEPT_RULES[i - 1].code == rule.code:
            continue
        assert own[key] >= 2, (rule.code, own[key])
        assert own[key] / fired[key] >= 0.7, (rule.code, own[key], fired[key])


def test_primary_event_beats_its_setting_and_consequence() -> None:
    # the quarrel is the thing to handle; the leak is what it is about
    assert extract("楼上楼下因为漏水的事扯皮，吵了一个月。", TAX).type == "dispute"
    # a fight at a barbecue stall: the stall is the setting
    assert extract("烧烤摊有几个醉汉在打架。", TAX).type == "public_security"
    # a camera that watches for falling objects is broken: a device fault
    f = extract("高空抛物监控摄像头黑屏了。", TAX)
    assert (f.type, f.severity) == ("device_fault", "normal")
    # the other cue stays a candidate
    f = extract("消防通道被一辆车占了，车主和保安吵起来了。", TAX)
    assert f.type == "fire_lane_blocked" and "dispute" in f.types


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # throw/pour/drop + from a height, whatever the object
        ("有人从十八楼往下扔了一只拖鞋。", "falling_object"),
        ("阳台上有人往下泼洗脚水。", "falling_object"),
        ("楼顶的一块铁皮被风吹落下来了。", "falling_object"),
        # a person + falls into + a body of water
        ("一个娃儿滑进了鱼塘里。", "drowning"),
        ("有个钓鱼的大爷栽到水库里去了。", "drowning"),
        # a facility + damage
        ("那个公交站牌歪了，快倒了。", "road_facility"),
        ("人行道的隔离墩被撞碎了。", "road_facility"),
        # a device + a fault
        ("小区门口的道闸失灵了。", "device_fault"),
    ],
)
def test_concepts_compose_new_words(text: str, code: str) -> None:
    assert extract(text, TAX).type == code


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("两户邻居因为停车位吵架。", "normal"),  # a dispute stays normal
        ("两户邻居因为停车位吵架，有人拿刀砍人了。", "emergency"),  # unless violence is said
        ("河边栏杆断了，掉下去就是河。", "urgent"),  # a hazard, not a person in the water
        ("电梯卡在十楼，里面关了两个人。", "emergency"),  # trapped
        ("烧烤店油烟很大，小孩咳嗽。", "normal"),  # a child mentioned is not a danger
        ("防溺水广播喇叭不响了。", "normal"),  # prevention words are not the event
        ("路灯杆被撞倒了，还好没人受伤。", "urgent"),  # unsafe structure, no injury
    ],
)
def test_severity_from_danger_to_people_now(text: str, severity: str) -> None:
    assert extract(text, TAX).severity == severity


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("渝中区解放碑街道洪崖洞旁边有人摆摊。", "洪崖洞旁边"),  # relation word pins a landmark
        ("合川区钓鱼城街道涪江边有人游泳。", "涪江"),  # river
        ("北碚区天生街道西南大学后门有人打架。", "西南大学"),  # institution
        ("江津区白沙镇驴溪河上有人落水。", "驴溪河"),
        ("大足区棠香街道的龙水湖边有人钓鱼。", "龙水湖"),  # filler 的 between parts
        ("渝北区双凤桥街道空港乐园的人工湖里有人落水。", "空港乐园"),
        ("南岸区南山街道南山植物园附近冒烟了。", "南山植物园附近"),
    ],
)
def test_place_phrase_reaches_the_specific_place(text: str, part: str) -> None:
    address = extract(text, TAX).location.address or ""
    assert part in address
    assert address.startswith(text[:2])  # from the first place word


def test_falling_into_water_is_not_a_place() -> None:
    f = extract("有个娃儿掉进河里了。", TAX)
    assert f.location.address is None or "掉进" not in f.location.address


def test_weak_guess_is_a_type_needing_confirmation() -> None:
    f = extract("小区门口那个东西好像有点问题，麻烦来看看有没有危险。", TAX)
    assert f.needs_confirmation


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("合川区钓鱼城街道一家企业反映用电负荷不够。", "enterprise"),  # 钓鱼 is in the name
        ("合川区钱塘镇下了一夜雨，老街淹了，水进了好几户人家。", "flood"),  # 塘 is in the name
        ("江北区石马河街道一个小区停水两天了。", "water_supply"),  # 河 is in the name
    ],
)
def test_names_of_places_are_not_events(text: str, code: str) -> None:
    assert extract(text, TAX).type == code


def test_a_past_danger_is_a_warning_not_a_drowning() -> None:
    f = extract("江边有人带着小孩下去游泳，那里去年淹死过人。", TAX)
    assert (f.type, f.severity) == ("water_danger_intrusion", "urgent")
