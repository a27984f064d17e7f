"""SE-norm U-Net architecture: parameter counts, original key names, SE-norm and fusion maths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hecktorseg.errors import ConfigError, DataError, HecktorsegError
from hecktorseg.models import (
    BaselineUNet,
    Conv3d,
    SENorm3d,
    SENormUNet,
    available_models,
    build_model,
    check_input_shape,
    probabilities,
    split_output_head,
)

# A handful of key -> shape pairs of the original implementation's checkpoints (f = 24, r = 2).
ORIGINAL_KEY_SHAPES = {
    "block_1_1_left.conv1.conv.weight": (24, 2, 7, 7, 7),
    "block_1_1_left.conv1.norm.gamma.conv1.weight": (12, 24, 1, 1, 1),
    "block_1_1_left.res_conv.conv.weight": (24, 2, 1, 1, 1),
    "block_1_2_left.conv1.conv.weight": (24, 24, 3, 3, 3),
    "block_2_1_left.res_conv.norm.beta.conv2.weight": (48, 24, 1, 1, 1),
    "block_5_3_left.conv1.norm.beta.conv2.weight": (384, 192, 1, 1, 1),
    "upconv_4.weight": (384, 192, 3, 3, 3),
    "upconv_4.bias": (192,),
    "block_4_1_right.conv.weight": (192, 384, 3, 3, 3),
    "block_4_1_right.norm.gamma.conv1.bias": (96,),
    "vision_4.conv.conv.weight": (24, 192, 1, 1, 1),
    "vision_2.conv.norm.gamma.conv1.weight": (12, 24, 1, 1, 1),
    "upconv_1.weight": (48, 24, 3, 3, 3),
    "block_1_1_right.conv.weight": (24, 48, 3, 3, 3),
    "block_1_2_right.norm.beta.conv2.bias": (24,),
    "conv1x1.weight": (1, 24, 1, 1, 1),
    "conv1x1.bias": (1,),
}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("n_filters", "expected"), [(24, 21_751_681), (4, 608_641), (8, 2_423_937)])
def test_parameter_counts(n_filters: int, expected: int) -> None:
    with torch.device("meta"):
        model = SENormUNet(in_channels=2, n_classes=1, n_filters=n_filters, reduction=2)
    assert n_params(model) == expected


def test_state_dict_keys_match_the_original_naming() -> None:
    with torch.device("meta"):
        state = SENormUNet().state_dict()
    assert len(state) == 310
    keys = list(state)
    assert keys[0] == "block_1_1_left.conv1.conv.weight"
    assert keys[-1] == "conv1x1.bias"
    for key, shape in ORIGINAL_KEY_SHAPES.items():
        assert tuple(state[key].shape) == shape, key
    # Identity shortcuts carry no parameters; only the first unit of a level changes channels.
    assert not any(k.startswith("block_1_2_left.res_conv") for k in keys)
    assert not any(k.startswith("block_2_2_left.res_conv") for k in keys)
    assert sum(k.endswith(".res_conv.conv.weight") for k in keys) == 5
    # No buffers (instance norms without running statistics).
    assert not any("running" in k or "num_batches" in k for k in keys)


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
def test_se_norm_unit_float64_against_numpy(traced: bool) -> None:
    """Eager (fused ``var_mean``) and traced (``instance_norm``, for export) forms give the same maths."""
    torch.manual_seed(0)
    channels, reduction = 6, 2
    layer = SENorm3d(channels, reduction).double()
    x = torch.randn(2, channels, 5, 4, 3, dtype=torch.float64) * 2.0 + 0.5
    if traced:
        module = torch.jit.trace(layer, (x,))
        assert "instance_norm" in str(module.graph)
        out = module(x).detach().numpy()
    else:
        out = layer(x).detach().numpy()

    xn = x.numpy()
    w = {k: v.detach().numpy() for k, v in layer.state_dict().items()}

    def se(branch: str, pooled: np.ndarray) -> np.ndarray:
        w1 = w[f"{branch}.conv1.weight"].reshape(channels // reduction, channels)
        w2 = w[f"{branch}.conv2.weight"].reshape(channels, channels // reduction)
        hidden = np.maximum(pooled @ w1.T + w[f"{branch}.conv1.bias"], 0.0)
        return hidden @ w2.T + w[f"{branch}.conv2.bias"]

    pooled = xn.mean(axis=(2, 3, 4))
    gamma = 1.0 / (1.0 + np.exp(-se("gamma", pooled)))
    beta = np.tanh(se("beta", pooled))
    mean = xn.mean(axis=(2, 3, 4), keepdims=True)
    var = xn.var(axis=(2, 3, 4), keepdims=True)
    expected = gamma[..., None, None, None] * (xn - mean) / np.sqrt(var + 1e-5) + beta[..., None, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_full_forward_equals_functional_reference(reference_forward) -> None:
    torch.manual_seed(1)
    model = SENormUNet(n_filters=4).double().eval()
    x = torch.randn(1, 2, 16, 16, 32, dtype=torch.float64)
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(model.state_dict(), x)
    assert ours.shape == (1, 1, 16, 16, 32)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)


def test_fusion_is_added_before_the_last_level1_unit() -> None:
    """Hook check: block_1_2_right's input equals block_1_1_right's output + the three fused maps."""
    torch.manual_seed(2)
    model = SENormUNet(n_filters=4).double().eval()
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, args, output):
            seen[name] = output
            seen[name + ":in"] = args[0]

        return hook

    for name in ("block_1_1_right", "block_1_2_right", "vision_4", "vision_3", "vision_2"):
        getattr(model, name).register_forward_hook(keep(name))
    with torch.no_grad():
        model(torch.randn(1, 2, 16, 16, 32, dtype=torch.float64))
    for name in ("vision_4", "vision_3", "vision_2"):
        assert seen[name].shape == (1, 4, 16, 16, 32)
    expected = seen["block_1_1_right"] + seen["vision_4"] + seen["vision_3"] + seen["vision_2"]
    torch.testing.assert_close(seen["block_1_2_right:in"], expected)


@pytest.mark.parametrize("name", ["senorm_unet", "baseline_unet"])
def test_split_output_head_composes_to_the_model(name: str) -> None:
    """features then head is the model, bit for bit; the head is the 1x1 conv on the last block's output."""
    torch.manual_seed(4)
    model = build_model(name, n_filters=4, n_classes=3).double().eval()
    split = split_output_head(model)
    assert split is not None
    features, head = split
    x = torch.randn(2, 2, 16, 32, 16, dtype=torch.float64)
    with torch.no_grad():
        feats = features(x)
        assert feats.shape == (2, 4, 16, 32, 16)
        assert torch.equal(head(feats), model(x))
        last: dict[str, torch.Tensor] = {}
        model.block_1_2_right.register_forward_hook(lambda m, i, o: last.__setitem__("out", o))
        model(x)
    assert torch.equal(feats, last["out"])
    assert torch.equal(head(feats), model.conv1x1(feats))
    # the parts share the model's weights (nothing copied)
    assert features.model is model and head.model is model


def test_split_output_head_of_other_modules_is_none() -> None:
    assert split_output_head(torch.nn.Conv3d(2, 1, 3)) is None


def test_multiclass_head_and_probabilities() -> None:
    torch.manual_seed(3)
    model = SENormUNet(n_classes=3, n_filters=4).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 2, 16, 16, 32))
    assert logits.shape == (2, 3, 16, 16, 32)
    probs = probabilities(logits)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, 16, 16, 32))
    torch.testing.assert_close(probabilities(logits[:, :1]), torch.sigmoid(logits[:, :1]))


def test_shape_error_is_clear() -> None:
    model = SENormUNet(n_filters=4)
    with pytest.raises(DataError, match="multiples of 16") as info:
        model(torch.zeros(1, 2, 24, 32, 32))
    assert isinstance(info.value, HecktorsegError)
    with pytest.raises(DataError, match="5-D"):
        check_input_shape((2, 32, 32, 32))
    check_input_shape((1, 2, 144, 144, 144))


def test_invalid_hyperparameters() -> None:
    with pytest.raises(ValueError, match="divisible"):
        SENormUNet(n_filters=5, reduction=2)
    with pytest.raises(ConfigError, match="invalid arguments"):
        build_model("senorm_unet", n_filters=0)
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("resnet")


def test_registry_and_baseline() -> None:
    assert available_models() == ["baseline_unet", "senorm_unet"]
    model = build_model("baseline_unet", n_filters=4)
    assert isinstance(model, BaselineUNet)
    assert model.hparams == {"in_channels": 2, "n_classes": 1, "n_filters": 4}
    keys = list(model.state_dict())
    assert "block_1_1_left.norm.weight" in keys  # affine instance norm
    assert "block_1_1_left.conv.bias" not in keys  # conv without bias
    assert not any(k.startswith("block_5") for k in keys)  # four levels
    torch.manual_seed(4)
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 2, 16, 32, 16))
    assert out.shape == (1, 1, 16, 32, 16)
    with pytest.raises(DataError, match="multiples of 16"):
        model(torch.zeros(1, 2, 8, 16, 16))


def test_model_parameters_name_each_constructors_arguments() -> None:
    from hecktorseg.models.registry import model_parameters
    from hecktorseg.training import TrainConfig
    from hecktorseg.training.factory import train_model_kwargs

    assert model_parameters("baseline_unet") == {"in_channels", "n_classes", "n_filters"}
    assert model_parameters("senorm_unet") == {"in_channels", "n_classes", "n_filters", "reduction"}
    assert model_parameters("resnet") is None  # unknown: build_model reports it
    # the training settings pass each model only what its constructor takes
    base = train_model_kwargs(TrainConfig(model="baseline_unet", n_filters=4, reduction=4), 2)
    assert base == {"in_channels": 2, "n_classes": 1, "n_filters": 4}
    se = train_model_kwargs(TrainConfig(n_filters=8, reduction=4, n_classes=3), 2)
    assert se == {"in_channels": 2, "n_classes": 3, "n_filters": 8, "reduction": 4}


def test_training_step_gradients_flow() -> None:
    torch.manual_seed(5)
    model = SENormUNet(n_filters=4)
    x = torch.randn(1, 2, 16, 16, 16)
    model(x).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("depth", [2, 3])
def test_conv3d_bfloat16_weight_gradient_matches_float64(depth: int) -> None:
    """Under CPU bfloat16 autocast the weight gradient stays right, also at depth 2.

    Reference: the float64 gradient of the same convolution on the bfloat16-rounded
    input, output gradient and weights. torch's own bfloat16 kernel gets depth 2 wrong
    (relative error about 1, or inf/NaN); bfloat16 rounding alone costs about 0.2 %.
    """
    torch.manual_seed(depth)
    conv = Conv3d(8, 16, kernel_size=3, padding=1)
    conv.weight.data = conv.weight.data.bfloat16().float()
    x = torch.randn(2, 8, depth, 4, 4).bfloat16().float()
    grad_out = torch.randn(2, 16, depth, 4, 4).bfloat16().float()
    with torch.autocast("cpu", torch.bfloat16):
        out = conv(x)
    assert out.dtype == torch.bfloat16
    out.backward(grad_out)
    assert conv.weight.grad is not None

    w64 = conv.weight.detach().double().requires_grad_(True)
    ref = torch.nn.functional.conv3d(x.double(), w64, conv.bias.detach().double(), padding=1)
    ref.backward(grad_out.double())
    assert w64.grad is not None
    assert torch.isfinite(conv.weight.grad).all()
    rel = (conv.weight.grad.double() - w64.grad).norm() / w64.grad.norm()
    assert rel < 0.02
    np.testing.assert_allclose(out.float().detach().numpy(), ref.detach().numpy(), rtol=0.05, atol=0.05)


def test_conv3d_is_plain_conv3d_outside_the_bfloat16_case() -> None:
    torch.manual_seed(0)
    ours = Conv3d(3, 4, kernel_size=3, padding=1)
    plain = torch.nn.Conv3d(3, 4, kernel_size=3, padding=1)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 2, 5, 5)
    assert torch.equal(ours(x), plain(x))
    assert set(ours.state_dict()) == {"weight", "bias"}
