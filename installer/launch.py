"""Entry script of the frozen app (PyInstaller)."""

from mammodesk.cli import main

raise SystemExit(main())
