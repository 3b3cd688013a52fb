"""Which solver seeds a model's training trajectories came from, so a demo can say whether
an initial condition is held out (McCabe et al. 2023 evaluate on held-out trajectories).

Two ways a checkpoint's data was made, two records of it:
- files from ``scifm pde generate`` (the 64^2 evidence model): its card's ``data`` holds each
  variant's base ``seed`` and ``trajectories``; chunk k was simulated from
  ``GenerateRequest.chunk_seed(k)`` = ``SeedSequence([seed, k])``. The card does not keep the
  chunk size, so every k below the trajectory count is counted (a superset of the chunks used).
- in-memory fields from ``DataConfig`` (the 32^2 demo model): ``variant_seed(seed, variant,
  "train")`` drew all of a variant's training trajectories.

``simulate(system, 1, seed=s)`` gives the first trajectory of ``simulate(system, n, seed=s)``
for SWE and diffusion-reaction (checked for n = 8 at 64^2), not for INS or CNS, whose draws are
ordered differently; a seed listed here is therefore "seen, or drawn from a training seed", the
safe side for a warning. Any seed not listed gives an initial condition the model never saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scifm.mpp.data import resolve_variant, variant_seed
from scifm.pde.generate import GenerateRequest


def card_training_seeds(card: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    """variant -> {solver seed: where it was used} from a model card's ``data`` (every
    folder of a variant: its first and those under ``more``)."""
    out: dict[str, dict[int, str]] = {}
    for variant, first in dict(card.get("data") or {}).items():
        seeds: dict[int, str] = {}
        more = first.get("more") if isinstance(first, Mapping) else None
        for i, rec in enumerate([first, *(more or [])]):
            try:
                seed, n = int(rec["seed"]), int(rec["trajectories"])
                system = str(rec.get("system") or resolve_variant(variant)[0])
            except (KeyError, TypeError, ValueError) as exc:
                where = f"data[{variant!r}]" + (f"['more'][{i - 1}]" if i else "")
                raise ValueError(
                    f"model card {where}: {exc!r}; expected 'seed' and 'trajectories'"
                ) from None
            req = GenerateRequest(system=system, n=n, seed=seed, chunk_size=1)
            folder = f" of {rec['source']}" if i and rec.get("source") else ""
            seeds.update({
                req.chunk_seed(k): f"SeedSequence([{seed}, {k}]), the seed of training-file "
                f"chunk {k}{folder}"
                for k in range(n)
            })  # fmt: skip
        out[variant] = seeds
    return out


def dataconfig_training_seeds(data: Mapping[str, Any]) -> dict[str, dict[int, str]]:
    """variant -> {solver seed: where it was used} from a ``DataConfig`` record
    (``systems``, ``seed``), as ``make_fields(cfg, "train")`` draws them."""
    try:
        base, systems = int(data["seed"]), list(data["systems"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"data record: {exc!r}; expected 'seed' and 'systems'") from None
    return {
        v: {variant_seed(base, v, "train"): f"the training draw (DataConfig seed {base})"}
        for v in systems
    }


def seed_note(seeds: Mapping[str, Mapping[int, str]]) -> str:
    """One line for a page: how many seeds count as training seeds and the smallest, so a
    reader sees which are safe."""
    every = {s for per in seeds.values() for s in per}
    if not every:
        return "No record of the training seeds: cannot say whether a seed was seen."
    return (
        f"{len(every)} seeds count as this model's training seeds (smallest {min(every):,}): "
        "those its training trajectories were or may have been drawn from. Any other seed "
        "gives an initial condition it never saw; a run from one of them is flagged."
    )


def heldout_line(
    seeds: Mapping[str, Mapping[int, str]],
    system: str,
    seed: int,
    *,
    radius: float | None = None,
    mach: float | None = None,
    ranges: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[str, str] | None:
    """(kind, sentence) saying whether a run's initial condition is held out; kind is
    "held_out", "seen" (a training seed), "by_hand" (a dam radius set by hand) or "unknown"
    (no seeds recorded for ``system``); None without any record of training seeds."""
    if not seeds:
        return None
    if radius is not None:
        lo_hi = (ranges or {}).get(system, {}).get("radius")
        where = ""
        if lo_hi is not None:
            lo, hi = (float(x) for x in lo_hi)
            inside = lo <= radius <= hi
            where = (f", {'inside' if inside else 'outside'} the training radii {lo:g}-{hi:g}"
                     + ("" if inside else ": the model extrapolates"))  # fmt: skip
        return "by_hand", (f"Initial condition set by hand: a dam of radius {radius:g}{where}; "
                           "no training trajectory starts from it exactly.")  # fmt: skip
    per = seeds.get(system)
    if not per:
        return "unknown", f"No record of this model's {system} training seeds."
    extra = f" (Mach {mach:g} set by hand)" if mach is not None else ""
    if int(seed) in per:
        return "seen", (
            f"Seed {seed} is a training seed of this model ({per[int(seed)]}){extra}: this "
            "initial condition was (or may have been) in the training set, so this run is not "
            "held out."
        )
    which = (f"is not the seed {min(per):,}" if len(per) == 1
             else f"is none of the {len(per)} seeds (smallest {min(per):,})")  # fmt: skip
    return "held_out", (
        f"Held out: seed {seed}{extra} {which} this model's {system} training trajectories "
        "were drawn from, so the model never saw this initial condition."
    )
