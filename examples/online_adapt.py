"""Python iterator API of online adaptation: a digits classifier keeps learning while it predicts,
and recovers after its labels are permuted mid-stream.  python examples/online_adapt.py"""
import numpy as np

from edge_evo.online import AdaptConfig, OnlineAdapter
from edge_evo.tasks import load_digits

X, y = load_digits()                     # uint8 8x8 images, labels 0..9
y = y.copy()
y[900:] = (y[900:] + 1) % 10             # concept drift: every label shifts by one
adapter = OnlineAdapter.from_model("64-32-10", AdaptConfig(input_scale="u8", population=4, window=16, seed=0))
hits = []
adapter.run(zip(X[:1700], y[:1700]), on_prediction=lambda i, p: hits.append(p == y[i]))
acc = np.convolve(hits, np.ones(100) / 100, mode="valid")
for i in range(0, len(acc), 200):
    print(f"samples {i:4d}-{i + 99:4d}: accuracy {acc[i]:.2f}")
print("events:", list(adapter.events))
print("summary:", adapter.summary())
