"""Keeps the process's memory out of crash dumps: it holds unwrapped signing keys, the master keys
and the tokens of requests in hand, and a core file would write them all to disk.

Both switches: RLIMIT_CORE 0 stops the kernel writing a core file, but a core_pattern that pipes
to a program (systemd-coredump, apport) is not bound by it; PR_SET_DUMPABLE 0 stops that too, and
ptrace attaches from other processes of the same user.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import resource
import sys

log = logging.getLogger("signvault.vault")
PR_SET_DUMPABLE = 4


@functools.cache  # once per process
def forbid_core_dumps() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (OSError, ValueError) as exc:
        log.warning("could not turn core dumps off: %s", exc)
    if sys.platform == "linux":
        # The process's own symbols, libc's among them: find_library would run ldconfig in a child.
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            log.warning("could not mark the process undumpable (errno %d)", ctypes.get_errno())
