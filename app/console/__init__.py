"""The web console at `/`: static HTML, CSS and JavaScript modules that call the public API.

There is no build step and no CDN: the files under `static/` ship in the package and
are served as they are. The console has no endpoint of its own; every view reads the
same JSON API that other clients use.
"""
