"""From `router.classifier` in the config to a ready classifier, wrapped in the prompt cache.

A plain dict maps each name to its builder. The learned classifier falls back to the rules, with
a warning, when its files are missing, so a broken install still routes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from proxy.classify import Classifier, Prompt
from proxy.classify.cache import CachedClassifier
from proxy.classify.rules import RuleClassifier
from proxy.config import Router
from proxy.errors import ConfigError

log = logging.getLogger("smr")


def _rules(_: Router, __: Path | None) -> Classifier:
    return RuleClassifier()


def _embedding(settings: Router, model_dir: Path | None) -> Classifier:
    from proxy.classify.embedding import MODEL_DIR, ClassifierUnavailable, EmbeddingClassifier

    try:
        return EmbeddingClassifier(model_dir or MODEL_DIR, spin=settings.spin)
    except ClassifierUnavailable as exc:
        log.warning("%s; routing with the rule-based classifier instead", exc.message)
        return RuleClassifier()


def _ollama(settings: Router, model_dir: Path | None) -> Classifier:
    from proxy.classify.ollama_llm import OllamaClassifier

    return OllamaClassifier(
        settings.ollama.base_url,
        settings.ollama.model,
        timeout_s=settings.ollama.timeout_s,
        thresholds=settings.thresholds,
        fallback=_embedding(settings, model_dir),
    )


BUILDERS: dict[str, Callable[[Router, Path | None], Classifier]] = {
    "rules": _rules,
    "embedding": _embedding,
    "ollama": _ollama,
}


def make(settings: Router, *, model_dir: Path | None = None) -> Classifier:
    """The configured classifier, uncached (what `smr eval` times); `model_dir` overrides the shipped files."""
    return BUILDERS[settings.classifier](settings, model_dir)


def build(settings: Router, *, model_dir: Path | None = None) -> Classifier:
    """The configured classifier behind an LRU cache of `settings.cache_size` prompts."""
    return CachedClassifier(make(settings, model_dir=model_dir), settings.cache_size)


def warmed(classifier: Classifier) -> Classifier:
    """Load the model behind `classifier` and score once, so the first request pays nothing.

    Runs at start-up (in a worker thread). Files that exist but do not load are the same as
    missing files: a warning, and the rules take over.
    """
    inner = getattr(classifier, "inner", classifier)
    if not hasattr(inner, "load"):
        return classifier  # nothing to load (rules), or a remote model (ollama) not to call at start-up
    try:
        inner.load()
        inner.score(Prompt(text="warm-up"))
    except Exception as exc:  # onnxruntime raises its own types for corrupt files; any of them means "unusable"
        message = exc.message if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
        log.warning(
            "cannot load the %s classifier (%s); routing with the rule-based classifier instead",
            classifier.name,
            message,
        )
        return RuleClassifier()
    return classifier
