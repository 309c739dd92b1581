"""Language: everything that knows about Chinese and English text, in one place.

- ``scripts``: the one CJK range, Traditional → Simplified (OpenCC), language detection, the one normaliser.
- ``tokens``: the one tokenizer (jieba for Chinese, words for Latin), stopwords, sentences, a question's terms.
- ``stem``: English word folding: Snowball's stemmer (PyStemmer), and plural folding for the glossary.
- ``wordlists/``: the word lists (stopwords, irregular plurals) as plain files.
"""

from kb_assistant.language.scripts import CJK, CJK_RANGE, detect_language, is_cjk, normalise, to_simplified
from kb_assistant.language.stem import fold_plural, stem
from kb_assistant.language.tokens import (
    EN_STOPWORDS,
    QUESTION_HINTS,
    TOKENIZER_VERSION,
    ZH_STOPWORDS,
    query_terms,
    split_sentences,
    tokenize,
)

__all__ = [
    "CJK", "CJK_RANGE", "EN_STOPWORDS", "QUESTION_HINTS", "TOKENIZER_VERSION", "ZH_STOPWORDS", "detect_language",
    "fold_plural", "is_cjk", "normalise", "query_terms", "split_sentences", "stem", "to_simplified", "tokenize",
]  # fmt: skip
