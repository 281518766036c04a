"""What the summariser calls, and how it cuts a text into documents."""

from __future__ import annotations

import re

from flows.llm import call_llm

__all__ = ["MAX_WORDS", "call_llm", "split_into_documents"]

MAX_WORDS = 150
"""The longest chunk ``split_into_documents`` makes of one paragraph, in words."""

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_into_documents(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """``text`` as documents: one per paragraph, long paragraphs cut between sentences."""
    documents: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        chunk: list[str] = []
        for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
            if chunk and len(" ".join([*chunk, sentence]).split()) > max_words:
                documents.append(" ".join(chunk))
                chunk = []
            if sentence:
                chunk.append(sentence)
        if chunk:
            documents.append(" ".join(chunk))
    return documents
