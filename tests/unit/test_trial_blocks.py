"""The trial's blocks as drawn from the seed: balanced, reproducible, unpredictable enough."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from appliance.services.evaluation.trial import draw_block, sequence

SIZES = (4, 6)


@given(
    seed=st.integers(min_value=0, max_value=2**62 - 1),
    stratum=st.text(min_size=1, max_size=20),
    number=st.integers(min_value=1, max_value=500),
)
def test_every_block_holds_as_many_video_as_usual_places(seed: int, stratum: str, number: int):
    block = draw_block(seed, stratum, number, SIZES)
    assert len(block) in SIZES
    assert Counter(block) == {"video": len(block) // 2, "usual": len(block) // 2}


@given(seed=st.integers(min_value=0, max_value=2**62 - 1), places=st.integers(1, 200))
def test_the_sequence_is_balanced_at_every_block_boundary(seed: int, places: int) -> None:
    """Within a stratum the arms never differ by more than half the largest block."""
    arms = sequence(seed, "Theft", places, SIZES)
    running = 0
    for arm in arms:
        running += 1 if arm == "video" else -1
        assert abs(running) <= max(SIZES) // 2


def test_the_same_seed_reproduces_the_sequence_in_another_process() -> None:
    """String seeds hash with SHA-512, not Python's per-process hash: a fresh process agrees."""
    here = sequence(123456789, "Burglary", 60, SIZES)
    code = (
        "from appliance.services.evaluation.trial import sequence;"
        "print(','.join(sequence(123456789, 'Burglary', 60, (4, 6))))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    ).stdout.strip()
    assert there.split(",") == here


def test_other_seeds_and_strata_give_other_sequences() -> None:
    base = sequence(1, "Theft", 40, SIZES)
    assert sequence(2, "Theft", 40, SIZES) != base
    assert sequence(1, "Burglary", 40, SIZES) != base


def test_block_sizes_vary_when_more_than_one_is_allowed() -> None:
    sizes = Counter(len(draw_block(7, "Theft", n, SIZES)) for n in range(1, 200))
    assert set(sizes) == set(SIZES)
    assert min(sizes.values()) > 60
