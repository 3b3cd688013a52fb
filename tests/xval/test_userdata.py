"""Training on a user's own file: parsing, bad lines, split by line, CLI train/evaluate/predict."""

import numpy as np
import pytest

from scifm.xval.tabular import TABLES, lines, records, write_jsonl
from scifm.xval.userdata import (
    data_config,
    parse_query,
    read_lines,
    samples_of,
    split_lines,
)


def test_jsonl_fields_are_key_paths_and_values_match(tmp_path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"m": 3e-5, "p": [1.5, -2], "name": "t1", "ok": true}\n\n{"m": 2e-5, "p": []}\n')
    got = read_lines(f)
    assert [ln.number for ln in got] == [1, 3]
    assert got[0].text == '{"m":3e-05,"p":[1.5,-2],"name":"t1","ok":true}'
    assert got[0].fields == ("m", "p", "p") and got[0].values == (3e-5, 1.5, -2.0)


def test_text_lines_number_fields_by_position(tmp_path) -> None:
    f = tmp_path / "d.txt"
    f.write_text("x 1.5 y 2\nno numbers here\nx 3 y=-4e3\n")
    got = read_lines(f)
    assert [ln.number for ln in got] == [1, 3] and got[1].fields == ("n0", "n1")
    assert got[1].values == (3.0, -4000.0)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        ('{"a": 1}\n{"a": 2\n', "bad.jsonl", "bad.jsonl:2: not valid JSON"),
        ('{"a": 1}\n[1, 2]\n', "list.jsonl", "list.jsonl:2: expected a JSON object"),
        ('{"a": NaN}\n', "nan.jsonl", "nan.jsonl:1: field 'a' is nan"),
        ('{"a": 1}\n{"a": 2, "b": "12 apples"}\n', "str.jsonl", "str.jsonl:2: a key or string"),
        ("a 1\nspeed 1e999\n", "inf.txt", "inf.txt:2: number '1e999' .* overflows"),
        ("hello\nworld\n", "none.txt", "no numbers found"),
        ('{"a": "x"}\n', "none.jsonl", "no numbers found"),
        # finite in float64, inf in the model's float32: r2 came out null, the error 1e299
        (
            '{"a": 1}\n{"a": 1e300}\n',
            "huge.jsonl",
            "huge.jsonl:2: field 'a' has magnitude 1e.300; .* 1e.30",
        ),
        ("a 1\nb -3e31\n", "huge.txt", "huge.txt:2: number 1 has magnitude 3e.31"),
    ],
)
def test_bad_files_name_the_line(tmp_path, content, name, message) -> None:
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_lines(f)


def test_missing_file_and_unknown_target(tmp_path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        read_lines(tmp_path / "nope.jsonl")
    f = tmp_path / "d.jsonl"
    f.write_text('{"a": 1, "b": 2}\n')
    with pytest.raises(ValueError, match="target 'c': no line has this field"):
        samples_of(read_lines(f), "c")


def test_a_target_that_is_never_a_number_is_named_as_such(tmp_path) -> None:
    from scifm.core import TrainConfig
    from scifm.xval.train import fit_file

    f = tmp_path / "d.jsonl"
    f.write_text('{"a": 1, "y": "abc"}\n{"a": 2, "y": "def"}\n{"a": 3, "y": null}\n')
    with pytest.raises(ValueError, match=r"d.jsonl.: target 'y' is in the file but never a "
                       r"number \(line 1: \"abc\"\)"):  # fmt: skip
        fit_file(f, "xval", TrainConfig(), target="y")
    with pytest.raises(ValueError, match=r"d.jsonl.: target 'zz': no line has this field"):
        fit_file(f, "xval", TrainConfig(), target="zz")


@pytest.mark.parametrize("name", TABLES)
def test_real_tables_split_by_row_with_no_row_on_both_sides(name) -> None:
    rows = lines(name)
    assert len(rows) == len(records(name)) >= 20
    train, val = split_lines(rows, 0.2, seed=3)
    assert not {ln.number for ln in train} & {ln.number for ln in val}
    assert len(train) + len(val) == len(rows)
    tr, va = samples_of(train, "all"), samples_of(val, "all")
    assert not {s.text for s in tr} & {s.text for s in va}  # no row under another mask
    assert len(tr) == sum(len(ln.values) for ln in train)  # each number masked in turn
    assert split_lines(rows, 0.2, seed=3) == (train, val)


def test_diabetes_is_the_real_bundled_table() -> None:
    rec = records("diabetes")
    assert len(rec) == 442 and rec[0] == {"age": 59, "sex": 2, "bmi": 32.1, "bp": 101,
        "s1": 157, "s2": 93.2, "s3": 38, "s4": 4, "s5": 4.86, "s6": 87, "y": 151}  # fmt: skip


def test_data_config_is_fitted_on_training_lines() -> None:
    cfg = data_config(lines("wine"), fmt="jsonl")
    kinds = dict(cfg.kinds)
    assert set(kinds) == set(records("wine")[0]) and set(kinds.values()) <= {"linear", "asinh"}
    assert cfg.exp_min <= -4 and cfg.exp_max >= 1  # 0.14 .. 1680 need e-3 .. e1


def test_query_marks_become_targets() -> None:
    cfg = data_config(lines("iris"), fmt="jsonl")
    fallback = {"sl": 5.8, "sw": 3.0, "pl": 3.7, "pw": 1.2, "cls": 1.0}
    s = parse_query('{"sl": 5.1, "sw": ?, "pl": 1.4, "pw": ?, "cls": 0}', cfg, fallback)
    assert s.targets == (1, 3) and s.fields == ("sl", "sw", "pl", "pw", "cls")
    assert s.text == '{"sl":5.1,"sw":3.0,"pl":1.4,"pw":1.2,"cls":0}'
    text_cfg = cfg.replace(format="text")
    t = parse_query("speed 3 time ? distance ?", text_cfg, {"n1": 2.0, "n2": 9.0})
    assert t.targets == (1, 2) and t.text == "speed 3 time 2.0 distance 9.0"
    with pytest.raises(ValueError, match="mark each number"):
        parse_query("speed 3", text_cfg, {})
    with pytest.raises(
        ValueError, match=r"query '{\"sl\": 1e300, .*': field .sl. has magnitude 1e\+300"
    ):
        parse_query('{"sl": 1e300, "sw": ?}', cfg, fallback)
    with pytest.raises(ValueError, match=r"number 1 has magnitude 1e\+31"):
        parse_query("speed -1e31 time ?", text_cfg, {"n1": 2.0})
    with pytest.raises(ValueError, match="field 'zz' was not in the training data"):
        parse_query('{"zz": ?}', cfg, fallback)
    for given in ('"x"', "true", "null"):  # a known number given as text: never dropped
        with pytest.raises(ValueError, match=f"field 'sl' is {given}; the model was trained"):
            parse_query(f'{{"sl": {given}, "sw": ?}}', cfg, fallback)


def test_cli_train_evaluate_predict_on_a_user_file(tmp_path, xval_cli) -> None:
    data = write_jsonl("iris", tmp_path / "iris.jsonl")
    out = xval_cli(["xval", "train", "--scheme", "xval", "--data", str(data), "--preset", "tiny",
                    "--steps", "40", "--batch", "32", "--lr", "3e-3", "--out", str(tmp_path / "r"),
                    "--device", "cpu"])  # fmt: skip
    train_rows, val_rows = split_lines(lines("iris"), 0.2, seed=0)
    assert len(train_rows) + len(val_rows) == 150 and len(val_rows) >= 29
    assert out["n_train"] == 5 * len(train_rows) and out["data"]["format"] == "jsonl"
    assert 0 <= out["validation"]["invalid_rate"] <= 1
    assert out["validation"]["n"] == 5 * len(val_rows)
    ckpt = str(tmp_path / "r" / "checkpoint")
    ev = xval_cli(["xval", "evaluate", "--data", str(data), "--checkpoint", ckpt])
    assert ev["n"] == 750 and set(ev["per_field"]) == {"sl", "sw", "pl", "pw", "cls"}
    pr = xval_cli(
        ["xval", "predict", "--checkpoint", ckpt, '{"sl":5.1,"sw":3.5,"pl":?,"pw":0.2,"cls":0}']
    )
    assert pr["fields"] == ["pl"] and np.isfinite(pr["values"][0])
    # the scaler stored with the checkpoint was fitted on the 120 training rows only
    from scifm.xval.train import load_trained

    scaler = load_trained(ckpt).scaler
    assert scaler.mean(["sl"])[0] == pytest.approx(np.mean([r.values[0] for r in train_rows]))
