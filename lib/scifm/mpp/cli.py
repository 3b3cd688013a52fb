"""``scifm mpp pretrain|finetune|evaluate|rollout``: Multiple Physics Pretraining from a shell.

Heavy imports live inside the handlers so ``scifm --help`` stays fast. Every run is
defined by presets plus ``key=value`` overrides, and prints JSON results.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from scifm.core.cliargs import count_upto, frame_count, positive_int
from scifm.core.report import strict_json

ROLLOUT_STEPS = 16  # default rollout length
RES = count_upto(2048, "cells per side")  # PDEBench's finest 2-D grids are 512^2
TRAJ = count_upto(100_000, "trajectories")
STEPS = count_upto(10_000, "rollout steps")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: best available)")


def _data_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--files",
        nargs="+",
        default=None,
        metavar="[NAME=]PATH",
        help=f"PDEBench or The Well files or directories to train on ({what}); NAME= sets the "
        "variant (default: the file's system, cns_m<Mach> for CNS). Grids are average-pooled "
        "to the data resolution by an integer factor, frames strided to its frame count",
    )
    p.add_argument(
        "--data-dir",
        default="data/mpp",
        help="without --files: where the preset's trajectories are generated (and reused)",
    )


def register(subparsers) -> None:
    parser = subparsers.add_parser("mpp", help="multiple physics pretraining (AViT surrogate)")
    sub = parser.add_subparsers(dest="mpp_command", required=True)

    p = sub.add_parser("pretrain", help="pretrain an AViT on a mixture of PDE systems")
    p.add_argument("--model", default="small", help="AViTConfig preset (tiny, small, Ti, S, B, L)")
    p.add_argument("--data", default="small", help="DataConfig preset (tiny, small, no_cns)")
    p.add_argument("--train", default="small", help="TrainConfig preset (tiny, small, paper)")
    p.add_argument("--set", nargs="*", default=[], metavar="K=V", help="model overrides")
    p.add_argument("--data-set", nargs="*", default=[], metavar="K=V", help="data overrides")
    p.add_argument("--train-set", nargs="*", default=[], metavar="K=V", help="train overrides")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument(
        "--recipe", default="paper",
        help="TrainRecipe preset: paper (one-step NMSE), stable (noise + pushforward + per-field "
        "std loss), stable_random (its pushforward depth drawn per batch), unrolled",
    )  # fmt: skip
    p.add_argument("--recipe-set", nargs="*", default=[], metavar="K=V", help="recipe overrides")
    p.add_argument("--out", required=True, help="run directory (resumes if it has a checkpoint)")
    p.add_argument(
        "--warm-start", metavar="CKPT",
        help="continue a run whose trainer state is lost from its carded weights (a shipped "
        "asset) at the card's step, with fresh Adam moments; ignored once --out has a checkpoint",
    )  # fmt: skip
    _data_flags(p, "instead of the --data preset's systems; its res and sim_frames still apply")
    _common(p)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("finetune", help="fine-tune a pretrained AViT on one system")
    p.add_argument("--ckpt", required=True, help="checkpoint directory of a pretrained AViT")
    p.add_argument("--system", required=True, help="variant, e.g. cns_m0.1")
    p.add_argument("--n-traj", type=TRAJ, default=8, help="fine-tuning trajectories")
    p.add_argument("--res", type=RES, default=32)
    p.add_argument("--sim-frames", type=frame_count, default=21)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trainable", default="all", help="all, io (processor frozen) or decoder")
    p.add_argument("--new-fields", action="store_true", help="give the system fresh field slots")
    p.add_argument(
        "--field-index",
        type=int,
        nargs="+",
        metavar="SLOT",
        help="the system's embedding slots, one per field (default: its reserved ones; e.g. "
        "cns 1 2 8 9 puts its velocities where INS's trained)",
    )
    p.add_argument("--train", default="small")
    p.add_argument("--train-set", nargs="*", default=[], metavar="K=V")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--out", required=True)
    _data_flags(p, "all of --system; --res and --sim-frames still apply")
    _common(p)
    p.set_defaults(func=_finetune)

    for name, helptext in (
        ("evaluate", "one-step NRMSE per system, with persistence"),
        ("rollout", "autoregressive rollout error against the solver"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--ckpt", required=True)
        p.add_argument("--systems", nargs="*", default=None, help="variants (default: trained)")
        p.add_argument("--res", type=RES, default=None, help="default: the checkpoint's data")
        p.add_argument(
            "--n-test",
            type=TRAJ,
            default=4,
            help="held-out trajectories per system (with --file: the file's first N)",
        )
        p.add_argument(
            "--file",
            default=None,
            metavar="PATH",
            help="a PDEBench or The Well file of your own instead of simulated data: pooled to "
            "the model's grid, frame-strided to its frame count, compared with persistence; "
            "WARNING lines (stderr) when it differs from the model card",
        )
        p.add_argument(
            "--sim-frames",
            type=frame_count,
            default=None,
            help="frames per trajectory (sets the time step); default: as trained",
        )
        p.add_argument("--seed", type=int, default=0, help="base seed of the held-out data")
        p.add_argument(
            "--steps",
            type=STEPS,
            default=None,
            help=f"rollout steps (rollout only; default {ROLLOUT_STEPS}, with --file at most "
            "what the file holds after the frame stride)",
        )
        _common(p)
        p.set_defaults(func=_evaluate if name == "evaluate" else _rollout)


def _pretrain(args: argparse.Namespace) -> int:
    from scifm.core import TrainConfig, pick_device
    from scifm.mpp.config import AViTConfig
    from scifm.mpp.experiment import DataConfig, pretrain
    from scifm.mpp.recipe import TrainRecipe

    recipe = TrainRecipe.preset(args.recipe).with_overrides(args.recipe_set)
    model_cfg = AViTConfig.preset(args.model).with_overrides(args.set)
    data_cfg = DataConfig.preset(args.data).with_overrides(args.data_set)
    train_cfg = TrainConfig.preset(args.train).with_overrides(args.train_set)
    _, result = pretrain(
        model_cfg,
        data_cfg,
        train_cfg,
        batch_size=args.batch_size,
        device=pick_device(args.device),
        out_dir=args.out,
        files=args.files,
        data_dir=None if args.files else args.data_dir,
        # the paper's one-step loss draws nothing, so a replica's recipe seed changes nothing
        recipe=None if replace(recipe, seed=0) == TrainRecipe() else recipe,
        warm_start=args.warm_start,
    )
    print(
        strict_json(
            {
                "step": result.step,
                "checkpoint": str(result.checkpoint),
                "last": result.history[-1] if result.history else None,
            }
        )
    )
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from scifm.core import TrainConfig, pick_device
    from scifm.mpp.data import generate_files
    from scifm.mpp.experiment import finetune, load_surrogate

    device = pick_device(args.device)
    train_cfg = TrainConfig.preset(args.train).with_overrides(args.train_set)
    model, systems = load_surrogate(args.ckpt, device)
    files = args.files  # finetune() checks every file before the model or --out change
    if not files:
        made = generate_files(
            [args.system], args.data_dir, n=args.n_traj, res=args.res,
            frames=args.sim_frames, seed=args.seed, device=device,
        )  # fmt: skip
        files = made[args.system]
    _, result, _ = finetune(
        model,
        args.system,
        files,
        train_cfg,
        trainable=args.trainable,
        new_fields=args.new_fields,
        field_index=args.field_index,
        batch_size=args.batch_size,
        device=device,
        out_dir=args.out,
        systems=systems,
        res=args.res,
        frames=args.sim_frames,
    )
    print(strict_json({"step": result.step, "checkpoint": str(result.checkpoint)}))
    return 0


def _trained_data(ckpt: str) -> dict:
    """The DataConfig dict a checkpoint was trained on ({} if it does not say)."""
    from scifm.core import load_checkpoint

    return load_checkpoint(ckpt)["record"].get("extra", {}).get("data", {})


def _held_out(args: argparse.Namespace, systems: dict, patch: int, n_extra: int = 0) -> dict:
    """Held-out trajectories at the checkpoint's resolution and frame spacing by default.

    Longer rollouts extend the trajectory at the same time step (t_end grows with frames).
    """
    from scifm.mpp.data import resolve_variant, simulate_variant, variant_seed
    from scifm.pde import get_system

    trained = _trained_data(args.ckpt)
    res = args.res or trained.get("res", 32)
    if res % patch:
        raise ValueError(f"--res {res}: the model's patch is {patch} cells; give a multiple of it")
    frames = args.sim_frames or trained.get("sim_frames", 21)
    out = {}
    for name in args.systems or systems:
        t_end = get_system(resolve_variant(name)[0]).t_end * (frames - 1 + n_extra) / (frames - 1)
        out[name] = simulate_variant(
            name,
            args.n_test,
            res=res,
            n_frames=frames + n_extra,
            seed=variant_seed(args.seed, name, "test"),
            t_end=t_end,
        ).fields.float()
    return out


def _user_file(args: argparse.Namespace):
    """(model, device, check, windows) of ``--file``, its warnings printed to stderr."""
    import sys

    from scifm.core import pick_device
    from scifm.core.checkpoint import read_record
    from scifm.mpp.card import load_card
    from scifm.mpp.experiment import load_surrogate
    from scifm.mpp.userfile import card_view, check_file, file_windows

    device = pick_device(args.device)
    model, systems = load_surrogate(args.ckpt, device)
    card = load_card(args.ckpt)
    view = card_view(card, read_record(args.ckpt).get("extra", {}))
    T = model.config.n_frames
    check = check_file(
        args.file, view, n_ctx=T, res=args.res, frames=args.sim_frames, has_card=bool(card),
        ckpt=args.ckpt,
    )  # fmt: skip
    notes = [] if card else [
        f"{args.ckpt}: no model card (checkpoint extra or MANIFEST.json cards): frame "
        "spacing and physical parameters not checked"
    ]  # fmt: skip
    for line in notes + check.warnings:
        print(f"WARNING: {line}", file=sys.stderr)
    return model, device, check, file_windows(check, T, systems)


def _evaluate_file(args: argparse.Namespace) -> int:
    from torch.utils.data import Subset

    from scifm.mpp.evaluate import one_step_summary
    from scifm.mpp.rollout import model_step
    from scifm.mpp.userfile import header
    from scifm.pde import get_system

    model, device, check, ds = _user_file(args)
    n = min(args.n_test, check.info.n_traj)
    windows = Subset(ds, range(n * ds.per_traj))
    step = model_step(model, ds.field_index, bool(ds.periodic))
    fields = list(get_system(check.info.system).field_names)  # the file's system (SYSTEMS key)
    out = {**header(check, n), "windows": len(windows),
           **one_step_summary(step, windows, fields, device=device)}  # fmt: skip
    print(strict_json(out, indent=2))
    return 0


def _rollout_file(args: argparse.Namespace) -> int:
    import sys

    from scifm.mpp.evaluate import rollout_nrmse
    from scifm.mpp.rollout import fast_model_step, persistence_step
    from scifm.mpp.userfile import header, trajectories

    model, device, check, ds = _user_file(args)
    fields = trajectories(ds, args.n_test)  # (N, F', C, res, res)
    T = model.config.n_frames
    steps = min(args.steps or ROLLOUT_STEPS, fields.shape[1] - T)
    if args.steps is not None and steps < args.steps:
        print(f"WARNING: {check.info.path}: {fields.shape[1]} frames after the frame stride: "
              f"{steps} rollout steps, not {args.steps}", file=sys.stderr)  # fmt: skip
    example = fields[:, :T].to(device)  # the windows rollout_nrmse steps (a CUDA graph on GPU)
    step = fast_model_step(model, ds.field_index, bool(ds.periodic), example)
    curves = {
        name: [round(float(v), 6) for v in rollout_nrmse(fn, fields, T, steps, device=device)]
        for name, fn in (("avit", step), ("persistence", persistence_step))
    }
    print(strict_json({**header(check, fields.shape[0]), "steps": steps, **curves}, indent=2))
    return 0


def _no_systems_with_file(args: argparse.Namespace) -> None:
    """--systems picks simulated held-out data; a --file names its own system."""
    if args.systems:
        raise ValueError(f"--systems {' '.join(args.systems)}: not with --file {args.file} "
                         "(the file's layout says which system it holds)")  # fmt: skip


def _evaluate(args: argparse.Namespace) -> int:
    if args.file:
        _no_systems_with_file(args)
        return _evaluate_file(args)
    from scifm.core import pick_device
    from scifm.mpp.data import memory_datasets
    from scifm.mpp.evaluate import one_step_summary
    from scifm.mpp.experiment import load_surrogate, system_info
    from scifm.mpp.rollout import model_step

    device = pick_device(args.device)
    model, systems = load_surrogate(args.ckpt, device)
    out = {}
    for name, f in _held_out(args, systems, model.config.patch_size).items():
        info = systems.get(name, system_info(name))
        ws = memory_datasets({name: f}, model.config.n_frames, {name: info})[name]
        step = model_step(model, info["field_index"], info["periodic"])
        out[name] = one_step_summary(step, ws, info["fields"], device=device)
    print(strict_json(out, indent=2))
    return 0


def _rollout(args: argparse.Namespace) -> int:
    if args.file:
        _no_systems_with_file(args)
        return _rollout_file(args)
    from scifm.core import pick_device
    from scifm.mpp.evaluate import rollout_nrmse
    from scifm.mpp.experiment import load_surrogate, system_info
    from scifm.mpp.rollout import fast_model_step

    device = pick_device(args.device)
    model, systems = load_surrogate(args.ckpt, device)
    T = model.config.n_frames
    frames = args.sim_frames or _trained_data(args.ckpt).get("sim_frames", 21)
    n_steps = args.steps or ROLLOUT_STEPS
    extra = max(0, T + n_steps - frames)
    out = {}
    for name, f in _held_out(args, systems, model.config.patch_size, extra).items():
        info = systems.get(name, system_info(name))
        step = fast_model_step(model, info["field_index"], info["periodic"], f[:, :T].to(device))
        out[name] = [round(float(v), 6) for v in rollout_nrmse(step, f, T, n_steps, device=device)]
    print(strict_json(out, indent=2))
    return 0
