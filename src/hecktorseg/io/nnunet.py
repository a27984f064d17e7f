"""nnU-Net raw datasets: reading and checking ``dataset.json`` and the CT/PET channels it names."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hecktorseg.errors import LayoutError
from hecktorseg.io.files import check_input_file
from hecktorseg.typing import PathLike

__all__ = ["read_nnunet_dataset_json"]


def read_nnunet_dataset_json(root: PathLike) -> dict[str, Any]:
    """Read and check an nnU-Net ``dataset.json`` (``channel_names`` with CT and PET, ``file_ending``).

    Raises
    ------
    LayoutError
        The file is missing, not JSON, or lacks a CT or PET channel.
    """
    path = Path(root) / "dataset.json"
    if path.exists():
        check_input_file(path, what="nnU-Net dataset.json")  # a FIFO would block the read
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayoutError(
            "nnU-Net dataset.json not found", path=path, hint="an nnU-Net raw dataset needs a dataset.json"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"cannot read dataset.json ({exc})", path=path, hint="fix the JSON") from None
    if not isinstance(data, dict):
        raise LayoutError("dataset.json must hold a JSON object", path=path)
    channels = data.get("channel_names", data.get("modality"))
    if not isinstance(channels, Mapping):
        raise LayoutError(
            "dataset.json lacks 'channel_names'",
            path=path,
            hint='add "channel_names": {"0": "CT", "1": "PT"}',
        )
    return data


def _nnunet_channels(root: Path) -> tuple[int, int, str]:
    data = read_nnunet_dataset_json(root)
    channels = data.get("channel_names", data.get("modality"))
    assert isinstance(channels, Mapping)
    ct_channel = pet_channel = None
    for key, value in channels.items():
        name = str(value).strip().upper()
        if name == "CT" and ct_channel is None:
            ct_channel = int(key)
        elif name in ("PT", "PET") and pet_channel is None:
            pet_channel = int(key)
    if ct_channel is None or pet_channel is None:
        raise LayoutError(
            f"dataset.json channel_names {dict(channels)} lack a CT and a PET (PT) channel",
            path=root / "dataset.json",
            hint='use "channel_names": {"0": "CT", "1": "PT"}',
        )
    ending = str(data.get("file_ending", ".nii.gz"))
    return ct_channel, pet_channel, ending
