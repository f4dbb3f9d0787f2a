"""Content-Security-Policy for every page a browser shows: the admin and the API docs (django-csp).

Everything is served from our own origin (unfold, Chart.js, htmx, select2 and the Swagger UI
from drf-spectacular-sidecar are static files here), so each directive starts at 'self'. Two
allowances are forced by unfold 0.91 and are the policy's weak spots:

- script-src 'unsafe-eval': unfold loads the standard Alpine.js build (unfold/layouts/
  skeleton.html), which compiles every `x-data`, `x-init`, `x-show` attribute with the Function
  constructor. Alpine's CSP build cannot read unfold's templates, so it is not an option without
  replacing unfold's layout. No inline scripts are allowed: a template that needs one gives it
  `nonce="{{ CSP_NONCE }}"` (the nonce is added to the header only when a page uses it).
- style-src 'unsafe-inline': unfold's templates carry `style="..."` attributes and `<style>`
  blocks (the theme colours), htmx adds its indicator styles, and the Swagger UI page has an
  inline `<style>`. A nonce cannot cover style attributes, and a nonce in style-src would make
  browsers ignore 'unsafe-inline', so styles have no nonce. Injected styles cannot run script.

The Swagger UI at /api/docs/ starts from a script of its own, which must come as a file, not
inline: the page is drf-spectacular's SpectacularSwaggerSplitView (its inline set-up script
holds the CSRF token, so no fixed hash could allow it).

Images may be `data:` URIs (icons in unfold's and the Swagger UI's style sheets). Nothing may
frame our pages (as X-Frame-Options: DENY already says), post forms elsewhere, or change the
base URL.

The JSON API under /api/v1/ gets no policy: programs read it, not browsers, and building the
header cost ~160 µs a response on this machine, a large share of an entitlement check's time.
"""

from csp.constants import NONCE, NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE

__all__ = ["CONTENT_SECURITY_POLICY"]

CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/v1/"],
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, UNSAFE_EVAL, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
