"""The box's judge of the caller's line (appliance/live/weak_line.py), period by period:
cumulative packet counts in, a verdict out."""

from __future__ import annotations

from appliance.live.weak_line import WeakLine


def run(line: WeakLine, periods: list[tuple[int, int, bool]], **state: bool) -> list[bool | None]:
    """Feed ``(received, lost, late)`` per period (as deltas); the verdicts."""
    received = lost = 0
    verdicts = [
        line.observe(0, 0, False, state.get("sound_only", False), state.get("by_box", False))
    ]
    for got, missed, late in periods:
        received, lost = received + got, lost + missed
        verdicts.append(
            line.observe(
                received, lost, late, state.get("sound_only", False), state.get("by_box", False)
            )
        )
    return verdicts[1:]


def test_sustained_loss_switches_video_off_after_three_periods() -> None:
    """30% lost three periods running: off at the third; a clean period between resets."""
    assert run(WeakLine(), [(70, 30, False)] * 3) == [None, None, True]
    assert run(WeakLine(), [(70, 30, False), (100, 0, False), (70, 30, False)]) == [None] * 3


def test_a_late_period_counts_for_nothing_either_way() -> None:
    """The box was busy in the middle period: its 30% is no evidence, and does not break
    the run either (a busy box neither turns video off nor keeps it off)."""
    verdicts = run(WeakLine(), [(70, 30, False), (70, 30, True), (70, 30, False), (70, 30, False)])
    assert verdicts == [None, None, None, True]
    assert run(WeakLine(), [(10, 90, True)] * 10) == [None] * 10


def test_a_quiet_period_proves_nothing() -> None:
    """Fewer than 20 packets (a page in the background): no verdict, however many lost."""
    assert run(WeakLine(), [(5, 10, False)] * 5) == [None] * 5


def test_video_comes_back_only_after_the_box_turned_it_off_and_the_line_recovered() -> None:
    line = WeakLine()
    assert run(line, [(100, 0, False)] * 5, sound_only=True, by_box=True) == [None] * 4 + [False]


def test_a_persons_choice_is_never_undone() -> None:
    """Sound only pressed by a person: a clean line does not bring video back."""
    assert run(WeakLine(), [(100, 0, False)] * 20, sound_only=True, by_box=False) == [None] * 20


def test_each_new_switch_waits_twice_as_long_before_video_is_tried_again() -> None:
    """A line that carries sound but not video: off, back after 5 clean periods, off
    again, then back only after 10."""
    line = WeakLine()
    assert run(line, [(70, 30, False)] * 3) == [None, None, True]
    assert run(line, [(100, 0, False)] * 5, sound_only=True, by_box=True)[-1] is False
    assert run(line, [(70, 30, False)] * 3)[-1] is True
    again = run(line, [(100, 0, False)] * 10, sound_only=True, by_box=True)
    assert again == [None] * 9 + [False]


def test_a_rejoined_leg_counting_from_zero_is_a_fresh_start() -> None:
    line = WeakLine()
    line.observe(1000, 10, False, False, False)
    assert line.observe(50, 40, False, False, False) is None
