"""What every worker process the server starts does first (drawers, the speech recogniser)."""
from __future__ import annotations


def die_with_parent() -> None:
    """Linux: be sent SIGTERM when the server dies, even by SIGKILL (an orphan would wait forever)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
