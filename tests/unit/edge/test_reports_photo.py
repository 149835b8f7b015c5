"""Photo EXIF: GPS, capture time, orientation; photos without EXIF."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import cv2
import numpy as np
import pytest

from edge.reports.photo import oriented_image, photo_location, read_photo_info, sniff_image_type


def _rational(values: list[tuple[int, int]]) -> bytes:
    return b"".join(struct.pack("<II", a, b) for a, b in values)


def jpeg_with_exif(
    lat: float | None = 29.5630,
    lon: float | None = 106.5516,
    taken: str | None = "2026:07:01 14:30:05",
    offset: str | None = "+08:00",
    orientation: int = 1,
    size: tuple[int, int] = (64, 32),
) -> bytes:
    """A real JPEG (OpenCV) with a little-endian EXIF block built by hand."""
    w, h = size
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[:, : w // 2] = (0, 0, 255)  # left half red
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    jpeg = buf.tobytes()

    def dms(x: float) -> list[tuple[int, int]]:
        x = abs(x)
        d = int(x)
        m = int((x - d) * 60)
        s = round(((x - d) * 60 - m) * 60 * 1000)
        return [(d, 1), (m, 1), (s, 1000)]

    # layout: header(8) | IFD0 | exif IFD | gps IFD | data
    ifd0_entries = [(0x0112, 3, 1, orientation)]
    exif_entries: list[tuple[int, int, int, bytes]] = []
    gps_entries: list[tuple[int, int, int, bytes]] = []
    if taken:
        exif_entries.append((0x9003, 2, 20, taken.encode() + b"\x00"))
    if offset:
        exif_entries.append((0x9011, 2, 7, offset.encode() + b"\x00"))
    if lat is not None and lon is not None:
        gps_entries += [
            (1, 2, 2, (b"N" if lat >= 0 else b"S") + b"\x00"),
            (2, 5, 3, _rational(dms(lat))),
            (3, 2, 2, (b"E" if lon >= 0 else b"W") + b"\x00"),
            (4, 5, 3, _rational(dms(lon))),
        ]
    n0 = len(ifd0_entries) + 2
    ifd0_off = 8
    exif_off = ifd0_off + 2 + 12 * n0 + 4
    gps_off = exif_off + 2 + 12 * len(exif_entries) + 4
    data_off = gps_off + 2 + 12 * len(gps_entries) + 4
    data = b""

    def pack_ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
        nonlocal data
        out = struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            if len(value) <= 4:
                out += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
            else:
                out += struct.pack("<HHII", tag, typ, count, data_off + len(data))
                data += value
        return out + b"\x00\x00\x00\x00"

    ifd0 = struct.pack("<H", n0)
    ifd0 += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    ifd0 += struct.pack("<HHII", 0x8769, 4, 1, exif_off)
    ifd0 += struct.pack("<HHII", 0x8825, 4, 1, gps_off)
    ifd0 += b"\x00\x00\x00\x00"
    exif_ifd = pack_ifd(exif_entries)
    gps_ifd = pack_ifd(gps_entries)
    tiff = b"II*\x00" + struct.pack("<I", ifd0_off) + ifd0 + exif_ifd + gps_ifd + data
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return jpeg[:2] + segment + jpeg[2:]


def test_gps_and_time_from_exif() -> None:
    info = read_photo_info(jpeg_with_exif())
    assert info.content_type == "image/jpeg"
    assert info.lat == pytest.approx(29.5630, abs=1e-4)
    assert info.lon == pytest.approx(106.5516, abs=1e-4)
    assert info.taken_at == datetime(2026, 7, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=8)))


def test_southern_western_and_local_time_zone() -> None:
    info = read_photo_info(jpeg_with_exif(lat=-33.86, lon=-70.65, offset=None), tz="Asia/Shanghai")
    assert info.lat is not None and info.lat < 0 and info.lon is not None and info.lon < 0
    assert info.taken_at is not None and info.taken_at.utcoffset() == timedelta(hours=8)


def test_no_exif_and_no_gps() -> None:
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), dtype=np.uint8))
    assert ok
    info = read_photo_info(png.tobytes())
    assert (info.content_type, info.lat, info.taken_at) == ("image/png", None, None)
    ok, plain = cv2.imencode(".jpg", np.zeros((8, 8, 3), dtype=np.uint8))
    assert read_photo_info(plain.tobytes()).lat is None
    assert read_photo_info(jpeg_with_exif(lat=None, lon=None)).lat is None
    assert photo_location([read_photo_info(plain.tobytes())]) == (None, None, None)


def test_not_an_image() -> None:
    assert sniff_image_type(b"%PDF-1.4") is None
    with pytest.raises(ValueError, match="expected a JPEG"):
        read_photo_info(b"%PDF-1.4 not a photo")


def test_orientation_is_applied() -> None:
    data = jpeg_with_exif(orientation=6, size=(64, 32))
    assert read_photo_info(data).orientation == 6
    img = oriented_image(data)
    assert img.shape[:2] == (64, 32)  # turned 90°: tall now
    # left half was red → after a clockwise turn the top half is red
    top, bottom = img[:16].mean(axis=(0, 1)), img[-16:].mean(axis=(0, 1))
    assert top[2] > 150 and bottom[2] < 100
