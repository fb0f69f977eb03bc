"""The pre-flight decision: what stands in the way before any work on the Seestar starts.

The application gathers the facts (which links answered, what the device's app state says)
and this module decides, purely, what the problems are. Each :class:`Finding` names its
:class:`Problem`, so a front end can say in its own terms how to fix it (the command line names
an option, the library a keyword argument).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

__all__ = ["IMAGING_STATES", "Facts", "Finding", "Link", "LinkFact", "Problem", "decide"]


class Link(enum.Enum):
    """The channels crowdsky talks to a Seestar over."""

    #: JSON-RPC on port 4700 (and its authentication).
    CONTROL = "control"
    #: The HTTP file server (port 80): headers and downloads.
    FILES = "files"
    #: SMB (port 445) or the mounted share: renames and deletes.
    RENAME = "rename"


class Problem(enum.Enum):
    """What a finding is about."""

    #: The control link is unreachable (wrong address, off, out of range).
    CONTROL_UNREACHABLE = "control unreachable"
    #: The device wants a key that is missing, unreadable or rejected.
    KEY = "key"
    #: The file server did not answer.
    FILES_UNREACHABLE = "files unreachable"
    #: Neither SMB nor the mounted share can rename files.
    RENAME_UNAVAILABLE = "rename unavailable"
    #: The telescope is imaging (live view, stacking, a batch stack started elsewhere).
    BUSY = "busy"

    @property
    def is_configuration(self) -> bool:
        """True for problems the user fixes with a setting; False for a busy telescope."""
        return self is not Problem.BUSY


@attrs.frozen
class LinkFact:
    """How one link answered its probe.

    Parameters
    ----------
    link : Link
        The link probed.
    error : str or None
        Why it failed, or ``None`` when it works.
    auth : bool
        The failure was the key (missing, unreadable or rejected), not the network.
    """

    link: Link
    error: str | None = None
    auth: bool = False


@attrs.frozen
class Facts:
    """Everything the pre-flight decision looks at.

    Parameters
    ----------
    links : tuple of LinkFact
        The links probed.
    app_state : Mapping or None
        Each entry of the device's app state (``View``, ``Stack``, ``BatchStack``, ...) mapped to
        its ``state`` text; ``None`` when it was not read.
    """

    links: tuple[LinkFact, ...] = ()
    app_state: Mapping[str, str] | None = None


@attrs.frozen
class Finding:
    """One problem, with the detail that explains it."""

    problem: Problem
    detail: str


#: App-state ``state`` values of a stage that is running (protocol reference §4.2).
IMAGING_STATES = frozenset({"working", "start", "running"})

_LINK_PROBLEM = {
    Link.CONTROL: Problem.CONTROL_UNREACHABLE,
    Link.FILES: Problem.FILES_UNREACHABLE,
    Link.RENAME: Problem.RENAME_UNAVAILABLE,
}


def active_stages(app_state: Mapping[str, str]) -> tuple[str, ...]:
    """The app-state entries that are running, sorted.

    Examples
    --------
    >>> active_stages({"View": "working", "BatchStack": "complete", "AutoGoto": ""})
    ('View',)
    """
    return tuple(sorted(name for name, state in app_state.items() if state in IMAGING_STATES))


def _link_findings(links: Iterable[LinkFact]) -> list[Finding]:
    found = []
    for fact in links:
        if fact.error is None:
            continue
        problem = Problem.KEY if fact.auth else _LINK_PROBLEM[fact.link]
        found.append(Finding(problem, fact.error))
    return found


def decide(facts: Facts) -> tuple[Finding, ...]:
    """The problems that must stop the work, configuration problems first.

    A busy telescope is a finding only when every link works (otherwise its state could not
    be trusted, and the configuration must be fixed first).

    Examples
    --------
    >>> decide(Facts((LinkFact(Link.CONTROL),), {"View": "working"}))
    (Finding(problem=<Problem.BUSY: 'busy'>, detail='View'),)
    >>> decide(Facts((LinkFact(Link.RENAME, "port 445 closed"),), {}))[0].problem
    <Problem.RENAME_UNAVAILABLE: 'rename unavailable'>
    """
    found = _link_findings(facts.links)
    if not found and facts.app_state is not None:
        busy = active_stages(facts.app_state)
        if busy:
            found.append(Finding(Problem.BUSY, ", ".join(busy)))
    return tuple(found)
