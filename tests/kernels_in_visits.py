"""Run ap_proto in this (fresh) process and report the numba kernels its visits compiled.

Used by ``tests/test_warm_up.py`` in a new interpreter, so that no kernel was
compiled before ap_proto's own warm-up. Every numba dispatcher of the
toolkit's modules (``l1db``, ``dia_sim``, found by walking ``sys.modules``,
so a kernel added later is found too) has its compiled signatures compared
before and after each tile's visit; a signature that appears during a
visit was compiled (or loaded from numba's cache) inside the visit's timing.

Usage: ``python tests/kernels_in_visits.py [--skip-warm-up] AP_PROTO_ARGS...``;
prints one JSON object: ``code`` (ap_proto's exit code), ``compiled_in_visits``
(kernel -> signatures that appeared during a visit) and ``compiled`` (kernel
-> every signature it has at the end). ``--skip-warm-up`` turns the warm-ups
off, to show that the check sees what they prevent.
"""

from __future__ import annotations

import json
import sys

from numba.core.dispatcher import Dispatcher

import dia_sim.tile_processor as tile_processor
import dia_sim.visit_sim as visit_sim
from dia_sim.cli.ap_proto import main
from l1db.api import L1db
from l1db.backends import Backend


def toolkit_kernels() -> dict[str, Dispatcher]:
    """Every numba dispatcher defined in a loaded module of the toolkit, by qualified name."""
    found = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("l1db", "dia_sim")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher):
                found[f"{value.py_func.__module__}.{value.py_func.__qualname__}"] = value
    return found


def signatures() -> dict[str, set[str]]:
    return {name: {str(sig) for sig in kernel.signatures} for name, kernel in toolkit_kernels().items()}


def run(argv: list[str]) -> dict[str, object]:
    if argv and argv[0] == "--skip-warm-up":
        argv = argv[1:]
        visit_sim.VisitSimulator.warm_up = lambda self: None
        for backend in L1db.__subclasses__():
            backend.warm_up = lambda self: None
        # A backend's wing is imported when the first client is opened (l1db.backends): patch it then.
        original_load = Backend.load

        def load(self, what="implementation"):  # type: ignore[no-untyped-def]
            loaded = original_load(self, what)
            if what == "implementation":
                loaded.warm_up = lambda self: None
            return loaded

        Backend.load = load  # type: ignore[method-assign]
    compiled_in_visits: dict[str, list[str]] = {}
    process = tile_processor.TileProcessor._process

    def checked(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        before = signatures()
        try:
            return process(self, *args, **kwargs)
        finally:
            for name, sigs in signatures().items():
                new = sigs - before.get(name, set())
                if new:
                    compiled_in_visits.setdefault(name, []).extend(sorted(new))

    tile_processor.TileProcessor._process = checked  # type: ignore[method-assign]
    code = main(argv)
    return {
        "code": code,
        "compiled_in_visits": compiled_in_visits,
        "compiled": {name: sorted(sigs) for name, sigs in signatures().items() if sigs},
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:])))
