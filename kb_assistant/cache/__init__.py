"""The semantic cache: repeats answered without retrieval, paraphrases on their own evidence; never wrong or stale.

    question ─► condense ─► cache.lookup ─┬─ hit: the stored Answer (cached=True, a fresh id)
                                          └─ miss: retrieve … answer ─► cache.store (answered, cited, not personal)

- ``semantic``: ``SemanticCache``, the lookup — exact key, wording key, embedding similarity, the guard and the
  evidence check, single flight.
- ``admin``: what the 👎 and the admins do to entries — evict, list, drop, clear — and the stats.
- ``storage``: storing an answer, freshness, eviction by size, the in-memory similarity matrices.
- ``database``: the tables on the database layer (``KB_DATABASE_URL``, Postgres shared by replicas; else the SQLite
  file ``cache.sqlite3``).
- ``keys``: the exact-match key, the wording key, personal questions.
- ``guard`` (with its ``detectors``): the near-miss guard a paraphrase must pass.
- ``intent``: then, in English, that it asks what the cached question asked (answer types, content words with a
  counterpart).

Personal questions are neither stored nor served. An entry is fresh exactly while every chunk it cited is still live
in the KB: chunk ids are content-addressed, so an ingest that changes or deletes a cited chunk kills exactly the
entries that cited it.
"""
