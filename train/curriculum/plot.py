"""The curriculum at a glance: per-task sampling weight, learning progress and success, and the
number of tasks mastered, against training steps (one PNG, rewritten after every evaluation)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence


def plot_history(history: Sequence[dict], path, title: str = "curriculum") -> Path:
    """Write the four panels of ``history`` (:attr:`Curriculum.history`) to ``path`` (PNG,
    replaced atomically so a viewer never reads half a file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from envs.core.fileio import write_atomic

    path = Path(path)
    steps = [h["step"] for h in history]
    tasks = list(dict.fromkeys(t for h in history for t in h["weights"]))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    panels = (("weights", "sampling weight"), ("lp", "learning progress"), ("success", "success rate"))
    for ax, (key, label) in zip(axes.flat, panels):
        for t in tasks:
            xs = [s for s, h in zip(steps, history) if t in h[key]]
            ax.plot(xs, [h[key][t] for h in history if t in h[key]], marker=".", label=t)
        ax.set_ylabel(label)
        if key == "success":
            ax.set_ylim(-0.02, 1.02)
        else:
            ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[1, 1].step(steps, [h["num_mastered"] for h in history], where="post", color="k")
    axes[1, 1].set_ylabel("tasks mastered")
    axes[1, 1].set_ylim(0, max(1, len(tasks)))
    axes[1, 1].yaxis.get_major_locator().set_params(integer=True)
    axes[1, 1].grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("training step")
    if len(tasks) <= 20:
        axes[0, 0].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return path
