"""Generate a survey file: chunks of galaxies simulated in parallel, written as they finish.

Workers (separate processes, each with its own bagpipes model) simulate chunks
of ``config.chunk_size`` galaxies; only the parent writes to the HDF5 file, and
it marks a chunk done after flushing its rows (see ``io.py``). Running the same
command again on an interrupted file resumes with the chunks still pending; the
result is identical because every galaxy depends only on (seed, object id) and the
generator version (``io.VERSION``): a file begun by another version is refused.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import h5py
import numpy as np

from scifm.survey.config import SurveyConfig
from scifm.survey.io import VERSION, create_survey_file, survey_info, write_chunk
from scifm.survey.simulate import simulate_range

_WORKER: dict = {}  # per-process state: the bagpipes model survives between chunks


def _run_chunk(task: tuple[dict, int, int, int, int]) -> tuple[int, int, dict]:
    # Set up lazily here, not in a Pool initializer: a failing initializer makes the pool
    # respawn workers forever, while an error here reaches the parent.
    cfg_dict, seed, chunk, start, stop = task
    if _WORKER.get("key") != (str(cfg_dict), seed):
        from scifm.survey.spectra import SpectrumSimulator

        cfg = SurveyConfig.from_dict(cfg_dict)
        _WORKER.update(key=(str(cfg_dict), seed), cfg=cfg, spectra=SpectrumSimulator(cfg))
    rows = simulate_range(_WORKER["cfg"], seed, start, stop, _WORKER["spectra"])
    return chunk, start, rows


def pending_chunks(path: str | Path) -> list[tuple[int, int, int]]:
    """(chunk, start, stop) of the chunks of ``path`` not yet written."""
    with h5py.File(path, "r") as f:
        n, cs = int(f.attrs["n"]), int(f.attrs["chunk_size"])
        done = f["chunk_done"][:]
    return [(c, c * cs, min(n, (c + 1) * cs)) for c in np.flatnonzero(~done)]


def generate_survey(
    out: str | Path,
    n: int,
    *,
    config: SurveyConfig | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Simulate ``n`` galaxies into ``out`` (resuming it if it holds the same survey)."""
    cfg = config or SurveyConfig()
    out = Path(out)
    if workers < 1:  # n is checked by create_survey_file, before any file is touched
        raise ValueError(f"generate_survey: workers={workers}; expected >= 1")
    if out.is_dir():
        raise ValueError(f"survey file {out}: is a directory; give the path of an .h5 file")
    if out.exists() and not overwrite:
        info = survey_info(out)
        if (info["n"], info["seed"], info["config"]) != (n, seed, cfg):
            raise ValueError(
                f"survey file {out}: holds n={info['n']}, seed={info['seed']} with another or "
                f"the same config; asked for n={n}, seed={seed}. Pass overwrite=True "
                "(--overwrite) to replace it, or resume with the same arguments"
            )
        if info.get("version") != VERSION:
            raise ValueError(
                f"survey file {out}: written by survey generator version {info['version']}, "
                f"this code is version {VERSION} (other numbers for the same seed and object "
                "id); resuming would mix two generators in one file. Write a new file "
                "(another --out) or pass overwrite=True (--overwrite) to start it again"
            )
    else:
        # Simulate the first galaxy in memory before the file is created or replaced: a
        # config no galaxy can satisfy (cuts past every flux limit) fails here, and an
        # existing survey given with --overwrite is still whole.
        _run_chunk((cfg.to_dict(), seed, 0, 0, 1))
        out.parent.mkdir(parents=True, exist_ok=True)
        create_survey_file(out, cfg, n, seed)
    tasks = pending_chunks(out)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=n - sum(b - a for _, a, b in tasks), unit="gal",
                   desc=f"survey {out.name}")  # fmt: skip
    with h5py.File(out, "r+") as f:
        for chunk, start, rows in _results(cfg, seed, tasks, workers):
            write_chunk(f, chunk, start, rows)
            if bar is not None:
                bar.update(rows["images"].shape[0])
    if bar is not None:
        bar.close()
    return out


def _results(cfg: SurveyConfig, seed: int, tasks: list, workers: int):
    """Yield finished chunks, in-process for one worker, else from a spawn pool."""
    jobs = [(cfg.to_dict(), seed, *task) for task in tasks]
    if workers == 1 or len(jobs) <= 1:
        yield from map(_run_chunk, jobs)
        return
    ctx = mp.get_context("spawn")  # no forked HDF5 handles in the workers
    with ctx.Pool(workers) as pool:
        yield from pool.imap_unordered(_run_chunk, jobs)
