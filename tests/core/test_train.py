"""The shared training loop: overfitting, exact resume after SIGKILL, DDP equivalence."""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from scifm.core import DatasetBatches, TrainConfig, load_model, train
from scifm.core.schedule import warmup_cosine
from scifm.core.testing import TinyConfig, TinyMLP, mse_loss, regression_data


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoint" / "model.safetensors"))


def _script(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "scifm.core.testing", "--out", str(out), *extra]


class OneBatch:
    def __init__(self, batch):
        self.batch = batch

    def get(self, step, micro, rank, world_size):
        return self.batch


def test_tiny_model_overfits_one_batch():
    cfg = TinyConfig(dropout=0.0)
    torch.manual_seed(0)
    model = TinyMLP(cfg)
    x, y = regression_data(cfg, 16, seed=1).tensors
    with torch.no_grad():
        first = float(mse_loss(model.eval(), (x, y))[0])
    tc = TrainConfig(steps=300, lr=1e-2, warmup_steps=5, progress=False, log_every=50)
    seen = []
    res = train(model, mse_loss, OneBatch((x, y)), tc, device="cpu", callback=seen.append)
    with torch.no_grad():
        last = float(mse_loss(model, (x, y))[0])
    assert last < 1e-3 * first, (first, last)
    assert res.history[-1]["step"] == 300
    assert [r["step"] for r in seen] == [50, 100, 150, 200, 250, 300]  # the live-plot hook
    assert seen == res.history


def test_sigkill_then_resume_is_bitwise_identical(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    args = ["--steps", "60", "--ckpt-every", "5", "--workers", "1"]  # batches from a worker
    subprocess.run(_script(ref, *args), check=True, timeout=300)
    proc = subprocess.Popen(_script(killed, *args, "--sleep", "0.05"))
    state = killed / "checkpoint" / "trainer.json"
    deadline = time.time() + 240
    while time.time() < deadline:
        if state.exists() and json.loads(state.read_text())["step"] >= 15:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved_step = json.loads(state.read_text())["step"]
    assert 15 <= saved_step < 60, saved_step
    subprocess.run(_script(killed, *args), check=True, timeout=300)
    done = json.loads((killed / "done.json").read_text())
    assert done == {"step": 60, "resumed_from": saved_step}
    a, b = _weights(ref), _weights(killed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(ln)["step"] for ln in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 61)), "metrics log should hold each step exactly once"


@pytest.mark.slow
def test_torchrun_two_ranks_match_one_process(tmp_path):
    """Two gloo ranks x 8 samples vs one process x 16: same global batch, DropPath active.

    The masks are keyed by (seed, step, global sample position), so the ranks draw
    different masks that together are the one process's (with masks keyed by the rank's
    own index instead, the weights differ by ~3e-2).

    Tolerance: the all-reduce sums per-rank mean gradients in another order than one
    process's mean over 16, so fp32 rounding differs (~1e-7 relative per step);
    after 20 Adam steps we accept 1e-5 absolute.
    """
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--steps", "20", "--batch-size", "16", "--preset", "no_dropout"]
    subprocess.run(_script(one, *common), check=True, timeout=300)
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "scifm.core.testing"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*cmd, "--out", str(two), *common], check=True, timeout=300, env=env)
    a, b = _weights(one), _weights(two)
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert diff < 1e-5, diff


def test_accumulation_matches_big_batch(tmp_path):
    """2 micro-batches of 8 equal one batch of 16 (the loop divides loss by accum_steps);
    DropPath is active: micro-batch 1 continues the global positions of micro-batch 0."""
    one, acc = tmp_path / "one", tmp_path / "acc"
    common = ["--steps", "10", "--preset", "no_dropout"]
    subprocess.run(_script(one, *common, "--batch-size", "16"), check=True, timeout=300)
    subprocess.run(
        _script(acc, *common, "--batch-size", "8", "--accum", "2"), check=True, timeout=300
    )
    a, b = _weights(one), _weights(acc)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_checkpoint_of_a_run_loads_as_model(tmp_path):
    subprocess.run(_script(tmp_path / "r", "--steps", "5"), check=True, timeout=300)
    cfg, model = load_model(tmp_path / "r" / "checkpoint")
    assert isinstance(model, TinyMLP) and cfg == TinyConfig.preset("tiny")
    assert not model.training


def test_nan_loss_stops_with_step():
    cfg = TinyConfig()
    x = torch.full((4, cfg.d_in), float("nan"))
    tc = TrainConfig(steps=3, progress=False)
    with pytest.raises(FloatingPointError, match="at step 0"):
        train(TinyMLP(cfg), mse_loss, OneBatch((x, torch.zeros(4))), tc, device="cpu")


def test_failed_run_leaves_no_empty_folder_and_keeps_an_old_one(tmp_path):
    cfg = TinyConfig()
    bad = OneBatch((torch.full((4, cfg.d_in), float("nan")), torch.zeros(4)))
    tc = TrainConfig(steps=3, progress=False)
    with pytest.raises(FloatingPointError):
        train(TinyMLP(cfg), mse_loss, bad, tc, device="cpu", out_dir=tmp_path / "a" / "new")
    assert not (tmp_path / "a").exists()  # made by the failed call, with nothing in it
    good = OneBatch((torch.zeros(4, cfg.d_in), torch.zeros(4)))
    cut = TrainConfig(steps=6, stop_at=3, progress=False)
    train(TinyMLP(cfg), mse_loss, good, cut, device="cpu", out_dir=tmp_path / "old")
    before = sorted(p.name for p in (tmp_path / "old").rglob("*"))
    whole = TrainConfig(steps=6, progress=False)
    with pytest.raises(FloatingPointError, match="at step 3"):
        train(TinyMLP(cfg), mse_loss, bad, whole, device="cpu", out_dir=tmp_path / "old")
    assert sorted(p.name for p in (tmp_path / "old").rglob("*")) == before  # run kept whole


def test_dataset_batches_deterministic_and_sharded():
    ds = regression_data(TinyConfig(), 40, seed=0)
    b = DatasetBatches(ds, batch_size=8, seed=5)
    assert (b.indices(7, 0) == DatasetBatches(ds, 8, seed=5).indices(7, 0)).all()
    full = b.indices(3, 0)
    assert sorted([*b.indices(3, 0, 0, 2), *b.indices(3, 0, 1, 2)]) == sorted(full)
    epoch0 = [i for s in range(5) for i in b.indices(s, 0)]
    assert sorted(epoch0) == list(range(40))
    with pytest.raises(ValueError, match="fewer than batch_size"):
        DatasetBatches(ds, batch_size=100)


def test_schedule_warmup_then_cosine_to_floor():
    f = [warmup_cosine(s, total=100, warmup=10, min_ratio=0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))
    assert f[-1] == pytest.approx(0.1, abs=1e-3)


def test_stop_at_then_resume_equals_one_run(tmp_path):
    """stop_at ends a call at a milestone on the full run's schedule (lr of step 8 of 20, not
    the end of an 8-step cosine); resuming to `steps` gives the weights of one uninterrupted run."""
    cfg = TinyConfig(dropout=0.0)
    data = DatasetBatches(regression_data(cfg, 64, seed=1), batch_size=8, seed=0)
    base = {"steps": 20, "lr": 1e-2, "warmup_steps": 2, "progress": False, "log_every": 2}

    def run(out, **kw):
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = TinyMLP(cfg)
        steps = kw.pop("steps_override", base["steps"])
        tc = TrainConfig(**{**base, "steps": steps}, **kw)
        return model, train(model, mse_loss, data, tc, device="cpu", out_dir=out)

    one, whole = run(tmp_path / "one")
    _, first = run(tmp_path / "cut", stop_at=8)
    assert first.step == 8 and first.history[-1]["step"] == 8
    assert first.history[-1]["lr"] == pytest.approx(whole.history[3]["lr"])  # step 8's lr
    cut, rest = run(tmp_path / "cut")
    assert rest.resumed_from == 8 and rest.step == 20
    a, b = one.state_dict(), cut.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="stop_at=30"):
        TrainConfig(steps=20, stop_at=30)
    # a resume on another schedule is refused before a step is taken, the run left as it was
    before = _weights(tmp_path / "cut")
    with pytest.raises(ValueError, match=r"another LR schedule \(steps 20 -> 40\)"):
        run(tmp_path / "cut", steps_override=40)
    after = _weights(tmp_path / "cut")
    assert all(torch.equal(before[k], after[k]) for k in before)
    # a checkpoint older than the schedule record is checked by its last LR
    from scifm.core.resume import check_schedule

    tc = TrainConfig(**base)
    lr8 = tc.lr * warmup_cosine(7, total=20, warmup=2, min_ratio=tc.min_lr_ratio)
    old = {"step": 8, "param_groups": [{"lr": lr8}]}
    check_schedule(tmp_path, old, tc)  # the same schedule: passes
    with pytest.raises(ValueError, match="its LR at step 8 was"):
        check_schedule(tmp_path, old, TrainConfig(**{**base, "steps": 40}))
    check_schedule(tmp_path, old, TrainConfig(**{**base, "steps": 40}), moments=False)
    # a flat schedule (min_lr_ratio 1: xVal's converge chunks) may grow; its LR may not change
    flat = {**base, "min_lr_ratio": 1.0}
    from scifm.core.resume import SCHEDULE_FIELDS

    rec = {"step": 8, "schedule": {k: getattr(TrainConfig(**flat), k) for k in SCHEDULE_FIELDS}}
    check_schedule(tmp_path, rec, TrainConfig(**{**flat, "steps": 40}))
    with pytest.raises(ValueError, match=r"\(lr 0.01 -> 0.02\)"):
        check_schedule(tmp_path, rec, TrainConfig(**{**flat, "steps": 40, "lr": 2e-2}))


def test_warm_restart_continues_the_schedule_from_weights_alone(tmp_path):
    """A run whose trainer state is lost goes on from its weights at its step: the LR of the
    schedule at that step, the carried learning curve kept, Adam's moments fresh; an existing
    checkpoint or a step off the schedule is refused."""
    from scifm.core import warm_restart

    cfg = TinyConfig(dropout=0.0)
    data = DatasetBatches(regression_data(cfg, 64, seed=1), batch_size=8, seed=0)
    tc = TrainConfig(steps=20, lr=1e-2, warmup_steps=2, progress=False, log_every=2)
    torch.manual_seed(0)
    model = TinyMLP(cfg)
    whole = train(model, mse_loss, data, TrainConfig(**{**tc.to_dict(), "stop_at": 8}),
                  device="cpu", out_dir=tmp_path / "lost")  # fmt: skip
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    history = [{"step": r["step"], "loss": r["loss"]} for r in whole.history]
    out = tmp_path / "warm"
    warm_restart(out, model, tc, 8, history=history)
    assert (out / "metrics.jsonl").read_text().count("\n") == 4  # steps 2, 4, 6, 8 carried
    torch.manual_seed(1)
    fresh = TinyMLP(cfg)  # different weights: the checkpoint's must replace them
    rest = train(fresh, mse_loss, data, tc, device="cpu", out_dir=out)
    assert rest.resumed_from == 8 and rest.step == 20
    assert rest.history[0]["step"] == 10
    torch.manual_seed(0)
    ref = train(TinyMLP(cfg), mse_loss, data, tc, device="cpu")  # one uninterrupted run
    assert rest.history[0]["lr"] == pytest.approx(ref.history[4]["lr"])  # step 10's lr
    assert rest.history[0]["loss"] != pytest.approx(ref.history[4]["loss"])  # fresh moments
    steps = [json.loads(ln)["step"] for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(2, 21, 2))
    assert not all(torch.equal(weights[k], fresh.state_dict()[k]) for k in weights)  # trained on
    with pytest.raises(ValueError, match="exists"):
        warm_restart(out, model, tc, 8)
    with pytest.raises(ValueError, match="step=20"):
        warm_restart(tmp_path / "w2", model, tc, 20)
    with pytest.raises(ValueError, match="past 4"):
        warm_restart(tmp_path / "w3", model, tc, 4, history=history)


def test_a_resume_with_another_model_or_other_data_is_refused(tmp_path):
    """Training into a finished run's folder with another model config or other data must
    not report (or continue) the old weights as the new run's."""
    cfg = TinyConfig(dropout=0.0)
    data = DatasetBatches(regression_data(cfg, 64, seed=1), batch_size=8, seed=0)
    tc = TrainConfig(steps=4, lr=1e-2, warmup_steps=1, progress=False, log_every=2)
    out = tmp_path / "run"
    train(TinyMLP(cfg), mse_loss, data, tc, device="cpu", out_dir=out, extra={"data": "a.jsonl"})
    before = _weights(out)
    wide = TinyConfig(dropout=0.0, d_hidden=64)
    with pytest.raises(ValueError, match=r"run: holds a run with other settings \(d_hidden differ"):
        train(TinyMLP(wide), mse_loss, data, tc, device="cpu", out_dir=out)
    with pytest.raises(ValueError, match=r"\(data differ\)"):
        train(TinyMLP(cfg), mse_loss, data, tc, device="cpu", out_dir=out, extra={"data": "b"})
    after = _weights(out)
    assert all(torch.equal(before[k], after[k]) for k in before)
    same = train(TinyMLP(cfg), mse_loss, data, tc, device="cpu", out_dir=out,
                 extra={"data": "a.jsonl"})  # fmt: skip
    assert same.resumed_from == 4
