"""``scifm xval tokenize | train | evaluate | predict`` (heavy imports stay inside the handlers).

``train``/``evaluate`` take a built-in ``--task`` or a user's ``--data FILE``
(JSON lines or plain text with numbers, see ``scifm.xval.userdata``); ``predict``
fills the ``?`` marks of new text with a trained checkpoint's answers.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from scifm.core.cliargs import count_upto, positive_int
from scifm.core.report import strict_json

SCHEME_CHOICES = ("xval", "p10", "p1000", "b1999", "fp15")
TASK_CHOICES = ("multiplication", "compound", "ood", "orbits")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("xval", help="xVal number encoding vs digit tokenizations")
    sub = p.add_subparsers(dest="xval_command", required=True)

    t = sub.add_parser("tokenize", help="print the tokenization of TEXT as JSON")
    t.add_argument("--scheme", default="xval", choices=(*SCHEME_CHOICES, "all"))
    t.add_argument("text", help="any text with numbers")
    t.set_defaults(func=cmd_tokenize)

    tr = sub.add_parser("train", help="train one encoding on a task or a data file; prints JSON")
    tr.add_argument("--scheme", required=True, choices=SCHEME_CHOICES)
    src = tr.add_mutually_exclusive_group(required=True)
    src.add_argument("--task", choices=TASK_CHOICES, help="a built-in task")
    src.add_argument("--data", metavar="FILE", help="your data: JSON lines or text with numbers")
    tr.add_argument("--format", default=None, choices=("jsonl", "text"),
                    help="--data format (default: from the suffix / first line)")  # fmt: skip
    tr.add_argument("--target", default="all",
                    help="--data: field to predict (JSON key, or n<k> for the k-th number "
                    "of a text line); 'all' masks each number in turn")  # fmt: skip
    tr.add_argument("--val-fraction", type=float, default=0.2,
                    help="--data: share of lines held out (split by line)")  # fmt: skip
    tr.add_argument("--preset", default="small", help="XvalConfig preset: tiny, small, paper")
    tr.add_argument("--steps", type=positive_int, default=1000)
    tr.add_argument("--batch", type=positive_int, default=64)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--n-train", type=count_upto(10_000_000, "training samples"), default=20_000)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--mode", default="mlm", choices=("mlm", "ar"))
    tr.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: best)")
    tr.add_argument("--out", required=True, help="run directory (checkpoint/ goes inside)")
    tr.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="XvalConfig overrides, e.g. d_model=128 n_layers=4")  # fmt: skip
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="metrics of a shipped or given checkpoint as JSON")
    ev.add_argument("--scheme", choices=SCHEME_CHOICES, help="with --task: the shipped model")
    ev.add_argument("--task", choices=TASK_CHOICES)
    ev.add_argument("--data", metavar="FILE",
                    help="evaluate --checkpoint on every line of FILE")  # fmt: skip
    ev.add_argument("--seed", type=int, default=12345, help="seed of the evaluation samples")
    ev.add_argument("--split", default="test", choices=("test", "interp", "extrap"))
    ev.add_argument("--n", type=count_upto(1_000_000, "evaluation samples"), default=300,
                    help="number of evaluation samples")  # fmt: skip
    ev.add_argument("--range", nargs=2, type=float, metavar=("LO", "HI"), default=None,
                    help="ood task: draw the first operand a from [LO, HI)")  # fmt: skip
    ev.add_argument("--checkpoint", default=None, help="default: assets/xval/<task>_<scheme>")
    ev.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="fill each '?' of TEXT with a checkpoint's answer")
    pr.add_argument("--checkpoint", required=True, help="a run's checkpoint directory")
    pr.add_argument("text", nargs="+", help='e.g. \'{"age":59,"bmi":32.1,"y":?}\'')
    pr.set_defaults(func=cmd_predict)


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
    print(strict_json(out if args.scheme == "all" else out[args.scheme]))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scifm.core import TrainConfig
    from scifm.xval.evaluate import evaluate
    from scifm.xval.tasks import TaskConfig, generate, held_out
    from scifm.xval.train import fit, fit_file, model_config_for

    tcfg = TrainConfig(steps=args.steps, lr=args.lr, warmup_steps=min(100, args.steps // 10),
                       log_every=max(1, args.steps // 20), seed=args.seed)  # fmt: skip
    ckpt = Path(args.out) / "checkpoint"
    if args.data is not None:
        trained, val_s = fit_file(
            args.data, args.scheme, tcfg, fmt=args.format, target=args.target,
            val_fraction=args.val_fraction, preset=args.preset, mode=args.mode,
            overrides=args.set, batch_size=args.batch, seed=args.seed, device=args.device,
            out_dir=args.out,
        )  # fmt: skip
        n_train = trained.info["n_train"]
        result = {"checkpoint": str(ckpt), "info": trained.info, "data": trained.task.to_dict(),
                  "n_train": n_train, "validation": evaluate(trained, val_s)}  # fmt: skip
        print(strict_json(result))
        return 0
    task = TaskConfig(task=args.task, n_train=args.n_train)
    cfg = model_config_for(task, args.scheme, args.preset, mode=args.mode).with_overrides(args.set)
    trained = fit(task, cfg, tcfg, batch_size=args.batch, seed=args.seed, device=args.device,
                  out_dir=args.out)  # fmt: skip
    metrics = evaluate(
        trained, held_out(task, 300, 12345, "test", generate(task, task.n_train, args.seed))
    )
    print(strict_json({"checkpoint": str(ckpt), "info": trained.info, "test": metrics}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from scifm.core import pick_device
    from scifm.xval.assets import checkpoint_path
    from scifm.xval.evaluate import evaluate
    from scifm.xval.tasks import generate, held_out, ood_text, three_sig
    from scifm.xval.train import load_trained

    if args.data is not None:
        return _evaluate_data(args)
    if args.task is None or args.scheme is None:
        raise SystemExit("evaluate: give --task and --scheme, or --data FILE --checkpoint DIR")
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
        if not (0 < lo < hi and math.isfinite(hi) and hi <= 1e30):
            raise SystemExit(f"--range {lo} {hi}: expected 0 < LO < HI <= 1e30")
        rng = np.random.default_rng(args.seed)
        a, b = three_sig(rng, lo, hi, args.n), three_sig(rng, 1.0, 10.0, args.n)
        samples = [ood_text(float(x), float(y)) for x, y in zip(a, b)]
    else:
        task = trained.task  # test texts exclude the checkpoint's own training texts
        train_texts = generate(task, task.n_train, int(trained.info.get("seed", 0)))
        samples = held_out(task, args.n, args.seed, args.split, train_texts)
    result = evaluate(trained, samples)
    out = {"checkpoint": str(path), "scheme": args.scheme, "task": args.task, **result}
    print(strict_json(out))
    return 0


def _evaluate_data(args: argparse.Namespace) -> int:
    import numpy as np

    from scifm.core import pick_device
    from scifm.xval.evaluate import metrics, predict
    from scifm.xval.train import load_trained
    from scifm.xval.userdata import DataConfig, read_lines, samples_of

    if args.checkpoint is None:
        raise SystemExit(
            "evaluate --data FILE needs --checkpoint DIR (a model trained with --data)"
        )
    trained = load_trained(args.checkpoint, pick_device())
    spec = trained.task
    if not isinstance(spec, DataConfig):
        raise SystemExit(f"checkpoint {args.checkpoint} was trained on task {spec.task!r}, not "
                         "on a data file; use --task")  # fmt: skip
    samples = samples_of(read_lines(args.data, spec.format), spec.target)
    try:
        p = predict(trained, samples)
    except ValueError as e:  # e.g. a field the checkpoint never saw
        raise ValueError(f"data file {args.data} against checkpoint {args.checkpoint}: {e}") from e
    per_field = {}
    for field in sorted(set(p.fields)):
        sel = np.array([f == field for f in p.fields])
        sub = type(p)(p.true[sel], p.pred[sel], tuple(np.array(p.fields)[sel]), p.fallback[sel])
        per_field[field] = metrics(sub)
    out = {"checkpoint": str(args.checkpoint), "data": str(args.data), **metrics(p),
           "per_field": per_field}  # fmt: skip
    print(strict_json(out))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from scifm.core import pick_device
    from scifm.xval.evaluate import predict_text
    from scifm.xval.train import load_trained

    trained = load_trained(args.checkpoint, pick_device())
    out = [{"text": text, **predict_text(trained, text)} for text in args.text]
    print(strict_json(out if len(out) > 1 else out[0]))
    return 0
