"""Prompt templates: how a class label becomes the text a CLAP text tower embeds.

One syntax everywhere (zero-shot classification, the eval benchmarks, the trainer's label
captions and zero-shot validation, the CLI's `--template`):

- `{label}` marks where the label goes ("This is a sound of {label}."); it may appear more
  than once, and must appear at least once.
- Literal braces are doubled, as in `str.format`: "{{sic}} {label}" gives "{sic} dog".
- Any other `{field}` is an error (one sentence, a `UsageError`), found before a model loads.
- A legacy template with one bare `{}` and no `{label}` ("the sound of {}", the syntax of
  clapsearch's first release) is read as if it said `{label}`.

Labels are put in as given; datasets turn their class ids into words ("crying_baby" ->
"crying baby") before they get here.
"""

from __future__ import annotations

from collections.abc import Iterable
from string import Formatter

from clapsearch.errors import UsageError

DEFAULT_TEMPLATE = "This is a sound of {label}."  # the wording LAION-CLAP was evaluated with
PLACEHOLDER = "{label}"


def _fields(template: str) -> list[str | None]:
    """The replacement fields of `template` in order (None for none); raises ValueError for
    an unbalanced brace."""
    return [name for _, name, _, _ in Formatter().parse(template) if name is not None]


def normalize_template(template: str) -> str:
    """Check `template` and return it in the one syntax (module doc); UsageError if invalid."""
    try:
        fields = _fields(template)
    except ValueError as err:
        raise UsageError(f"the prompt template {template!r} is not valid ({err}).") from None
    if fields == [""] and PLACEHOLDER not in template:
        template = template.replace("{}", PLACEHOLDER)  # legacy syntax, see module doc
        fields = ["label"]
    other = sorted({f for f in fields if f != "label"})
    if "label" not in fields or other:
        extra = f"; it also has {{{other[0]}}}" if other else ""
        raise UsageError(
            f"the prompt template {template!r} must contain {PLACEHOLDER} where the label "
            f"goes, and no other {{field}}{extra}."
        )
    return template


def fill(template: str, label: str) -> str:
    """One prompt: `template` (any accepted syntax) with `label` put in."""
    return normalize_template(template).format(label=label)


def parse_labels(text: str) -> list[str]:
    """ "dog, rain,,siren" or one label per line -> ["dog", "rain", "siren"] (order kept,
    blanks and repeats dropped)."""
    parts = [p.strip() for line in text.splitlines() for p in line.split(",")]
    return list(dict.fromkeys(p for p in parts if p))


def render(labels: Iterable[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One prompt per label, in order; the template is checked once, before any label."""
    template = normalize_template(template)
    return [template.format(label=label) for label in labels]
