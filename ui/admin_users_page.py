"""The admin pages' "Users and keys" tab (Gradio): console users and API keys, over ``ui.admin_accounts``.

Built inside ``ui.admin_app``'s Blocks; every handler checks the admin role on the server first (``admin_of``). A
new API key is shown once, in its own box, and is not kept anywhere but as a hash.
"""

from __future__ import annotations

import html

import gradio as gr  # at module level: Gradio resolves the `gr.Request` annotations below against these globals

from kb_assistant.errors import KBError
from ui.admin_accounts import ALL_KBS, Accounts

USER_COLUMNS = ["user", "role", "status", "created"]
KEY_COLUMNS = ["id", "name", "knowledge bases", "starts with", "created"]


def _e(text) -> str:
    return html.escape(str(text or ""), quote=True)


def users_tab(assistant, admin_of) -> dict:
    """Lay the tab out in the current Blocks and wire it; returns what the page loads on start."""
    accounts = Accounts(assistant)

    def user_rows() -> list[list]:
        return [[u.name, u.role, u.status, u.created] for u in accounts.users()]

    def key_rows() -> list[list]:
        return [[k.id, k.name, k.kbs, k.hint, k.created] for k in accounts.api_keys()]

    with gr.Tab("Users and keys", id="users"):
        message = gr.Markdown(elem_id="admin-users-message")
        gr.Markdown("### Console users\nAgents work tickets and gaps in the [agent console](/console); admins also "
                    "manage knowledge bases, users and keys here. The same accounts as `kb user`.")  # fmt: skip
        users = gr.Dataframe(headers=USER_COLUMNS, interactive=False, elem_id="admin-users")
        with gr.Row():
            name = gr.Textbox(label="User name (click a row)", scale=2, elem_id="admin-user-name")
            password = gr.Textbox(label="Password (8 to 72 bytes; for a new user or a new password)", type="password",
                                  scale=2, elem_id="admin-user-password")  # fmt: skip
            role = gr.Dropdown(["agent", "admin"], value="agent", label="Role", scale=1, elem_id="admin-user-role")
        with gr.Row():
            add = gr.Button("Add user / set password", variant="primary", elem_id="admin-user-add")
            set_role = gr.Button("Change role", elem_id="admin-user-role-set")
            disable = gr.Button("Disable", elem_id="admin-user-disable")
            enable = gr.Button("Enable", elem_id="admin-user-enable")
            remove = gr.Button("Remove", variant="stop", elem_id="admin-user-remove")

        gr.Markdown("### API keys\nFor the HTTP API (`/api`, `/v1`), scoped to knowledge bases; as soon as one exists "
                    "every request needs one. The same keys as `kb apikey`.")  # fmt: skip
        keys = gr.Dataframe(headers=KEY_COLUMNS, interactive=False, elem_id="admin-keys")
        with gr.Row():
            key_kbs = gr.Dropdown([ALL_KBS], multiselect=True, label="Knowledge bases ('*' = all)", scale=2,
                                  elem_id="admin-key-kbs")  # fmt: skip
            key_name = gr.Textbox(label="Key name (who uses it)", scale=2, elem_id="admin-key-name")
            create = gr.Button("Create key", variant="primary", scale=0, elem_id="admin-key-create")
        new_key = gr.Textbox(label="New key: copy it now, it is shown only once", interactive=False,
                             buttons=["copy"], elem_id="admin-new-key")  # fmt: skip
        with gr.Row():
            key_id = gr.Textbox(label="Key id (click a row)", scale=3, elem_id="admin-key-id")
            revoke = gr.Button("Revoke key", variant="stop", scale=0, elem_id="admin-key-revoke")

    def load(request: gr.Request):
        admin_of(request)
        return user_rows(), key_rows(), gr.update(choices=[ALL_KBS, *assistant.knowledge_bases()])

    def user_action(action, done: str):
        def handler(user, pw, new_role, request: gr.Request):
            acting = admin_of(request)
            try:
                row = action(user.strip(), pw, new_role, acting)
            except KBError as exc:
                return f"⚠️ {_e(exc)}", gr.update(), ""
            who = row if isinstance(row, str) else row.name
            return done.format(name=_e(who), role=_e(getattr(row, "role", ""))), user_rows(), ""

        return handler

    inputs, outputs = [name, password, role], [message, users, password]
    add.click(user_action(lambda n, pw, r, a: accounts.add_user(n, pw, r, acting=a),
                          "Saved user **{name}** ({role})."), inputs, outputs)  # fmt: skip
    set_role.click(user_action(lambda n, pw, r, a: accounts.set_role(n, r, acting=a),
                               "**{name}** is now an {role}."), inputs, outputs)  # fmt: skip
    disable.click(user_action(lambda n, pw, r, a: accounts.disable(n, acting=a),
                              "Disabled **{name}**: signing in is refused from now on."), inputs, outputs)  # fmt: skip
    enable.click(user_action(lambda n, pw, r, a: accounts.enable(n, acting=a), "Enabled **{name}**."),
                 inputs, outputs)  # fmt: skip
    remove.click(user_action(lambda n, pw, r, a: accounts.remove(n, acting=a), "Removed **{name}**."),
                 inputs, outputs)  # fmt: skip

    def pick_user(evt: gr.SelectData, request: gr.Request):
        admin_of(request)
        rows = accounts.users()
        n = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return (rows[n].name, rows[n].role) if isinstance(n, int) and 0 <= n < len(rows) else ("", gr.update())

    users.select(pick_user, None, [name, role])

    def do_create(kbs, label, request: gr.Request):
        admin_of(request)
        try:
            key, row = accounts.create_key(list(kbs or []), label)
        except KBError as exc:
            return f"⚠️ {_e(exc)}", gr.update(), ""
        return (f"Created key **{_e(row.id)}** for {_e(row.kbs)}: copy it from the box below now; only its hash "
                "is kept.", key_rows(), key)  # fmt: skip

    create.click(do_create, [key_kbs, key_name], [message, keys, new_key])

    def pick_key(evt: gr.SelectData, request: gr.Request):
        admin_of(request)
        rows = accounts.api_keys()
        n = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return rows[n].id if isinstance(n, int) and 0 <= n < len(rows) else ""

    keys.select(pick_key, None, key_id)

    def do_revoke(kid, request: gr.Request):
        admin_of(request)
        try:
            gone = accounts.revoke_key(kid)
        except KBError as exc:
            return f"⚠️ {_e(exc)}", gr.update(), gr.update(), gr.update()
        return f"Revoked key **{_e(', '.join(gone))}**: it is refused from the next request on.", key_rows(), "", ""

    revoke.click(do_revoke, key_id, [message, keys, key_id, new_key])
    return {"fn": load, "inputs": None, "outputs": [users, keys, key_kbs]}
