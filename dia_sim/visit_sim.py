"""The DIA simulation of one visit (or one tile of it), in the AP loop's order.

The AP loop (`dia_sim.cli.ap_proto`) interleaves the simulation with its
database reads::

    sim = VisitSimulator(SimConfig(...))
    detections = sim.detect(rng, field, cat_ra, cat_dec)
    objects = l1db.getDiaObjects(field.region)            # DB
    assoc = sim.associate(detections, objects)
    src_hist = l1db.getDiaSources(...)                     # DB
    fsrc_hist = l1db.getDiaForcedSources(...)              # DB
    new_objects, sources, forced = sim.build_rows(
        rng, visit, tile, visit_mjd, band, detections, assoc, objects, src_hist, fsrc_hist)
    l1db.storeDiaObjects(new_objects, ...); ...            # DB

Columns needed from the database (`OBJECT_COLUMNS`, `rows.SOURCE_HISTORY_COLUMNS`,
`rows.FORCED_HISTORY_COLUMNS`): DiaObject diaObjectId, ra, dec,
lastDiaSourceMjdTai (firstDiaSourceMjdTai used if present); DiaSource
diaObjectId, ra, dec, midpointMjdTai, band, psfFlux, psfFluxErr; DiaForcedSource
diaObjectId, band, psfFlux, psfFluxErr.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from l1db.frames import check_frame, empty_frame
from l1db.schema_model import SchemaDef
from l1db.tables import published_tables

from .association import associate
from .detections import simulate_detections
from .field import FieldTile
from .forced import forced_targets
from .ids import make_ids
from .options import SimConfig
from .rows import (
    FORCED_HISTORY_COLUMNS,
    SOURCE_HISTORY_COLUMNS,
    default_schema,
    make_dia_objects,
    make_dia_sources,
    make_forced_sources,
)

__all__ = ["OBJECT_COLUMNS", "SimConfig", "AssociationResult", "VisitSimulator"]

_LOG = logging.getLogger(__name__)

#: DiaObject columns the simulation reads from ``getDiaObjects`` (the first
#: three are required; lastDiaSourceMjdTai is derived from the DiaSource
#: history when missing).
OBJECT_COLUMNS = ("diaObjectId", "ra", "dec", "lastDiaSourceMjdTai", "firstDiaSourceMjdTai")


@dataclasses.dataclass(frozen=True)
class AssociationResult:
    """Outcome of associating one visit's detections with the objects in the field."""

    object_index: np.ndarray
    """Per detection: row of the objects frame it was matched to, or -1."""
    matched_objects: np.ndarray
    """Per object (row of the objects frame): True if a detection matched it."""

    @property
    def n_matched(self) -> int:
        """Number of detections matched to an existing object."""
        return int(np.count_nonzero(self.object_index >= 0))

    @property
    def n_new(self) -> int:
        """Number of detections that start a new object."""
        return int(self.object_index.size - self.n_matched)


class VisitSimulator:
    """Simulates the DIA of each visit: detections, association, new rows.

    Parameters
    ----------
    config : `SimConfig`, optional
        Simulation parameters.
    schema : `l1db.schema_model.SchemaDef`, optional
        Table definitions of the frames built; default: the packaged schema.
    """

    def __init__(self, config: SimConfig | None = None, schema: SchemaDef | None = None):
        self.config = SimConfig() if config is None else config
        self.schema = default_schema() if schema is None else schema

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the simulation's numba kernels, outside any timing.

        Runs every step of two visits of a small field: the first on an empty
        database, the second reading back the first one's rows as its
        DiaObjects and history, so that each step's kernels run with the
        types a real visit gives them (a kernel compiles once per type
        signature). ``tests/test_warm_up.py`` checks that no visit compiles
        one after this.
        """
        rng = np.random.default_rng(0)
        field = FieldTile(10.0, -20.0, 0.5)
        cat_ra = np.array([10.0, 10.05, 9.95])
        cat_dec = np.array([-20.0, -20.05, -19.95])
        tables = published_tables(self.schema)

        def as_read(table: str, frame: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
            # The columns and dtypes a read of the database returns (l1db.frames' typed columns).
            if frame is None or len(frame) == 0:
                return empty_frame([tables[table].columns[c] for c in columns])
            return check_frame(tables[table], frame).loc[:, list(columns)].reset_index(drop=True)

        new_objects = sources = forced = None
        for visit, mjd in ((1, 61000.0), (2, 61000.1)):
            objects = as_read("DiaObject", new_objects, OBJECT_COLUMNS)
            detections = self.detect(rng, field, cat_ra, cat_dec)
            association = self.associate(detections, objects)
            new_objects, sources, forced = self.build_rows(
                rng, visit, 0, mjd, "g", detections, association, objects,
                as_read("DiaSource", sources, SOURCE_HISTORY_COLUMNS),
                as_read("DiaForcedSource", forced, FORCED_HISTORY_COLUMNS),
            )

    def detect(self, rng: np.random.Generator, field: Any, catalog_ra: np.ndarray,
               catalog_dec: np.ndarray) -> pd.DataFrame:
        """Detections of one visit in ``field``: see `dia_sim.detections.simulate_detections`.

        ``catalog_ra``/``catalog_dec`` are the catalogue variables inside ``field``.
        """
        c = self.config
        return simulate_detections(
            rng, field, catalog_ra, catalog_dec,
            detection_fraction=c.detection_fraction,
            false_per_visit=c.false_per_visit,
            transients_per_visit=c.transients_per_visit,
            scatter_arcsec=c.scatter_arcsec,
        )

    def associate(self, detections: pd.DataFrame, objects: pd.DataFrame) -> AssociationResult:
        """Match detections to the DiaObjects read in the field (`dia_sim.association.associate`).

        Parameters
        ----------
        detections : `pandas.DataFrame`
            From `detect` (columns ``ra``, ``dec``).
        objects : `pandas.DataFrame`
            DiaObjects in the field (columns ``ra``, ``dec`` at least).
        """
        index = associate(
            detections["ra"].to_numpy(), detections["dec"].to_numpy(),
            objects["ra"].to_numpy(), objects["dec"].to_numpy(),
            self.config.match_radius_arcsec,
        )
        matched = np.zeros(len(objects), dtype=bool)
        matched[index[index >= 0]] = True
        return AssociationResult(object_index=index, matched_objects=matched)

    def build_rows(
        self,
        rng: np.random.Generator,
        visit: int,
        tile: int,
        visit_mjd: float,
        band: str,
        detections: pd.DataFrame,
        association: AssociationResult,
        objects: pd.DataFrame,
        src_history: pd.DataFrame | None,
        fsrc_history: pd.DataFrame | None,
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Build the rows the visit stores.

        Parameters
        ----------
        rng : `numpy.random.Generator`
            Random numbers.
        visit : `int`
            Visit id.
        tile : `int`
            Tile number (stored as ``detector``); ids are unique per visit and tile.
        visit_mjd : `float`
            Time of the visit, MJD TAI.
        band : `str`
            Filter band of the visit.
        detections : `pandas.DataFrame`
            From `detect`.
        association : `AssociationResult`
            From `associate` with the same ``objects``.
        objects : `pandas.DataFrame`
            DiaObjects in the field (`OBJECT_COLUMNS`).
        src_history, fsrc_history : `pandas.DataFrame` or `None`
            DiaSource and DiaForcedSource histories of those objects
            (`rows.SOURCE_HISTORY_COLUMNS`, `rows.FORCED_HISTORY_COLUMNS`);
            `None` when not read.

        Returns
        -------
        new_objects : `pandas.DataFrame`
            New DiaObject versions: one per object with a source in this visit
            (matched objects and new ones).
        sources : `pandas.DataFrame`
            DiaSources of this visit.
        forced : `pandas.DataFrame`
            DiaForcedSources of this visit.
        """
        index = association.object_index
        if index.size != len(detections) or association.matched_objects.size != len(objects):
            raise ValueError("build_rows: association does not belong to these detections and objects")
        obj_ids = objects["diaObjectId"].to_numpy(dtype=np.int64)
        new = index < 0
        dia_object_ids = np.empty(index.size, dtype=np.int64)
        dia_object_ids[~new] = obj_ids[index[~new]]
        dia_object_ids[new] = make_ids(visit, tile, int(np.count_nonzero(new)))

        sources = make_dia_sources(
            rng, detections["ra"].to_numpy(), detections["dec"].to_numpy(), dia_object_ids,
            make_ids(visit, tile, index.size), visit, tile, visit_mjd, band,
            table=self.schema.tables["DiaSource"],
        )

        last = _last_detection(objects, obj_ids, src_history)
        mask = forced_targets(obj_ids, last, association.matched_objects, visit_mjd, self.config.forced_cutoff_days)
        forced = make_forced_sources(
            rng, objects.loc[mask, ["diaObjectId", "ra", "dec"]], visit, tile, visit_mjd, band,
            make_ids(visit, tile, int(np.count_nonzero(mask))),
            table=self.schema.tables["DiaForcedSource"],
        )

        new_objects = make_dia_objects(
            sources, src_history, objects, visit_mjd, fsrc_history, rng=rng,
            table=self.schema.tables["DiaObject"],
        )
        return new_objects, sources, forced


def _last_detection(objects: pd.DataFrame, obj_ids: np.ndarray, src_history: pd.DataFrame | None) -> np.ndarray:
    """lastDiaSourceMjdTai of each object; from the history if the frame lacks it."""
    if "lastDiaSourceMjdTai" in objects:
        return objects["lastDiaSourceMjdTai"].to_numpy(dtype=np.float64, na_value=np.nan)
    last = np.full(obj_ids.size, np.nan)
    if src_history is None or len(src_history) == 0 or obj_ids.size == 0:
        return last
    order = np.argsort(obj_ids)
    sorted_ids = obj_ids[order]
    hist_ids = src_history["diaObjectId"].to_numpy(dtype=np.int64)
    pos = np.searchsorted(sorted_ids, hist_ids)
    pos[pos == sorted_ids.size] = 0
    keep = sorted_ids[pos] == hist_ids
    np.fmax.at(last, order[pos[keep]], src_history["midpointMjdTai"].to_numpy(dtype=np.float64)[keep])
    return last
