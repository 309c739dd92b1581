"""The human queue: unanswered questions become tickets, agents answer them, answers reach the user and the KB.

``store.TicketQueue`` is the one object callers use; it is built up from ``database`` (URL, engine, migrations,
the spool replayed), ``reading`` (tickets, the asker's view, lists) and ``agents`` (what agents do, their
accounts). ``models`` holds the tables and the ticket ids, ``spool`` the outage spool, ``access`` the askers'
ticket tokens, ``gaps`` the gap log.
"""
