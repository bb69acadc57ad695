"""Multi-layer perceptron: the model every strategy of the core evolves.

Float mode::

    h_0 = x;   h_l = act(W_l h_{l-1} + b_l)  (hidden layers);   logits = W_L h_{L-1} + b_L

Integer mode (numerics contract, docs/numerics.md); x is int8 in Q(x_frac), weights and biases
int8 in Q(w_frac) / Q(b_frac)::

    acc_l  = sum_j W_l[i, j] * h_{l-1}[j] + (b_l[i] << (w_frac + in_frac_l - b_frac))   # int32
    z_l    = sat8(rshift_round(acc_l, w_frac + in_frac_l - z_frac))                     # Q(z_frac)
    h_l    = LUT_act[z_l + 128]                                                          # Q(h_frac)
    logits = acc_L                                                                       # int32, Q(w_frac + in_frac_L)

where in_frac_1 = x_frac and in_frac_l = h_frac after. A genome is one flat vector in the
canonical order W1, b1, W2, b2, ... (row-major W[out, in]); the C runtime, the RNG indices and
the checkpoint all use that order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..fixedpoint import make_lut, LUT_FUNCTIONS

MODES = ("int8", "float32")
# |sum of fan_in products| <= fan_in * 127 * 127 (+ bias) must stay below 2**31
MAX_FAN_IN = 130_000


@dataclass(frozen=True)
class MLPSpec:
    dims: tuple[int, ...]
    activation: str = "tanh"
    w_frac: int = 6
    b_frac: int = 6
    x_frac: int = 7
    z_frac: int = 5
    h_frac: int = 7

    def __post_init__(self):
        dims = tuple(int(d) for d in self.dims)
        object.__setattr__(self, "dims", dims)
        if len(dims) < 2 or min(dims) < 1:
            raise ValueError(f"dims must list >= 2 positive layer sizes, got {dims}")
        if self.activation not in LUT_FUNCTIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {sorted(LUT_FUNCTIONS)}")
        for l in range(self.n_layers):
            if dims[l] > MAX_FAN_IN:
                raise ValueError(f"fan-in {dims[l]} > {MAX_FAN_IN} could overflow the int32 accumulator; "
                                 "downsample the input or split the layer")
            if self.bias_shift(l) < 0 or self.out_shift(l) < 0 and l < self.n_layers - 1:
                raise ValueError("formats give a negative shift: need w_frac + in_frac >= b_frac, z_frac")

    # ----------------------------------------------------------------- layout
    @property
    def n_layers(self) -> int:
        return len(self.dims) - 1

    def in_frac(self, l: int) -> int:
        return self.x_frac if l == 0 else self.h_frac

    def bias_shift(self, l: int) -> int:
        return self.w_frac + self.in_frac(l) - self.b_frac

    def out_shift(self, l: int) -> int:
        return self.w_frac + self.in_frac(l) - self.z_frac

    @property
    def logit_frac(self) -> int:
        return self.w_frac + self.in_frac(self.n_layers - 1)

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        out = []
        for l in range(self.n_layers):
            out.append((f"W{l + 1}", (self.dims[l + 1], self.dims[l])))
            out.append((f"b{l + 1}", (self.dims[l + 1],)))
        return out

    def offsets(self) -> dict[str, int]:
        off, pos = {}, 0
        for name, shape in self.tensors():
            off[name] = pos
            pos += int(np.prod(shape))
        return off

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(s)) for _, s in self.tensors())

    def lut(self) -> np.ndarray:
        return make_lut(self.activation, self.z_frac, self.h_frac)

    def to_dict(self) -> dict:
        return {"kind": "mlp", "dims": list(self.dims), "activation": self.activation,
                "w_frac": self.w_frac, "b_frac": self.b_frac, "x_frac": self.x_frac,
                "z_frac": self.z_frac, "h_frac": self.h_frac}

    @classmethod
    def from_dict(cls, d: dict) -> "MLPSpec":
        d = dict(d)
        if d.pop("kind", "mlp") != "mlp":
            raise ValueError("not an MLP spec")
        return cls(dims=tuple(d.pop("dims")), **d)

    def fan_in(self, name: str) -> int:
        """Inputs feeding one output of tensor ``name`` (W1 -> dims[0]); used by initialisers."""
        return self.dims[int(name[1:]) - 1]

    # float value of one integer unit of each tensor (for int8 <-> float conversion)
    def tensor_frac(self, name: str) -> int:
        return self.w_frac if name.startswith("W") else self.b_frac


@dataclass
class Population:
    """P genomes stored tensor by tensor: ``tensors[name]`` is a C-contiguous [P, size] array.

    Storing each tensor contiguously across the population makes layer 1 of all genomes one
    matrix ``W1.reshape(P * H, n_in)`` (zero-copy) for GEMM engines, while the canonical flat
    genome order (W1, b1, W2, b2, ...) is kept for RNG indices, C and checkpoints.
    """
    spec: MLPSpec
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    @property
    def dtype(self):
        return next(iter(self.tensors.values())).dtype

    @classmethod
    def empty(cls, spec: MLPSpec, size: int, dtype) -> "Population":
        return cls(spec, {n: np.zeros((size, int(np.prod(s))), dtype=dtype) for n, s in spec.tensors()})

    @classmethod
    def from_flat(cls, spec: MLPSpec, flat: np.ndarray) -> "Population":
        flat = np.atleast_2d(flat)
        if flat.shape[1] != spec.n_params:
            raise ValueError(f"genome length {flat.shape[1]} != {spec.n_params} parameters of {spec.dims}")
        off = spec.offsets()
        return cls(spec, {n: np.ascontiguousarray(flat[:, off[n]:off[n] + int(np.prod(s))])
                          for n, s in spec.tensors()})

    def to_flat(self) -> np.ndarray:
        return np.concatenate([self.tensors[n] for n, _ in self.spec.tensors()], axis=1)

    def genome(self, i: int) -> np.ndarray:
        return np.concatenate([self.tensors[n][i] for n, _ in self.spec.tensors()])

    def layer(self, l: int) -> tuple[np.ndarray, np.ndarray]:
        """(W [P, out, in], b [P, out]) views of layer l."""
        o, i = self.spec.dims[l + 1], self.spec.dims[l]
        return (self.tensors[f"W{l + 1}"].reshape(self.size, o, i), self.tensors[f"b{l + 1}"])

    def copy(self) -> "Population":
        return Population(self.spec, {n: a.copy() for n, a in self.tensors.items()})
