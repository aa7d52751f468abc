"""Entry script of the frozen app (PyInstaller)."""

import multiprocessing

from mammodesk.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # image decoding runs in spawned worker processes
    raise SystemExit(main())
