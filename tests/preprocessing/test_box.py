"""The PET brain box must not be misled by a tumour whose uptake joins the brain's blob."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from hecktorseg.data import SyntheticConfig, make_phantom
from hecktorseg.data.synthetic import synthetic_patient_ids
from hecktorseg.io import Geometry
from hecktorseg.preprocessing import box_from_pet


@pytest.mark.parametrize("pid", synthetic_patient_ids(12))
def test_pet_box_holds_the_whole_tumour(pid: str) -> None:
    phantom = make_phantom(pid, seed=0, config=SyntheticConfig.tiny())
    box = box_from_pet(phantom.pet, patient_id=pid)
    geometry = Geometry.from_image(phantom.label)
    voxels = np.argwhere(sitk.GetArrayViewFromImage(phantom.label) > 0)[:, ::-1].astype(np.float64)
    world = geometry.index_to_world(voxels)
    assert np.all(world >= box.lower) and np.all(world <= box.upper)
    # the brain sits above the box: its centre is not inside it
    assert phantom.brain_center_mm[2] > box.z2
