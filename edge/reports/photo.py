"""Photo reports: EXIF GPS, capture time and orientation from JPEG bytes (stdlib parser).

A phone photo carries where (GPS IFD, WGS-84) and when (DateTimeOriginal with its
OffsetTimeOriginal, else the node's time zone) it was taken, and how it must be turned
(Orientation). Without EXIF the report falls back to the worker's grid.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["PhotoInfo", "read_photo_info", "sniff_image_type", "oriented_image", "photo_location"]


@dataclass(frozen=True)
class PhotoInfo:
    """What a photo's EXIF says.

    Attributes:
        content_type: image/jpeg, image/png or image/webp (from the bytes, not the upload's header).
        lat, lon: WGS-84 degrees, when the photo has GPS.
        taken_at: aware capture time, when the photo has it.
        orientation: EXIF orientation 1–8 (1 = upright).
        width, height: pixel size from EXIF, when present.
    """

    content_type: str
    lat: float | None = None
    lon: float | None = None
    taken_at: datetime | None = None
    orientation: int = 1
    width: int | None = None
    height: int | None = None


def sniff_image_type(data: bytes) -> str | None:
    """Content type from the magic bytes (jpeg, png, webp), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _exif_segment(data: bytes) -> bytes | None:
    i = 2
    n = len(data)
    while i + 4 <= n and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan
            return None
        size = struct.unpack(">H", data[i + 2 : i + 4])[0]
        body = data[i + 4 : i + 2 + size]
        if marker == 0xE1 and body[:6] == b"Exif\x00\x00":
            return body[6:]
        i += 2 + size
    return None


_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


class _Tiff:
    def __init__(self, tiff: bytes) -> None:
        if tiff[:2] == b"II":
            self.e = "<"
        elif tiff[:2] == b"MM":
            self.e = ">"
        else:
            raise ValueError("not a TIFF header")
        self.b = tiff

    def u16(self, off: int) -> int:
        return int(struct.unpack(self.e + "H", self.b[off : off + 2])[0])

    def u32(self, off: int) -> int:
        return int(struct.unpack(self.e + "I", self.b[off : off + 4])[0])

    def ifd(self, off: int) -> dict[int, Any]:
        tags: dict[int, Any] = {}
        if off <= 0 or off + 2 > len(self.b):
            return tags
        count = self.u16(off)
        for k in range(min(count, 512)):
            entry = off + 2 + 12 * k
            if entry + 12 > len(self.b):
                break
            tag, typ, num = self.u16(entry), self.u16(entry + 2), self.u32(entry + 4)
            size = _TYPE_SIZES.get(typ, 1) * num
            voff = entry + 8 if size <= 4 else self.u32(entry + 8)
            if voff + size > len(self.b):
                continue
            tags[tag] = self._value(typ, num, voff)
        return tags

    def _value(self, typ: int, num: int, off: int) -> Any:
        if typ == 2:
            return self.b[off : off + num].split(b"\x00", 1)[0].decode("ascii", "replace")
        if typ == 3:
            vals: list[Any] = [self.u16(off + 2 * i) for i in range(num)]
        elif typ in (4, 9):
            vals = [self.u32(off + 4 * i) for i in range(num)]
        elif typ in (5, 10):
            vals = []
            for i in range(num):
                a, b = self.u32(off + 8 * i), self.u32(off + 8 * i + 4)
                vals.append(a / b if b else 0.0)
        else:
            return self.b[off : off + num]
        return vals[0] if num == 1 else vals


def _dms(value: Any, ref: Any, negative: str) -> float | None:
    if not isinstance(value, list) or len(value) != 3:
        return None
    deg = float(value[0]) + float(value[1]) / 60.0 + float(value[2]) / 3600.0
    if isinstance(ref, str) and ref.upper().startswith(negative):
        deg = -deg
    return deg


def _time(value: Any, offset: Any, tz: tzinfo) -> datetime | None:
    if not isinstance(value, str):
        return None
    parts = value.strip().replace(" ", ":").split(":")
    if len(parts) != 6 or not all(p.isdigit() for p in parts):
        return None
    zone = tz
    if (
        isinstance(offset, str)
        and len(offset) >= 6
        and offset[0] in "+-"
        and offset[1:3].isdigit()
        and offset[4:6].isdigit()
    ):
        sign = 1 if offset[0] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    try:
        y, mo, d, h, mi, s = (int(p) for p in parts)
        return datetime(y, mo, d, h, mi, s, tzinfo=zone)
    except ValueError:
        return None


def read_photo_info(data: bytes, tz: str = "Asia/Shanghai") -> PhotoInfo:
    """Parse a photo's EXIF (JPEG); other formats give only the content type.

    Raises:
        ValueError: the bytes are not a JPEG, PNG or WebP image.
    """
    ctype = sniff_image_type(data)
    if ctype is None:
        raise ValueError("expected a JPEG, PNG or WebP image, found other bytes")
    if ctype != "image/jpeg":
        return PhotoInfo(content_type=ctype)
    seg = _exif_segment(data)
    if seg is None:
        return PhotoInfo(content_type=ctype)
    try:
        t = _Tiff(seg)
        ifd0 = t.ifd(t.u32(4))
        exif = t.ifd(int(ifd0[0x8769])) if isinstance(ifd0.get(0x8769), int) else {}
        gps = t.ifd(int(ifd0[0x8825])) if isinstance(ifd0.get(0x8825), int) else {}
    except (ValueError, struct.error):
        return PhotoInfo(content_type=ctype)
    lat = _dms(gps.get(2), gps.get(1), "S")
    lon = _dms(gps.get(4), gps.get(3), "W")
    if (
        lat is None
        or lon is None
        or not (-90 <= lat <= 90 and -180 <= lon <= 180)
        or (lat == 0 and lon == 0)
    ):
        lat = lon = None
    taken = _time(exif.get(0x9003) or ifd0.get(0x0132), exif.get(0x9011), ZoneInfo(tz))
    orient = ifd0.get(0x0112, 1)
    orientation = orient if isinstance(orient, int) and 1 <= orient <= 8 else 1
    w, h = exif.get(0xA002), exif.get(0xA003)
    return PhotoInfo(
        content_type=ctype,
        lat=lat,
        lon=lon,
        taken_at=taken,
        orientation=orientation,
        width=w if isinstance(w, int) else None,
        height=h if isinstance(h, int) else None,
    )


def oriented_image(data: bytes) -> Any:
    """Decode to a BGR array turned upright per EXIF orientation (None if undecodable)."""
    import cv2
    import numpy as np

    img = cv2.imdecode(
        np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    )
    if img is None:
        return None
    o = read_photo_info(data).orientation if sniff_image_type(data) == "image/jpeg" else 1
    ops = {
        2: lambda a: cv2.flip(a, 1),
        3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
        4: lambda a: cv2.flip(a, 0),
        5: lambda a: cv2.flip(cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE), 1),
        6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
        7: lambda a: cv2.flip(cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE), 1),
        8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
    }
    return ops[o](img) if o in ops else img


def photo_location(photos: list[PhotoInfo]) -> tuple[float | None, float | None, datetime | None]:
    """(lat, lon, taken_at) of the first photo with GPS; the earliest capture time of all."""
    lat = lon = None
    for p in photos:
        if p.lat is not None and p.lon is not None:
            lat, lon = p.lat, p.lon
            break
    times = [p.taken_at for p in photos if p.taken_at is not None]
    return lat, lon, (min(times) if times else None)
