# SPDX-License-Identifier: Apache-2.0
"""The one place that locates the non-code files nsconv ships inside its package (templates, C
sources, the default model, calibration clips), through importlib.resources, so an installed
wheel finds them wherever it lives. nsconv is installed unzipped, so each is a real directory."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(anchor: str, *parts: str) -> Path:
    """The file or directory parts inside the package anchor (e.g. "nsconv.target")."""
    return Path(str(files(anchor).joinpath(*parts)))


PACKAGE_DIR = package_path("nsconv")
FIRMWARE_DIR = package_path("nsconv.target", "firmware")
KERNEL_DIR = FIRMWARE_DIR / "kernels"
FIRMWARE_TEMPLATE_DIR = package_path("nsconv.target", "templates")
CODEGEN_TEMPLATE_DIR = package_path("nsconv.compiler", "templates")
PORTING_DOC = FIRMWARE_DIR / "PORTING.md"
MODELS_DIR = package_path("nsconv.model", "data", "models")
CALIB_DIR = package_path("nsconv.quant", "data", "calib")
