"""A key's scope: `read` keys check entitlements, read and count usage; `write` keys also
write. What a write may change is then up to the key owner's permissions, checked by the
services. A view that changes nothing in the catalog or the customers' records (counting usage)
says `any_scope = True`.

`request.auth` is the `KeyPrincipal` of the request's key (`api.authentication`)."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

READ, WRITE = "read", "write"


class HasScope(BasePermission):
    """No key: 401. A read key on a write: 403 with code `insufficient_scope`."""

    message = "This key's scope is read: writes need a key with the write scope."
    code = "insufficient_scope"

    def has_permission(self, request, view) -> bool:
        scope = getattr(request.auth, "scope", None)
        if request.method in SAFE_METHODS or getattr(view, "any_scope", False):
            return scope in (READ, WRITE)
        return scope == WRITE
