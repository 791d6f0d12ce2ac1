"""Pictures of sub-goals: a GravMap as a coloured point cloud, an episode's keyposes over its
signals, a strip of rendered frames at the keyposes. matplotlib (Agg), PNG files."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_gravmap(points: np.ndarray, path, scene: np.ndarray | None = None, subgoal=None, title: str = "",
                 bounds=None) -> Path:
    """Two 3-D views of one reduced GravMap (``points`` (n, 6): xyz, cost, gripper, flag): coloured
    by cost (left) and by gripper openness (right), over the scene's point cloud (its own colours,
    faded), within ``bounds`` ((low xyz), (high xyz), m) when given."""
    if scene is not None and bounds is not None:
        lo, hi = np.asarray(bounds, float)
        scene = scene[np.all((scene[:, :3] >= lo) & (scene[:, :3] <= hi), axis=1)]
    fig = plt.figure(figsize=(10, 4.6))
    for i, (col, label, cmap) in enumerate(((3, "cost (0 at the sub-goal)", "viridis"),
                                            (4, "gripper openness (1 open)", "coolwarm_r"))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        if scene is not None:
            ax.scatter(*scene[:, :3].T, s=4, c=np.clip(scene[:, 3:6], 0, 1) if scene.shape[1] >= 6 else "0.7",
                       alpha=0.35, linewidths=0)
        sc = ax.scatter(*points[:, :3].T, c=points[:, col], cmap=cmap, s=6, vmin=0, vmax=1, linewidths=0)
        if subgoal is not None:
            ax.scatter(*np.asarray(subgoal, float).reshape(3, 1), marker="*", s=160, c="red", edgecolors="k")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        ax.set_zlabel("z (m)")
        if bounds is not None:
            ax.set_xlim(bounds[0][0], bounds[1][0])
            ax.set_ylim(bounds[0][1], bounds[1][1])
            ax.set_zlim(bounds[0][2], bounds[1][2])
            ax.set_box_aspect(np.asarray(bounds[1]) - np.asarray(bounds[0]))
        ax.view_init(elev=30, azim=-160)
        fig.colorbar(sc, ax=ax, shrink=0.6, label=label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_keyposes(signals, keyposes, path, title: str = "") -> Path:
    """An episode's signals over time (TCP height, joint speed, gripper command, contact) with the
    keyposes (vertical lines, labelled by what fired) and the oracle's phase events (ticks)."""
    t = np.arange(len(signals))
    fig, axes = plt.subplots(4, 1, figsize=(9, 6.5), sharex=True)
    rows = ((signals.tcp_pos[:, 2], "TCP z (m)"), (np.linalg.norm(signals.qvel, axis=1), "|qvel| (rad/s)"),
            (signals.gripper_cmd, "gripper cmd"), (signals.contact.astype(float), "contact"))
    for ax, (y, label) in zip(axes, rows):
        ax.plot(t, y, lw=1.2)
        ax.set_ylabel(label, fontsize=8)
        for k in keyposes:
            ax.axvline(k.step, color="tab:red", lw=0.9, alpha=0.7)
        for e in getattr(signals, "events", []):
            ax.axvline(e.step, color="k", lw=0.8, ls=":")
    for k in keyposes:
        axes[0].annotate("+".join(k.reasons), (k.step, axes[0].get_ylim()[1]), fontsize=7, rotation=90,
                         va="top", ha="right", color="tab:red")
    axes[-1].set_xlabel("control step (20 Hz); red: keyposes, dotted: oracle phase events")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def frame_strip(frames: list[np.ndarray], labels: list[str], path) -> Path:
    """Frames side by side, each with its label under it."""
    fig, axes = plt.subplots(1, len(frames), figsize=(2.6 * len(frames), 2.6), squeeze=False)
    for ax, img, label in zip(axes[0], frames, labels):
        ax.imshow(img)
        ax.set_title(label, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
