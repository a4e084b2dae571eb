"""Acts and topics, partitioned into a training part and a held-out part (evaluation only).

For a verb x object group the held-out part is every act whose verb OR object is held out, so evaluation
contains unseen objects with seen verbs, seen objects with unseen verbs, and both unseen. Free acts,
topics and groups of people are held out by item. All orders are list-based (never set iteration), so
the partition is a pure function of the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from testbed import lexicon_benign as B
from testbed import lexicon_harm as H
from testbed import skills as S

HELD = 0.25  # share of verbs / objects / free acts / topics / people groups kept for evaluation
UNSPLIT_SKILLS = ("arithmetic", "rewrite")  # fresh numbers / sentences suffice; eval prompts are deduplicated


@dataclass
class Part:
    """One side (train or held-out) of the vocabulary: acts and topics by category, skill items."""

    acts: dict[str, list[str]] = field(default_factory=dict)
    topics: dict[str, list[str]] = field(default_factory=dict)
    skills: dict[str, list] = field(default_factory=dict)


def split(items: list, rng: random.Random, held: float = HELD) -> tuple[list, list]:
    items = list(items)
    rng.shuffle(items)
    k = max(1, round(len(items) * held)) if len(items) > 1 else 0
    return items[k:], items[:k]


def _fill(obj: str, people: list[str]) -> list[str]:
    return [obj.format(g=g) for g in people] if "{g}" in obj else [obj]


def _group_acts(
    groups: list[H.Group], rng: random.Random, people: tuple[list[str], list[str]]
) -> tuple[list[str], list[str]]:
    train, held = [], []
    p_train, p_held = people
    for verbs, objects in groups:
        v_tr, v_ho = split(verbs, rng)
        o_tr, o_ho = split(objects, rng)
        for v in verbs:
            for o in objects:
                if v in v_tr and o in o_tr:  # seen verb and object: only unseen people groups are held out
                    train += [f"{v} {x}" for x in _fill(o, p_train)]
                    held += [f"{v} {x}" for x in _fill(o, p_held)] if "{g}" in o else []
                else:
                    held += [f"{v} {x}" for x in _fill(o, p_train + p_held)]
    return train, held


def _acts(
    groups: dict[str, list[H.Group]],
    free: dict[str, list[str]],
    rng: random.Random,
    people: tuple[list[str], list[str]],
) -> tuple[dict, dict]:
    train: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    for cat in sorted(set(groups) | set(free)):
        g_tr, g_ho = _group_acts(groups.get(cat, []), rng, people)
        f_tr, f_ho = split([a for f in free.get(cat, []) for a in _fill(f, people[0])], rng)
        train[cat], held[cat] = g_tr + f_tr, g_ho + f_ho
    return train, held


def partition(rng: random.Random) -> dict[str, Part]:
    """{"harm_train", "harm_held", "benign_train", "benign_held"}."""
    people = split(H.GROUPS_OF_PEOPLE, rng)
    h_tr, h_ho = _acts(H.HARM_GROUPS, H.HARM_FREE, rng, people)
    benign_free = {**B.BENIGN_FREE, "contrastive": B.CONTRASTIVE, "people": B.BENIGN_GROUP_ACTS}
    b_tr, b_ho = _acts(B.BENIGN_GROUPS, benign_free, rng, (H.GROUPS_OF_PEOPLE, H.GROUPS_OF_PEOPLE))
    ht_tr, ht_ho = {}, {}
    for cat in sorted(H.TOPICS):
        ht_tr[cat], ht_ho[cat] = split(H.TOPICS[cat], rng)
    bt_tr, bt_ho = split(B.BENIGN_TOPICS, rng)
    sk_tr, sk_ho = {}, {}
    for name in sorted(S.SKILLS):
        items = S.SKILLS[name][1]
        sk_tr[name], sk_ho[name] = (list(items), list(items)) if name in UNSPLIT_SKILLS else split(items, rng)
    return {
        "harm_train": Part(h_tr, ht_tr),
        "harm_held": Part(h_ho, ht_ho),
        "benign_train": Part(b_tr, {"topic": bt_tr}, sk_tr),
        "benign_held": Part(b_ho, {"topic": bt_ho}, sk_ho),
    }


IRREGULAR_ING = {
    "get": "getting",
    "put": "putting",
    "run": "running",
    "cut": "cutting",
    "stop": "stopping",
    "plan": "planning",
    "shop": "shopping",
    "kidnap": "kidnapping",
    "swim": "swimming",
    "drop": "dropping",
    "hit": "hitting",
    "set": "setting",
    "dig": "digging",
    "tie": "tying",
    "die": "dying",
    "lie": "lying",
    "see": "seeing",
    "free": "freeing",
    "flee": "fleeing",
    "chop": "chopping",
    "trap": "trapping",
    "spot": "spotting",
    "skim": "skimming",
    "knit": "knitting",
    "commit": "committing",
    "rob": "robbing",
    "stab": "stabbing",
    "debug": "debugging",
    "quit": "quitting",
    "scam": "scamming",
    "grab": "grabbing",
    "traffic": "trafficking",
}
ADVERBS = ("secretly", "quietly", "quickly")


def gerund(act: str) -> str:
    """'make a cake' -> 'making a cake' (first word only; small rule set + exceptions)."""
    verb, _, rest = act.partition(" ")
    low = verb.lower()
    if low in ADVERBS:
        return f"{low} {gerund(rest)}"
    if low in IRREGULAR_ING:
        ing = IRREGULAR_ING[low]
    elif not low.isalpha():
        return act  # "3D print ..." has no verb first; leave as is (callers skip gerund shapes for these)
    elif low.endswith("ie"):
        ing = low[:-2] + "ying"
    elif low.endswith("e") and not low.endswith(("ee", "ye", "oe")):
        ing = low[:-1] + "ing"
    else:
        ing = low + "ing"
    return f"{ing} {rest}".strip()
