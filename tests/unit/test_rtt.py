"""The adaptive connect timeout's arithmetic (auditor.judge.rtt), with injected round-trip times."""

from __future__ import annotations

import pytest

from auditor.judge.rtt import SYN_RETRANSMIT, ConnectTimeouts, RttEstimator, filtered_detail, whole_wait


def test_before_any_sample_the_initial_timeout_applies() -> None:
    assert RttEstimator().timeout() == 1.0
    assert RttEstimator(ConnectTimeouts(floor=0.05, ceiling=0.5)).timeout() == 0.5


def test_first_sample_gives_three_times_the_rtt() -> None:
    est = RttEstimator(ConnectTimeouts(floor=0.001, ceiling=10))
    est.add(0.2)
    assert est.srtt == pytest.approx(0.2) and est.rttvar == pytest.approx(0.1)
    assert est.timeout() == pytest.approx(0.6)


def test_smoothing_follows_rfc6298() -> None:
    est = RttEstimator(ConnectTimeouts(floor=0.001, ceiling=10))
    for sample in (0.1, 0.3):
        est.add(sample)
    # rttvar = 3/4 * 0.05 + 1/4 * |0.1 - 0.3| ; srtt = 7/8 * 0.1 + 1/8 * 0.3
    assert est.rttvar == pytest.approx(0.0875)
    assert est.srtt == pytest.approx(0.125)
    assert est.timeout() == pytest.approx(0.125 + 4 * 0.0875)
    assert est.samples == 2


def test_steady_samples_shrink_the_variation() -> None:
    est = RttEstimator(ConnectTimeouts(floor=0.001, ceiling=10))
    for _ in range(40):
        est.add(0.05)
    assert est.srtt == pytest.approx(0.05)
    assert est.timeout() == pytest.approx(0.05, rel=0.01)


def test_floor_and_ceiling_clamp() -> None:
    fast = RttEstimator(ConnectTimeouts(floor=0.1, ceiling=3.0))
    fast.add(0.0002)
    assert fast.timeout() == 0.1
    slow = RttEstimator(ConnectTimeouts(floor=0.1, ceiling=3.0))
    slow.add(2.5)
    assert slow.timeout() == 3.0
    negative = RttEstimator(ConnectTimeouts(floor=0.1, ceiling=3.0))
    negative.add(-1)
    assert negative.srtt == 0


@pytest.mark.parametrize("text, floor, ceiling", [("100:3000", 0.1, 3.0), ("250", 0.25, 3.0),
                                                  ("5000", 5.0, 5.0), (" 20:40 ", 0.02, 0.04)])
def test_parse(text: str, floor: float, ceiling: float) -> None:
    bounds = ConnectTimeouts.parse(text)
    assert (bounds.floor, bounds.ceiling) == pytest.approx((floor, ceiling))
    assert bounds.floor <= bounds.initial <= bounds.ceiling


@pytest.mark.parametrize("text", ["", "x", "0:100", "300:200", "-5", "1:99999999", "1:2:3"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        ConnectTimeouts.parse(text)


def test_filtered_detail_names_the_wait_and_the_rtt() -> None:
    assert filtered_detail(1.1, 0.1, 0.00023) == ("no answer in 1100 ms, RTT 0.2 ms; 2 attempts (the second after "
                                                  "100 ms, the first SYN's retransmission included)")
    assert filtered_detail(0.4, 0.2, 0.05) == "no answer in 400 ms, RTT 50.0 ms; 2 attempts (the second after 200 ms)"
    assert "RTT unknown" in filtered_detail(2.0, 1.0, None)


def test_whole_wait_is_two_timeouts_by_default() -> None:
    default = ConnectTimeouts()
    assert whole_wait(0.1, default) == pytest.approx(0.2)
    assert whole_wait(2.5, default) == pytest.approx(5.0)
    assert whole_wait(0.1, ConnectTimeouts(floor=0.05, ceiling=0.3)) == pytest.approx(0.2)


def test_the_patient_wait_covers_the_syn_retransmission() -> None:
    patient = ConnectTimeouts(syn_retransmit=True)
    assert whole_wait(0.1, patient) == pytest.approx(SYN_RETRANSMIT + 0.1)
    assert whole_wait(2.5, patient) == pytest.approx(5.0)  # two timeouts are longer still
    # The patient wait is what the user asked for, whatever the ceiling of a single timeout.
    assert whole_wait(0.1, ConnectTimeouts(floor=0.05, ceiling=0.3, syn_retransmit=True)) == pytest.approx(1.1)


def test_setting_round_trips_through_json() -> None:
    bounds = ConnectTimeouts.parse("150:2000", syn_retransmit=True)
    assert bounds.to_json() == {"floor_ms": 150.0, "ceiling_ms": 2000.0, "syn_retransmit": True}
    assert ConnectTimeouts.from_json(bounds.to_json()) == bounds
    # A setting recorded before the patient wait existed reads as the default wait.
    older = ConnectTimeouts.from_json({"floor_ms": 100.0, "ceiling_ms": 3000.0})
    assert older == ConnectTimeouts() and not older.syn_retransmit
    with pytest.raises(ValueError):
        ConnectTimeouts.from_json(["100", "3000"])
    with pytest.raises(ValueError):
        ConnectTimeouts.from_json({"floor_ms": "fast"})
