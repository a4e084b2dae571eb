"""The job transition table: terminal states are final, and every status change is a guarded UPDATE."""

from __future__ import annotations

import pytest

from core.jobs.states import ACTIVE, INITIAL, TERMINAL, TRANSITIONS, JobStatus, sources


def test_terminal_statuses_have_no_way_out():
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()
        assert status not in sources(JobStatus.QUEUED)


def test_every_status_is_active_or_terminal_and_reachable():
    assert set(JobStatus) == ACTIVE | TERMINAL and not ACTIVE & TERMINAL
    reachable, frontier = {INITIAL}, [INITIAL]  # a job is created queued: every status is reached from there
    while frontier:
        new = TRANSITIONS[frontier.pop()] - reachable
        reachable |= new
        frontier += list(new)
    assert reachable == set(JobStatus)


@pytest.mark.parametrize("target", [JobStatus.CANCELLED, JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_sources_of_a_terminal_target_are_active(target):
    assert sources(target) <= ACTIVE
