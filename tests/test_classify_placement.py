"""Where the server scores a prompt: on the event loop only when it is cheap or the loop is idle."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import openai
import pytest

from proxy import config as configuration
from proxy.app import create_app
from proxy.classify import Prompt, Scored
from tests.conftest import MemoryLedger, ProxyServer, fake_config
from tests.fakes.openai_provider import FakeOpenAI


class Where:
    """A heavy classifier (not inline) that notes the thread each prompt was scored on."""

    name = "where"
    inline = False
    loop_chars = 40

    def __init__(self) -> None:
        self.threads: dict[str, str] = {}

    def score(self, prompt: Prompt) -> Scored:
        self.threads[prompt.text] = threading.current_thread().name
        return Scored(score=0.1, reason="where")


@pytest.fixture()
def served(fake: FakeOpenAI) -> Iterator[tuple[Where, openai.OpenAI]]:
    where = Where()
    config = configuration.parse(fake_config(fake.url, timeout="1"))
    app = create_app(config, env={"FAKE_KEY": "sk-fake"}, classifier=where, ledger=MemoryLedger())
    with ProxyServer(app) as server:  # its event loop runs in the thread named "proxy"
        yield where, openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0)


def ask(client: openai.OpenAI, text: str, model: str = "auto") -> None:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])


def test_a_short_ascii_prompt_alone_is_scored_on_the_loop(served: tuple[Where, openai.OpenAI]) -> None:
    where, client = served
    ask(client, "hi there")
    ask(client, "x" * 41)  # longer than loop_chars
    ask(client, "¿qué hora es?")  # not ASCII: word pieces per character are not bounded as well
    assert where.threads["hi there"] == "proxy"
    assert where.threads["x" * 41] != "proxy"
    assert where.threads["¿qué hora es?"] != "proxy"


def test_with_another_request_in_flight_it_goes_to_a_worker(served: tuple[Where, openai.OpenAI]) -> None:
    where, client = served
    failed: list[BaseException] = []

    def hang() -> None:
        try:
            ask(client, "wait", model="hang")  # the fake never answers; the proxy gives up after 1 s
        except openai.APIStatusError as exc:
            failed.append(exc)

    waiting = threading.Thread(target=hang)
    waiting.start()
    time.sleep(0.3)  # the hanging request is now waiting for its provider
    ask(client, "hi again")
    waiting.join(5)
    assert where.threads["hi again"] != "proxy"
    assert len(failed) == 1 and failed[0].status_code == 504
    ask(client, "hi once more")  # nothing in flight any more
    assert where.threads["hi once more"] == "proxy"
