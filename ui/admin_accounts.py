"""Console users and API keys as the admin manages them in the browser and at /admin/api — the same stores as
``kb user`` and ``kb apikey`` (the queue database), so a change made here counts for the CLI and every server.

Users: list, add (bcrypt, as ``kb user add``), change role, disable / enable, remove; the signed-in admin cannot
lock themself out (disable, remove or demote their own account), and the queue keeps the last enabled admin.
API keys: create (the key is returned once; only its hash is stored), list (id, name, KBs, first characters),
revoke. The caller checks the admin role first (``ui.admin.require_admin``); this module only does the work.
"""

from __future__ import annotations

from dataclasses import dataclass

from kb_assistant.errors import KBError

ALL_KBS = "*"


@dataclass
class UserRow:
    name: str
    role: str
    status: str  # enabled | disabled
    created: str


@dataclass
class KeyRow:
    id: str
    name: str
    kbs: str  # comma-separated; "*" = every KB
    hint: str  # the key's first characters
    created: str


class Accounts:
    """Users and API keys; ``acting`` (the signed-in admin) is passed to every change. Raises KBError."""

    def __init__(self, assistant):
        from kb_assistant.apikeys import ApiKeyStore

        self.assistant = assistant
        self.queue = assistant.queue
        self.keys_store = ApiKeyStore.for_settings(assistant.settings)

    # --- users ---------------------------------------------------------------------------------------
    def users(self) -> list[UserRow]:
        from kb_assistant.queue.agents import is_disabled

        return [
            UserRow(u.name, u.role, "disabled" if is_disabled(u) else "enabled",
                    u.created_at.isoformat(sep=" ", timespec="seconds") if u.created_at else "")
            for u in self.queue.users()
        ]  # fmt: skip

    def add_user(self, name: str, password: str, role: str, acting: str) -> UserRow:
        """A new user, or a new password (and role) for an existing one, as ``kb user add``."""
        name = (name or "").strip()
        if name == acting and role != "admin":
            raise KBError("you cannot take the admin role from your own account: ask another admin")
        self.queue.add_user(name, password or "", role)
        return self.user(name)

    def set_role(self, name: str, role: str, acting: str) -> UserRow:
        if name == acting and role != "admin":
            raise KBError("you cannot take the admin role from your own account: ask another admin")
        self.queue.set_role(name, role)
        return self.user(name)

    def disable(self, name: str, acting: str) -> UserRow:
        self._not_self(name, acting, "disable")
        self.queue.disable_user(name)
        return self.user(name)

    def enable(self, name: str, acting: str) -> UserRow:
        self.queue.enable_user(name)
        return self.user(name)

    def remove(self, name: str, acting: str) -> str:
        self._not_self(name, acting, "remove")
        self.queue.remove_user(name)
        return name

    def user(self, name: str) -> UserRow:
        from kb_assistant.queue.agents import UnknownUser

        row = next((u for u in self.users() if u.name == name), None)
        if row is None:
            raise UnknownUser(f"no console user named {name!r}: refresh the list")
        return row

    @staticmethod
    def _not_self(name: str, acting: str, action: str) -> None:
        if name == acting:
            raise KBError(f"you cannot {action} your own account while signed in with it: ask another admin")

    # --- API keys ------------------------------------------------------------------------------------
    def api_keys(self) -> list[KeyRow]:
        stored = self.keys_store.keys()
        return [KeyRow(k.id, k.name, ",".join(k.kbs), k.hint + "…", k.created_at) for k in stored]

    def create_key(self, kbs: list[str], name: str = "") -> tuple[str, KeyRow]:
        """A new key for ``kbs`` (each an existing KB, or "*"); returns (the key, shown once; its row)."""
        kbs = [k.strip() for k in kbs if k and k.strip()]
        known = set(self.assistant.knowledge_bases())
        unknown = [k for k in kbs if k != ALL_KBS and k not in known]
        if unknown:
            raise KBError(f"no knowledge base named {', '.join(map(repr, unknown))}: pick existing ones (or '*')")
        key, record = self.keys_store.create(kbs, name=(name or "").strip())
        return key, KeyRow(record.id, record.name, ",".join(record.kbs), record.hint + "…", record.created_at)

    def revoke_key(self, key_id: str) -> list[str]:
        """Revoke by id (from the list): the servers refuse it from the next request on."""
        key_id = (key_id or "").strip()
        if not key_id:
            raise KBError("pick a key in the list to revoke")
        if key_id not in {k.id for k in self.api_keys()}:
            raise KBError(f"no API key with id {key_id!r}: refresh the list")
        return [k.id for k in self.keys_store.revoke(key_id)]
