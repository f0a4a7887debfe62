"""Versioned feature services: the only way consumers ask for features (by name).
Change a service's contents only by adding a new version."""

from feast import FeatureService
from feature_views import direct_candidates, query_stats, session_features, think_mappings, user_interests, user_profile
from on_demand import request_context

USER_CONTEXT = [
    "n_search_7d",
    "n_click_7d",
    "n_events_30d",
    "top_categories_7d",
    "top_category_weights_7d",
    "top_categories_30d",
    "top_category_weights_30d",
    "recent_queries",
    "recent_click_categories",
]

direct_generation_v1 = FeatureService(
    name="direct_generation_v1",
    features=[
        user_profile,
        user_interests[USER_CONTEXT],
        session_features[["session_queries", "session_categories"]],
        request_context,
    ],
    description="User context serialised into the AIGQ-Direct prompt (training and nearline).",
)

ctr_ranking_v1 = FeatureService(
    name="ctr_ranking_v1",
    features=[
        user_profile,
        user_interests[
            [
                "n_search_30d",
                "n_click_30d",
                "n_events_30d",
                "top_categories_30d",
                "top_category_weights_30d",
                "top_categories_7d",
                "top_category_weights_7d",
                "recent_queries",
                "recent_click_categories",
            ]
        ],
        query_stats,
        request_context,
    ],
    description="(user, query) features of the CTR ranker; the request carries query and position.",
)

hintq_online_v1 = FeatureService(
    name="hintq_online_v1",
    features=[
        user_profile,
        user_interests[USER_CONTEXT],
        session_features[["session_queries", "session_categories"]],
        direct_candidates,
        request_context,
    ],
    description="Everything the online HintQ path needs about the user in one lookup.",
)

think_candidates_v1 = FeatureService(
    name="think_candidates_v1",
    features=[think_mappings],
    description="AIGQ-Think queries for a user's triggers (looked up by trigger).",
)

hintq_online_v2 = FeatureService(
    name="hintq_online_v2",
    features=[
        user_profile,
        user_interests[USER_CONTEXT + ["n_search_30d", "n_click_30d"]],
        session_features[["session_queries", "session_categories"]],
        direct_candidates,
        request_context,
    ],
    description="v1 plus the 30-day counts the CTR ranker reads: the online path's one user lookup "
    "carries both the Direct prompt context and the ranker's user features.",
)
