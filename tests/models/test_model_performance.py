"""Inference settings: the default is exact (fp32) and the bf16 option stays close."""

from __future__ import annotations

import pytest
import torch

from hecktorseg.errors import ConfigError
from hecktorseg.models import (
    SENormUNet,
    inference_context,
    optimize_for_inference,
    resolve_inference_settings,
    run_inference,
)


def test_default_cpu_inference_is_exact() -> None:
    torch.manual_seed(0)
    model = SENormUNet(n_filters=4)
    x = torch.randn(1, 2, 16, 16, 16)
    with torch.no_grad():
        expected = model.eval()(x)
    settings = resolve_inference_settings("cpu")
    assert settings.precision in ("fp32", "bf16")
    out = run_inference(model, x)
    assert out.dtype == torch.float32
    assert out.is_contiguous()
    if settings.precision == "fp32":
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_explicit_precisions_and_context() -> None:
    torch.manual_seed(1)
    model = SENormUNet(n_filters=4)
    x = torch.randn(1, 2, 16, 16, 16)
    with torch.no_grad():
        expected = model.eval()(x)
    prepared, settings = optimize_for_inference(model, "cpu", precision="bf16", channels_last=True)
    assert settings.precision == "bf16" and settings.channels_last
    out = settings.run(prepared, x)
    assert out.dtype == torch.float32
    assert float((torch.sigmoid(out) - torch.sigmoid(expected)).abs().max()) < 0.1
    with inference_context("cpu", precision="fp32") as ctx:
        assert torch.is_inference_mode_enabled()
        torch.testing.assert_close(ctx.run(ctx.prepare(model), x), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="precision"):
        resolve_inference_settings("cpu", precision="fp16")  # type: ignore[arg-type]
