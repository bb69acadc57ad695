"""Issue 7: evolve an ENU network (seed 002) to learn the T-maze within an episode.

Two parts:

``--kernel``   speed of the float32 population kernel (``kernels/enu_net.py``) against the NumPy
               reference (``models/enu_net.py``), in network steps per second, for the seed size
               (16 channels, memory 32) and reduced sizes; prints medians of ``--repeats`` runs.
``--diagnose`` is there an ES signal at all: for the starting mean and each ``--diag-sigmas`` value, the
               offspring fitness spread against one genome's env-seed noise, the rank correlation of
               the offspring between two env sets, the share of actions an offspring changes.
``train``      (default) core OpenES float32 on ``ENUNetSpec.tmaze(channels, memory)``: seed settings
               are 16 channels, memory 32, P = 1024, sigma 0.01, lr 1, momentum 0.9, 8 envs,
               400 network steps, 30000 generations (~24 h on a Titan V). Runs for ``--generations``
               or ``--minutes``, whichever ends first; every ``--eval-every`` generations the ES mean
               plays held-out episodes (another seed) and the poison-avoidance metric is logged.
               At the end: held-out evaluation of the final mean and of the best evaluated mean,
               the scripted baselines on the same episodes, the fitness plot, the genome.

Outputs under ``--out``: ``metrics.jsonl`` (one line per generation, evaluations inline),
``genome.{npz,json}`` (``edge_evo.io`` checkpoint pair: arrays ``genome`` / ``best_genome``, meta
with the spec and the run settings), ``fitness.png``, ``summary.json``.

Example (the reduced configuration of docs/enu.md)::

    nice -n 10 python benchmarks/bench_enu_tmaze.py --channels 4 --memory 8 --population 32 \\
        --envs 4 --minutes 55 --out runs/enu_tmaze
    python benchmarks/bench_enu_tmaze.py --kernel
    nice -n 10 python benchmarks/bench_enu_tmaze.py --diagnose --population 64 --envs 8 --init-scale 1.0
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_evo import io  # noqa: E402
from edge_evo.kernels import enu_net as kern  # noqa: E402
from edge_evo.models.enu_net import ENUNetSpec, ENUNetState, enu_net_step, output_noise  # noqa: E402
from edge_evo.strategies.openes import OpenES  # noqa: E402
from edge_evo.tasks import tmaze as tm  # noqa: E402

EVAL_SEED_OFFSET = 1_000_003      # held-out episodes: a seed the training never uses


# ----------------------------------------------------------------------------- kernel speed
def bench_kernel(repeats: int, threads_note: str) -> None:
    rows = []
    for C, H, P, E, T in [(16, 32, 16, 8, 8), (8, 16, 32, 8, 16), (4, 8, 64, 8, 32)]:
        spec = ENUNetSpec.tmaze(C, H)
        r = np.random.default_rng(0)
        G = r.normal(0, 1 / np.sqrt(3 * C + H), (P, spec.n_params)).astype(np.float32)
        pk = kern.pack(spec, G)
        x = (r.random((1, E, 4, C)) < 0.3).astype(np.float32)
        st = ENUNetState.zeros(spec, P, E)
        kern.enu_net_steps(spec, pk, x, st, 1, 0, 0.01, 1)            # compile / warm
        ts, cs = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            kern.enu_net_steps(spec, pk, x, st, T, 0, 0.01, 1)
            ts.append(time.perf_counter() - t0)
            cs.append(time.process_time() - c0)
        k_rate = P * E * T / float(np.median(ts))
        k_cpu = P * E * T / float(np.median(cs))      # per CPU-second: less sensitive to other load
        # NumPy reference, float32, same sizes (fewer steps: it is slow)
        params = spec.split(G)
        sr = ENUNetState.zeros(spec, P, E)
        xb = np.broadcast_to(x, (P, E, 4, C))
        tr = []
        for _ in range(max(1, repeats // 2)):
            t0 = time.perf_counter()
            for t in range(2):
                sr = enu_net_step(spec, params, xb, sr, output_noise(spec, 1, t, E, 0.01))
            tr.append(time.perf_counter() - t0)
        r_rate = P * E * 2 / float(np.median(tr))
        rows.append((C, H, P, E, k_rate, k_cpu, r_rate))
    print(f"ENU network kernel speed (float32, {threads_note}); one network step = 54 ENU cells")
    print("steps = network steps of one (offspring, env copy); medians; wall clock and per CPU-second")
    print("| channels | memory | P x E | kernel steps/s (wall) | kernel steps per CPU-s | NumPy ref steps/s (wall) | "
          "speed-up | seed generation (P=1024, E=8, 400 steps) on 2 free cores |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for C, H, P, E, k, kc, rr in rows:
        gen = 1024 * 8 * 400 / (2 * kc)
        print(f"| {C} | {H} | {P}x{E} | {k:,.0f} | {kc:,.0f} | {rr:,.0f} | {k / rr:.1f}x | {gen:,.0f} s |")


# ----------------------------------------------------------------------------- training
def evaluate(spec, genome, cfg_eval: tm.TMazeConfig, seed: int, rounds: int) -> dict:
    recs = [tm.run_episodes(spec, genome[None, :], cfg_eval, seed + EVAL_SEED_OFFSET, g) for g in range(rounds)]
    return tm.summary(np.concatenate(recs, axis=1), cfg_eval.steps)


def baselines(cfg_eval: tm.TMazeConfig, seed: int, rounds: int) -> dict:
    out = {}
    for pol in tm.POLICIES:
        recs = [tm.scripted_episodes(pol, cfg_eval, seed + EVAL_SEED_OFFSET, g) for g in range(rounds)]
        out[pol] = tm.summary(np.concatenate(recs, axis=1), cfg_eval.steps)
    return out


def plot(metrics: list[dict], evals: list[dict], path: Path, title: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    g = [m["generation"] for m in metrics]
    ax.plot(g, [m["mean_fitness"] for m in metrics], lw=0.6, alpha=0.6, label="population mean fitness")
    ax.plot(g, [m["best_fitness"] for m in metrics], lw=0.6, alpha=0.6, label="best offspring fitness")
    if evals:
        ax.plot([e["generation"] for e in evals], [e["fitness"] for e in evals], "o-", ms=3, color="C3",
                label="ES mean, held-out fitness")
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (reward per env step + 0.025 alive)")
    ax.grid(alpha=0.3)
    if evals:
        ax2 = ax.twinx()
        ax2.plot([e["generation"] for e in evals], [e["avoid_after_taste"] for e in evals], "s--", ms=3,
                 color="C2", label="held-out poison avoidance after one taste")
        ax2.axhline(0.9, color="C2", lw=0.8, ls=":")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("avoidance after one taste")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    else:
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(a) -> None:
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = ENUNetSpec.tmaze(a.channels, a.memory, seed=a.seed)
    cfg = tm.TMazeConfig(steps=a.steps, net_steps=a.net_steps, envs=a.envs, noise_std=a.noise)
    cfg_eval = tm.TMazeConfig(steps=a.steps, net_steps=a.net_steps, envs=a.eval_episodes, noise_std=a.noise)
    es = OpenES(spec, "paper", mode="float32", population=a.population, sigma=a.sigma, lr=a.lr,
                momentum=a.momentum, shaping=a.shaping, init_scale=a.init_scale)
    if a.init:                                          # continue from a saved genome (its "genome" array)
        arrays, meta = io.load_checkpoint(a.init)
        if ENUNetSpec.from_dict(meta["spec"]) != spec:
            raise SystemExit(f"{a.init} holds a genome of {meta['spec']}, not of this spec; pass the same "
                             "--channels/--memory/--seed")
        st = es.init_from(a.seed, arrays["genome"].astype(np.float32))
    else:
        st = es.init(a.seed)
    settings = {k: v for k, v in vars(a).items() if k != "func"}
    print(f"T-maze ENU net: {spec.n_params} parameters, C={a.channels} H={a.memory}, P={a.population}, "
          f"E={a.envs}, {a.steps} env steps x {a.net_steps} network steps, sigma {a.sigma}, lr {a.lr}, "
          f"momentum {a.momentum}, {a.shaping} shaping",
          flush=True)
    mfile = (out / "metrics.jsonl").open("w")
    metrics, evals = [], []
    best_eval = None
    t_start = time.perf_counter()
    gen_times = []
    gen = 0
    while gen < a.generations and time.perf_counter() - t_start < 60 * a.minutes:
        t0 = time.perf_counter()
        pop = es.ask(st)
        G = pop.to_flat()
        rec = tm.run_episodes(spec, G, cfg, a.seed, gen)
        fit = tm.fitness(rec, cfg.steps)                    # [P, E]
        st = es.tell(st, pop, fit)
        dt = time.perf_counter() - t0
        gen_times.append(dt)
        m = {"generation": gen, "mean_fitness": float(fit.mean()), "best_fitness": float(fit.mean(1).max()),
             "foods": float(rec[..., tm.F_FOODS].mean()), "poisons": float(rec[..., tm.F_POISONS].mean()),
             "seconds": dt}
        if a.eval_every and (gen % a.eval_every == 0 or gen == a.generations - 1):
            ev = evaluate(spec, st.arrays["mean"], cfg_eval, a.seed, 1)
            ev["generation"] = gen + 1                       # the mean after this generation's update
            evals.append(ev)
            m["eval"] = ev
            score = ev["fitness"]
            if best_eval is None or score > best_eval[0]:
                best_eval = (score, gen + 1, st.arrays["mean"].copy())
            print(f"gen {gen:5d}  {dt:5.2f} s  mean fit {m['mean_fitness']:.4f}  best {m['best_fitness']:.4f}  "
                  f"| held-out fit {ev['fitness']:.4f}  food/ep {ev['foods_per_episode']:.2f}  "
                  f"poison/ep {ev['poisons_per_episode']:.2f}  avoid {ev['avoid_after_taste']:.3f} "
                  f"({ev['decisions']} dec)  elapsed {time.perf_counter() - t_start:.0f} s", flush=True)
            io.save_checkpoint(out / "genome", {"genome": st.arrays["mean"], "best_genome": best_eval[2]},
                               {"spec": spec.to_dict(), "generation": gen + 1, "best_generation": best_eval[1],
                                "settings": settings})
        mfile.write(json.dumps(m) + "\n")
        mfile.flush()
        metrics.append(m)
        gen += 1
    wall = time.perf_counter() - t_start
    mfile.close()
    final = st.arrays["mean"].copy()
    if best_eval is None:
        best_eval = (None, gen, final)
    print(f"\ntrained {gen} generations in {wall / 60:.1f} min; median {np.median(gen_times):.2f} s/generation "
          f"(seed: 30000 generations in ~24 h on a GPU)")
    rounds = a.final_rounds
    res = {"final": evaluate(spec, final, cfg_eval, a.seed + 7, rounds),
           "best_eval_mean": evaluate(spec, best_eval[2], cfg_eval, a.seed + 7, rounds)}
    res.update({f"baseline_{k}": v for k, v in baselines(cfg_eval, a.seed + 7, rounds).items()})
    print(f"\nheld-out evaluation ({rounds} x {a.eval_episodes} episodes, unseen seed):")
    print("| agent | fitness | foods/ep | poisons/ep | avoid after one taste (decisions) | adapt after swap | "
          "poison deaths | energy deaths |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k, v in res.items():
        print(f"| {k} | {v['fitness']:.4f} | {v['foods_per_episode']:.2f} | {v['poisons_per_episode']:.2f} | "
              f"{100 * v['avoid_after_taste']:.1f} % ({v['decisions']}) | {100 * v['adapt_after_swap']:.1f} % | "
              f"{v['poison_deaths']} | {v['energy_deaths']} |")
    io.save_checkpoint(out / "genome", {"genome": final, "best_genome": best_eval[2]},
                       {"spec": spec.to_dict(), "generation": gen, "best_generation": best_eval[1],
                        "settings": settings, "heldout": res})
    summ = {"generations": gen, "wall_s": wall, "median_s_per_generation": float(np.median(gen_times)),
            "settings": settings, "heldout": res}
    (out / "summary.json").write_text(json.dumps(summ, indent=1, default=float))
    title = (f"ENU T-maze, C={a.channels} H={a.memory} P={a.population} E={a.envs}, "
             f"{gen} generations in {wall / 60:.0f} min")
    plot(metrics, evals, out / "fitness.png", title)
    if a.docs_img:
        shutil.copy(out / "fitness.png", a.docs_img)
        print(f"plot copied to {a.docs_img}")


# ----------------------------------------------------------------------------- ES signal diagnosis
def diagnose(a) -> None:
    """Is there an ES signal at all? For the starting mean and each sigma in --diag-sigmas: the spread
    of the offspring fitness (P offspring, same E env copies) against the env-seed noise of one genome
    (the same genome on other env copies), the correlation of the offspring ranking between two env
    sets, and how often an offspring's action differs from the mean's (same episodes)."""
    spec = ENUNetSpec.tmaze(a.channels, a.memory, seed=a.seed)
    cfg = tm.TMazeConfig(steps=a.steps, net_steps=a.net_steps, envs=a.envs, noise_std=a.noise)
    es0 = OpenES(spec, "paper", mode="float32", population=a.population, sigma=0.01, init_scale=a.init_scale)
    st0 = es0.init(a.seed)
    if a.init:
        arrays, _ = io.load_checkpoint(a.init)
        st0 = es0.init_from(a.seed, arrays["genome"].astype(np.float32))
    mean = st0.arrays["mean"]
    print(f"start mean: {spec.n_params} parameters, rms {np.sqrt(np.mean(mean ** 2)):.4f}, "
          f"max |w| {np.abs(mean).max():.4f}")
    # one genome on many env seeds: the noise an offspring's E-copy fitness carries
    n_rep = 16
    f_rep = np.array([tm.fitness(tm.run_episodes(spec, mean[None, :], cfg, a.seed, 500 + g), cfg.steps)[0].mean()
                      for g in range(n_rep)])
    rec, tr = tm.run_episodes(spec, mean[None, :], cfg, a.seed, 0, trace=True)
    act = tr[0, :, :, 0]
    act = act[act != -9]
    frac = [float(np.mean(act == k)) for k in (tm.RIGHT, tm.UP, tm.DOWN, tm.NONE)]
    print(f"mean genome: E={a.envs}-copy fitness over {n_rep} env seeds {f_rep.mean():.4f} +- {f_rep.std():.4f} "
          f"(sd); actions right/up/down/none {frac[0]:.2f}/{frac[1]:.2f}/{frac[2]:.2f}/{frac[3]:.2f}")
    print("| sigma | sigma / rms(mean) | offspring fitness sd (same envs) | env-seed sd of one genome | "
          "rank corr. between two env sets | actions differing from the mean's |")
    print("|---:|---:|---:|---:|---:|---:|")
    for sg in a.diag_sigmas:
        es = OpenES(spec, "paper", mode="float32", population=a.population, sigma=sg)
        st = es.init_from(a.seed, mean)
        G = es.ask(st).to_flat()
        fa = tm.fitness(tm.run_episodes(spec, G, cfg, a.seed, 0), cfg.steps).mean(1)
        fb = tm.fitness(tm.run_episodes(spec, G, cfg, a.seed, 1), cfg.steps).mean(1)
        ra, rb = np.argsort(np.argsort(fa)), np.argsort(np.argsort(fb))
        corr = float(np.corrcoef(ra, rb)[0, 1])
        _, trp = tm.run_episodes(spec, G, cfg, a.seed, 0, trace=True)
        both = (trp[:, :, :, 0] != -9) & (tr[:, :, :, 0] != -9)
        diff = float(np.mean((trp[:, :, :, 0] != tr[:, :, :, 0])[both]))
        print(f"| {sg:g} | {sg / np.sqrt(np.mean(mean ** 2)):.2f} | {fa.std():.4f} | {f_rep.std():.4f} | "
              f"{corr:+.2f} | {100 * diff:.1f} % |", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", action="store_true", help="measure the kernel speed instead of training")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--memory", type=int, default=8)
    ap.add_argument("--population", type=int, default=32)
    ap.add_argument("--envs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=100, help="environment steps per episode (4 network steps each)")
    ap.add_argument("--net-steps", type=int, default=4)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--sigma", type=float, default=0.01)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--shaping", default="rank5", choices=["rank5", "centered"],
                    help="rank5 = the seed's (rank/N)^5; centered = antisymmetric ranks (lower-variance "
                         "steps: with small P, rank5 + momentum 0.9 random-walks the mean away)")
    ap.add_argument("--generations", type=int, default=30000)
    ap.add_argument("--minutes", type=float, default=55.0)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-episodes", type=int, default=64)
    ap.add_argument("--final-rounds", type=int, default=4, help="held-out rounds of --eval-episodes at the end")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default="", help="start from a saved genome pair (e.g. benchmarks/results/enu_tmaze_c4h8)")
    ap.add_argument("--out", default="runs/enu_tmaze")
    ap.add_argument("--diagnose", action="store_true",
                    help="print the ES signal diagnosis (offspring spread vs env-seed noise per sigma) and stop")
    ap.add_argument("--diag-sigmas", type=lambda t: [float(v) for v in t.split(",")], default=[0.01, 0.03, 0.1, 0.3])
    ap.add_argument("--init-scale", type=float, default=None,
                    help="OpenES init: weights U(+-init_scale) instead of U(+-1/sqrt(fan_in))")
    ap.add_argument("--docs-img", default="", help="also copy the plot here (docs/img/enu_tmaze_fitness.png)")
    a = ap.parse_args(argv)
    if a.diagnose:
        diagnose(a)
    elif a.kernel:
        import numba
        bench_kernel(a.repeats, f"{numba.get_num_threads()} Numba threads")
    else:
        train(a)


if __name__ == "__main__":
    main()
