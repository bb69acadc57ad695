"""One strategy interface for every algorithm (evosax-style init / ask / tell).

* ``Params`` is a frozen dataclass (hyper-parameters; presets are named instances).
* ``State`` carries everything that changes: generation, the seed (the RNG is counter-based, so
  ``(seed, generation, individual, index)`` *is* the RNG state), the current population and
  strategy arrays (trust, mean, momentum...). It serialises to plain arrays + JSON scalars.
* ``ask(state)`` returns the population to evaluate; it is a pure function of the state.
* ``tell(state, pop, scores)`` takes per-sample scores ``[P, B]`` (higher is better; B = 1 for a
  plain fitness) in the order the samples were seen, and returns the next state.
  Strategies that need the order (GENREG's decaying trust) use it; others average.

Population size 1 is allowed (continuous on-device mode).
RNG stream domains: ``individual`` in the key is the genome index for per-genome draws, and
``0x8000_0000 | purpose`` for whole-population draws (see PURPOSE_*).
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..models.mlp import MLPSpec, Population, MODES

# whole-population RNG streams (individual field of the key)
PURPOSE_SELECT = 0x8000_0001      # parent selection
PURPOSE_BATCH = 0x8000_0002       # training batch sampling
PURPOSE_PREDICT = 0x8000_0003     # sampled (softmax) predictions
PURPOSE_INIT = 0x8000_0004        # initial population


@dataclass
class State:
    generation: int
    seed: int
    population: Population | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, float | int | str] = field(default_factory=dict)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays for npz, JSON-able meta)."""
        arrs = {f"state/{k}": v for k, v in self.arrays.items()}
        if self.population is not None:
            arrs.update({f"population/{k}": v for k, v in self.population.tensors.items()})
        meta = {"generation": int(self.generation), "seed": int(self.seed), "scalars": dict(self.scalars)}
        return arrs, meta

    @classmethod
    def from_arrays(cls, spec: MLPSpec, arrs: dict, meta: dict) -> "State":
        pop_t = {k.split("/", 1)[1]: np.asarray(v) for k, v in arrs.items() if k.startswith("population/")}
        st = {k.split("/", 1)[1]: np.asarray(v) for k, v in arrs.items() if k.startswith("state/")}
        pop = None
        if pop_t:
            pop = Population(spec, {n: np.ascontiguousarray(pop_t[n]) for n, _ in spec.tensors()})
        return cls(int(meta["generation"]), int(meta["seed"]), pop, st, dict(meta.get("scalars", {})))


class Strategy(ABC):
    """Base class; subclasses set ``name``, ``Params``, ``presets`` and implement init/ask/tell."""
    name: ClassVar[str]
    Params: ClassVar[type]
    presets: ClassVar[dict] = {}
    # how the problem should form scores: "sample" (softmax-sampled predictions) or "argmax"
    prediction: ClassVar[str] = "argmax"
    # per-sample score: "correct" (1/0), "xent" (-cross-entropy), "neg_mse"
    score: ClassVar[str] = "correct"

    def __init__(self, spec: MLPSpec, params=None, mode: str = "int8", **overrides):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if params is None:
            params = self.Params()
        elif isinstance(params, str):
            try:
                params = self.presets[params]
            except KeyError:
                raise ValueError(f"unknown preset {params!r} for {self.name}; choose one of {sorted(self.presets)}") from None
        if overrides:
            names = {f.name for f in dataclasses.fields(self.Params)}
            bad = sorted(set(overrides) - names)
            if bad:
                raise ValueError(f"unknown {self.name} parameter(s) {bad}; valid: {sorted(names)}")
            params = dataclasses.replace(params, **overrides)
        self.spec = spec
        self.params = params
        self.mode = mode
        self.dtype = np.int8 if mode == "int8" else np.float32

    @abstractmethod
    def init(self, seed: int) -> State: ...

    def init_from(self, seed: int, genome: np.ndarray) -> State:
        """Start from a given genome (an imported model, an earlier run's model) instead of a
        random initialisation. The genome is flat, canonical order, of this strategy's mode dtype."""
        g = np.asarray(genome)
        if g.shape != (self.spec.n_params,):
            raise ValueError(f"{self.name}: genome has shape {g.shape}, the model {self.spec.dims} needs "
                             f"({self.spec.n_params},)")
        if g.dtype != self.dtype:
            raise TypeError(f"{self.name}: genome dtype {g.dtype} does not match mode {self.mode!r}: "
                            "quantize it first (edge-evo import) or pick the matching mode")
        return self._seed_state(self.init(seed), g)

    def _seed_state(self, state: State, genome: np.ndarray) -> State:
        raise NotImplementedError(f"{self.name} cannot start from a given genome yet")

    @abstractmethod
    def ask(self, state: State) -> Population: ...

    @abstractmethod
    def tell(self, state: State, pop: Population, scores: np.ndarray) -> State: ...

    def best_genome(self, state: State) -> np.ndarray:
        """The genome to deploy (flat, canonical order)."""
        return state.arrays["best"]

    def config(self) -> dict:
        return {"strategy": self.name, "mode": self.mode, "params": dataclasses.asdict(self.params)}
