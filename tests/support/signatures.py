"""A drawn signature as the statement page's canvas sends it: a PNG with ink, or without."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def signature_png(width: int = 400, height: int = 150, ink: bool = True) -> bytes:
    image = Image.new("RGBA", (width, height), (255, 255, 255, 0))
    if ink:
        ImageDraw.Draw(image).line(
            [(20, 120), (120, 30), (220, 110), (380, 40)], fill="black", width=4
        )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
