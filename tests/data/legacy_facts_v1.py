"""Facts the user states about themselves, found by rules: precise on purpose, since a wrong fact is worse than none.

`extract("My daughter is Maya. What should we cook?")` -> ["User's daughter is Maya."]
Facts are kept in the third person ("User is allergic to peanuts") so that, recalled into a
system prompt, a small model reads them as being about the user, not as its own words.
"""

from __future__ import annotations

import re

_SENTENCES = re.compile(r"(?<=[.!;])\s+|\n+")
# A sentence that asks, supposes or quotes is not the user telling us about themselves.
_NOT_A_STATEMENT = re.compile(
    r"^(?:if|when|whether|what|who|how|why|where|which|can|could|would|should|do|does|did|is|are|suppose|"
    r"imagine|pretend|let's|lets|say|write|translate|summari[sz]e|explain|tell)\b|"
    r"\b(?:pretend|imagine|suppose|hypothetical|role-?play|character|story|poem|for example|wrote|said|says)\b",
    re.I,
)
_REMEMBER = re.compile(r"^(?:please\s+)?(?:remember|note|keep in mind)(?:\s+that)?[,:]?\s+(?P<rest>.+)$", re.I)
# "my X is Y", with conversational nouns ("my question is") left out.
_MY = re.compile(
    r"^my\s+(?P<subject>[a-z][\w'-]*(?:\s+[a-z][\w'-]*){0,2})\s+(?P<verb>is|are|lives|works|was born)\s+(?P<value>.+)$",
    re.I,
)
_CHATTY = {
    "question",
    "questions",
    "problem",
    "issue",
    "point",
    "guess",
    "answer",
    "code",
    "error",
    "bad",
    "pleasure",
    "turn",
    "mistake",
    "request",
    "prompt",
    "message",
    "output",
    "result",
    "task",
    "thought",
    "thoughts",
    "concern",
    "idea",
    "understanding",
    "bet",
    "apologies",
    "head",
    "brain",
    "mind",
    "computer",
    "phone",
    "internet",
    "connection",
}
_I_AM = re.compile(
    r"^i(?:'m|\s+am)\s+(?P<value>(?:allergic|intolerant)\s+to\s+.+|[a-z]+\s+intolerant\b.*|(?:a\s+)?(?:vegetarian|vegan|diabetic|"
    r"pescatarian|celiac|coeliac|colou?r-?blind|left-handed|right-handed|deaf|blind)\b.*|"
    r"from\s+[A-Z].+|\d{1,3}\s+years?\s+old.*|married.*|divorced|single|retired|pregnant.*|"
    r"(?:a|an)\s+(?!bit\b|little\b|lot\b|big\b|huge\b|total\b|complete\b|fan\b|beginner\b|newbie\b)"
    r"[a-z-]+(?:\s+[a-z-]+){0,2})$",
    re.I,
)
_I_VERB = re.compile(
    r"^i\s+(?P<verb>live|work|was born|have|prefer|speak|own|drive|use|don't eat|do not eat|can't eat|cannot eat|"
    r"don't drink|do not drink|teach|study)\s+(?P<value>.+)$",
    re.I,
)
_VERB_3RD = {
    "live": "lives",
    "work": "works",
    "was born": "was born",
    "have": "has",
    "prefer": "prefers",
    "speak": "speaks",
    "own": "owns",
    "drive": "drives",
    "use": "uses",
    "don't eat": "doesn't eat",
    "do not eat": "does not eat",
    "can't eat": "can't eat",
    "cannot eat": "cannot eat",
    "don't drink": "doesn't drink",
    "do not drink": "does not drink",
    "teach": "teaches",
    "study": "studies",
}
# "I have a question", "I use this code", "I live for ..." are not facts about the user.
_WEAK_OBJECT = re.compile(
    r"^(?:a\s+(?:question|problem|doubt|bug|error|few|quick|feeling|headache|idea)|some|no|this|that|these|those|it|"
    r"your|the\s+(?:same|following|answer|code)|to\b|been\b|for\b|on\s+(?:it|this|that))",
    re.I,
)
MAX_FACT_CHARS = 300


def _third_person(text: str) -> str:
    """The rest of a sentence seen from outside: 'my' -> 'their', 'I' -> 'they'."""
    text = re.sub(r"\bmy\b", "their", text, flags=re.I)
    text = re.sub(r"\bI'm\b", "they're", text)
    text = re.sub(r"\bI\b", "they", text)
    return re.sub(r"\bme\b", "them", text, flags=re.I)


def _finish(text: str) -> str:
    text = text.strip().rstrip(".!;,")
    return text[:1].upper() + text[1:] + "."


def statement(sentence: str) -> str | None:
    """One first-person statement as a third-person fact, or None when it is not one we are sure of."""
    s = sentence.strip().strip("\"'“”").strip()
    if not s or s.endswith("?") or len(s) > MAX_FACT_CHARS:
        return None
    s = s.rstrip(".!;")
    if m := _MY.match(s):
        subject = m["subject"].lower()
        if subject in _CHATTY:  # "my code is ..." is chat; "my locker code is ..." is a fact
            return None
        return _finish(f"User's {subject} {m['verb'].lower()} {_third_person(m['value'])}")
    if m := _I_AM.match(s):
        return _finish(f"User is {_third_person(m['value'])}")
    if m := _I_VERB.match(s):
        if _WEAK_OBJECT.match(m["value"]):
            return None
        return _finish(f"User {_VERB_3RD[m['verb'].lower()]} {_third_person(m['value'])}")
    if m := re.match(r"^(?i:please\s+)?(?i:call me)\s+(?P<name>[A-Z][\w-]+)$", s):
        return _finish(f"User's name is {m['name']}")
    return None


def _free(text: str) -> str:
    """Words the user asked us to remember that no rule recognised: 'I take my coffee black' -> 'User takes
    their coffee black'. Only the subject is rewritten; anything else stays the user's words."""
    if m := re.match(r"^my\s+(.+)$", text, re.I):
        return _finish(f"User's {_third_person(m[1])}")
    if m := re.match(r"^i\s+([a-z]+)\b(.*)$", text, re.I):
        verb = m[1].lower()
        if re.search(r"(?:s|sh|ch|x|z|o)$", verb):
            verb += "es"
        elif re.search(r"[^aeiou]y$", verb):
            verb = verb[:-1] + "ies"
        elif verb not in ("can", "will", "must", "should", "may", "might", "could", "would"):
            verb += "s"
        return _finish(f"User {verb}{_third_person(m[2])}")
    return _finish(_third_person(text))


def explicit(text: str) -> str:
    """What to keep from an explicit "/remember ..." or "remember that ...": a statement in the third person if
    it is one, else the user's words as they are."""
    text = text.strip()
    if m := _REMEMBER.match(text):
        text = m["rest"]
    text = re.sub(r"^that\s+", "", text, flags=re.I)
    return statement(text) or _free(text)


def extract(text: str) -> list[str]:
    """Facts stated in a user's message (rules only; see tests/data/facts_labelled.jsonl for how precise)."""
    found: list[str] = []
    for sentence in _SENTENCES.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if m := _REMEMBER.match(sentence):
            rest = m["rest"].rstrip("?")
            if sentence.endswith("?"):  # "do you remember ...?" / "remember when ...?" ask, they don't tell
                continue
            found.append(statement(rest) or _free(re.sub(r"^that\s+", "", rest, flags=re.I)))
            continue
        if _NOT_A_STATEMENT.search(sentence):
            continue
        fact = statement(sentence)
        if fact:
            found.append(fact)
    return list(dict.fromkeys(found))


def slot(fact: str) -> tuple[str, str] | None:
    """What a fact says and of what kind ("User's server", "place") in "User's server is at home.lan": a new
    fact in the same slot replaces the old one (a correction), while "User's daughter is 7 years old" does
    not replace "User's daughter is Maya" (another thing about her). None: no slot we are sure of."""
    m = re.match(r"^(User's [\w' -]+?) (?:is|are) (.+?)\.?$", fact)
    if not m:
        return None
    value = m[2]
    if re.match(r"^\d+\s+(?:years?|months?)\s+old\b", value):
        shape = "age"
    elif re.match(r"^(?:at|in|on|near)\s", value):
        shape = "place"
    elif re.match(r"^(?:called|named)\s", value) or re.fullmatch(r"[A-Z][\w-]*(?: [A-Z][\w-]*)?", value):
        shape = "name"
    elif re.fullmatch(r"[\w.@:/+-]*\d[\w.@:/+-]*|[\w.-]+@[\w.-]+|[\w-]+(?:\.[\w-]+)+", value):
        shape = "code"  # numbers, addresses, hostnames
    else:
        return None
    return m[1].lower(), shape


def normalized(fact: str) -> str:
    return re.sub(r"[^\w]+", " ", fact.lower()).strip()


def as_user(question: str) -> str:
    """A question in the words facts are kept in: "what's my husband's name?" -> "what's User's husband's name?",
    so that the sentence encoder compares like with like ("User's husband is called Tom.")."""
    text = re.sub(r"\bmy\b", "User's", question, flags=re.I)
    text = re.sub(r"\b(?:I'm|I am)\b", "User is", text)
    text = re.sub(r"\bI\b", "User", text)
    return re.sub(r"\bme\b", "User", text, flags=re.I)
