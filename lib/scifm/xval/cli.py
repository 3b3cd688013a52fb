"""``scifm xval tokenize | train | evaluate`` (heavy imports stay inside the handlers)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from scifm.core.cliargs import positive_int

SCHEME_CHOICES = ("xval", "p10", "p1000", "b1999", "fp15")
TASK_CHOICES = ("multiplication", "compound", "ood", "orbits")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("xval", help="xVal number encoding vs digit tokenizations")
    sub = p.add_subparsers(dest="xval_command", required=True)

    t = sub.add_parser("tokenize", help="print the tokenization of TEXT as JSON")
    t.add_argument("--scheme", default="xval", choices=(*SCHEME_CHOICES, "all"))
    t.add_argument("text", help="any text with numbers")
    t.set_defaults(func=cmd_tokenize)

    tr = sub.add_parser("train", help="train one encoding on one task; prints JSON metrics")
    tr.add_argument("--scheme", required=True, choices=SCHEME_CHOICES)
    tr.add_argument("--task", required=True, choices=TASK_CHOICES)
    tr.add_argument("--preset", default="small", help="XvalConfig preset: tiny, small, paper")
    tr.add_argument("--steps", type=positive_int, default=1000)
    tr.add_argument("--batch", type=positive_int, default=64)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--n-train", type=positive_int, default=20_000)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--mode", default="mlm", choices=("mlm", "ar"))
    tr.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: best)")
    tr.add_argument("--out", required=True, help="run directory (checkpoint/ goes inside)")
    tr.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="XvalConfig overrides, e.g. d_model=128 n_layers=4")  # fmt: skip
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="metrics of a shipped or given checkpoint as JSON")
    ev.add_argument("--scheme", required=True, choices=SCHEME_CHOICES)
    ev.add_argument("--task", required=True, choices=TASK_CHOICES)
    ev.add_argument("--seed", type=int, default=12345, help="seed of the evaluation samples")
    ev.add_argument("--split", default="test", choices=("test", "interp", "extrap"))
    ev.add_argument("--n", type=positive_int, default=300, help="number of evaluation samples")
    ev.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), default=None,
                    help="ood task: draw the first operand a from [LO, HI)")  # fmt: skip
    ev.add_argument("--checkpoint", default=None, help="default: assets/xval/<task>_<scheme>")
    ev.set_defaults(func=cmd_evaluate)


def cmd_tokenize(args: argparse.Namespace) -> int:
    from scifm.xval.tokenizers import SCHEMES, get_tokenizer

    schemes = SCHEMES if args.scheme == "all" else (args.scheme,)
    out = {}
    for s in schemes:
        enc = get_tokenizer(s).encode(args.text)
        out[s] = {
            "tokens": enc.tokens, "ids": enc.ids, "values": enc.values.tolist(),
            "numbers": enc.numbers, "represented": enc.represented, "status": enc.status,
            "n_tokens": len(enc),
        }  # fmt: skip
    print(json.dumps(out if args.scheme == "all" else out[args.scheme]))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scifm.core import TrainConfig
    from scifm.xval.evaluate import evaluate
    from scifm.xval.tasks import TaskConfig, generate
    from scifm.xval.train import fit, model_config_for

    task = TaskConfig(task=args.task, n_train=args.n_train)
    cfg = model_config_for(task, args.scheme, args.preset, mode=args.mode).with_overrides(args.set)
    tcfg = TrainConfig(steps=args.steps, lr=args.lr, warmup_steps=min(100, args.steps // 10),
                       log_every=max(1, args.steps // 20), seed=args.seed)  # fmt: skip
    trained = fit(task, cfg, tcfg, batch_size=args.batch, seed=args.seed, device=args.device,
                  out_dir=args.out)  # fmt: skip
    metrics = evaluate(trained, generate(task, 300, 12345, "test"))
    ckpt = Path(args.out) / "checkpoint"
    print(json.dumps({"checkpoint": str(ckpt), "info": trained.info, "test": metrics}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from scifm.core import pick_device
    from scifm.xval.assets import checkpoint_path
    from scifm.xval.evaluate import evaluate
    from scifm.xval.tasks import generate, ood_text, three_sig
    from scifm.xval.train import load_trained

    path = args.checkpoint or checkpoint_path(args.task, args.scheme)
    trained = load_trained(path, pick_device())
    if trained.config.scheme != args.scheme or trained.task.task != args.task:
        raise SystemExit(
            f"checkpoint {path} holds scheme {trained.config.scheme!r} on task "
            f"{trained.task.task!r}, not {args.scheme!r} on {args.task!r}"
        )
    if args.range is not None:
        if args.task != "ood":
            raise SystemExit("--range applies to the ood task (the first operand's range)")
        lo, hi = args.range
        if not 0 < lo < hi:
            raise SystemExit(f"--range {lo} {hi}: expected 0 < LO < HI")
        rng = np.random.default_rng(args.seed)
        a, b = three_sig(rng, lo, hi, args.n), three_sig(rng, 1.0, 10.0, args.n)
        samples = [ood_text(float(x), float(y)) for x, y in zip(a, b)]
    else:
        samples = generate(trained.task, args.n, args.seed, args.split)
    result = evaluate(trained, samples)
    print(json.dumps({"checkpoint": str(path), "scheme": args.scheme, "task": args.task, **result}))
    return 0
