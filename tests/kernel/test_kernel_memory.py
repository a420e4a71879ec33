"""Finished turns free their widget, their events and their driver in a real kernel."""

from __future__ import annotations

import pytest

from tests.kernel.conftest import KernelHarness
from tests.kernel.memory import counts, run_turns

pytestmark = pytest.mark.kernel


@pytest.mark.timeout(600)
def test_a_hundred_turns_leave_only_their_results(kernel: KernelHarness) -> None:
    run_turns(kernel, 100, deltas=2000)
    live = counts(kernel)
    assert live["widgets"] == 0
    assert live["open_comms"] == 0
    assert live["transcripts"] == 0
    assert live["turn_logs"] == 0
    assert live["notifications"] < 2000  # not 100 × 2,000: at most what one live turn holds
    assert live["turns"] == 100  # the history (HISTORY = 200) keeps every NotebookTurn
