"""Request-time context, computed identically offline and online (python mode: ~0.3 ms/call).

Feast stores the transformation's source and runs it without this module's globals: everything
it needs (imports, constants) lives inside the function."""

from feast import Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64
from feature_views import user_interests

request = RequestSource(name="request", schema=[Field(name="request_hour", dtype=Int64)])


@on_demand_feature_view(
    sources=[user_interests[["n_events_30d", "top_category_weights_30d"]], request],
    schema=[
        Field(name="hour_of_day", dtype=Int64),
        Field(name="is_cold_start", dtype=Int64),
        Field(name="interest_entropy", dtype=Float64),
    ],
    mode="python",
)
def request_context(inputs: dict) -> dict:
    import math

    cold_start_events = 5  # fewer engagement events in 30 days: a cold-start user

    def entropy(weights) -> float:
        ws = [float(w) for w in (weights if weights is not None else []) if w is not None and w > 0]
        total = sum(ws)
        return -sum(w / total * math.log(w / total) for w in ws) if total > 0 else 0.0

    return {
        "hour_of_day": [int(h) % 24 if h is not None else 0 for h in inputs["request_hour"]],
        "is_cold_start": [int((n or 0) < cold_start_events) for n in inputs["n_events_30d"]],
        "interest_entropy": [entropy(w) for w in inputs["top_category_weights_30d"]],
    }
