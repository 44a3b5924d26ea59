"""One chart comparing toy-world runs: the four measures side by side (classroom notebook)."""

from __future__ import annotations

# matplotlib: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["compare_runs"]

_KEYS = (("subject_fidelity", "subject fidelity"), ("prompt_fidelity", "prompt fidelity"),
         ("class_drift_mean", "class drift\n(mean of 8 prompts)"),
         ("class_drift_worst", "class drift\n(worst prompt)"),
         ("class_diversity", "class diversity"))


def compare_runs(runs: dict, path=None):
    """runs: {label: metrics dict (toy.metrics.evaluate_toy)} -> a grouped bar chart."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(runs))
    for k, (label, m) in enumerate(runs.items()):
        xs = [i + (k - (len(runs) - 1) / 2) * width for i in range(len(_KEYS))]
        bars = ax.bar(xs, [m[key] for key, _ in _KEYS], width=width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(_KEYS)), [name for _, name in _KEYS])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share of pictures (oracle)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
