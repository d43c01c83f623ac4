"""Prompt templates: front matter, strict rendering, hashes."""

from __future__ import annotations

import hashlib

import pytest

from synthloop.prompts import PromptError, load_examples, load_prompt, parse_prompt


def test_plan_spec_template_declares_its_variables() -> None:
    prompt = load_prompt("plan_spec")
    assert prompt.variables == ("request",)
    text = prompt.render(request="cats")
    assert text == "Request: cats\n" and "{{" not in text


def test_sha256_is_the_hash_of_the_file_text() -> None:
    text = "---\nvariables: [a]\n---\nhello {{a}}\n"
    assert parse_prompt("t", text).sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert parse_prompt("t", text + " ").sha256 != parse_prompt("t", text).sha256


def test_rendering_is_strict() -> None:
    prompt = parse_prompt("t", "---\nvariables: [a, b]\n---\n{{a}} and {{ b }}")
    assert prompt.render(a="1", b="2") == "1 and 2"
    with pytest.raises(PromptError, match=r"missing variables \['b'\]"):
        prompt.render(a="1")
    with pytest.raises(PromptError, match=r"unexpected \['c'\]"):
        prompt.render(a="1", b="2", c="3")


def test_values_are_not_expanded_again() -> None:
    prompt = parse_prompt("t", "---\nvariables: [a, b]\n---\n{{a}}|{{b}}")
    assert prompt.render(a="{{b}}", b="x") == "{{b}}|x"


@pytest.mark.parametrize(
    "text",
    [
        "no front matter {{a}}",
        "---\nvariables: [a]\n---\nuses {{b}}",  # undeclared placeholder
        "---\nvariables: [a, b]\n---\nonly {{a}}",  # declared but unused
        "---\nvariables: a\n---\n{{a}}",  # not a list
        "---\nvariables: [a\n---\n{{a}}",  # bad YAML
    ],
)
def test_malformed_templates_are_rejected(text: str) -> None:
    with pytest.raises(PromptError):
        parse_prompt("t", text)


def test_missing_and_invalid_names() -> None:
    with pytest.raises(PromptError, match="no prompt file"):
        load_prompt("does_not_exist")
    with pytest.raises(PromptError, match="invalid prompt name"):
        load_prompt("../etc/passwd")


def test_examples_file() -> None:
    rows = load_examples("plan_spec_examples")
    assert rows and all({"request", "output"} <= set(row) for row in rows)
    rows[0]["output"]["classes"].append("mutated")
    assert "mutated" not in load_examples("plan_spec_examples")[0]["output"]["classes"]
