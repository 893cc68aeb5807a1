"""The master key: wraps every evidence file's data key, and is checked at start-up.

The master key is 32 random bytes in a file (provisioned by Ansible; made on first
start for the dev box, but only while nothing is sealed: a key made after files were
sealed could open none of them). Each data key is wrapped with AES-256-GCM under the
master key; the wrap's associated data names the purpose, so a wrapped key cannot be
passed off as anything else. Rotation re-wraps data keys and never touches media.

Deleting a file destroys its wrapped data key in the database; but a backup made
before holds that wrapped key, and the master key would open it. So the fingerprint of
every destroyed wrapped key also goes on the shred list (``<data_dir>/keys/shredded``,
one SHA-256 a line, escrowed with the master key, never in a backup): the
keyring refuses to unwrap anything on it, and ``evr restore`` tombstones what it names.
A rotation re-wraps live keys only, so fingerprints of shredded keys stay valid.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func
from sqlmodel import Session, col, select

from appliance.config import Settings, SettingsError
from appliance.models import EvidenceFile, UploadSession
from appliance.services import audit
from appliance.services.audit import Actor

MASTER_KEY_BYTES = 32
WRAP_AAD = b"evr data key v1"


class UnwrapError(Exception):
    """A data key could not be unwrapped (wrong master key, or an altered row)."""


def key_id(master: bytes) -> str:
    """A short, public name for a master key (never the key): which key wrapped what."""
    return hashlib.sha256(b"evr master key id" + master).hexdigest()[:16]


@dataclass(frozen=True)
class Keyring:
    """The master key in memory and the data dir that sealed paths are relative to."""

    master: bytes
    data_dir: Path
    shred_list: Path | None = None

    @property
    def key_id(self) -> str:
        return key_id(self.master)

    def wrap(self, data_key: bytes) -> str:
        nonce = os.urandom(12)
        return (nonce + AESGCM(self.master).encrypt(nonce, data_key, WRAP_AAD)).hex()

    def unwrap(self, wrapped: str) -> bytes:
        if self.shred_list is not None and fingerprint(wrapped) in shredded(self.shred_list):
            raise UnwrapError("this data key was destroyed by a deletion (shred list)")
        raw = bytes.fromhex(wrapped)
        try:
            return AESGCM(self.master).decrypt(raw[:12], raw[12:], WRAP_AAD)
        except InvalidTag:
            raise UnwrapError("a data key does not unwrap with this master key") from None


def fingerprint(wrapped: str) -> str:
    return hashlib.sha256(b"evr shredded key" + wrapped.encode()).hexdigest()


def shred_list_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "shredded"


def shredded(path: Path) -> frozenset[str]:
    """The fingerprints on a shred list (none when it does not exist yet)."""
    try:
        return frozenset(line for line in path.read_text().split() if line)
    except FileNotFoundError:
        return frozenset()


def shred(keyring: Keyring, wrapped: str) -> None:
    """Put a wrapped key on the shred list, flushed to disk before the deletion commits."""
    if keyring.shred_list is None or not wrapped:
        return
    keyring.shred_list.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(keyring.shred_list, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (fingerprint(wrapped) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_master(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except PermissionError:
        raise SettingsError(
            f"invalid setting master_key_file: {path} cannot be read by this user"
        ) from None
    if len(data) != MASTER_KEY_BYTES:
        raise SettingsError(
            f"invalid setting master_key_file: {path} holds {len(data)} bytes, "
            f"not the {MASTER_KEY_BYTES} random bytes of a master key"
        )
    return data


def write_key_file(path: Path, secret: bytes) -> None:
    """Create ``path`` (never overwriting) with mode 0600, flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sealed_by(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(EvidenceFile.master_key_id, func.count())
        .where(col(EvidenceFile.wrapped_key).is_not(None))
        .group_by(EvidenceFile.master_key_id)
    ).all()
    return {kid: int(n) for kid, n in rows}


def open_keyring(settings: Settings, session: Session) -> Keyring:
    """Read (or, on a box with nothing sealed, make) the master key, and check that it
    is the key that wrapped the data keys already kept. Any doubt stops start-up."""
    path = settings.effective_master_key_file
    sealed = _sealed_by(session)
    if not path.exists():
        if sealed:
            raise SettingsError(
                f"invalid setting master_key_file: {path} does not exist, and "
                f"{sum(sealed.values())} sealed evidence files need the key that sealed them; "
                "restore the key file (docs/evidence.md)"
            )
        write_key_file(path, os.urandom(MASTER_KEY_BYTES))
    pending = path.with_name(path.name + ".new")
    master = _read_master(path)
    if pending.exists() and set(sealed) == {key_id(_read_master(pending))}:
        # A rotation committed its re-wrapped keys but stopped before the rename.
        pending.replace(path)
        master = _read_master(path)
    others = {kid: n for kid, n in sealed.items() if kid != key_id(master)}
    if others:
        raise SettingsError(
            f"invalid setting master_key_file: {path} is not the key that sealed "
            f"{sum(others.values())} evidence files (key id {', '.join(sorted(others))}; "
            f"this file's is {key_id(master)}); refusing to start with the wrong key"
        )
    return Keyring(master, settings.data_dir, shred_list_path(settings))


def rotate(session: Session, settings: Settings, keyring: Keyring, actor: Actor) -> Keyring:
    """Make a new master key and re-wrap every data key under it (media untouched),
    those of uploads still arriving in parts included.

    The new key is written beside the old one first (``.new``), the re-wrapped keys
    commit, then the new file replaces the old; ``open_keyring`` finishes a rotation
    that stopped between the commit and the rename.
    """
    path = settings.effective_master_key_file
    pending = path.with_name(path.name + ".new")
    pending.unlink(missing_ok=True)
    new = Keyring(os.urandom(MASTER_KEY_BYTES), keyring.data_dir, keyring.shred_list)
    write_key_file(pending, new.master)
    files = session.exec(
        select(EvidenceFile).where(col(EvidenceFile.wrapped_key).is_not(None))
    ).all()
    for file in files:
        assert file.wrapped_key is not None
        file.wrapped_key = new.wrap(keyring.unwrap(file.wrapped_key))
        file.master_key_id = new.key_id
        session.add(file)
    # A caller's file still arriving in parts: its chunks are sealed with its data key,
    # which must open under the new master key when the caller comes back to finish.
    under_way = session.exec(select(UploadSession)).all()
    for upload in under_way:
        upload.wrapped_key = new.wrap(keyring.unwrap(upload.wrapped_key))
        session.add(upload)
    audit.record(
        session,
        actor,
        "keys.rotated",
        object_type="master_key",
        object_id=new.key_id,
        detail={
            "previous": keyring.key_id,
            "data_keys": len(files),
            "uploads_under_way": len(under_way),
        },
    )
    session.commit()
    pending.replace(path)
    return new
