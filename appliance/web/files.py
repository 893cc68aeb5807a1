"""Sealed evidence files as the web serves them: their type and label in words, and
streamed with byte ranges (audited on the range served, refused when the seal fails)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from appliance import metrics
from appliance.models import EvidenceFile
from appliance.services.evidence import sealing
from appliance.services.evidence.master_key import UnwrapError
from appliance.services.intake import uploads
from appliance.web import keys
from media.sealed import SealedError

log = logging.getLogger("evr.web")

RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")


TYPES = {
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".jpg": "image/jpeg",
    ".pdf": "application/pdf",
} | {suffix: kind for kind, suffix in uploads.ACCEPTED.items()}


def content_type(file: EvidenceFile) -> str:
    return TYPES.get(Path(file.path).suffix.lower(), "application/octet-stream")


# What an evidence file is, as staff say it: "Signed statement (PDF)", not "statement 7".
KIND_WORDS = {
    "recording": "Recording",
    "snapshot": "Snapshot",
    "upload": "Photo or video from the caller",
    "statement": "Signed statement",
}
FORMAT_WORDS = {
    ".webm": "WebM",
    ".mkv": "MKV",
    ".jpg": "JPEG",
    ".png": "PNG",
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".mp4": "MP4",
    ".mov": "MOV",
    ".pdf": "PDF",
}


def evidence_label(file: EvidenceFile) -> str:
    """An evidence item's kind and format in words, for every page that lists evidence."""
    suffix = Path(file.path).suffix.lower()
    kind = KIND_WORDS.get(file.kind, file.kind.capitalize())
    form = FORMAT_WORDS.get(suffix, suffix.lstrip(".").upper())
    return f"{kind} ({form})" if form else kind


def media_label(mime: str) -> str:
    """A caller's upload by what it is: "Photo (JPEG)", "Video (MP4)"."""
    kind = (
        "Photo" if mime.startswith("image/") else "Video" if mime.startswith("video/") else "File"
    )
    form = FORMAT_WORDS.get(uploads.ACCEPTED.get(mime, ""), mime)
    return f"{kind} ({form})"


def download_name(file: EvidenceFile) -> str:
    return f"{file.kind}-{file.id}{Path(file.path).suffix.lower()}"


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single-range request, None for the whole file;
    raises 416 for a range outside the file."""
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if match is None:
        return None  # multiple or odd ranges: answer with the whole file (RFC 9110 allows it)
    first, last = match.groups()
    if first:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    elif last:
        start, end = max(size - int(last), 0), size
    else:
        return None
    if start >= size or end <= start:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def stream_file(
    request: web.Request,
    file: EvidenceFile,
    inline: bool = True,
    before_send: Callable[[int, int, int], None] | None = None,
) -> web.StreamResponse:
    """Decrypt and send a sealed file, whole (200) or the range asked for (206).

    ``before_send(start, end, size)`` hears the range as parsed (not the header's text,
    which can say "the whole file" in many ways) before a byte goes out: custody audits
    on it. The first chunk is opened before any header goes out, so a file that fails
    its check answers 500 and says so; a later chunk failing cuts the connection (the
    player stops loudly rather than playing altered media).
    """
    keyring = request.app[keys.KEYRING]
    try:
        reader = await asyncio.to_thread(sealing.reader, keyring, file)
    except (SealedError, UnwrapError, OSError) as exc:
        return _integrity_failure(file, exc)
    try:
        wanted = _byte_range(request.headers.get("Range"), reader.size)
        start, end = wanted or (0, reader.size)
        if before_send is not None:
            before_send(start, end, reader.size)
        pieces = reader.read_range(start, end)
        try:
            first = await asyncio.to_thread(next, pieces, b"")
        except SealedError as exc:
            return _integrity_failure(file, exc)
        response = web.StreamResponse(status=206 if wanted else 200)
        response.content_type = content_type(file)
        response.content_length = end - start
        response.headers["Accept-Ranges"] = "bytes"
        response.headers["Cache-Control"] = "no-store"
        disposition = "inline" if inline else "attachment"
        response.headers["Content-Disposition"] = f'{disposition}; filename="{download_name(file)}"'
        if wanted:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{reader.size}"
        await response.prepare(request)
        await response.write(first)
        while True:
            try:
                piece = await asyncio.to_thread(next, pieces, None)
            except SealedError as exc:
                _integrity_failure(file, exc)
                raise ConnectionResetError(str(exc)) from None
            if piece is None:
                break
            await response.write(piece)
        await response.write_eof()
        return response
    finally:
        reader.close()


def _integrity_failure(file: EvidenceFile, exc: Exception) -> web.Response:
    log.error("evidence file fails its check", extra={"file": file.id, "error": str(exc)})
    metrics.EVIDENCE_INTEGRITY_FAILURES.inc()
    return web.Response(
        status=500,
        text=f"This {file.kind} fails its integrity check and is not shown: {exc}. "
        "Tell the evidence officer; run `evr evidence verify`.",
    )
