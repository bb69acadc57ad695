"""NumPy reference of EMNS (seed 000), to read next to ``strategies/emns.py`` and ``models/emns.py``.

``forward`` is the float network of one genome written neuron by neuron (seed 000 sections
3.1-3.2, public-code clipping); ``mutate_float`` the universal rule (2.1)-(2.2);
``mutate_int`` restates the integer kernel with NumPy int64 (must equal it bit for bit);
``adapt_mu`` is (2.3); ``select_step`` the later public code's (1+1) accept/revert.
"""
from __future__ import annotations

import numpy as np

from ...rng import GAUSS_STD, py_gauss, py_u32


def forward(spec, values, nmask, cmask, x):
    """One genome, one sample (float64) -> outputs of the last layer."""
    y = np.asarray(x, dtype=np.float64)
    for row in spec.layout():
        ni, no, oa, oc, ow, ob, og, coff, noff = (int(v) for v in row)
        out = np.zeros(no)
        for o in range(no):
            if not nmask[noff + o]:
                continue
            a = values[oa + 5 * o:oa + 5 * o + 5]
            b = values[oc + 5 * o:oc + 5 * o + 5]
            z = 0.0
            for i in range(ni):
                j = o * ni + i
                if not cmask[coff + j]:
                    continue
                s = float(np.clip(values[og + j] * values[ow + j] * y[i] + values[ob + j], -10, 10))
                z += a[0] * s + a[1] * s * s + a[2] * np.sqrt(abs(s)) + a[3] * np.sin(s) + a[4] * np.exp(-s * s)
            z = float(np.clip(np.clip(z, -5, 5), -15, 15))
            sg = 1 / (1 + np.exp(-z))
            out[o] = np.clip(b[0] * np.tanh(z) + b[1] * sg + b[2] * max(z, 0) + b[3] * z * sg + b[4] * z, -5, 5)
        y = out
    return y


def _words(key, j):
    return [py_u32(key, 4 * j + c) for c in range(4)]


def mutate_float(values, resist, pmask, key, mu, res_rate, r_max):
    v, r = values.astype(np.float64).copy(), resist.astype(np.float64).copy()
    for j in np.flatnonzero(pmask):
        h0, _, h2, _ = _words(key, int(j))
        w = 1 - r[j]
        v[j] = np.clip(v[j] + py_gauss(h0) / GAUSS_STD * mu * w, -10, 10)
        r[j] = np.clip(r[j] + py_gauss(h2) / GAUSS_STD * mu * res_rate * w, 0, r_max)
    return v, r


def mutate_int(values, resist, pmask, key, mu_q, val_k, res_k, r_max_q):
    v, r = values.astype(np.int64).copy(), resist.astype(np.int64).copy()
    rsr32 = lambda a: (a + (1 << 31)) >> 32
    for j in np.flatnonzero(pmask):
        h0, h1, h2, h3 = _words(key, int(j))
        w = 256 - int(r[j])
        v[j] = min(max(int(v[j]) + ((py_gauss(h0) * rsr32(mu_q * w * val_k) + (h1 & 0xFFFF)) >> 16), -20480), 20480)
        r[j] = min(max(int(r[j]) + ((py_gauss(h2) * rsr32(mu_q * w * res_k) + (h3 & 0xFFFFFF)) >> 24), 0), r_max_q)
    return v.astype(np.int16), r.astype(np.uint8)


def adapt_mu(mu, dP, eps=1e-3, better=0.98, worse=1.01, flat=0.999, lo=0.001, hi=0.1):
    f = better if dP > eps else (worse if dP < -eps else flat)
    return min(max(mu * f, lo), hi)


def select_step(parent_perf, child_perf, u, keep_worse=0.3) -> bool:
    """Accept the child? Not worse -> yes; worse -> kept with p = keep_worse (u ~ U(0, 1))."""
    return child_perf >= parent_perf or u < keep_worse
