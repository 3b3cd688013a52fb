"""The seeding policy: train() leaves the global RNGs alone, keyed draws are rank-independent,
a 2-rank run killed and resumed equals an uninterrupted one, and no library site seeds or
draws from the global streams."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from scifm.core import DatasetBatches, TrainConfig, load_model, save_checkpoint, train
from scifm.core.paths import repo_root
from scifm.core.rng import (
    SampleRandom,
    batch_positions,
    drop_path,
    keyed_uniform,
    sample_generators,
    sample_keys,
    seeded,
)
from scifm.core.testing import TinyConfig, TinyMLP, mse_loss, regression_data


def _tiny_run(seed: int) -> dict[str, torch.Tensor]:
    cfg = TinyConfig()  # dropout and DropPath both active
    with seeded(5):
        model = TinyMLP(cfg)
    data = DatasetBatches(regression_data(cfg, 64, seed=0), 16, seed=1)
    tc = TrainConfig(steps=4, warmup_steps=1, progress=False, seed=seed)
    train(model, mse_loss, data, tc, device="cpu")
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_leaves_global_torch_and_numpy_state_unchanged():
    torch.manual_seed(7)
    np.random.seed(7)  # noqa: NPY002 (the global state under test)
    torch_before, np_before = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    a = _tiny_run(seed=0)
    assert torch.equal(torch.get_rng_state(), torch_before)
    np_after = np.random.get_state()  # noqa: NPY002
    assert np_after[0] == np_before[0] and (np_after[1] == np_before[1]).all()
    assert np_after[2:] == np_before[2:]
    torch.manual_seed(99)  # another caller state: same result, it is not an input
    b = _tiny_run(seed=0)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = _tiny_run(seed=1)  # but the training seed is
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_train_leaves_the_device_stream_and_masks_match_cpu():
    before = torch.cuda.get_rng_state()
    cfg = TinyConfig()
    with seeded(5):
        model = TinyMLP(cfg)
    data = DatasetBatches(regression_data(cfg, 64, seed=0), 16, seed=1)
    tc = TrainConfig(steps=3, warmup_steps=1, progress=False)
    train(model, mse_loss, data, tc, device="cuda")
    assert torch.equal(torch.cuda.get_rng_state(), before)
    with sample_keys(0, 3, batch_positions(8, 0, 0, 1)):
        on_gpu = keyed_uniform(8, "cuda").cpu()
    with sample_keys(0, 3, batch_positions(8, 0, 0, 1)):
        assert torch.equal(on_gpu, keyed_uniform(8))


def test_seeded_init_is_reproducible_and_restores_the_caller_state():
    before = torch.get_rng_state()
    with seeded(3):
        w1 = torch.nn.Linear(4, 4).weight.detach().clone()
    with seeded(3):
        w2 = torch.nn.Linear(4, 4).weight.detach().clone()
    assert torch.equal(w1, w2)
    assert torch.equal(torch.get_rng_state(), before)


def test_load_model_leaves_the_global_rng_alone(tmp_path):
    cfg = TinyConfig()
    save_checkpoint(tmp_path / "ck", TinyMLP(cfg), cfg)
    before = torch.get_rng_state()
    load_model(tmp_path / "ck")
    assert torch.equal(torch.get_rng_state(), before)


def _mask(n: int, micro: int, rank: int, world: int, *, step: int = 3, seed: int = 0):
    with sample_keys(seed, step, batch_positions(n, micro, rank, world)):
        x = torch.ones(n, 2)
        return drop_path(x, 0.5, training=True)[:, 0] > 0


def test_two_ranks_draw_different_masks_that_together_equal_one_process():
    one = _mask(16, 0, 0, 1)
    r0, r1 = _mask(8, 0, 0, 2), _mask(8, 0, 1, 2)
    assert not torch.equal(r0, r1), "ranks must not share DropPath masks"
    assert torch.equal(one[0::2], r0) and torch.equal(one[1::2], r1)  # idx[rank::world]
    # gradient accumulation: micro-batch 1 of 8 continues the positions of a batch of 16
    acc = torch.cat([_mask(8, 0, 0, 1), _mask(8, 1, 0, 1)])
    assert torch.equal(acc, one)
    assert not torch.equal(_mask(16, 0, 0, 1, step=4), one)
    assert not torch.equal(_mask(16, 0, 0, 1, seed=1), one)
    assert 0.2 < float(one.float().mean()) < 0.8


def test_keyed_draws_differ_between_layers_and_frames():
    with sample_keys(0, 0, batch_positions(4, 0, 0, 1)):
        a, b = keyed_uniform(4), keyed_uniform(4)  # two DropPath layers in one forward
        frames = keyed_uniform(12)  # (b t) rows with t = 3
    assert not torch.equal(a, b)
    assert frames.shape == (12,) and len(set(frames.tolist())) == 12
    with (
        sample_keys(0, 0, batch_positions(2, 0, 1, 2)),
        pytest.raises(ValueError, match="multiple of 2"),
    ):
        keyed_uniform(3)


def test_sample_generators_depend_on_the_position_only():
    g = sample_generators(0, 5, [3, 4])
    again = sample_generators(0, 5, [4])
    assert torch.equal(torch.rand(3, generator=g[1]), torch.rand(3, generator=again[0]))
    assert not torch.equal(torch.rand(3, generator=g[0]), torch.rand(3, generator=g[1]))


def test_keyed_augmentations_do_not_depend_on_the_batch_split():
    """An image's augmentation depends on (seed, step, its global position) only."""
    from scifm.survey.transforms import AugmentConfig, augment_images

    cfg = AugmentConfig(crop=None, gain_jitter=0.1)
    x = torch.rand(4, 3, 12, 12, generator=torch.Generator().manual_seed(0))

    def aug(rows, micro, rank, world, step=2):
        rng = SampleRandom.keyed(7, step, batch_positions(len(rows), micro, rank, world))
        return augment_images(rows, cfg, rng)

    whole = aug(x, 0, 0, 1)
    assert torch.allclose(whole[0::2], aug(x[0::2], 0, 0, 2), atol=1e-7)
    assert torch.allclose(whole[1::2], aug(x[1::2], 0, 1, 2), atol=1e-7)
    assert not torch.allclose(aug(x, 0, 0, 1, step=3), whole)
    one = augment_images(x, cfg, torch.Generator().manual_seed(1))  # the batch-generator path
    assert torch.equal(one, augment_images(x, cfg, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match="leading size"):
        SampleRandom.keyed(0, 0, [0, 1]).rand(3)


def _script(out: Path, *extra: str) -> list[str]:
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun is installed with torch"
    return [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "scifm.core.testing",
            "--out", str(out), *extra]  # fmt: skip


@pytest.mark.slow
def test_two_rank_run_killed_and_resumed_is_bitwise_identical(tmp_path):
    """Dropout (per-rank stream) and DropPath (keyed) active; one rank dies at step 12."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref, crashed = tmp_path / "ref", tmp_path / "crashed"
    args = ["--steps", "16", "--ckpt-every", "5", "--batch-size", "16"]
    subprocess.run(_script(ref, *args), check=True, timeout=300, env=env)
    first = subprocess.run(_script(crashed, *args, "--crash-after", "12"), timeout=300, env=env)
    assert first.returncode != 0
    state = (crashed / "checkpoint" / "trainer.json").read_text()
    assert '"step": 10' in state, state[:200]
    subprocess.run(_script(crashed, *args), check=True, timeout=300, env=env)
    a = load_file(str(ref / "checkpoint" / "model.safetensors"))
    b = load_file(str(crashed / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- no library site seeds or draws from the global streams -----------------------------

_DRAWS = {"rand", "randn", "randint", "randperm", "rand_like", "randn_like", "randint_like",
          "bernoulli", "multinomial", "normal", "poisson"}  # fmt: skip
_INPLACE = {"bernoulli_", "normal_", "uniform_", "random_", "exponential_", "geometric_",
            "cauchy_", "log_normal_"}  # fmt: skip
_NP_OK = {"default_rng", "SeedSequence", "Generator", "Philox", "PCG64", "BitGenerator"}
# Module construction may draw from the global stream: its callers build under seeded().
_INIT_FUNCS = {"__init__", "reset_parameters", "_init_weights"}
# keyed_uniform outside train() draws globally, as nn.Dropout does; reseed seeds the stream
# that train() and seeded() have forked.
_ALLOWED = {("core/rng.py", "keyed_uniform"), ("core/rng.py", "reseed")}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _forks(node: ast.AST) -> bool:
    """``with torch.random.fork_rng(...)`` (or ``seeded``): seeding inside is restored after."""
    return isinstance(node, ast.With) and any(
        isinstance(i.context_expr, ast.Call)
        and _dotted(i.context_expr.func).endswith(("fork_rng", "seeded"))
        for i in node.items
    )


def _global_rng_sites(file: Path, rel: str) -> list[str]:
    bad = []

    def visit(node: ast.AST, func: str, forked: bool) -> None:
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, ast.FunctionDef) else func
            if isinstance(child, ast.Call):
                bad.extend(_check_call(child, rel, func, forked))
            visit(child, name, forked or _forks(child))

    visit(ast.parse(file.read_text()), "", False)
    return bad


_SEEDS = {"torch.manual_seed", "torch.cuda.manual_seed", "torch.cuda.manual_seed_all",
          "torch.random.manual_seed", "torch.seed", "np.random.seed", "random.seed"}  # fmt: skip


def _check_call(call: ast.Call, rel: str, func: str, forked: bool) -> list[str]:
    name = _dotted(call.func)
    kw = {k.arg for k in call.keywords}
    where = f"{rel}:{call.lineno} ({name})"
    if (rel, func) in _ALLOWED:
        return []
    if name in _SEEDS and not forked:
        return [where]
    if name.startswith("np.random.") and name.split(".")[2] not in _NP_OK:
        return [where]
    if func in _INIT_FUNCS or name.startswith("nn.init."):
        return []
    short = name.rsplit(".", 1)[-1]
    if name.startswith("torch.") and short in _DRAWS and "generator" not in kw:
        return [where]
    if short in _INPLACE and "generator" not in kw and not name.startswith("nn.init"):
        return [where]
    return []


def test_no_library_function_touches_the_global_rngs():
    lib = repo_root() / "lib" / "scifm"
    bad = []
    for file in sorted(lib.rglob("*.py")):
        bad += _global_rng_sites(file, file.relative_to(lib).as_posix())
    assert not bad, "global RNG use (pass a generator or build under core.rng.seeded):\n" + (
        "\n".join(bad)
    )


def test_the_scan_finds_a_global_draw(tmp_path):
    f = tmp_path / "x.py"
    f.write_text(
        "import torch, numpy as np\n"
        "def f(x):\n    torch.manual_seed(0)\n    return torch.rand(3) + np.random.rand()\n"
        "def g(x, gen):\n    return torch.rand(3, generator=gen) + x.bernoulli_(0.5)\n"
        "def h():\n    with torch.random.fork_rng():\n        torch.manual_seed(1)\n"
    )
    found = _global_rng_sites(f, "x.py")
    assert [s.split(" ")[1] for s in found] == [
        "(torch.manual_seed)", "(torch.rand)", "(np.random.rand)", "(x.bernoulli_)"
    ]  # fmt: skip


def test_close_distributed_destroys_the_group_and_is_idempotent(tmp_path):
    """The group torchrun opens is closed at exit (gloo aborts a rank otherwise)."""
    import torch.distributed as dist

    from scifm.core.distributed import close_distributed

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    assert dist.is_initialized()
    close_distributed()
    assert not dist.is_initialized()
    close_distributed()  # nothing open: a no-op
