"""`kb status`: per KB, what the ledger and the published index say it holds."""

from __future__ import annotations

from datetime import datetime

from ingest.ledger import Ledger
from ingest.visibility import sidecar_groups
from kb_assistant.kb_access import kb_groups
from kb_assistant.settings import Settings
from kb_assistant.store.publication import read_state


def kb_status(settings: Settings, kb: str | None = None) -> list[dict]:
    """One dict per KB: documents, chunks, failures, documents an admin excluded, KB version, the groups the KB is
    limited to, sources (each with its groups and the sub-folders whose ``.kb-groups`` file gives them their own),
    last run (with its report)."""
    ledger = Ledger(settings)
    names = [kb] if kb else ledger.kbs()
    out = []
    for name in names:
        docs = ledger.documents(name)
        runs = ledger.runs(name, limit=1)
        if not docs and not runs and not ledger.sources(name):
            continue
        state = read_state(settings, name)
        done = [d for d in docs if d.status == "done"]
        failed = [d for d in docs if d.status == "failed"]
        excluded = [d for d in docs if d.status == "excluded"]
        last = runs[0] if runs else None
        out.append(
            {
                "kb": name,
                "documents": len(done),
                "chunks": len({cid for d in done for cid in d.chunk_ids}),
                "failed": len(failed),
                "failures": [{"path": f"{d.root}/{d.path}", "reason": d.error or ""} for d in failed],
                "excluded": [{"path": f"{d.root}/{d.path}", "note": d.error or ""} for d in excluded],
                "version": int(state.get("version", 0)),
                "groups": sorted(kb_groups(settings, name)),
                "sources": [s.root for s in ledger.sources(name)],
                "source_groups": {
                    s.root: {"groups": sorted(s.groups or []), "folders": sidecar_groups(s.root)}
                    for s in ledger.sources(name)
                },
                "last_run": run_summary(last) if last else None,
            }
        )
    return out


def run_summary(run) -> dict:
    """One ingest run as `kb status` and the admin console show it: when, status, a one-line summary, the report."""
    report = run.report or {}
    summary = ""
    if report:
        summary = (
            f"{report.get('added', 0)} added, {report.get('updated', 0)} updated, "
            f"{report.get('unchanged', 0)} unchanged, {report.get('deleted', 0)} deleted, "
            f"{len(report.get('failed', []))} failed, {report.get('seconds', 0)}s"
        )
    return {
        "id": run.id,
        "started": datetime.fromtimestamp(run.started_at).isoformat(timespec="seconds"),
        "finished": datetime.fromtimestamp(run.finished_at).isoformat(timespec="seconds") if run.finished_at else None,
        "status": run.status,
        "summary": summary,
        "report": report,
    }
