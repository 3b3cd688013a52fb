# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python (scifm)
#     language: python
#     name: scifm
# ---

# %% [markdown]
# # xVal: numbers as one scaled token
#
# Golkar et al. (2023), *xVal: A Continuous Number Encoding for Large Language Models*.
# A language model usually sees `6.02` as characters or digit tokens. xVal instead
# writes every number as the single token `[NUM]` and multiplies that token's
# embedding by the number's (scaled) value; a second output head regresses the value.
# This notebook tokenizes text you type five ways, trains xVal and the digit scheme P1000
# on the same task with the same transformer (the loss drawn live), and compares them
# inside and outside the training range in the tokenization comparer, the component the
# app's Numbers page shows.

# %% tags=["parameters"]
import os

SMALL = os.environ.get("SCIFM_SMALL", "0") == "1"
STEPS = 40 if SMALL else 1500  # optimizer steps per model
N_TRAIN = 512 if SMALL else 20_000
N_TEST = 50 if SMALL else 300  # evaluation samples per split  # training samples
PRESET = "tiny" if SMALL else "small"  # XvalConfig preset
COMPILE = False  # torch.compile (worth it on a GPU for long runs)

# %%
import panel as pn
from IPython.display import display

from scifm.core import TrainConfig, pick_device
from scifm.dashboards import LiveLoss, TokenizationComparer
from scifm.xval import SCHEMES, TaskConfig, generate, get_tokenizer, predict
from scifm.xval.evaluate import evaluate
from scifm.xval.train import fit, model_config_for

pn.extension(inline=True)  # Panel and Bokeh JS from the installed packages (works offline)
device = pick_device()  # CUDA when present (bf16 autocast in the loop), else CPU
print("device:", device)

# %% [markdown]
# ## Five tokenizations of one text
# Digit schemes round to 3 significant digits (`1.2345` becomes `1.23`); xVal keeps
# the value. Subtraction minus stays an operator, `t1` stays text. Type in the box: the
# chips follow (hover a number to see what each scheme wrote).

# %%
text = '{"t1": 1.2345, "m": 3e-5, "dx": .5} 3-2=1'
TokenizationComparer(text=text)

# %%
for scheme in SCHEMES:
    enc = get_tokenizer(scheme).encode(text)
    print(f"{scheme:6s} {len(enc):3d} tokens: {' '.join(enc.tokens)}")
    print("        represented:", enc.represented, enc.status)

# %% [markdown]
# ## Train xVal and P1000 on a*b with a held-out band of a
# The `ood` task trains on a, b in [1, 10) except a in [4, 5); we then ask for a in
# the band (interpolation) and beyond 10 (extrapolation).

# %%
task = TaskConfig(task="ood", n_train=N_TRAIN, n_test=N_TEST)
log_every = max(STEPS // 10, 1)
train_cfg = TrainConfig(
    steps=STEPS, lr=1e-3, warmup_steps=STEPS // 10, log_every=log_every, compile=COMPILE,
    progress=True,
)  # fmt: skip
live = LiveLoss("training loss (cross-entropy + number MSE)")
display(live)
models = {}
for scheme in ("xval", "p1000"):
    cfg = model_config_for(task, scheme, PRESET)
    models[scheme] = fit(task, cfg, train_cfg, batch_size=64, seed=0, device=device,
                         callback=live.series(scheme))  # fmt: skip
    print(scheme, models[scheme].info)
live.flush()

# %%
for scheme, trained in models.items():
    for split in ("test", "interp", "extrap"):
        m = evaluate(trained, generate(task, N_TEST, 1, split))
        print(f"{scheme:6s} {split:7s} R2={m['r2']:.4f} exact={m['exact']:.2f} "
              f"outliers={m['outlier_rate']:.2f}")  # fmt: skip

# %% [markdown]
# ## Ask the models you just trained; sweep a over a range (b on the slider)
# xVal gives a smooth curve; the digit model's answer jumps between tokens. The same
# component on the shipped 1500-step models: `TokenizationComparer.from_assets()`.

# %%
TokenizationComparer(models, question="4.5*3.2")

# %% [markdown]
# ## One prediction, by hand
# The number head's output at the masked `[NUM]` is mapped back through the value
# scaler stored with the model.

# %%
sample = generate(task, 1, 2, "interp")[0]
print(sample.text)
for scheme, trained in models.items():
    print(scheme, predict(trained, [sample]).pred)

# %% [markdown]
# ## Your own data
# A file with one JSON record per line (or plain text with numbers) is all
# `scifm xval train --data FILE` needs. Here the file is the diabetes table that
# scikit-learn ships (442 patients, written as JSON records); the model learns to
# fill in the disease-progression score `y`. Lines are split by line into
# training and validation, and the value scaler is fitted on the training lines.

# %%
import tempfile
from pathlib import Path

from scifm.xval.evaluate import predict_text
from scifm.xval.tabular import write_jsonl
from scifm.xval.train import fit_file

path = write_jsonl("diabetes", Path(tempfile.mkdtemp()) / "diabetes.jsonl")
print(path.read_text().splitlines()[0])
tcfg = TrainConfig(steps=STEPS, lr=3e-3 if SMALL else 1e-3, warmup_steps=STEPS // 10,
                   log_every=max(1, STEPS // 10), progress=False)  # fmt: skip
mine, val = fit_file(path, "xval", tcfg, target="y", preset=PRESET, batch_size=32,
                     device=device)  # fmt: skip
print("validation:", {k: round(v, 3) for k, v in evaluate(mine, val).items()})
print(predict_text(mine, '{"age":59,"sex":2,"bmi":32.1,"bp":101,"s1":157,"s2":93.2,"s3":38,'
                         '"s4":4,"s5":4.86,"s6":87,"y":?}'))  # fmt: skip
