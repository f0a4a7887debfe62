"""Feature views. Batch views are daily snapshots stamped at the end of the day they describe;
TTLs bound how stale a row may be in a point-in-time join."""

from datetime import timedelta

from data_sources import (
    direct_candidates_push,
    query_stats_source,
    session_events_push,
    think_mappings_push,
    user_interests_source,
    user_profile_source,
)
from entities import query, trigger, user
from feast import FeatureView, Field
from feast.types import Array, Float32, Float64, Int64, String

WINDOWS = (1, 7, 30)
EVENT_TYPES = ("search", "click", "cart", "purchase")

user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    ttl=timedelta(days=3650),
    source=user_profile_source,
    schema=[
        Field(name="age_band", dtype=String),
        Field(name="gender", dtype=String),
        Field(name="city_tier", dtype=Int64),
        Field(name="price_sensitivity", dtype=Float64),
    ],
    description="Static profile, valid from sign-up.",
)

user_interests = FeatureView(
    name="user_interests",
    entities=[user],
    ttl=timedelta(days=2),
    source=user_interests_source,
    schema=[Field(name=f"n_{t}_{w}d", dtype=Int64) for w in WINDOWS for t in EVENT_TYPES]
    + [Field(name="n_events_30d", dtype=Int64)]
    + [
        f
        for w in WINDOWS
        for f in (
            Field(
                name=f"top_categories_{w}d",
                dtype=Array(String),
                description=f"top categories by engagement over {w} day(s), strongest first",
            ),
            Field(
                name=f"top_category_weights_{w}d",
                dtype=Array(Float32),
                description="share of the window's engagement of each top category",
            ),
        )
    ]
    + [
        Field(name="recent_queries", dtype=Array(String), description="last searches, most recent first"),
        Field(name="recent_click_categories", dtype=Array(String), description="categories of the last item clicks"),
    ],
    description="Interests over 1/7/30-day windows (engagement: search 1, click 1, cart 3, purchase 5).",
)

query_stats = FeatureView(
    name="query_stats",
    entities=[query],
    ttl=timedelta(days=2),
    source=query_stats_source,
    schema=[
        Field(name="query_category_id", dtype=String),
        Field(name="query_domain", dtype=String),
        Field(name="q_n_search_7d", dtype=Int64),
        Field(name="q_n_search_30d", dtype=Int64),
        Field(name="q_search_share_30d", dtype=Float32),
        Field(name="q_impressions_30d", dtype=Int64),
        Field(name="q_clicks_30d", dtype=Int64),
        Field(name="q_ctr_30d", dtype=Float32),
        Field(
            name="q_coec_30d",
            dtype=Float32,
            description="clicks over the clicks expected at the positions shown (position-debiased CTR)",
        ),
    ],
    description="Query popularity and HintQ click-through (smoothed) over trailing windows.",
)

session_features = FeatureView(
    name="session_features",
    entities=[user],
    ttl=timedelta(minutes=30),
    source=session_events_push,
    schema=[
        Field(name="session_id", dtype=Int64),
        Field(name="session_queries", dtype=Array(String), description="last searches of the session"),
        Field(name="session_categories", dtype=Array(String), description="categories of its last events"),
        Field(name="session_event_count", dtype=Int64),
    ],
    description="The current session so far, fed by push (one row per event offline).",
)

direct_candidates = FeatureView(
    name="direct_candidates",
    entities=[user],
    ttl=timedelta(days=2),
    source=direct_candidates_push,
    schema=[Field(name="direct_queries", dtype=Array(String)), Field(name="direct_model_version", dtype=String)],
    description="AIGQ-Direct lists generated nearline, pushed per user.",
)

think_mappings = FeatureView(
    name="think_mappings",
    entities=[trigger],
    ttl=timedelta(days=30),
    source=think_mappings_push,
    schema=[
        Field(name="think_queries", dtype=Array(String)),
        Field(name="think_rationale", dtype=String),
        Field(name="think_model_version", dtype=String),
    ],
    description="AIGQ-Think trigger-to-queries mappings, with the rationale kept for audit.",
)
