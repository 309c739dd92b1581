"""Errors a user can cause: each message names the file, field or setting and says what to do."""


class KBError(Exception):
    """Base class; the CLI and servers show the message without a traceback."""


class QuestionError(KBError):
    pass


class UnknownKnowledgeBase(KBError):
    pass


class UnknownTicket(KBError):
    """No ticket with that id."""
