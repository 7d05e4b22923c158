"""One prompt-template syntax ({label}) for classify, eval, the trainer and the CLI."""

from __future__ import annotations

import pytest

from clapsearch.errors import UsageError
from clapsearch.prompts import DEFAULT_TEMPLATE, fill, normalize_template, render


def test_prompts_replace_underscored_names_and_check_template():
    assert render(("crying baby", "dog")) == [
        "This is a sound of crying baby.",
        "This is a sound of dog.",
    ]
    assert DEFAULT_TEMPLATE == "This is a sound of {label}."
    with pytest.raises(UsageError):
        render(("dog",), "a {kind} of {label}")


def test_legacy_bare_braces_read_as_label():
    assert normalize_template("the sound of {}") == "the sound of {label}"
    assert fill("the sound of {}", "rain") == fill("the sound of {label}", "rain")
    assert fill("{label}, a {label}", "dog") == "dog, a dog"
    assert fill("{{sic}} {label}", "dog") == "{sic} dog"


@pytest.mark.parametrize("bad", ["no slot", "{} and {}", "{} and {label}", "{label", "a {0}"])
def test_invalid_templates_are_one_sentence(bad):
    with pytest.raises(UsageError, match="template") as err:
        normalize_template(bad)
    assert "\n" not in str(err.value)


def test_every_caller_uses_the_one_syntax():
    """classify, the eval CLI default and the trainer's label captions agree on a label."""
    from clapsearch.classify import DEFAULT_TEMPLATE as classify_default
    from trainer.config import DEFAULT_TEMPLATES
    from trainer.data_prep.real import LABEL_TEMPLATES

    assert classify_default == DEFAULT_TEMPLATE
    for template in (*DEFAULT_TEMPLATES, *LABEL_TEMPLATES):
        assert normalize_template(template) == template and "{label}" in template
