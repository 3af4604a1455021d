"""The 2021 Evoked Expressions from Videos (EEV) challenge entry — the code behind
notebooks/eev2021_evoked_expression.ipynb.

The entry (abstract): a GRU over audio and image features predicts one sparse signal at 1 Hz;
the dense prediction is a linear interpolation, "robust to the prediction fluctuation"; Pearson
correlation 0.04430 on the challenge's final private test set. The EEV videos are not
obtainable here, so everything runs on a synthetic stand-in with EEV's structure
(`attnkit.data.synthetic.evoked_expressions`): per-second audio and image features, 15 smooth
expression targets at 6 Hz with annotation noise. The number 0.04430 is shown, not compared.

Steps: train the same GRU as a sparse (1 Hz + interpolation) and as a dense (6 Hz) predictor
over a range of annotation-noise levels; train the sparse model on audio only, image only and
both. Metric: Pearson correlation per test video and expression, averaged (mean over
expressions, as the challenge scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor
from tqdm.auto import tqdm

from attnkit.data.synthetic.evoked_expressions import EvokedExpressions, make_evoked_expressions
from attnkit.models.expression_gru import ExpressionGRU, interpolate_linear
from attnkit.plots.figures import figure_with_axes
from attnkit.train import TrainConfig, fit, set_seed

SIZES = {
    "smoke": dict(
        videos_train=16,
        videos_test=8,
        seconds=20,
        hidden=16,
        epochs=2,
        noise_levels=(0.5, 2.0),
    ),
    "quick": dict(
        videos_train=120,
        videos_test=60,
        seconds=40,
        hidden=32,
        epochs=15,
        noise_levels=(0.25, 1.0, 3.0),
    ),
    "full": dict(
        videos_train=800,
        videos_test=200,
        seconds=60,
        hidden=64,
        epochs=40,
        noise_levels=(0.0, 0.5, 1.0, 2.0, 3.0, 4.0),
    ),
}
RATE = 6  # EEV annotates at 6 Hz (Sun et al. 2021; google-research-datasets/eev README)
EXPRESSIONS = 15  # EEV's 15 evoked-expression labels (same sources)
PAPER_PEARSON = 0.04430  # the entry's private-test correlation (abstract)
SOURCE_ENTRY = "2021 EEV challenge entry, abstract (see CLAIMS.md §8)"
EEV_SOURCE = "github.com/google-research-datasets/eev (Sun et al. 2021, arXiv:2001.05488)"
MODALITIES = ("audio + image", "audio", "image")


@dataclass
class Run:
    profile: str
    seed: int
    device: str
    size: dict


def setup(profile: str, seed: int, device: str = "cpu") -> Run:
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(SIZES)}")
    torch.set_num_threads(1)
    return Run(profile, seed, device, SIZES[profile])


def make_data(run: Run, label_noise: float) -> tuple[EvokedExpressions, EvokedExpressions]:
    """Train and test videos of one world (mixing seed = the run's seed) at a noise level."""
    size = run.size
    common = dict(
        seconds=size["seconds"],
        rate=RATE,
        expressions=EXPRESSIONS,
        label_noise=label_noise,
        mixing_seed=run.seed,
    )
    return (
        make_evoked_expressions(size["videos_train"], seed=10_000 + run.seed, **common),
        make_evoked_expressions(size["videos_test"], seed=20_000 + run.seed, **common),
    )


def features(data: EvokedExpressions, modality: str) -> Tensor:
    """`(N, S, d)` model input for "audio + image", "audio" or "image"."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}.")
    parts = {
        "audio": [data.audio],
        "image": [data.image],
        "audio + image": [data.audio, data.image],
    }
    return torch.cat(parts[modality], dim=-1)


def _sparse_loss(model, batch):
    inputs, targets = batch
    return torch.nn.functional.mse_loss(model(inputs), targets[:, ::RATE])  # the 1 Hz points


def _dense_loss(model, batch):
    inputs, targets = batch
    return torch.nn.functional.mse_loss(model(inputs), targets)


def train_model(run: Run, data: EvokedExpressions, mode: str, modality: str) -> ExpressionGRU:
    """The GRU trained as "sparse" (1 Hz outputs, loss at whole seconds) or "dense" (6 Hz)."""
    inputs = features(data, modality)
    set_seed(run.seed)
    model = ExpressionGRU(
        inputs.shape[-1], run.size["hidden"], EXPRESSIONS, 1 if mode == "sparse" else RATE
    )
    config = TrainConfig(
        epochs=run.size["epochs"], batch_size=16, lr=3e-3, seed=run.seed, device=run.device
    )
    fit(
        model,
        list(zip(inputs, data.targets, strict=True)),
        loss_fn=_sparse_loss if mode == "sparse" else _dense_loss,
        config=config,
        cache_key_extra={"paper": "eev2021", "mode": mode, "version": 1},
        progress=False,
    )
    return model.to("cpu").eval()


def predict_dense(model: ExpressionGRU, data: EvokedExpressions, modality: str) -> Tensor:
    """`(N, S · 6, K)` predictions: interpolated for a sparse model, direct for a dense one."""
    with torch.no_grad():
        out = model(features(data, modality))
    return interpolate_linear(out, RATE) if model.steps == 1 else out


def mean_pearson(prediction: Tensor, target: Tensor) -> float:
    """Pearson correlation over time for every video and expression, averaged; `(N, T, K)`
    inputs. A constant series has no correlation; it counts as 0."""
    p = prediction - prediction.mean(1, keepdim=True)
    t = target - target.mean(1, keepdim=True)
    denominator = (p.norm(dim=1) * t.norm(dim=1)).clamp_min(1e-12)
    return float(((p * t).sum(1) / denominator).mean())


def noise_sweep(run: Run, progress: bool = True) -> pd.DataFrame:
    """Sparse+interpolation and dense GRUs at each annotation-noise level: mean Pearson against
    the noisy test labels (what a challenge scores) and against the clean targets."""
    rows = []
    jobs = [(noise, mode) for noise in run.size["noise_levels"] for mode in ("sparse", "dense")]
    cache: dict[float, tuple] = {}
    for noise, mode in tqdm(jobs, desc="noise sweep", disable=not progress):
        if noise not in cache:
            cache[noise] = make_data(run, noise)
        train, test = cache[noise]
        model = train_model(run, train, mode, "audio + image")
        prediction = predict_dense(model, test, "audio + image")
        rows.append(
            dict(
                label_noise=noise,
                model=mode,
                pearson_labels=mean_pearson(prediction, test.targets),
                pearson_clean=mean_pearson(prediction, test.clean),
                roughness=float(prediction.diff(dim=1).abs().mean()),
            )
        )
    return pd.DataFrame(rows)


def modality_table(run: Run, progress: bool = True) -> pd.DataFrame:
    """The sparse GRU on audio only, image only and both, at the highest noise level."""
    train, test = make_data(run, max(run.size["noise_levels"]))
    rows = []
    for modality in tqdm(MODALITIES, desc="modalities", disable=not progress):
        model = train_model(run, train, "sparse", modality)
        prediction = predict_dense(model, test, modality)
        rows.append(
            dict(
                modality=modality,
                pearson_labels=mean_pearson(prediction, test.targets),
                pearson_clean=mean_pearson(prediction, test.clean),
            )
        )
    return pd.DataFrame(rows).set_index("modality")


def figure_noise_sweep(sweep: pd.DataFrame) -> Figure:
    """Mean Pearson against annotation noise, sparse+interpolation vs dense."""
    figure, axes = figure_with_axes(1, 2, (3.4, 2.8), None)
    for panel, column, title in zip(
        axes[0],
        ("pearson_labels", "pearson_clean"),
        ("against the noisy labels", "against the clean targets"),
        strict=True,
    ):
        for mode, style in (("sparse", "-o"), ("dense", "--s")):
            part = sweep[sweep["model"] == mode]
            label = "1 Hz + interpolation" if mode == "sparse" else "dense (6 Hz)"
            panel.plot(part["label_noise"], part[column], style, label=label)
        panel.set_xlabel("annotation noise (σ / target σ)")
        panel.set_ylabel("mean Pearson r")
        panel.set_title(title, fontsize=9)
    axes[0, 0].legend(fontsize=7)
    return figure


def figure_example(run: Run, expression: int = 0) -> Figure:
    """One test video, one expression: clean target, noisy labels, both predictions."""
    train, test = make_data(run, max(run.size["noise_levels"]))
    sparse = predict_dense(
        train_model(run, train, "sparse", "audio + image"), test, "audio + image"
    )
    dense = predict_dense(train_model(run, train, "dense", "audio + image"), test, "audio + image")
    seconds = torch.arange(test.targets.shape[1]) / RATE
    figure, axes = figure_with_axes(1, 1, (7.0, 2.6), None)
    panel = axes[0, 0]
    panel.plot(
        seconds, test.targets[0, :, expression], color="0.75", lw=0.8, label="labels (noisy)"
    )
    panel.plot(seconds, test.clean[0, :, expression], color="black", lw=1.5, label="clean target")
    panel.plot(seconds, dense[0, :, expression], color="C1", lw=1, label="dense (6 Hz)")
    panel.plot(seconds, sparse[0, :, expression], color="C0", lw=1.5, label="1 Hz + interpolation")
    panel.set_xlabel("time (s)")
    panel.set_ylabel("expression score")
    panel.legend(fontsize=7, ncols=4, loc="upper center")
    return figure
