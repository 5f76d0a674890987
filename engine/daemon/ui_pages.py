"""The dashboard's pages (Jinja2, autoescaped; plain HTML and CSS, no script)."""

from __future__ import annotations

_BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>leadrules — {% block title %}{% endblock %}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
td, th { border-bottom: 1px solid #ddd; padding: .25rem .5rem; text-align: left; font-size: .92rem; }
.funnel { display: flex; gap: .5rem; } .funnel div { background: #eef3f8; padding: .6rem 1rem; }
.funnel b { display: block; font-size: 1.4rem; } .late { color: #b00; font-weight: bold; }
nav a { margin-right: 1rem; } .muted { color: #666; }
</style></head><body>
<nav><a href="/ui">dashboard</a> <a href="/ui/shadow">shadow</a>
<form action="/ui/prospect" method="get" style="display:inline">
<input name="id" placeholder="prospect id" value="{{ query or '' }}"> <button>explain</button></form></nav>
{% block body %}{% endblock %}
</body></html>
"""

_DASHBOARD = """{% extends "base.html" %}{% block title %}dashboard{% endblock %}{% block body %}
<h1>Funnel</h1>
<div class="funnel" id="funnel">{% for stage, n in funnel.items() %}<div>{{ stage }}<b>{{ n }}</b></div>{% endfor %}</div>
<h2>Open MQLs ({{ open_mqls|length }})</h2>
<table id="open-mqls"><tr><th>prospect</th><th>name</th><th>score</th><th>MQL since</th><th>accept by</th><th>SLA</th></tr>
{% for m in open_mqls %}<tr><td><a href="/ui/prospect?id={{ m.prospect|urlencode }}">{{ m.prospect }}</a></td>
<td>{{ m.name }}</td><td>{{ m.score }}</td><td>{{ m.mql_at }}</td><td>{{ m.deadline or '—' }}</td>
<td class="{{ 'late' if m.minutes_left is not none and m.minutes_left < 0 }}">{% if m.minutes_left is none %}—{% elif m.minutes_left < 0 %}breached {{ -m.minutes_left }} min ago{% else %}{{ m.minutes_left }} min left{% endif %}</td></tr>
{% else %}<tr><td colspan="6" class="muted">none</td></tr>{% endfor %}</table>
<h2>Recent decisions</h2>
<table id="decisions"><tr><th>at</th><th>prospect</th><th>action</th><th>rule</th><th>detail</th><th>channel</th><th>delivery</th></tr>
{% for d in decisions %}<tr><td>{{ d.at }}</td><td><a href="/ui/prospect?id={{ d.prospect|urlencode }}">{{ d.prospect }}</a></td>
<td>{{ d.action }}</td><td>{{ d.rule }}</td><td>{{ d.detail }}</td><td>{{ d.channel }}</td><td>{{ d.status }}</td></tr>
{% endfor %}</table>
{% endblock %}"""

_PROSPECT = """{% extends "base.html" %}{% block title %}{{ query }}{% endblock %}{% block body %}
{% if p is none %}<p id="not-found">No prospect {{ query }}.</p>{% else %}
<h1 id="prospect">{{ p.prospect }}</h1>
<p class="muted">{% if p.aliases %}also {{ p.aliases|join(', ') }} · {% endif %}{{ p.traits.get('name', '') }} {{ p.traits.get('title', '') }}</p>
<p id="score">Score <b>{{ p.score }}</b> (MQL at {{ p.threshold }}) · stage <b>{{ p.stage }}</b></p>
<h2>Why: the score's reasons</h2>
<table id="reasons"><tr><th>points</th><th>rule</th><th>kind</th><th>event</th><th>at</th><th>expires</th></tr>
{% for r in p.reasons %}<tr><td>{{ '%+d'|format(r.points) }}</td><td>{{ r.rule }}</td><td>{{ r.kind }}</td><td>{{ r.what }}</td><td>{{ r.at }}</td><td>{{ r.expires or '' }}</td></tr>{% endfor %}</table>
<h2>Stages</h2>
<table id="stages"><tr><th>at</th><th>stage</th><th>reason</th></tr>
{% for h in p.history %}<tr><td>{{ h.at }}</td><td>{{ h.stage }}</td><td>{{ h.reason }}</td></tr>{% endfor %}</table>
<h2>Sequences</h2>
<table id="sequences"><tr><th>sequence</th><th>started</th><th>next step</th></tr>
{% for s in p.sequences %}<tr><td>{{ s.sequence }}</td><td>{{ s.started }}</td><td>{{ s.next_step }}</td></tr>
{% else %}<tr><td colspan="3" class="muted">none</td></tr>{% endfor %}</table>
<h2>Pending timers</h2>
<table id="timers"><tr><th>due</th><th>kind</th></tr>
{% for t in p.timers %}<tr><td>{{ t.due }}</td><td>{{ t.key }}</td></tr>{% else %}<tr><td colspan="2" class="muted">none</td></tr>{% endfor %}</table>
<h2>Timeline</h2>
<table id="timeline"><tr><th>at</th><th>kind</th><th>what</th></tr>
{% for t in p.timeline %}<tr><td>{{ t.at }}</td><td>{{ t.kind }}</td><td>{{ t.what }}</td></tr>{% endfor %}</table>
{% endif %}{% endblock %}"""

_DECISIONS = """<table id="{{ id }}"><tr><th>at</th><th>prospect</th><th>action</th><th>rule</th><th>detail</th><th>channel</th></tr>
{% for d in rows %}<tr><td>{{ d.at }}</td><td><a href="/ui/prospect?id={{ d.prospect|urlencode }}">{{ d.prospect }}</a></td>
<td>{{ d.action }}</td><td>{{ d.rule }}</td><td>{{ d.detail }}</td><td>{{ d.channel }}</td></tr>
{% else %}<tr><td colspan="6" class="muted">none</td></tr>{% endfor %}</table>"""

_SHADOW = """{% extends "base.html" %}{% block title %}shadow{% endblock %}{% block body %}
<h1>Shadow rule set</h1>
{% if not s.configured %}<p id="shadow-off" class="muted">No shadow rule set: set <code>shadow: DIR</code> in config/leadrules.yaml.</p>{% else %}
<p id="shadow-source">Candidate <b>{{ s.directory }}</b>{% if s.version %}, version <b>{{ s.version }}</b>{% endif %}. Recorded, never delivered.</p>
{% endif %}
{% if s.error %}<pre id="shadow-error" class="late">{{ s.error }}</pre>{% endif %}
{% if s.recorded %}
<p id="shadow-position" class="muted">{{ s.events_behind }} event(s) not yet read · timers fired through {{ s.fired_through or '—' }} · {{ s.errors }} error(s)</p>
<div class="funnel" id="shadow-counts"><div>shadow<b>{{ s.counts.shadow }}</b></div><div>live<b>{{ s.counts.live }}</b></div>
<div>would have<b>{{ s.counts.would_have }}</b></div><div>live only<b>{{ s.counts.live_only }}</b></div></div>
<h2>Would have (shadow only)</h2>
{% with id="would-have", rows=s.would_have %}{% include "decisions.html" %}{% endwith %}
<h2>Live only</h2>
{% with id="live-only", rows=s.live_only %}{% include "decisions.html" %}{% endwith %}
{% elif s.configured %}<p id="shadow-empty" class="muted">The shadow has recorded nothing yet.</p>{% endif %}
{% endblock %}"""

PAGES = {
    "base.html": _BASE,
    "dashboard.html": _DASHBOARD,
    "prospect.html": _PROSPECT,
    "decisions.html": _DECISIONS,
    "shadow.html": _SHADOW,
}
