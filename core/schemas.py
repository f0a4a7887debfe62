"""The parquet log schemas: a contract between the simulator, real logs (`aigq ingest`) and
everything downstream. Timestamps are microsecond UTC. Each field carries its description.
"""

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
EVENT_TYPES = ("search", "click", "cart", "purchase")
SEARCH_SOURCES = ("organic", "hintq")


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema(
        [
            _f("user_id", pa.string(), "unique user id"),
            _f("age_band", pa.string(), "age band, e.g. 25-34", True),
            _f("gender", pa.string(), "F, M or U (unknown)", True),
            _f("city_tier", pa.int64(), "1 (largest cities) .. 5", True),
            _f("price_sensitivity", pa.float64(), "0 (insensitive) .. 1 (very sensitive)", True),
            _f("signup_ts", TIMESTAMP, "when the user signed up"),
        ]
    ),
    "categories": pa.schema(
        [
            _f("category_id", pa.string(), "unique leaf category id"),
            _f("category_name", pa.string(), "display name"),
            _f("domain", pa.string(), "top-level domain (fashion, home, ...)"),
        ]
    ),
    "queries": pa.schema(
        [
            _f("query_id", pa.string(), "unique query id"),
            _f("query", pa.string(), "normalised query text (unique)"),
            _f("category_id", pa.string(), "the leaf category the query belongs to"),
            _f("ptype", pa.string(), "product type the query names"),
            _f("n_attributes", pa.int64(), "number of attribute words (0 = bare product type)"),
            _f("source", pa.string(), "synthetic, wands or real"),
        ]
    ),
    "items": pa.schema(
        [
            _f("item_id", pa.string(), "unique item id"),
            _f("title", pa.string(), "item title", True),
            _f("category_id", pa.string(), "leaf category"),
            _f("ptype", pa.string(), "product type", True),
            _f("color", pa.string(), "colour (flavour for grocery)", True),
            _f("material", pa.string(), "material or make", True),
            _f("style", pa.string(), "style", True),
            _f("audience", pa.string(), "intended audience, empty if any", True),
            _f("brand", pa.string(), "brand", True),
            _f("price_tier", pa.int64(), "1 (cheapest) .. 5", True),
            _f("price", pa.float64(), "price", True),
        ]
    ),
    "sessions": pa.schema(
        [
            _f("session_id", pa.int64(), "unique session id"),
            _f("user_id", pa.string(), "user"),
            _f("session_start", TIMESTAMP, "session start (the HintQ impression time)"),
            _f("session_end", TIMESTAMP, "last event of the session"),
            _f("n_searches", pa.int64(), "searches in the session"),
            _f("n_clicks", pa.int64(), "item clicks"),
            _f("n_carts", pa.int64(), "add-to-carts"),
            _f("n_purchases", pa.int64(), "purchases"),
        ]
    ),
    "events": pa.schema(
        [
            _f("event_id", pa.int64(), "unique event id"),
            _f("session_id", pa.int64(), "session"),
            _f("user_id", pa.string(), "user"),
            _f("event_ts", TIMESTAMP, "event time"),
            _f("event_type", pa.string(), "search, click, cart or purchase"),
            _f("query_id", pa.string(), "catalogue id of the (attributed) query, null if unknown", True),
            _f("query", pa.string(), "the search, or for item events the search that led to them"),
            _f("category_id", pa.string(), "category of the item, or of the query for searches", True),
            _f("item_id", pa.string(), "item for click/cart/purchase, null for searches", True),
            _f("search_source", pa.string(), "organic, or hintq when the search was a clicked suggestion"),
        ]
    ),
    "hintq_impressions": pa.schema(
        [
            _f("impression_id", pa.int64(), "one HintQ list shown (one per session start)"),
            _f("session_id", pa.int64(), "session the list opened"),
            _f("user_id", pa.string(), "user"),
            _f("impression_ts", TIMESTAMP, "when the list was shown"),
            _f("position", pa.int64(), "0-based position in the list"),
            _f("query_id", pa.string(), "catalogue id of the suggested query, null if unknown", True),
            _f("query", pa.string(), "suggested query text"),
            _f("category_id", pa.string(), "category of the suggested query", True),
            _f("clicked", pa.bool_(), "whether the user clicked this suggestion"),
            _f("policy", pa.string(), "policy that produced the list (legacy, ...)"),
        ]
    ),
}
LOG_TABLES = tuple(SCHEMAS)
