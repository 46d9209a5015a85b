"""A tile's error reaches the driver as its own class and message, even when what it carries does not pickle."""

from __future__ import annotations

import pickle
import threading

from dia_sim.retries import VisitFailed
from dia_sim.tile_task import _portable
from l1db.errors import L1dbError


def test_a_picklable_error_is_sent_as_it_is() -> None:
    exc = VisitFailed("visit 3: connect failed 3 times")
    assert _portable(exc) is exc


def test_an_error_carrying_unpicklable_state_keeps_its_class_and_message() -> None:
    # A VisitFailed whose retries ended on a Cassandra error once carried the driver's locks:
    # it reached ap_proto as a bare L1dbError, without the "visit N:" that says what to resume.
    exc = VisitFailed("visit 3: connect failed 3 times in 15 s; giving up (run again to resume)")
    exc.state = threading.RLock()
    out = _portable(exc)
    assert type(out) is VisitFailed
    assert str(out) == str(exc)
    pickle.loads(pickle.dumps(out))


def test_an_error_that_cannot_be_remade_becomes_one_line() -> None:
    class Odd(Exception):
        def __init__(self, a: int, b: int) -> None:
            super().__init__(f"odd {a} {b}")
            self.lock = threading.RLock()

    out = _portable(Odd(1, 2))
    assert not isinstance(out, Odd) and not isinstance(out, L1dbError)
    assert "odd 1 2" in str(out)
