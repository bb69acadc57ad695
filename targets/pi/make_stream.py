"""Deterministic 8 -> 3 test stream for check_arm64.sh (pure integer arithmetic, no RNG library)."""
import sys

with open(sys.argv[1], "w") as f:
    s = 12345
    for i in range(600):
        xs = []
        for _ in range(8):
            s = (s * 1103515245 + 12345) & 0x7FFFFFFF
            xs.append((s % 1801 - 900) / 1000)
        label = max(range(3), key=lambda k: sum(x * ((j * 7 + k * 3) % 5 - 2) for j, x in enumerate(xs)))
        if i >= 400:
            label = (label + 1) % 3
        f.write(",".join(f"{x:g}" for x in xs) + f",{label}\n")
