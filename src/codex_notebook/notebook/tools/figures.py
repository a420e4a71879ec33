"""A matplotlib figure as text and, when cheap, as a small PNG the model can look at.

matplotlib is never imported here: a value is a figure only if ``matplotlib.figure`` is already
in ``sys.modules`` and the value is an instance of its ``Figure`` (or an ``Axes``, whose figure
is used).  Rendering happens at a reduced resolution (at most :data:`MAX_PIXELS`, at most
:data:`MAX_WIDTH` wide) and the PNG is dropped if it is bigger than :data:`MAX_PNG_BYTES`.

Runs on the kernel's main thread (matplotlib is not thread-safe), under the caller's time budget.
"""

from __future__ import annotations

import base64
import io
import math
import sys
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "MAX_PIXELS",
    "MAX_PNG_BYTES",
    "MAX_WIDTH",
    "FigureImage",
    "close_figures",
    "figure_lines",
    "figure_of",
    "open_figure_numbers",
    "pyplot_figure",
    "render_png",
]

#: Most pixels a rendered figure may have (about 800 × 600).
MAX_PIXELS: Final = 480_000
#: Widest rendering, in pixels.
MAX_WIDTH: Final = 800
#: Largest PNG attached to an answer (bytes, before base64).
MAX_PNG_BYTES: Final = 100_000
#: Below this resolution a figure is unreadable: say so instead of attaching it.
_MIN_DPI: Final = 30.0


@dataclass(frozen=True)
class FigureImage:
    """A rendered figure: ``url`` is a ``data:image/png;base64,…`` URL, or None with ``note``
    saying why not.  ``note`` always describes the outcome in a few words."""

    url: str | None
    note: str


def _class(module: str, name: str) -> type | None:
    mod = sys.modules.get(module)
    cls = vars(mod).get(name) if mod is not None else None
    return cls if isinstance(cls, type) else None


def figure_of(value: object) -> Any | None:
    """The matplotlib ``Figure`` this value is (or belongs to, for an ``Axes``), else None."""
    figure_cls = _class("matplotlib.figure", "Figure")
    if figure_cls is None:
        return None
    if isinstance(value, figure_cls):
        return value
    axes_cls = _class("matplotlib.axes", "Axes")
    if axes_cls is not None and isinstance(value, axes_cls):
        fig = getattr(value, "figure", None)
        if not isinstance(fig, figure_cls):  # an Axes on a SubFigure: take the root figure
            fig = getattr(fig, "figure", None)
        return fig if isinstance(fig, figure_cls) else None
    return None


def figure_lines(fig: Any) -> list[str]:
    """What is on the figure, in a few lines: size, and per axes its titles, labels and artists."""
    width, height = (float(v) for v in fig.get_size_inches())
    axes = list(fig.get_axes())
    lines = [f"size {width:g} × {height:g} in at {float(fig.dpi):g} dpi, {len(axes)} axes"]
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text():
        lines.append(f"suptitle: {suptitle.get_text()!r}")
    for i, ax in enumerate(axes[:12], 1):
        parts = []
        for label, text in (
            ("title", ax.get_title()),
            ("xlabel", ax.get_xlabel()),
            ("ylabel", ax.get_ylabel()),
        ):
            if text:
                parts.append(f"{label} {text!r}")
        counts = {
            "lines": len(ax.lines),
            "collections": len(ax.collections),
            "images": len(ax.images),
            "patches": len(ax.patches),
            "texts": len(ax.texts),
        }
        parts.append(", ".join(f"{n} {k}" for k, n in counts.items() if n) or "empty")
        legend = ax.get_legend()
        if legend is not None:
            labels = [t.get_text() for t in legend.get_texts()][:10]
            parts.append(f"legend: {', '.join(labels)}")
        parts.append(f"x range {_range(ax.get_xlim())}, y range {_range(ax.get_ylim())}")
        lines.append(f"axes {i}: " + "; ".join(parts))
    if len(axes) > 12:
        lines.append(f"[… {len(axes) - 12} more axes not listed]")
    return lines


def _range(limits: tuple[float, float]) -> str:
    lo, hi = limits
    return f"{lo:.4g} to {hi:.4g}"


def render_png(
    fig: Any,
    *,
    max_pixels: int = MAX_PIXELS,
    max_width: int = MAX_WIDTH,
    max_bytes: int = MAX_PNG_BYTES,
) -> FigureImage:
    """Render ``fig`` as a small PNG data URL, or say why not.

    The resolution is lowered until the picture fits ``max_pixels`` and ``max_width``; if
    the PNG is still over ``max_bytes``, it is tried once more at 60 % resolution, then
    dropped.  The figure itself is not changed.
    """
    width_in, height_in = (float(v) for v in fig.get_size_inches())
    if width_in <= 0 or height_in <= 0:
        return FigureImage(None, "not attached: the figure has no area")
    dpi = min(float(fig.dpi), max_width / width_in, math.sqrt(max_pixels / (width_in * height_in)))
    for attempt in range(2):
        if dpi < _MIN_DPI:
            return FigureImage(
                None, f"not attached: at {max_pixels:,} pixels it would be unreadable"
            )
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi)
        data = buffer.getvalue()
        if len(data) <= max_bytes:
            px = f"{round(width_in * dpi)}×{round(height_in * dpi)}"
            url = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            return FigureImage(url, f"attached as a {px} PNG ({len(data) / 1024:.0f} KiB)")
        if attempt == 0:
            dpi *= 0.6
    return FigureImage(
        None, f"not attached: the PNG is over {max_bytes // 1024} KiB even at low resolution"
    )


def pyplot_figure(number: int) -> Any | None:
    """The open pyplot figure with this number, without making it the current figure."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    gcf = vars(helpers).get("Gcf") if helpers is not None else None
    manager = getattr(gcf, "figs", {}).get(number)
    canvas = getattr(manager, "canvas", None)
    return getattr(canvas, "figure", None)


def open_figure_numbers() -> set[int]:
    """Numbers of the figures pyplot has open (empty if pyplot was never imported)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return set()
    return {int(n) for n in plt.get_fignums()}


def close_figures(numbers: set[int]) -> None:
    """Close these pyplot figures, so the inline backend does not show them in a later cell."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    for number in numbers:
        plt.close(number)
