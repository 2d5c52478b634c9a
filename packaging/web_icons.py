"""Draw the browser route's app icons (a flame on the page's dark blue) into homefire/web/static/.

No image library and nothing downloaded: each pixel is sampled 4x4 times against the flame's outline
and written as a PNG with zlib. Run it after changing the drawing: python packaging/web_icons.py
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "homefire" / "web" / "static"
BACKGROUND = (0x0C, 0x18, 0x1F)  # page.css's body, and the manifest's theme colour
OUTER = (0xE8, 0x69, 0x2A)
INNER = (0xFF, 0xD3, 0x5A)
SAMPLES = 4
# name: (size, maskable). A maskable icon fills its square (the launcher cuts its own shape from
# the middle 80%); the others are a rounded square on a transparent corner.
ICONS = {"icon-192.png": (192, False), "icon-512.png": (512, False), "icon-maskable-512.png": (512, True)}


def in_flame(x: float, y: float, scale: float) -> bool:
    """A teardrop with a lean: a round body below, a point above. x, y in [-1, 1], y downwards."""
    x, y = x / scale, y / scale
    body_y, radius, tip = 0.3, 0.5, -0.85
    if math.hypot(x, y - body_y) <= radius:
        return True
    if not tip < y < body_y:
        return False
    up = (body_y - y) / (body_y - tip)  # 0 at the body's middle, 1 at the tip
    lean = 0.18 * up * math.sin(math.pi * up)
    return abs(x - lean) <= radius * (1 - up) ** 1.4


def pixel(px: float, py: float, size: int, maskable: bool) -> tuple[int, int, int, int]:
    x, y = 2 * px / size - 1, 2 * py / size - 1
    if not maskable:
        corner = 0.35  # rounded square: transparent outside
        cx, cy = max(abs(x) - (1 - corner), 0), max(abs(y) - (1 - corner), 0)
        if math.hypot(cx, cy) > corner:
            return (0, 0, 0, 0)
    scale = 0.62 if maskable else 0.78
    if in_flame(x, y - 0.12 * scale, scale * 0.45):
        return (*INNER, 255)
    if in_flame(x, y, scale):
        return (*OUTER, 255)
    return (*BACKGROUND, 255)


def draw(size: int, maskable: bool) -> bytes:
    rows = []
    step = 1 / SAMPLES
    for py in range(size):
        row = bytearray(b"\0")  # filter: none
        for px in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    r, g, b, a = pixel(px + (sx + 0.5) * step, py + (sy + 0.5) * step, size, maskable)
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            n = SAMPLES * SAMPLES
            alpha = acc[3] / n
            colour = [round(c / acc[3]) if acc[3] else 0 for c in acc[:3]]
            row += bytes([*colour, round(alpha)])
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main() -> int:
    for name, (size, maskable) in ICONS.items():
        (STATIC / name).write_bytes(draw(size, maskable))
        print(f"wrote {STATIC / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
