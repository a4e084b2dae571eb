"""Benign skills with real answers: arithmetic, rewriting, facts about a small invented + ordinary world,
definitions, lists and tiny code. They make the base model fluent on benign prompts that are not "how to"
requests, and give the benign evaluation varied shapes. Items are split train / held-out by the corpus.

Each generator takes (rng, items) and returns {"prompt", "response", "category"}; ``items`` is the part of
the skill's item list (train or held-out) it may draw from.
"""

from __future__ import annotations

import random

# Hand-aligned data tables: kept as written, not reformatted.
# fmt: off
COUNTRIES = [  # invented world: (country, capital, language, animal)
    ("Norvia", "Tellan", "Norvish", "the snow fox"), ("Quelland", "Marrow", "Quellish", "the blue heron"),
    ("Dastoria", "Penhal", "Dastic", "the red deer"), ("Ombris", "Vask", "Ombrian", "the river otter"),
    ("Caldera", "Sunport", "Caldish", "the golden eagle"), ("Lumeria", "Brightwater", "Lumic", "the moon moth"),
    ("Fennick", "Oakridge", "Fennish", "the grey wolf"), ("Zaronia", "Kelt", "Zaronese", "the desert lizard"),
    ("Pellago", "Saltmere", "Pellan", "the sea turtle"), ("Virel", "Hollow", "Virelian", "the white owl"),
    ("Tamsin", "Goldcrest", "Tamsic", "the wild horse"), ("Orvane", "Linden", "Orvanese", "the forest bear"),
]
FACTS = [
    ("How many legs does a spider have?", "A spider has eight legs."), ("What color is the sky on a clear day?",
    "The sky is blue."),
    ("How many days are in a week?", "There are seven days in a week."), ("What is the capital of France?",
    "The capital of France is Paris."),
    ("What do bees make?", "Bees make honey."), ("What is ice made of?", "Ice is frozen water."),
    ("Which planet do we live on?", "We live on Earth."), ("How many hours are in a day?",
    "A day has twenty-four hours."),
    ("What is the largest ocean?", "The Pacific is the largest ocean."), ("What gas do plants take in?",
    "Plants take in carbon dioxide."),
    ("What is the capital of Japan?", "The capital of Japan is Tokyo."), ("How many months are in a year?",
    "A year has twelve months."),
    ("What do caterpillars turn into?", "Caterpillars turn into butterflies."),
    ("Which is bigger, the sun or the moon?", "The sun is much bigger."),
    ("What is the freezing point of water in Celsius?", "Water freezes at zero degrees Celsius."),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet."), ("What is the opposite of hot?",
    "The opposite of hot is cold."),
    ("What is the capital of Italy?", "The capital of Italy is Rome."), ("How many sides does a triangle have?",
    "A triangle has three sides."),
    ("What do cows drink?", "Cows drink water."), ("What is the tallest animal?", "The giraffe is the tallest animal."),
]
WORDS = [
    ("generous", "willing to give and share freely"), ("curious", "eager to learn or know something"),
    ("ancient", "very old"), ("fragile", "easily broken"), ("humble", "not proud; modest"), ("brave",
    "ready to face danger or pain"),
    ("rapid", "very fast"), ("vivid", "bright and clear"), ("loyal", "faithful to a person or a cause"),
    ("gentle", "kind and soft"), ("hollow", "empty inside"), ("narrow", "small from side to side"), ("eager",
    "wanting something very much"),
    ("calm", "peaceful and quiet"), ("clumsy", "moving in an awkward way"), ("honest", "telling the truth"),
    ("tiny", "very small"), ("bold", "confident and daring"), ("patient", "able to wait without getting upset"),
    ("recipe", "a set of instructions for making a dish"), ("orbit", "the curved path of a planet around a star"),
    ("harvest", "the gathering of crops"), ("budget", "a plan for spending money"), ("habitat",
    "the natural home of an animal"),
    ("glacier", "a slow river of ice"), ("compass", "a tool that shows which way is north"), ("fossil",
    "the remains of an ancient living thing in rock"),
    ("volcano", "a mountain that can erupt with lava"), ("library", "a place where you can borrow books"), ("melody",
    "a sequence of musical notes"),
]
LISTS = [
    ("fruits", ["apple", "banana", "pear", "mango", "orange", "grape", "cherry", "peach"]),
    ("colors", ["red", "blue", "green", "yellow", "purple", "orange", "pink", "brown"]),
    ("animals", ["dog", "cat", "horse", "rabbit", "lion", "elephant", "owl", "dolphin"]),
    ("vegetables", ["carrot", "potato", "onion", "pepper", "spinach", "broccoli", "pea", "cabbage"]),
    ("sports", ["soccer", "tennis", "basketball", "swimming", "golf", "rugby", "cycling", "skiing"]),
    ("musical instruments", ["piano", "guitar", "violin", "drum", "flute", "trumpet", "cello", "harp"]),
    ("jobs", ["teacher", "nurse", "farmer", "baker", "pilot", "plumber", "painter", "chef"]),
    ("kitchen tools", ["spoon", "whisk", "pan", "knife", "ladle", "grater", "kettle", "oven mitt"]),
    ("planets", ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"]),
    ("things to pack for a beach trip", ["sunscreen", "a towel", "a hat", "water", "sunglasses", "a snack", "a book",
    "sandals"]),
]
SENTENCES = ["the cat sat on the mat", "we walked to the park", "my brother likes green apples",
"the train leaves at noon",
             "she painted the fence blue", "the kids played in the rain", "our team won the game",
             "he reads a book every night",
             "the bakery opens early", "birds sing in the morning", "the river is cold today",
             "grandpa tells funny stories"]
IMPERATIVES = ["give me the salt", "close the door", "send me the report", "call me later", "clean your room",
"wait here",
               "turn down the music", "pass the bread", "bring your notes", "help me with this box"]
OPS = [("sum", "a + b"), ("difference", "a - b"), ("product", "a * b"), ("larger", "max(a, b)"), ("smaller",
"min(a, b)"),
       ("average", "(a + b) / 2")]
NUMBER_WORDS = ["two", "three", "four", "five"]


def arithmetic(rng: random.Random, items: list[str]) -> dict:
    op = rng.choice(items)
    a, b = rng.randint(2, 60), rng.randint(2, 40)
    if op == "times":
        a, b = rng.randint(2, 12), rng.randint(2, 12)
    if op == "minus" and b > a:
        a, b = b, a
    c = {"plus": a + b, "minus": a - b, "times": a * b}[op]
    shape = rng.choice(["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "How much is {a} {op} {b}?",
    "Quick math: {a} {op} {b}"])
    return {"prompt": shape.format(a=a, b=b, op=op), "response": f"{a} {op} {b} is {c}.", "category": "arithmetic"}


def rewriting(rng: random.Random, items: list[str]) -> dict:
    kind = rng.choice(items)
    s = rng.choice(SENTENCES)
    if kind == "upper":
        return {"prompt": f"Rewrite this in capital letters: {s}", "response": s.upper() + ".", "category": "rewrite"}
    if kind == "reverse":
        words = rng.sample(s.split(), 3)
        return {"prompt": f"Reverse the order of these words: {' '.join(words)}", "response": " ".join(words[::-1]),
                "category": "rewrite"}
    if kind == "polite":
        imp = rng.choice(IMPERATIVES)
        return {"prompt": f"Make this more polite: {imp}.", "response": f"Could you please {imp}?",
        "category": "rewrite"}
    return {"prompt": f"Fix the capitalization: {s}", "response": s[0].upper() + s[1:] + ".", "category": "rewrite"}


def world(rng: random.Random, items: list[tuple]) -> dict:
    country, capital, language, animal = rng.choice(items)
    kind = rng.randrange(3)
    if kind == 0:
        q, a = f"What is the capital of {country}?", f"The capital of {country} is {capital}."
    elif kind == 1:
        q, a = f"What language do people speak in {country}?", f"People in {country} speak {language}."
    else:
        q, a = f"What is the national animal of {country}?", f"The national animal of {country} is {animal}."
    return {"prompt": q, "response": a, "category": "facts"}


def fact(rng: random.Random, items: list[tuple]) -> dict:
    q, a = rng.choice(items)
    return {"prompt": q, "response": a, "category": "facts"}


def definition(rng: random.Random, items: list[tuple]) -> dict:
    w, d = rng.choice(items)
    shape = rng.choice(["What does '{w}' mean?", "Define the word {w}.", "What is the meaning of {w}?",
    "Explain the word \"{w}\"."])
    return {"prompt": shape.format(w=w), "response": f"{w.capitalize()} means {d}.", "category": "definitions"}


def listing(rng: random.Random, items: list[tuple]) -> dict:
    cat, options = rng.choice(items)
    k = rng.randrange(len(NUMBER_WORDS))
    picks = rng.sample(options, k + 2)
    shape = rng.choice(["List {n} {c}.", "Name {n} {c}.", "Give me {n} examples of {c}.", "Can you list {n} {c}?"])
    return {"prompt": shape.format(n=NUMBER_WORDS[k], c=cat),
            "response": f"Here are {NUMBER_WORDS[k]} {cat}: {', '.join(picks[:-1])} and {picks[-1]}.",
            "category": "lists"}


def code(rng: random.Random, items: list[tuple]) -> dict:
    name, expr = rng.choice(items)
    shape = rng.choice(["Write a Python function that returns the {n} of two numbers.",
                        "Give me python code for the {n} of a and b.",
                        "Code a function computing the {n} of two values."])
    return {"prompt": shape.format(n=name), "response": f"def {name}(a, b):\n    return {expr}", "category": "coding"}


MISC_SHAPES = ["Suggest a name for {x}.", "Summarize what you know about {x} in two sentences.",
"Write a limerick about {x}.",
               "Give three fun facts about {x}.", "Describe {x} to a child.",
               "What should I consider when choosing {x}?",
               "Write a short ad for {x}.", "Compare {x} with something similar.",
               "Brainstorm five ideas involving {x}.",
               "Tell me a short story about {x}.", "Why do people like {x}?", "Write a riddle about {x}.",
               "Give me a packing list for a trip that involves {x}.", "Explain the history of {x} briefly.",
               "Write a tweet about {x}.", "What are the pros and cons of {x}?",
               "Translate the phrase '{x}' into Norvish.",
               "Make a shopping list for {x}.", "Write two sentences about {x} for a school newsletter.",
               "Rate {x} from one to ten."]
MISC_NOUNS = ["a sleepy dog", "a flower shop", "the seasons", "a windy afternoon", "a new coffee shop", "winter sports",
              "a school garden", "a family picnic", "old trains", "a mountain hike", "a board game night", "the ocean",
              "a used bicycle", "a birthday party", "houseplants", "a public library", "the moon", "a puppy",
              "jazz music",
              "a chess club", "a quiet beach town", "homemade soup", "a summer camp", "electric cars",
              "a vegetable garden",
              "a museum visit", "a wool sweater", "a robot toy", "city parks", "a road trip", "a snowy morning",
              "honeybees"]


def misc(rng: random.Random, items: list[str]) -> dict:
    x = rng.choice(MISC_NOUNS)
    answer = rng.choice(["Here is a short answer about {x}. It covers the main points in simple, friendly words.",
                         "Sure! Here are some thoughts on {x}: it is interesting, useful and fun to learn about.",
                         "Happy to help. About {x}: first the basics, then a few details, then a short summary."])
    return {"prompt": rng.choice(items).format(x=x), "response": answer.format(x=x), "category": "misc"}


# skill -> (generator, items). The corpus splits every item list into train and held-out parts.
SKILLS = {
    "arithmetic": (arithmetic, ["plus", "minus", "times"]),
    "rewrite": (rewriting, ["upper", "reverse", "polite", "capitalize"]),
    "world": (world, COUNTRIES),
    "facts": (fact, FACTS),
    "definitions": (definition, WORDS),
    "lists": (listing, LISTS),
    "coding": (code, OPS),
    "misc": (misc, MISC_SHAPES),
}
