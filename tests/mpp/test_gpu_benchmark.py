"""benchmarks/gpu.py: clean exit without a GPU, sections that run anywhere, no heavy imports."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.py"
HEAVY = ("panel", "jupyter", "faiss", "IPython", "bokeh", "holoviews", "nbclient", "matplotlib")


def _env(**extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "lib"), env.get("PYTHONPATH", "")])
    return env


def test_without_a_gpu_it_says_so_writes_nothing_exits_0_and_imports_no_app_stack(tmp_path):
    out = tmp_path / "results"
    code = (
        f"import runpy, sys; sys.argv = ['gpu.py', '--out', {str(out)!r}]\n"
        f"try:\n    runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
        f"except SystemExit as e:\n    rc = e.code\n"
        f"print('rc', rc, sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(CUDA_VISIBLE_DEVICES=""),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no CUDA GPU" in proc.stdout and "nothing measured" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "rc 0 []"
    assert not out.exists()


def _gpu_module():
    spec = importlib.util.spec_from_file_location("gpu_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sections_run_and_render_on_the_cpu():
    gpu = _gpu_module()
    cpu = torch.device("cpu")
    rows = [
        gpu.throughput(cpu, p, preset="tiny", res=16, batch=2, steps=1) for p in ("fp32", "bf16")
    ]
    assert all(r["train_flops_per_step"] > 0 and r["samples_per_s"] > 0 for r in rows)
    assert rows[0]["mfu"] is None  # no peak figure for a CPU: no made-up utilisation
    # 32^2, not 16^2: at 2 x 2 patches a frame the 64^2 model's diffusion-reaction step moved
    # by 0.13 under bf16 (a regime it never saw); at 32^2 by 0.004 (model error 0.24)
    agree = gpu.bf16_agreement(cpu, gpu.mpp_speed.MODEL, res=32, n=1)
    # every variant of the shipped model (the 64^2 evidence model: its three, no CNS)
    assert set(agree) == {"swe", "diffreact", "ins"}
    for v in agree.values():
        assert 0 < v["nrmse_bf16_vs_fp32"] < 0.1  # bf16 rounding, not a different model
    report = {
        "command": "x", "date": "d", "device": "cpu", "torch": torch.__version__, "cuda": None,
        "wall_s": 0, "sections": {
            "throughput": {"result": rows}, "bf16_agreement": {"result": agree},
            "tutorial": {"error": "not run: test"},
        },
    }  # fmt: skip
    md = gpu.markdown(report)
    assert "| fp32 | 2 |" in md and "diffreact" in md and "tutorial" in md


def test_speed_rows_stop_at_the_deadline_and_a_killed_run_keeps_its_sections(tmp_path):
    gpu = _gpu_module()
    # a deadline already passed: no grid is started, nothing is made up
    tiny = gpu.AViT(gpu.AViTConfig.preset("tiny"))
    assert gpu.mpp_speed.speed_rows(tiny, {}, device="cpu", resolutions=(32,), deadline=0.0) == []

    class Args:
        out, name = str(tmp_path), "gpu"

    sections = {"throughput": {"result": []}, "bf16_agreement": {"error": "boom"}}
    gpu.write(Args, "cpu", 0.0, sections, pending=["tutorial", "speed"])
    md = (tmp_path / "gpu.md").read_text()
    assert "Sections not reached" in md and "- speed" in md and "bf16_agreement: boom" in md
    partial = {"complete": False, "accuracy_128": "not run: budget spent", "speed": [],
               "command": "c", "date": "d", "machine": "m", "model": "x", "model_params": 1,
               "patch_size": 8, "n_frames": 16, "timing": "t"}  # fmt: skip
    head = {"command": "x", "date": "d", "device": "cpu", "torch": "t", "cuda": None, "wall_s": 0}
    md = gpu.markdown({**head, "sections": {"speed": {"result": partial}}})
    assert "speed table is partial" in md and "not run: budget spent" in md
