"""System specs: the MPP field index map of the reference implementation."""

import pytest

from scifm.pde import N_STATES, SYSTEMS, get_system


def test_field_index_map_matches_mpp_reference():
    # McCabe et al. (arXiv:2310.02994): SWE h=0; INS vx,vy,particles=1,2,3;
    # DiffReact u,v=4,5; CNS vx,vy,density,pressure=6..9.
    assert get_system("swe").field_index == (0,)
    assert get_system("ins").field_index == (1, 2, 3)
    assert get_system("diffreact").field_index == (4, 5)
    assert get_system("cns").field_index == (6, 7, 8, 9)
    assert N_STATES == 12
    used = [i for s in SYSTEMS.values() for i in s.field_index]
    assert len(used) == len(set(used))


def test_pdebench_defaults():
    assert get_system("swe").domain == (-2.5, 2.5, -2.5, 2.5)
    assert (get_system("swe").n_frames, get_system("swe").t_end) == (101, 1.0)
    assert (get_system("diffreact").n_frames, get_system("diffreact").t_end) == (101, 5.0)
    assert (get_system("cns").n_frames, get_system("cns").t_end) == (21, 1.0)
    assert get_system("cns").periodic and not get_system("swe").periodic


def test_unknown_system_names_the_choices():
    with pytest.raises(ValueError, match="unknown; expected one of"):
        get_system("burgers")
