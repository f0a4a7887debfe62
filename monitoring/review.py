"""`aigq review`: a small web app on 127.0.0.1 where product owners review what was served.

- `GET /`: a sample of served lists (filter by day, source, category, degraded), each suggestion
  with its score, source and category; a form to flag one (reason code, scope, evidence) and one
  to approve the list; the flag rate per source and day (table and plot); reviewer agreement
  where two reviewers saw the same list; a link to the Evidently dashboard.
- `POST /flag`, `POST /approve`: form-encoded (the page) or JSON; 303 back to the page, or 201
  with the new id when the client asked for JSON. Bad input is a 4xx naming the field.
- `GET /api/flags`: every flag as JSON.

Server-rendered (Jinja2, autoescaped: every text from the log or a reviewer is escaped), no build
step. Flags go to `serving.review.ReviewStore`; the online path stops serving a flagged query
within `flags_refresh_seconds`, and the next IL-GRPO run penalises it.
"""

# no `from __future__ import annotations`: FastAPI reads the handlers' annotations (Request,
# imported inside create_app) at definition time
import base64
import io
import json
import math
import urllib.parse
from dataclasses import dataclass

import pandas as pd

from core.config import option
from serving.log import default_url, read_log, served_list
from serving.review import MAX_EVIDENCE_CHARS, REASONS, SCOPES, ReviewError, ReviewStore

MAX_FORM_BYTES = 16_384


@dataclass
class ReviewConfig:
    port: int = option(8765, "port on 127.0.0.1")
    log_url: str = option("", "serving log URL (default $AIGQ_SERVING_LOG_URL or SQLite under $AIGQ_HOME/serving)")
    review_url: str = option("", "review database URL (default $AIGQ_REVIEW_URL or SQLite under $AIGQ_HOME/review)")
    sample: int = option(20, "served lists shown per page (a fixed random sample of those matching the filters)")
    dashboard_url: str = option("http://127.0.0.1:8000", "the Evidently dashboard (`aigq monitor ui`)")


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AIGQ review</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .4em 0 1.2em; }
td, th { border: 1px solid #ccc; padding: 3px 7px; font-size: 14px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.list { border: 1px solid #bbb; border-radius: 6px; padding: .5em 1em; margin: 1em 0; }
.degraded { background: #fff4e0; }
.flagged { color: #a00; font-weight: 600; }
form.inline { display: inline; }
input[type=text] { width: 9em; }
textarea { width: 14em; height: 2.2em; }
</style></head>
<body>
<h1>AIGQ review</h1>
<p>{{ n_lists }} served lists in the log; {{ n_flags }} flags, {{ n_approvals }} approvals.
Drift dashboards: <a href="{{ dashboard_url }}">Evidently</a>.</p>
<form method="get" action="/">
 reviewer <input type="text" name="reviewer" value="{{ reviewer }}" required>
 day <select name="day"><option value="">all</option>{% for d in days %}
  <option value="{{ d }}" {{ 'selected' if d == filters.day }}>{{ d }}</option>{% endfor %}</select>
 source <select name="source"><option value="">all</option>{% for s in ['direct', 'think', 'fallback'] %}
  <option value="{{ s }}" {{ 'selected' if s == filters.source }}>{{ s }}</option>{% endfor %}</select>
 category <input type="text" name="category" value="{{ filters.category }}">
 degraded <select name="degraded"><option value="">any</option>
  <option value="yes" {{ 'selected' if filters.degraded == 'yes' }}>yes</option>
  <option value="no" {{ 'selected' if filters.degraded == 'no' }}>no</option></select>
 <button type="submit">show</button>
</form>

<h2>Flag rate per source and day</h2>
{% if rates %}<table><tr><th>day</th>{% for s in rate_sources %}<th>{{ s }}</th>{% endfor %}</tr>
{% for day, row in rates %}<tr><td>{{ day }}</td>{% for s in rate_sources %}<td>{{ row[s] }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if plot %}<img alt="flag rate per source and day" src="data:image/png;base64,{{ plot }}">{% endif %}
{% else %}<p>No flags yet.</p>{% endif %}

<h2>Reviewer agreement</h2>
<p id="agreement">{{ agreement }}</p>

<h2>Served lists ({{ shown|length }} of {{ matching }} matching)</h2>
{% for item in shown %}
<div class="list {{ 'degraded' if item.degraded }}" id="list-{{ item.request_id }}">
 <b>{{ item.served_at }}</b> user <code>{{ item.user_id }}</code> request <code>{{ item.request_id }}</code>
 {% if item.degraded %}<b>degraded</b>: {{ item.degraded_reason }}{% endif %}
 {% if item.approved_by %}<span>approved by {{ item.approved_by|join(', ') }}</span>{% endif %}
 <form class="inline" method="post" action="/approve">
  <input type="hidden" name="request_id" value="{{ item.request_id }}">
  <input type="hidden" name="reviewer" value="{{ reviewer }}">
  <input type="hidden" name="back" value="{{ back }}">
  <button type="submit" {{ 'disabled' if not reviewer }}>approve list</button></form>
 <table><tr><th>#</th><th>query</th><th>score</th><th>source</th><th>category</th><th>flags</th><th>flag it</th></tr>
 {% for s in item.suggestions %}
 <tr><td>{{ s.position }}</td><td class="{{ 'flagged' if s.flags }}">{{ s.query }}</td><td>{{ s.score }}</td>
  <td>{{ s.source }}</td><td>{{ s.category }}</td><td>{{ s.flags|join('; ') }}</td>
  <td><form method="post" action="/flag" class="flag-form">
   <input type="hidden" name="request_id" value="{{ item.request_id }}">
   <input type="hidden" name="position" value="{{ s.position }}">
   <input type="hidden" name="reviewer" value="{{ reviewer }}">
   <input type="hidden" name="back" value="{{ back }}">
   <select name="reason">{% for r in reasons %}<option value="{{ r }}">{{ r }}</option>{% endfor %}</select>
   <select name="scope">{% for sc in scopes %}<option value="{{ sc }}">{{ sc }}</option>{% endfor %}</select>
   <textarea name="evidence" maxlength="{{ max_evidence }}" placeholder="evidence (optional)"></textarea>
   <button type="submit" {{ 'disabled' if not reviewer }}>flag</button></form></td></tr>
 {% endfor %}</table>
</div>
{% endfor %}
{% if not reviewer %}<p>Enter your name as reviewer above to flag or approve.</p>{% endif %}
</body></html>
"""


def create_app(cfg: ReviewConfig):
    import jinja2
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

    log_url = cfg.log_url or default_url()
    store = ReviewStore(cfg.review_url or None)
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(PAGE)
    app = FastAPI(title="AIGQ review", docs_url=None, redoc_url=None)

    def error(status: int, message: str):
        return JSONResponse({"error": message}, status_code=status)

    @app.get("/", response_class=HTMLResponse)
    def page(reviewer: str = "", day: str = "", source: str = "", category: str = "", degraded: str = ""):
        served = read_log(log_url)
        filters = {"day": day, "source": source, "category": category, "degraded": degraded}
        flags, approvals = store.flags(), store.approvals()
        matching = filter_lists(served, **filters)
        shown = matching.sample(min(cfg.sample, len(matching)), random_state=0) if len(matching) else matching
        shown = shown.sort_values("served_at", ascending=False)
        query = urllib.parse.urlencode({"reviewer": reviewer, **filters})
        rates = flag_rates(served, flags)
        html = template.render(
            n_lists=len(served),
            n_flags=len(flags),
            n_approvals=len(approvals),
            dashboard_url=cfg.dashboard_url,
            reviewer=reviewer,
            filters=filters,
            days=sorted({str(t)[:10] for t in served["served_at"]}, reverse=True),
            rates=[(day, row) for day, row in rates.iterrows()],
            rate_sources=list(rates.columns),
            plot=rate_plot(rates),
            agreement=agreement_text(served, flags, approvals),
            matching=len(matching),
            shown=[list_view(row, flags, approvals) for row in shown.itertuples(index=False)],
            back="/?" + query,
            reasons=REASONS,
            scopes=SCOPES,
            max_evidence=MAX_EVIDENCE_CHARS,
        )
        return HTMLResponse(html)

    async def fields(request: Request) -> dict:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise ReviewError(f"body: at most {MAX_FORM_BYTES} bytes")
        if "json" in request.headers.get("content-type", ""):
            try:
                data = json.loads(body)
            except ValueError:
                raise ReviewError("body: not JSON") from None
            if not isinstance(data, dict):
                raise ReviewError("body: a JSON object")
            return data
        try:
            return {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            raise ReviewError("body: not UTF-8") from None

    def done(request: Request, data: dict, new_id: int, kind: str):
        if "json" in request.headers.get("content-type", ""):
            return JSONResponse({kind: new_id}, status_code=201)
        back = str(data.get("back") or "/")
        return RedirectResponse(back if back.startswith("/?") or back == "/" else "/", status_code=303)

    def listed(data: dict) -> dict:
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id or len(request_id) > 64:
            raise ReviewError("request_id: required, the id of a served list")
        row = served_list(log_url, request_id)
        if row is None:
            raise LookupError(f"request_id: no served list {request_id[:64]!r}")
        return row

    async def decide(request: Request, kind: str, record):
        """Read the body, find the list, record the decision: 303 back to the page (a form) or
        201 with the new id (JSON); a bad decision is a 400, an unknown list a 404."""
        try:
            data = await fields(request)
            new_id = record(data, listed(data))
        except ReviewError as e:
            return error(400, str(e))
        except LookupError as e:
            return error(404, str(e))
        return done(request, data, new_id, kind)

    def record_flag(data: dict, row: dict) -> int:
        try:
            position = int(data.get("position"))
        except (TypeError, ValueError):
            raise ReviewError("position: an integer, the suggestion's place in the list") from None
        if not 0 <= position < len(row["queries"]):
            raise ReviewError(f"position: 0..{len(row['queries']) - 1} for this list, got {position}")
        return store.flag(
            request_id=row["request_id"],
            position=position,
            query=row["queries"][position],
            category_id=(row["categories"] or [None] * len(row["queries"]))[position],
            source=row["sources"][position],
            reason=str(data.get("reason", "")),
            reviewer=data.get("reviewer", ""),
            scope=str(data.get("scope", "global")),
            evidence=data.get("evidence", "") or "",
        )

    @app.post("/flag")
    async def flag(request: Request):
        return await decide(request, "flag_id", record_flag)

    @app.post("/approve")
    async def approve(request: Request):
        return await decide(
            request, "approval_id", lambda data, row: store.approve(row["request_id"], data.get("reviewer", ""))
        )

    @app.get("/api/flags")
    def api_flags():
        flags = store.flags()
        flags["created_at"] = flags["created_at"].astype(str)
        return JSONResponse(json.loads(flags.to_json(orient="records", force_ascii=False)))

    @app.on_event("shutdown")
    def close() -> None:
        store.close()

    return app


def filter_lists(served: pd.DataFrame, day: str, source: str, category: str, degraded: str) -> pd.DataFrame:
    keep = pd.Series(True, index=served.index)
    if day:
        keep &= served["served_at"].astype(str).str[:10] == day
    if source:
        keep &= served["sources"].map(lambda s: source in (s or []))
    if category:
        keep &= served["categories"].map(lambda c: category in (c or []))
    if degraded in ("yes", "no"):
        keep &= served["degraded"].astype(bool) == (degraded == "yes")
    return served[keep]


def list_view(row, flags: pd.DataFrame, approvals: pd.DataFrame) -> dict:
    mine = flags[flags["request_id"] == row.request_id]
    categories = row.categories or [None] * len(row.queries)
    return {
        "request_id": row.request_id,
        "served_at": str(row.served_at)[:19],
        "user_id": row.user_id,
        "degraded": bool(row.degraded),
        "degraded_reason": row.degraded_reason,
        "approved_by": sorted(set(approvals.loc[approvals["request_id"] == row.request_id, "reviewer"])),
        "suggestions": [
            {
                "position": i,
                "query": q,
                "score": f"{score:.4f}",
                "source": source,
                "category": categories[i] or "",
                "flags": [
                    f"{f.reason} ({f.scope}) by {f.reviewer}" + (f": {f.evidence[:200]}" if f.evidence else "")
                    for f in mine[mine["position"] == i].itertuples()
                ],
            }
            for i, (q, score, source) in enumerate(zip(row.queries, row.scores, row.sources))
        ],
    }


def flag_rates(served: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """Flagged suggestions over served suggestions, by day (of serving) and source (each flagged
    suggestion counted once however many reviewers flagged it); days with a flag only."""
    if flags.empty or served.empty:
        return pd.DataFrame()
    shown = served[["request_id", "served_at", "sources"]].explode("sources").rename(columns={"sources": "source"})
    shown["day"] = shown["served_at"].astype(str).str[:10]
    shown["position"] = shown.groupby("request_id").cumcount()
    flagged = flags[["request_id", "position"]].drop_duplicates().merge(shown, on=["request_id", "position"])
    numerators = flagged.groupby(["day", "source"]).size()
    denominators = shown[shown["day"].isin(set(flagged["day"]))].groupby(["day", "source"]).size()
    rate = (numerators.reindex(denominators.index, fill_value=0) / denominators).unstack(fill_value=0.0)
    return rate.sort_index().round(4)


def rate_plot(rates: pd.DataFrame) -> str:
    if rates.empty:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    for source in rates.columns:
        ax.plot(rates.index, rates[source], marker="o", label=source)
    ax.set_ylabel("flags per suggestion")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def agreement(served: pd.DataFrame, flags: pd.DataFrame, approvals: pd.DataFrame) -> dict:
    """Where two or more reviewers decided on the same list (a flag on it or an approval), the
    share of its suggestions on which they agree (flagged by all or by none), and Cohen's kappa
    over those suggestions for the reviewer pairs."""
    reviewers = pd.concat([flags[["request_id", "reviewer"]], approvals[["request_id", "reviewer"]]])
    seen = reviewers.drop_duplicates().groupby("request_id")["reviewer"].agg(sorted)
    shared = seen[seen.map(len) >= 2]
    sizes = dict(zip(served["request_id"], served["queries"].map(len)))
    pairs = []  # (verdict of reviewer a, verdict of reviewer b) per suggestion
    for request_id, names in shared.items():
        flagged = flags[flags["request_id"] == request_id].groupby("reviewer")["position"].agg(set)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                for pos in range(sizes.get(request_id, 0)):
                    pairs.append((pos in flagged.get(a, set()), pos in flagged.get(b, set())))
    if not pairs:
        return {"lists": int(len(shared)), "suggestions": 0, "agreement": math.nan, "kappa": math.nan}
    a = pd.Series([p[0] for p in pairs])
    b = pd.Series([p[1] for p in pairs])
    observed = float((a == b).mean())
    expected = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    kappa = (observed - expected) / (1 - expected) if expected < 1 else math.nan
    return {"lists": int(len(shared)), "suggestions": len(pairs), "agreement": observed, "kappa": kappa}


def agreement_text(served, flags, approvals) -> str:
    a = agreement(served, flags, approvals)
    if not a["suggestions"]:
        return "No list has been reviewed by two reviewers yet."
    kappa = "n/a (no variation)" if math.isnan(a["kappa"]) else f"{a['kappa']:.2f}"
    return (
        f"{a['lists']} lists seen by two or more reviewers: they agree on {a['agreement']:.0%} of "
        f"{a['suggestions']} suggestion verdicts (Cohen's kappa {kappa})."
    )


def main(cfg: ReviewConfig) -> None:
    import uvicorn

    uvicorn.run(create_app(cfg), host="127.0.0.1", port=cfg.port, log_level="warning")
