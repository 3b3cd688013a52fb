"""``scifm survey`` in-process: generate (and resume), info, read-spectrum."""

from __future__ import annotations

import json

import numpy as np

from scifm.cli import main
from scifm.survey import read_survey
from scifm.survey.readers.synthetic import specutils_desi_coadds

COADD = specutils_desi_coadds("coadd-sv3-dark-26065.fits")[0]


def test_generate_and_info(tmp_path, tiny_survey, tiny_spec, capsys):
    n, seed = tiny_spec
    out = tmp_path / "cli.h5"
    argv = ["survey", "generate", "--n", str(n), "--out", str(out), "--seed", str(seed),
            "--preset", "tiny", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    np.testing.assert_array_equal(read_survey(out).images, read_survey(tiny_survey).images)
    assert main(argv) == 0  # a complete file: nothing left to do
    capsys.readouterr()
    assert main(["survey", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n"] == n and info["complete"]
    assert main([*argv[:3], str(n + 1), *argv[4:]]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_read_spectrum_prints_targets(capsys):
    assert main(["survey", "read-spectrum", str(COADD)]) == 0
    out = capsys.readouterr().out
    assert "2 object(s)" in out and "39627866878511337" in out and "z   unknown" in out
    assert main(["survey", "read-spectrum", str(COADD), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(0.9 < r["coverage"] <= 1 for r in rows)
