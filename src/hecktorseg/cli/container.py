"""``hecktorseg container predict|build``: the HECKTOR 2025/2026 Grand Challenge submission."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from hecktorseg.cli._common import backend_option, console, handle_errors, precision_option, threads_option

HELP = (
    "Grand Challenge submission (HECKTOR 2025/2026 Task 1, GTVp + GTVn): 'predict' is what the image "
    "runs; 'build' writes a ready Docker build context."
)


def register(app: typer.Typer) -> None:
    """Add the ``container`` command group to ``app``."""
    group = typer.Typer(name="container", help=HELP, no_args_is_help=True)

    @group.command("predict")
    @handle_errors
    def predict(
        input_dir: Path = typer.Option(
            Path("/input"), "--input", help="Holds images/ct/*.mha, images/pet/*.mha and ehr.json."
        ),
        output_dir: Path = typer.Option(
            Path("/output"),
            "--output",
            help="images/tumor-lymph-node-segmentation/output.mha is written here.",
        ),
        model: list[Path] = typer.Option(
            ..., "--model", "-m", help="Checkpoint; repeat for an ensemble (probabilities averaged)."
        ),
        tta: bool = typer.Option(False, "--tta/--no-tta", help="Average over the 8 mirrorings."),
        largest_component: bool = typer.Option(
            False, "--largest-component", help="Keep only the largest GTVp component."
        ),
        min_gtvn_volume: float = typer.Option(
            200.0,  # hecktorseg.inference.MIN_GTVN_VOLUME_MM3 (a test keeps them equal)
            "--min-gtvn-volume",
            min=0.0,
            metavar="MM3",
            help="Drop GTVn components below MM3 mm³ (0: keep all).",
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        threads: Optional[int] = threads_option(),  # noqa: UP045 - Typer needs a runtime Optional
        backend: str = backend_option(),
        precision: str = precision_option(),
    ) -> None:
        """Segment the single case of INPUT and write OUTPUT/images/tumor-lymph-node-segmentation/output.mha.

        The mask (uint8: 0 background, 1 GTVp, 2 GTVn, on the input CT grid) is identical to
        what 'hecktorseg predict' writes for the same CT and PET.
        """
        from hecktorseg.container import container_predict

        result = container_predict(
            input_dir,
            output_dir,
            models=model,
            tta=tta,
            device=device,
            largest_component=largest_component,
            min_gtvn_volume=min_gtvn_volume,
            num_threads=threads,
            backend=backend,
            precision=precision,
        )
        console.print(
            f"{result.input.case_id}: voxels per label {result.labels} → {result.output_path}",
            highlight=False,
        )

    @group.command("build")
    @handle_errors
    def build(
        out_dir: Path = typer.Argument(..., help="Folder for the Docker build context (new or empty)."),
        model: list[Path] = typer.Option(..., "--model", "-m", help="Checkpoint; repeat for an ensemble."),
        tta: bool = typer.Option(False, "--tta/--no-tta", help="Test-time mirroring in the image."),
        largest_component: bool = typer.Option(
            False, "--largest-component", help="Keep only the largest GTVp component."
        ),
        min_gtvn_volume: float = typer.Option(
            200.0,  # hecktorseg.inference.MIN_GTVN_VOLUME_MM3 (a test keeps them equal)
            "--min-gtvn-volume",
            min=0.0,
            metavar="MM3",
            help="Drop GTVn components below MM3 mm³ (0: keep all).",
        ),
        wheel: Optional[Path] = typer.Option(  # noqa: UP045
            None, "--wheel", help="Install this hecktorseg wheel instead of copying the running source."
        ),
        sample: bool = typer.Option(
            True, "--sample/--no-sample", help="Write one synthetic case to sample/input."
        ),
        image: Optional[str] = typer.Option(  # noqa: UP045
            None, "--image", help="Image tag used by run_sample.sh (default hecktorseg-gc:VERSION)."
        ),
        variant: str = typer.Option(
            "cpu",
            "--variant",
            help="cpu: CPU-only PyTorch (small); gpu: CUDA PyTorch, a GPU with fp16 when given one, else the CPU.",
        ),
        offline: bool = typer.Option(
            False,
            "--offline",
            help="Download every wheel into OUT_DIR/wheels now: docker build needs no network.",
        ),
        torch_index_url: Optional[str] = typer.Option(  # noqa: UP045
            None,
            "--torch-index-url",
            help="Package index of the variant's PyTorch (default: the variant's; '' for pip's configured ones).",
        ),
        base_image: Optional[str] = typer.Option(  # noqa: UP045
            None, "--base-image", help="FROM image (default python:<this Python>-slim pinned by digest)."
        ),
        force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT_DIR."),
    ) -> None:
        """Write a Docker build context: Dockerfile, checkpoints, entry point, run_sample.sh, README."""
        from hecktorseg.container import build_context

        result = build_context(
            out_dir,
            model,
            tta=tta,
            largest_component=largest_component,
            min_gtvn_volume=min_gtvn_volume,
            wheel=wheel,
            sample=sample,
            force=force,
            image=image,
            variant_name=variant,
            offline=offline,
            torch_index_url=torch_index_url,
            base_image=base_image,
        )
        console.print(
            f"build context with {len(result.models)} model(s) → {result.out_dir} "
            f"(next: {result.out_dir}/run_sample.sh)",
            highlight=False,
            soft_wrap=True,
        )

    app.add_typer(group)
