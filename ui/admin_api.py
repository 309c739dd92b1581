"""The admin's HTTP API at /admin/api: the same actions as the admin pages, for scripts.

Users and API keys (``ui.admin_accounts``): ``GET|POST /users``, ``PATCH|DELETE /users/{name}``, ``GET|POST
/keys``, ``DELETE /keys/{id}``.

HTTP Basic with a console user's name and password (``kb user add NAME --role admin``): no or wrong credentials
401, an agent 403 — the role is checked here, on the server, for every endpoint. Errors are the server's JSON
``{"error": {"message", "type"}}``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field

from kb_assistant.errors import KBError
from ui.admin import AdminOnly, DocumentLibrary, require_admin
from ui.admin_accounts import Accounts


class NewKnowledgeBase(BaseModel):
    name: str = Field(min_length=1, max_length=63)


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)
    role: str = Field("agent", description="agent or admin")


class UserChange(BaseModel):
    role: str | None = Field(None, description="agent or admin")
    disabled: bool | None = Field(None, description="true: sign-in refused; false: enabled again")


class NewApiKey(BaseModel):
    kbs: list[str] = Field(min_length=1, max_length=100, description="Knowledge bases the key may use; ['*'] = all.")
    name: str = Field("", max_length=100)


class SyncRequest(BaseModel):
    source: str = Field(min_length=1, max_length=4000, description="A remembered source (GET .../sources).")


def admin_router(assistant) -> APIRouter:
    library = DocumentLibrary(assistant)
    accounts = Accounts(assistant)
    basic = HTTPBasic(auto_error=False, realm="kb-assistant admin")
    router = APIRouter(prefix="/admin/api", tags=["admin"])

    def admin(credentials: HTTPBasicCredentials | None = Depends(basic)) -> str:
        unauthorized = {"WWW-Authenticate": 'Basic realm="kb-assistant admin"'}
        if credentials is None:
            raise HTTPException(401, "sign in with an admin's name and password (HTTP Basic)", headers=unauthorized)
        try:
            ok = assistant.queue.check_password(credentials.username, credentials.password)
        except KBError:
            ok = False
        if not ok:
            raise HTTPException(401, "wrong user name or password", headers=unauthorized)
        try:
            return require_admin(assistant.queue, credentials.username)
        except AdminOnly as exc:
            raise HTTPException(403, str(exc)) from None

    def run(action):
        try:
            return action()
        except KBError as exc:
            raise HTTPException(400, str(exc)) from None

    @router.get("/kbs")
    def knowledge_bases(user: str = Depends(admin)):
        return run(library.knowledge_bases)

    @router.post("/kbs", status_code=201)
    def create_kb(body: NewKnowledgeBase, user: str = Depends(admin)):
        return {"kb": run(lambda: library.create_kb(body.name))}

    @router.get("/kbs/{kb}/documents")
    def documents(kb: str, user: str = Depends(admin)):
        return [vars(d) for d in run(lambda: library.documents(kb))]

    @router.post("/kbs/{kb}/documents")
    def upload(kb: str, files: list[UploadFile] = File(...), user: str = Depends(admin)):
        with tempfile.TemporaryDirectory(prefix="kb-upload-") as tmp:
            paths = []
            for i, f in enumerate(files):
                dest = Path(tmp) / str(i)
                dest.write_bytes(f.file.read())
                paths.append((f.filename or "", dest))
            result = run(lambda: library.upload(kb, paths))
        return {
            "kb": kb, "files": [vars(f) for f in result.files],
            "report": result.report.model_dump(mode="json") if result.report else None,
        }  # fmt: skip

    @router.get("/kbs/{kb}/documents/chunks")
    def chunks(kb: str, key: str = Query(..., max_length=8000), user: str = Depends(admin)):
        return [c.model_dump() for c in run(lambda: library.chunks(kb, key))]

    @router.delete("/kbs/{kb}/documents")
    def delete(kb: str, key: str = Query(..., max_length=8000), user: str = Depends(admin)):
        return run(lambda: library.delete(kb, key, by=user)).model_dump(mode="json")

    @router.post("/kbs/{kb}/documents/restore")
    def restore(kb: str, key: str = Query(..., max_length=8000), user: str = Depends(admin)):
        """Undo a delete of a file in a server folder: it is synced again."""
        return run(lambda: library.restore(kb, key)).model_dump(mode="json")

    @router.get("/kbs/{kb}/sources")
    def sources(kb: str, user: str = Depends(admin)):
        return run(lambda: library.sources(kb))

    @router.post("/kbs/{kb}/sync")
    def resync(kb: str, body: SyncRequest, user: str = Depends(admin)):
        return run(lambda: library.resync(kb, body.source)).model_dump(mode="json")

    @router.get("/kbs/{kb}/runs")
    def runs(kb: str, limit: int = Query(10, ge=1, le=100), user: str = Depends(admin)):
        return run(lambda: library.runs(kb, limit))

    # --- users and API keys ---------------------------------------------------------------------------
    @router.get("/users")
    def users(user: str = Depends(admin)):
        return [vars(u) for u in run(accounts.users)]

    @router.post("/users", status_code=201)
    def add_user(body: NewUser, user: str = Depends(admin)):
        return vars(run(lambda: accounts.add_user(body.name, body.password, body.role, acting=user)))

    @router.patch("/users/{name}")
    def change_user(name: str, body: UserChange, user: str = Depends(admin)):
        def change():
            row = None
            if body.role is not None:
                row = accounts.set_role(name, body.role, acting=user)
            if body.disabled is not None:
                row = (accounts.disable if body.disabled else accounts.enable)(name, acting=user)
            return row or accounts.user(name)

        return vars(run(change))

    @router.delete("/users/{name}")
    def remove_user(name: str, user: str = Depends(admin)):
        return {"removed": run(lambda: accounts.remove(name, acting=user))}

    @router.get("/keys")
    def keys(user: str = Depends(admin)):
        return [vars(k) for k in run(accounts.api_keys)]

    @router.post("/keys", status_code=201)
    def create_key(body: NewApiKey, user: str = Depends(admin)):
        key, row = run(lambda: accounts.create_key(body.kbs, body.name))
        return {"key": key, **vars(row), "note": "the key is shown only now: send it as 'Authorization: Bearer KEY'"}

    @router.delete("/keys/{key_id}")
    def revoke_key(key_id: str, user: str = Depends(admin)):
        return {"revoked": run(lambda: accounts.revoke_key(key_id))}

    @router.get("/dashboard.csv")
    def dashboard_csv(kb: str | None = None, days: float = Query(30, gt=0, le=3660), user: str = Depends(admin)):
        from ui.dashboard import dashboard_for, write_csv

        d = run(lambda: dashboard_for(assistant, kb or None, days))
        path = write_csv(d, Path(tempfile.mkdtemp(prefix="kb-dash-")) / "dashboard.csv")
        return FileResponse(path, media_type="text/csv", filename=f"dashboard-{kb or 'all'}.csv")

    @router.get("/dashboard")
    def dashboard(kb: str | None = None, days: float = Query(30, gt=0, le=3660), user: str = Depends(admin)):
        from ui.dashboard import dashboard_for

        d = run(lambda: dashboard_for(assistant, kb or None, days))
        tables = ("per_day", "outcomes", "reasons", "top_questions", "top_gaps", "most_cited", "never_cited",
                  "comments")  # fmt: skip
        return {"kb": kb, "since": d.since.isoformat(), "until": d.until.isoformat(), "totals": d.totals,
                **{name: getattr(d, name).to_dict(orient="records") for name in tables}}  # fmt: skip

    return router
