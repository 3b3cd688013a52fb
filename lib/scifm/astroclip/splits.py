"""The train/test split a model was trained on, recorded with it and read back by target id.

Every number that compares against a model (its own zero-shot R^2, the supervised CNN,
the photometry MLP) must use the galaxies the model held out, not a split recomputed
later by code that may have changed. A model therefore carries its split in its
checkpoint's extra JSON (``extra["split"]``, or ``extra["manifest"]["split"]`` as
``python -m scifm.astroclip.assets`` writes it):

    {"how": "...", "source": "data/survey.h5", "n": 12000, "n_train": 9600,
     "n_test": 2400, "test_targetids": [...]}

The training rows are the first ``n`` rows of the source that are not test rows (every
split here partitions the first ``n`` rows), so only the test target ids are stored.
The demo model shipped before splits were recorded has ``catalog.h5`` beside it, whose
``props/is_test`` column marks the held-out galaxies; it is read the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from scifm.core.checkpoint import read_record


def split_record(
    targetid: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray, *, how: str, source: str
) -> dict[str, Any]:
    """The JSON record of a split of the rows ``0..len(targetid)`` of ``source``."""
    n = len(targetid)
    rows = np.concatenate([train_idx, test_idx])
    if len(np.unique(rows)) != len(rows) or (len(rows) and (rows.min() < 0 or rows.max() >= n)):
        raise ValueError(f"split of {source}: train and test rows overlap or leave 0..{n - 1}")
    return {"how": how, "source": str(source), "n": n, "n_train": len(train_idx),
            "n_test": len(test_idx),
            "test_targetids": [int(t) for t in np.asarray(targetid)[test_idx]]}  # fmt: skip


def recorded_split(model_path: str | Path) -> dict[str, Any]:
    """The split record of a model checkpoint (or of the catalog shipped beside it)."""
    path = Path(model_path)
    extra = read_record(path).get("extra", {})
    for rec in (extra.get("split"), extra.get("manifest", {}).get("split")):
        if isinstance(rec, dict) and "test_targetids" in rec:
            return rec
    catalog = path.parent / "catalog.h5"
    if catalog.is_file():
        with h5py.File(catalog, "r") as f:
            if "props/is_test" in f:
                tid, is_test = f["targetid"][:], f["props/is_test"][:] > 0.5
                return {"how": f"props/is_test of {catalog} (made with the model)",
                        "source": str(f.attrs.get("survey", "unknown")), "n": len(tid),
                        "n_train": int((~is_test).sum()), "n_test": int(is_test.sum()),
                        "test_targetids": [int(t) for t in tid[is_test]]}  # fmt: skip
    raise ValueError(
        f"model {path}: records no train/test split (no 'split' in its checkpoint's extra JSON "
        "and no catalog.h5 with props/is_test beside it); train it with `scifm astroclip align` "
        "or `python -m scifm.astroclip.assets`, which record the split"
    )


def model_split(
    model_path: str | Path, targetid: np.ndarray, *, source: str = "the survey"
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(train rows, test rows, record) of ``targetid`` (rows of ``source``) as the model split them.

    Rows past the recorded ``n`` belong to neither side. A recorded test galaxy missing
    from the rows (a shorter read) is dropped; if none is found, or one sits past row
    ``n``, the rows are not the galaxies the model was trained on and that is an error.
    """
    rec = recorded_split(model_path)
    targetid = np.asarray(targetid, np.int64)
    n = min(int(rec["n"]), len(targetid))
    is_test = np.isin(targetid, np.asarray(rec["test_targetids"], np.int64))
    if not is_test[:n].any() or is_test[n:].any():
        raise ValueError(
            f"{source}: its target ids do not match the split recorded with model {model_path} "
            f"({rec['n_test']} test galaxies among the first {rec['n']} rows of {rec['source']}); "
            "evaluate on the survey the model was trained on"
        )
    rows = np.arange(n)
    return rows[~is_test[:n]], rows[is_test[:n]], rec
