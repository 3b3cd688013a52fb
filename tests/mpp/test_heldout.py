"""Held-out initial conditions (scifm.mpp.heldout): the seeds it lists are the ones training
data was really drawn from, checked against files written by the generator itself."""

from __future__ import annotations

import pytest
import torch

from scifm.mpp.heldout import (
    card_training_seeds,
    dataconfig_training_seeds,
    heldout_line,
    seed_note,
)


@pytest.mark.parametrize("system", ["swe", "diffreact"])
def test_a_listed_card_seed_reproduces_a_generated_training_trajectory(system, tmp_path):
    """``scifm pde generate`` files (chunks of 2) and the card record of them: simulating one
    trajectory from a listed seed gives the first trajectory of a chunk, frame for frame,
    and seed 0 (the page's default) gives none of the training trajectories."""
    from scifm.pde import simulate
    from scifm.pde.generate import GenerateRequest, generate
    from scifm.pde.pdebench import read_pdebench

    req = GenerateRequest(system=system, n=4, res=16, n_frames=3, t_end=0.05, seed=17,
                          chunk_size=2)  # fmt: skip
    (path,) = generate(req, tmp_path, progress=False)
    stored = read_pdebench(path).fields  # (4, 3, C, 16, 16)
    card = {"data": {system: {"system": system, "seed": 17, "trajectories": 4}}}
    seeds = card_training_seeds(card)[system]
    assert len(seeds) == 4 and req.chunk_seed(1) in seeds  # k < n covers any chunk size

    def one(seed: int) -> torch.Tensor:
        return simulate(system, 1, res=16, n_frames=3, t_end=0.05, seed=seed).fields[0]

    for k in range(req.n_chunks):
        torch.testing.assert_close(one(req.chunk_seed(k)), stored[2 * k], rtol=0, atol=1e-6)
    fresh = one(0)[0]
    assert all((fresh - t[0]).abs().max() > 1e-3 for t in stored)


def test_dataconfig_seeds_are_the_ones_make_fields_draws():
    from scifm.mpp.experiment import DataConfig, make_fields
    from scifm.pde import simulate

    cfg = DataConfig(systems=("swe",), res=16, n_traj=2, n_test=1, sim_frames=3)
    (seed,) = dataconfig_training_seeds(cfg.to_dict())["swe"]
    train = make_fields(cfg, "train")["swe"]
    got = simulate("swe", 1, res=16, n_frames=3, seed=seed).fields[0]
    torch.testing.assert_close(got, train[0], rtol=0, atol=1e-6)


def test_heldout_line_says_seen_held_out_or_by_hand():
    seeds = {"swe": {123: "chunk 0"}, "diffreact": {7: "chunk 0", 9: "chunk 1"}}
    kind, text = heldout_line(seeds, "swe", 123)
    assert kind == "seen" and "chunk 0" in text
    assert "was (or may have been) in the training set" in text
    kind, text = heldout_line(seeds, "diffreact", 0)
    assert kind == "held_out" and "none of the 2 seeds (smallest 7)" in text
    ranges = {"swe": {"radius": [0.3, 0.7]}}
    kind, text = heldout_line(seeds, "swe", 123, radius=0.5, ranges=ranges)
    assert kind == "by_hand" and "inside the training radii 0.3-0.7" in text
    assert "extrapolates" in heldout_line(seeds, "swe", 0, radius=1.2, ranges=ranges)[1]
    assert heldout_line(seeds, "ins", 0)[0] == "unknown"
    assert heldout_line({}, "swe", 0) is None
    assert "3 seeds count" in seed_note(seeds) and "smallest 7" in seed_note(seeds)
    assert "2 seeds count" in seed_note({"a": {1: "x", 2: "y"}, "b": {1: "x"}})  # distinct


def test_a_card_without_seeds_is_refused_by_name():
    with pytest.raises(ValueError, match=r"data\['swe'\].*'seed' and 'trajectories'"):
        card_training_seeds({"data": {"swe": {"trajectories": 3}}})
