"""The batch-source family: dataset source, mixture, and the DataLoader that feeds the loop."""

from collections import Counter

import numpy as np
import pytest
import torch

from scifm.core import BatchSource, DatasetBatches, MixtureBatches, TrainConfig, train
from scifm.core.batches import iter_batches
from scifm.core.testing import TinyConfig, TinyMLP, mse_loss, regression_data


def test_dataset_batches_sample_without_replacement_per_epoch():
    src = DatasetBatches(range(10), batch_size=3, seed=2)  # 3 batches per epoch, 1 left out
    for epoch in range(4):
        seen = np.concatenate([src.indices_at(3 * epoch + j) for j in range(3)])
        assert len(set(seen.tolist())) == 9  # no repeats inside an epoch
    assert not np.array_equal(src.indices_at(0), src.indices_at(3))  # a new permutation


def test_dataset_batches_make_gets_draws_keyed_by_sample_position():
    def make(idx, rand):
        return torch.as_tensor(idx), rand.rand(len(idx), 2)

    src = DatasetBatches(range(20), 4, seed=1, make=make)
    a, b = src.get(3, 0), src.get(3, 0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(src.get(4, 0)[1], a[1])
    # two ranks hold halves of the global batch and draw exactly the one-process rows
    r0, r1 = src.get(3, 0, rank=0, world_size=2), src.get(3, 0, rank=1, world_size=2)
    assert torch.equal(a[1][0::2], r0[1]) and torch.equal(a[1][1::2], r1[1])
    with pytest.raises(ValueError, match="collate or make"):
        DatasetBatches(range(20), 4, collate=list, make=make)


def test_mixture_draws_uniformly_and_each_source_walks_its_own_epochs():
    a = DatasetBatches(range(8), batch_size=2, seed=0, collate=lambda it: ("a", list(it)))
    b = DatasetBatches(range(100, 106), batch_size=2, seed=0, collate=lambda it: ("b", list(it)))
    mix = MixtureBatches({"a": a, "b": b}, seed=4)
    assert isinstance(mix, BatchSource)
    batches = [mix.get(s, 0) for s in range(200)]
    counts = Counter(name for name, _ in batches)
    assert 70 < counts["a"] < 130  # uniform over two sources
    # The first 4 draws of "a" are one full epoch of a: every item once (without replacement).
    first_a = [i for name, items in batches if name == "a" for i in items][:8]
    assert sorted(first_a) == list(range(8))
    assert mix.get(57, 0) == MixtureBatches({"a": a, "b": b}, seed=4).get(57, 0)  # fresh object


def test_mixture_counts_across_blocks_match_a_replay():
    src = [DatasetBatches(range(4), 1) for _ in range(3)]
    mix = MixtureBatches(src, seed=9)
    mix.BLOCK = 16  # small blocks: the count must carry over block boundaries
    seen = Counter()
    for q in range(70):
        k, c = mix.choice(q)
        assert c == seen[k]
        seen[k] += 1
    fresh = MixtureBatches(src, seed=9)
    fresh.BLOCK = 16
    assert fresh.choice(69) == mix.choice(69)  # resume far in: same answer, no replay


def test_mixture_shards_ranks_of_one_global_batch():
    a = DatasetBatches(list(range(16)), batch_size=4, seed=0, collate=list)
    b = DatasetBatches(list(range(50, 66)), batch_size=4, seed=0, collate=list)
    mix = MixtureBatches([a, b], seed=1, accum_steps=2)
    full = mix.get(5, 1, 0, 1)
    r0, r1 = mix.get(5, 1, 0, 2), mix.get(5, 1, 1, 2)
    assert sorted(r0 + r1) == sorted(full) and r0 == full[0::2]


def test_iter_batches_with_workers_equals_the_plain_loop_and_leaves_rng_alone():
    src = DatasetBatches(regression_data(TinyConfig(), 64, seed=0), 8, seed=3, accum_steps=2)
    before = torch.get_rng_state()
    got = list(iter_batches(src, start=3, stop=6, accum_steps=2, num_workers=2, prefetch=2))
    assert torch.equal(torch.get_rng_state(), before)
    want = [src.get(s, m, 0, 1) for s in range(3, 6) for m in range(2)]
    assert len(got) == len(want) == 6
    for g, w in zip(got, want):
        assert torch.equal(g[0], w[0]) and torch.equal(g[1], w[1])


def test_training_with_loader_workers_is_bitwise_equal_to_without():
    data = DatasetBatches(regression_data(TinyConfig(), 64, seed=0), 8, seed=3)
    weights = []
    for workers in (0, 2):
        torch.manual_seed(0)
        model = TinyMLP(TinyConfig())
        cfg = TrainConfig(steps=6, warmup_steps=1, progress=False, loader_workers=workers)
        train(model, mse_loss, data, cfg, device="cpu")
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="at least one source"):
        MixtureBatches([])
    with pytest.raises(ValueError, match="world_size=3"):
        DatasetBatches(range(8), 4).get(0, 0, 0, 3)
    with pytest.raises(ValueError, match="loader_workers"):
        TrainConfig(loader_workers=-1)
