"""The configuration service's view machine: elections by the lease's rule, in-sync, switchover."""

from __future__ import annotations

from typing import Any

import pytest

from actorfw.protocols.primary_backup import ViewMachine

MEMBERS = ["n1", "n2", "n3"]


def view(result: list[Any]) -> dict[str, Any]:
    assert result[0] == "view", result
    return result[1]


def refused(result: list[Any]) -> str:
    assert result[0] == "refused", result
    return result[1]


def elected(machine: ViewMachine) -> dict[str, Any]:
    """The first election, by n1, having seen the empty view."""
    return view(machine.apply(["elect", "n1", 0, 0]))


def test_the_first_election_picks_the_member_with_the_highest_log() -> None:
    machine = ViewMachine(MEMBERS)
    machine.apply(["report", "n1", 1, 10])
    machine.apply(["report", "n2", 2, 3])  # a later epoch beats a longer log
    machine.apply(["report", "n3", 1, 12])
    assert elected(machine) == {"epoch": 1, "primary": "n2", "in_sync": ["n1", "n3"], "grants": 0}


def test_ties_go_to_the_first_name_the_same_on_every_replica() -> None:
    assert elected(ViewMachine(["n3", "n1", "n2"]))["primary"] == "n1"


def test_renewals_count_and_only_the_current_primary_renews() -> None:
    machine = ViewMachine(MEMBERS)
    elected(machine)
    assert view(machine.apply(["renew", 1, "n1"]))["grants"] == 1
    assert "not the current one" in refused(machine.apply(["renew", 1, "n2"]))
    assert "not the current one" in refused(machine.apply(["renew", 0, "n1"]))
    assert view(machine.apply(["renew", 1, "n1"]))["grants"] == 2


def test_an_election_is_allowed_only_on_the_view_the_candidate_waited_on() -> None:
    # Rule 2: n2 saw epoch 1 with 1 grant and waited a lease; a renewal since wins.
    machine = ViewMachine(MEMBERS)
    elected(machine)
    machine.apply(["renew", 1, "n1"])
    machine.apply(["renew", 1, "n1"])  # renewed after n2 looked
    assert "view changed" in refused(machine.apply(["elect", "n2", 1, 1]))
    new = view(machine.apply(["elect", "n2", 1, 2]))  # n2 saw 2 grants, none since
    assert new == {"epoch": 2, "primary": "n2", "in_sync": ["n3"], "grants": 0}
    # The deposed primary's renewal is refused, telling it the new view.
    result = machine.apply(["renew", 1, "n1"])
    assert result[0] == "refused" and result[2]["epoch"] == 2


def test_the_old_primary_is_out_of_sync_until_it_rejoins() -> None:
    machine = ViewMachine(MEMBERS)
    elected(machine)
    new = view(machine.apply(["elect", "n3", 1, 0]))
    assert new["primary"] != "n1" and "n1" not in new["in_sync"]
    assert view(machine.apply(["sync", 2, new["primary"], 0, ["n1"]]))["in_sync"] == ["n1"]


def test_a_lagging_backup_leaves_the_in_sync_set_at_the_primarys_request_only() -> None:
    machine = ViewMachine(MEMBERS)
    elected(machine)
    machine.apply(["renew", 1, "n1"])
    assert view(machine.apply(["sync", 1, "n1", 1, ["n2"]]))["in_sync"] == ["n2"]
    assert "not the current one" in refused(machine.apply(["sync", 1, "n2", 1, []]))
    # With n3 out of sync, n3 cannot be elected even with the longest log.
    machine.apply(["report", "n3", 1, 99])
    assert view(machine.apply(["elect", "n2", 1, 1]))["primary"] == "n2"


def test_with_no_in_sync_backup_the_primary_is_elected_again_rather_than_one_behind() -> None:
    machine = ViewMachine(MEMBERS)
    elected(machine)
    machine.apply(["renew", 1, "n1"])
    machine.apply(["sync", 1, "n1", 1, []])  # n1 alone holds what it acknowledges now
    machine.apply(["report", "n2", 1, 50])
    new = view(machine.apply(["elect", "n2", 1, 1]))
    assert new == {"epoch": 2, "primary": "n1", "in_sync": [], "grants": 0}


def test_an_epoch_that_never_renewed_gives_back_the_members_known_before_it() -> None:
    # n2 is elected and dies before its first renewal: nothing was acknowledged in
    # epoch 2, so n1, which held every write of epoch 1, may be elected (no stall).
    machine = ViewMachine(MEMBERS)
    elected(machine)
    machine.apply(["renew", 1, "n1"])
    machine.apply(["sync", 1, "n1", 1, ["n2"]])
    assert view(machine.apply(["elect", "n3", 1, 1]))["primary"] == "n2"
    again = view(machine.apply(["elect", "n3", 2, 0]))
    assert again == {"epoch": 3, "primary": "n1", "in_sync": [], "grants": 0}


def test_a_switchover_goes_to_an_in_sync_backup_in_a_new_epoch() -> None:
    machine = ViewMachine(MEMBERS)
    elected(machine)
    machine.apply(["sync", 1, "n1", 0, ["n2"]])
    assert "not in sync" in refused(machine.apply(["switch", 1, "n1", 0, "n3"]))
    new = view(machine.apply(["switch", 1, "n1", 0, "n2"]))
    assert new == {"epoch": 2, "primary": "n2", "in_sync": [], "grants": 0}


@pytest.mark.parametrize(
    "operation",
    [
        "view",
        [],
        ["crown", "n1"],
        ["report", "n9", 1, 1],
        ["report", "n1", -1, 1],
        ["report", "n1", 1, True],
        ["elect", "n9", 0, 0],
        ["sync", 1, "n1", 0, "n2"],
        ["sync", 1, "n1", 0, ["n9"]],
        ["sync", 1, "n1", 0, ["n1"]],
        ["sync", 1, "n1", ["n2"]],
        ["switch", 1, "n1", 0, "n9"],
        ["renew", 1],
    ],
)
def test_malformed_operations_are_refused_and_change_nothing(operation: Any) -> None:
    machine = ViewMachine(MEMBERS)
    elected(machine)
    before = machine.snapshot()
    assert machine.apply(operation)[0] == "error"
    assert machine.snapshot() == before


def test_a_snapshot_restores_the_view_and_the_reports() -> None:
    machine = ViewMachine(MEMBERS)
    machine.apply(["report", "n2", 3, 7])
    elected(machine)
    machine.apply(["renew", 1, "n2"])
    copy = ViewMachine(["x"])
    copy.restore(machine.snapshot())
    assert copy.snapshot() == machine.snapshot()
    assert copy.apply(["elect", "n1", 1, 1]) == machine.apply(["elect", "n1", 1, 1])


def test_members_are_checked() -> None:
    with pytest.raises(ValueError, match="twice"):
        ViewMachine(["n1", "n1"])
    with pytest.raises(ValueError, match="non-empty"):
        ViewMachine([])


def test_a_primarys_request_sent_before_a_renewal_that_committed_first_is_refused() -> None:
    # A sync (or a switch) of an earlier incarnation, held up in the log, must not undo
    # what the primary decided after its renewal: the grants are a fencing token.
    machine = ViewMachine(MEMBERS)
    elected(machine)
    machine.apply(["renew", 1, "n1"])
    machine.apply(["sync", 1, "n1", 1, ["n2"]])  # n3 dropped
    machine.apply(["renew", 1, "n1"])  # a restarted n1 renews before acknowledging
    assert "grants" in refused(machine.apply(["sync", 1, "n1", 1, ["n2", "n3"]]))
    assert "grants" in refused(machine.apply(["switch", 1, "n1", 1, "n2"]))
    assert view(machine.apply(["view"]))["in_sync"] == ["n2"]


def test_a_snapshot_that_does_not_decode_changes_nothing() -> None:
    machine = ViewMachine(MEMBERS)
    elected(machine)
    before = machine.snapshot()
    with pytest.raises(ValueError, match="not a view machine"):
        machine.restore({"members": ["x", "y"], "view": {}})
    assert machine.snapshot() == before
