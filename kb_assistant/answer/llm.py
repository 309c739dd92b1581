"""LLM answers through any OpenAI-compatible endpoint (langchain-openai), streamed, with token usage kept.

The prompt numbers the passages and asks for [n] citations; the reply ``NOT_IN_CONTEXT`` is the structured
signal that the passages do not hold the answer. The first characters are held back until it is clear the
reply is not that signal, so a user never sees it.
"""

from __future__ import annotations

from collections.abc import Iterator

from kb_assistant.answer import Draft, load_prompt
from kb_assistant.retrieval import Candidate
from kb_assistant.schema import Usage
from kb_assistant.settings import Settings

NOT_FOUND = "NOT_IN_CONTEXT"


class LLMError(RuntimeError):
    pass


def make_chat_model(settings: Settings):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or "not-needed",
        model=settings.llm_model,
        temperature=settings.llm_temperature,
        timeout=settings.llm_timeout_s,
        max_retries=1,
        stream_usage=True,
    )


def format_passages(passages: list[Candidate]) -> str:
    blocks = []
    for n, cand in enumerate(passages, start=1):
        c = cand.chunk
        where = " / ".join(x for x in (c.source, c.section, f"p. {c.page}" if c.page else "") if x)
        body = f"Q: {c.question}\nA: {c.text}" if c.kind == "faq" else c.text
        blocks.append(f"[{n}] ({where})\n{body}")
    return "\n\n".join(blocks)


class LLMAnswerer:
    def __init__(self, chat_model):
        self.chat_model = chat_model

    def messages(self, question: str, passages: list[Candidate], lang: str) -> list[tuple[str, str]]:
        system = load_prompt("answer", lang).replace("{passages}", format_passages(passages))
        return [("system", system), ("human", question)]

    def generate(self, question: str, passages: list[Candidate], lang: str) -> Iterator[str | Draft]:
        text, held, usage = "", "", Usage()
        released = False
        try:
            for chunk in self.chat_model.stream(self.messages(question, passages, lang)):
                if chunk.usage_metadata:
                    usage.prompt_tokens += chunk.usage_metadata.get("input_tokens", 0)
                    usage.completion_tokens += chunk.usage_metadata.get("output_tokens", 0)
                delta = chunk.content if isinstance(chunk.content, str) else ""
                if not delta:
                    continue
                text += delta
                if released:
                    yield delta
                    continue
                held += delta
                stripped = held.lstrip()
                if len(stripped) >= len(NOT_FOUND) or not NOT_FOUND.startswith(stripped):
                    if stripped.startswith(NOT_FOUND):
                        continue  # keep reading for usage, never show the signal
                    released = True
                    yield held
        except Exception as exc:  # openai raises many kinds; the user needs one clear message
            raise LLMError(f"the LLM endpoint {getattr(self.chat_model, 'openai_api_base', '')} failed: {exc}") from exc
        found = bool(text.strip()) and NOT_FOUND not in text
        yield Draft(text=text.strip(), found=found, usage=usage)
