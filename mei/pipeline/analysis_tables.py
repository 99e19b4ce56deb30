"""Table templates for what labs do with MEIs next: most discriminative stimuli and in-silico tuning.

* :class:`MDSConfigTemplate` / :class:`MDSTemplate` — a clustering run (config x trained model x MEI method x
  MEI seed) is a key; its parts are the stimuli (:class:`MDSTemplate.Stimulus`, in the external store), the
  cluster of every neuron (:class:`MDSTemplate.Assignment`) and the iteration history
  (:class:`MDSTemplate.Iteration`). ``make`` runs :func:`mei.analysis.mds.most_discriminative_stimuli` on the
  MEIs of the key's neurons.
* :class:`TuningConfigTemplate` / :class:`TuningTemplate` — grating tuning (and size tuning at the MEIs'
  centres) of every neuron of a trained model (:mod:`mei.analysis.tuning`), one part row per neuron.

Declare them on your schema with ``mei_table`` (your :class:`mei.main.MEITemplate` table) and the config
table set, as ``mei.demo.tables`` does. ``make`` = fetch, pure compute (:func:`compute_mds`,
:func:`compute_tuning`), insert.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import datajoint as dj
import numpy as np
import torch
from torch import nn

from ..analysis.mds import MDSResult, most_discriminative_stimuli
from ..analysis.tuning import grating_tuning, rf_centres, size_tuning
from ..engine.resolve import build_components
from ..modules import SessionsModel
from . import database as db
from .generation import versions
from .part_tables import give_own_parts
from .values import frozen_copy, make_hash

# ------------------------------------------------------------------------------------ shared fetch


def _neurons(mei_table: Any, key: Mapping[str, Any]) -> tuple[list[dict[str, Any]], torch.Tensor,
                                                               dict[str, list[int]]]:
    """The objective keys (ordered by session and output unit, with ``output_unit`` and ``data_key``), the MEIs
    of ``key``'s neurons and each session's output units (``{data_key: units}``, in that order)."""
    table = mei_table()
    objectives = table.objective_table()
    order = ["data_key", "output_unit"] if "data_key" in objectives.heading.names else ["output_unit"]
    rows = (table * objectives & key).to_dicts(order_by=order)
    if not rows:
        raise ValueError(f"no MEIs for {dict(key)}: populate the MEI table first")
    with db.store_errors(db.config_of(table.connection)):
        meis = torch.stack([torch.from_numpy(np.array(row["mei"])).float()[0] for row in rows])
    sessions: dict[str, list[int]] = {}
    for row in rows:
        sessions.setdefault(str(row.get("data_key", "")), []).append(int(row["output_unit"]))
    keys = [{name: row[name] for name in objectives.primary_key}
            | {"output_unit": int(row["output_unit"]), "data_key": str(row.get("data_key", ""))} for row in rows]
    return keys, meis, sessions


def _population(model: nn.Module, mei_table: Any, neurons: Sequence[Mapping[str, Any]],
                sessions: Mapping[str, list[int]]) -> tuple[nn.Module, list[int]]:
    """The model and the output units of the neurons, as one population.

    Each session is called with the keyword arguments its objectives give the model (``data_key`` where the
    objective table passes it, a session's stored ``behavior`` …: the ``forward_kwargs`` of
    ``objective_table().get_objective`` for the session's first neuron). Several sessions, or one with keyword
    arguments, become a :class:`~mei.modules.SessionsModel` whose units are the neurons in order, so the
    neurons of all sessions are clustered and tuned together."""
    objectives = mei_table().objective_table()
    names = objectives.primary_key
    first = {str(n.get("data_key", "")): n for n in reversed(neurons)}
    calls = []
    for data_key, units in sessions.items():
        objective = objectives.get_objective(model, {name: first[data_key][name] for name in names})
        kwargs = getattr(objective, "forward_kwargs", None)
        calls.append((dict(kwargs) if kwargs is not None else ({"data_key": data_key} if data_key else {}), units))
    if len(calls) == 1 and not calls[0][0]:
        return model, calls[0][1]
    return SessionsModel(model, calls), list(range(sum(len(units) for _, units in calls)))


def _input_shape(mei_table: Any, key: Mapping[str, Any], fallback: Sequence[int] | None) -> list[int]:
    shape = mei_table().input_shape(key)
    if shape is None and fallback is None:
        raise ValueError("the model's input shape is unknown: give it in the config ('shape')")
    return list(shape if shape is not None else fallback)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ MDS


class MDSConfigTemplate(dj.Lookup):
    """Settings of a most-discriminative-stimuli run. Attributes: ``mds_hash`` (key), ``n_clusters``,
    ``temperature``, ``max_iterations``, ``mds_seed``, ``normalize``, ``initial``, ``align`` (each neuron is
    shown the stimuli on its receptive field, the centre of its MEI), ``stimulus_config`` (a gradient-ascent
    method config for the stimuli, json), ``mds_comment``."""

    definition = """
    # settings of a most discriminative stimuli run
    mds_hash: char(32)                 # make_hash of the settings
    ---
    n_clusters: int32                  # starting clusters (k-means on the MEIs)
    temperature: float64               # of the contrastive objective
    max_iterations: int32              # most M/E rounds
    mds_seed: int64                    # seeds k-means and the stimuli
    normalize: bool                    # divide responses by each neuron's response to its MEI
    initial: varchar(16)               # what k-means starts from: 'responses' (to all MEIs) or 'meis'
    align=0: bool                      # show each neuron the stimuli on its receptive field (MEI centre)
    stimulus_config: json              # gradient-ascent config of the stimuli
    mds_comment='': varchar(256)       # a short description
    """

    def add_config(self, stimulus_config: Mapping[str, Any], n_clusters: int, temperature: float = 1.6,
                   max_iterations: int = 10, seed: int = 0, normalize: bool = True,
                   initial: str = "responses", align: bool = False, comment: str = "") -> dict[str, str]:
        """Check the settings (the stimulus config completely), add them once, return the key."""
        build_components(stimulus_config, extra_keys=("batch",))
        if initial not in ("responses", "meis"):
            raise ValueError(f"initial must be 'responses' or 'meis', got {initial!r}")
        if int(n_clusters) < 2 or int(max_iterations) < 1 or not float(temperature) > 0:
            raise ValueError(f"need n_clusters >= 2, max_iterations >= 1 and temperature > 0, got {n_clusters}, "
                             f"{max_iterations}, {temperature}")
        settings = {"n_clusters": int(n_clusters), "temperature": float(temperature),
                    "max_iterations": int(max_iterations), "mds_seed": int(seed), "normalize": bool(normalize),
                    "initial": initial,
                    "stimulus_config": frozen_copy(dict(stimulus_config))}
        if align:  # only then hashed: the settings of unaligned runs keep their hash
            settings["align"] = True
        key = {"mds_hash": make_hash(settings)}
        if not self & key:
            self.insert1({**key, **settings, "mds_comment": comment})
        return key


def compute_mds(model: nn.Module, meis: torch.Tensor, units: Sequence[int], settings: Mapping[str, Any],
                shape: Sequence[int]) -> tuple[MDSResult, float]:
    """The pure compute of :class:`MDSTemplate`: the MDS of ``units`` from their MEIs, and the seconds it took."""
    config = {**frozen_copy(dict(settings["stimulus_config"])), "shape": [int(s) for s in shape]}
    start = time.perf_counter()
    result = most_discriminative_stimuli(model, meis, int(settings["n_clusters"]), config,
                                         temperature=float(settings["temperature"]),
                                         max_iterations=int(settings["max_iterations"]),
                                         seed=int(settings["mds_seed"]), normalize=bool(settings["normalize"]),
                                         initial=str(settings.get("initial", "responses")),
                                         align="meis" if settings.get("align") else None, units=list(units))
    return result, time.perf_counter() - start


class MDSTemplate(dj.Computed):
    """Template of the MDS table: one clustering run per config, trained model, MEI method and MEI seed.

    Class attributes: ``mei_table`` (your MEI table; its trained-model, objective, method and seed tables are
    used) and ``mds_config_table`` (your :class:`MDSConfigTemplate` table).

    Attributes: the key; ``n_clusters`` (final), ``converged``, ``iterations``, ``wall_time``, ``versions``.
    Parts: ``Stimulus`` (``cluster``, ``stimulus`` in the store, ``n_members``, ``own_response``,
    ``other_response``: the members' mean normalized response to their stimulus and their largest to another
    cluster's),
    ``Assignment`` (per neuron: ``cluster``, ``initial_cluster``), ``Iteration`` (``n_clusters``,
    ``n_changed``, ``scores``, ``assignments``).
    """

    mei_table: ClassVar[Any] = None
    mds_config_table: ClassVar[Any] = None

    @property
    def definition(self) -> str:
        if self.mei_table is None or self.mds_config_table is None:
            raise TypeError(f"{type(self).__name__} needs mei_table and mds_config_table class attributes")
        return """
        # most discriminative stimuli: a clustering run
        -> self.mds_config_table
        -> self.mei_table.trained_model_table
        -> self.mei_table.method_table
        -> self.mei_table.seed_table
        ---
        n_clusters: int32                # clusters at the end
        converged: bool                  # assignments stopped changing
        iterations: int32                # M/E rounds run
        wall_time: float64               # seconds
        versions: json                   # mei, torch, datajoint and python versions
        """

    class Stimulus(dj.Part):
        """One most discriminative stimulus per cluster."""

        @property
        def definition(self) -> str:
            return f"""
            -> master
            cluster: int32
            ---
            stimulus: <npy@{db.store_name()}>   # the stimulus, of the model's input shape
            n_members: int32
            own_response: float64         # members' mean normalized response to this stimulus
            other_response: float64       # members' largest mean normalized response to another cluster's stimulus
            """

    class Assignment(dj.Part):
        """The final (and initial) cluster of every neuron."""

        definition = """
        -> master
        -> master.mei_table.objective_table
        ---
        cluster: int32
        initial_cluster: int32
        """

    class Iteration(dj.Part):
        """The history: one row per M/E round."""

        definition = """
        -> master
        iteration: int32
        ---
        n_clusters: int32
        n_changed: int32                 # neurons whose most driving stimulus was another cluster's
        scores: json                     # the objective of each cluster's stimulus
        assignments: json                # the clusters this round optimized for
        """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        give_own_parts(cls, ("Stimulus", "Assignment", "Iteration"))

    @property
    def key_source(self) -> Any:
        mei = self.mei_table
        upstream = mei.trained_model_table.proj() * mei.method_table.proj() * mei.seed_table.proj()
        return self.mds_config_table.proj() * (upstream & mei().proj())

    def make(self, key: dict[str, Any]) -> None:
        """Fetch MEIs and model, :func:`compute_mds`, insert the run and its parts."""
        neurons, meis, sessions = _neurons(self.mei_table, key)
        settings = (self.mds_config_table() & key).fetch1()
        shape = _input_shape(self.mei_table, key, [1, *meis.shape[1:]])
        model, units = _population(self.mei_table().load_model(key), self.mei_table, neurons, sessions)
        result, wall_time = compute_mds(model, meis, units, settings, shape)
        self._insert(key, neurons, result, wall_time)

    def _insert(self, key: Mapping[str, Any], neurons: list[dict[str, Any]], result: MDSResult,
                wall_time: float) -> None:
        own, gap = result.own_versus_other().tolist(), result.own_versus_other()
        means = [float(result.responses[k, result.assignments == k].mean()) for k in range(result.n_clusters)]
        self.insert1({**key, "n_clusters": result.n_clusters, "converged": bool(result.converged),
                      "iterations": len(result.history), "wall_time": float(wall_time), "versions": versions()})
        with db.store_errors(db.config_of(self.connection), hint=db.POPULATE_HINT):
            self.Stimulus().insert([
                {**key, "cluster": k, "stimulus": result.stimuli[k:k + 1].numpy(),
                 "n_members": int((result.assignments == k).sum()), "own_response": means[k],
                 "other_response": means[k] - float(gap[k])} for k in range(len(own))])
        objective_key = self.mei_table.objective_table().primary_key
        self.Assignment().insert([
            {**key, **{name: neuron[name] for name in objective_key}, "cluster": int(result.assignments[i]),
             "initial_cluster": int(result.initial_assignments[i])} for i, neuron in enumerate(neurons)])
        self.Iteration().insert([
            {**key, "iteration": h["iteration"], "n_clusters": h["n_clusters"], "n_changed": h["n_changed"],
             "scores": [float(s) for s in h["scores"]], "assignments": h["assignments"]} for h in result.history])

    def fetch_stimuli(self, key: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The stimuli of one run, ``(clusters, ...)`` in cluster order."""
        rows = self.Stimulus() & (key or {})
        with db.store_errors(db.config_of(self.connection)):
            return torch.cat([torch.from_numpy(np.array(row["stimulus"])) for row in rows.to_dicts(order_by="cluster")])


# ------------------------------------------------------------------------------------ tuning


class TuningConfigTemplate(dj.Lookup):
    """Settings of in-silico tuning: ``tuning_hash`` (key), ``tuning_config`` (json: the keyword arguments of
    :func:`mei.analysis.tuning.grating_tuning`, ``orientations``, ``spatial_frequencies``, ``phases``,
    ``contrast``; and ``sizes`` for size tuning at the MEIs' centres, or null), ``tuning_comment``."""

    definition = """
    # settings of in-silico tuning
    tuning_hash: char(32)              # make_hash of the config
    ---
    tuning_config: json                # grating_tuning kwargs; "sizes" (null: no size tuning)
    tuning_comment='': varchar(256)
    """

    KEYS: ClassVar[tuple[str, ...]] = ("orientations", "spatial_frequencies", "phases", "contrast", "sizes")

    def add_config(self, config: Mapping[str, Any] | None = None, comment: str = "") -> dict[str, str]:
        """Check the config (known keys only), add it once, return the key."""
        config = dict(config or {})
        unknown = sorted(set(config) - set(self.KEYS))
        if unknown:
            raise ValueError(f"unknown tuning config key(s) {unknown}; known: {', '.join(self.KEYS)}")
        key = {"tuning_hash": make_hash(config)}
        if not self & key:
            self.insert1({**key, "tuning_config": frozen_copy(config), "tuning_comment": comment})
        return key


def compute_tuning(model: nn.Module, units: Sequence[int], shape: Sequence[int], config: Mapping[str, Any],
                   meis: torch.Tensor | None = None) -> list[dict[str, Any]]:
    """The pure compute of :class:`TuningTemplate`: one dict of tuning values per unit of ``units``."""
    channels, height, width = int(shape[1]), int(shape[-2]), int(shape[-1])
    kwargs = {k: v for k, v in config.items() if k in ("orientations", "spatial_frequencies", "phases", "contrast")}
    gratings = grating_tuning(model, height, width, channels=channels, units=list(units), **kwargs)
    summary = gratings.summary()
    axes = {"orientations": gratings.orientations, "spatial_frequencies": gratings.spatial_frequencies,
            "phases": gratings.phases}
    rows = [{**{k: v for k, v in s.items() if not k.endswith("_curve")},
             "curves": {**axes, **{k: s[k] for k in ("orientation_curve", "frequency_curve", "phase_curve")}},
             "preferred_size": None, "surround_suppression": None} for s in summary]
    if config.get("sizes") is not None and meis is not None:
        sizes = size_tuning(model, height, width, rf_centres(meis), [s["preferred_orientation"] for s in summary],
                            [s["preferred_spatial_frequency"] for s in summary], sizes=config["sizes"],
                            channels=channels, units=list(units), contrast=float(config.get("contrast", 1.0)))
        for i, row in enumerate(rows):
            row.update(preferred_size=float(sizes["preferred_size"][i]),
                       surround_suppression=float(sizes["surround_suppression"][i]))
            row["curves"]["size_curve"] = sizes["curves"][i].tolist()
            row["curves"]["sizes"] = sizes["sizes"]
    return rows


class TuningTemplate(dj.Computed):
    """Template of the tuning table: grating (and size) tuning of every neuron of a trained model.

    Class attributes: ``mei_table`` (your MEI table: its trained-model and objective tables are used, and its
    MEIs locate the receptive fields for size tuning) and ``tuning_config_table``.

    Attributes: the key, ``wall_time``; part ``Neuron`` per neuron: ``preferred_orientation`` (degrees),
    ``orientation_selectivity``, ``preferred_spatial_frequency`` (cycles/pixel), ``phase_invariance``,
    ``f1_f0``, ``preferred_size`` and ``surround_suppression`` (null without size tuning), ``curves`` (json).
    """

    mei_table: ClassVar[Any] = None
    tuning_config_table: ClassVar[Any] = None

    @property
    def definition(self) -> str:
        if self.mei_table is None or self.tuning_config_table is None:
            raise TypeError(f"{type(self).__name__} needs mei_table and tuning_config_table class attributes")
        return """
        # in-silico tuning of a trained model's neurons
        -> self.tuning_config_table
        -> self.mei_table.trained_model_table
        ---
        wall_time: float64
        """

    class Neuron(dj.Part):
        """The tuning of one neuron."""

        definition = """
        -> master
        -> master.mei_table.objective_table
        ---
        preferred_orientation: float64        # degrees, [0, 180)
        orientation_selectivity: float64      # (pref - orth) / (pref + orth)
        preferred_spatial_frequency: float64  # cycles/pixel
        phase_invariance: float64             # 1 - (max - min) / (max + min) over phase
        f1_f0: float64                        # modulation ratio over phase
        preferred_size=null: float64          # aperture diameter, pixels
        surround_suppression=null: float64    # (max - largest) / max of the size curve
        curves: json                          # orientation, frequency, phase (and size) curves
        """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        give_own_parts(cls, ("Neuron",))

    @property
    def key_source(self) -> Any:
        return self.tuning_config_table.proj() * (self.mei_table.trained_model_table.proj() & self.mei_table().proj())

    def meis_for_centres(self, key: Mapping[str, Any]) -> tuple[list[dict[str, Any]], torch.Tensor,
                                                               dict[str, list[int]]]:
        """The neurons, the MEIs that locate them (default: the first method and seed in the MEI table) and
        each session's output units."""
        first = (self.mei_table() & key).to_dicts(limit=1, order_by=["method_hash", "mei_seed"])[0]
        restriction = {**key, "method_fn": first["method_fn"], "method_hash": first["method_hash"],
                       "mei_seed": first["mei_seed"]}
        return _neurons(self.mei_table, restriction)

    def make(self, key: dict[str, Any]) -> None:
        """Fetch model, neurons and MEIs, :func:`compute_tuning`, insert."""
        neurons, meis, sessions = self.meis_for_centres(key)
        config = (self.tuning_config_table() & key).fetch1("tuning_config")
        shape = _input_shape(self.mei_table, key, [1, *meis.shape[1:]])
        model, units = _population(self.mei_table().load_model(key), self.mei_table, neurons, sessions)
        start = time.perf_counter()
        rows = compute_tuning(model, units, shape, config, meis)
        self.insert1({**key, "wall_time": time.perf_counter() - start})
        objective_key = self.mei_table.objective_table().primary_key
        self.Neuron().insert([{**key, **{name: neuron[name] for name in objective_key}, **row}
                              for neuron, row in zip(neurons, rows, strict=True)])
