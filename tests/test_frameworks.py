"""Framework clients pointed at the proxy: LangChain's ChatOpenAI and LlamaIndex's OpenAILike, plain and streamed."""

from __future__ import annotations

from langchain_openai import ChatOpenAI

from tests.conftest import ProxyServer


def test_langchain_invoke_and_stream(proxy: ProxyServer) -> None:
    llm = ChatOpenAI(base_url=proxy.url, api_key="unused", model="auto", max_retries=0)  # type: ignore[arg-type]
    answer = llm.invoke("hello from langchain")
    assert answer.content == "You said: hello from langchain"
    assert answer.response_metadata["model_name"] == "fake-cheap"
    pieces = [chunk.content for chunk in llm.stream("stream from langchain")]
    assert "".join(str(p) for p in pieces) == "You said: stream from langchain"


def test_langchain_with_usage_streaming(proxy: ProxyServer) -> None:
    llm = ChatOpenAI(base_url=proxy.url, api_key="unused", model="complex", stream_usage=True, max_retries=0)  # type: ignore[arg-type]
    total = None
    for chunk in llm.stream("count tokens"):
        total = chunk if total is None else total + chunk
    assert total is not None and total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] > 0


def test_llama_index_openai_like_chat_complete_and_stream(proxy: ProxyServer) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(model="auto", api_base=proxy.url, api_key="unused", is_chat_model=True, max_retries=0, timeout=10)
    reply = llm.chat([ChatMessage(role="user", content="hello from llama-index")])
    assert reply.message.content == "You said: hello from llama-index"
    streamed = "".join(r.delta or "" for r in llm.stream_chat([ChatMessage(role="user", content="stream it")]))
    assert streamed == "You said: stream it"
    assert llm.complete("complete me").text == "You said: complete me"
