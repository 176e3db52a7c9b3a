"""Named crash points for proving crash safety: with SAMMACHIP_FAILPOINT=<name>[:<n>] the
process kills itself (SIGKILL, no clean-up) the n-th time it passes <name> (default: first).

Production runs never set the variable; the check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "SAMMACHIP_FAILPOINT"
_hits: dict[str, int] = {}


def armed(name: str) -> bool:
    """True when this pass of `name` is the one that must die (counts the pass)."""
    spec = os.environ.get(ENV)
    if not spec:
        return False
    target, _, nth = spec.partition(":")
    if target != name:
        return False
    _hits[name] = _hits.get(name, 0) + 1
    return _hits[name] == int(nth or 1)


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def failpoint(name: str) -> None:
    if armed(name):
        die()
