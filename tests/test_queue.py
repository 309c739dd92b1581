"""The human queue: escalation into tickets, grouping, feedback, the agent's answer reaching the user, the spool."""

from __future__ import annotations

import sqlite3

import pytest

from kb_assistant.assistant import Assistant
from kb_assistant.errors import KBError, QuestionError, UnknownTicket
from kb_assistant.queue.models import parse_ticket_id
from kb_assistant.queue.spool import Spool
from kb_assistant.queue.store import AnswerRecord, TicketQueue
from kb_assistant.settings import Settings

DOG = "Can I bring my dog to the office?"
SKI = "Does the company sponsor an annual ski trip?"
SHUTTLE_ZH = "公司有没有从火车站出发的班车？"
HOLDING_ZH = "这个问题我们还在研究，请你等待我们的回复"


@pytest.fixture
def assistant(sample_data_dir, embeddings, tmp_path):
    """The sample KBs with a queue database of its own."""
    settings = Settings(data_dir=sample_data_dir, database_url=f"sqlite:///{tmp_path / 'queue.db'}")
    a = Assistant(settings, embeddings=embeddings)
    a.queue.spool = Spool(tmp_path / "spool.jsonl")  # the spool too: the sample data dir is shared
    return a


def test_unanswerable_question_opens_a_ticket_and_gets_the_holding_reply(assistant):
    history = [{"role": "user", "content": "How many days of sick leave do I get?"},
               {"role": "assistant", "content": "12 days [1]"}]  # fmt: skip
    answer = assistant.ask(DOG, history=history, session_id="s-alice", user="alice")
    assert not answer.answered and answer.ticket_id and answer.ticket_id.startswith("T-")
    assert answer.text.startswith("We're still looking into this question") and answer.ticket_id in answer.text
    ticket = assistant.queue.get(answer.ticket_id)
    assert (ticket.kb, ticket.question, ticket.reason, ticket.status) == ("default", DOG, "low_confidence", "open")
    assert ticket.conversation == history
    assert ticket.passages and {"source", "section", "text", "score", "dense", "keyword"} <= set(ticket.passages[0])
    assert 0.0 <= ticket.passages[0]["score"] <= 1.0
    assert [(r.session_id, r.user, r.answer_id) for r in ticket.requests] == [("s-alice", "alice", answer.id)]
    assert ticket.created_at is not None
    view = assistant.ticket(answer.ticket_id, answer.ticket_token)
    assert (view.status, view.answer, view.question) == ("open", None, DOG)


def test_chinese_holding_reply_keeps_the_users_sentence_first_then_the_ticket_number(assistant):
    answer = assistant.ask(SHUTTLE_ZH, session_id="s-zh")
    assert not answer.answered
    assert answer.text.startswith(HOLDING_ZH) and answer.text.endswith(f"（工单号 {answer.ticket_id}）")


def test_asking_for_a_person_escalates_at_once_with_the_question_before_it(assistant):
    history = [{"role": "user", "content": "How do I change my bank account for salary?"},
               {"role": "assistant", "content": "We're still looking into this question."}]  # fmt: skip
    answer = assistant.ask("转人工", history=history, session_id="s-h")
    assert not answer.answered and answer.escalation_reason == "handoff" and answer.text.startswith(HOLDING_ZH)
    ticket = assistant.queue.get(answer.ticket_id)
    assert ticket.reason == "handoff" and ticket.question == "How do I change my bank account for salary?"
    assert ticket.requests[0].question == "转人工" and ticket.conversation == history
    # a request for a person that says what it is about keeps its own words; English phrasing works too
    answer = assistant.ask("Talk to a human about my payslip please", session_id="s-h")
    assert answer.escalation_reason == "handoff"
    assert assistant.queue.get(answer.ticket_id).question == "Talk to a human about my payslip please"
    # an answerable question is still answered: only the phrases hand off
    assert assistant.ask("How many days of sick leave do I get?").answered


def test_near_identical_open_questions_share_a_ticket_and_one_answer_reaches_every_asker(assistant):
    first = assistant.ask(DOG, session_id="s1")
    same = assistant.ask("can i bring my DOG to the office", session_id="s2")  # case and punctuation
    close = assistant.ask("Can I bring my dog into the office?", session_id="s3")  # embedding 0.98, same words
    other = assistant.ask(SKI, session_id="s1")
    assert first.ticket_id == same.ticket_id == close.ticket_id != other.ticket_id
    assert len(assistant.queue.get(first.ticket_id).requests) == 3

    assistant.queue.answer(first.ticket_id, "Dogs are welcome on Fridays once registered at reception.", "anna")
    for session, asked in (("s1", DOG), ("s2", "can i bring my DOG to the office")):
        mine = {v.id: v for v in assistant.replies(session)}
        assert mine[first.ticket_id].status == "answered" and mine[first.ticket_id].question == asked
        assert mine[first.ticket_id].answer.startswith("Dogs are welcome")
    assert {v.id: v.status for v in assistant.replies("s1")}[other.ticket_id] == "open"
    assert assistant.replies("nobody") == []
    # an answered ticket is no longer open: the same question asked again opens a new one
    again = assistant.ask(DOG, session_id="s4")
    assert again.ticket_id != first.ticket_id


def test_questions_that_differ_in_a_number_are_not_grouped(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path / "d"))
    vec = [1.0, 0.0, 0.0]  # identical embeddings: only the numbers tell them apart
    ids = [queue.record(_record(f"a{n}", f"Where is form {n} for the visa?", embedding=vec)) for n in (17, 18, 17)]
    assert ids[0] == ids[2] != ids[1]


def test_feedback_records_votes_and_a_downvote_with_a_comment_opens_a_ticket(assistant):
    evicted = []
    assistant._on_downvote = evicted.append  # the cache hook is called for every 👎
    answer = assistant.ask("How many days of sick leave do I get?", session_id="s-fb")
    assert answer.answered and answer.ticket_id is None
    assert assistant.feedback(answer.id, "up").ticket_id is None
    assert assistant.queue.answer_log(answer.id).rating == "up"
    assert assistant.feedback(answer.id, "down").ticket_id is None  # no comment: recorded, no ticket
    fb = assistant.feedback(answer.id, "down", "That is last year's policy, it is 15 days now", session_id="s-fb")
    assert evicted == [answer.id, answer.id] and fb.ticket_id.startswith("T-")
    ticket = assistant.queue.get(fb.ticket_id)
    assert ticket.reason == "downvote" and ticket.bad_answer == answer.text and ticket.passages
    assert ticket.requests[0].comment == "That is last year's policy, it is 15 days now"
    assert [v.id for v in assistant.replies("s-fb")] == [fb.ticket_id]
    with pytest.raises(QuestionError, match="up, down"):
        assistant.feedback(answer.id, "meh")
    with pytest.raises(KBError, match="no answer with id"):
        assistant.feedback("0" * 32, "down", "x")


def test_unknown_ticket_ids_raise_unknown_ticket(assistant):
    with pytest.raises(UnknownTicket, match="T-000123"):
        assistant.ticket("banana", "token")
    with pytest.raises(UnknownTicket):
        assistant.ticket("T-999999", "token")
    assert parse_ticket_id("T-000042") == parse_ticket_id("#42") == parse_ticket_id("42") == 42


def test_over_long_agent_answers_are_refused_with_the_setting_named(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path / "d", max_answer_chars=50))
    tid = queue.record(_record("a1", "What is the meaning of life?"))
    with pytest.raises(QuestionError, match="KB_MAX_ANSWER_CHARS"):
        queue.answer(tid, "x" * 51, "anna")
    with pytest.raises(QuestionError, match="empty"):
        queue.answer(tid, "   ", "anna")
    assert queue.get(tid).status == "open"


def test_when_the_database_is_locked_the_escalation_is_spooled_and_written_later(assistant, tmp_path):
    assistant.settings.database_busy_timeout_s = 0.2
    queue = assistant.queue
    queue.url = f"sqlite:///{tmp_path / 'locked.db'}"  # a database of its own, with this short busy timeout
    assert queue.available()  # created and migrated
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        answer = assistant.ask(SKI, session_id="s-spool")
        assert not answer.answered and answer.ticket_id.startswith("P-") and answer.ticket_id in answer.text
        answered = assistant.ask("How many days of sick leave do I get?", session_id="s-spool")
        assert answered.answered  # the answer log waits in the spool too; the user is answered regardless
        assert len(queue.spool.records()) == 2
        assert assistant.ticket(answer.ticket_id, answer.ticket_token).status == "open"  # from the spool meanwhile
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    view = assistant.ticket(answer.ticket_id, answer.ticket_token)  # the next access replays the spool
    assert view.id.startswith("T-") and view.question == SKI and view.status == "open"
    assert not queue.spool.pending() and queue.answer_log(answered.id).answered
    assert [v.id for v in assistant.replies("s-spool")] == [view.id]


def test_replaying_the_same_spooled_escalation_twice_opens_one_ticket(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path / "d"))
    record = {"kind": "answer", "ref": "P-0123456789", "answer": _record("a1", "Is there a choir?").__dict__}
    queue._apply_spooled(record)
    queue._apply_spooled(record)  # a crash between writing and truncating the spool replays it again
    assert queue.count_tickets() == 1 and queue.get("P-0123456789").id == 1


def test_the_sqlite_queue_uses_wal_and_a_busy_timeout(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path / "d", database_busy_timeout_s=3))
    assert queue.url.endswith("/d/queue.db")
    with queue.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 3000


def test_the_migrations_build_exactly_the_models_schema(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from kb_assistant.queue.database import MIGRATIONS
    from kb_assistant.queue.models import Base

    queue = TicketQueue(Settings(data_dir=tmp_path / "d"))
    assert queue.available()
    with queue.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        head = MIGRATIONS.head()  # one head: the migrations form one line
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head


def test_agents_passwords_are_stored_as_bcrypt_hashes(tmp_path):
    queue = TicketQueue(Settings(data_dir=tmp_path / "d"))
    queue.add_user("anna", "correct horse battery", "agent")
    [user] = queue.users()
    assert user.password_hash.startswith("$2") and "correct" not in user.password_hash
    assert queue.check_password("anna", "correct horse battery")
    assert not queue.check_password("anna", "wrong password")
    assert not queue.check_password("bob", "correct horse battery")
    with pytest.raises(KBError, match="8 to 72"):
        queue.add_user("bob", "short")


def _record(answer_id: str, question: str, *, kb: str = "default", session: str = "s", embedding=None):
    return AnswerRecord(
        id=answer_id, kb=kb, question=question, standalone_question=question, language="en",
        text="hold", answered=False, confidence=0.1, reason="low_confidence", session_id=session, embedding=embedding,
    )  # fmt: skip


def test_gap_log_groups_unanswered_questions_by_meaning_ranked_by_count(tmp_path, embeddings):
    from datetime import UTC, datetime, timedelta

    from kb_assistant.queue.gaps import gap_clusters, write_csv

    queue = TicketQueue(Settings(data_dir=tmp_path / "d"))
    asked = [DOG, "Am I allowed to bring a dog to work?", "can i bring my dog to the office",
             "Is there a company choir I can join?", "Does the company have a choir?",
             SHUTTLE_ZH, "火车站有班车到公司吗？", SKI]  # fmt: skip
    for n, q in enumerate(asked):
        queue.record(_record(f"g{n}", q, embedding=embeddings.embed_query(q)))
    queue.record(_record("other-kb", DOG, kb="sales", embedding=embeddings.embed_query(DOG)))
    answered = _record("ok", "How many days of sick leave do I get?")
    answered.answered = True
    queue.record(answered)  # answered: not a gap
    handoff = _record("h", "转人工")
    handoff.reason = "handoff"
    queue.record(handoff)  # a request for a person: not a gap

    clusters = gap_clusters(queue, embeddings, kb="default")
    assert [c.count for c in clusters] == [3, 2, 2, 1]
    assert clusters[0].question == DOG and set(clusters[0].examples) == set(asked[:3])
    assert {frozenset(c.examples) for c in clusters[1:3]} == {frozenset(asked[3:5]), frozenset(asked[5:7])}
    # near-identical wordings share a ticket; a paraphrase has its own ticket but the same gap
    assert clusters[0].tickets == ["T-000001", "T-000002"] and clusters[0].reasons == {"low_confidence": 3}
    assert len(gap_clusters(queue, embeddings)) == 5  # every KB: the same question in 'sales' is its own gap
    assert gap_clusters(queue, embeddings, since=datetime.now(UTC) + timedelta(minutes=1)) == []

    write_csv(clusters, tmp_path / "gaps.csv")
    lines = (tmp_path / "gaps.csv").read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("rank,kb,count,question") and lines[1].startswith(f"1,default,3,{DOG}")
