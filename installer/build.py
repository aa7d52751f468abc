"""Build the self-contained Linux bundle: one folder with the app, Qt plugins,
onnxruntime (CPU), the pylibjpeg decoders and resources/, plus a desktop entry,
packed as dist/mammodesk-VERSION-linux-ARCH.tar.gz.

    python installer/build.py [--dist DIR] [--work DIR]

Run it from the environment the app is installed in (`pip install -e .` and
`pip install pyinstaller`). MAMMODESK_BUNDLE_CUDA=1 keeps onnxruntime-gpu's CUDA
provider (see installer/README.md)."""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(dist: Path, work: Path, compresslevel: int = 9) -> Path:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        raise SystemExit("installer/build.py needs PyInstaller: pip install pyinstaller") from None
    from mammodesk import __version__

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--distpath", str(dist), "--workpath", str(work), str(HERE / "mammodesk.spec")], check=True)
    bundle = dist / "mammodesk"
    for name in ("mammodesk.desktop", "install-desktop-entry.sh"):
        shutil.copy2(HERE / name, bundle / name)
    shutil.copy2(ROOT / "resources" / "icons" / "mammodesk.svg", bundle / "mammodesk.svg")
    built = time.perf_counter() - started
    archive = dist / f"mammodesk-{__version__}-linux-{platform.machine()}.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=compresslevel) as tar:
        tar.add(bundle, arcname=f"mammodesk-{__version__}")
    print(f"bundle {bundle}: {folder_size(bundle) / 1e6:.0f} MB, built in {built:.0f} s")
    print(f"archive {archive}: {archive.stat().st_size / 1e6:.0f} MB "
          f"(total {time.perf_counter() - started:.0f} s)")
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller")
    args = parser.parse_args()
    build(args.dist.resolve(), args.work.resolve())


if __name__ == "__main__":
    main()
