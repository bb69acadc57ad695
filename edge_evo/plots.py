"""Run plots as PNG files: fitness curve, per-class accuracy, confusion matrix.

matplotlib is an optional extra (``pip install edge-evo[plot]``); it is imported lazily with the
non-interactive Agg backend, and when it is missing plots are skipped with one warning.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_WARNED = False


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None (warned once) when matplotlib is missing."""
    global _WARNED
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        if not _WARNED:
            log.warning("matplotlib is not installed: plots skipped (pip install edge-evo[plot])")
            _WARNED = True
        return None
    return plt


def _save(fig, plt, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path


def plot_fitness(metrics: list[dict], path) -> Path | None:
    """Best / mean fitness per generation, and evaluation accuracy on a second axis."""
    plt = _pyplot()
    if plt is None:
        return None
    gens = [m["generation"] for m in metrics]
    fig, ax = plt.subplots(figsize=(7, 4))
    if metrics:
        ax.plot(gens, [m.get("best_fitness", np.nan) for m in metrics], label="best fitness", lw=1.2)
        ax.plot(gens, [m.get("mean_fitness", np.nan) for m in metrics], label="mean fitness", lw=1.0, alpha=0.8)
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (mean per-sample score)")
    ev = [(m["generation"], m["accuracy"]) for m in metrics if m.get("accuracy") is not None]
    handles, labels = ax.get_legend_handles_labels()
    if ev:
        ax2 = ax.twinx()
        split = next((m.get("eval_split", "test") for m in metrics if m.get("accuracy") is not None), "test")
        (h,) = ax2.plot([g for g, _ in ev], [a for _, a in ev], "o-", color="C2", ms=3, label=f"{split} accuracy")
        ax2.set_ylabel("accuracy")
        ax2.set_ylim(0, 1)
        handles.append(h)
        labels.append(h.get_label())
    if handles:
        ax.legend(handles, labels, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_per_class(accuracy, path, labels=None) -> Path | None:
    """Bar chart of accuracy per class."""
    plt = _pyplot()
    if plt is None:
        return None
    acc = np.asarray(accuracy, dtype=float).ravel()
    labels = [str(x) for x in (labels if labels is not None else range(acc.size))]
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * acc.size + 2), 3.5))
    ax.bar(range(acc.size), acc, color="C0")
    ax.set_xticks(range(acc.size), labels, rotation=0 if acc.size <= 12 else 90)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_xlabel("class")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, plt, path)


def plot_confusion(confusion, path, labels=None) -> Path | None:
    """Confusion matrix (rows: true class, columns: predicted), counts annotated when small."""
    plt = _pyplot()
    if plt is None:
        return None
    cm = np.asarray(confusion)
    n = cm.shape[0]
    labels = [str(x) for x in (labels if labels is not None else range(n))]
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * n + 2), max(4, 0.4 * n + 1.5)))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(n), labels, rotation=0 if n <= 12 else 90)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 12:
        hi = cm.max() if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{cm[i, j]:g}", ha="center", va="center", fontsize=7,
                        color="white" if hi and cm[i, j] > hi / 2 else "black")
    fig.tight_layout()
    return _save(fig, plt, path)


def write_run_plots(run_dir, metrics: list[dict], per_class=None, confusion=None, labels=None) -> list[Path]:
    """Write ``fitness.png`` (+ ``per_class.png``, ``confusion.png`` when given) into ``run_dir``."""
    run_dir = Path(run_dir)
    out = [plot_fitness(metrics, run_dir / "fitness.png")]
    if per_class is not None:
        out.append(plot_per_class(per_class, run_dir / "per_class.png", labels))
    if confusion is not None:
        out.append(plot_confusion(confusion, run_dir / "confusion.png", labels))
    return [p for p in out if p is not None]


def plot_raster(spike_steps, spike_units, path, n_units: int, T: int, unit_labels=None, title=None,
                activity=None) -> Path | None:
    """Spike raster (one dot per spike: step, unit) and, when ``activity`` [T, n_units] is given
    (e.g. the ENU outputs' channel 0), a heat map of it under the raster on the same time axis."""
    plt = _pyplot()
    if plt is None:
        return None
    steps, units = np.asarray(spike_steps), np.asarray(spike_units)
    rows = 2 if activity is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 1.2 + 0.28 * n_units * rows), sharex=True, squeeze=False,
                             layout="constrained")
    ax = axes[0, 0]
    ax.scatter(steps, units, s=6, marker="|", color="k", linewidths=1.0)
    ax.set_ylim(-0.5, n_units - 0.5)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_ylabel("unit")
    if unit_labels is not None and n_units <= 40:
        ax.set_yticks(range(n_units), [str(x) for x in unit_labels], fontsize=6)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    if activity is not None:
        ax2 = axes[1, 0]
        im = ax2.imshow(np.asarray(activity, dtype=float).T, aspect="auto", cmap="viridis", vmin=0, vmax=1,
                        interpolation="nearest", extent=(-0.5, T - 0.5, n_units - 0.5, -0.5))
        fig.colorbar(im, ax=axes[:, 0].tolist(), fraction=0.03, pad=0.01, label="output channel 0")
        ax2.set_ylabel("unit")
        if unit_labels is not None and n_units <= 40:
            ax2.set_yticks(range(n_units), [str(x) for x in unit_labels], fontsize=6)
    axes[-1, 0].set_xlabel("step")
    return _save(fig, plt, path)


__all__ = ["plot_fitness", "plot_per_class", "plot_confusion", "plot_raster", "write_run_plots"]
