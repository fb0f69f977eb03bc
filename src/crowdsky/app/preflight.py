"""Pre-flight: check a Seestar's links and state before any work on it starts.

The facts are gathered through the :class:`~crowdsky.app.ports.DeviceChecks` port (each link
probed harmlessly, the app state read), the decision is the pure
:func:`crowdsky.domain.preflight.decide`, and the caller reports the findings in its own terms.
A busy telescope can be waited for, up to a bound, re-reading its state every ``poll`` seconds.
"""

from __future__ import annotations

from collections.abc import Collection

from crowdsky.app.ports import Clock, DeviceChecks, Progress, Seestar
from crowdsky.domain.preflight import Facts, Finding, Link, LinkFact, Problem, decide
from crowdsky.errors import CrowdskyError, SeestarAuthError

__all__ = ["LINKS_FOR_STACKING", "preflight"]

#: Every link: stacking reads headers (files), talks to the stacker (control), renames.
LINKS_FOR_STACKING: frozenset[Link] = frozenset(Link)


def _probe(device: DeviceChecks, link: Link) -> LinkFact:
    try:
        device.check_link(link)
    except SeestarAuthError as exc:
        return LinkFact(link, str(exc), auth=True)
    except CrowdskyError as exc:
        return LinkFact(link, str(exc))
    return LinkFact(link)


def _app_state(device: DeviceChecks) -> tuple[LinkFact | None, Facts]:
    try:
        return None, Facts(app_state=device.app_state())
    except SeestarAuthError as exc:
        return LinkFact(Link.CONTROL, str(exc), auth=True), Facts()
    except CrowdskyError as exc:
        return LinkFact(Link.CONTROL, str(exc)), Facts()


def gather(device: DeviceChecks, links: Collection[Link], *, read_state: bool) -> Facts:
    """Probe ``links`` (control first) and, when asked and they work, read the app state."""
    facts = tuple(_probe(device, link) for link in sorted(links, key=list(Link).index))
    if not read_state or any(f.error for f in facts):
        return Facts(links=facts)
    failed, state = _app_state(device)
    if failed is not None:
        return Facts(links=(*facts, failed))
    return Facts(links=facts, app_state=state.app_state)


def preflight(
    seestar: Seestar,
    *,
    links: Collection[Link] = LINKS_FOR_STACKING,
    check_state: bool = True,
    clock: Clock,
    progress: Progress,
    wait: float = 0.0,
    poll: float = 5.0,
) -> tuple[Finding, ...]:
    """What stands in the way of working on ``seestar`` now; empty when nothing does.

    Parameters
    ----------
    seestar : Seestar
        The telescope; one that is not a :class:`~crowdsky.app.ports.DeviceChecks` is taken
        as ready.
    links : collection of Link
        The links the work needs.
    check_state : bool
        Also read the device's app state: a telescope that is imaging is a
        :attr:`~crowdsky.domain.preflight.Problem.BUSY` finding.
    clock, progress
        For waiting, and the line that says so.
    wait : float
        Seconds to wait for a busy telescope to become idle (0: do not wait).
    poll : float
        Seconds between two readings of its state while waiting.
    """
    if not isinstance(seestar, DeviceChecks):
        return ()
    findings = decide(gather(seestar, links, read_state=check_state))
    if wait <= 0 or not _only_busy(findings):
        return findings
    progress.line(f"The Seestar is busy ({findings[0].detail}); waiting up to {wait:g} s.")
    deadline = clock.now().timestamp() + wait
    while _only_busy(findings):
        left = deadline - clock.now().timestamp()
        if left <= 0:
            break
        clock.sleep(min(poll, left))
        findings = decide(gather(seestar, (), read_state=True))
    return findings


def _only_busy(findings: tuple[Finding, ...]) -> bool:
    return bool(findings) and all(f.problem is Problem.BUSY for f in findings)
