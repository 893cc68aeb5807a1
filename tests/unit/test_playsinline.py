"""Every video a caller or a guest sees plays in its page: iOS Safari without
`playsinline` takes a video full screen over the call's controls (and, before iOS 10,
would not play it at all until tapped)."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "appliance" / "templates"


def test_every_video_on_the_caller_and_guest_pages_plays_inline() -> None:
    videos = {
        f"{page.relative_to(TEMPLATES)}: {tag}"
        for folder in ("caller", "guest")
        for page in (TEMPLATES / folder).glob("*.html")
        for tag in re.findall(r"<video\b[^>]*>", page.read_text(encoding="utf-8"))
    }
    assert len(videos) >= 7, videos  # the check found the pages' videos
    assert [v for v in videos if not re.search(r"\splaysinline[\s>]", v)] == []
