"""The shop's attribute dictionary: the colours, flavours, materials, styles, audiences and price
words that items carry and queries name. Public catalogue data: training, serving and the simulated
world read the same words (the world builds its catalogue from them, `world/catalog_spec.py`)."""

COLORS = ("black", "white", "red", "blue", "green", "pink", "grey", "beige", "navy", "brown")
# Grocery has no colours; its "color" attribute holds flavours.
FLAVOURS = ("vanilla", "chocolate", "strawberry", "mint", "lemon", "honey", "spicy", "original")

# domain -> attribute -> values. Every domain shares COLORS.
ATTRIBUTES: dict[str, dict[str, tuple[str, ...]]] = {
    "fashion": {
        "material": ("cotton", "linen", "leather", "denim", "wool", "silk"),
        "style": ("casual", "vintage", "minimalist", "oversized", "floral"),
        "audience": ("women's", "men's", "kids"),
    },
    "beauty": {
        "material": ("organic", "vegan", "fragrance-free", "mineral"),
        "style": ("natural", "long-lasting", "travel size", "luxury"),
        "audience": ("women's", "men's", "teen"),
    },
    "electronics": {
        "material": ("wireless", "bluetooth", "usb-c", "aluminum"),
        "style": ("portable", "gaming", "noise cancelling", "waterproof"),
        "audience": ("kids", "professional"),
    },
    "sports": {
        "material": ("waterproof", "lightweight", "breathable", "insulated"),
        "style": ("ultralight", "pro", "beginner", "compact"),
        "audience": ("women's", "men's", "kids"),
    },
    "baby": {
        "material": ("organic cotton", "bpa-free", "wooden", "silicone"),
        "style": ("educational", "soft", "foldable", "lightweight"),
        "audience": ("newborn", "toddler", "kids"),
    },
    "grocery": {
        "material": ("organic", "gluten-free", "sugar-free", "vegan"),
        "style": ("family size", "single serve", "bulk", "imported"),
        "audience": ("kids", "keto"),
    },
    "pets": {
        "material": ("grain-free", "natural", "durable", "orthopedic"),
        "style": ("small breed", "large breed", "indoor", "senior"),
        "audience": ("puppy", "kitten"),
    },
    "books": {
        "material": ("hardcover", "paperback", "spiral", "refillable"),
        "style": ("illustrated", "bestselling", "classic", "pocket"),
        "audience": ("kids", "teen", "adult"),
    },
    "automotive": {
        "material": ("leather", "silicone", "magnetic", "heavy duty"),
        "style": ("universal", "compact", "premium", "portable"),
        "audience": ("suv", "truck"),
    },
    "home": {
        "material": ("wood", "metal", "velvet", "marble", "rattan", "glass"),
        "style": ("modern", "farmhouse", "mid century", "industrial", "boho"),
        "audience": ("kids", "outdoor"),
    },
}

PRICE_WORDS = {"cheap": 1, "premium": 4, "luxury": 5}
