"""Who is asking, for every server surface: the Gradio chat, the widget's /api calls and the OpenAI-compatible
/v1 all resolve the principal with ``principal_for`` — one rule, so no surface sees more than another.

1. Behind a company's SSO proxy (oauth2-proxy and the like), the user and groups come from its headers
   (``KB_SSO_USER_HEADER``, ``KB_SSO_GROUPS_HEADER``), believed only when the request's peer address is one of
   ``KB_SSO_TRUSTED_PROXIES``; from anyone else the headers are ignored (a client cannot name its own groups).
2. Otherwise an API key's groups (``kb apikey create --kb hr --groups managers``), the user being the key.
3. Otherwise a principal in no group: only documents of sources without groups, only KBs open to everyone.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from functools import lru_cache

from kb_assistant.schema import GROUP_NAME, Principal
from kb_assistant.settings import Settings

log = logging.getLogger(__name__)


@lru_cache(maxsize=32)
def _networks(proxies: tuple[str, ...]):
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def trusted_proxy(settings: Settings, peer: str | None) -> bool:
    """Whether ``peer`` (the TCP peer's address) is one of the configured SSO proxies."""
    if not peer or not settings.sso_trusted_proxies:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in net for net in _networks(tuple(settings.sso_trusted_proxies)))


def header_groups(value: str) -> frozenset[str]:
    """Group names from an SSO groups header (comma-separated); names that are not group names are left out."""
    names = [g.strip() for g in (value or "").split(",") if g.strip()]
    bad = [g for g in names if not GROUP_NAME.match(g)]
    if bad:
        log.warning("SSO groups header: left out names that are not group names: %s", ", ".join(bad[:5]))
    return frozenset(g for g in names if GROUP_NAME.match(g))


def principal_for(
    settings: Settings, headers: Mapping[str, str], peer: str | None, key=None, user: str | None = None
) -> Principal:
    """The principal of one request: its headers (case-insensitive mapping), its TCP peer address, the API key it
    authenticated with (an ``apikeys.ApiKey``, or None). ``user``: a user id the client names for the log (the
    OpenAI ``user`` field), used when SSO does not say who it is; it grants nothing."""
    if trusted_proxy(settings, peer):
        lower = {str(k).lower(): v for k, v in headers.items()}  # Gradio hands a plain dict of lower-case names
        sso_user = (lower.get(settings.sso_user_header.lower()) or "").strip()
        if sso_user:
            groups = header_groups(lower.get(settings.sso_groups_header.lower(), ""))
            return Principal(user=sso_user[:100], groups=groups)
    if key is not None:
        return Principal(user=(user or key.id)[:100], groups=frozenset(key.groups))
    return Principal(user=user[:100] if user else None)


def principal_of_request(settings: Settings, request, key=None, user: str | None = None) -> Principal:
    """``principal_for`` a Starlette/FastAPI request (or Gradio's ``gr.Request``, which wraps one)."""
    if request is None:
        return Principal(user=user or None)
    client = getattr(request, "client", None)
    peer = getattr(client, "host", None) if client is not None else None
    return principal_for(settings, getattr(request, "headers", {}) or {}, peer, key, user)
