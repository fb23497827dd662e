"""Chat rooms that refresh in every open page when someone posts."""

import panel as pn

pn.extension()

pn.Column(
    "# panel_pusher chat",
    "The chat app is on its way. The embedded Pusher server and the listener come first.",
).servable(title="panel_pusher chat")
