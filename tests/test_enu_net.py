"""ENU network population kernel (kernels/enu_net.py) against the NumPy reference (models/enu_net.py)."""
import numpy as np
import pytest

from edge_evo.kernels import enu_net as kern
from edge_evo.models.enu_net import ENUNetSpec, ENUNetState, enu_net_run, enu_net_step, output_noise

# float32 kernel vs float64 reference over 16 steps with noise: the kernel's exp is a polynomial
# (rel. err ~1e-7) and float32 rounding compounds through the recurrence; observed max ~2e-5
ATOL = 2e-4


def _case(C=4, H=6, P=3, E=2, T=16, seed=0):
    spec = ENUNetSpec.tmaze(C, H, seed=seed)
    r = np.random.default_rng(seed)
    G = r.normal(0, 0.5, (P, spec.n_params))
    xs = (r.random((T, 1, E, spec.n_sensors, C)) < 0.4).astype(np.float32)
    return spec, G, xs


def test_kernel_matches_float64_reference_with_noise():
    spec, G, xs = _case()
    T, _, E = xs.shape[:3]
    P = len(G)
    yk, sk = kern.enu_net_run(spec, G, xs, noise_std=0.01, noise_seed=5)
    yr, sr = enu_net_run(spec, G, np.broadcast_to(xs, (T, P) + xs.shape[2:]), noise_std=0.01, noise_seed=5,
                         dtype=np.float64)
    assert yk.dtype == np.float32 and yk.shape == yr.shape
    assert 0.05 < (yr > 0).mean() < 0.98                  # outputs neither all clamped nor all silent
    np.testing.assert_allclose(yk, yr, atol=ATOL, rtol=0)
    for name in ("y_n", "h_n", "y_s", "h_s"):
        np.testing.assert_allclose(getattr(sk, name), getattr(sr, name), atol=ATOL, rtol=0)
    # the noise matters: without it the trajectory differs by far more than the tolerance
    y0, _ = kern.enu_net_run(spec, G, xs, noise_std=0.0)
    assert np.abs(y0 - yk).max() > 10 * ATOL


def test_one_step_matches_reference_step_per_offspring_inputs():
    spec, G, _ = _case(C=3, H=5, P=4, E=3)
    r = np.random.default_rng(1)
    P, E, N, S, C, H = 4, 3, spec.n_neurons, spec.n_synapses, spec.channels, spec.memory
    st = ENUNetState(r.random((P, E, N, C)).astype(np.float32), r.normal(0, 0.5, (P, E, N, H)).astype(np.float32),
                     r.random((P, E, N, S, C)).astype(np.float32), r.normal(0, 0.5, (P, E, N, S, H)).astype(np.float32))
    x = r.random((P, E, spec.n_sensors, C)).astype(np.float32)           # a different input per offspring
    ref = enu_net_step(spec, spec.split(G.astype(np.float64)), x.astype(np.float64),
                       ENUNetState(*(a.astype(np.float64) for a in (st.y_n, st.h_n, st.y_s, st.h_s))),
                       output_noise(spec, 3, 7, E, 0.01, np.float64))
    acc = kern.enu_net_steps(spec, kern.pack(spec, G), x, st, n_steps=1, step0=7, noise_std=0.01, noise_seed=3)
    for name in ("y_n", "h_n", "y_s", "h_s"):
        np.testing.assert_allclose(getattr(st, name), getattr(ref, name), atol=2e-6, rtol=0)
    np.testing.assert_array_equal(acc, st.y_n[:, :, -spec.n_out:, 0])     # action evidence = channel 0


def test_shared_input_equals_broadcast_input_and_acc_sums_steps():
    spec, G, xs = _case(P=3, E=2, T=1)
    pk = kern.pack(spec, G)
    a, b = ENUNetState.zeros(spec, 3, 2), ENUNetState.zeros(spec, 3, 2)
    acc_a = kern.enu_net_steps(spec, pk, xs[0], a, n_steps=4, noise_std=0.01, noise_seed=2)
    acc_b = kern.enu_net_steps(spec, pk, np.repeat(xs[0], 3, axis=0), b, n_steps=4, noise_std=0.01, noise_seed=2)
    np.testing.assert_array_equal(a.y_n, b.y_n)
    np.testing.assert_array_equal(acc_a, acc_b)
    c = ENUNetState.zeros(spec, 3, 2)
    tot = np.zeros_like(acc_a)
    for t in range(4):                                    # 4 single steps = one 4-step call
        tot += kern.enu_net_steps(spec, pk, xs[0], c, n_steps=1, step0=t, noise_std=0.01, noise_seed=2)
    np.testing.assert_array_equal(c.h_s, a.h_s)
    np.testing.assert_allclose(tot, acc_a, rtol=1e-6)


def test_noise_table_is_the_reference_stream():
    spec = ENUNetSpec.tmaze(3, 4)
    tab = kern.noise_table(spec, 11, 5, 3, 2, 0.01)
    for t in range(3):
        zn, zs = output_noise(spec, 11, 5 + t, 2, 0.01)
        np.testing.assert_array_equal(tab[t], np.concatenate([zn.ravel(), zs.ravel()]))
    assert 0.008 < tab.std() < 0.012                      # N(0, 0.01), not rounded to zero
    assert not kern.noise_table(spec, 11, 0, 2, 2, 0.0).any()


def test_bad_inputs_raise():
    spec, G, xs = _case(P=2, E=2, T=1)
    pk = kern.pack(spec, G)
    with pytest.raises(ValueError, match="sensor input"):
        kern.enu_net_steps(spec, pk, xs[0][:, :1], ENUNetState.zeros(spec, 2, 2))
    with pytest.raises(TypeError, match="float32"):
        kern.enu_net_steps(spec, pk, xs[0], ENUNetState.zeros(spec, 2, 2, np.float64))
    with pytest.raises(ValueError, match="offspring"):
        kern.enu_net_steps(spec, pk, xs[0], ENUNetState.zeros(spec, 3, 2))
    with pytest.raises(ValueError, match="genome length"):
        kern.pack(spec, G[:, :-1])
