"""hub/geo.py: point in polygon, distances, GCJ-02 ↔ WGS-84."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.geo import gcj02_to_wgs84, haversine_m, point_in_polygon, wgs84_to_gcj02

SQUARE = [(106.43, 29.85), (106.44, 29.85), (106.44, 29.86), (106.43, 29.86), (106.43, 29.85)]


@pytest.mark.parametrize(
    ("lon", "lat", "inside"),
    [
        (106.435, 29.855, True),
        (106.445, 29.855, False),
        (106.435, 29.849, False),
        (106.43, 29.855, True),
        (106.44, 29.86, True),
    ],
)
def test_point_in_square(lon: float, lat: float, inside: bool) -> None:
    assert point_in_polygon(lon, lat, SQUARE) is inside


def test_point_in_concave_polygon() -> None:
    # a U shape: the notch is outside
    u = [(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]
    assert point_in_polygon(0.5, 2, u)
    assert point_in_polygon(2.5, 2, u)
    assert not point_in_polygon(1.5, 2, u)


def test_haversine_one_degree_latitude() -> None:
    assert haversine_m(29.0, 106.0, 30.0, 106.0) == pytest.approx(111_195, rel=0.002)


def test_gcj_offset_in_chongqing_is_hundreds_of_metres() -> None:
    lat, lon = 29.56, 106.55
    glat, glon = wgs84_to_gcj02(lat, lon)
    assert 100 < haversine_m(lat, lon, glat, glon) < 1000


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=18.0, max_value=50.0), st.floats(min_value=75.0, max_value=134.0))
def test_gcj_round_trip_within_a_centimetre(lat: float, lon: float) -> None:
    glat, glon = wgs84_to_gcj02(lat, lon)
    wlat, wlon = gcj02_to_wgs84(glat, glon)
    assert haversine_m(lat, lon, wlat, wlon) < 0.01


def test_outside_china_unchanged() -> None:
    assert wgs84_to_gcj02(48.85, 2.35) == (48.85, 2.35)
    assert gcj02_to_wgs84(48.85, 2.35) == (48.85, 2.35)
