"""The phi-accrual failure detector and the membership rules built on it (sans-IO)."""

from __future__ import annotations

import math

import pytest

from actorfw.protocols.failure_detector import (
    Liveness,
    Membership,
    MembershipEvent,
    PhiAccrualDetector,
)


def regular(detector: PhiAccrualDetector, interval: float, count: int, start: float = 0.0) -> float:
    now = start
    for _ in range(count):
        now += interval
        detector.heartbeat(now)
    return now


def test_phi_is_zero_before_any_heartbeat() -> None:
    assert PhiAccrualDetector().phi(100.0) == 0.0


def test_phi_grows_with_silence() -> None:
    detector = PhiAccrualDetector(min_std=0.1, first_interval=1.0)
    last = regular(detector, 1.0, 20)
    phis = [detector.phi(last + dt) for dt in (0.5, 1.0, 1.5, 2.0, 3.0)]
    assert phis == sorted(phis)
    assert phis[0] < 1.0 < phis[-1]


def test_a_regular_peer_is_not_suspected_within_its_interval() -> None:
    detector = PhiAccrualDetector(threshold=8.0, min_std=0.1, first_interval=1.0)
    last = regular(detector, 1.0, 50)
    assert not detector.suspected(last + 1.0)
    assert detector.suspected(last + 10.0)


def test_acceptable_pause_delays_suspicion() -> None:
    strict = PhiAccrualDetector(min_std=0.1, acceptable_pause=0.0)
    lenient = PhiAccrualDetector(min_std=0.1, acceptable_pause=3.0)
    last = regular(strict, 1.0, 20)
    regular(lenient, 1.0, 20)
    assert strict.suspected(last + 2.5)
    assert not lenient.suspected(last + 2.5)


def test_phi_is_finite_or_infinite_but_never_negative() -> None:
    detector = PhiAccrualDetector()
    last = regular(detector, 1.0, 5)
    for dt in (0.0, 0.1, 1.0, 100.0, 1e6):
        phi = detector.phi(last + dt)
        assert phi >= 0.0 and (math.isfinite(phi) or phi == math.inf)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        PhiAccrualDetector(threshold=0)


# -- membership ----------------------------------------------------------------------


def test_an_unheard_peer_is_unknown_not_down() -> None:
    m = Membership()
    m.add("b")
    assert m.state("b") is Liveness.UNKNOWN
    assert m.tick(1000.0) == []
    assert not m.is_down("b")


def test_a_peer_never_heard_within_the_join_timeout_is_declared_down() -> None:
    m = Membership(join_timeout=5.0)
    m.add("b", now=10.0)
    assert m.tick(14.0) == []
    assert m.tick(15.5) == [("b", MembershipEvent.DOWN)]
    assert m.heartbeat("b", 0, 16.0) == [MembershipEvent.UP]


def test_the_first_heartbeat_brings_a_peer_up() -> None:
    m = Membership()
    assert m.heartbeat("b", 0, 1.0) == [MembershipEvent.UP]
    assert m.heartbeat("b", 0, 2.0) == []
    assert m.state("b") is Liveness.UP


def test_a_silent_peer_is_declared_down_once() -> None:
    m = Membership(first_interval=1.0)
    for t in range(1, 10):
        m.heartbeat("b", 0, float(t))
    assert m.tick(9.5) == []
    assert m.tick(60.0) == [("b", MembershipEvent.DOWN)]
    assert m.tick(61.0) == []
    assert m.is_down("b")


def test_a_heartbeat_readmits_a_down_peer() -> None:
    m = Membership(first_interval=1.0)
    m.heartbeat("b", 0, 1.0)
    m.tick(100.0)
    assert m.heartbeat("b", 0, 101.0) == [MembershipEvent.UP]
    assert m.state("b") is Liveness.UP
    assert m.tick(101.5) == []  # judged afresh, not by the old silence


def test_a_higher_incarnation_means_the_peer_restarted() -> None:
    m = Membership()
    m.heartbeat("b", 0, 1.0)
    assert m.heartbeat("b", 1, 2.0) == [MembershipEvent.RESTARTED]
    assert m.incarnation("b") == 1


def test_heartbeats_of_an_older_incarnation_are_ignored() -> None:
    m = Membership()
    m.heartbeat("b", 2, 1.0)
    assert m.heartbeat("b", 1, 2.0) == []
    assert m.incarnation("b") == 2
    assert m.last_heartbeat("b") == 1.0


def test_other_traffic_keeps_a_peer_with_late_heartbeats_up() -> None:
    m = Membership(first_interval=1.0, acceptable_pause=1.0)
    for t in range(1, 10):
        m.heartbeat("b", 0, float(t))
    for t in range(10, 60):  # heartbeats stuck behind a bulk transfer, data flowing
        m.seen("b", float(t))
        assert m.tick(float(t) + 0.5) == []
    assert m.tick(65.0) == [("b", MembershipEvent.DOWN)]  # then silence: down


def test_phi_right_after_long_gaps_is_zero_not_an_overflow() -> None:
    # Heartbeats 30 s apart with a tiny spread, then phi read at once: the normal
    # tail's exponent is far past what exp() holds (a slow, flooded node saw this).
    detector = PhiAccrualDetector(min_std=0.001, first_interval=30.0)
    last = regular(detector, 30.0, 10)
    assert detector.phi(last) == 0.0
    assert detector.phi(last + 0.001) == 0.0


def test_a_pause_of_this_nodes_own_is_no_peers_silence() -> None:
    # Rule 6: heartbeats every 0.5 s until 5.0; then this node stands still for 6 s.
    def membership() -> Membership:
        m = Membership(first_interval=0.5, acceptable_pause=1.5, min_std=0.1, join_timeout=5.0)
        m.add("never", now=0.0)  # never heard: its join timeout moves on too
        for k in range(1, 11):
            m.heartbeat("b", 0, k * 0.5)
        return m

    deaf = membership()
    assert sorted(deaf.tick(11.0)) == [("b", MembershipEvent.DOWN), ("never", MembershipEvent.DOWN)]
    forgiven = membership()
    forgiven.paused(6.0, 11.0)
    assert forgiven.tick(11.0) == []  # 0 s of silence after the pause, for either of them
    assert forgiven.last_heartbeat("b") == 11.0
    assert forgiven.heartbeat("b", 0, 11.4) == []  # the pause is not among its intervals
    assert forgiven.phi("b", 11.9) < 1.0
    assert sorted(forgiven.tick(20.0)) == [
        ("b", MembershipEvent.DOWN),
        ("never", MembershipEvent.DOWN),
    ]
    forgiven.paused(0.0, 30.0)  # nothing to forgive
    forgiven.paused(-1.0, 30.0)
    assert forgiven.last_heartbeat("b") == 11.4


def test_a_peer_that_died_during_this_nodes_pause_is_judged_from_the_pause_end() -> None:
    m = Membership(first_interval=0.5, acceptable_pause=1.5, min_std=0.1)
    for k in range(1, 11):
        m.heartbeat("b", 0, k * 0.5)  # until 5.0; it dies at 5.2
    m.paused(7.0, 11.0)  # this node stood still from 4.0 to 11.0: never past now
    assert m.last_heartbeat("b") == 11.0
    assert m.tick(12.0) == []
    assert m.tick(14.0) == [("b", MembershipEvent.DOWN)]  # about 2.5 s after the pause
