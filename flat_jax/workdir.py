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
import logging
import os
import pathlib
import re
import socket
import sys

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
      raise WorkdirBusy(
        f"{workdir} is in use by {_holder(path)}: wait for that run to end (or stop "
        f"it), or use another --workdir"
      ) from None
    info = {
      "pid": os.getpid(),
      "host": socket.gethostname(),
      "since": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    try:
      yield
    finally:
      os.ftruncate(fd, 0)
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)


class LogFile(logging.FileHandler):
  """DIR/log.txt. On a full disk it stops writing, once and quietly, instead of printing a
  logging traceback per record; the run's own error line says what happened."""

  def handleError(self, record: logging.LogRecord) -> None:
    error = sys.exc_info()[1]
    if isinstance(error, OSError) and error.errno in FULL_DISK:
      logging.getLogger().removeHandler(self)
      return
    super().handleError(record)


FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def no_space_left(error: BaseException) -> str | None:
  """' writing FILE' (or '') when `error` or one of its causes is a full disk, else None. Orbax
  reports it from TensorStore as a ValueError whose text carries the OS error."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno in FULL_DISK:
      return f" writing {error.filename}" if error.filename else ""
    if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
      written = re.search(r'Failed writing: "([^"]+)"', str(error))
      # the checkpoint being saved, not Orbax's temporary file inside it
      return f" writing {written.group(1).split('.orbax-checkpoint-tmp')[0]}" if written else ""
    error = error.__cause__ or error.__context__
  return None
