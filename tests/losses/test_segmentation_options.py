"""Dice options (batch Dice, absent classes left out) and Dice + cross-entropy, against explicit loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hecktorseg.losses import DiceCELoss, DiceLoss, build_loss, cross_entropy_loss


def _case() -> tuple[torch.Tensor, np.ndarray]:
    """Softmax probabilities (3 samples, 3 classes, 4x3x2) and label maps; sample 1 has no label 2,
    sample 2 has neither label 1 nor label 2."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 3, 4, 3, 2, generator=gen, dtype=torch.float64)
    probs = torch.softmax(logits, dim=1)
    labels = np.zeros((3, 1, 4, 3, 2), dtype=np.int64)
    labels[0, 0, :2, :2, 0] = 1
    labels[0, 0, 3, 2, :] = 2
    labels[1, 0, 1:3, 1, :] = 1
    return probs, labels


def _one_dice(p: np.ndarray, t: np.ndarray) -> float:
    return 1 - (2 * (p * t).sum() + 1) / ((p**2).sum() + (t**2).sum() + 1)


def test_skip_absent_averages_only_the_present_sample_class_pairs() -> None:
    probs, labels = _case()
    p = probs.numpy()
    terms = []
    for n in range(3):
        for k in (1, 2):
            t = (labels[n, 0] == k).astype(float)
            if t.any():
                terms.append(_one_dice(p[n, k], t))
    assert len(terms) == 3  # (0, 1), (0, 2), (1, 1)
    got = DiceLoss(from_logits=False, skip_absent=True)(probs, torch.from_numpy(labels))
    assert float(got) == pytest.approx(float(np.mean(terms)), rel=1e-12)
    # without the option every pair counts: the mean over classes, then over samples
    every = [
        np.mean([_one_dice(p[n, k], (labels[n, 0] == k).astype(float)) for k in (1, 2)]) for n in range(3)
    ]
    plain = DiceLoss(from_logits=False)(probs, torch.from_numpy(labels))
    assert float(plain) == pytest.approx(float(np.mean(every)), rel=1e-12)


def test_batch_dice_sums_over_the_batch_first() -> None:
    probs, labels = _case()
    p = probs.numpy()
    per_class = []
    for k in (1, 2):
        t = (labels[:, 0] == k).astype(float)
        per_class.append(_one_dice(p[:, k], t))
    got = DiceLoss(from_logits=False, batch_dice=True)(probs, torch.from_numpy(labels))
    assert float(got) == pytest.approx(float(np.mean(per_class)), rel=1e-12)
    # a class absent from the whole batch is left out with skip_absent
    no_nodes = np.where(labels == 2, 0, labels)
    skipped = DiceLoss(from_logits=False, batch_dice=True, skip_absent=True)(
        probs, torch.from_numpy(no_nodes)
    )
    assert float(skipped) == pytest.approx(_one_dice(p[:, 1], (no_nodes[:, 0] == 1).astype(float)), rel=1e-12)


def test_nothing_present_gives_zero_dice_and_no_nan() -> None:
    probs, _ = _case()
    empty = torch.zeros(3, 1, 4, 3, 2)
    loss = DiceLoss(from_logits=False, skip_absent=True)(probs.requires_grad_(), empty)
    assert float(loss.detach()) == 0.0 and not math.isnan(float(loss.detach()))
    loss.backward()
    assert probs.grad is not None and float(probs.grad.abs().sum()) == 0.0


def test_cross_entropy_matches_torch_and_the_binary_formula() -> None:
    probs, labels = _case()
    logits = torch.log(probs)
    reference = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels[:, 0]))
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels[:, 0]), 3).movedim(-1, 1).double()
    assert float(cross_entropy_loss(probs, one_hot)) == pytest.approx(float(reference), rel=1e-9)
    # one sigmoid channel: binary cross-entropy
    gen = torch.Generator().manual_seed(1)
    p = torch.rand(2, 1, 3, 3, 3, generator=gen, dtype=torch.float64) * 0.98 + 0.01
    t = (torch.rand(2, 1, 3, 3, 3, generator=gen) > 0.5).double()
    expected = float(np.mean(-(t.numpy() * np.log(p.numpy()) + (1 - t.numpy()) * np.log(1 - p.numpy()))))
    assert float(cross_entropy_loss(p, t)) == pytest.approx(expected, rel=1e-12)


def test_dice_ce_is_the_weighted_sum_and_builds_by_name() -> None:
    probs, labels = _case()
    target = torch.from_numpy(labels)
    logits = torch.log(probs)
    loss = build_loss("dice_ce", batch_dice=True, skip_absent=True)
    assert isinstance(loss, DiceCELoss)
    dice = DiceLoss(batch_dice=True, skip_absent=True)(logits, target)
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0])
    assert float(loss(logits, target)) == pytest.approx(float(dice + ce), rel=1e-9)
    weighted = DiceCELoss(dice_weight=0.5, ce_weight=2.0)(logits, target)
    plain_dice = DiceLoss()(logits, target)
    assert float(weighted) == pytest.approx(float(0.5 * plain_dice + 2.0 * ce), rel=1e-9)


def test_class_weighted_cross_entropy_by_explicit_loop() -> None:
    probs, labels = _case()
    p = probs.numpy()
    weights = (1.0, 2.0, 10.0)
    total = 0.0
    n, _, z, y, x = p.shape
    for i in range(n):
        for a in range(z):
            for b in range(y):
                for c in range(x):
                    k = labels[i, 0, a, b, c]
                    total += -weights[k] * np.log(p[i, k, a, b, c])
    expected = total / (n * z * y * x)  # a mean over voxels, not over the weights
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels[:, 0]), 3).movedim(-1, 1).double()
    assert float(cross_entropy_loss(probs, one_hot, class_weights=weights)) == pytest.approx(
        expected, rel=1e-9
    )
    loss = DiceCELoss(from_logits=False, class_weights=weights)
    dice = DiceLoss(from_logits=False)(probs, torch.from_numpy(labels))
    assert float(loss(probs, torch.from_numpy(labels))) == pytest.approx(float(dice) + expected, rel=1e-9)


def test_class_weights_must_match_the_outputs() -> None:
    from hecktorseg.errors import ConfigError

    probs, labels = _case()
    with pytest.raises(ConfigError, match="2 class weights for 3 output channels"):
        DiceCELoss(from_logits=False, class_weights=(1.0, 2.0))(probs, torch.from_numpy(labels))
