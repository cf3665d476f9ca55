"""The web edge: what turns HTTP into calls on the services and their results back into HTTP.

Exception handlers, OpenAPI error descriptions and the typed dependencies shared
by every router live here; each domain's own dependencies sit beside it in
`<domain>/dependencies.py`. Nothing below this package imports it.
"""
