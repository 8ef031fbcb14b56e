"""Side files of the outbox that survive damage to its database (see
:mod:`renkei.edge.transport.outbox`).

Three small files live next to the outbox database ``<db>``:

``<db>.guard`` (JSON, replaced atomically: temp file, fsync, rename, fsync of the directory)
    The boot ``epoch`` (Sparkplug B's bdSeq idea: +1 on every open, and on every quarantine),
    the *reserved* sequence high-water mark (no seq at or above it has ever been handed
    out; raised in blocks and fsynced *before* a seq of the new block is used), the
    persisted loss counters, the carried-over totals of quarantined databases, and whether
    the last session closed cleanly (then ``committed`` is the exact next seq).

``<db>.hint`` (28 bytes, rewritten in place after every commit, *not* fsynced)
    ``(epoch, next_seq, oldest, crc32)``; ``oldest`` is the lowest unacknowledged seq
    (every seq below it was acknowledged or dropped). A ``kill -9`` keeps it (the
    kernel's page cache survives the process), so after a crash on the same boot
    (``/proc``'s ``boot_id`` unchanged) it is exact. After a power loss or kernel crash it may be
    stale, so it is only a lower bound then, and the reserved mark is the upper bound.

``<db>.reserve`` (``disk_reserve_bytes`` of preallocated zeros)
    Released when the filesystem is full, so the outbox can still write its WAL to
    delete acknowledged or dropped messages; re-created when there is room again.

Nothing here imports SQLite; :class:`~renkei.edge.transport.outbox.Outbox` owns the logic.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import struct
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "GUARD_SIZE",
    "DiskReserve",
    "GuardFile",
    "GuardState",
    "boot_id",
    "is_enospc",
    "sibling",
]

log = logging.getLogger(__name__)

_HINT: Final = struct.Struct("<qqqI")
_BOOT_ID_PATH: Final = Path("/proc/sys/kernel/random/boot_id")
_CHUNK: Final = 64 * 1024
#: Size of ``<db>.guard``, bytes (fixed, so it can be overwritten in place when full).
GUARD_SIZE: Final = 1024


def boot_id() -> str:
    """The kernel's boot id (changes on every boot); ``""`` when unknown (then every
    unclean restart is treated like a power loss: conservative)."""
    try:
        return _BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""


def sibling(path: Path, suffix: str) -> Path:
    """``path`` with ``suffix`` appended to its file name (``x.db`` -> ``x.db-wal``)."""
    return path.with_name(path.name + suffix)


def is_enospc(exc: OSError) -> bool:
    """Whether an OS error means the filesystem (or a quota) is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


@dataclass(slots=True)
class GuardState:
    """Contents of ``<db>.guard``; all counts are messages (sequence numbers)."""

    epoch: int = 0
    """Boot epoch of the session that wrote the file (>= 1 once an outbox opened)."""
    reserved: int = 0
    """No seq >= this has been used; raised in blocks, fsynced before use."""
    committed: int = 0
    """Exact next seq at a clean close (meaningful only when ``clean``)."""
    oldest: int = 0
    """Lowest unacknowledged seq at a clean close (``committed`` if none)."""
    clean: bool = False
    """The session closed cleanly."""
    boot_id: str = ""
    """Kernel boot id of the session (see :func:`boot_id`)."""
    lost_total: int = 0
    """Committed, unacknowledged messages known to be gone after storage damage."""
    gap_total: int = 0
    """Seqs skipped after a possible power loss whose use could not be verified (each
    was either never used or lost: an upper bound on further loss)."""
    quarantined_total: int = 0
    """Damaged databases moved aside."""
    carried_enqueued: int = 0
    """``enqueued_total`` of quarantined databases (keeps the counter monotonic)."""
    carried_dropped: int = 0
    """``dropped_total`` of quarantined databases."""
    carried_dropped_bytes: int = 0
    """``dropped_bytes_total`` of quarantined databases."""


class GuardFile:
    """Reads and writes ``<db>.guard`` and ``<db>.hint`` (see the module docstring)."""

    def __init__(self, db_path: Path) -> None:
        self.path = sibling(db_path, ".guard")
        self.hint_path = sibling(db_path, ".hint")
        self._hint_fd: int | None = None

    def load(self) -> GuardState | None:
        """The saved state, or ``None`` when the file is missing or unreadable (logged)."""
        try:
            raw = json.loads(self.path.read_bytes())
            known = set(GuardState.__dataclass_fields__)
            state = GuardState(**{k: v for k, v in raw.items() if k in known})
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.error("outbox guard file %s is unreadable (%s); ignoring it", self.path, exc)
            return None
        return state

    def save(self, state: GuardState) -> None:
        """Replace the file atomically and durably (temp file, fsync, rename, dir fsync).

        The file always has :data:`GUARD_SIZE` bytes (JSON padded with spaces), so on a
        full filesystem it is overwritten in place instead (one sector-sized write of an
        existing block, fsynced: no allocation needed).

        Raises:
            OSError: the write failed (``ENOSPC`` included; the old file is intact).
        """
        data = json.dumps(asdict(state), sort_keys=True).encode()
        if len(data) > GUARD_SIZE:
            raise ValueError(f"guard state is {len(data)} bytes; the limit is {GUARD_SIZE}")
        data = data.ljust(GUARD_SIZE)
        tmp = sibling(self.path, ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if not is_enospc(exc) or not self.path.exists():
                raise
            self._overwrite(data)
            return
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def _overwrite(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_hint(self, epoch: int, next_seq: int, oldest: int) -> None:
        """Record the committed next seq and the lowest unacknowledged seq (no fsync: see
        the module docstring). Best effort."""
        body = _HINT.pack(epoch, next_seq, oldest, 0)[:-4]
        data = body + struct.pack("<I", zlib.crc32(body))
        try:
            if self._hint_fd is None:
                self._hint_fd = os.open(self.hint_path, os.O_RDWR | os.O_CREAT, 0o600)
            os.pwrite(self._hint_fd, data, 0)
        except OSError as exc:  # the hint only sharpens loss accounting
            log.debug("outbox hint %s not written: %s", self.hint_path, exc)

    def read_hint(self) -> tuple[int, int, int] | None:
        """``(epoch, next_seq, oldest)`` from the hint file, or ``None`` if missing or torn."""
        try:
            data = self.hint_path.read_bytes()[: _HINT.size]
        except OSError:
            return None
        if len(data) != _HINT.size:
            return None
        epoch, next_seq, oldest, crc = _HINT.unpack(data)
        if crc != zlib.crc32(data[:-4]) or not 0 <= oldest <= next_seq:
            return None
        return epoch, next_seq, oldest

    def close(self) -> None:
        """Close the hint file descriptor."""
        if self._hint_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._hint_fd)
            self._hint_fd = None


class DiskReserve:
    """A preallocated file given back to the filesystem when it is full.

    Args:
        db_path: the outbox database; the reserve is ``<db>.reserve``.
        size: bytes to keep reserved; ``0`` disables the reserve.
    """

    def __init__(self, db_path: Path, size: int) -> None:
        self.path = sibling(db_path, ".reserve")
        self.size = size

    @property
    def held(self) -> bool:
        """Whether the full reserve is on disk now."""
        try:
            return self.size > 0 and self.path.stat().st_size >= self.size
        except OSError:
            return False

    def ensure(self) -> bool:
        """Create (or complete) the reserve; ``False`` if the filesystem has no room.

        Blocks are really allocated (``posix_fallocate``, or written zeros where that is
        not supported) and fsynced, so releasing them frees real space.

        Raises:
            OSError: any error other than a full filesystem.
        """
        if self.size <= 0 or self.held:
            return True
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                os.posix_fallocate(fd, 0, self.size)
            except OSError as exc:
                if is_enospc(exc):
                    raise
                _write_zeros(fd, self.size)  # filesystems without fallocate
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                self.path.unlink()
            if is_enospc(exc):
                return False
            raise
        os.close(fd)
        return True

    def release(self) -> bool:
        """Delete the reserve; ``True`` if there was one to give back."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def _write_zeros(fd: int, size: int) -> None:
    os.ftruncate(fd, 0)
    zeros = bytes(_CHUNK)
    done = 0
    while done < size:
        done += os.write(fd, zeros[: min(_CHUNK, size - done)])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
