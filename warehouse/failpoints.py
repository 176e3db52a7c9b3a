"""Named crash points for proving crash safety: with SAMMACHIP_FAILPOINT=<name>[:<n>] the
process kills itself (SIGKILL, no clean-up) the n-th time it passes <name> (default: first).

`*:<n>` dies at the n-th pass of *any* failpoint, so a seeded choice of n spreads kill trials
over every write a run makes; `*:0` never dies and only counts (`passes()` says how many a
run makes). `die_after(seconds)` kills at an arbitrary instant instead (between fetching,
validating and writing), for trials that must not be limited to the named points.

Production runs never set the variable; the check is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "SAMMACHIP_FAILPOINT"
ANY = "*"
_hits: dict[str, int] = {}


def armed(name: str) -> bool:
    """True when this pass of `name` is the one that must die (counts the pass)."""
    spec = os.environ.get(ENV)
    if not spec:
        return False
    target, _, nth = spec.partition(":")
    if target == ANY:
        _hits[ANY] = _hits.get(ANY, 0) + 1
        return _hits[ANY] == int(nth or 1)
    if target != name:
        return False
    _hits[name] = _hits.get(name, 0) + 1
    return _hits[name] == int(nth or 1)


def passes() -> int:
    """Failpoint passes counted in this process under `*:<n>` (0 in any other mode)."""
    return _hits.get(ANY, 0)


def reset() -> None:
    """Forget the counted passes (a forked trial starts counting from zero)."""
    _hits.clear()


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_after(seconds: float) -> None:
    """SIGKILL this process once `seconds` of wall time have passed, wherever it is then
    (the alarm handler runs between Python bytecodes of the main thread)."""
    signal.signal(signal.SIGALRM, lambda _signum, _frame: die())
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-6))


def failpoint(name: str) -> None:
    if armed(name):
        die()
