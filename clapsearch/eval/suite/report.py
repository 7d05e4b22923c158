"""The suite's results as the paper prints them (a markdown table, tasks as columns grouped by
domain, figures as fractions) and as JSON (per-fold numbers, prompts, counts, exclusions)."""

from __future__ import annotations

from collections import Counter

from clapsearch.datasets import describe_missing
from clapsearch.datasets.labelled import fold_order as _fold_order
from clapsearch.eval.suite.runner import Score, SuiteResult, TaskResult

METRIC_SHORT = {"accuracy": "ACC", "mAP": "mAP", "F1": "F1"}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(suite: SuiteResult) -> str:
    """The table in the paper's layout, then one line per task and the warnings."""
    results = suite.results
    lines = [f"model {suite.model} ({suite.precision})", ""]
    if results:
        header = ["", *(r.task.title for r in results)]
        rows = [
            ["metric", *(METRIC_SHORT[r.task.metric] for r in results)],
            ["chance", *(_cell(r.chance) for r in results)],
            ["MS-CLAP 2022 zero-shot (paper)", *(_cell(r.task.paper_zeroshot) for r in results)],
            ["zero-shot", *(_cell(r.zeroshot.value) for r in results)],
        ]
        if suite.probe_name:
            rows.append(
                [suite.probe_name, *(_cell(r.probe.value if r.probe else None) for r in results)]
            )
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * len(results)) + "|")
        lines.extend("| " + " | ".join(row) + " |" for row in rows)
        domains = dict.fromkeys(r.task.domain for r in results)
        groups = [
            f"{d}: {', '.join(r.task.title for r in results if r.task.domain == d)}"
            for d in domains
        ]
        lines += ["", "Domains: " + "; ".join(groups) + "."]
        lines.append("")
        lines.extend(_task_line(r) for r in results)
    else:
        lines.append("no task ran.")
    for name, sentence in suite.skipped.items():
        lines.append(f"skipped {name}: {sentence}")
    lines.extend(w for w in warnings(suite))
    return "\n".join(lines)


def _task_line(r: TaskResult) -> str:
    parts = [
        f"{r.task.name}: {r.zeroshot.n} clips scored of {r.n_clips}, {len(r.class_names)} "
        f"classes, {r.task.protocol} ({', '.join(sorted(r.zeroshot.per_fold, key=_fold_order))})",
        f"prompt {r.task.prompt!r}",
    ]
    if r.missing:
        parts.append(describe_missing(r.missing))
    if r.excluded:
        parts.append(f"{r.excluded} training clips excluded")
    parts.extend(n.rstrip(".") for n in r.notes)
    return "- " + "; ".join(parts) + "."


def warnings(suite: SuiteResult) -> list[str]:
    out = [r.overlap_warning for r in suite.results if r.overlap_warning]
    if suite.results and not suite.training_record:
        out.append(
            "note: the model carries no training record (trained_on.json): whether it trained "
            "on these clips is unknown."
        )
    return out


def _score(s: Score | None) -> dict | None:
    if s is None:
        return None
    return {
        "value": s.value,
        "per_fold": dict(sorted(s.per_fold.items(), key=lambda kv: _fold_order(kv[0]))),
        "n": s.n,
    }


def to_json(suite: SuiteResult) -> dict:
    tasks = {}
    for r in suite.results:
        t = r.task
        tasks[t.name] = {
            "title": t.title,
            "domain": t.domain,
            "metric": t.metric,
            "protocol": t.protocol,
            "multilabel": t.multilabel,
            "n_clips": r.n_clips,
            "n_classes": len(r.class_names),
            "chance": r.chance,
            "paper_zeroshot": t.paper_zeroshot,
            "prompt": t.prompt,
            "label_texts": dict(
                zip(r.class_names, (t.label_text(c) for c in r.class_names), strict=True)
            ),
            "zeroshot": _score(r.zeroshot),
            "probe": _score(r.probe),
            "f1_rule": {"zeroshot": t.f1_rule, "probe": "threshold"} if t.metric == "F1" else None,
            "missing": len(r.missing),
            "missing_reasons": dict(Counter(m.reason for m in r.missing)),
            "notes": list(r.notes),
            "trained_on": r.trained_on,
            "excluded_trained": r.excluded,
            "cached": r.cached,
            "seconds": round(r.seconds, 3),
        }
    return {
        "model": suite.model,
        "precision": suite.precision,
        "probe": suite.probe_name,
        "training_record": suite.training_record,
        "tasks": tasks,
        "skipped": dict(suite.skipped),
        "warnings": warnings(suite),
    }
