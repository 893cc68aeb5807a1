"""The sealed-file format: what it refuses (each case says what was tried)."""

import os
from pathlib import Path

import pytest

from media import sealed
from media.sealed import LENGTH, NONCE_BYTES, SealedError, SealedReader, SealedWriter

PLAIN = os.urandom(3 * sealed.CHUNK_BYTES + 12345)


def _write(path: Path, key: bytes, data: bytes = PLAIN, flush_every: int = 0) -> None:
    with SealedWriter(path, key) as writer:
        for start in range(0, len(data), flush_every or len(data)):
            writer.write(data[start : start + (flush_every or len(data))])
            writer.flush()


def _chunks(path: Path) -> list[tuple[int, int]]:
    raw = path.read_bytes()
    offset, found = sealed.HEADER.size, []
    while offset < len(raw):
        (length,) = LENGTH.unpack_from(raw, offset)
        size = LENGTH.size + NONCE_BYTES + length
        found.append((offset, size))
        offset += size
    return found


def test_round_trip_and_ranges(tmp_path: Path) -> None:
    key = sealed.new_data_key()
    path = tmp_path / "f"
    _write(path, key, flush_every=100_000)
    with SealedReader(path, key) as reader:
        assert reader.size == len(PLAIN) and reader.finished
        assert b"".join(reader) == PLAIN
        for start, end in [(0, 1), (99_999, 100_001), (5, len(PLAIN)), (len(PLAIN) - 3, 10**9)]:
            assert b"".join(reader.read_range(start, end)) == PLAIN[start:end]
    assert PLAIN[:64] not in path.read_bytes()


def test_a_flipped_byte_is_named(tmp_path: Path) -> None:
    """One bit changed in the middle of the second chunk: that chunk refuses to open."""
    key = sealed.new_data_key()
    path = tmp_path / "f"
    _write(path, key)
    offset, size = _chunks(path)[1]
    raw = bytearray(path.read_bytes())
    raw[offset + size // 2] ^= 1
    path.write_bytes(raw)
    with SealedReader(path, key) as reader, pytest.raises(SealedError, match="chunk 1 fails"):
        b"".join(reader)


def test_wrong_key_refuses(tmp_path: Path) -> None:
    """Opened with another data key: refused at once, not taken for a cut-short file."""
    path = tmp_path / "f"
    _write(path, sealed.new_data_key())
    with pytest.raises(SealedError, match="fails its check"):
        SealedReader(path, sealed.new_data_key())


def test_reordered_chunks_refuse(tmp_path: Path) -> None:
    """Chunks 0 and 1 swapped (each intact): the index bound into the tag catches it."""
    key = sealed.new_data_key()
    path = tmp_path / "f"
    _write(path, key)
    raw = path.read_bytes()
    (a, la), (b, lb) = _chunks(path)[:2]
    path.write_bytes(raw[:a] + raw[b : b + lb] + raw[a : a + la] + raw[b + lb :])
    with SealedReader(path, key) as reader, pytest.raises(SealedError, match="chunk 0"):
        reader.chunk(0)


def test_truncation_is_detected(tmp_path: Path) -> None:
    """The final chunk cut off (whole chunks left): refused as cut short unless the
    caller knows the file was never finished (a crashed recording)."""
    key = sealed.new_data_key()
    path = tmp_path / "f"
    _write(path, key)
    offset, _ = _chunks(path)[-1]
    path.write_bytes(path.read_bytes()[:offset])
    with pytest.raises(SealedError, match="cut short"):
        SealedReader(path, key)
    with SealedReader(path, key, allow_unfinished=True) as reader:
        assert b"".join(reader) == PLAIN[: reader.size]


def test_torn_tail_of_a_crash_is_ignored(tmp_path: Path) -> None:
    """A writer killed mid-chunk leaves half a record: the whole chunks before it read."""
    key = sealed.new_data_key()
    path = tmp_path / "f"
    writer = SealedWriter(path, key)
    writer.write(b"a" * 1000)
    writer.flush()
    writer.abandon()
    with path.open("ab") as f:
        f.write(LENGTH.pack(500) + b"x" * 20)
    with SealedReader(path, key, allow_unfinished=True) as reader:
        assert b"".join(reader) == b"a" * 1000 and not reader.finished


def test_not_a_sealed_file(tmp_path: Path) -> None:
    """A plain JPEG where a sealed file should be: refused by name, not decrypted."""
    path = tmp_path / "f.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 100)
    with pytest.raises(SealedError, match="not a sealed file"):
        SealedReader(path, sealed.new_data_key())
