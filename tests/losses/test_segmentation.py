"""Dice, focal and Dice + focal losses against direct float64 formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hecktorseg.errors import ConfigError, DataError
from hecktorseg.losses import DiceFocalLoss, DiceLoss, FocalLoss, available_losses, build_loss


def dice_formula(p: np.ndarray, t: np.ndarray) -> float:
    """The original: per sample over all non-batch axes, then the batch mean."""
    values = []
    for ps, ts in zip(p, t, strict=True):
        values.append(1 - (2 * (ps * ts).sum() + 1) / ((ps**2).sum() + (ts**2).sum() + 1))
    return float(np.mean(values))


def focal_formula(p: np.ndarray, t: np.ndarray) -> float:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return float(np.mean(-(t * (1 - p) ** 2 * np.log(p) + (1 - t) * p**2 * np.log(1 - p))))


@pytest.fixture
def binary_case() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(3, 1, 6, 5, 4, generator=gen, dtype=torch.float64)
    probs[0, 0, 0, 0, :2] = torch.tensor([0.0, 1.0], dtype=torch.float64)  # exercise the clamp
    labels = (torch.rand(3, 1, 6, 5, 4, generator=gen) > 0.6).double()
    return probs, labels


def test_binary_losses_equal_the_formulas(binary_case) -> None:
    probs, labels = binary_case
    p, t = probs.numpy(), labels.numpy()
    dice = DiceLoss(from_logits=False)(probs, labels)
    focal = FocalLoss(from_logits=False)(probs, labels)
    total = DiceFocalLoss(from_logits=False)(probs, labels)
    assert dice.dtype == torch.float64
    assert float(dice) == pytest.approx(dice_formula(p, t), rel=1e-12)
    assert float(focal) == pytest.approx(focal_formula(p, t), rel=1e-12)
    assert float(total) == pytest.approx(dice_formula(p, t) + focal_formula(p, t), rel=1e-12)


def test_binary_target_is_label_one(binary_case) -> None:
    probs, labels = binary_case
    with_nodes = labels.clone()
    with_nodes[:, :, :2] = torch.where(
        labels[:, :, :2] == 0, 2.0, labels[:, :, :2]
    )  # label 2 = background here
    for loss in (DiceLoss(from_logits=False), FocalLoss(from_logits=False)):
        assert float(loss(probs, with_nodes)) == pytest.approx(float(loss(probs, labels)), rel=1e-12)
    # Integer label maps work too.
    assert float(DiceLoss(from_logits=False)(probs, labels.long())) == pytest.approx(
        float(DiceLoss(from_logits=False)(probs, labels)), rel=1e-12
    )


def test_from_logits_is_sigmoid_then_the_same_loss(binary_case) -> None:
    _, labels = binary_case
    logits = torch.randn(labels.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for cls in (DiceLoss, FocalLoss, DiceFocalLoss):
        a = cls(from_logits=True)(logits, labels)
        b = cls(from_logits=False)(torch.sigmoid(logits), labels)
        assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_multiclass_against_formulas() -> None:
    gen = torch.Generator().manual_seed(2)
    n_classes = 3
    logits = torch.randn(2, n_classes, 4, 5, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, n_classes, (2, 1, 4, 5, 6), generator=gen).double()
    probs = torch.softmax(logits, dim=1).numpy()
    onehot = np.stack([(labels.numpy()[:, 0] == k) for k in range(n_classes)], axis=1).astype(np.float64)

    # Dice: per sample and class, mean over foreground classes 1..C-1, then batch mean.
    per_class = [
        [
            1
            - (2 * (probs[n, k] * onehot[n, k]).sum() + 1)
            / ((probs[n, k] ** 2).sum() + onehot[n, k].sum() + 1)
            for k in range(1, n_classes)
        ]
        for n in range(2)
    ]
    expected_dice = float(np.mean([np.mean(row) for row in per_class]))
    expected_focal = focal_formula(probs, onehot)

    assert float(DiceLoss()(logits, labels)) == pytest.approx(expected_dice, rel=1e-12)
    assert float(FocalLoss()(logits, labels)) == pytest.approx(expected_focal, rel=1e-12)
    assert float(DiceFocalLoss()(logits, labels)) == pytest.approx(expected_dice + expected_focal, rel=1e-12)
    # A one-hot target of the prediction's shape gives the same.
    assert float(DiceLoss()(logits, torch.from_numpy(onehot))) == pytest.approx(expected_dice, rel=1e-12)
    # from_logits=False takes softmax probabilities.
    assert float(DiceFocalLoss(from_logits=False)(torch.from_numpy(probs), labels)) == pytest.approx(
        expected_dice + expected_focal, rel=1e-12
    )


def test_perfect_prediction_and_gradients() -> None:
    labels = torch.zeros(1, 1, 4, 4, 4)
    labels[..., 1:3, 1:3, 1:3] = 1
    assert float(DiceLoss(from_logits=False)(labels.clone(), labels)) == pytest.approx(0.0, abs=1e-7)
    logits = torch.zeros(1, 1, 4, 4, 4, requires_grad=True)
    DiceFocalLoss()(logits, labels).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert float(logits.grad[labels.bool()].max()) < 0  # push foreground logits up


def test_bf16_input_is_computed_in_float32(binary_case) -> None:
    probs, labels = binary_case
    loss = DiceFocalLoss()(torch.logit(probs.clamp(0.01, 0.99)).bfloat16(), labels)
    assert loss.dtype == torch.float32


def test_errors() -> None:
    with pytest.raises(DataError, match="does not match"):
        DiceLoss()(torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 1, 4, 4, 5))
    with pytest.raises(DataError, match="labels"):
        DiceLoss()(torch.zeros(1, 2, 4, 4, 4), torch.full((1, 1, 4, 4, 4), 2.0))
    with pytest.raises(ConfigError, match="unknown loss"):
        build_loss("bce")
    assert available_losses() == ["dice", "dice_ce", "dice_focal", "focal"]
    assert isinstance(build_loss("dice_focal", from_logits=False), DiceFocalLoss)
    assert build_loss("dice").from_logits is True


def test_three_class_dice_focal_by_explicit_loops() -> None:
    """GTVp + GTVn loss against a plain-Python float64 evaluation of the documented formula.

    Softmax over 3 channels; Dice per sample and foreground class 1, 2 as
    1 - (2 Σ p t + 1) / (Σ p² + Σ t² + 1), averaged over the two classes and the batch;
    focal (γ = 2, p clamped to [1e-3, 1 - 1e-3]) averaged over batch, all 3 channels and voxels.
    The second sample has no GTVn at all.
    """
    import math

    gen = torch.Generator().manual_seed(11)
    logits = torch.randn(2, 3, 2, 3, 2, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 3, (2, 1, 2, 3, 2), generator=gen)
    labels[1][labels[1] == 2] = 1
    z = logits.tolist()
    lab = labels.tolist()
    voxels = [(a, b, c) for a in range(2) for b in range(3) for c in range(2)]
    dice_terms, focal_sum, count = [], 0.0, 0
    for n in range(2):
        probs = {}
        for v in voxels:
            e = [math.exp(z[n][k][v[0]][v[1]][v[2]]) for k in range(3)]
            probs[v] = [x / sum(e) for x in e]
        per_class = []
        for k in range(3):
            pt = pp = tt = 0.0
            for v in voxels:
                p = probs[v][k]
                t = 1.0 if lab[n][0][v[0]][v[1]][v[2]] == k else 0.0
                pt, pp, tt = pt + p * t, pp + p * p, tt + t * t
                q = min(max(p, 1e-3), 1 - 1e-3)
                focal_sum += -(t * (1 - q) ** 2 * math.log(q) + (1 - t) * q**2 * math.log(1 - q))
                count += 1
            per_class.append(1 - (2 * pt + 1) / (pp + tt + 1))
        dice_terms.append((per_class[1] + per_class[2]) / 2)
    expected = sum(dice_terms) / 2 + focal_sum / count
    got = float(DiceFocalLoss()(logits, labels))
    assert got == pytest.approx(expected, rel=1e-12)
