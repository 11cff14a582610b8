from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from annotate import schemas, studio
from annotate.labels import LABEL_HINTS, LABELS

from .conftest import FIXTURES, ROOT

# The guide the annotators work from lives beside the checkout, not in it.
SHARED_GUIDE = ROOT.parent / "shared" / "LABEL_GUIDE.md"
PINNED_DEFINITIONS = FIXTURES / "label_definitions.md"


@pytest.mark.parametrize("name", sorted(schemas.json_schemas()))
def test_json_schemas_are_up_to_date(name: str) -> None:
    """Regenerate with: python -m annotate.schemas"""
    assert (ROOT / "schemas" / name).read_text(encoding="utf-8") == schemas.json_schemas()[name]


def test_label_config_is_up_to_date() -> None:
    """Regenerate with: python -m annotate.studio"""
    assert studio.read_label_config() == studio.label_config()


def test_label_config_offers_the_four_labels_with_hotkeys_and_context() -> None:
    root = ET.fromstring(studio.read_label_config())
    choices = root.find(".//Choices")
    assert choices is not None and choices.get("choice") == "multiple"
    assert [(c.get("value"), c.get("hotkey")) for c in choices.findall("Choice")] == [(label, str(n)) for n, label in enumerate(LABELS, 1)]
    assert {t.get("value") for t in root.iter("Text")} == {"$prev", "$text", "$next"}
    assert root.find(".//Header").get("value") == "$title"  # type: ignore[union-attr]
    assert root.find(".//TextArea") is not None
    assert set(LABEL_HINTS) == set(LABELS)


def _definitions(markdown: str) -> dict[str, str]:
    found = re.findall(r"^- (\w+): (.+?)(?=^- |^\S|\Z)", markdown, flags=re.MULTILINE | re.DOTALL)
    return {name: " ".join(text.split()) for name, text in found if name in LABELS}


def _clarifications(markdown: str) -> list[str]:
    """The bullets of the guide's "Clarifications" paragraph, whitespace normalised."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Clarifications"))
    bullets: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("- "):
            bullets.append(line[2:])
        elif line.startswith("  ") and bullets:
            bullets[-1] += " " + line
        elif bullets or line.startswith("#"):
            break
    return [" ".join(bullet.split()) for bullet in bullets]


def test_project_label_guide_has_the_shared_clarifications() -> None:
    """The clarifications bind annotators and the instructions Label Studio shows them (the README's guide section)."""
    pinned = _clarifications(PINNED_DEFINITIONS.read_text(encoding="utf-8"))
    assert len(pinned) >= 7
    assert _clarifications((ROOT / "labels" / "README.md").read_text(encoding="utf-8")) == pinned
    assert " ".join(pinned[0].split()[:4]) in " ".join(studio.visible_text(studio.instructions_html()).split())
    if SHARED_GUIDE.exists():
        assert _clarifications(SHARED_GUIDE.read_text(encoding="utf-8")) == pinned, f"{SHARED_GUIDE} has other clarifications: update {PINNED_DEFINITIONS} and labels/README.md"


def test_project_label_guide_matches_the_shared_guide() -> None:
    """labels/README.md against the pinned copy always, and the pinned copy against the shared guide where it is present."""
    pinned = _definitions(PINNED_DEFINITIONS.read_text(encoding="utf-8"))
    assert list(pinned) == list(LABELS)
    assert _definitions((ROOT / "labels" / "README.md").read_text(encoding="utf-8")) == pinned
    if SHARED_GUIDE.exists():
        shared = _definitions(SHARED_GUIDE.read_text(encoding="utf-8"))
        changed = sorted(label for label in LABELS if shared.get(label) != pinned[label])
        assert not changed, f"{SHARED_GUIDE} defines {', '.join(changed)} differently: update {PINNED_DEFINITIONS} and labels/README.md"
    else:
        print(f"{SHARED_GUIDE} is not beside the checkout: checked against the pinned copy {PINNED_DEFINITIONS} only")
