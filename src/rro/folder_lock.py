"""One command at a time per output folder.

Every command that writes an output folder (explore, eval, sft, dpo, run, report) holds
`FOLDER/rro.lock` for its whole life; a second command on the same folder stops at once with an
error naming the holder (pid, host, start time, command). Without it, two explorations started
into one folder both did all the work and appended every task twice.

How the lock is held, and why so:

- The lock file appears with its content in one step. The holder's record is written to a file of
  a unique name beside it and hard-linked to `rro.lock`; link(2) fails when `rro.lock` exists.
  This is the lock-file protocol that open(2) gives for NFS, where creating with O_CREAT|O_EXCL
  was not atomic before NFSv3; a link whose reply was lost shows in the unique file's link count.
  So a reader never sees a lock without its holder.
- While the command runs it also keeps an fcntl (POSIX record) lock on the file. The kernel drops
  that lock when the process ends, however it ends (SIGKILL, a crash, power loss), so on the same
  host a lock file whose fcntl lock can be taken was left by a command that no longer runs: it is
  taken over, and the takeover said. (The pid alone cannot prove that: pids are reused, so the
  process's start time is compared as well, and that is the whole test where a file system has no
  fcntl locks.)
- A lock from another host is never broken automatically: this machine cannot see that process.
  The error names it and says how to break it (delete `rro.lock` once the run there is over).
- The file is removed when the command ends (normally, with an error, by SIGTERM or Ctrl-C).

What is assumed of a network file system (NFS v3/v4, Lustre, GPFS, BeeGFS): link(2) is atomic and
fails when the name exists (NFS guarantees it; it is the basis of its lock-file protocol), and
rename(2) within a folder is atomic. fcntl locks are used where the file system has them (NFS
through lockd or v4's own locking, Lustre mounted with `flock`, GPFS); where it has none (NFS
mounted with `nolock`), the pid and start-time test on the same host is what remains, and a lock
left by a machine that died must be deleted by hand, as the error says.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import psutil

LOCK_NAME = "rro.lock"


class FolderLocked(RuntimeError):
    """The output folder is held by another command (the message names it and says what to do)."""


def _process_start(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None when no such process runs."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:  # it runs, as another user
        return 0.0


def _holder_record(command: str) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "process_started": _process_start(os.getpid()),
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), "command": command}


def _read_record(fd: int) -> dict | None:
    # Through the descriptor that holds the fcntl lock: closing any other descriptor of the file
    # would drop this process's lock on it (POSIX locks belong to the process, not the descriptor).
    try:
        record = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def _describe(record: dict | None) -> str:
    if record is None:
        return "an unreadable holder record"
    return (f"pid {record['pid']} on host {record.get('host', '?')}, started {record.get('started', '?')}"
            + (f" ({record['command']})" if record.get("command") else ""))


def _try_fcntl(fd: int) -> bool | None:
    """Take the fcntl lock without waiting: True when taken, False when another process holds it,
    None when this file system has no fcntl locks."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise


def _holder_runs(record: dict) -> bool:
    """Whether the (same-host) process of `record` still runs: its pid, started when it was."""
    started = _process_start(record["pid"])
    if started is None:
        return False
    expected = record.get("process_started")
    return not isinstance(expected, (int, float)) or started == 0.0 or abs(started - expected) < 2.0


def _same_inode(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _claim(folder: Path, command: str) -> tuple[int, str | None]:
    """Take `folder`'s lock: (fd holding the fcntl lock, a note when a stale lock was taken over)."""
    lock = folder / LOCK_NAME
    record = _holder_record(command)
    for _attempt in range(50):  # the lock may change hands under us a few times; never forever
        unique = folder / f".{LOCK_NAME}.{record['host']}.{record['pid']}.{time.monotonic_ns()}"
        unique.write_text(json.dumps(record) + "\n", encoding="utf-8")
        fd = os.open(unique, os.O_RDWR)
        try:
            _try_fcntl(fd)  # nobody else knows this file yet: taken, or no fcntl locks here
            try:
                os.link(unique, lock)
                return fd, None
            except FileExistsError:
                if os.stat(unique).st_nlink == 2:  # NFS: the link was made, its reply lost
                    return fd, None
            note = _take_over_if_stale(lock, unique, fd)
            if note is not None:
                return fd, note
        except BaseException:
            os.close(fd)
            raise
        finally:
            unique.unlink(missing_ok=True)
        os.close(fd)  # the lock changed hands while we looked: try again
    raise FolderLocked(f"{folder}: could not take {LOCK_NAME} (it kept changing hands); rerun the command")


def _take_over_if_stale(lock: Path, unique: Path, fd: int) -> str | None:
    """Replace `lock` by `unique` (already locked through `fd`) when its holder is gone and says
    so; raise FolderLocked when it is held; None when it changed hands meanwhile (try again)."""
    folder = lock.parent
    try:
        old = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return None  # released meanwhile
    try:
        got = _try_fcntl(old)
        record = _read_record(old)
        if got is False:
            raise FolderLocked(f"{folder} is in use by another rro command: {_describe(record)}. "
                               f"Wait for it to end, or write to another output folder.")
        if not _same_inode(old, lock):
            return None
        here = socket.gethostname()
        if record is not None and record.get("host") != here:
            raise FolderLocked(
                f"{folder} is locked by a command on another machine: {_describe(record)}. This machine cannot "
                f"see whether it still runs; if it does not, delete {lock} and rerun.")
        if record is not None and got is None and _holder_runs(record):  # no fcntl locks: the pid must say
            raise FolderLocked(f"{folder} is in use by another rro command: {_describe(record)}. "
                               f"Wait for it to end, or write to another output folder.")
        if record is None and got is None:
            raise FolderLocked(f"{lock} holds no readable holder and this file system has no fcntl locks to "
                               f"tell whether it is in use; if no rro command writes {folder}, delete it and rerun.")
        os.replace(unique, lock)  # ours now: its content is our record, our fcntl lock is on it
        return (f"took over {lock}, left by {_describe(record)}, which no longer runs"
                if record is not None else f"took over {lock}, whose holder record was unreadable and unheld")
    finally:
        os.close(old)


def ended_here(host: str, pid: int) -> bool:
    """Whether process `pid` of `host` is known to have ended: only this host's processes can be seen."""
    return host == socket.gethostname() and not psutil.pid_exists(pid)


def _remove_litter(folder: Path) -> None:
    """Delete the holder files (`.rro.lock.HOST.PID.TIME`) that a command killed in the instant of
    claiming left behind: this host's, of a pid that no longer runs, older than a claim lasts."""
    for path in folder.glob(f".{LOCK_NAME}.*"):
        host, _, rest = path.name[len(LOCK_NAME) + 2:].rpartition(".")[0].rpartition(".")
        try:
            if ended_here(host, int(rest)) and time.time() - path.stat().st_mtime > 60:
                path.unlink()
        except (ValueError, OSError):  # not a name of ours, or gone meanwhile
            continue


@contextmanager
def hold_folder(folder: Path, command: str | None = None) -> Iterator[Path]:
    """Hold `folder` (created if needed) for the block's duration; FolderLocked when another
    command holds it. A lock left by a command that no longer runs on this host is taken over,
    and said so on stderr."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held:  # this process holds it already (a library call inside a command)
        yield folder
        return
    fd, note = _claim(folder, command or " ".join(["rro", *sys.argv[1:]]))
    _remove_litter(folder)
    _held.add(key)
    if note is not None:
        print(f"note: {note}", file=sys.stderr)
    try:
        yield folder
    finally:
        _held.discard(key)
        lock = folder / LOCK_NAME
        if _same_inode(fd, lock):  # not if someone deleted it by hand and another command took it
            lock.unlink(missing_ok=True)
        os.close(fd)


_held: set[Path] = set()  # the folders this process holds
