"""``scifm astroclip ...``: the three training stages, embedding, evaluation and search.

    scifm astroclip pretrain-image    --survey S --out runs/img   [--preset small --steps N]
                                      [--method moco|vicreg --eval-every N]
    scifm astroclip pretrain-spectrum --survey S --out runs/spec  [--eval-every N --until-plateau]
    scifm astroclip align   --survey S --image runs/img --spectrum runs/spec --out runs/clip
                            [--eval-every N --until-plateau --spectrum-head attention|seg<K>]
                            [--image-finetune-blocks N --embed-dim D]
    scifm astroclip embed   --model runs/clip/checkpoint --survey S --out emb.h5
    scifm astroclip evaluate --model runs/clip/checkpoint --survey S
    scifm astroclip search  --catalog assets/astroclip/catalog.h5 --id TARGETID [--mode ...]
    scifm astroclip redshift FILE [--assets assets/astroclip] [--split test --n N --json OUT]
        (the template redshift of ``scifm survey redshift`` and the galaxies page's k-NN one)

``--survey`` is a simulated survey file (``scifm survey generate``), the released AstroCLIP
file (groups "0".."9") or ``toy:N``. Training uses the file's own split where it has one
(released: 80/20 inside each group), else the 80 % of ``pipeline.default_split``; ``align``
records that split in its checkpoint (``splits.py``) and ``evaluate`` reads it back from
the model. Properties the survey lacks (the released file has redshift only) are
reported as absent, not evaluated. ``--until-plateau`` stops a stage when its held-out
figure (SpecFormer: masked loss; align: recall@10) gains < 1 % over the last 20 % of the
steps (``core.plateau``); a rerun of the same command resumes. Heavy imports stay in handlers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scifm.core.cliargs import positive_int
from scifm.core.report import strict_json
from scifm.survey.cli import add_redshift_input_args

MODES = ("image → image", "spectrum → spectrum", "image → spectrum", "spectrum → image")
_MODE_ALIASES = {"i2i": MODES[0], "s2s": MODES[1], "i2s": MODES[2], "s2i": MODES[3]}


def _common(p: argparse.ArgumentParser, *, survey: bool = True) -> None:
    if survey:
        p.add_argument("--survey", required=True, help="survey HDF5 file or toy:N")
        p.add_argument("--n", type=positive_int, default=None, help="first N galaxies only")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: best available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _train_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--out", required=True, help="run folder (resumable checkpoint inside)")
    p.add_argument("--preset", default="small",
                   help="AstroClipConfig preset: tiny/small/evidence/paper (evidence: native "
                        "64 px images)")  # fmt: skip
    p.add_argument("--steps", type=positive_int, default=None,
                   help="optimizer steps: the LR schedule (a resume must keep it)")  # fmt: skip
    p.add_argument("--stop-at", type=positive_int, default=None,
                   help="end this call after this step, on the --steps schedule; rerun "
                        "without it to go on")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)


def _preset_config(args: argparse.Namespace):
    from scifm.astroclip.config import AstroClipConfig

    return AstroClipConfig.preset(getattr(args, "preset", "small"))


def _load(args: argparse.Namespace, cfg=None):
    from scifm.astroclip.pipeline import prepare, source_split, survey_fetcher

    cfg = cfg or _preset_config(args)
    fetch, n = survey_fetcher(args.survey)
    n = min(n, args.n or n)
    data = prepare(fetch, n, cfg, progress=not args.quiet)
    train_idx, test_idx = source_split(args.survey, len(data), getattr(args, "seed", 0))
    return cfg, data, train_idx, test_idx


def _train_cfg(args: argparse.Namespace, stage: str):
    from scifm.astroclip.pipeline import StagePlan

    plan = StagePlan()
    tc = plan.train_config(stage, progress=not args.quiet)
    steps = args.steps or tc.steps
    tc = tc.replace(steps=steps, warmup_steps=max(1, steps // 20), log_every=max(1, steps // 20),
                    ckpt_every=max(1, steps // 4), lr=args.lr or tc.lr, seed=args.seed,
                    stop_at=args.stop_at or 0)  # fmt: skip
    return tc, args.batch_size or getattr(plan, f"{stage}_batch")


def _pretrain_image(args: argparse.Namespace) -> int:
    import math

    import torch

    from scifm.astroclip.evaluate import image_ssl_knn_r2
    from scifm.astroclip.pipeline import DEFAULT_PROPS, split_how
    from scifm.astroclip.splits import split_record
    from scifm.astroclip.train import EVAL_FILE, pretrain_image

    cfg = _preset_config(args)
    if args.method:
        cfg = cfg.replace(image=cfg.image.replace(method=args.method))
    cfg, data, tr, te = _load(args, cfg)
    tc, bs = _train_cfg(args, "image")
    if args.eval_every:  # log at every evaluation step: evaluations ride on logged steps
        tc = tc.replace(log_every=math.gcd(tc.log_every, args.eval_every))
    tc = tc.replace(ckpt_every=args.ckpt_every or tc.ckpt_every)
    record = split_record(data.targetid, tr, te, how=split_how(args.survey, args.seed),
                          source=args.survey)  # fmt: skip
    props = {k: data.props[k] for k in DEFAULT_PROPS if k in data.props}

    def evaluate(encoder: torch.nn.Module) -> dict[str, float]:
        r2 = image_ssl_knn_r2(encoder, data.images, tr, te, props)
        return {f"knn_r2_{k}": v for k, v in r2.items()}

    evals: list[dict] = []
    _, res = pretrain_image(
        data.images[torch.from_numpy(tr)], cfg.image, tc, batch_size=bs, device=args.device,
        out_dir=args.out, seed=args.seed, extra={"split": record}, evaluate=evaluate,
        eval_every=args.eval_every,
        callback=lambda r: evals.append(r) if r.get("stage") == "eval" else None,
    )  # fmt: skip
    print(strict_json({
        "checkpoint": str(res.checkpoint), "method": cfg.image.method,
        "input_size": cfg.image.input_size, "final": res.history[-1] if res.history else None,
        "image_ssl_knn": evals[-1], "evaluations": str(Path(args.out) / EVAL_FILE),
        "split": {k: record[k] for k in ("how", "n_train", "n_test")},
    }))  # fmt: skip
    return 0


def _eval_args(p: argparse.ArgumentParser, figure: str, watched: str) -> None:
    p.add_argument("--eval-every", type=positive_int, default=0,
                   help=f"{figure} on the held-out split every N steps (always at the end); "
                        "appended to OUT/eval.jsonl")  # fmt: skip
    p.add_argument(
        "--eval-rows",
        type=positive_int,
        default=2000,
        help="held-out galaxies evaluated (the first N of the split; default 2000)",
    )
    p.add_argument("--until-plateau", action="store_true",
                   help=f"stop once {watched} gains < 1%% over the last 20%% of steps (needs "
                        "--eval-every; --steps is then the budget)")  # fmt: skip
    p.add_argument("--ckpt-every", type=positive_int, default=None,
                   help="steps between resumable checkpoints (default: steps/4 and at every "
                        "evaluation)")  # fmt: skip


def _evaluated(args: argparse.Namespace, tc):
    """The train config with the evaluations' cadence; errors on --until-plateau alone."""
    import math

    if args.until_plateau and not args.eval_every:
        raise ValueError("--until-plateau needs --eval-every N (the curve the rule watches)")
    if args.eval_every:  # log at every evaluation step: the records line up with eval.jsonl
        tc = tc.replace(log_every=math.gcd(tc.log_every, args.eval_every))
    return tc.replace(ckpt_every=args.ckpt_every or tc.ckpt_every)


def _run_summary(res, args: argparse.Namespace, evals: list[dict], record: dict) -> str:
    from scifm.astroclip.train import EVAL_FILE

    return strict_json({
        "checkpoint": str(res.checkpoint), "step": res.step, "stopped": res.stopped or "steps",
        "final": res.history[-1] if res.history else None,
        "last_eval": evals[-1] if evals else None, "evaluations": str(Path(args.out) / EVAL_FILE),
        "split": {k: record[k] for k in ("how", "n_train", "n_test")},
    })  # fmt: skip


def _pretrain_spectrum(args: argparse.Namespace) -> int:
    import torch

    from scifm.astroclip.evaluate import specformer_eval
    from scifm.astroclip.pipeline import DEFAULT_PROPS, split_how
    from scifm.astroclip.splits import split_record
    from scifm.astroclip.train import pretrain_spectrum

    tc, bs = _train_cfg(args, "spectrum")
    tc = _evaluated(args, tc)  # bad flags fail before the survey is read
    cfg, data, tr, te = _load(args)
    record = split_record(data.targetid, tr, te, how=split_how(args.survey, args.seed),
                          source=args.survey)  # fmt: skip
    props = {k: data.props[k] for k in DEFAULT_PROPS if k in data.props}
    fit, held = tr[: 4 * args.eval_rows], te[: args.eval_rows]  # k-NN fit on 4x as many

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        out = specformer_eval(model, data.spectra, fit, held, props, seed=args.seed)
        return out | {"n_fit": len(fit), "n_eval": len(held)}

    evals: list[dict] = []
    _, res = pretrain_spectrum(
        data.spectra[torch.from_numpy(tr)], cfg.spectrum, tc, batch_size=bs, device=args.device,
        out_dir=args.out, seed=args.seed, extra={"split": record}, evaluate=evaluate,
        eval_every=args.eval_every, until_plateau=args.until_plateau,
        callback=lambda r: evals.append(r) if r.get("stage") == "eval" else None,
    )  # fmt: skip
    print(_run_summary(res, args, evals, record))
    return 0


def _ckpt(path: str) -> Path:
    p = Path(path)
    return p / "checkpoint" if (p / "checkpoint" / "config.json").exists() else p


def _align(args: argparse.Namespace) -> int:
    import torch

    from scifm.astroclip.pipeline import split_how
    from scifm.astroclip.splits import split_record
    from scifm.astroclip.train import align, load_encoders

    tc, bs = _train_cfg(args, "align")
    tc = _evaluated(args, tc)  # bad flags fail before the survey is read
    # the encoders' own configs decide how the survey is prepared (a 64 px image encoder
    # gets 64 px images whatever --preset says; the preset sets the heads)
    ssl, spec = load_encoders(_ckpt(args.image), _ckpt(args.spectrum))
    cfg = _preset_config(args).replace(
        image=ssl.config, spectrum=spec.config, spectrum_head=args.spectrum_head,
        image_finetune_blocks=args.image_finetune_blocks,
        **({"embed_dim": args.embed_dim} if args.embed_dim else {}),
    )  # fmt: skip
    cfg, data, tr, te = _load(args, cfg)
    record = split_record(data.targetid, tr, te, how=split_how(args.survey, args.seed),
                          source=args.survey)  # fmt: skip
    t, h = torch.from_numpy(tr), torch.from_numpy(te[: args.eval_rows])
    evals: list[dict] = []
    _, res = align(
        data.images[t], data.spectra[t], cfg, ssl, spec, tc, batch_size=bs, device=args.device,
        out_dir=args.out, seed=args.seed, extra={"split": record},
        held_out=(data.images[h], data.spectra[h]), eval_every=args.eval_every,
        until_plateau=args.until_plateau,
        callback=lambda r: evals.append(r) if r.get("stage") == "eval" else None,
    )  # fmt: skip
    print(_run_summary(res, args, evals, record))
    return 0


def _load_clip(path: str, device: str | None):
    from scifm.astroclip.config import AstroClipConfig
    from scifm.core import load_model, pick_device

    return load_model(_ckpt(path), pick_device(device), expect_config=AstroClipConfig)[1]


def _embed(args: argparse.Namespace) -> int:
    from scifm.astroclip.embed import embed_file, embedding_summary
    from scifm.astroclip.pipeline import survey_fetcher

    model = _load_clip(args.model, args.device)
    fetch, n = survey_fetcher(args.survey)
    n = min(n, args.n or n)
    out = embed_file(model, fetch, n, args.out, chunk=args.chunk, source=str(args.survey),
                     device=next(model.parameters()).device, progress=not args.quiet)  # fmt: skip
    summary = embedding_summary(out)
    for name in ("image", "spectrum"):
        if summary.get(f"no_{name}"):
            print(f"WARNING: {args.survey}: {summary[f'no_{name}']} of {n} galaxies have no "
                  f"{name} data (all NaN, inf or 0) or values out of range (no finite "
                  f"embedding); their {name} embeddings are NaN and {name}_ok is False in "
                  f"{out}", file=sys.stderr)  # fmt: skip
    print(strict_json({"embeddings": str(out), "n": n, **{k: v for k, v in summary.items()
                                                          if k.startswith("no_")}}))  # fmt: skip
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from scifm.astroclip.embed import embed_arrays, embedded_ok
    from scifm.astroclip.evaluate import cross_modal_recall, knn_r2
    from scifm.astroclip.splits import model_split

    model = _load_clip(args.model, args.device)
    _, data, tr, te = _load(args, model.config)
    try:
        tr, te, rec = model_split(_ckpt(args.model), data.targetid, source=args.survey)
        how = f"recorded with the model: {rec['how']}"
    except ValueError as e:  # an older checkpoint: say which split was used instead
        how = f"the survey's split, not the model's ({e})"
    emb = embed_arrays(model, data.images, data.spectra, device=next(model.parameters()).device)
    # a galaxy with no image or spectrum (or one the model gives no finite embedding) would
    # be scored on an all-zero input, or break the k-NN with NaN
    ok = embedded_ok(data.images, emb["image"]) & embedded_ok(data.spectra, emb["spectrum"])
    dropped = int((~ok[tr]).sum() + (~ok[te]).sum())
    note = ""
    if dropped:
        note = (f"{dropped} of {len(tr) + len(te)} galaxies of the split have no image or no "
                "spectrum (all NaN, inf or 0, or values out of range)")  # fmt: skip
        tr, te = tr[ok[tr]], te[ok[te]]
        print(f"WARNING: {args.survey}: {note}; left out of the evaluation", file=sys.stderr)
        note += "; "
    if len(tr) < 2 or len(te) < 2:
        raise ValueError(f"survey {args.survey}: {note}{len(tr)} training and {len(te)} test "
                         "galaxies left, too few to evaluate (too few training/test galaxies: "
                         "need at least 2 of each)")  # fmt: skip
    wanted = [k for k in args.props.split(",") if k]
    props = {k: data.props[k] for k in wanted if k in data.props}
    absent = [k for k in wanted if k not in data.props]
    try:
        out = {
            f"knn_r2_{m}": knn_r2(emb[m][tr], emb[m][te], {k: v[tr] for k, v in props.items()},
                                  {k: v[te] for k, v in props.items()})
            for m in ("image", "spectrum")
        }  # fmt: skip
    except ValueError as e:  # too few galaxies with a finite property
        raise ValueError(f"survey {args.survey}: {e}") from e
    out["image_to_spectrum"] = cross_modal_recall(emb["image"][te], emb["spectrum"][te])
    out["split"] = {"how": how, "n_train": len(tr), "n_test": len(te), "no_data": dropped}
    if absent:
        out["absent_props"] = absent
        out["note"] = f"{', '.join(absent)} not in the survey file (not evaluated)"
    print(strict_json(out, indent=2))
    return 0


def _search(args: argparse.Namespace) -> int:
    from scifm.astroclip.catalog import Catalog
    from scifm.astroclip.explore import Explorer
    from scifm.core.paths import assets_dir

    ex = Explorer(Catalog.load(args.catalog or assets_dir() / "astroclip" / "catalog.h5"))
    mode = _MODE_ALIASES.get(args.mode, args.mode)
    res = ex.neighbours(ex.row_of(args.id), mode, args.k)
    print(res.table.to_csv(index=False) if args.csv else res.table.to_string(index=False))
    return 0


def _redshift(args: argparse.Namespace) -> int:
    from scifm.astroclip.realspec import add_knn_redshifts
    from scifm.core.paths import assets_dir
    from scifm.survey.cli import check_json_out, show_redshift_rows
    from scifm.survey.redshift import redshift_rows

    root = Path(args.assets) if args.assets else assets_dir() / "astroclip"
    check_json_out(args.json, [args.file, args.templates, args.redrock, root / "catalog.h5"])
    rows, z_range = redshift_rows(args.file, split=args.split, n=args.n,
                                  catalog=root / "catalog.h5", templates=args.templates,
                                  redrock=args.redrock)  # fmt: skip
    add_knn_redshifts(rows, args.file, root, split=args.split, n=args.n, k=args.k)
    show_redshift_rows(args.file, rows, z_range, args.json, knn=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("astroclip", help="AstroCLIP: train, embed, evaluate, search")
    sub = group.add_subparsers(dest="astroclip_command", required=True)
    p = sub.add_parser("pretrain-image", help="self-supervised pretraining of the image encoder")
    _train_args(p)
    p.add_argument(
        "--method",
        choices=("moco", "vicreg"),
        default=None,
        help="self-supervised objective (default: the preset's, moco)",
    )
    p.add_argument("--eval-every", type=positive_int, default=0,
                   help="k-NN R^2 of the frozen embedding on the held-out split every N steps "
                        "(always at the end); appended to OUT/eval.jsonl")  # fmt: skip
    p.add_argument("--ckpt-every", type=positive_int, default=None,
                   help="steps between resumable checkpoints (default: steps/4)")  # fmt: skip
    p.set_defaults(func=_pretrain_image)
    p = sub.add_parser("pretrain-spectrum", help="masked-modelling pretraining of SpecFormer")
    _train_args(p)
    _eval_args(p, "masked loss (val_loss) and k-NN R^2 of the frozen embedding",
               "val_loss")  # fmt: skip
    p.set_defaults(func=_pretrain_spectrum)
    p = sub.add_parser("align", help="InfoNCE alignment heads on the frozen encoders")
    _train_args(p)
    p.add_argument("--image", required=True, help="pretrain-image run folder or checkpoint")
    p.add_argument("--spectrum", required=True, help="pretrain-spectrum run folder or checkpoint")
    p.add_argument("--spectrum-head", default="attention",
                   help="spectrum alignment head: 'attention' (the paper's learned query) "
                        "or 'seg<K>' (tokens averaged in K wavelength segments, then an "
                        "MLP)")  # fmt: skip
    p.add_argument("--embed-dim", type=positive_int, default=None,
                   help="shared embedding size (default: the preset's; 128, the workshop "
                        "size; the MNRAS paper 1024)")  # fmt: skip
    p.add_argument("--image-finetune-blocks", type=int, default=0, metavar="N",
                   help="train the image encoder's top N residual blocks with the heads "
                        "(default 0: frozen, as in the paper)")  # fmt: skip
    _eval_args(p, "cross-modal recall@1/10/100 among the held-out pairs",
               "recall@10 (image -> spectrum)")  # fmt: skip
    p.set_defaults(func=_align)
    p = sub.add_parser("embed", help="embed a survey to an HDF5 file (resumable)")
    _common(p)
    p.add_argument("--model", required=True, help="align run folder or checkpoint")
    p.add_argument("--out", required=True, help="output .h5")
    p.add_argument("--chunk", type=positive_int, default=512)
    p.set_defaults(func=_embed)
    p = sub.add_parser("evaluate", help="zero-shot k-NN R^2 and cross-modal recall")
    _common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--props", default="redshift,log_mstar,log_ssfr,log_z,age")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("search", help="top-k neighbours of a target id in a catalog")
    _common(p, survey=False)
    p.add_argument("--catalog", default=None, help="default: the shipped demo catalog")
    p.add_argument("--id", required=True, help="target id")
    p.add_argument("--mode", default="i2i", help="i2i, s2s, i2s, s2i (or the full mode name)")
    p.add_argument("--k", type=positive_int, default=10)
    p.add_argument("--csv", action="store_true", help="print CSV")
    p.set_defaults(func=_search)
    p = sub.add_parser("redshift", help="template and k-NN redshift of each spectrum of a file")
    add_redshift_input_args(p, n_help="first N objects or rows only")
    p.add_argument("--assets", default=None,
                   help="AstroCLIP asset folder: model, catalog.h5, redshift_index.h5 "
                        "(default the shipped assets/astroclip)")  # fmt: skip
    p.add_argument("--k", type=positive_int, default=16, help="neighbours (the page's 16)")
    p.set_defaults(func=_redshift)
