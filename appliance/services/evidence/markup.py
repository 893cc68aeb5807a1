"""Captions on snapshots, and marked-up copies: arrows and circles drawn on a snapshot.

An original snapshot is evidence as taken: its sealed bytes and SHA-256 never change. A
caption is metadata on its row. Marking up never edits a picture either: the officer's
shapes arrive as numbers (not as an image the browser drew), are checked, and drawn here
with Pillow onto a copy of the original's pixels; the copy is sealed as a new snapshot of
the same call with its own SHA-256, names its original, keeps the shapes it was drawn
from, and is audited. No image from the browser is ever decoded, so a hostile upload has
nothing to exploit but a small JSON document, checked field by field.

``read_original`` and ``render`` are blocking (decrypting, decoding, encoding): the web
handler runs them in a thread with no database session open.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import textwrap
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from sqlmodel import Session

from appliance.models import Call, EvidenceFile, Snapshot, User
from appliance.services import audit
from appliance.services.audit import Actor
from appliance.services.evidence import captures, sealing
from appliance.services.evidence.captures import EvidenceError
from appliance.services.evidence.master_key import Keyring
from media.snapshot import MAX_PIXELS

SHAPES = ("arrow", "circle")
MAX_SHAPES = 40
CAPTION_MAX = 200
MAX_BODY_BYTES = 16 * 1024
"""A marked-up copy's request at most: 40 shapes and a caption take under 4 KiB."""
JPEG_QUALITY = 92
INK = (255, 221, 0)
EDGE = (0, 0, 0)


class MarkupRefused(ValueError):
    """What the officer sent cannot be drawn; the message is for them."""


@dataclass(frozen=True)
class Shape:
    """An arrow from ``start`` to ``end`` (its head at ``end``), or a circle centred on
    ``start`` passing through ``end``; points are fractions of the picture's width and
    height (0 to 1), so the drawing does not depend on how large the page showed it."""

    kind: str
    start: tuple[float, float]
    end: tuple[float, float]

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "from": list(self.start), "to": list(self.end)}


@dataclass(frozen=True)
class Markup:
    shapes: tuple[Shape, ...]
    caption: str


def clean_caption(value: Any) -> str:
    if not isinstance(value, str):
        raise MarkupRefused("A caption must be text.")
    caption = " ".join(value.split())
    if len(caption) > CAPTION_MAX:
        raise MarkupRefused(f"A caption is at most {CAPTION_MAX} characters.")
    if any(not ch.isprintable() for ch in caption):
        raise MarkupRefused("A caption may not hold control characters.")
    return caption


def _point(value: Any, what: str) -> tuple[float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise MarkupRefused(f"Shape {what} is not a point (two numbers).")
    x, y = float(value[0]), float(value[1])
    if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= 1 and 0 <= y <= 1):
        raise MarkupRefused(f"Shape {what} lies outside the picture.")
    return x, y


def parse(body: bytes) -> Markup:
    """The shapes and caption in a request's JSON body, or ``MarkupRefused`` saying why."""
    if len(body) > MAX_BODY_BYTES:
        raise MarkupRefused(f"The drawing is too large to keep (at most {MAX_BODY_BYTES} bytes).")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: [[[[… nested deep
        raise MarkupRefused("The drawing did not arrive as JSON.") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("shapes"), list):
        raise MarkupRefused("The drawing has no list of shapes.")
    raw = payload["shapes"]
    if not raw:
        raise MarkupRefused("Draw at least one arrow or circle before saving a marked-up copy.")
    if len(raw) > MAX_SHAPES:
        raise MarkupRefused(f"A marked-up copy holds at most {MAX_SHAPES} shapes.")
    shapes = []
    for number, item in enumerate(raw, 1):
        if not isinstance(item, dict) or item.get("kind") not in SHAPES:
            raise MarkupRefused(f"Shape {number} is not an arrow or a circle.")
        shapes.append(
            Shape(
                item["kind"],
                _point(item.get("from"), f"{number}"),
                _point(item.get("to"), f"{number}"),
            )
        )
    return Markup(tuple(shapes), clean_caption(payload.get("caption", "")))


def read_original(keyring: Keyring, file: EvidenceFile, sha256: str) -> bytes:
    """The original's plaintext, checked against the hash recorded when it was taken:
    a copy is never drawn from a file that no longer matches its record."""
    try:
        data = sealing.open_bytes(keyring, file)
    except (sealing.SealedError, OSError) as exc:
        raise EvidenceError("the original snapshot could not be read") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise EvidenceError("the original snapshot does not match its recorded hash")
    return data


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def render(original: bytes, markup: Markup) -> tuple[bytes, int, int]:
    """Draw ``markup`` on a copy of ``original`` (a JPEG this box took): the caption, if
    any, in a band added under the picture so it covers nothing. Returns the JPEG and
    its size."""
    with Image.open(io.BytesIO(original)) as opened:
        if opened.width * opened.height > MAX_PIXELS:
            raise EvidenceError("the original snapshot is larger than a snapshot may be")
        picture = opened.convert("RGB")
    width, height = picture.size
    stroke = max(3, round(min(width, height) / 140))
    draw = ImageDraw.Draw(picture)
    for shape in markup.shapes:
        (x0, y0), (x1, y1) = (
            (shape.start[0] * width, shape.start[1] * height),
            (shape.end[0] * width, shape.end[1] * height),
        )
        for colour, extra in ((EDGE, stroke), (INK, 0)):
            line = stroke + extra
            if shape.kind == "circle":
                r = max(math.hypot(x1 - x0, y1 - y0), stroke * 2)
                draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), outline=colour, width=line)
            else:
                draw.line((x0, y0, x1, y1), fill=colour, width=line)
                angle = math.atan2(y1 - y0, x1 - x0)
                head = stroke * 5 + extra
                wing = math.radians(28)
                draw.polygon(
                    [
                        (x1, y1),
                        (x1 - head * math.cos(angle - wing), y1 - head * math.sin(angle - wing)),
                        (x1 - head * math.cos(angle + wing), y1 - head * math.sin(angle + wing)),
                    ],
                    fill=colour,
                )
    if markup.caption:
        size = max(14, round(width / 45))
        font = _font(size)
        per_line = max(10, int(width / (size * 0.55)))
        lines = textwrap.wrap(markup.caption, per_line)
        band = size * len(lines) + size
        framed = Image.new("RGB", (width, height + band), (0, 0, 0))
        framed.paste(picture, (0, 0))
        ImageDraw.Draw(framed).multiline_text(
            (size // 2, height + size // 2), "\n".join(lines), fill=(255, 255, 255), font=font
        )
        picture = framed
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), picture.width, picture.height


def keep_copy(
    session: Session,
    keyring: Keyring,
    call: Call,
    original: Snapshot,
    user: User,
    jpeg: bytes,
    size: tuple[int, int],
    markup: Markup,
    source: str,
) -> Snapshot:
    """Seal a marked-up copy as a new snapshot of ``call``, linked to ``original``."""
    copy = captures.seal_snapshot(
        session,
        keyring,
        call,
        user,
        jpeg,
        size,
        suffix="-marked",
        caption=markup.caption,
        original_id=original.id,
        markup=[shape.as_json() for shape in markup.shapes],
    )
    audit.record(
        session,
        Actor(user.username, source),
        "snapshot.marked_up",
        object_type="call",
        object_id=call.public_id,
        detail={
            "snapshot": copy.id,
            "sha256": copy.sha256,
            "original": original.id,
            "original_sha256": original.sha256,
            "shapes": len(markup.shapes),
        },
    )
    return copy


def set_caption(
    session: Session, actor: Actor, call: Call, snapshot: Snapshot, caption: str
) -> None:
    """Caption a snapshot: its row changes, its file does not. The audit names the
    snapshot and the caption's length, never its words (they may name someone)."""
    snapshot.caption = clean_caption(caption)
    session.add(snapshot)
    audit.record(
        session,
        actor,
        "snapshot.captioned",
        object_type="call",
        object_id=call.public_id,
        detail={"snapshot": snapshot.id, "chars": len(snapshot.caption)},
    )
