"""The survey's field of view and sky, declared once: ap_proto's defaults, gen_sources' too.

Every function that takes a field diameter or a sky defaults to these, and
the ``[ap_proto]`` options ``fov`` and ``sky`` (`dia_sim.options.RunSettings`)
and gen_sources' ``--fov`` and ``--sky`` are declared with them, so that a
catalogue written with the defaults has the density ap_proto expects.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["FOV_DEG", "Sky", "SKIES", "SKY"]

#: Diameter of the survey camera's field of view, degrees.
FOV_DEG = 3.5

#: Where pointings and catalogue sources fall: the southern hemisphere (Dec <= 0) or the whole sky.
Sky = Literal["south", "full"]

#: The allowed values of a sky.
SKIES: tuple[str, ...] = get_args(Sky)

#: The survey's sky.
SKY: Sky = "south"
