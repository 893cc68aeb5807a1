"""Sealed files: AES-256-GCM in chunks, so evidence is never on disk in clear.

A long recording never sits whole in memory and is still readable after a SIGKILL:
it is sealed a chunk at a time (the recorder seals one at every cluster), each chunk
with its own nonce and tag. The chunk's index and a final-chunk flag are bound into
each tag as associated data, so a reordered, dropped or cut-off chunk fails to open
rather than playing something else.

Layout (docs/evidence.md)::

    header  b"EVRSEAL1" + u32 max chunk size                        (12 bytes)
    chunk   u32 ciphertext length + 12-byte nonce + ciphertext+tag   (repeated)
    AAD     header + u64 chunk index + u8 final flag

The data key (32 bytes) comes from the caller; wrapping it is not this module's job.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAGIC = b"EVRSEAL1"
HEADER = struct.Struct(">8sI")
LENGTH = struct.Struct(">I")
AAD = struct.Struct(">QB")
NONCE_BYTES = 12
TAG_BYTES = 16
CHUNK_BYTES = 256 * 1024
KEY_BYTES = 32


class SealedError(Exception):
    """A sealed file does not open: wrong key, altered, reordered or cut short."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


class SealedWriter:
    """Seals what is written to it; ``flush`` seals what is buffered as one chunk.

    A file-like object for writing (PyAV writes to it as to a non-seekable pipe).
    ``close`` seals the final chunk; a file never closed (a crash) keeps every chunk
    sealed before, and a reader opens it with ``allow_unfinished``.
    """

    def __init__(self, path: str | os.PathLike[str], key: bytes, fsync: bool = True) -> None:
        if len(key) != KEY_BYTES:
            raise SealedError("a data key is 32 bytes")
        self.path = Path(path)
        self._aead = AESGCM(key)
        self._fsync = fsync
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self._header = HEADER.pack(MAGIC, CHUNK_BYTES)
        self._buffer = bytearray()
        self._index = 0
        self.closed = False
        self.broken: OSError | None = None
        self.sha256 = hashlib.sha256()
        self.size = 0
        try:
            self._write_all(self._header)
        except BaseException:
            self.abandon()  # a full disk at the first byte must not leak the descriptor
            raise

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        self._buffer += view
        self.sha256.update(view)
        self.size += len(view)
        while len(self._buffer) >= CHUNK_BYTES:
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), final=False)
            del self._buffer[:CHUNK_BYTES]
        return len(view)

    def flush(self) -> None:
        """Seal what is buffered (if anything) so it survives a crash of this process."""
        if self._buffer:
            self._seal(bytes(self._buffer), final=False)
            self._buffer.clear()

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self.closed:
            return
        if self.broken is not None:
            self.abandon()
            raise OSError(self.broken.errno, f"sealed file cut short: {self.broken}")
        try:
            self._seal(bytes(self._buffer), final=True)
            self._buffer.clear()
            if self._fsync:
                os.fsync(self._fd)
        finally:
            self.closed = True
            os.close(self._fd)

    def abandon(self) -> None:
        """Close without a final chunk (the file stays unfinished, as after a crash)."""
        if not self.closed:
            self.closed = True
            os.close(self._fd)

    def __enter__(self) -> SealedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.abandon()

    def _seal(self, plain: bytes, final: bool) -> None:
        if self.broken is not None:
            raise OSError(self.broken.errno, f"sealed file unusable after: {self.broken}")
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plain, self._header + AAD.pack(self._index, final))
        self._write_all(LENGTH.pack(len(sealed)) + nonce + sealed)
        self._index += 1

    def _write_all(self, data: bytes) -> None:
        """Write a whole record; after a failed write (a full disk) the file is left as
        it is, its torn tail ignored by readers, and no further record is appended."""
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self.broken = exc
            raise


class SealedReader:
    """Random access by chunk to a sealed file, decrypting only what is asked for.

    Opening reads every chunk's length (not its contents) to build the index, so a
    range request decrypts only the chunks it covers. Every chunk read is checked:
    a flipped byte raises :class:`SealedError` naming the chunk.
    """

    def __init__(
        self, path: str | os.PathLike[str], key: bytes, allow_unfinished: bool = False
    ) -> None:
        self.path = Path(path)
        self._aead = AESGCM(key)
        self._file = self.path.open("rb")
        try:
            self._header = self._file.read(HEADER.size)
            if len(self._header) != HEADER.size or HEADER.unpack(self._header)[0] != MAGIC:
                raise SealedError(f"{self.path.name}: not a sealed file")
            self._chunk_bytes = HEADER.unpack(self._header)[1]
            self._index: list[tuple[int, int]] = []  # (file offset, sealed length)
            self._scan()
            self.finished = self._final_present()
            if not self.finished and self._index and not self._tail_bytes:
                self._open(len(self._index) - 1, final=False)  # altered, not just cut short?
            if not self.finished and not allow_unfinished:
                raise SealedError(f"{self.path.name}: cut short (no final chunk)")
            self._plain_offsets = self._measure()
        except BaseException:
            self._file.close()
            raise

    @property
    def chunks(self) -> int:
        return len(self._index)

    @property
    def size(self) -> int:
        """Plaintext bytes."""
        return self._plain_offsets[-1]

    def _scan(self) -> None:
        end = os.fstat(self._file.fileno()).st_size
        offset = HEADER.size
        while offset + LENGTH.size <= end:
            self._file.seek(offset)
            (length,) = LENGTH.unpack(self._file.read(LENGTH.size))
            if length < TAG_BYTES or length > self._chunk_bytes + TAG_BYTES:
                raise SealedError(f"{self.path.name}: chunk {len(self._index)} has a bad length")
            if offset + LENGTH.size + NONCE_BYTES + length > end:
                break  # torn tail: a crash mid-write; only an unfinished file has one
            self._index.append((offset, length))
            offset += LENGTH.size + NONCE_BYTES + length
        self._tail_bytes = end - offset

    def _final_present(self) -> bool:
        if not self._index or self._tail_bytes:
            return False
        try:
            self._open(len(self._index) - 1, final=True)
            return True
        except SealedError:
            return False

    def _measure(self) -> list[int]:
        """Plaintext offsets of each chunk; sealed length minus the tag is plain length."""
        offsets = [0]
        for _, length in self._index:
            offsets.append(offsets[-1] + length - TAG_BYTES)
        return offsets

    def _open(self, index: int, final: bool | None = None) -> bytes:
        offset, length = self._index[index]
        if final is None:
            final = self.finished and index == len(self._index) - 1
        self._file.seek(offset + LENGTH.size)
        nonce = self._file.read(NONCE_BYTES)
        sealed = self._file.read(length)
        try:
            return self._aead.decrypt(nonce, sealed, self._header + AAD.pack(index, final))
        except InvalidTag:
            raise SealedError(
                f"{self.path.name}: chunk {index} fails its check (altered, moved, or wrong key)"
            ) from None

    def chunk(self, index: int) -> bytes:
        return self._open(index)

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        """Plaintext bytes ``start`` to ``end`` (exclusive), a chunk at a time."""
        end = min(end, self.size)
        if start >= end:
            return
        first = _chunk_at(self._plain_offsets, start)
        for index in range(first, len(self._index)):
            chunk_start = self._plain_offsets[index]
            if chunk_start >= end:
                break
            plain = self._open(index)
            yield plain[max(start - chunk_start, 0) : end - chunk_start]

    def __iter__(self) -> Iterator[bytes]:
        for index in range(len(self._index)):
            yield self._open(index)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for plain in self:
            digest.update(plain)
        return digest.hexdigest()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SealedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PlainView(io.RawIOBase):
    """A read-only, seekable file object over a sealed file's plaintext (for PyAV)."""

    def __init__(self, reader: SealedReader) -> None:
        super().__init__()
        self._reader = reader
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._reader.size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")  # as io's own readers do: count bytes
        data = b"".join(self._reader.read_range(self._pos, self._pos + len(view)))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def seal_bytes(path: str | os.PathLike[str], key: bytes, data: bytes) -> None:
    with SealedWriter(path, key) as writer:
        writer.write(data)


def open_bytes(path: str | os.PathLike[str], key: bytes) -> bytes:
    with SealedReader(path, key) as reader:
        return b"".join(reader)


def _chunk_at(offsets: list[int], position: int) -> int:
    low, high = 0, len(offsets) - 2
    while low < high:
        middle = (low + high + 1) // 2
        if offsets[middle] <= position:
            low = middle
        else:
            high = middle - 1
    return low
