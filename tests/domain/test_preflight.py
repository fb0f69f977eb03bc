"""The pre-flight decision (pure)."""

from __future__ import annotations

from crowdsky.domain.preflight import Facts, Finding, Link, LinkFact, Problem, decide


def test_nothing_wrong_is_no_finding() -> None:
    facts = Facts((LinkFact(Link.CONTROL), LinkFact(Link.FILES)), {"BatchStack": "complete"})
    assert decide(facts) == ()


def test_a_key_failure_is_a_key_problem_not_an_unreachable_device() -> None:
    facts = Facts((LinkFact(Link.CONTROL, "no key was given", auth=True),))
    assert decide(facts) == (Finding(Problem.KEY, "no key was given"),)


def test_every_broken_link_is_listed_and_the_state_is_then_not_trusted() -> None:
    facts = Facts(
        (LinkFact(Link.FILES, "no answer"), LinkFact(Link.RENAME, "refused")),
        {"View": "working"},
    )
    assert [f.problem for f in decide(facts)] == [
        Problem.FILES_UNREACHABLE,
        Problem.RENAME_UNAVAILABLE,
    ]


def test_running_stages_make_the_telescope_busy() -> None:
    facts = Facts((), {"View": "working", "BatchStack": "working", "AutoGoto": "complete"})
    assert decide(facts) == (Finding(Problem.BUSY, "BatchStack, View"),)
    assert not Problem.BUSY.is_configuration
    assert Problem.KEY.is_configuration
