"""Evaluation datasets: one ``EvalSet`` shape, three input formats (see eval/README.md).

- **golden** JSONL (ours): ``{question, answerable, expected_sources, expected_answer, lang, history?}`` per line,
  asked against an existing knowledge base (the bundled sample KB for eval/datasets/golden.jsonl).
- **faq**: an FAQ table (csv/xlsx with ``question``,``answer`` columns, any others ignored) plus a paraphrase file
  (csv ``question_1,question_2,similar``; question_1 is an FAQ question). The FAQ table becomes the knowledge base,
  each ``similar=1`` paraphrase is asked, and the right passage is the FAQ entry whose question is question_1.
  The shape of ../shared/datasets/covid_faq; any FAQ works.
- **squad**: SQuAD-format JSON (e.g. CMRC2018, Chinese): each paragraph becomes one chunk, each question is asked,
  and the right passage is the paragraph the question belongs to; answers give the expected answer text.
- **token_presence**: a folder of PDFs with ``token_presence_*.csv`` files (``question,answer,tokens_present,
  document``; ``tokens_present`` a Python list literal of words a right answer must hold), or one such csv (its
  folder's PDFs are the corpus). All the folder's PDFs become one knowledge base; bare Yes/No tokens say nothing
  about an extractive answer and are left out, and a question left without tokens is not asked.
  The shape of ../shared/datasets/policy_pdfs.

Nothing here needs ../shared: paths are arguments.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kb_assistant.errors import KBError
from kb_assistant.language import normalise
from kb_assistant.schema import Chunk, Citation

DATASETS = Path(__file__).resolve().parent / "datasets"
GOLDEN = DATASETS / "golden.jsonl"


class DatasetError(KBError):
    """A dataset file we cannot read; the message names the file (and line) and the expected format."""


@dataclass
class EvalItem:
    question: str
    answerable: bool = True
    expected_sources: list[str] = field(default_factory=list)  # file names / source ids of right passages
    expected_questions: list[str] = field(default_factory=list)  # FAQ questions of right passages
    expected_answer: str = ""  # text the answer should contain (also found in the passages)
    history: list[dict] = field(default_factory=list)
    lang: str = ""
    id: str = ""
    tokens: list[str] = field(default_factory=list)  # token_presence: words a right answer must hold
    document: str = ""  # token_presence: the file the question is about

    def is_right(self, passage: Citation) -> bool:
        """Whether a retrieved passage is one this question expects."""
        if self.expected_sources:
            name = Path(passage.source).name
            return any(passage.source == e or name == Path(e).name for e in self.expected_sources)
        if self.expected_questions:
            return normalise(passage.section) in {normalise(q) for q in self.expected_questions}
        return bool(self.expected_answer) and normalise(self.expected_answer) in normalise(passage.snippet)


@dataclass
class EvalSet:
    name: str
    kind: str  # golden | faq | squad | token_presence
    items: list[EvalItem]
    # How to build the KB this set is asked against: None = ask an existing KB (golden).
    build: Callable[[object], None] | None = None  # build(index) fills a fresh KnowledgeBase
    fingerprint: str = ""  # identifies the corpus, to reuse a built KB between runs
    documents: list[Path] = field(default_factory=list)  # token_presence: the corpus files (ceiling, baseline)
    skipped: int = 0  # token_presence: questions left without tokens once Yes/No are dropped


def load(path: Path, *, kind: str | None = None, paraphrases: Path | None = None, limit: int | None = None) -> EvalSet:
    """Read a dataset; ``kind`` defaults from the file (``.jsonl`` golden, ``.json`` squad, table + paraphrases faq)."""
    path = Path(path)
    if path.is_dir() or (path.is_file() and path.name.startswith("token_presence") and kind is None):
        kind = kind or "token_presence"
    elif not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    if kind is None:
        kind = {".jsonl": "golden", ".json": "squad"}.get(path.suffix.lower(), "faq")
    if kind == "token_presence":
        ds = load_token_presence(path)
    elif kind == "golden":
        ds = load_golden(path)
    elif kind == "squad":
        ds = load_squad(path)
    elif kind == "faq":
        if paraphrases is None:
            raise DatasetError(f"{path}: an FAQ table needs --paraphrases FILE (csv question_1,question_2,similar)")
        ds = load_faq_pairs(path, Path(paraphrases))
    else:
        raise DatasetError(f"unknown dataset kind {kind!r}: use golden, faq, squad or token_presence")
    if limit:
        ds.items = ds.items[:limit]
    return ds


def load_golden(path: Path = GOLDEN) -> EvalSet:
    items = []
    for no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                EvalItem(
                    question=str(raw["question"]),
                    answerable=bool(raw["answerable"]),
                    expected_sources=[str(s) for s in raw.get("expected_sources", [])],
                    expected_answer=str(raw.get("expected_answer", "")),
                    history=list(raw.get("history", [])),
                    lang=str(raw.get("lang", "")),
                    id=str(raw.get("id", no)),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(
                f"{path}:{no}: not a golden-set line ({exc}); expected JSON with question, answerable, "
                "expected_sources, expected_answer (see eval/README.md)"
            ) from None
    if not items:
        raise DatasetError(f"{path}: no questions in the file")
    return EvalSet(name=Path(path).stem, kind="golden", items=items)


def load_faq_pairs(faq_table: Path, paraphrases: Path) -> EvalSet:
    from ingest.chunking import chunk_document
    from ingest.loaders import DocumentError, load_document

    try:
        doc = load_document(faq_table, max_bytes=10**9)
    except DocumentError as exc:
        raise DatasetError(f"{faq_table}: {exc}") from None
    if not doc.faq:
        raise DatasetError(f"{faq_table}: no question/answer columns found (need columns named question and answer)")
    known = {normalise(q) for q, _ in doc.faq}
    items = []
    rows = _read_csv(paraphrases, ("question_1", "question_2", "similar"))
    for no, row in rows:
        if str(row["similar"]).strip() not in ("1", "1.0", "true", "True"):
            continue
        if normalise(row["question_1"]) not in known:
            continue  # the paraphrase of a question the FAQ table does not hold: nothing to retrieve
        items.append(EvalItem(question=row["question_2"].strip(), expected_questions=[row["question_1"]], id=f"{no}"))
    if not items:
        raise DatasetError(f"{paraphrases}: no similar=1 row whose question_1 is a question of {faq_table}")
    chunks = chunk_document(doc, faq_table.name, chunk_size=10**6)
    return EvalSet(
        name=faq_table.stem,
        kind="faq",
        items=items,
        build=lambda index: index.add(chunks),
        fingerprint=_fingerprint(faq_table),
    )


def load_squad(path: Path) -> EvalSet:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"{path}: not SQuAD-format JSON ({exc}); expected {{'data': [{{'paragraphs': …}}]}}"
        ) from None
    from ingest.chunking import chunk_id

    chunks, items = [], []
    for a_no, article in enumerate(data):
        title = str(article.get("title", "")) or f"article {a_no}"
        for p_no, para in enumerate(article.get("paragraphs", [])):
            source = f"{title} #{a_no}.{p_no}"
            text = str(para.get("context", "")).strip()
            if not text:
                continue
            chunks.append(Chunk(id=chunk_id(source, "", text), text=text, source=source, title=title))
            for qa in para.get("qas", []):
                answers = [a.get("text", "") for a in qa.get("answers", []) if a.get("text")]
                items.append(
                    EvalItem(
                        question=str(qa["question"]),
                        expected_sources=[source],
                        expected_answer=answers[0] if answers else "",
                        id=str(qa.get("id", len(items))),
                    )
                )
    if not items:
        raise DatasetError(f"{path}: no questions found")
    return EvalSet(
        name=Path(path).stem,
        kind="squad",
        items=items,
        build=lambda index: index.add(chunks),
        fingerprint=_fingerprint(path),
    )


YES_NO = frozenset({"yes", "no"})
# The files whose code shapes the chunks: a loader change must rebuild a cached eval KB, not reuse the old one.
_INGEST_CODE = ("loaders.py", "pdf.py", "pdf_text.py", "document.py", "chunking.py")


def load_token_presence(path: Path) -> EvalSet:
    """A folder with PDFs and token_presence_*.csv, or one token_presence csv asked of its folder's PDFs."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    files = sorted(folder.glob("token_presence_*.csv")) if path.is_dir() else [path]
    if not files:
        raise DatasetError(f"{folder}: no token_presence_*.csv files (csv question,answer,tokens_present,document)")
    documents = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".pdf")
    if not documents:
        raise DatasetError(f"{folder}: no PDF files to build the knowledge base from")
    names = {p.name for p in documents}
    items, skipped = [], 0
    for file in files:
        for no, row in _read_csv(file, ("question", "answer", "tokens_present", "document")):
            try:
                tokens = ast.literal_eval(row["tokens_present"] or "[]")
                if not isinstance(tokens, list | tuple):
                    raise ValueError("not a list")
            except (ValueError, SyntaxError) as exc:
                raise DatasetError(
                    f"{file}:{no}: tokens_present {row['tokens_present']!r} is not a Python list literal ({exc}); "
                    "write it like ['2 years', 'notice']"
                ) from None
            tokens = [str(t).strip() for t in tokens if str(t).strip() and str(t).strip(" .!").lower() not in YES_NO]
            if not tokens:
                skipped += 1
                continue
            document = row["document"].strip()
            if document not in names:
                raise DatasetError(f"{file}:{no}: document {document!r} is not a PDF in {folder}")
            items.append(
                EvalItem(
                    question=row["question"].strip(),
                    expected_sources=[document],
                    expected_answer=row["answer"].strip(),
                    tokens=tokens,
                    document=document,
                    id=f"{file.stem.removeprefix('token_presence_')}:{no}",
                )
            )
    if not items:
        raise DatasetError(f"{path}: no question with tokens to score")

    def build(index):
        from ingest.pipeline import ingest_paths

        report = ingest_paths(index.settings, documents, index.name)
        if not report.ok:
            raise DatasetError(f"{folder}: {len(report.failed)} PDF(s) failed to ingest: {report.failed}")

    code = [Path(__file__).resolve().parents[1] / "ingest" / name for name in _INGEST_CODE]
    return EvalSet(
        name=folder.name,
        kind="token_presence",
        items=items,
        build=build,
        fingerprint=_fingerprint(*documents, *(p for p in code if p.exists())),
        documents=documents,
        skipped=skipped,
    )


def _read_csv(path: Path, columns: tuple[str, ...]):
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(columns)}")
            return list(enumerate(reader, start=2))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read as UTF-8 csv ({exc})") from None


def _fingerprint(*paths: Path) -> str:
    import hashlib

    h = hashlib.sha1()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]
