"""MPP evidence at 64^2 (issue 13): transfer to a held-out system, and long rollouts.

Reads the files of ``scripts/mpp_data.sh`` (PDEBench layout, our solvers) and a checkpoint of
``scripts/mpp_pretrain.sh`` (pretrained WITHOUT compressible NS)::

    # transfer: fine-tune on N in {1,2,4,8,16,32} CNS (M=0.1) trajectories, pretrained vs
    # a scratch model of the same size, the same steps, data order and learning rate
    python benchmarks/mpp_evidence.py transfer --ckpt runs/mpp64_evidence/pretrained_step2200 \\
        --steps 200 --seeds 0 1 2
    # the same with the processor frozen (issue 13: fine-tuning "full and with frozen
    # processor"): only field embedding, stem and decoder train; the scratch control keeps
    # its random processor. Cells <variant>_<init>_io_n<N>_s<seed> beside the full ones
    python benchmarks/mpp_evidence.py transfer --ckpt runs/mpp64_evidence/pretrained_step2200 \\
        --steps 200 --seeds 0 1 2 --trainable io
    # full vs frozen processor from ONE checkpoint, the shipped asset (float16 weights load as
    # float32; its step comes from its model card, as it keeps no trainer state); one seed
    python benchmarks/mpp_evidence.py transfer --ckpt assets/mpp/avit_small_64 --steps 200 \\
        --seeds 0 --trainable all --tag asset3200
    python benchmarks/mpp_evidence.py transfer --ckpt assets/mpp/avit_small_64 --steps 200 \\
        --seeds 0 --trainable io --tag asset3200
    # Mach 1.0 (needs ONLY=cns_m1.0 scripts/mpp_data.sh first)
    python benchmarks/mpp_evidence.py transfer --ckpt runs/mpp64_evidence/pretrained_step2200 \\
        --steps 200 --seeds 0 1 2 --variant cns_m1.0
    # one-step NRMSE per system on the 21-frame held-out test files, against persistence
    python benchmarks/mpp_evidence.py onestep --ckpt runs/mpp64_evidence/pretrained_step3200
    # 50-step rollouts on the long held-out trajectories, against persistence
    python benchmarks/mpp_evidence.py rollout --ckpt runs/mpp64_evidence/pretrained_step3200
    # the no-recipe ablation (issue 13 item 2, one seed): the paper's one-step loss, cut at the
    # same step; its cells carry the tag (rollout_paper_<variant>_step3200, ...)
    RECIPE=paper STOP_AT=3200 OUT=runs/mpp64_pretrain_paper scripts/mpp_pretrain.sh
    python benchmarks/mpp_evidence.py onestep --tag paper \\
        --ckpt runs/mpp64_pretrain_paper/checkpoint
    python benchmarks/mpp_evidence.py rollout --tag paper \\
        --ckpt runs/mpp64_pretrain_paper/checkpoint
    # item 1's baselines: a single-task AViT (the same preset, recipe and code path as the
    # pretraining, one system's files) and an FNO (neuraloperator) per pretraining system, each
    # at the pretrained model's budget (its steps x batch, on the same LR schedule), evaluated
    # like ``onestep`` at every milestone
    python benchmarks/mpp_evidence.py baselines --ckpt runs/mpp64_evidence/pretrained_step3200
    # ... or from the shipped asset, which records no schedule: give scripts/mpp_pretrain.sh's
    python benchmarks/mpp_evidence.py baselines --ckpt assets/mpp/avit_small_64 --systems swe \
        --train small --train-set steps=20000 warmup_steps=500 log_every=50 ckpt_every=200
    # the shipped step-8,000 model at equal budget: baselines with its recipe (stable_random)
    # on the schedule it records (the 8,000-step cosine of its warm-started leg) as one run
    # from step 0, cut at a third and at 8,000 (their own table in the report)
    python benchmarks/mpp_evidence.py baselines --ckpt assets/mpp/avit_small_64 --systems ins \
        --archs avit --milestones 2667 8000 --tag eq8000
    # the pretrained model's replicas (item 1's seeds): SEED=1 and 2 of scripts/mpp_pretrain.sh
    RECIPE=paper STOP_AT=3200 SEED=1 OUT=runs/mpp64_pretrain_paper_s1 scripts/mpp_pretrain.sh
    python benchmarks/mpp_evidence.py onestep --tag paper \
        --ckpt runs/mpp64_pretrain_paper_s1/checkpoint
    # the single-task runs still on disk (baseline_ARCH_SYS[_TAG]) rolled out like the
    # pretrained one; and their train vs held-out gap
    python benchmarks/mpp_evidence.py baseline-rollout
    python benchmarks/mpp_evidence.py gap --ckpt runs/mpp64_evidence/pretrained_step3200
    # gather every finished cell into benchmarks/results/mpp_evidence.{json,md}
    # (benchmarks/mpp_evidence_report.py); --ckpt names the main run (its learning curve, and
    # the recipe of the cells that carry none)
    python benchmarks/mpp_evidence.py report --ckpt runs/mpp64_evidence/pretrained_step3200
    # a lost runs/: write the cells (and the thinned pretraining curve) the committed report
    # holds back under --root (existing cells are kept), then add cells and report again
    python benchmarks/mpp_evidence.py restore --from benchmarks/results/mpp_evidence.json

Each (init, trainable, N, seed) cell and each rollout writes its own JSON under ``--root``
(default ``runs/mpp64_evidence``) and is skipped when present, so an interrupted study resumes
where it stopped. A ``--tag`` goes into the cell names and records; untagged cells (all
written before tags existed) belong to the main run. One thread (``OMP_NUM_THREADS=1``)
unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from mpp_evidence_report import (
    FNO_PRESET,
    TRAINABLE,
    baseline_cell,
    baseline_rollout_cell,
    gap_cell,
    replica,
    step_cell,
    transfer_cell,
    write_cell,
)  # the report half, beside this script
from mpp_evidence_report import report as write_evidence_report
from mpp_evidence_report import restore as restore_cells

from scifm.core import TrainConfig, load_checkpoint, load_model
from scifm.core.report import repo_path
from scifm.core.rng import seeded
from scifm.mpp.baselines import FNOBaseline, FNOConfig
from scifm.mpp.config import AViTConfig
from scifm.mpp.data import file_datasets, system_info
from scifm.mpp.evaluate import (
    one_step_nrmse,
    one_step_nrmse_fields,
    one_step_summary,
    rollout_nrmse,
)
from scifm.mpp.experiment import finetune, load_surrogate
from scifm.mpp.model import AViT
from scifm.mpp.recipe import TrainRecipe
from scifm.mpp.rollout import model_step, persistence_step
from scifm.mpp.train import fit
from scifm.pde.files import read_any
from scifm.pde.filewindows import find_files

ROOT = Path(__file__).resolve().parents[1]


def load_fields(folder: Path, limit: int | None = None) -> torch.Tensor:
    """All trajectories (N, F, C, H, W) of a folder of PDEBench/Well files, in file order."""
    parts, have = [], 0
    for p in find_files([str(folder)]):
        if limit is not None and have >= limit:
            break
        t = read_any(p, limit=None if limit is None else limit - have)
        parts.append(t.fields.float())
        have += t.fields.shape[0]
    if not parts:
        raise FileNotFoundError(f"{folder}: no PDEBench or Well files")
    return torch.cat(parts)


def _tag(text: str | None) -> str | None:
    """``--tag``: a run's name in its cells (letters, digits, '.', '-'; '' = untagged)."""
    if not text:
        return None
    if not re.fullmatch(r"[A-Za-z0-9.-]+", text):
        raise ValueError(f"--tag {text!r}: expected letters, digits, '.' or '-' (it names cells)")
    return text


def _recipe_name(ckpt: str | Path) -> str:
    """The TrainRecipe a checkpoint was trained with: a preset's name, or the nearest
    preset's and the fields that differ from it (``stable_random loss_norm=rms``)."""
    return _recipe_of(load_checkpoint(ckpt)["record"].get("extra", {}))


def _recipe_of(extra: dict) -> str:
    """``_recipe_name`` of a checkpoint record's ``extra``."""
    stored = extra.get("recipe")
    if not stored:  # fit() records a recipe only when one is used: the paper's one-step NMSE
        return "paper"
    # a record older than a field has its default; the seed of the draws is no part of the
    # recipe (a baseline replica, ``--seeds``, shifts it)
    stored = TrainRecipe(**stored).to_dict() | {"seed": 0}
    best: tuple[int, str, list[str]] | None = None
    for name in TrainRecipe.PRESETS:  # in their order: the first of the nearest wins a tie
        preset = TrainRecipe.preset(name).to_dict() | {"seed": 0}
        diff = [f"{k}={stored[k]}" for k in preset if preset[k] != stored[k]]
        if best is None or len(diff) < best[0]:
            best = (len(diff), name, diff)
    _, name, diff = best
    return " ".join([name, *diff])


def _ckpt_step(pre: dict) -> int | None:
    """A loaded checkpoint's (``load_checkpoint``) training step: its trainer state's, else
    its model card's (a shipped asset, ``scifm.mpp.package``, keeps no trainer state)."""
    step = (pre.get("trainer_state") or {}).get("step")
    return step if step is not None else pre["record"].get("extra", {}).get("card", {}).get("steps")


def _pretrained(args: argparse.Namespace) -> tuple[AViT, dict, int | None, dict]:
    """The checkpoint's surrogate (eval mode), its systems, its training step, and the
    identity its cells carry: the run's ``--tag``, the checkpoint, its training recipe and
    its seed (``SEED`` of scripts/mpp_pretrain.sh: a replica, evaluated under its run's tag,
    has the seed in its cell names)."""
    torch.set_num_threads(args.threads)
    model, systems = load_surrogate(args.ckpt)
    model.eval()
    pre = load_checkpoint(args.ckpt)
    extra = pre["record"].get("extra", {})
    run = {"tag": _tag(args.tag), "ckpt": repo_path(args.ckpt), "recipe": _recipe_of(extra),
           "seed": int((extra.get("train") or {}).get("seed") or 0)}  # fmt: skip
    return model, systems, _ckpt_step(pre), run


def _same_slots(cell: Path, variant: str, slots: list[int] | None) -> None:
    """A finished pretrained cell is kept only if it used the slots asked for (None: the
    variant's reserved ones; a cell without the record predates --slots): a cell of the same
    tag made with other slots is refused by name (scratch cells are not checked:
    ``--reuse-scratch`` copies another run's)."""
    reserved = list(system_info(variant)["field_index"])
    stored = list(json.loads(cell.read_text()).get("field_index") or reserved)
    if stored != list(slots or reserved):
        raise SystemExit(
            f"{cell}: made with slots {stored}, asked for {list(slots or reserved)}; "
            "give this run another --tag"
        )


def transfer(args: argparse.Namespace) -> int:
    if args.slots is not None and not args.tag:
        raise SystemExit("transfer --slots: name the run with --tag (its cells are not the "
                         "reserved slots' run)")  # fmt: skip
    torch.set_num_threads(args.threads)
    root, tag = Path(args.root), _tag(args.tag)
    pre = load_checkpoint(args.ckpt)
    step_no, pre_cfg = _ckpt_step(pre), AViTConfig(**pre["record"]["config"])
    for seed in args.seeds:  # every kept cell checked before data load or training
        for n in args.ns:
            done = transfer_cell(root, args.variant, tag, "pretrained", args.trainable, n, seed)
            if done.exists():
                _same_slots(done, args.variant, args.slots)
    pool = load_fields(Path(args.data) / "train" / args.variant, limit=max(args.ns))
    test_files = [f"{args.variant}={Path(args.data) / 'test' / args.variant}"]
    for seed in args.seeds:
        # N trajectories drawn once per seed; the smaller sets are prefixes of the larger
        order = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))
        for n in args.ns:
            for init in ("pretrained", "scratch"):
                out = transfer_cell(root, args.variant, tag, init, args.trainable, n, seed)
                if out.exists():
                    continue
                if init == "scratch" and args.reuse_scratch is not None:
                    if _reuse_scratch(args, root, out, n, seed):
                        continue
                if init == "pretrained":
                    model, systems = load_surrogate(args.ckpt)
                else:
                    with seeded(seed):  # the fresh model's init only
                        model, systems = AViT(pre_cfg), {}
                cfg = TrainConfig(
                    steps=args.steps, lr=args.lr, warmup_steps=max(1, args.steps // 10),
                    log_every=max(1, args.steps // 10), progress=False, seed=seed,
                )  # fmt: skip
                t0 = time.perf_counter()
                model, result, systems = finetune(
                    model, args.variant, pool[order[:n]], cfg, batch_size=args.batch_size,
                    data_seed=seed, device="cpu", systems=systems, trainable=args.trainable,
                    field_index=args.slots,
                )  # fmt: skip
                seconds = time.perf_counter() - t0
                model.eval()
                info = systems[args.variant]
                test = file_datasets(test_files, n_frames=model.config.n_frames,
                                     systems=systems)[args.variant]  # fmt: skip
                step = model_step(model, info["field_index"], info["periodic"])
                rec = {
                    "variant": args.variant, "init": init, "n_traj": n, "seed": seed,
                    "trainable": args.trainable, "tag": tag, "ckpt": repo_path(args.ckpt),
                    "ckpt_step": step_no, "field_index": list(info["field_index"]),
                    "trainable_params": sum(p.numel() for p in model.parameters()
                                            if p.requires_grad),
                    "steps": args.steps, "lr": args.lr, "batch_size": args.batch_size,
                    "train_seconds": round(seconds, 1),
                    "final_loss": result.history[-1].get("loss") if result.history else None,
                    "test_windows": len(test),
                    "one_step_nrmse": one_step_nrmse(step, test),
                    "persistence_nrmse": one_step_nrmse(persistence_step, test),
                }  # fmt: skip
                write_cell(out, rec)
                print(json.dumps(rec), flush=True)
    return 0


def _reuse_scratch(args: argparse.Namespace, root: Path, out: Path, n: int, seed: int) -> bool:
    """Copy another run's scratch cell of the same (N, seed, steps, lr, batch, trainable).

    A scratch model depends on none of the pretrained checkpoint (its init is seeded by the
    cell's seed, its data order by the same), so one run's scratch cells serve every run;
    the copy names its source. False when there is none to reuse.
    """
    other = transfer_cell(root, args.variant, _tag(args.reuse_scratch), "scratch",
                          args.trainable, n, seed)  # fmt: skip
    if not other.exists():
        return False
    rec = json.loads(other.read_text())
    same = (rec["steps"], rec["lr"], rec["batch_size"], rec.get("trainable") or "all")
    if same != (args.steps, args.lr, args.batch_size, args.trainable):
        return False
    rec.update(tag=_tag(args.tag), reused_from=repo_path(other.parent), ckpt=repo_path(args.ckpt))
    write_cell(out, rec)
    print(json.dumps(rec), flush=True)
    return True


def rollout(args: argparse.Namespace) -> int:
    root = Path(args.root)
    model, systems, step_no, run = _pretrained(args)
    for folder in sorted((Path(args.data) / "test_long").iterdir()):
        name = folder.name
        out = step_cell(root, "rollout", run["tag"], name, step_no, run["seed"])
        if out.exists() or not folder.is_dir():
            continue
        if not any(folder.glob("*.h*5")):
            print(f"{folder}: no files yet (still generating?); skipped", flush=True)
            continue
        info = systems.get(name, system_info(name))
        curves = _rollout_curves(model, info, folder, args.steps)
        curves["avit"] = curves.pop("model")  # its cells call it "avit" (the physics page reads)
        rec = {"variant": name, "ckpt_step": step_no, "trained_on": name in systems, **run,
               **curves}  # fmt: skip
        write_cell(out, rec)
        every = max(1, rec["steps"] // 5)
        print(name, "avit", rec["avit"][::every], "persistence", rec["persistence"][::every],
              flush=True)  # fmt: skip
    return 0


def _rollout_curves(model: torch.nn.Module, info: dict, folder: Path, steps: int) -> dict:
    """NRMSE(t) of ``model`` and of persistence, rolled out from the first frames of every
    trajectory in ``folder`` for up to ``steps`` steps (the record a rollout cell keeps)."""
    T = model.config.n_frames
    fields = load_fields(folder)
    n_steps = min(steps, fields.shape[1] - T)
    t0 = time.perf_counter()
    ours = rollout_nrmse(model_step(model, info["field_index"], info["periodic"]),
                         fields, T, n_steps)  # fmt: skip
    seconds = time.perf_counter() - t0
    pers = rollout_nrmse(persistence_step, fields, T, n_steps)
    return {"n_traj": int(fields.shape[0]), "context": T, "steps": n_steps,
            "seconds": round(seconds, 1), "model": [round(float(v), 5) for v in ours],
            "persistence": [round(float(v), 5) for v in pers]}  # fmt: skip


def onestep(args: argparse.Namespace) -> int:
    """One-step NRMSE on every held-out 21-frame test folder, against persistence."""
    root = Path(args.root)
    model, systems, step_no, run = _pretrained(args)
    for folder in sorted((Path(args.data) / "test").iterdir()):
        name = folder.name
        out = step_cell(root, "onestep", run["tag"], name, step_no, run["seed"])
        if out.exists() or not any(folder.glob("*.h*5")):
            continue
        info = systems.get(name, system_info(name))
        test = file_datasets([f"{name}={folder}"], n_frames=model.config.n_frames,
                             systems={**systems, name: info})[name]  # fmt: skip
        step = model_step(model, info["field_index"], info["periodic"])
        rec = {
            "variant": name, "ckpt_step": step_no, "trained_on": name in systems, **run,
            "windows": len(test), **one_step_summary(step, test, info["fields"]),
        }  # fmt: skip
        write_cell(out, rec)
        print(json.dumps(rec), flush=True)
    return 0


def _baseline_model(arch: str, pre: dict, info: dict) -> torch.nn.Module:
    """A fresh single-system model: the pretrained AViT's preset, or an FNO for its fields."""
    cfg = AViTConfig(**pre["config"])
    if arch == "avit":
        return AViT(cfg)
    return FNOBaseline(FNOConfig.preset(FNO_PRESET, n_fields=len(info["fields"]),
                                        n_frames=cfg.n_frames))  # fmt: skip


def _pretraining_schedule(args: argparse.Namespace, extra: dict) -> TrainConfig:
    """The pretraining run's TrainConfig: from its checkpoint, else from --train/--train-set.

    A trainer checkpoint records its TrainConfig; a packaged asset (fp16 weights and a model
    card) does not, so its schedule must be given as the training command gave it (the card's
    ``made_by.training``, e.g. scripts/mpp_pretrain.sh: ``--train small --train-set
    steps=20000 warmup_steps=500``). Both at once is refused: one schedule, one source.
    """
    if extra.get("train"):
        if args.train or args.train_set:
            raise ValueError(
                f"{args.ckpt}: records its own training schedule; drop --train/--train-set"
            )
        return TrainConfig(**{**extra["train"], "betas": tuple(extra["train"]["betas"]),
                              "progress": False})  # fmt: skip
    if not args.train:
        made_by = (
            (extra.get("card") or {}).get("made_by", {}).get("training", "its training command")
        )
        raise ValueError(
            f"{args.ckpt}: records no training schedule (a packaged asset); pass the one "
            f"{made_by} used, e.g. --train small --train-set steps=20000 warmup_steps=500"
        )
    return replace(TrainConfig.preset(args.train).with_overrides(args.train_set), progress=False)


def baselines(args: argparse.Namespace) -> int:
    """Item 1: single-task AViT and FNO per pretraining system at the pretrained budget.

    Budget = the pretrained checkpoint's optimizer steps x batch (its recorded batch size),
    on its LR schedule (``TrainConfig.stop_at`` cuts the same long schedule at each
    milestone), with its stability recipe. Each model trains in ``root/baseline_ARCH_SYS``
    (``_TAG`` after it for a ``--recipe`` ablation, ``_sN`` for a ``--seeds`` replica N > 0;
    resumable from its checkpoint) and writes one cell per milestone.
    """
    torch.set_num_threads(args.threads)
    if any(seed < 0 for seed in args.seeds):
        raise ValueError(f"--seeds {args.seeds}: a seed is a non-negative integer")
    root = Path(args.root)
    pre = load_checkpoint(args.ckpt)
    record, extra = pre["record"], pre["record"]["extra"]
    pre_step = _ckpt_step(pre)
    milestones = sorted(set(args.milestones or [pre_step]))
    if not milestones or milestones[0] is None:
        raise ValueError(f"{args.ckpt}: no trainer step recorded; pass --milestones")
    train_cfg = _pretraining_schedule(args, extra)
    if milestones[-1] > train_cfg.steps:
        raise ValueError(
            f"--milestones {milestones}: beyond the schedule's {train_cfg.steps} steps"
        )
    recipe = TrainRecipe(**extra["recipe"]) if extra.get("recipe") else None
    tag = _tag(args.tag)
    if args.recipe or args.recipe_set:  # an ablation of the baselines' recipe: own cells
        flag = "--recipe " + args.recipe if args.recipe else "--recipe-set"
        if tag is None:
            raise ValueError(
                f"{flag}: give a --tag, so its cells do not replace the "
                "baselines trained with the pretraining's recipe"
            )
        recipe = TrainRecipe.preset(args.recipe) if args.recipe else (recipe or TrainRecipe())
    recipe_name = args.recipe or _recipe_of(extra)
    if args.recipe_set:  # one component changed: named by its base and the change
        recipe = recipe.with_overrides(args.recipe_set)
        recipe_name = f"{recipe_name} {' '.join(args.recipe_set)}"
    batch = extra.get("batch_size") or (extra.get("card") or {}).get("batch_size")
    if not batch:
        raise ValueError(f"{args.ckpt}: records no batch size (neither trainer state nor card)")
    res, frames = extra["data"]["res"], extra["data"]["sim_frames"]
    T = AViTConfig(**record["config"]).n_frames
    for name in args.systems or sorted(extra["systems"]):
        info = system_info(name)
        data = file_datasets([f"{name}={Path(args.data) / 'train' / name}"], n_frames=T,
                             res=res, frames=frames)  # fmt: skip
        test_dir = Path(args.data) / "test" / name
        test = file_datasets([f"{name}={test_dir}"], n_frames=T,
                             systems={name: info})[name]  # fmt: skip
        for arch, seed in ((a, sd) for a in args.archs for sd in args.seeds):
            parts = ("baseline", arch, name, tag, replica(seed))  # seed 0: the first names
            run_dir = root / "_".join(p for p in parts if p)
            run_recipe = recipe if recipe is None or not seed else replace(
                recipe, seed=recipe.seed + seed)  # fmt: skip
            for stop in milestones:
                out = baseline_cell(root, arch, name, stop, tag, seed)
                if out.exists():
                    continue
                # seed 0 keeps the first runs' draws (torch's default stream at start-up);
                # seed s > 0 seeds the initialisation and shifts the data order and noise by s
                with seeded(seed) if seed else nullcontext():
                    model = _baseline_model(arch, record, info)
                t0 = time.perf_counter()
                fit(model, data, replace(train_cfg, stop_at=stop),
                    batch_size=batch, data_seed=extra["data"]["seed"] + seed,
                    device="cpu", out_dir=run_dir, recipe=run_recipe,
                    extra={"baseline_of": repo_path(args.ckpt), "system": name,
                           "seed": seed})  # fmt: skip
                model.eval()
                step = model_step(model, info["field_index"], info["periodic"])
                per_field = one_step_nrmse_fields(step, test)
                rec = {
                    "variant": name, "arch": arch, "step": stop, "tag": tag, "seed": seed,
                    "recipe": recipe_name, "batch_size": batch, "samples": stop * batch,
                    "recipe_config": run_recipe.to_dict() if run_recipe else None,
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "baseline_of": repo_path(args.ckpt),
                    "seconds_this_call": round(time.perf_counter() - t0, 1),
                    "windows": len(test), "nrmse": float(np.mean(per_field)),
                    "nrmse_fields": dict(zip(info["fields"], per_field, strict=True)),
                    "persistence": one_step_nrmse(persistence_step, test),
                }  # fmt: skip
                write_cell(out, rec)
                print(json.dumps(rec), flush=True)
    return 0


def _own_last(step):
    """A predictor whose window's last frame is replaced by its own prediction of that frame
    from the frames before it (the graded input of a 2-step pushforward)."""

    def predict(x: torch.Tensor) -> torch.Tensor:
        own = step(x[:, :-1])
        return step(torch.cat([x[:, :-1], own[:, None].to(x.dtype)], dim=1))

    return predict


def _baseline_runs(root: Path) -> list[tuple[str, str, str | None, int, Path]]:
    """(arch, system, tag, seed, checkpoint) of every ``baselines`` run folder under ``root``
    whose trainer checkpoint survives at a finished milestone (its step has its one-step
    cell; a run still training is skipped, said on stdout). System and seed are the ones its
    checkpoint records (a run folder is ``baseline_ARCH_SYS``, ``_TAG`` after it for a recipe
    ablation, ``_sN`` for a seed N > 0)."""
    runs = []
    for run_dir in sorted(root.glob("baseline_*")):
        m = re.fullmatch(r"baseline_(avit|fno)_(.+)", run_dir.name)
        ckpt = run_dir / "checkpoint"
        if not m or not (ckpt / "config.json").exists():
            continue
        pre = load_checkpoint(ckpt)
        extra = pre["record"].get("extra", {})
        name, seed = extra.get("system"), int(extra.get("seed", 0))
        rest = m[2].removesuffix(f"_s{seed}") if seed else m[2]
        if not name or not (rest == name or rest.startswith(name + "_")):
            raise ValueError(
                f"{run_dir}: its checkpoint records system {name!r} and seed {seed}, which the "
                f"folder name (baseline_{m[1]}_SYSTEM[_TAG][_sSEED]) does not match"
            )
        tag, step = rest[len(name) + 1 :] or None, _ckpt_step(pre)
        if not baseline_cell(root, m[1], name, step, tag, seed).exists():
            print(f"{run_dir}: step {step} is no finished milestone (still training?); "
                  "skipped", flush=True)  # fmt: skip
            continue
        runs.append((m[1], name, tag, seed, ckpt))
    return runs


def gap(args: argparse.Namespace) -> int:
    """Train vs held-out one-step NRMSE of every model still on disk (overfitting check),
    and the held-out NRMSE when the last input frame is the model's own prediction.

    The pretrained ``--ckpt`` on each of its systems, and each ``baseline_ARCH_SYS[_TAG]`` run
    of ``baselines`` whose trainer checkpoint survives (at that checkpoint's step): the same
    ``one_step_nrmse`` on the training files it learned from and on the held-out test files.
    """
    torch.set_num_threads(args.threads)
    root, data = Path(args.root), Path(args.data)
    systems = sorted(load_surrogate(args.ckpt)[1])
    models = [("mpp", name, None, 0, Path(args.ckpt)) for name in systems]
    for arch, name, tag, seed, path in models + _baseline_runs(root):
        pre = load_checkpoint(path)
        step_no = _ckpt_step(pre)
        out = gap_cell(root, arch, name, tag, seed, step_no)
        if out.exists():
            continue
        model = load_model(path, "cpu")[1].eval()
        info = system_info(name)
        T = model.config.n_frames
        recipe = _recipe_of(pre["record"].get("extra", {}))
        rec = {"arch": arch, "variant": name, "step": step_no, "tag": tag, "seed": seed,
               "ckpt": repo_path(path), "recipe": recipe}  # fmt: skip
        step = model_step(model, info["field_index"], info["periodic"])  # FNO: the same call
        for split in ("train", "test"):
            windows = file_datasets([f"{name}={data / split / name}"], n_frames=T,
                                    systems={name: info})[name]  # fmt: skip
            rec[f"{split}_windows"] = len(windows)
            rec[f"{split}_nrmse"] = one_step_nrmse(step, windows)
        # the window a fixed-depth pushforward grades: true frames, then the model's own
        rec["test_nrmse_own_last"] = one_step_nrmse(_own_last(step), windows)
        write_cell(out, rec)
        print(json.dumps(rec), flush=True)
    return 0


def baseline_rollout(args: argparse.Namespace) -> int:
    """Item 2 for the single-task models: each surviving ``baselines`` run rolled out on its
    system's long held-out trajectories, exactly as ``rollout`` rolls out the pretrained one
    (same files, context and horizon), beside persistence. One cell per run and step."""
    torch.set_num_threads(args.threads)
    root, data = Path(args.root), Path(args.data)
    for arch, name, tag, seed, path in _baseline_runs(root):
        folder = data / "test_long" / name
        pre = load_checkpoint(path)
        step_no = _ckpt_step(pre)
        out = baseline_rollout_cell(root, arch, name, tag, step_no, seed)
        if out.exists():
            continue
        if not any(folder.glob("*.h*5")):
            print(f"{folder}: no long test files; {path} skipped", flush=True)
            continue
        model = load_model(path, "cpu")[1].eval()
        rec = {"variant": name, "arch": arch, "tag": tag, "seed": seed, "ckpt_step": step_no,
               "ckpt": repo_path(path), "recipe": _recipe_of(pre["record"].get("extra", {})),
               **_rollout_curves(model, system_info(name), folder, args.steps)}  # fmt: skip
        write_cell(out, rec)
        print(name, arch, tag, "model", rec["model"][:: max(1, rec["steps"] // 5)], flush=True)
    return 0


def report(args: argparse.Namespace) -> int:
    """Every finished cell into ``--out``/mpp_evidence.{json,md} (``mpp_evidence_report``)."""
    ckpt = Path(args.ckpt)  # the main run: its recipe names the cells that carry none
    main_recipe = _recipe_name(ckpt) if (ckpt / "config.json").exists() else None
    write_evidence_report(Path(args.root), args.ckpt, args.data, args.out, main_recipe,
                          main_tag=_tag(args.tag) or "")  # fmt: skip
    return 0


def restore(args: argparse.Namespace) -> int:
    """The cells of a report's JSON (``--from``) written back under ``--root``, none replaced."""
    counts = restore_cells(Path(args.source), Path(args.root))
    print(f"{args.source} -> {args.root}: {counts}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    run = {"transfer": transfer, "onestep": onestep, "rollout": rollout,
           "baselines": baselines, "baseline-rollout": baseline_rollout, "gap": gap,
           "report": report, "restore": restore}  # fmt: skip
    ap.add_argument(
        "what",
        choices=list(run),
    )
    ap.add_argument("--ckpt", default=str(ROOT / "runs" / "mpp64_pretrain" / "checkpoint"))
    ap.add_argument("--data", default=str(ROOT / "data" / "mpp64"))
    ap.add_argument("--root", default=str(ROOT / "runs" / "mpp64_evidence"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--variant", default="cns_m0.1")
    ap.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument(
        "--seeds", type=int, nargs="+", default=[0], help="transfer cells; baselines replicas"
    )
    ap.add_argument("--steps", type=int, default=300, help="fine-tuning steps (transfer)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--trainable",
        default="all",
        choices=TRAINABLE,
        help="transfer: fine-tune all weights, or io (processor frozen)",
    )
    ap.add_argument(
        "--slots",
        type=int,
        nargs="+",
        default=None,
        help="transfer: the variant's embedding slots, one per field (default: its reserved "
        "ones; 1 2 8 9 puts CNS's vx, vy where INS's trained); name the run with --tag",
    )
    ap.add_argument(
        "--tag",
        default="",
        help="transfer/onestep/rollout: the pretraining run's name in its cells; report: "
        "the run whose rollouts and one-step figures the physics page shows "
        "(default: none, the main run of scripts/mpp_pretrain.sh)",
    )
    ap.add_argument(
        "--reuse-scratch",
        metavar="TAG",
        default=None,
        help="transfer: take the scratch cells of run TAG ('' = the untagged run) where they "
        "match this call's N, seed, steps, lr, batch and trainable (scratch ignores --ckpt)",
    )
    ap.add_argument(
        "--from",
        dest="source",
        default=str(ROOT / "benchmarks" / "results" / "mpp_evidence.json"),
        help="restore: the report JSON whose cells to write back under --root",
    )
    ap.add_argument("--systems", nargs="+", default=None, help="baselines: default the ckpt's")
    ap.add_argument("--archs", nargs="+", default=["fno", "avit"], choices=["fno", "avit"])
    ap.add_argument(
        "--recipe",
        default=None,
        choices=sorted(TrainRecipe.PRESETS),
        help="baselines: train with this TrainRecipe preset instead of the pretraining's "
        "(an ablation; needs --tag, which names its cells)",
    )
    ap.add_argument(
        "--recipe-set",
        nargs="+",
        default=[],
        metavar="K=V",
        help="baselines: change fields of the recipe (--recipe's, else the pretraining's), "
        "e.g. noise=0 or loss_norm=rms: a one-component ablation; needs --tag",
    )
    ap.add_argument(
        "--train",
        default=None,
        help="baselines from a packaged asset: the pretraining's TrainConfig preset",
    )
    ap.add_argument(
        "--train-set",
        nargs="*",
        default=[],
        metavar="K=V",
        help="baselines from a packaged asset: the pretraining's overrides",
    )
    ap.add_argument(
        "--milestones",
        type=int,
        nargs="+",
        default=None,
        help="baselines: steps to evaluate at (default: the ckpt's step)",
    )
    args = ap.parse_args(argv)
    if args.what in ("rollout", "baseline-rollout"):
        args.steps = 50 if args.steps == 300 else args.steps
    return run[args.what](args)


if __name__ == "__main__":
    raise SystemExit(main())
