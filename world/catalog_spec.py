"""Hand-written catalogue structure of the simulated shop (its attribute words are the shop's
dictionary, `core/vocabulary.py`).

Nine synthetic domains (61 leaf categories, each with the product types sold in it) plus the
`home` domain, whose categories are the product classes of the real WANDS queries. Attribute
vocabularies are per domain so that queries read like real ones ("linen midi dress", not
"usb-c midi dress").
"""

# domain -> leaf category -> product types
DOMAINS: dict[str, dict[str, tuple[str, ...]]] = {
    "fashion": {
        "Dresses": ("dress", "maxi dress", "midi dress"),
        "Shirts": ("shirt", "polo shirt", "oxford shirt"),
        "Jeans": ("jeans", "skinny jeans", "wide leg jeans"),
        "Sneakers": ("sneakers", "running shoes", "canvas shoes"),
        "Boots": ("boots", "ankle boots", "chelsea boots"),
        "Handbags": ("handbag", "tote bag", "crossbody bag"),
        "Jackets": ("jacket", "puffer jacket", "raincoat"),
        "Sweaters": ("sweater", "cardigan", "hoodie"),
        "Activewear": ("leggings", "sports bra", "track pants"),
        "Watches": ("watch", "watch strap"),
    },
    "beauty": {
        "Skincare": ("moisturizer", "face serum", "sunscreen"),
        "Makeup": ("lipstick", "foundation", "mascara"),
        "Hair Care": ("shampoo", "conditioner", "hair oil"),
        "Fragrance": ("perfume", "cologne"),
        "Nail Care": ("nail polish", "nail kit"),
        "Grooming": ("beard trimmer", "shaving cream", "razor"),
        "Bath & Body": ("body wash", "body lotion", "bath bomb"),
    },
    "electronics": {
        "Phones": ("smartphone", "phone case", "screen protector"),
        "Laptops": ("laptop", "laptop stand", "laptop sleeve"),
        "Headphones": ("earbuds", "headphones"),
        "Cameras": ("camera", "tripod", "camera lens"),
        "Smart Home": ("smart speaker", "smart plug", "security camera"),
        "Gaming": ("game controller", "gaming mouse", "gaming keyboard"),
        "Tablets": ("tablet", "stylus", "tablet case"),
        "Chargers": ("charger", "power bank", "charging cable"),
    },
    "sports": {
        "Camping": ("tent", "sleeping bag", "camping lantern"),
        "Cycling": ("bike helmet", "bike light", "cycling gloves"),
        "Fitness": ("yoga mat", "dumbbells", "resistance bands"),
        "Running": ("running shorts", "hydration vest", "running socks"),
        "Fishing": ("fishing rod", "tackle box", "fishing reel"),
        "Swimming": ("swimsuit", "swim goggles", "swim cap"),
        "Team Sports": ("soccer ball", "basketball", "shin guards"),
    },
    "baby": {
        "Diapering": ("diapers", "baby wipes", "changing pad"),
        "Strollers": ("stroller", "car seat", "baby carrier"),
        "Toys": ("building blocks", "plush toy", "jigsaw puzzle"),
        "Kids Clothing": ("kids t-shirt", "kids pajamas", "kids jacket"),
        "Feeding": ("baby bottle", "high chair", "sippy cup"),
        "School Supplies": ("school backpack", "lunch box", "pencil case"),
    },
    "grocery": {
        "Coffee & Tea": ("coffee beans", "green tea", "instant coffee"),
        "Snacks": ("potato chips", "granola bar", "mixed nuts"),
        "Beverages": ("sparkling water", "orange juice", "energy drink"),
        "Pantry": ("olive oil", "pasta", "rice"),
        "Breakfast": ("cereal", "oatmeal", "pancake mix"),
        "Candy": ("chocolate", "gummy candy", "mints"),
    },
    "pets": {
        "Dog Food": ("dog food", "dog treats"),
        "Cat Food": ("cat food", "cat treats"),
        "Pet Toys": ("dog toy", "cat toy", "chew toy"),
        "Pet Beds": ("dog bed", "cat bed", "pet blanket"),
        "Litter": ("cat litter", "litter box", "poop bags"),
        "Aquarium": ("fish tank", "aquarium filter", "fish food"),
        "Pet Grooming": ("pet shampoo", "dog brush", "nail clipper"),
    },
    "books": {
        "Fiction": ("novel", "mystery novel", "fantasy book"),
        "Children's Books": ("picture book", "bedtime story book"),
        "Notebooks": ("notebook", "planner", "journal"),
        "Pens": ("gel pen", "fountain pen", "highlighter"),
        "Art Supplies": ("watercolor set", "sketchbook", "acrylic paint"),
        "Office": ("desk organizer", "stapler", "file folder"),
    },
    "automotive": {
        "Car Accessories": ("car phone mount", "seat cover", "steering wheel cover"),
        "Car Care": ("car wax", "microfiber towel", "car shampoo"),
        "Car Tools": ("tire inflator", "jump starter", "tool kit"),
        "Car Electronics": ("dash cam", "car charger", "bluetooth adapter"),
    },
}

BRAND_SYLLABLES = ("ka", "lo", "mi", "ra", "ven", "zo", "tel", "na", "qui", "bor", "sen", "dra")

# Soft affinities of profile groups to domains (multiplied into the prior used to draw a
# user's interests): they make cold-start users partly predictable from their profile.
GENDER_DOMAIN_AFFINITY = {
    "F": {"fashion": 1.6, "beauty": 2.2, "baby": 1.3, "automotive": 0.5},
    "M": {"electronics": 1.6, "sports": 1.5, "automotive": 1.8, "beauty": 0.5},
    "U": {},
}
AGE_DOMAIN_AFFINITY = {
    "18-24": {"fashion": 1.4, "electronics": 1.4, "baby": 0.3, "home": 0.6},
    "25-34": {"baby": 1.6, "home": 1.2},
    "35-44": {"baby": 1.4, "home": 1.5, "books": 1.1},
    "45-54": {"home": 1.5, "grocery": 1.3, "pets": 1.2},
    "55-64": {"grocery": 1.4, "books": 1.4, "baby": 0.4},
    "65+": {"books": 1.6, "grocery": 1.5, "fashion": 0.6, "baby": 0.3},
}
AGE_BANDS = tuple(AGE_DOMAIN_AFFINITY)
GENDERS = ("F", "M", "U")
