"""Pan et al. 2022, "Less is More: Pay Less Attention in Vision Transformers" (LIT, AAAI 2022,
arXiv:2105.14217) — the code behind notebooks/pan2022_lit.ipynb.

The paper's observation: in hierarchical vision transformers the early self-attention layers
attend locally and add little, so LIT uses MLP blocks in stages 1–2, self-attention in stages
3–4, and a deformable token merging (DTM) module between stages. The notebook reproduces, on
tiny models and offline data (scikit-learn digits upsampled to 32 × 32, and a synthetic task
whose label relates two far-apart markers):

- early attention is local: mean attention distance (Dosovitskiy et al. 2021) per stage of a
  full-attention PVT-style model, against the same model at initialisation;
- the ablation of Table 4: self-attention removed from stage 1, stages 1–2, stages 3–4;
- LIT against the full-attention model: accuracy, FLOPs (torch.utils.flop_counter), parameters;
- DTM against fixed patch merging (Table 3), with a control whose offsets stay at zero.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from tqdm.auto import tqdm

from attnkit.data.images import load_digits_images, sample_images
from attnkit.data.synthetic import make_polarity_pairs
from attnkit.models.pyramid import (
    PyramidConfig,
    PyramidTransformer,
    count_flops,
    count_parameters,
    stage_attentions,
)
from attnkit.plots.figures import figure_with_axes
from attnkit.plots.image import image_overlay
from attnkit.propagate import rollout
from attnkit.train import TrainConfig, accuracy, cross_entropy_loss, evaluate, fit, set_seed
from attnkit.vision import cls_patch_map, mean_attention_distance

# Model and training sizes per profile. The paper trains LIT-Ti (dims 64–512, depths 3-4-6-3,
# 224 px ImageNet, 300 epochs); ours are 32 px, dims 8–64, depths 1-1-2-1, a few epochs. The
# pairs task gets more: models with fixed (LayerNorm) merging sit at chance for a seed-dependent
# number of steps before they learn it (at lr 3e-3, 1,500 pairs × 12 epochs left the
# full-attention model of seeds 0 and 2 below the 0.85 gate, 3,000 × 20 that of seed 1); at
# `pairs_lr` 1e-3 every variant of seeds 0–2 reaches 1.0. `pairs_lr` defaults to `lr`.
# `digits_inits`: each variant is trained from that many initialisations on digits and its
# accuracy is their mean. In quick, the DTM − fixed-merging difference of single
# initialisations ranged from −0.015 to +0.083 on digits (seeds 0–2, five each), while its mean
# over five was +0.029 to +0.030 on every seed. Pairs keeps one: every variant reaches 1.0.
SIZES = {
    "smoke": dict(
        digits_train=200,
        digits_test=100,
        pairs_train=200,
        pairs_test=100,
        epochs=1,
        pairs_epochs=1,
        vit_epochs=1,
        digits_inits=2,
        batch_size=64,
        lr=3e-3,
        offset_lr_mult=0.1,
        probe_images=8,
        gate=0.85,
    ),
    "quick": dict(
        digits_train=1400,
        digits_test=397,
        pairs_train=3000,
        pairs_test=500,
        epochs=6,
        pairs_epochs=20,
        vit_epochs=4,
        digits_inits=5,
        batch_size=64,
        lr=3e-3,
        pairs_lr=1e-3,
        offset_lr_mult=0.1,
        probe_images=64,
        gate=0.85,
    ),
    "full": dict(
        digits_train=1400,
        digits_test=397,
        pairs_train=10000,
        pairs_test=2000,
        epochs=30,
        pairs_epochs=60,
        vit_epochs=20,
        digits_inits=5,
        batch_size=64,
        lr=1e-3,
        offset_lr_mult=0.1,
        probe_images=256,
        gate=0.9,
    ),
}
MODEL = dict(image_size=32, in_channels=1, patch_size=2)  # the rest: PyramidConfig defaults

# The paper's numbers (ImageNet-1K top-1). LIT rows: the README table of ziplab/LIT (read at
# commit 742e961bfc3f; MonashAI/LIT redirects there). PVT w/ MSA: the same README, "Attention
# Map Visualisation". Ablations: the paper, read through a transcription of arXiv:2105.14217
# (Tables 2–4), not checked against the PDF.
PAPER_MODELS = pd.DataFrame(
    [
        ("LIT-Ti", 19, 3.6, 81.1),
        ("LIT-S", 27, 4.1, 81.5),
        ("LIT-M", 48, 8.6, 83.0),
        ("LIT-B", 86, 15.0, 83.4),
        ("PVT-S w/ MSA in all stages", 20, 8.4, 80.9),
    ],
    columns=["model", "params_M", "GFLOPs", "top1"],
).set_index("model")
SOURCE_README = (
    "ziplab/LIT README (ImageNet-1K table; PVT w/ MSA under 'Attention Map Visualisation')"
)
PAPER_ABLATION = {"stage 1": -0.1, "stages 1-2": -0.5}  # top-1 change removing MSA, Table 4
SOURCE_ABLATION = "Pan et al. 2022, Table 4 (via a transcription of arXiv:2105.14217; not checked against the PDF)"
PAPER_DTM_GAIN = 0.7  # top-1 points DTM adds to PVT-S, Table 3
SOURCE_DTM = "Pan et al. 2022, Table 3 (via a transcription of arXiv:2105.14217; not checked against the PDF)"
SOURCE_LOCALITY = "Pan et al. 2022, abstract and Fig. 3 (attention maps of PVT-S with MSA; the README names Figure 3)"

# name -> (self-attention per stage, merging, offset learning-rate factor or None for default)
VARIANTS = {
    "full MSA (PVT-style)": ((True, True, True, True), "fixed", None),
    "no MSA in stage 1": ((False, True, True, True), "fixed", None),
    "no MSA in stages 1-2": ((False, False, True, True), "fixed", None),
    "no MSA in stages 3-4": ((True, True, False, False), "fixed", None),
    "LIT (DTM)": ((False, False, True, True), "deformable", None),
    "LIT (DTM, offsets frozen at 0)": ((False, False, True, True), "deformable", 0.0),
}
FULL, LIT, LIT_FIXED = "full MSA (PVT-style)", "LIT (DTM)", "no MSA in stages 1-2"
TASKS = ("digits", "pairs")


@dataclass
class Task:
    """One image classification task: `(image, label)` examples and what they are."""

    name: str
    description: str
    train: list
    test: list
    num_classes: int
    origin: str
    synthetic: bool


@dataclass
class Run:
    profile: str
    seed: int
    device: str
    size: dict
    tasks: dict[str, Task] = field(default_factory=dict)


def setup(profile: str, seed: int, device: str = "cpu") -> Run:
    """Sizes for the profile and both tasks' data (digits split by the seed; pairs generated)."""
    if profile not in SIZES:
        raise ValueError(f"unknown profile {profile!r}; use one of {list(SIZES)}")
    size = SIZES[profile]
    torch.set_num_threads(1)
    images, labels = load_digits_images(MODEL["image_size"])
    order = np.random.default_rng(seed).permutation(len(labels))
    train_idx = order[: size["digits_train"]]
    test_idx = order[len(order) - size["digits_test"] :]
    digits = Task(
        "digits",
        "scikit-learn digits, 8 × 8 upsampled to 32 × 32, 10 classes",
        [(images[i], int(labels[i])) for i in train_idx],
        [(images[i], int(labels[i])) for i in test_idx],
        10,
        "scikit-learn's bundled copy of the UCI optdigits test set",
        False,
    )
    pairs_train = make_polarity_pairs(size["pairs_train"], seed=1000 + seed)
    pairs_test = make_polarity_pairs(size["pairs_test"], seed=2000 + seed)
    pairs = Task(
        "pairs",
        "two 8 × 8 markers ≥ 14 px apart: same polarity or not (a long-range relation)",
        pairs_train.examples(),
        pairs_test.examples(),
        2,
        "attnkit.data.synthetic.make_polarity_pairs",
        True,
    )
    return Run(profile, seed, device, size, {"digits": digits, "pairs": pairs})


def build(variant: str, num_classes: int, seed: int, offset_lr_mult: float) -> PyramidTransformer:
    """A fresh model of `variant`, initialised from `seed`."""
    attention, merging, frozen = VARIANTS[variant]
    set_seed(seed)
    config = PyramidConfig(
        **MODEL,
        attention=attention,
        merging=merging,
        offset_lr_mult=offset_lr_mult if frozen is None else frozen,
        num_classes=num_classes,
    )
    return PyramidTransformer(config)


@dataclass
class Trained:
    models: dict[tuple[str, str], PyramidTransformer]  # (task, variant) -> the first initialisation
    # one row per (task, variant): accuracy (mean over initialisations), accuracy_std, inits,
    # MFLOPs, params, train_s (all initialisations), from_cache (all of them)
    table: pd.DataFrame


def init_seeds(run: Run, task: str) -> list[int]:
    """The initialisation seeds of `task`'s models: the run's seed first, then seed + 1000 k."""
    count = run.size.get("digits_inits", 1) if task == "digits" else 1
    return [run.seed + 1000 * k for k in range(count)]


def train_variants(run: Run, variants=tuple(VARIANTS), progress: bool = True) -> Trained:
    """Train every variant on both tasks (same seeds, data and optimiser); test accuracy (the
    mean over `init_seeds`), forward FLOPs per image and parameters."""
    size = run.size
    epochs = {"digits": size["epochs"], "pairs": size["pairs_epochs"]}
    lrs = {"digits": size["lr"], "pairs": size.get("pairs_lr", size["lr"])}
    config = TrainConfig(
        epochs=size["epochs"],
        batch_size=size["batch_size"],
        lr=size["lr"],
        optimizer="adamw",
        weight_decay=0.05,
        seed=run.seed,
        device=run.device,
    )
    probe = torch.zeros(1, 1, MODEL["image_size"], MODEL["image_size"])
    models, runs = {}, []
    jobs = [
        (task, variant, init)
        for task in TASKS
        for variant in variants
        for init in init_seeds(run, task)
    ]
    for task_name, variant, init in tqdm(jobs, desc="models", disable=not progress):
        task = run.tasks[task_name]
        model = build(variant, task.num_classes, init, size["offset_lr_mult"])
        flops, params = count_flops(model, probe), count_parameters(model)
        started = time.perf_counter()
        result = fit(
            model,
            task.train,
            loss_fn=cross_entropy_loss,
            config=dataclasses.replace(
                config, epochs=epochs[task_name], lr=lrs[task_name], seed=init
            ),
            cache_key_extra={"paper": "pan2022_lit", "variant": variant, "version": 1},
            progress=False,
        )
        _, acc = evaluate(model, task.test, loss_fn=cross_entropy_loss, metric_fn=accuracy)
        models.setdefault((task_name, variant), model.to("cpu").eval())
        runs.append(
            dict(
                task=task_name,
                variant=variant,
                accuracy=float(acc),
                MFLOPs=flops / 1e6,
                params=params,
                train_s=time.perf_counter() - started,
                from_cache=result.from_cache,
            )
        )
    by_model = pd.DataFrame(runs).groupby(["task", "variant"], sort=False)
    table = by_model.agg(
        accuracy=("accuracy", "mean"),
        accuracy_std=("accuracy", "std"),
        inits=("accuracy", "size"),
        MFLOPs=("MFLOPs", "first"),
        params=("params", "first"),
        train_s=("train_s", "sum"),
        from_cache=("from_cache", "all"),
    )
    return Trained(models, table)


def probe_images(run: Run, task: str) -> torch.Tensor:
    """The first test images of a task, `(n, 1, 32, 32)`."""
    examples = run.tasks[task].test[: run.size["probe_images"]]
    return torch.stack([image for image, _ in examples])


def attention_distances(model: PyramidTransformer, images: torch.Tensor) -> pd.DataFrame:
    """Mean attention distance in pixels for every attention layer and head: one row per
    (stage, layer, head) with the stage's grid and token size."""
    rows = []
    with torch.no_grad():
        captured = stage_attentions(model, images)
    for stage, attn in captured.items():
        distance = mean_attention_distance(
            attn,
            grid=model.config.grids[stage],
            patch_size=model.config.token_pixels[stage],
            num_special=model.num_special(stage),
        )  # (L_s, H_s)
        for layer in range(distance.shape[0]):
            for head in range(distance.shape[1]):
                rows.append(
                    dict(
                        stage=stage + 1,
                        layer=layer,
                        head=head,
                        distance_px=float(distance[layer, head]),
                    )
                )
    return pd.DataFrame(rows)


@dataclass
class Locality:
    table: pd.DataFrame  # per stage: trained and initial mean distance (px)
    per_head: pd.DataFrame  # per (model, stage, layer, head)
    stage1_vs_init: float  # trained / initial stage-1 distance
    stage1_vs_late: float  # stage-1 distance / mean of stages 3-4
    stage1_max_weight: float  # trained: mean over heads and queries of the largest weight
    stage1_tokens: int  # N, so uniform attention has max weight 1 / N


def locality(run: Run, trained: Trained, task: str) -> Locality:
    """Mean attention distance per stage of the full-attention model, trained and at init."""
    images = probe_images(run, task)
    model = trained.models[task, FULL]
    initial = build(FULL, run.tasks[task].num_classes, run.seed, run.size["offset_lr_mult"]).eval()
    per_head = pd.concat(
        [
            attention_distances(model, images).assign(model="trained"),
            attention_distances(initial, images).assign(model="initialisation"),
        ]
    )
    table = per_head.pivot_table(index="stage", columns="model", values="distance_px")
    trained_stage = table["trained"]
    with torch.no_grad():
        first = stage_attentions(model, images)[0].weights  # (L, B, H, N, N)
    return Locality(
        table=table,
        per_head=per_head,
        stage1_vs_init=float(trained_stage[1] / table.loc[1, "initialisation"]),
        stage1_vs_late=float(trained_stage[1] / trained_stage[[3, 4]].mean()),
        stage1_max_weight=float(first.max(dim=-1).values.mean()),
        stage1_tokens=first.shape[-1],
    )


def ablation(table: pd.DataFrame) -> pd.DataFrame:
    """Accuracy change from the full-attention model, per task and variant (negative = cost)."""
    out = table[["accuracy"]].copy()
    full = table.xs(FULL, level="variant")["accuracy"]
    out["change"] = [row.accuracy - full[task] for (task, _), row in table.iterrows()]
    return out


# ----------------------------------------------------------------------------- ViT + rollout


def train_vit(run: Run, task: str = "pairs") -> PyramidTransformer:
    """A 4-layer ViT with a CLS token (patch 4) for the rollout figure."""
    size = run.size
    set_seed(run.seed)
    model = PyramidTransformer(
        PyramidConfig(
            image_size=32,
            in_channels=1,
            patch_size=4,
            dims=(32,),
            heads=(4,),
            mlp_ratios=(2,),
            depths=(4,),
            attention=(True,),
            cls_token=True,
            num_classes=run.tasks[task].num_classes,
        )
    )
    config = TrainConfig(
        epochs=size["vit_epochs"],
        batch_size=size["batch_size"],
        lr=size["lr"],
        optimizer="adamw",
        weight_decay=0.05,
        seed=run.seed,
        device=run.device,
    )
    fit(
        model,
        run.tasks[task].train,
        loss_fn=cross_entropy_loss,
        config=config,
        cache_key_extra={"paper": "pan2022_lit", "variant": "vit", "version": 1},
        progress=False,
    )
    return model.to("cpu").eval()


def rollout_maps(model: PyramidTransformer, images: torch.Tensor) -> torch.Tensor:
    """CLS-row attention rollout (Abnar & Zuidema 2020) on the ViT's 8 × 8 grid, `(n, 8, 8)`."""
    with torch.no_grad():
        attn = stage_attentions(model, images)[0]
    rolled = rollout(attn)[-1]  # (B, T, T) after the last layer
    return cls_patch_map(rolled, model.config.grids[0], num_special=1)


# ----------------------------------------------------------------------------- figures


def figure_query_maps(model: PyramidTransformer, image: torch.Tensor, query=(0.5, 0.5)) -> Figure:
    """Head-mean attention of one query position per attention stage (the paper's Fig. 3):
    the query is the token under `query` (fractions of height, width). Weights are shown as
    multiples of uniform attention (weight · N; 1 = uniform) on one colour scale for all stages."""
    with torch.no_grad():
        captured = stage_attentions(model, image[None])
    stages = sorted(captured)
    figure, axes = figure_with_axes(1, len(stages) + 1, (2.1, 2.3), None)
    picture = image[0].numpy()
    axes[0, 0].imshow(picture, cmap="gray")
    axes[0, 0].set_title("image", fontsize=8)
    maps, queries = {}, {}
    for stage in stages:
        h, w = model.config.grids[stage]
        queries[stage] = row, col = int(query[0] * h), int(query[1] * w)
        special = model.num_special(stage)
        weights = captured[stage].weights[0, 0].mean(0)  # first layer, head mean: (T, T)
        token = special + row * w + col
        maps[stage] = weights[token, special:].reshape(h, w) * (h * w)  # 1 = uniform
    top = max(2.0, max(float(m.max()) for m in maps.values()))
    for panel, stage in zip(axes[0, 1:], stages, strict=True):
        h, w = model.config.grids[stage]
        row, col = queries[stage]
        image_overlay(
            picture,
            maps[stage],
            ax=panel,
            interpolation="nearest",
            colorbar=False,
            alpha=0.55,
            vmin=0.0,
            vmax=top,
        )
        step = model.config.token_pixels[stage]
        corner = (col * step - 0.5, row * step - 0.5)
        panel.add_patch(Rectangle(corner, step, step, fill=False, color="white", lw=1.5))
        panel.set_title(f"stage {stage + 1} ({h}×{w})", fontsize=8)
    figure.colorbar(axes[0, -1].images[-1], ax=axes[0, -1], fraction=0.046, label="× uniform")
    for panel in axes.flat:
        panel.set_xticks([])
        panel.set_yticks([])
    return figure


def figure_distances(per_head: pd.DataFrame) -> Figure:
    """Mean attention distance of every head against its stage, trained and at initialisation
    (the layout of the ViT paper's Fig. 7, right)."""
    figure, axes = figure_with_axes(1, 1, (4.8, 3.2), None)
    panel = axes[0, 0]
    for offset, (name, colour) in zip(
        (-0.12, 0.12), (("initialisation", "0.6"), ("trained", "C0")), strict=True
    ):
        part = per_head[per_head["model"] == name]
        panel.scatter(part["stage"] + offset, part["distance_px"], s=14, color=colour, label=name)
    panel.set_xticks(sorted(per_head["stage"].unique()))
    panel.set_xlabel("stage")
    panel.set_ylabel("mean attention distance (px)")
    panel.legend(fontsize=8)
    return figure


def figure_offsets(model: PyramidTransformer, image: torch.Tensor, stage: int = 1) -> Figure:
    """Where the DTM merging into `stage` (0-based) samples, over the image: the fixed 2 × 2
    sampling points of plain merging (grey) and the learned ones (red), in pixels."""
    with torch.no_grad():
        model(image[None])
    offsets = model.offsets()[stage][0]  # (8, h, w), in units of the previous stage's tokens
    step = model.config.token_pixels[stage - 1]
    _, h, w = offsets.shape
    shift = offsets.reshape(2, 2, 2, h, w)  # (a, b, yx, i, j)
    figure, axes = figure_with_axes(1, 1, (3.4, 3.4), None)
    panel = axes[0, 0]
    panel.imshow(image[0].numpy(), cmap="gray")
    for a in range(2):
        for b in range(2):
            base_y = (np.arange(h)[:, None] * 2 + a) * step + (step - 1) / 2
            base_x = (np.arange(w)[None, :] * 2 + b) * step + (step - 1) / 2
            ys = base_y + shift[a, b, 0].numpy() * step
            xs = base_x + shift[a, b, 1].numpy() * step
            panel.scatter(
                np.broadcast_to(base_x, (h, w)), np.broadcast_to(base_y, (h, w)), s=4, color="0.7"
            )
            panel.scatter(xs, ys, s=4, color="red")
    panel.set_xticks([])
    panel.set_yticks([])
    return figure


def figure_accuracy_flops(table: pd.DataFrame) -> Figure:
    """Test accuracy against forward MFLOPs per image, one panel per task."""
    tasks = list(table.index.get_level_values("task").unique())
    figure, axes = figure_with_axes(1, len(tasks), (3.6, 3.0), None)
    for panel, task in zip(axes[0], tasks, strict=True):
        part = table.xs(task, level="task")
        for i, (variant, row) in enumerate(part.iterrows()):
            panel.scatter(row.MFLOPs, row.accuracy, color=f"C{i}", label=variant)
        panel.set_title(task, fontsize=9)
        panel.set_xlabel("MFLOPs per image")
        panel.set_ylabel("test accuracy")
    axes[0, -1].legend(fontsize=6, loc="lower right")
    return figure


def figure_overlays(images: dict[str, torch.Tensor], maps: dict[str, torch.Tensor]) -> Figure:
    """Each image with its rollout map upsampled over it."""
    names = list(images)
    figure, axes = figure_with_axes(1, len(names), (2.0, 2.2), None)
    for panel, name in zip(axes[0], names, strict=True):
        image_overlay(images[name][0], maps[name], ax=panel, colorbar=False, title=name)
    return figure


def figure_images(run: Run) -> dict[str, torch.Tensor]:
    """Images for the figures: two task images and the scikit-image samples, `(1, 32, 32)` each."""
    pairs = run.tasks["pairs"].test
    digits = run.tasks["digits"].test
    out = {
        "pairs (same)": next(x for x, y in pairs if y == 1),
        "pairs (different)": next(x for x, y in pairs if y == 0),
    }
    out["digit"] = digits[0][0]
    out.update(sample_images(MODEL["image_size"], ("camera", "astronaut")))
    return out
