"""Item 22: a HEIC upload is a HEIF container libheif parses, not just its magic bytes.

The attacks: anything (here an executable) behind the twelve bytes ``....ftypheic`` was
kept as a HEIC photo; and a real HEIC can declare a picture of 12000 × 12000 pixels for
whoever decodes it later. Both are refused with nothing left behind; a real phone-style
HEIC is kept. The service is driven directly: the web route around it is the same for
every type (tests/integration/test_uploads.py).
"""

from __future__ import annotations

import io
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

from appliance.services.intake import uploads
from appliance.services.intake.uploads import Limits, UploadRefused, Usage

LIMITS = Limits(max_file_bytes=1 << 20, max_total_bytes=4 << 20, max_files=5)
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 200


def _heic(width: int = 64, height: int = 64) -> bytes:
    """A real HEIC (HEVC in a HEIF container) as a phone writes it, made by libheif."""
    buffer = io.BytesIO()
    picture = Image.new("RGB", (width, height), (200, 30, 30))
    pillow_heif.from_pillow(picture).save(buffer, quality=50)
    return buffer.getvalue()


def _declaring(data: bytes, width: int, height: int) -> bytes:
    """The same file with its image spatial extent (``ispe``) box claiming another size."""
    at = data.index(b"ispe") + 8  # type, then version and flags
    return data[:at] + struct.pack(">II", width, height) + data[at + 8 :]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 4096):
        yield data[start : start + 4096]


async def _receive(folder: Path, data: bytes, name: str) -> uploads.Received:
    return await uploads.receive(_chunks(data), folder, name, LIMITS, Usage(0, 0))


@pytest.mark.parametrize(
    ("what", "data"),
    [
        pytest.param(
            "an executable behind a HEIC brand",
            b"\x00\x00\x00\x18ftypheic" + b"\0" * 12 + ELF,
            id="executable",
        ),
        pytest.param(
            "a HEIF brand on nothing", b"\x00\x00\x00\x18ftypmif1" + b"\0" * 60, id="empty"
        ),
        pytest.param(
            "a HEIC declaring 12000 x 12000 pixels",
            _declaring(_heic(), 12000, 12000),
            id="oversized",
        ),
    ],
)
async def test_a_fake_or_oversized_heic_is_refused_and_nothing_kept(
    tmp_path: Path, what: str, data: bytes
) -> None:
    folder = tmp_path / "uploads"
    with pytest.raises(UploadRefused) as refused:
        await _receive(folder, data, "IMG_0001.HEIC")
    assert refused.value.reason == "type", what
    assert list(folder.iterdir()) == [], what


async def test_a_real_heic_is_kept_as_a_heic(tmp_path: Path) -> None:
    """The legitimate path: a real HEIC (and the same at a 48-megapixel phone's declared
    size, under the cap) is received as ``image/heic``."""
    for data in (_heic(), _declaring(_heic(), 8064, 6048)):
        received = await _receive(tmp_path / "uploads", data, "IMG_0002.HEIC")
        assert received.detected_type == "image/heic"
        assert received.size_bytes == len(data)
