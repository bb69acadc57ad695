"""Short float NumPy twins of the fast strategies, written to be read next to them (pycma style).
They use ``np.random.Generator`` and are compared with the fast float mode on behaviour only."""
