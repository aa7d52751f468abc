"""Can a window open here? Asked before Qt is, because Qt's answer is to abort
the process (rc 134) with a message that names one library (libxcb-cursor0)
whatever is missing. Imports no Qt module: it reads PySide6's plugin folder
and asks the system's `ldd` what the X11 plugin lacks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs")
STARTUP_PLATFORM = os.environ.get("QT_QPA_PLATFORM")  # before the offscreen self-check sets its own


def xcb_plugin() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    plugin = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def missing_libraries(library: Path) -> list[str]:
    """Shared libraries `library` needs that the system lacks (ldd's 'not found'), in order, once each."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        listing = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return list(dict.fromkeys(re.findall(r"^\s*(\S+) => not found", listing, flags=re.M)))


def debian_package(soname: str) -> str:
    """libxcb-icccm.so.4 -> libxcb-icccm4, libxkbcommon-x11.so.0 -> libxkbcommon-x11-0, libEGL.so.1 -> libegl1."""
    match = re.match(r"(lib[^.]+)\.so\.(\d+)", soname)
    if match is None:
        return soname
    name, major = match.group(1).lower(), match.group(2)
    return f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why the window cannot open on this machine (one line, with what to do), or None."""
    env = os.environ if environ is None else environ
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0]
    if not sys.platform.startswith("linux") or platform in HEADLESS_PLATFORMS or platform.startswith("wayland"):
        return None
    if env.get("WAYLAND_DISPLAY") and not platform and (env.get("XDG_SESSION_TYPE") == "wayland"
                                                        or not env.get("DISPLAY")):
        return None  # a Wayland session: Qt picks its Wayland plugin, X11's libraries do not matter
    if not env.get("DISPLAY"):
        return ("no display is available (DISPLAY is not set): start MammoDesk from a desktop session, over "
                "'ssh -X', or under Xvfb; headless work needs no window: 'mammodesk predict', or "
                "QT_QPA_PLATFORM=offscreen for scripts")
    if not _local_display_listens(env["DISPLAY"]):
        return (f"the display {env['DISPLAY']} does not answer (no X server listens there): check DISPLAY, or "
                "start MammoDesk from the desktop session it names")
    plugin = xcb_plugin()
    missing = missing_libraries(plugin) if plugin is not None else []
    if missing:
        packages = " ".join(dict.fromkeys(debian_package(m) for m in missing))
        return (f"Qt's X11 plugin cannot load: {', '.join(missing)} not found on this system. "
                f"Debian/Ubuntu: sudo apt install {packages}")
    return None


def _local_display_listens(display: str) -> bool:
    """For ':N' displays, whether an X server's socket is there (a file, or Linux's abstract socket);
    remote displays are left to Qt."""
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if match is None:
        return True
    socket = f"/tmp/.X11-unix/X{match.group(1)}"
    if Path(socket).exists():
        return True
    try:
        return f"@{socket}" in Path("/proc/net/unix").read_text()
    except OSError:
        return True


PROBE_FLAG = "--probe-display"  # `mammodesk --probe-display`: open Qt's default platform, print its name


def probe_display() -> int:
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication(["mammodesk-probe"])
    print(app.platformName())
    return 0


def real_platform_check(timeout_s: float = 60.0) -> str:
    """For `--self-test`: open Qt on this machine's own platform (not offscreen) in a child process, so a
    Qt abort cannot take the self-test down. Returns what opened; raises RuntimeError with why not."""
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)
    if STARTUP_PLATFORM is not None:
        env["QT_QPA_PLATFORM"] = STARTUP_PLATFORM
    problem = display_problem(env)
    if problem is not None:
        raise RuntimeError(problem)
    command = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "mammodesk"]
    try:
        done = subprocess.run([*command, PROBE_FLAG], capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"Qt did not start within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise RuntimeError(f"Qt could not start on this display: {last}")
    return f"platform {done.stdout.strip()} opens here"
