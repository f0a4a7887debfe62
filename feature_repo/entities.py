"""Entities: who or what a feature row is about."""

from feast import Entity, ValueType

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="A shopper on the site.")
query = Entity(
    name="query",
    join_keys=["query"],
    value_type=ValueType.STRING,
    description="A normalised query text (generated queries are looked up by text).",
)
trigger = Entity(
    name="trigger",
    join_keys=["trigger"],
    value_type=ValueType.STRING,
    description="What an AIGQ-Think mapping starts from: 'q:<query>' or 'c:<category_id>'.",
)
