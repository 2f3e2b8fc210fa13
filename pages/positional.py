"""Positional-encoding lab: sinusoidal waves, learned positions, RoPE and the with/without-positions experiment.
Router: URL state and the section picker; the views are ui.views.positional."""

from ui.common import current_model
from ui.links import copy_link, qp
from ui.router import section_picker
from ui.views import positional as view

loaded = current_model()
view.header(loaded)
section = section_picker("positional", fields=view.url_fields(qp))
if section == "sinusoidal":
    settings = view.sinusoidal_controls()
    copy_link("positional", {"section": section, **settings}, key="pos")
    view.sinusoidal_section(settings["d_model"], settings["max_len"], settings["base"])
else:
    copy_link("positional", {"section": section}, key="pos")
    {"learned": view.learned_section, "rope": view.rope_section, "ablation": view.ablation_section}[section](loaded)
