"""Pure train/eval steps: loss decreases, Dice matches a hand computation, AMP runs."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import Tensor, nn

from hecktorseg.losses import build_loss
from hecktorseg.training import TrainConfig, eval_step, train_step
from hecktorseg.training.device import train_precision as resolve_amp
from hecktorseg.training.steps import batch_dice


class Fixed(nn.Module):
    """Returns given logits whatever the input."""

    def __init__(self, logits: Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: Tensor) -> Tensor:
        return self.logits


def _batch(n: int = 2, side: int = 8, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    label = torch.zeros(n, 1, side, side, side)
    label[:, :, 2:5, 2:6, 3:6] = 1
    image = torch.randn(n, 2, side, side, side, generator=g) + 2 * label
    return {"image": image, "label": label}


def test_train_step_returns_the_loss_and_learns() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(2, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 1, 1))
    loss_fn = build_loss("dice_focal")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = _batch()
    with torch.no_grad():
        before = float(loss_fn(model(batch["image"]), batch["label"]))
    first = train_step(model, batch, loss_fn, optimizer)
    assert first == pytest.approx(before, rel=1e-5)
    losses = [train_step(model, batch, loss_fn, optimizer) for _ in range(30)]
    assert losses[-1] < 0.7 * first


def test_train_step_with_bf16_autocast_and_clipping() -> None:
    torch.manual_seed(0)
    model = nn.Conv3d(2, 1, 3, padding=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = train_step(
        model, _batch(), build_loss("dice_focal"), optimizer, amp_dtype=torch.bfloat16, grad_clip=1.0
    )
    assert torch.isfinite(torch.tensor(loss))


def test_eval_step_dice_matches_hand_computation() -> None:
    label = torch.zeros(2, 1, 4, 4, 4)
    label[0, 0, :2] = 1  # 32 voxels
    logits = torch.full((2, 1, 4, 4, 4), -5.0)
    logits[0, 0, 1:3] = 5.0  # predicted 32 voxels, 16 overlap
    # sample 1: both empty -> 1
    loss_fn = build_loss("dice")
    loss, dice = eval_step(Fixed(logits), {"image": torch.zeros(2, 2, 4, 4, 4), "label": label}, loss_fn)
    assert dice == pytest.approx([2 * 16 / (32 + 32), 1.0])
    assert loss == pytest.approx(float(loss_fn(logits, label)))


def test_threshold_is_applied_to_probabilities() -> None:
    label = torch.ones(1, 1, 2, 2, 2)
    logits = torch.full((1, 1, 2, 2, 2), 0.5)  # sigmoid 0.62
    assert batch_dice(logits, label, threshold=0.5).item() == 1.0
    assert batch_dice(logits, label, threshold=0.7).item() == 0.0


def test_multiclass_dice_averages_foreground_classes() -> None:
    label = torch.zeros(1, 1, 2, 2, 2)
    label[0, 0, 0] = 1
    label[0, 0, 1, 0] = 2
    logits = torch.zeros(1, 3, 2, 2, 2)
    logits[0, 1, 0] = 10  # class 1 exact
    logits[0, 2, 1] = 10  # class 2 predicted on 4 voxels, 2 true
    assert batch_dice(logits, label).item() == pytest.approx((1.0 + 2 * 2 / (4 + 2)) / 2)


def test_resolve_amp() -> None:
    cpu = torch.device("cpu")
    assert resolve_amp(TrainConfig(), cpu) == (None, False)
    assert resolve_amp(TrainConfig(amp=True), cpu) == (torch.bfloat16, False)
    assert resolve_amp(TrainConfig(amp=False), torch.device("cuda")) == (None, False)
    assert resolve_amp(TrainConfig(), torch.device("cuda")) == (torch.float16, True)
    assert resolve_amp(TrainConfig(amp_dtype="bfloat16"), torch.device("cuda")) == (torch.bfloat16, False)


@pytest.mark.parametrize("native", [True, False])
def test_float32_cpu_training_points_to_bf16_where_the_cpu_has_it(
    native: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hecktorseg.training import device

    monkeypatch.setattr(device, "native_bf16", lambda dev: native)
    cpu = torch.device("cpu")
    with caplog.at_level(logging.INFO, logger="hecktorseg.training.device"):
        assert resolve_amp(TrainConfig(), cpu) == (None, False)  # the default stays float32
        assert resolve_amp(TrainConfig(amp=False), cpu) == (None, False)
    hints = [r for r in caplog.records if "amp: true" in r.getMessage()]
    assert len(hints) == (1 if native else 0)  # only for the default, never for an explicit amp: false
