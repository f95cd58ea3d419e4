"""Named points where tests can kill the process (RECSYS_FAULT=<point>) to prove nothing is lost."""

import os
import signal


def fault_point(name: str) -> None:
    """SIGKILL this process when RECSYS_FAULT names this point: no cleanup, no except, no finally."""
    if os.environ.get("RECSYS_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
