"""``bench edge`` plumbing on a short run: real clips, the real model, the full engine.

The figures of a 2-stream, few-second run on a shared machine say nothing about speed;
this checks that the benchmark measures what it claims (decoding paced at 10 fps, the
detector fed, the motion-time detection rate and the RSS trend computed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shaobing_tools import bench_edge as bench

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


@pytest.fixture()
def clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = bench.prepare_clips(max_s=6.0, names=["pedestrians", "fire_bonfire"])
    assert [p.name.split("_640x360")[0] for p in out] == [
        "fire_bonfire_outdoor",
        "pedestrians_opencv_vtest",
    ]
    return out


def test_two_streams_are_paced_detected_and_measured(clips: list[Path]) -> None:
    r = bench.run_ours(clips, streams=2, seconds=4.0, warmup_s=1.5)
    assert r["streams"] == 2 and len(r["per_stream"]) == 2
    for p in r["per_stream"]:
        assert 8.0 <= p["fps_in"] <= 12.0  # real-time pacing of a 10 fps clip
        assert p["fps_processed"] >= 0.9 * p["fps_in"]
        assert p["fps_detect"] > 0.5
    # both clips move all the time (people walking, flames): every stream counts as moving
    assert r["moving_streams"] == 2
    assert r["fps_detect_while_moving_min"] > 0.5
    assert r["detector_workers"] == (2 if (os.cpu_count() or 1) >= 2 else 1)
    assert r["detector_input"] == "rectangular"  # onnx is installed with the edge extra
    assert 0.0 < r["detector_utilisation"] <= 1.0
    assert r["rss_mb_max"] > 50 and 0 < r["rss_mb_start"] <= r["rss_mb_max"]
    assert r["rss_growth_mb_per_min"] is None  # too few samples for a trend in 4 s


def test_rss_trend_is_a_slope_per_minute_ignoring_warm_up() -> None:
    flat = [(t, 400.0 + (50.0 if t < 10 else 0.0)) for t in range(60)]
    assert bench.rss_trend(flat) == pytest.approx(0.0, abs=1e-6)
    leaking = [(float(t), 400.0 + t * 0.5) for t in range(120)]  # 0.5 MB/s = 30 MB/min
    assert bench.rss_trend(leaking) == pytest.approx(30.0, abs=0.1)
    assert bench.rss_trend(leaking[:5]) is None


def test_a_car_parked_at_a_zone_edge_is_detected_at_most_twice_detect_fps() -> None:
    r = bench.run_zone_edge(seconds=6.0, detect_fps=2.0)
    # extra samples are asked for all along (the car's foot is 1 px inside the lane) …
    assert r["extra_samples"] > 0 and r["extra_samples_refused"] > 0
    # … but the camera stays at its cap of 2 × detect_fps; without it, every frame
    assert r["capped_detections_per_s"] <= r["max_detect_fps"] + 0.2
    assert r["uncapped_detections_per_s"] >= 0.8 * r["source_fps"]


def test_latency_table_side_by_side_for_each_runtime_and_precision() -> None:
    from shaobing.models import resolve_model
    from shaobing_tools import bench_variants as bv

    fp32 = resolve_model("yolov5n")
    rows = bv.latency_table({"fp32": fp32}, ["onnxruntime"], rounds=2, per_round=2)
    assert [(r["runtime"], r["precision"]) for r in rows] == [("onnxruntime", "fp32")]
    (row,) = rows
    assert 1.0 < row["ms_per_image_median"] <= row["ms_per_image_p90"]
    assert row["speedup_vs_onnxruntime_fp32"] == 1.0
    assert row["input"] == "rectangular"


def test_a_model_a_runtime_cannot_load_is_a_row_that_says_so(tmp_path: Path) -> None:
    from shaobing.models import resolve_model
    from shaobing_tools import bench_variants as bv

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    rows = bv.latency_table(
        {"fp32": resolve_model("yolov5n"), "int8": broken}, ["onnxruntime"], rounds=1, per_round=1
    )
    by = {r["precision"]: r for r in rows}
    assert "error" in by["int8"] and by["int8"]["runtime"] == "onnxruntime"
    assert by["fp32"]["ms_per_image_median"] > 1.0  # the others still run


def test_variant_rows_carry_streams_and_recall(clips: list[Path]) -> None:
    from shaobing.models import resolve_model

    rows = bench.run_variants(
        clips,
        1,
        2.0,
        {"fp32": resolve_model("yolov5n")},
        ["onnxruntime"],
        naive_entries=16,
        partner=clips[0],
        first=bench.run_ours(clips, 1, 2.0, warmup_s=1.0),
    )
    (row,) = rows
    assert row["runtime"] == "onnxruntime" and row["precision"] == "fp32"
    for key in (
        "sustained",
        "fps_detect_while_moving_median",
        "streams_capacity_estimate",
        "rss_mb_max",
    ):
        assert key in row
    rc = row["recall"]
    assert rc["naive_entries"] == 16
    assert 0 < rc["ours_entries"] <= 20 and rc["ours_packed_entries"] is not None


def test_the_main_run_takes_its_runtime_and_precision_from_flag_or_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import argparse

    monkeypatch.delenv("SHAOBING_BENCH_OURS", raising=False)
    # by default what a node runs after `models quantize`: INT8 on onnxruntime
    assert bench._ours_choice(argparse.Namespace()) == ("onnxruntime", "int8")
    monkeypatch.setenv("SHAOBING_BENCH_OURS", "onnxruntime:fp32")
    assert bench._ours_choice(argparse.Namespace()) == ("onnxruntime", "fp32")
    # the flag wins over the environment
    assert bench._ours_choice(argparse.Namespace(ours="openvino:fp32")) == ("openvino", "fp32")
    with pytest.raises(ValueError, match="RUNTIME:PRECISION"):
        bench._ours_choice(argparse.Namespace(ours="tensorrt:int4"))
    assert bench._ours_model("fp32")[0].name == "yolov5n.onnx"
    # no INT8 copy: an explicit choice fails, the default falls back to FP32
    from shaobing_tools import bench_variants

    monkeypatch.setattr(bench_variants, "int8_model", lambda: (None, "quantization tools missing"))
    with pytest.raises(OSError, match="no INT8 model"):
        bench._ours_model("int8")
    assert bench._ours_model("int8", explicit=False) == (bench._model_path(), "fp32")
