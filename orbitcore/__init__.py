"""What the daemon (`orbitd`) and the rendezvous both use, so neither imports the other.

Errors and the JSON error middleware (`errors`), the settings table (`settings_table`),
JSON logging (`jsonlog`), the rate limiters (`ratelimit`), the atomic file writer
(`files`), XDG directories (`paths`) and the UI's templates, translations and
static files (`ui`, `i18n`, `render`; the files themselves live in `web/`).
"""
