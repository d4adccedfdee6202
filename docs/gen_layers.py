"""Draws docs/images/architecture-layers.png, the picture in docs/architecture.md.

``python docs/gen_layers.py`` after a package is added or moved; the layers
are listed here once, and docs/architecture.md explains them.
"""

from __future__ import annotations

from pathlib import Path

#: top to bottom: (layer, its packages and modules, what it is for)
LAYERS = [
    ("interfaces", ["cli/", "api.py", "testing/"], "the commands, the Python functions, the plugin contract kit"),
    ("commands' pipelines", ["run/", "batch/", "segment/", "decompose/", "inspect/", "learn/"],
     "one package per job: restore, many images, split, layers, look inside, train"),
    ("shared toolkit", ["session/"], "output folders, Ctrl-C, atomic commit, records, device, figures"),
    ("loops", ["fit/", "learn/loop.py"], "the one fitting loop, the one training loop"),
    ("methods", ["builtins/", "nets/", "noise/", "io/"], "built-in components (plugins over the algorithms, reached through the registry), networks, noise models, image files"),
    ("core", ["core/", "components.py", "registry.py", "plugins.py", "hookspecs.py", "spec.py", "errors.py"],
     "component kinds, parameters, value types, registry, hooks, spec parsing"),
]


def draw(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10, 5.4), dpi=100)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, len(LAYERS))
    ax.axis("off")
    colours = ["#dbe9f6", "#e3f1df", "#fdf0d5", "#f6dede", "#ece3f4", "#e8e8e8"]
    for i, (layer, parts, what) in enumerate(LAYERS):
        y = len(LAYERS) - 1 - i
        ax.add_patch(FancyBboxPatch((0.1, y + 0.08), 9.8, 0.84, boxstyle="round,pad=0.02",
                                    facecolor=colours[i % len(colours)], edgecolor="#555555"))
        ax.text(0.3, y + 0.62, layer, fontsize=11, weight="bold", va="center")
        ax.text(0.3, y + 0.3, what, fontsize=8.5, va="center", color="#333333")
        ax.text(9.7, y + 0.62, "  ".join(parts), fontsize=8.5, family="monospace", va="center", ha="right")
    ax.set_title("restorekit's layers, top to bottom (docs/architecture.md)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "images" / "architecture-layers.png"
    draw(out)
    print(out)
