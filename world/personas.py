"""Hand-written shopper structure of world v2: personas and lifestyle archetypes.

A persona is a life context shared by many shoppers (new parent, camper, home decorator, ...):
the categories it buys in, across domains, and how likely each profile group is to have it. A
user has one or two personas; most of their interests, their hidden interests and the second
intent of a session come from them, so the categories of one persona are engaged together
across users. An archetype is a taste that carries across domains (a minimalist likes white,
grey, aluminium and compact things whether buying a lamp or a phone case); each user is a
mixture of archetypes. See `world_v2.yaml` for the numbers and why they were chosen.

Categories are named as in `catalog_spec.DOMAINS`; the home domain's WANDS product classes are
matched by keyword (any keyword contained in the class name, case-insensitive).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Persona:
    name: str
    categories: tuple[str, ...]  # leaf category names (first ones are its core)
    home_keywords: tuple[str, ...] = ()  # WANDS classes whose name contains one of these
    age: dict[str, float] = field(default_factory=dict)  # profile multipliers (default 1)
    gender: dict[str, float] = field(default_factory=dict)
    city_tier: dict[int, float] = field(default_factory=dict)
    audience: tuple[str, ...] = ()  # audience words this persona's members like ("kids", "puppy")


# hand-written tables: one entry a line reads better than the formatter's layout
# fmt: off
YOUNG = {"18-24": 2.5, "25-34": 1.6, "45-54": 0.5, "55-64": 0.3, "65+": 0.2}
OLDER = {"18-24": 0.3, "25-34": 0.6, "45-54": 1.8, "55-64": 2.2, "65+": 2.2}
BIG_CITY = {1: 1.8, 2: 1.4, 4: 0.7, 5: 0.5}
SMALL_TOWN = {1: 0.5, 2: 0.8, 4: 1.5, 5: 1.8}

PERSONAS: tuple[Persona, ...] = (
    Persona("new_parent", ("Diapering", "Strollers", "Feeding", "Toys", "Kids Clothing", "Children's Books",
                           "Skincare"),
            ("Crib", "Kids", "Playhouse", "Ride-On", "Swing Set"),
            age={"18-24": 0.5, "25-34": 4.0, "35-44": 2.2, "45-54": 0.4, "55-64": 0.15, "65+": 0.1},
            gender={"F": 1.4}, audience=("kids", "newborn", "toddler")),
    Persona("school_family", ("School Supplies", "Kids Clothing", "Toys", "Snacks", "Children's Books", "Pens"),
            ("Kids Desks", "Kids Chairs", "Memo Boards"),
            age={"18-24": 0.2, "25-34": 0.8, "35-44": 3.0, "45-54": 2.0, "55-64": 0.4, "65+": 0.2},
            audience=("kids", "teen")),
    Persona("camper", ("Camping", "Fishing", "Cycling", "Chargers", "Car Tools", "Snacks"),
            ("Picnic", "Bike And Sport", "Log Storage", "Weather"),
            gender={"M": 1.7, "F": 0.7}, city_tier=SMALL_TOWN, audience=("outdoor",)),
    Persona("fitness", ("Fitness", "Running", "Activewear", "Sneakers", "Beverages", "Headphones", "Swimming"),
            ("Free Weights",), age=YOUNG, city_tier={1: 1.4, 2: 1.2}, audience=("keto",)),
    Persona("team_sports", ("Team Sports", "Sneakers", "Activewear", "Beverages", "Swimming"),
            (), age={"18-24": 2.0, "25-34": 1.2, "55-64": 0.4, "65+": 0.2}, gender={"M": 1.6}),
    Persona("gamer", ("Gaming", "Headphones", "Laptops", "Beverages", "Snacks", "Chargers"),
            ("Office Chairs", "Computer Mounts", "Desks"),
            age={"18-24": 4.0, "25-34": 1.8, "35-44": 0.7, "45-54": 0.3, "55-64": 0.1, "65+": 0.05},
            gender={"M": 2.5, "F": 0.5}),
    Persona("tech_enthusiast", ("Phones", "Laptops", "Headphones", "Cameras", "Smart Home", "Tablets", "Chargers"),
            ("Projector", "Smoke & CO"), age=YOUNG, gender={"M": 1.8, "F": 0.7}, city_tier=BIG_CITY,
            audience=("professional",)),
    Persona("home_decorator", ("Bath & Body",),
            ("Accent", "Rug", "Candle", "Decorative", "Faux", "Picture Frames", "Mirror", "Wall Art", "Wall Décor",
             "Vases", "Wall Clocks", "Table Lamps", "Sofas", "Sectionals", "Coffee & Cocktail", "Ottomans",
             "Living Room", "Chandeliers", "Pendant", "Curtain", "Wallpaper", "Sofa & Console", "End Tables",
             "Wall Sconces", "Chaise", "Recliners"),
            age={"18-24": 0.4, "35-44": 1.8, "45-54": 2.0, "55-64": 1.4}, gender={"F": 1.8, "M": 0.6},
            city_tier={1: 1.3, 2: 1.2}),
    Persona("home_cook", ("Pantry", "Coffee & Tea", "Breakfast"),
            ("Kitchen", "Cookware", "Cooking", "Bread", "Canisters", "Crock Pots", "Dining", "Flatware", "Glassware",
             "Plates", "Serving", "Strainers", "Espresso", "Food Storage", "Refrigerators", "Range Hoods"),
            age={"18-24": 0.4, "35-44": 1.5, "45-54": 1.8, "55-64": 1.8, "65+": 1.3}, gender={"F": 1.3}),
    Persona("gardener", (),
            ("Patio", "Outdoor", "Garden", "Planters", "Pergolas", "Awnings", "Fencing", "Fountains", "Landscape",
             "Lawn", "Deck", "Mailboxes", "String Lights", "Bird", "Uniters"),
            age=OLDER, city_tier=SMALL_TOWN, audience=("outdoor",)),
    Persona("homeowner_fixer", ("Car Tools", "Smart Home"),
            ("Faucet", "Sink", "Door", "Tile", "Molding", "Knobs", "Pulls", "Barn Door", "Dryers", "Washing",
             "Vanities", "Vanity Bases", "Shower", "Tubs", "Light Bulbs", "Ceiling Fans", "Toilet Paper",
             "Towel & Robe", "Wall Plates", "Under Cabinet", "Flush Mount", "Saunas"),
            age={"18-24": 0.2, "25-34": 1.6, "35-44": 1.8, "45-54": 1.3}, gender={"M": 1.5},
            city_tier={3: 1.3, 4: 1.3}),
    Persona("sleeper", ("Pet Beds",),
            ("Bed", "Mattress", "Headboards", "Nightstands", "Dressers", "Sheets", "Armoires", "Daybeds",
             "Jewelry Armoires"),
            age={"25-34": 1.4, "35-44": 1.2}),
    Persona("organizer", ("Office",),
            ("Storage", "Closet", "Shoe Storage", "Hampers", "Boxes, Bins", "Shelving", "Laundry", "Trash Cans",
             "Coat Racks", "Bookcases", "Wall Mounted Shelves", "Carts & Stands", "Pantry Cabinets"),
            gender={"F": 1.3}, age={"25-34": 1.3, "35-44": 1.3, "45-54": 1.2}),
    Persona("remote_worker", ("Office", "Notebooks", "Pens", "Laptops", "Tablets", "Coffee & Tea", "Headphones"),
            ("Desks", "Office Chairs", "Office Storage", "Chairmats", "Computer Mounts", "Memo Boards", "Lecterns"),
            age={"18-24": 1.2, "25-34": 2.0, "35-44": 1.6, "55-64": 0.4, "65+": 0.2}, city_tier=BIG_CITY,
            audience=("professional",)),
    Persona("beauty_lover", ("Skincare", "Makeup", "Hair Care", "Fragrance", "Nail Care", "Bath & Body"),
            ("Makeup Vanities", "Vanity Lighting"),
            age={"18-24": 1.8, "25-34": 1.8, "35-44": 1.2, "55-64": 0.6, "65+": 0.4},
            gender={"F": 3.5, "M": 0.25}, city_tier={1: 1.3, 2: 1.2}),
    Persona("fashionista", ("Dresses", "Handbags", "Boots", "Sweaters", "Jackets", "Jeans", "Watches", "Fragrance"),
            ("Jewelry", "Shoe Storage"),
            age=YOUNG, gender={"F": 2.6, "M": 0.5}, city_tier=BIG_CITY),
    Persona("menswear", ("Shirts", "Jeans", "Sneakers", "Watches", "Jackets", "Grooming", "Fragrance"),
            (), age={"18-24": 1.5, "25-34": 1.5, "65+": 0.5}, gender={"M": 3.0, "F": 0.2}),
    Persona("dog_owner", ("Dog Food", "Pet Toys", "Pet Beds", "Pet Grooming", "Litter"),
            ("Dog and Cat Bowls", "Pet Gates", "Door Mats"),
            age={"25-34": 1.2, "35-44": 1.2, "45-54": 1.2}, city_tier={3: 1.2, 4: 1.4, 5: 1.4},
            audience=("puppy", "small breed", "large breed")),
    Persona("cat_owner", ("Cat Food", "Litter", "Pet Toys", "Pet Beds", "Aquarium"),
            ("Dog and Cat Bowls",), gender={"F": 1.4}, city_tier={1: 1.3, 2: 1.2},
            audience=("kitten", "indoor")),
    Persona("car_enthusiast", ("Car Accessories", "Car Care", "Car Tools", "Car Electronics", "Cameras"),
            (), gender={"M": 3.0, "F": 0.35}, city_tier=SMALL_TOWN, age={"18-24": 1.3, "25-34": 1.3, "65+": 0.4},
            audience=("suv", "truck")),
    Persona("bookworm", ("Fiction", "Notebooks", "Coffee & Tea", "Pens", "Art Supplies"),
            ("Bookcases", "Table Lamps", "Lecterns"),
            age={"18-24": 1.2, "55-64": 1.8, "65+": 2.4}, gender={"F": 1.3}, audience=("adult",)),
    Persona("artist", ("Art Supplies", "Notebooks", "Pens", "Tablets", "Cameras"),
            ("Wall Art", "Picture Frames"), age=YOUNG, city_tier=BIG_CITY),
    Persona("snacker", ("Snacks", "Candy", "Beverages", "Coffee & Tea", "Breakfast"),
            ("Glassware", "Bars & Bar Sets"), age={"18-24": 1.5}),
    Persona("host", ("Candy", "Beverages", "Coffee & Tea"),
            ("Christmas", "Wreaths", "String Lights", "Candle", "Dining Linens", "Serving", "Glassware", "Bars",
             "Bar Stools", "Decorative Trays", "Lawn Games"),
            age={"35-44": 1.4, "45-54": 1.6, "55-64": 1.5}, gender={"F": 1.3}),
    Persona("traveller", ("Handbags", "Chargers", "Headphones", "Swimming", "Cameras", "Skincare", "Phones"),
            ("Covers & Carry Bags",), age={"25-34": 1.5, "35-44": 1.2}, city_tier=BIG_CITY),
    Persona("senior_home", ("Grooming", "Breakfast", "Fiction"),
            ("Massage Chairs", "Recliners", "Adjustable Beds", "Bath Accessories", "Bath Rugs"),
            age={"18-24": 0.05, "25-34": 0.1, "35-44": 0.3, "45-54": 0.8, "55-64": 2.5, "65+": 5.0}),
)
# fmt: on


@dataclass(frozen=True)
class Archetype:
    name: str
    likes: tuple[str, ...]  # attribute words (colours, materials, styles, price words) this taste favours
    dislikes: tuple[str, ...] = ()


# fmt: off
ARCHETYPES: tuple[Archetype, ...] = (
    Archetype("minimalist", ("white", "grey", "black", "minimalist", "modern", "compact", "aluminum", "glass",
                             "metal", "pocket", "universal", "portable", "fragrance-free", "original"),
              ("floral", "boho", "oversized", "farmhouse", "illustrated")),
    Archetype("natural", ("beige", "green", "brown", "organic", "organic cotton", "linen", "cotton", "wooden",
                          "wood", "natural", "vegan", "rattan", "grain-free", "gluten-free", "sugar-free", "boho",
                          "honey", "mint"),
              ("usb-c", "gaming", "heavy duty", "energy")),
    Archetype("luxe", ("navy", "black", "leather", "silk", "wool", "velvet", "marble", "luxury", "premium",
                       "classic", "hardcover", "long-lasting", "mid century", "chocolate"),
              ("cheap", "bulk", "family size", "paperback")),
    Archetype("sporty_tech", ("blue", "black", "red", "wireless", "bluetooth", "usb-c", "waterproof", "breathable",
                              "lightweight", "ultralight", "pro", "gaming", "noise cancelling", "insulated",
                              "heavy duty", "magnetic"),
              ("floral", "vintage", "velvet", "silk")),
    Archetype("playful", ("red", "pink", "floral", "boho", "illustrated", "educational", "soft", "oversized",
                          "strawberry", "chocolate", "vanilla", "silicone", "casual"),
              ("minimalist", "industrial", "professional")),
    Archetype("heritage", ("brown", "beige", "navy", "vintage", "farmhouse", "classic", "industrial", "wood",
                           "denim", "leather", "rattan", "wool", "original", "hardcover"),
              ("usb-c", "neon", "oversized")),
    Archetype("thrifty", ("cheap", "bulk", "family size", "universal", "durable", "paperback", "original",
                          "grey", "black"),
              ("luxury", "premium", "silk", "marble", "velvet")),
)
# fmt: on
