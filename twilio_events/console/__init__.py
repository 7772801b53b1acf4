"""The live console: recent callbacks, a SID's timeline, replay and the durable inbox, on a local web page.

`recorder` keeps the ring of recent callbacks, `tap` feeds it from the request path, `access` decides who
may see the page, `replay` sends a recorded callback again, `routes` answers the page and its JSON.
"""

from .gate import Console, build_console
from .routes import AppFacts

__all__ = ["AppFacts", "Console", "build_console"]
