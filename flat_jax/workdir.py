"""A run's workdir on disk: one writer at a time.

A run holds an exclusive lock on DIR/.lock for as long as it writes there (in a run over several
processes, the primary holds it; the others write only through it). The lock is the kernel's
(flock): it dies with its process, so a run that was killed, even with SIGKILL, never blocks its own
resume. A second writer is refused at once with a message naming the holder (pid, host, since
when), which the holder writes into the lock file.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import pathlib
import socket

LOCK_NAME = ".lock"


class WorkdirBusy(RuntimeError):
  """Another process holds the workdir; the message names it."""


def _holder(path: pathlib.Path) -> str:
  try:
    info = json.loads(path.read_text(encoding="utf-8") or "{}")
  except (OSError, ValueError):
    info = {}
  if not info:
    return "another process"
  return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"


def not_writable(workdir) -> str | None:
  """Why this process cannot write in `workdir` (read-only filesystem, no permission), or None.
  Probed by opening the lock file for writing: the same open the run itself needs first, and one
  that also sees what os.access misses (root on a read-only mount, ACLs)."""
  try:
    fd = os.open(pathlib.Path(workdir) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
      return os.strerror(e.errno).lower()
    raise
  os.close(fd)
  return None


@contextlib.contextmanager
def exclusive(workdir):
  """Holds DIR/.lock for the block; raises WorkdirBusy when another process holds it."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / LOCK_NAME
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise WorkdirBusy(f"{workdir} is in use by {_holder(path)}: wait for that run to end (or stop "
                        f"it), or use another --workdir") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.datetime.now().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)
