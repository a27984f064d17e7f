"""Use the weights published with the original HECKTOR 2020 solution in hecktorseg.

The winning solution of HECKTOR 2020 (Iantsen et al., "Squeeze-and-excitation
normalization for automated delineation of head and neck primary tumors in
combined PET and CT images", 2021) released eight trained SE-norm U-Nets
(``n_filters`` 24, SE reduction 2, one sigmoid output for GTVt; folds of a
leave-one-centre-out and of a random 4-fold split). Each file is a plain
PyTorch ``state_dict`` saved from a ``torch.nn.DataParallel`` wrapper, so every
key starts with ``module.`` (``module.block_1_1_left.conv1.conv.weight``, ...).
There is no metadata in those files: hecktorseg reads the architecture off the
tensor shapes (:func:`hecktorseg.models.load_original_checkpoint`), turns the
kernels from the original's (x, y, z) axis order (it read NIfTI with nibabel) to
hecktorseg's (z, y, x), and predicts with the preprocessing the authors trained
with: the head-and-neck box cropped with rounded corners and resampled to 144³
voxels of 1 mm, 0 HU outside the CT, PET statistics over the whole box
(:meth:`hecktorseg.preprocessing.PreprocessConfig.paper`).

No weights can be downloaded here, so this script *simulates* such a file: it
builds a randomly initialised :class:`hecktorseg.models.SENormUNet` and saves
its ``state_dict`` with the ``module.`` prefix, exactly as the original code
did. With the real files, skip that step and pass their paths instead. The
script then

1. loads the file with :func:`~hecktorseg.models.load_original_checkpoint` and
   checks that every tensor came back, 3-D kernels with their first and last
   spatial axes swapped;
2. builds a :class:`hecktorseg.inference.Predictor` with
   :meth:`~hecktorseg.inference.Predictor.from_checkpoints` (give all eight
   paths for the paper's ensemble);
3. predicts one synthetic PET/CT patient and writes the mask on the patient's
   original CT grid, printing the mask geometry next to the CT geometry.

Run it with::

    python examples/load_original_checkpoint.py --out runs/original
    python examples/load_original_checkpoint.py --quick     # 4 filters, tiny phantom

(The random weights segment nothing useful: the point is the plumbing.)
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import SimpleITK as sitk
import torch

from hecktorseg.data import SyntheticConfig, make_phantom
from hecktorseg.inference import Predictor
from hecktorseg.io import Case, Geometry, centre_from_id, write_bbox_table, write_image
from hecktorseg.models import SENormUNet, load_original_checkpoint

logger = logging.getLogger("load_original_checkpoint")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the example."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a new temp folder)")
    parser.add_argument("--n-filters", type=int, default=None, help="filters of the simulated model (24)")
    parser.add_argument("--quick", action="store_true", help="4 filters and a tiny phantom")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the phantom")
    return parser.parse_args(argv)


def simulate_original_checkpoint(path: Path, *, n_filters: int, seed: int) -> SENormUNet:
    """Save a random SE-norm U-Net the way the original code did (``module.``-prefixed state dict)."""
    torch.manual_seed(seed)
    model = SENormUNet(in_channels=2, n_classes=1, n_filters=n_filters, reduction=2)
    state = {f"module.{key}": value for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return model


def describe(name: str, geometry: Geometry) -> str:
    """One line with a grid's size, spacing and origin."""
    size = "×".join(str(s) for s in geometry.size)
    spacing = ", ".join(f"{s:.3f}" for s in geometry.spacing)
    origin = ", ".join(f"{o:.2f}" for o in geometry.origin)
    return f"{name}: size {size}, spacing ({spacing}) mm, origin ({origin}) mm"


def main(argv: list[str] | None = None) -> int:
    """Simulate, load and use an original checkpoint; returns the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out: Path = args.out if args.out is not None else Path(tempfile.mkdtemp(prefix="hecktorseg-original-"))
    out.mkdir(parents=True, exist_ok=True)
    n_filters = args.n_filters if args.n_filters is not None else (4 if args.quick else 24)

    # 0. the stand-in for a published file (with the real weights, skip this).
    ckpt = out / "original_model.pth"
    reference_model = simulate_original_checkpoint(ckpt, n_filters=n_filters, seed=args.seed)
    logger.info("simulated an original checkpoint with %d filters: %s", n_filters, ckpt)

    # 1. the architecture is read off the tensor shapes; the "module." prefix is stripped;
    #    kernels (x, y, z) of the original become (z, y, x), the order of hecktorseg's arrays.
    model = load_original_checkpoint(ckpt)
    expected = {k: v.transpose(2, 4) if v.dim() == 5 else v for k, v in reference_model.state_dict().items()}
    loaded = model.state_dict()
    identical = sum(torch.equal(loaded[k], v) for k, v in expected.items())
    if identical != len(expected):
        logger.error("only %d of %d tensors were restored", identical, len(expected))
        return 1

    # 2. one synthetic patient, written to disk as a user's files would be.
    config = SyntheticConfig.tiny() if args.quick else SyntheticConfig()
    phantom = make_phantom("CHGJ001", seed=args.seed, config=config)
    case_dir = out / "data" / phantom.patient_id
    ct_path = case_dir / f"{phantom.patient_id}_ct.nii.gz"
    pet_path = case_dir / f"{phantom.patient_id}_pt.nii.gz"
    write_image(phantom.ct, ct_path)
    write_image(phantom.pet, pet_path)
    write_bbox_table(out / "data" / "bbox.csv", {phantom.patient_id: phantom.bbox})
    case = Case(
        patient_id=phantom.patient_id,
        centre=centre_from_id(phantom.patient_id),
        ct_path=ct_path,
        pet_path=pet_path,
        bbox=phantom.bbox,
    )

    # 3. the Predictor uses the authors' preprocessing (144³ at 1 mm, rounded crop, 0 HU fill,
    #    PET statistics over the box) for original files; pass every published checkpoint in
    #    the list to average the ensemble.
    predictor = Predictor.from_checkpoints([ckpt], device="cpu")
    prediction = predictor.predict_case(case)
    mask_path = out / "predictions" / f"{phantom.patient_id}.nii.gz"
    write_image(prediction.mask, mask_path)

    ct_geometry = Geometry.from_image(sitk.ReadImage(str(ct_path)))
    mask_geometry = Geometry.from_image(sitk.ReadImage(str(mask_path)))
    print(f"checkpoint: {ckpt}")
    print(f"model: SE-norm U-Net, n_filters {model.hparams['n_filters']}, tensors restored {identical}")
    print(
        f"preprocessing assumed: size {predictor.preprocess.size}, spacing {predictor.preprocess.spacing} mm, "
        f"{predictor.preprocessing_name} (legacy crop {predictor.preprocess.legacy}, "
        f"CT fill {predictor.preprocess.ct_fill:g} HU, PET statistics {predictor.preprocess.pet_stats})"
    )
    lower = ", ".join(f"{v:.1f}" for v in prediction.bbox.lower)
    upper = ", ".join(f"{v:.1f}" for v in prediction.bbox.upper)
    print(f"box (from {prediction.box_source}): ({lower}) .. ({upper}) mm")
    print(describe("CT grid  ", ct_geometry))
    print(describe("mask grid", mask_geometry))
    print(f"same grid: {mask_geometry.is_close(ct_geometry)}")
    print(f"foreground voxels: {int(sitk.GetArrayViewFromImage(prediction.mask).sum())}")
    print(f"mask: {mask_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
