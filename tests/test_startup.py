"""Start-up loads the classifier before the first request, and survives broken model files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from proxy.classify import Prompt, registry
from proxy.classify.embedding import MODEL_DIR
from proxy.classify.rules import RuleClassifier
from proxy.config import Router


def test_warm_up_loads_the_shipped_model() -> None:
    classifier = registry.build(Router(classifier="embedding"))
    warmed = registry.warmed(classifier)
    assert warmed is classifier
    assert warmed.score(Prompt("hello")).reason.startswith("embedding")


def test_unreadable_model_files_fall_back_to_rules(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "model"
    shutil.copytree(MODEL_DIR, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    classifier = registry.build(Router(classifier="embedding"), model_dir=broken)
    warmed = registry.warmed(classifier)
    assert isinstance(warmed, RuleClassifier)
    assert "rule-based classifier instead" in caplog.text


def test_rules_need_no_warm_up() -> None:
    rules = registry.build(Router(classifier="rules"))
    assert registry.warmed(rules) is rules
