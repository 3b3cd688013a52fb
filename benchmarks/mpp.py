"""MPP benchmark: one-step NRMSE, transfer to compressible NS, rollout growth, speed, and a
parameter-regression task. ``python benchmarks/mpp.py [--quick]``.

Writes ``benchmarks/results/mpp.json`` and ``.md``. Scale: 32^2 grids, the 0.6M "small"
AViT, hundreds of CPU steps on a shared 2-core machine -- far below the paper's 128^2,
7-400M parameters and 200k GPU steps; compare trends, not values.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from scifm.core import TrainConfig, load_model
from scifm.core.report import repo_path, run_info, write_report
from scifm.mpp.baselines import FNOBaseline, FNOConfig
from scifm.mpp.config import AViTConfig
from scifm.mpp.evaluate import one_step_nrmse, rollout_nrmse
from scifm.mpp.experiment import (
    DataConfig,
    finetune,
    make_fields,
    pretrain,
    simulate_variant,
    system_info,
    windows,
)
from scifm.mpp.model import AViT
from scifm.mpp.rollout import model_step, persistence_step, rollout
from scifm.mpp.train import fit
from scifm.pde.windows import TrajectoryWindows

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {  # one-step NRMSE, McCabe et al. Table 1 (128^2, no fine-tuning)
    "MPP-Ti": {"swe": 0.0066, "diffreact": 0.0168, "cns_m1.0": 0.0442, "cns_m0.1": 0.0312},
    "MPP-B": {"swe": 0.0024, "diffreact": 0.0106, "cns_m1.0": 0.0281, "cns_m0.1": 0.0172},
    "FNO": {"swe": 0.0044, "diffreact": 0.12, "cns_m1.0": 0.1685, "cns_m0.1": 0.2425},
}


def settings(quick: bool) -> dict:
    if quick:
        return dict(
            model="tiny",
            data=DataConfig.preset(
                "tiny",
                systems=("swe", "diffreact", "ins", "cns_m0.1", "cns_m1.0"),
                n_traj=4,
                n_test=1,
                sim_frames=14,
            ),
            pre_steps=20,
            st_steps=10,
            ft_steps=10,
            ns=(1, 2, 4),
            seeds=(0,),
            n_reg=8,
            reg_steps=10,
            roll=8,
            batch=4,
            ft_batch=4,
        )
    return dict(
        model="small",
        data=DataConfig.preset("small", n_traj=8, n_test=2, sim_frames=25),
        pre_steps=500,
        st_steps=240,
        ft_steps=80,
        ns=(2, 4, 8),
        seeds=(0, 1, 2),
        n_reg=40,
        reg_steps=150,
        roll=20,
        batch=8,
        ft_batch=4,
    )


def tcfg(steps: int, lr: float = 2e-3) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        lr=lr,
        warmup_steps=max(1, steps // 10),
        weight_decay=1e-3,
        log_every=max(1, steps // 5),
        progress=False,
    )


def test_windows(test: dict, name: str, T: int, slots=None) -> TrajectoryWindows:
    info = system_info(name)
    index = tuple(slots or info["field_index"])
    return TrajectoryWindows(
        test[name], system=name, n_ctx=T, field_index=index, periodic=info["periodic"]
    )


def k_step_nrmse(step_fn, fields: torch.Tensor, T: int, k: int) -> float:
    """NRMSE at step k of rollouts started at several frames of each test trajectory."""
    starts = range(0, fields.shape[1] - T - k + 1, max(1, (fields.shape[1] - T - k) // 2 or 1))
    return float(np.mean([rollout_nrmse(step_fn, fields, T, k, start=s)[-1] for s in starts]))


def one_step_table(s, mpp, test, train) -> dict:
    T = mpp.config.n_frames
    rows: dict = {"mpp_pretrained": {}, "persistence": {}, "single_task_avit": {}, "fno": {}}
    for name in s["data"].systems:
        info = system_info(name)
        ws = test_windows(test, name, T)
        rows["mpp_pretrained"][name] = one_step_nrmse(
            model_step(mpp, info["field_index"], info["periodic"]), ws
        )
        rows["persistence"][name] = one_step_nrmse(persistence_step, ws)
        torch.manual_seed(0)
        single = AViT(AViTConfig.preset(s["model"]))
        fit(single, windows({name: train[name]}, T), tcfg(s["st_steps"]), batch_size=s["batch"])
        rows["single_task_avit"][name] = one_step_nrmse(
            model_step(single.eval(), info["field_index"], info["periodic"]), ws
        )
        torch.manual_seed(0)
        fno = FNOBaseline(FNOConfig.preset("small", n_fields=len(info["fields"]), n_frames=T))
        fit(fno, windows({name: train[name]}, T), tcfg(s["st_steps"]), batch_size=s["batch"])
        rows["fno"][name] = one_step_nrmse(fno.eval(), ws)
        print("one-step", name, {k: round(v[name], 4) for k, v in rows.items()}, flush=True)
    return rows


def transfer(s, no_cns_path: Path, test: dict, train: dict) -> list[dict]:
    out = []
    for name in ("cns_m0.1", "cns_m1.0"):
        info = system_info(name)
        for n in s["ns"]:
            for seed in s["seeds"]:
                for init in ("pretrained", "scratch"):
                    torch.manual_seed(seed)
                    if init == "pretrained":
                        model = load_model(no_cns_path)[1]
                    else:
                        model = AViT(AViTConfig.preset(s["model"]))
                    sub = train[name][
                        torch.randperm(
                            train[name].shape[0], generator=torch.Generator().manual_seed(seed)
                        )[:n]
                    ]
                    cfg = tcfg(s["ft_steps"]).replace(seed=seed)
                    finetune(model, name, sub, cfg, batch_size=s["ft_batch"], data_seed=seed)
                    step = model_step(model.eval(), info["field_index"], info["periodic"])
                    T = model.config.n_frames
                    rec = {
                        "system": name,
                        "n_traj": n,
                        "seed": seed,
                        "init": init,
                        "next_step": one_step_nrmse(step, test_windows(test, name, T)),
                        "rollout_5": k_step_nrmse(step, test[name], T, 5),
                    }
                    print("transfer", rec, flush=True)
                    out.append(rec)
    return out


def rollout_growth(s, mpp, test) -> dict:
    T, k = mpp.config.n_frames, s["roll"]
    out = {}
    for name in s["data"].systems:
        info = system_info(name)
        f = test[name]
        steps = min(k, f.shape[1] - T)
        out[name] = {
            "mpp_pretrained": rollout_nrmse(
                model_step(mpp, info["field_index"], info["periodic"]), f, T, steps
            ).tolist(),
            "persistence": rollout_nrmse(persistence_step, f, T, steps).tolist(),
        }
    return out


def speed(s, mpp) -> dict:
    d, T = s["data"], mpp.config.n_frames
    out = {}
    for name in d.systems:
        info = system_info(name)
        t0 = time.perf_counter()
        traj = simulate_variant(name, 1, res=d.res, n_frames=d.sim_frames, seed=123)
        t_solver = time.perf_counter() - t0
        steps = d.sim_frames - T
        t0 = time.perf_counter()
        rollout(model_step(mpp, info["field_index"], info["periodic"]), traj.fields[:, :T], steps)
        t_model = time.perf_counter() - t0
        out[name] = {
            "solver_s": t_solver,
            "surrogate_s": t_model,
            "frames": steps,
            "speedup": t_solver / t_model,
        }
    return out


def regression(s, mpp, cache: str) -> dict:
    """Regress log10(nu) of INS from 4-frame windows: frozen MPP features vs scratch."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    from scifm.core import train
    from scifm.mpp.downstream import (
        ParamRegressor,
        pooled_features,
        regression_batches,
        regression_loss,
    )

    d, T, n = s["data"], mpp.config.n_frames, s["n_reg"]
    rng = np.random.default_rng(7)
    log_nu = rng.uniform(-3.0, -1.5, size=n)
    traj = simulate_variant(
        "ins", n, res=d.res, n_frames=d.sim_frames, seed=777, nu=torch.tensor(10**log_nu)
    ).fields.float()
    starts = range(0, traj.shape[1] - T + 1, T)
    x = torch.cat([traj[:, s0 : s0 + T] for s0 in starts])  # (n * n_starts, T, C, H, W)
    y = np.tile(log_nu, len(starts))
    is_train = np.tile(np.arange(n) < (2 * n) // 3, len(starts))
    info = system_info("ins")
    mu, sd = y[is_train].mean(), y[is_train].std()
    out = {
        "target": "log10(nu) of INS, nu ~ logU(1e-3, 3e-2)",
        "n_traj": n,
        "windows_train": int(is_train.sum()),
        "windows_test": int((~is_train).sum()),
    }

    def ridge_r2(model):
        feats = pooled_features(model, x, info["field_index"], info["periodic"]).numpy()
        r = RidgeCV(alphas=np.logspace(-4, 3, 15)).fit(feats[is_train], y[is_train])
        return float(r2_score(y[~is_train], r.predict(feats[~is_train])))

    out["frozen_pretrained_ridge_r2"] = ridge_r2(mpp)
    torch.manual_seed(0)
    out["frozen_random_init_ridge_r2"] = ridge_r2(AViT(mpp.config).eval())
    torch.manual_seed(0)
    reg = ParamRegressor(AViTConfig.preset(s["model"]))
    target = torch.tensor((y - mu) / sd, dtype=torch.float32)
    xb = regression_batches(
        x[torch.as_tensor(is_train)],
        target[torch.as_tensor(is_train)],
        info["field_index"],
        info["periodic"],
        s["batch"],
    )
    train(reg, regression_loss, xb, tcfg(s["reg_steps"], lr=1e-3), device="cpu")
    with torch.no_grad():
        pred = reg.eval()(x[torch.as_tensor(~is_train)], info["field_index"], info["periodic"])
    out["scratch_trained_r2"] = float(r2_score(y[~is_train], pred.numpy() * sd + mu))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    ap.add_argument(
        "--pretrained",
        default=None,
        help="all-systems checkpoint to reuse (default: assets/mpp/avit_small when "
        "its data config matches, else train one)",
    )
    ap.add_argument("--cache", default=str(ROOT / "runs" / "mpp_cache"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    s = settings(args.quick)
    t_start = time.perf_counter()
    d = s["data"]
    train_f = make_fields(d, "train", cache_dir=args.cache)
    test_f = make_fields(d, "test", n=d.n_test, cache_dir=args.cache)
    runs = ROOT / "runs" / ("mpp_bench_quick" if args.quick else "mpp_bench")
    from scifm.mpp.experiment import load_surrogate

    mpp_path = Path(args.pretrained or ROOT / "assets" / "mpp" / "avit_small")
    reused = False
    pre_steps_all = s["pre_steps"]
    if not args.quick and (mpp_path / "config.json").exists():
        mpp, _ = load_surrogate(mpp_path)
        reused = True
        manifest = mpp_path.parent / "MANIFEST.json"
        if manifest.exists():  # the shipped model's own training length
            pre_steps_all = json.loads(manifest.read_text())["train"]["steps"]
    else:
        mpp, _ = pretrain(
            AViTConfig.preset(s["model"]),
            d,
            tcfg(s["pre_steps"]),
            batch_size=s["batch"],
            fields=train_f,
        )
    mpp.eval()
    no_cns = d.replace(systems=("swe", "diffreact", "ins"))
    torch.manual_seed(0)
    pretrain(
        AViTConfig.preset(s["model"]),
        no_cns,
        tcfg(int(s["pre_steps"] * 0.6)),
        batch_size=s["batch"],
        out_dir=runs / "no_cns",
        fields={k: train_f[k] for k in no_cns.systems},
    )
    info = run_info(
        data={
            "pde": f"simulated by scifm.pde (mpp.experiment.make_fields), {d.to_dict()}",
            "split": f"{d.n_traj} train / {d.n_test} test trajectories per system, "
            "separate seeds (experiment.variant_seed)",
            "cache": repo_path(args.cache),
        },
        note="CPU run, 1 torch thread, on a machine shared with other jobs",
    )
    results = {
        "scale": {
            "res": d.res,
            "model": s["model"],
            "params": mpp.n_params(),
            "window_T": mpp.config.n_frames,
            "train_traj_per_system": d.n_traj,
            "test_traj_per_system": d.n_test,
            "frames_per_traj": d.sim_frames,
            "pretrain_steps_all": pre_steps_all,
            "pretrain_steps_no_cns": int(s["pre_steps"] * 0.6),
            "single_task_steps": s["st_steps"],
            "finetune_steps": s["ft_steps"],
            "batch": s["batch"],
            "all_systems_model": repo_path(mpp_path) if reused else "trained here",
        },
        "published_one_step": PUBLISHED,
    }
    results["one_step"] = one_step_table(s, mpp, test_f, train_f)
    results["transfer"] = transfer(s, runs / "no_cns" / "checkpoint", test_f, train_f)
    results["rollout"] = rollout_growth(s, mpp, test_f)
    results["speed"] = speed(s, mpp)
    results["regression"] = regression(s, mpp, args.cache)
    results["wall_s"] = round(time.perf_counter() - t_start, 1)
    stem = "mpp_quick" if args.quick else "mpp"
    md = to_markdown(results)
    write_report(stem, results, md, info=info, title="MPP benchmark", out_dir=args.out)
    print(md)
    return 0


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def to_markdown(r: dict) -> str:
    sc = r["scale"]
    systems = list(r["one_step"]["persistence"])
    lines = [
        "The 32^2 demo benchmark (every model trained here in minutes). The evidence at 64^2 "
        "(100 training trajectories per system, the shipped `assets/mpp/avit_small_64`, 64 "
        "tokens a frame) is in `mpp_evidence.md` (one-step against persistence and the "
        "single-task baselines, 50-step rollouts, transfer to compressible NS over N = 1-32, "
        "full vs frozen fine-tuning), `mpp_speed.md` (solver vs surrogate at 32^2-128^2, "
        "batch 1 and 16, NRMSE at 128^2), `mpp_regression.md` (INS viscosity) and "
        "`mpp_data.md` / `pde_generation.md` (the data and its batched generation).\n",
        f"Scale: {sc['res']}^2 grids, AViT '{sc['model']}' ({sc['params']:,} params), "
        f"T={sc['window_T']}, {sc['train_traj_per_system']} train / "
        f"{sc['test_traj_per_system']} test trajectories per system, "
        f"{sc['pretrain_steps_all']} pretraining steps (batch {sc['batch']}). The paper: "
        "128^2, T=16, 7-400M params, 200k steps on 8 GPUs. Total wall time "
        f"{r['wall_s']} s.\n",
        "## One-step NRMSE (held-out trajectories)\n",
        "| model | " + " | ".join(systems) + " |",
        "|---" * (len(systems) + 1) + "|",
    ]
    for model, row in r["one_step"].items():
        lines.append(f"| {model} | " + " | ".join(_fmt(row[s]) for s in systems) + " |")
    for model, row in r["published_one_step"].items():
        lines.append(
            f"| published {model} (128^2) | "
            + " | ".join(_fmt(row.get(s, "-")) for s in systems)
            + " |"
        )
    lines += [
        "\n## Transfer to compressible NS (pretrained without CNS vs scratch)\n",
        "| system | N traj | init | next-step NRMSE | 5-step NRMSE | seeds |",
        "|---|---|---|---|---|---|",
    ]
    groups: dict = {}
    for rec in r["transfer"]:
        groups.setdefault((rec["system"], rec["n_traj"], rec["init"]), []).append(rec)
    for (sys_, n, init), recs in groups.items():
        a = np.mean([x["next_step"] for x in recs])
        b = np.mean([x["rollout_5"] for x in recs])
        lines.append(f"| {sys_} | {n} | {init} | {a:.4f} | {b:.4f} | {len(recs)} |")
    lines += [
        "\n## Rollout NRMSE growth (pretrained MPP vs persistence)\n",
        "| system | step 1 | step 5 | step 10 | last step | persistence last |",
        "|---|---|---|---|---|---|",
    ]
    for sys_, c in r["rollout"].items():
        m, p = c["mpp_pretrained"], c["persistence"]
        pick = [m[i] if i < len(m) else float("nan") for i in (0, 4, 9)]
        lines.append(
            f"| {sys_} ({len(m)} steps) | "
            + " | ".join(f"{v:.4f}" for v in pick)
            + f" | {m[-1]:.4f} | {p[-1]:.4f} |"
        )
    lines += [
        "\n## Speed: solver vs surrogate for one trajectory (CPU, batch 1)\n",
        "| system | frames | solver s | surrogate s | solver/surrogate |",
        "|---|---|---|---|---|",
    ]
    for sys_, v in r["speed"].items():
        lines.append(
            f"| {sys_} | {v['frames']} | {v['solver_s']:.3f} | {v['surrogate_s']:.3f} | "
            f"{v['speedup']:.2f}x |"
        )
    g = r["regression"]
    lines += [
        "\n## Parameter regression: " + g["target"] + "\n",
        f"{g['windows_train']} train / {g['windows_test']} test windows (held-out trajectories).\n",
        "| features | test R^2 |",
        "|---|---|",
        f"| frozen pretrained MPP + ridge | {g['frozen_pretrained_ridge_r2']:.3f} |",
        f"| frozen random-init AViT + ridge | {g['frozen_random_init_ridge_r2']:.3f} |",
        f"| AViT trained from scratch | {g['scratch_trained_r2']:.3f} |",
        "",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
