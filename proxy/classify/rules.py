"""A keyword-and-shape classifier: no model files, microseconds a prompt.

It is the fallback when the learned classifier's files are missing. It reads signals that rarely
lie (a request to design for scale, a proof, concurrency; a greeting, a translation, a question
about pasted text) and leans on length only weakly, since long is not hard.
"""

from __future__ import annotations

import re

from proxy.classify import Prompt, Scored

_HARD = re.compile(
    r"\b(design|architect\w*|scal(e|able|ability|ing)|distributed|prove|proof|theorem|optimi[sz]\w*|"
    r"concurren\w*|lock[- ]free|race condition|deadlock|trade-?offs?|consensus|shard\w*|replicat\w*|"
    r"fault[- ]toleran\w*|latency budget|throughput|threat model|cryptograph\w*|compiler|kernel|"
    r"formal(ly)?|rigorous\w*|derive|asymptotic|np-hard|dynamic programming|multi-region|regions)\b",
    re.IGNORECASE,
)
_SCALE = re.compile(r"\b\d+(\.\d+)?\s*(k|m|b|million|billion|[mgtp]b|rps|qps|tps)\b", re.IGNORECASE)
_WORK = re.compile(
    r"\b(implement|write (a|an|me)|refactor|debug|fix (this|my|the) (code|bug|error)|traceback|exception|"
    r"function|class|sql|query|regex|script|explain|summari[sz]e|compare|analy[sz]e|essay|report|"
    r"unit tests?|algorithm|step by step)\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"```|\bdef \w+\(|\bfunction\b|=>|#include|\bpublic static\b|\bSELECT\b.+\bFROM\b", re.DOTALL)
_EASY = re.compile(
    r"^\s*(hi|hello|hey|thanks|thank you|ok|okay|good (morning|night)|how are you)\b|"
    r"\b(translate|fix (the )?(grammar|spelling|typos?)|what is the (capital|phone|email|date|name)|"
    r"who (is|was)|when (is|was|did)|define|convert|spell|synonym|what time)\b",
    re.IGNORECASE,
)


class RuleClassifier:
    name = "rules"
    inline = True
    loop_chars = 0

    def score(self, prompt: Prompt) -> Scored:
        text = prompt.text
        # Judge the request, not a pasted document: a long paste ending in a short question is a lookup.
        tail = text[-600:] if len(text) > 1500 else text
        hard = {m.group(0).lower() for m in _HARD.finditer(tail)}
        work = {m.group(0).lower() for m in _WORK.finditer(tail)}
        score = 0.3 + 0.2 * min(len(hard), 3) + 0.1 * min(len(work), 2)
        reasons = sorted(hard)[:2] + sorted(work)[:1]
        if _SCALE.search(tail) and hard:
            score += 0.15
            reasons.append("scale")
        if _CODE.search(text):
            score += 0.1
            reasons.append("code")
        if _EASY.search(tail) and not hard:
            score -= 0.2
            reasons.append("easy")
        if len(tail) < 40 and not hard:
            score -= 0.1
            reasons.append("short")
        score = min(max(score, 0.0), 1.0)
        return Scored(score=round(score, 3), reason="rules: " + (", ".join(reasons[:3]) or "plain"))
