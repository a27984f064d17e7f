"""Original checkpoints see (x, y, z) arrays: hecktorseg's loaded network on a (z, y, x) volume must
equal the original network (unpermuted weights, written out functionally) on the transposed volume.

The reference here never goes through hecktorseg's loader: ``reference_forward`` is the original
forward pass restated with functional ops on the file's own tensors, fed the volume the way the
original code (nibabel) held it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from hecktorseg.inference import Predictor
from hecktorseg.models import (
    SENormUNet,
    convert_original_checkpoint,
    export_model,
    load_checkpoint,
    load_original_checkpoint,
    save_original_checkpoint,
    swap_kernel_axes,
)
from hecktorseg.preprocessing import PreprocessConfig

SHAPE = (1, 2, 32, 16, 48)  # (N, C, z, y, x): non-cubic, so a swapped axis cannot go unnoticed


def _layout(n_filters: int = 4) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = SENormUNet(n_filters=n_filters)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _original_on_zyx(reference_forward, state: dict[str, Tensor], x_zyx: Tensor) -> Tensor:  # type: ignore[no-untyped-def]
    """The original convention: its network on the (x, y, z) array, the result turned back to (z, y, x)."""
    x_xyz = x_zyx.transpose(2, 4)
    return reference_forward(state, x_xyz).transpose(2, 4)


@pytest.fixture
def original_state(random_state_dict) -> dict[str, Tensor]:  # type: ignore[no-untyped-def]
    return random_state_dict(_layout(), seed=11)


@pytest.fixture
def volume() -> Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.randn(SHAPE, generator=generator, dtype=torch.float64)


def test_the_axis_order_matters_for_these_weights(original_state, volume, reference_forward) -> None:  # type: ignore[no-untyped-def]
    """Guard against a vacuous test: unpermuted weights on (z, y, x) give a clearly different function."""
    state = {k: v.double() for k, v in original_state.items()}
    with torch.no_grad():
        naive = reference_forward(state, volume)
        original = _original_on_zyx(reference_forward, state, volume)
    assert float((naive - original).abs().max()) > 1e-2


@pytest.mark.parametrize("prefix", ["", "module."])
def test_loaded_original_checkpoint_computes_the_original_function_on_zyx_arrays(
    tmp_path: Path, prefix: str, original_state, volume, reference_forward
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "original.pth"
    torch.save({prefix + k: v for k, v in original_state.items()}, path)
    expected_state = {k: v.double() for k, v in original_state.items()}
    with torch.no_grad():
        expected = _original_on_zyx(reference_forward, expected_state, volume)
        ours = load_original_checkpoint(path).double()(volume)
        also = load_checkpoint(path).model.double()(volume)
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(also, expected, rtol=1e-9, atol=1e-9)


def test_conv_transpose_and_pointwise_kernels_are_swapped_consistently(original_state) -> None:  # type: ignore[no-untyped-def]
    swapped = swap_kernel_axes(original_state)
    up = original_state["upconv_2.weight"]  # ConvTranspose3d: (in, out, kD, kH, kW)
    assert up.dim() == 5
    torch.testing.assert_close(swapped["upconv_2.weight"], up.permute(0, 1, 4, 3, 2))
    point = original_state["conv1x1.weight"]
    assert tuple(point.shape[2:]) == (1, 1, 1)
    torch.testing.assert_close(swapped["conv1x1.weight"], point)  # a 1x1x1 kernel: no-op
    torch.testing.assert_close(swapped["conv1x1.bias"], original_state["conv1x1.bias"])
    again = swap_kernel_axes(swapped)  # its own inverse
    for key, value in original_state.items():
        assert torch.equal(again[key], value), key


@pytest.mark.parametrize("prefix", ["", "module."])
def test_ensemble_of_original_checkpoints_through_the_predictor(
    tmp_path: Path, prefix: str, random_state_dict, reference_forward
) -> None:  # type: ignore[no-untyped-def]
    states = [random_state_dict(_layout(), seed=s) for s in (21, 22)]
    paths = []
    for i, state in enumerate(states):
        paths.append(tmp_path / f"ns{i}.pth")
        torch.save({prefix + k: v for k, v in state.items()}, paths[-1])
    predictor = Predictor.from_checkpoints(paths, device="cpu", backend="torch", precision="fp32")
    assert predictor.preprocessing_name == "original"
    x = torch.randn(SHAPE[1:], generator=torch.Generator().manual_seed(5))
    probs = predictor.predict_array(x.numpy())
    with torch.no_grad():
        expected = torch.stack(
            [
                torch.sigmoid(_original_on_zyx(reference_forward, s, x[None]))
                for s in ({k: v.float() for k, v in st.items()} for st in states)
            ]
        ).mean(0)[0]
    assert probs.shape == tuple(expected.shape)
    torch.testing.assert_close(torch.from_numpy(probs), expected, rtol=1e-3, atol=2e-4)


def test_export_of_an_original_checkpoint_computes_the_original_function(
    tmp_path: Path, original_state, reference_forward
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "original.pth"
    torch.save({"module." + k: v for k, v in original_state.items()}, path)
    out = export_model(path, tmp_path / "model.pt", shape=SHAPE)
    scripted = torch.jit.load(str(out))
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        got = scripted(x)
        expected = _original_on_zyx(reference_forward, original_state, x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_conversion_to_our_format_and_back(tmp_path: Path, original_state, volume, reference_forward) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "original.pth"
    torch.save(original_state, src)
    ours = convert_original_checkpoint(src, tmp_path / "converted.pt")
    loaded = load_checkpoint(ours)
    assert loaded.metadata["preprocess"]["legacy"] is True
    assert loaded.metadata["preprocess"]["pet_stats"] == "all"
    assert loaded.metadata["preprocess"]["ct_fill"] == 0.0
    with torch.no_grad():
        got = loaded.model.double()(volume)
        expected = _original_on_zyx(
            reference_forward, {k: v.double() for k, v in original_state.items()}, volume
        )
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
    # the converted checkpoint predicts with the authors' preprocessing, like the original file
    assert Predictor.from_checkpoints(ours, device="cpu").preprocess == PreprocessConfig.paper()
    # an existing destination is not overwritten silently
    with pytest.raises(Exception, match="exists"):
        convert_original_checkpoint(src, ours)
    # and back to the original format: the very tensors of the file
    back = save_original_checkpoint(loaded.model.float(), tmp_path / "back.pth")
    restored = torch.load(back, weights_only=True)
    assert set(restored) == set(original_state)
    for key, value in original_state.items():
        assert torch.equal(restored[key], value), key
