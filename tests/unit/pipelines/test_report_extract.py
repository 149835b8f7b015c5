"""Report extraction: type, negation, multi-type, every address pattern, severity, elements."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pipelines.report_extract import (
    ReportFields,
    cn_to_int,
    extract,
    gazetteer_from_registry,
    normalize_numbers,
)
from shaobing.paths import configs_dir, shared_dir
from shaobing.taxonomy import default_taxonomy

ROOT = Path(__file__).resolve().parents[3]
TAX = default_taxonomy()
GAZ = gazetteer_from_registry(
    yaml.safe_load((configs_dir() / "demo" / "registry.yaml").read_text(encoding="utf-8"))
)


def ex(text: str) -> ReportFields:
    return extract(text, TAX, GAZ)


# --------------------------------------------------------------------------- type


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("北碚区天府镇有人从六楼阳台扔下一个花盆，砸坏了楼下的车。", "falling_object"),
        ("缙云社区消防车道上停了三辆面包车，堵得死死的。", "fire_lane_blocked"),
        ("嘉陵江边有几个小学生在野泳，没有大人看着。", "water_danger_intrusion"),
        ("有人落水了，在河里挣扎，快来人。", "drowning"),
        ("仓库里冒出黑烟，烟很大。", "smoke"),
        ("三楼厨房着火了，火苗从窗户窜出来。", "fire"),
        ("楼道里一股煤气味，怀疑燃气泄漏。", "gas_leak"),
        ("下穿道积水齐腰深，车辆无法通行。", "flood"),
        ("独居的王大爷手环显示心率只有40，呼吸困难。", "health_alarm"),
        ("孤寡老人李婆婆腿脚不便，希望有人上门送餐。", "elderly_care"),
        ("人行道上的井盖不见了，留下一个大坑。", "road_facility"),
        ("小区停水两天了，自来水公司也没有通知。", "water_supply"),
        ("垃圾站旁边污水横流，臭味很大。", "sanitation"),
        ("楼上装修电钻声从早上响到晚上，吵得睡不着。", "noise"),
        ("楼下烧烤店油烟直接往楼上飘。", "cooking_fumes"),
        ("学校门口有流动摊贩摆摊卖烤肠。", "street_vending"),
        ("有户人家在楼顶私搭乱建了一个彩钢棚。", "illegal_construction"),
        ("两兄弟为了老房子分家的事吵得不可开交，需要调解。", "dispute"),
        ("夜市里有人持刀打架。", "public_security"),
        ("有老人接到自称公检法的电话，要求转账到安全账户。", "fraud"),
        ("园区一家公司反映招工难，想请镇里帮忙对接。", "enterprise"),
        ("路口那个摄像头坏了好几天，一直离线。", "device_fault"),
    ],
)
def test_each_type_from_own_wording(text: str, code: str) -> None:
    assert ex(text).type == code


def test_negated_keyword_does_not_count() -> None:
    f = ex("厨房没有冒烟，也不是着火，就是燃气灶有股煤气味。")
    assert f.type == "gas_leak"
    assert "smoke" not in f.types and "fire" not in f.types


def test_negated_only_keyword_gives_other_needing_confirmation() -> None:
    f = ex("刚才去看了，没有着火。")
    assert f.type == "other"
    assert f.needs_confirmation


def test_negated_severity_cue_does_not_raise() -> None:
    assert ex("井盖松动了，好在没有人受伤。").severity == "normal"
    assert ex("井盖松动了，有人受伤。").severity == "urgent"


def test_multi_type_candidates() -> None:
    f = ex("地下车库起火了，到处都是浓烟，烟感一直在响。")
    assert f.type == "fire"
    assert f.types[0] == "fire" and "smoke" in f.types


def test_emergency_type_wins_a_tie() -> None:
    f = ex("独居老人的手环报警了。")
    assert f.type == "health_alarm"
    assert "elderly_care" in f.types


def test_unusable_text_is_other() -> None:
    for text in ("", "   ", "。。。", "你好"):
        f = ex(text)
        assert f.type == "other"
        assert f.needs_confirmation


# --------------------------------------------------------------------------- location


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # 区/县 + 镇 + 村 + 组
        ("北碚区天府镇兴隆村三组有人掉进鱼塘了。", "北碚区天府镇兴隆村三组"),
        ("城口县葛城街道有独居老人需要帮忙。", "城口县葛城街道"),
        # 街道 + 社区 + 栋/单元/室 with Chinese numerals → digits
        (
            "大渡口区春晖路街道翠园社区五栋二单元三零一室有人晕倒了。",
            "大渡口区春晖路街道翠园社区5栋2单元301室",
        ),
        # 路 + 号 + 小区 + 幢
        (
            "南岸区南坪街道响水路一百二十号金辉小区三幢楼下积水很深。",
            "南岸区南坪街道响水路120号金辉小区3幢",
        ),
        # 大道 + 广场
        ("两江新区金州大道时代广场有人在打架。", "两江新区金州大道时代广场"),
        # 巷
        ("渝中区十八梯街道厚慈街凉水井巷的垃圾没人清理。", "渝中区十八梯街道厚慈街凉水井巷"),
        # 渡口
        ("合川区钓鱼城街道三江渡口有小孩下河游泳。", "合川区钓鱼城街道三江渡口"),
        # 隧道
        ("渝北区龙溪街道红锦大道隧道口积水，有车熄火。", "渝北区龙溪街道红锦大道隧道"),
        # 步行街, 菜市场, 江边 landmarks
        ("永川区中山路街道兴龙湖步行街有人摆摊卖水果。", "永川区中山路街道兴龙湖步行街"),
        ("江津区几江街道东门菜市场门口占道经营很严重。", "江津区几江街道东门菜市场门口"),
        ("南岸区弹子石街道滨江路江边有人翻越护栏。", "南岸区弹子石街道滨江路江边"),
        # 楼 (floor) with 社区
        ("松石社区三楼楼道里堆满了杂物，堵住了消防通道。", "松石社区3楼"),
    ],
)
def test_address_patterns(text: str, address: str) -> None:
    assert ex(text).location.address == address


def test_address_keeps_chinese_numerals_inside_names() -> None:
    f = ex("卫东村三组和五星村交界的路面塌陷了。")
    assert f.location.address is not None
    assert "卫东村三组" in f.location.address or "五星村" in f.location.address
    assert "3组" not in (f.location.address or "")


def test_address_starts_after_function_words() -> None:
    f = ex("今天下午在九龙坡区石桥铺街道科园一路发现井盖破损。")
    assert f.location.address == "九龙坡区石桥铺街道科园一路"


def test_quantifier_is_not_a_building_number() -> None:
    f = ex("渝北区人和街道一栋高层有人往下扔东西。")
    assert f.location.address == "渝北区人和街道"


def test_gazetteer_gives_grid() -> None:
    f = ex("代家沟社区第二网格有人在河边钓鱼。")
    assert f.location.grid_id == "beibei-tianfu-02"
    assert f.location.community == "代家沟社区"
    # a community with one grid resolves to that grid
    assert ex("缙云社区有老人走失了。").location.grid_id == "beibei-bwq-01"


def test_no_place_needs_confirmation() -> None:
    f = ex("有人在楼下烧垃圾，烟很大。")
    assert f.location.address is None
    assert f.needs_confirmation


# --------------------------------------------------------------------------- severity


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("路灯不亮了。", "normal"),
        ("路灯杆倒了，砸伤了一个路人。", "urgent"),
        ("楼道里有烟味。", "urgent"),  # smoke default
        ("楼道里有浓烟，有人被困在五楼。", "emergency"),
        ("有个小孩在江边玩水。", "urgent"),
        ("老人在家摔倒了，没有呼吸。", "emergency"),
        ("老人的手环心率报警。", "emergency"),
        ("紧急！菜市场门口的井盖被偷了。", "urgent"),
    ],
)
def test_severity(text: str, severity: str) -> None:
    assert ex(text).severity == severity


def test_severity_never_below_type_default() -> None:
    for code, t in TAX.types.items():
        if code == "other" or not t.keywords:
            continue
        f = ex(f"这里{t.keywords[0]}，请处理。")
        if f.type == code:
            order = ["normal", "urgent", "emergency"]
            assert order.index(f.severity) >= order.index(t.severity), (code, f.severity)


# --------------------------------------------------------------------------- elements, summary


def test_elements() -> None:
    f = ex("松石社区消防通道被一辆白色轿车占用，车牌渝A·12345，已经一个多小时了，有两个人在吵架。")
    el = f.elements
    assert el["vehicles"][0] == {"colour": "白", "vehicle": "轿车"}
    assert el["plates"] == ["渝A12345"]
    assert "一个多小时" in el["durations"]
    assert any(c["value"] == 2 and c["unit"] == "个" for c in el["counts"])
    assert "白色轿车" in f.summary and "消防通道" in f.summary
    assert f.summary.startswith("松石社区")


def test_heart_rate_element() -> None:
    assert ex("手环显示心率每分钟一百四十次。").elements["heart_rate"] == 140


def test_numbers() -> None:
    assert cn_to_int("一百二十八") == 128
    assert cn_to_int("一二八") == 128
    assert cn_to_int("十二") == 12
    assert cn_to_int("二十") == 20
    assert cn_to_int("abc") is None
    assert normalize_numbers("三栋二单元五零二室") == "3栋2单元502室"
    assert normalize_numbers("卫东村三组") == "卫东村三组"


def test_accepts_plain_mapping_taxonomy() -> None:
    data = {
        "types": {"noise": {"name": "噪音扰民", "severity": "normal", "keywords": ["噪音"]}},
        "severity_cues": {"urgent": ["紧急"]},
    }
    f = extract("紧急，广场噪音太大。", data, [])
    assert (f.type, f.severity) == ("noise", "urgent")


def test_module_imports_stdlib_only() -> None:
    code = textwrap.dedent(
        """
        import sys
        before = set(sys.modules)
        import pipelines.report_extract
        added = set(sys.modules) - before
        new = {m.split('.')[0] for m in added}
        print(sorted(new - set(sys.stdlib_module_names) - {'pipelines', 'shaobing'}))
        print(sorted(m for m in added if m.split('.')[0] == 'shaobing'))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # of the project's spine only the severity levels, themselves stdlib-only
    assert out.stdout.split("\n")[:2] == ["[]", "['shaobing', 'shaobing.severity']"]


# --------------------------------------------------------------------------- dev set


def test_dev_set_meets_targets() -> None:
    path = shared_dir() / "data" / "reports" / "reports_dev.tsv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    t = loc = sev = 0
    for r in rows:
        f = ex(r["text"])
        t += f.type in r["types"].split(",")
        loc += r["location"] in (f.location.address or "")
        sev += f.severity in r["severities"].split(",")
    n = len(rows)
    assert t / n >= 0.95 and loc / n >= 0.95 and sev / n >= 0.9, (t / n, loc / n, sev / n)


def test_registry_aliases_give_grid() -> None:
    registry = {
        "districts": [
            {
                "id": "d",
                "name": "南岸区",
                "towns": [
                    {
                        "id": "t",
                        "name": "弹子石街道",
                        "communities": [
                            {
                                "id": "c",
                                "name": "法国水师兵营社区",
                                "grids": [
                                    {
                                        "id": "g1",
                                        "name": "法国水师兵营社区第一网格",
                                        "aliases": ["法国水师兵营社区 2栋", "滨江步道"],
                                    },
                                    {"id": "g2", "name": "法国水师兵营社区第二网格"},
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    gaz = gazetteer_from_registry(registry)
    f = extract("法国水师兵营社区二栋楼下有人乱扔垃圾", TAX, gaz)
    assert f.location.grid_id == "g1"
    f = extract("滨江步道有小孩在玩水", TAX, gaz)
    assert (f.location.grid_id, f.location.community, f.location.district) == (
        "g1",
        "法国水师兵营社区",
        "南岸区",
    )
    assert (
        extract("法国水师兵营社区有人乱扔垃圾", TAX, gaz).location.grid_id is None
    )  # two grids: unknown
