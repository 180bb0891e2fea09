"""The reply-latency figure: CDFs of push and poll latency on a log axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

#: Latencies at or under this (ms) are drawn at it: a log axis has no zero.
FLOOR_MS = 0.1


def latency_cdf(push_s: Sequence[float], poll_s: Sequence[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=110)
    for label, samples, color in (
        ("push (WEBHOOKS=on)", push_s, "tab:blue"),
        ("poll (WEBHOOKS=off, every 0.5 s)", poll_s, "tab:orange"),
    ):
        if not samples:
            continue
        ms = sorted(max(FLOOR_MS, s * 1000) for s in samples)
        fraction = [(i + 1) / len(ms) for i in range(len(ms))]
        ax.step(ms, fraction, where="post", label=f"{label}, n={len(ms)}", color=color)
        p99 = ms[max(0, int(0.99 * len(ms) + 0.999999) - 1)]
        ax.axvline(p99, color=color, linestyle=":", linewidth=1)
        ax.annotate(
            f"p99 {p99:.1f} ms",
            xy=(p99, 0.99),
            xytext=(4, -14),
            textcoords="offset points",
            color=color,
            fontsize=8,
        )
    ax.axvline(50, color="grey", linestyle="--", linewidth=1)
    ax.annotate(
        "50 ms target",
        xy=(50, 0.05),
        xytext=(4, 0),
        textcoords="offset points",
        color="grey",
        fontsize=8,
    )
    ax.set_xscale("log")
    ax.set_xlabel("reply latency (ms): waiting call answered minus agent's create returned")
    ax.set_ylabel("fraction of hand-offs")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="center left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
