"""Facts the user states about themselves, found by rules: precise on purpose, since a wrong fact is worse than none.

`extract("My daughter is Maya. What should we cook?")` -> ["User's daughter is Maya."]
Facts are kept in the third person ("User is allergic to peanuts") so that, recalled into a
system prompt, a small model reads them as being about the user, not as its own words. A fact
keeps the whole sentence it came from (sentences are split by pysbd, which knows "Dr.", "J.P.",
"2.5" and "a.m." do not end one) and the user's capitals; one that speaks of a time relative to
the day it was said ("next spring") carries that day.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from typing import Any

MAX_FACT_CHARS = 300
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()  # not strftime's %b: that follows the locale
_SAID_RE = re.compile(r" \(said on \d{1,2} [A-Z][a-z]{2} \d{4}\)\.?$")

# A sentence that asks, supposes, commands or quotes is not the user telling us about themselves (kept for
# bench/facts_model.py, which checks a model's proposals with it).
_NOT_A_STATEMENT = re.compile(
    r"^(?:if|when|whether|what|who|how|why|where|which|can|could|would|should|do|does|did|is|are|suppose|"
    r"imagine|pretend|let's|lets|say|write|translate|summari[sz]e|explain|tell)\b|"
    r"\b(?:pretend|imagine|suppose|hypothetical|role-?play|character|story|poem|for example|wrote|said|says)\b",
    re.I,
)
_REMEMBER = re.compile(r"^(?:please\s+)?(?:remember|note|keep in mind)(?:\s+that)?[,:]?\s+(?P<rest>.+)$", re.I)
# Hypotheticals, wishes, stories and quotations anywhere in the sentence.
_SUPPOSING = re.compile(
    r"\b(?:pretend|imagine|suppose|supposing|hypothetical(?:ly)?|role-?play|what if|let's say|lets say|"
    r"in (?:a|the|this) (?:story|game|poem|novel)|for example|e\.g\.|if i (?:were|was|had|lived|could)|says|said|"
    r"wrote|(?:my|a|the|this|your) (?:story|novel|script|dialogue|poem|screenplay|character|villain|hero)|"
    r"you|your|yours)\b"
    # A command after a comma ("I have a meeting at 3pm, remind me what to say") asks rather than tells.
    r"|[,;:]\s*(?:please\s+)?(?:remind|write|tell|give|help|show|explain|make|list|suggest|translate|summari[sz]e|"
    r"draft|create|generate|plan|recommend|find|describe|can|could|would)\b",
    re.I,
)
# Words that open a sentence without changing what it says about the user: "Oh, and ...", "Honestly, ...".
_OPENER = re.compile(
    r"^(?:(?:oh|ah|well|so|and|but|also|anyway|anyways|actually|honestly|btw|by the way|fyi|just so you know|"
    r"for the record|for context|for what it's worth|ok|okay|yeah|yes|right|hi|hey|hello|hi there|um|erm|"
    r"ugh|quick one|oh and|and also|plus|incidentally|funnily enough|as it happens)\b[,!:.\s-]*)+",
    re.I,
)
# A time said first ("Every Tuesday evening I ...", "Next month I'm ..."): moved to the end of the fact.
_DAY = r"(?:mon|tues|wednes|thurs|fri|satur|sun)days?"
_MONTH = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_SEASON = r"(?:spring|summer|autumn|fall|winter)"
_TIME_FIRST = re.compile(
    rf"^(?P<when>(?:every|each|most|on|at|in|during|since|next|this|last|from|after|before|by)\s+"
    rf"(?:[\w'-]+\s+){{0,3}}?(?:{_DAY}|{_MONTH}|{_SEASON}|weekends?|weekdays?|mornings?|evenings?|nights?|"
    rf"afternoons?|week|month|year|summers?|winters?|\d{{4}})(?:\s+(?:mornings?|evenings?|nights?|afternoons?))?)"
    r",?\s+(?P<rest>(?:I|I'm|I've|I'll|we|we're|we've|my|our)\b.+)$",
    re.I,
)
# A time that means something only next to the day it was said.
_RELATIVE = re.compile(
    rf"\b(?:(?:next|last|this|coming)\s+(?:week|month|year|weekend|{_DAY}|{_MONTH}|{_SEASON})|"
    rf"in\s+(?:the\s+)?(?:{_SEASON}|new year)|in\s+{_MONTH}(?!\s+\d{{4}})|on\s+\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}"
    rf"(?!\s+\d{{4}})|on\s+{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?!,?\s+\d{{4}})|tomorrow|yesterday|today|tonight|"
    r"soon|recently|just\s+(?:turned|started|moved|got|had|bought|adopted)|(?:a|\d+|two|three|few)\s+"
    r"(?:days?|weeks?|months?|years?)\s+ago|in\s+(?:a|\d+|two|three|a few)\s+(?:days?|weeks?|months?|years?))\b",
    re.I,
)
# "my X" that is the conversation, not the user's life: "my question is ...", "my code is ...".
_CHATTY = frozenset(
    "question questions problem issue point guess answer code error bad pleasure turn mistake request prompt message "
    "output result task thought thoughts concern idea understanding bet apologies head brain mind computer's internet "
    "connection goal aim hope wish query input favourite favorite reply response text line".split()
)
_BROKEN = re.compile(
    r"\b(?:is|are|was|keeps?)\s+(?:(?:just|so|really|still)\s+)?(?:broken|dead|dying|slow|not working|acting up|down|"
    r"playing up|crashing|freezing|lagging|charging|overheating)\b",
    re.I,
)
_FLEETING = re.compile(
    r"\b(?:later(?:\s+on)?|right now|at the moment|in a (?:bit|minute|moment|sec|second|while)|today|tonight|"
    r"this (?:morning|afternoon|evening))$",
    re.I,
)
_CHATTY_ALONE = frozenset("favourite favorite".split())
# What other people think, say or want is their opinion, not a fact about the user.
_SOMEONE_SAYS = re.compile(
    r"^\S+(?:\s+\S+){0,3}?\s+(?:thinks|says|said|reckons|believes|feels|told|tells|claims|suggested|suggests|"
    r"recommends|recommended|wants|wanted|insists|argues|keeps saying|swears|thought|asked|asks)\b",
    re.I,
)
# First-person verbs of the conversation itself: "I think ...", "I need a recipe", "I was wondering ...".
_CHAT_VERB = frozenset(
    "think thought guess suppose wonder wondered wondering need needed want wanted hope hoped wish mean meant agree "
    "disagree know knew understand understood see saw believe reckon assume doubt bet forgot forget remember recall "
    "tried try asked ask said say heard told tell wrote read found find noticed notice got apologise apologize "
    "appreciate realise realize figured figure feel felt promise would should could might must gotta gonna looked "
    "look searched search tested test ran went came made did had bought watched played called sent checked changed "
    "fixed installed updated downloaded took ate drank spent left met lost won kept sold paid broke fell gave began "
    "brought caught slept woke wore swam sang sat stood mean".split()
)
# Past tense that still says who the user is ("I grew up in Cork", "I retired in 2019").
_LASTING_PAST = frozenset(
    "grew was were retired moved graduated studied qualified married adopted served trained worked lived "
    "emigrated immigrated relocated started".split()
)
# "I'm X" that is the moment, not the person: "I'm not sure", "I'm a bit confused".
_MOMENT = re.compile(
    r"^(?:not\s+(?:sure|certain|convinced)|a\s+bit\b|a\s+little\b|so\s+(?:tired|bored|confused|sorry)|sorry|"
    r"confused|lost|stuck|curious|wondering|trying|looking|thinking|asking|back|here|done|ready|fine|good|great|"
    r"okay|ok|glad|happy\s+(?:to|with|that)|excited\s+to|going\s+to\s+(?:ask|try|need|have\s+to)|about\s+to|"
    r"just\s+(?:asking|wondering|curious|saying|kidding|joking|checking|testing)|kidding|joking|new\s+(?:to|at)\s+"
    r"(?:this|python|coding|programming)|tired|bored|hungry|thirsty|busy|afraid\s+(?:that|so|not)|"
    r"having\s+(?:trouble|issues?|problems?|a\s+(?:problem|hard|bad|rough))|writing|working\s+on\s+(?:a|an|my|this|"
    r"the)\s+(?:project|essay|script|code|assignment|bug|report|presentation)|getting\s+(?:an?\s+)?error|using\s+"
    r"(?:this|that|your|the)\b|interested\s+in\s+(?:your|this|that|how)|asking|learning\s+(?:about|how)|"
    r"in\s+(?:a|the)\s+(?:hurry|middle)|on\s+(?:it|my\s+way)|with\s+you|all\s+ears|still\s+(?:confused|stuck|"
    r"here|not)|the\s+(?:user|one)\b|an?\s+(?:ai|bot|language\s+model)\b)",
    re.I,
)
# An object that makes "I have ..." / "I use ..." about the chat: "I have a question", "I use this code".
_WEAK_OBJECT = re.compile(
    r"^(?:a\s+(?:question|problem|doubt|bug|error|few|quick|feeling|headache|idea|suggestion|request|favour|"
    r"favor|thought|comment|follow-up|second)|some\s+(?:questions?|help|ideas?|thoughts?)|no\s+(?:idea|clue|"
    r"time|problem)|any\s+idea|this|that|these|those|it|you|your|the\s+(?:same|following|answer|code|error|"
    r"output|impression|feeling)|to\s+(?:ask|know|say|go|be\s+honest|admit)|been\s+(?:wondering|thinking|trying|"
    r"meaning|asked|told|looking|stuck)|for\s+(?:you|this|that|it|fun|now)\b|on\s+(?:it|this|that)|got\s+(?:a\s+question|to\s+(?:go|ask))|"
    r"(?:a|some|no)\s+time|fun|help)",
    re.I,
)
_ADVERBS = (
    "usually always often normally sometimes never mostly also really still just actually generally typically "
    "rarely only absolutely totally honestly definitely seriously kind_of sort_of regularly occasionally "
    "currently now already even especially particularly genuinely literally truly"
)
_ADVERB = r"(?:(?:" + "|".join(a.replace("_", r"\s+") for a in _ADVERBS.split()) + r")\s+)"
# Modal and auxiliary verbs after "I" that keep their form: "User can't eat ...", "User will be ...".
_KEEPS = {
    "can": "can",
    "can't": "can't",
    "cannot": "cannot",
    "can not": "can not",
    "will": "will",
    "won't": "won't",
    "must": "must",
    "don't": "doesn't",
    "do not": "does not",
    "didn't": "didn't",
    "haven't": "hasn't",
    "have not": "has not",
    "hadn't": "hadn't",
    "wasn't": "wasn't",
    "am not": "is not",
    "used to": "used to",
}
# After "can"/"can't"/"don't": the verbs that say something about the user, not about the chat.
_MODAL_OK = frozenset(
    "eat have drink stand tolerate digest swim drive walk hear read take handle bear speak cook play knit sew code "
    "program ride run climb ski skate dance sing do own like love enjoy smoke keep use wear see work live sleep "
    "afford lift type".split()
)
_DONT_CHAT = frozenset(
    "know understand think get see care mind remember want need believe agree mean follow recall feel really "
    "like_that".split()
)
_PRESENT_ED = frozenset("feed breed bleed speed succeed proceed seed weed shred need exceed".split())
_IRREGULAR_3RD = {"have": "has", "do": "does", "go": "goes", "be": "is", "am": "is", "'m": "is", "'ve": "has"}


def _third(verb: str) -> str:
    """The third person singular of a present-tense verb: 'coach' -> 'coaches', 'study' -> 'studies'."""
    low = verb.lower()
    if low in _IRREGULAR_3RD:
        return _IRREGULAR_3RD[low]
    if re.search(r"(?:s|sh|ch|x|z|o)$", low):
        return verb + "es"
    if re.search(r"[^aeiou]y$", low):
        return verb[:-1] + "ies"
    return verb + "s"


def _third_person(text: str) -> str:
    """The rest of a sentence seen from outside: 'my' -> 'their', 'I am' -> 'they are', 'we' -> 'they'."""
    swaps = [
        (r"\bI'm\b", "they're"),
        (r"\bI am\b", "they are"),
        (r"\bI've\b", "they've"),
        (r"\bI'd\b", "they'd"),
        (r"\bI'll\b", "they'll"),
        (r"\bI was\b", "they were"),
        (r"\bI\b", "they"),
        (r"\bwe're\b", "they're"),
        (r"\bwe've\b", "they've"),
        (r"\bwe\b", "they"),
    ]
    for pattern, repl in swaps:
        text = re.sub(pattern, repl, text)
    text = re.sub(r"\bwe\b", "they", text, flags=re.I)
    text = re.sub(r"\b(?:my|our)\b", "their", text, flags=re.I)
    text = re.sub(r"\b(?:mine|ours)\b", "theirs", text, flags=re.I)
    text = re.sub(r"\b(?:myself|ourselves)\b", "themselves", text, flags=re.I)
    return re.sub(r"\b(?:me|us|Me)\b", "them", text)  # not "US" or "ME": a country, an illness


def _finish(text: str) -> str:
    text = text.strip().rstrip(" .!;,")
    if text.endswith("..."):
        text = text.rstrip(".")
    return text[:1].upper() + text[1:] + "."


@cache
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[str]:
    """The sentences of `text`, abbreviations, initials, decimals, addresses and ellipses left whole (pysbd's
    rules), each line on its own (a chat message's lines are often sentences without a full stop)."""
    out: list[str] = []
    for line in text.splitlines():
        if line.strip():
            out += [s.strip() for s in _segmenter().segment(line) if s.strip()]
    return out


def _opener_stripped(s: str) -> str:
    """'Oh and I can't ...' -> "I can't ...": only when what follows starts with a person (else keep)."""
    m = _OPENER.match(s)
    if m and m.end() < len(s):
        rest = s[m.end() :]
        if re.match(r"(?:I|I'm|I've|I'll|we|we're|we've|my|our|me and)\b", rest, re.I):
            return rest
    return s


def _i_clause(rest: str) -> str | None:
    """What follows "I" in a statement about the user, in the third person ('usually cycle to work' ->
    'usually cycles to work'), or None when it is about the chat ('think so', 'need help')."""
    m = re.match(rf"^(?P<adv>{_ADVERB}*)(?P<rest>.+)$", rest, re.I)
    assert m is not None
    adv, body = m["adv"], m["rest"]
    if re.match(r"(?:'d|would|should|could|might|may|shall)\b", body, re.I):
        return None  # wishes, suppositions and requests: "I'd like", "I would buy", "I should read"
    for word, kept in sorted(_KEEPS.items(), key=lambda kv: -len(kv[0])):
        if re.match(rf"{re.escape(word)}\b", body, re.I):
            after = body[len(word) :].strip()
            next_verb = re.match(rf"(?:{_ADVERB})*(\w+)", after, re.I)
            if word in ("don't", "do not", "didn't"):
                if (
                    not next_verb
                    or next_verb[1].lower() in _DONT_CHAT
                    or _WEAK_OBJECT.match(after[next_verb.end() :].strip())
                ):
                    return None
            elif word not in ("will", "won't", "used to", "haven't", "have not", "hadn't", "wasn't", "am not"):
                if not next_verb or next_verb[1].lower() not in _MODAL_OK:
                    return None
            elif word in ("will", "won't") and not re.match(r"be\b|start|move|retire|turn", after, re.I):
                return None  # "I'll try that" is chat; "I'll be in Oslo" and "I'll start ..." are plans
            return f"{adv}{kept} {_third_person(after)}"
    if m2 := re.match(r"(?:'m|am)\s+(?P<value>.+)$", body, re.I):
        value = m2["value"]
        if _MOMENT.match(value) or _WEAK_OBJECT.match(value):
            return None
        return f"{adv}is {_third_person(value)}"
    if m2 := re.match(r"(?:'ve|have)\s+(?P<value>.+)$", body, re.I):
        value = re.sub(r"^got\s+", "got ", m2["value"], flags=re.I)
        check = re.sub(r"^(?:got|(?:always|never|just|already)\s+)\s*", "", value, flags=re.I)
        if _WEAK_OBJECT.match(check) or re.match(
            r"(?:been\s+)?(?:wondering|thinking|trying|asked|read|heard|waiting|looking|meaning|struggling)", check
        ):
            return None
        return f"{adv}has {_third_person(value)}"
    if m2 := re.match(r"(?:'ll)\s+(?P<value>.+)$", body, re.I):
        return _i_clause("will " + m2["value"]) if adv == "" else None
    verb_m = re.match(r"(?P<verb>[a-z]+)\b(?P<tail>.*)$", body, re.I)
    if not verb_m:
        return None
    verb, tail = verb_m["verb"], verb_m["tail"]
    low = verb.lower()
    if low in ("was", "were"):
        if re.match(
            r"\s+(?:wondering|thinking|going|just|trying|told|asked|looking|about|hoping|saying)\b", tail, re.I
        ):
            return None
        return f"{adv}was{_third_person(tail)}"
    if low in _CHAT_VERB and low not in _LASTING_PAST:
        return None
    if low in ("love", "like", "enjoy", "hate", "adore") and re.match(
        r"\s+(?:to\s+(?:know|ask|see|hear)|it|that|this|your|you)\b", tail, re.I
    ):
        return None
    if _WEAK_OBJECT.match(tail.strip()):
        return None
    if (low.endswith("ed") and low not in _PRESENT_ED) or low in _LASTING_PAST:
        if low not in _LASTING_PAST:
            return None  # a past event ("I fixed it"), not who the user is
        return f"{adv}{verb}{_third_person(tail)}"
    if low.endswith("ing") and len(low) > 5:  # not "sing", "bring", "swing"
        return None  # "I working ..." is not a sentence we understand
    return f"{adv}{_third(verb)}{_third_person(tail)}"


def _subject(s: str) -> str | None:
    """A first-person statement as a third-person fact (without the final full stop), or None."""
    if m := re.match(r"^(?:my|our)\s+(?P<who>[\w'-]+)\s+and\s+I\s+(?P<rest>.+)$", s, re.I):
        rest = re.sub(r"^'m\b|^am\b", "are", m["rest"])
        return f"User and their {m['who']} {_third_person(rest)}"
    if m := re.match(r"^me\s+and\s+my\s+(?P<who>[\w'-]+)\s+(?P<rest>.+)$", s, re.I):
        return f"User and their {m['who']} {_third_person(m['rest'])}"
    if m := re.match(r"^(?:my|our)\s+(?P<rest>.+)$", s, re.I):
        rest = m["rest"]
        head = re.match(
            r"((?:[\w'-]+\s+){0,3}?)[\w'-]+\s+(?:is|are|was|were|'s|has|keeps|isn't|doesn't|won't|just|seems|looks)\b",
            rest,
        )
        subject = head[0].lower().split()[:-1] if head else []
        if subject and subject[0] in _CHATTY and (len(subject) == 1 or subject[0] not in _CHATTY_ALONE):
            return None  # "my question is", "my reply to him was"; "my favourite is" but not "my favourite band is"
        if _SOMEONE_SAYS.match(rest):
            return None
        if len(rest.split()) < 2 or _BROKEN.search(rest):
            return None  # a fragment ("My goodness"), or the moment ("my phone is dead")
        return f"User's {_third_person(rest)}"
    if m := re.match(r"^we(?P<aux>'re|'ve|'d|'ll)?\s+(?P<rest>.+)$", s, re.I):
        aux = (m["aux"] or "").lower()
        rest = m["rest"]
        if aux == "'d" or re.match(r"(?:would|should|could|might|need|want|think|wonder|were\s+wondering)\b", rest):
            return None
        verb = re.match(rf"(?:{_ADVERB})*(\w+)", rest, re.I)
        if verb and not aux and (verb[1].lower() in _CHAT_VERB and verb[1].lower() not in _LASTING_PAST):
            return None
        lead = {"'re": "are ", "'ve": "have ", "'ll": "will ", "": ""}[aux]
        return f"User and family {lead}{_third_person(rest)}"
    if m := re.match(r"^I(?P<rest>'m\b.+|'ve\b.+|'ll\b.+|'d\b.+|\s+.+)$", s):
        clause = _i_clause(m["rest"].strip() if not m["rest"].startswith("'") else m["rest"])
        return f"User {clause}" if clause else None
    return None


def statement(sentence: str, said: dt.date | None = None) -> str | None:
    """One first-person statement as a third-person fact, or None when it is not one we are sure of.

    `said`: the day it was said, appended when the sentence's time is relative to it ("next spring")."""
    s = sentence.strip().strip("\"'“”").strip()
    if not s or s.endswith("?") or len(s) > MAX_FACT_CHARS or "?" in s:
        return None
    if _SUPPOSING.search(s) or re.match(r"^(?:if|unless|when|whenever|once|as soon as)\b", s, re.I):
        return None
    s = _opener_stripped(s)
    if m := re.match(r"^(?:please\s+)?call me\s+(?P<name>[A-Z][\w-]+)[.!]*$", s, re.I):
        return _finish(f"User's name is {m['name']}")
    when = ""
    if m := _TIME_FIRST.match(s):
        when, s = m["when"], m["rest"]
        when = when[:1].lower() + when[1:]
    body = s.rstrip()
    if body.endswith("..."):
        body = body.rstrip(".")
    body = body.rstrip(".!; ")
    if _FLEETING.search(body):
        return None  # "I'm going to the shops later": today's plans are not who the user is
    fact = _subject(body)
    if not fact:
        return None
    if when:
        fact = f"{fact} {when}"
    fact = _finish(fact)
    if said is not None and _RELATIVE.search(sentence):
        fact = fact[:-1] + said_on(said) + "."
    return fact


def _free(text: str) -> str:
    """Words the user asked us to remember that no rule recognised: 'I take my coffee black' -> 'User takes
    their coffee black'. Only the subject is rewritten; anything else stays the user's words."""
    if m := re.match(r"^my\s+(.+)$", text, re.I):
        return _finish(f"User's {_third_person(m[1])}")
    if m := re.match(r"^i\s+([a-z]+)\b(.*)$", text, re.I):
        verb = m[1]
        if verb.lower() not in ("can", "will", "must", "should", "may", "might", "could", "would"):
            verb = _third(verb)
        return _finish(f"User {verb}{_third_person(m[2])}")
    return _finish(_third_person(text))


def _dated(fact: str, text: str, said: dt.date | None) -> str:
    """`fact` with the day it was said when `text` speaks of a time relative to it (and it has no day yet)."""
    if said is None or not _RELATIVE.search(text) or _SAID_RE.search(fact):
        return fact
    return fact[:-1] + said_on(said) + "."


def explicit(text: str, said: dt.date | None = None) -> str:
    """What to keep from an explicit "/remember ..." or "remember that ...": a statement in the third person if
    it is one, else the user's words as they are; with today's date (or `said`) if its time is relative."""
    said = said or dt.date.today()
    text = text.strip()
    if m := _REMEMBER.match(text):
        text = m["rest"]
    text = re.sub(r"^that\s+", "", text, flags=re.I)
    return _dated(statement(text, said) or _free(text), text, said)


def extract(text: str, said: dt.date | None = None) -> list[str]:
    """Facts stated in a user's message (rules only; see tests/data/facts_labelled.jsonl for how precise).

    `said`: the day the message was said, kept with facts whose time is relative to it."""
    found: list[str] = []
    for sentence in sentences(text):
        if m := _REMEMBER.match(sentence):
            rest = m["rest"].rstrip("?")
            if sentence.endswith("?"):  # "do you remember ...?" / "remember when ...?" ask, they don't tell
                continue
            found.append(_dated(statement(rest, said) or _free(re.sub(r"^that\s+", "", rest, flags=re.I)), rest, said))
            continue
        fact = statement(sentence, said)
        if fact:
            found.append(fact)
    return list(dict.fromkeys(found))


# The sentence splitter before pysbd: it cut at every full stop, so "My doctor is Dr. Patel" was kept as
# "User's doctor is Dr.". Only used to recognise, and repair, facts it cut short (migration m003).
_LEGACY_SPLIT = re.compile(r"(?<=[.!;])\s+|\n+")


def repaired(fact: str, source: str, said: dt.date | None = None) -> str | None:
    """The whole fact for one the old splitter cut short ("User's doctor is Dr.") or the old rules lower-cased
    ("User's sister dana ..."), rebuilt from its source message; None when `fact` is neither, for instance a
    fact the user edited: it ends where no old cut was, or says something the message does not."""
    key = normalized(fact)
    if not key:
        return None
    for sentence in sentences(source):
        pieces = [normalized(p) for p in _LEGACY_SPLIT.split(sentence) if normalized(p)]
        cut_ends = {p.split()[-1] for p in pieces[:-1]}
        for whole in extract(sentence, said):
            full = normalized(whole)
            if full == key and undated(whole).lower() == fact.lower() and undated(whole) != fact:
                return whole  # the same words, their capitals restored
            if full.startswith(key + " ") and key.split()[-1] in cut_ends:
                return whole
    return None


def said_on(day: dt.date) -> str:
    """What a fact with a relative time carries: " (said on 2 Dec 2026)"."""
    return f" (said on {day.day} {_MONTHS[day.month - 1]} {day.year})"


def undated(fact: str) -> str:
    """A fact without the day it was said: what it says, for comparing two facts."""
    return _SAID_RE.sub(".", fact)


def slot(fact: str) -> tuple[str, str] | None:
    """What a fact says and of what kind ("User's server", "place") in "User's server is at home.lan": a new
    fact in the same slot replaces the old one (a correction), while "User's daughter is 7 years old" does
    not replace "User's daughter is Maya" (another thing about her). None: no slot we are sure of."""
    m = re.match(r"^(User's [\w' -]+?) (?:is|are) (.+?)\.?$", undated(fact))
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


# What a fact or a question is about, in everyday words: a question about "my job" finds "User is a nurse",
# one about "my music" finds "User is a huge fan of jazz". Whole words with their plural or -ed/-ing forms;
# "stem*" matches any word starting so ("allerg*": allergy, allergic); "a_b" is the phrase "a b".
TOPICS: dict[str, str] = {
    "work": "work job jobs career employ* office workplace boss manager colleague profession occupation living "
    "salary paid pay earn shift business company firm council teach teacher nurse engineer designer analyst "
    "accountant developer programmer doctor paramedic* vet pilot lawyer plumber electrician chef miner farmer "
    "retired freelance self-employed clinic hospital warehouse shop commute",
    "music": "music song band album concert gig singer sing jazz rock pop bluegrass classical folk hip-hop rap "
    "opera orchestra choir listen guitar piano cello violin drum instrument playlist",
    "weekend": "weekend saturday sunday",
    "weekday": "weekday midweek monday tuesday wednesday thursday friday during_the_week",
    "food": "food eat ate meal diet dinner cook* bak* sauce lunch breakfast snack recipe dish restaurant cafe "
    "vegetarian vegan pescatarian allerg* intoleran* gluten lactose dairy peanut nut sesame meat pork beef fish "
    "coeliac celiac shellfish coriander herb fruit strawberr* pizza coffee tea sugar drink menu dessert satay",
    "health": "health doctor gp dentist teeth tooth medic* medication medicine pill tablet diabet* insulin allerg* "
    "migraine headache blood injur* knee back surgery operation condition hospital pain asthma wheelchair "
    "pressure pregnan* physio disab* deaf blind sick ill nurse transfusion antibiotic penicillin latex",
    "family": "family wife husband partner spouse son daughter kid child children boy girl twins baby mum mom "
    "mother dad father parent brother sister sibling niece nephew cousin aunt uncle grand* gran granny "
    "grandad granddad grandma grandpa step in-law wedding married fiance girlfriend boyfriend",
    "pets": "pet dog cat puppy kitten parrot bird animal chicken hen rabbit hamster horse greyhound labrador "
    "spaniel terrier budgie tortoise goldfish",
    "home": "live lived home house flat apartment city town village moving move relocat* born grew raised "
    "childhood neighbourhood neighborhood address floor street cottage originally hometown",
    "travel": "travel trip holiday vacation flight flying fly plane train bus car drive driving cycle cycling "
    "bike commute transport abroad",
    "sport": "sport exercise fit fitness gym run running swim swimming football rugby tennis cycling hike hiking "
    "marathon race yoga training team coach club",
    "hobbies": "hobby hobbies free_time spare_time pottery crossword game board_game knit paint garden allotment "
    "read book novel film movie podcast craft photograph* hik* walk",
    "books": "book novel read reading author library",
    "films": "film movie cinema watch series",
    "money": "money saving save salary paid earn budget deposit mortgage income afford",
    "study": "stud* degree university college course class school learn learning phd revision exam lesson",
    "sleep": "sleep bed bedtime night_owl morning_person wake insomnia",
    "languages": "language speak fluent bilingual",
    "computers": "computer laptop pc phone server router nas printer linux windows macbook mac editor keyboard "
    "raspberry_pi fedora ubuntu debian arch_linux neovim vim emacs",
    "fears": "scared afraid fear terrified phobia",
    "car": "car drive driving vehicle tyre tire garage",
    # What a user must not eat: a question about food asks about it too ("what should I cook?": the vegetarian).
    "diet": "vegetarian vegan pescatarian allerg* intoleran* gluten lactose dairy coeliac celiac diabet* halal kosher "
    "don't_eat do_not_eat can't_eat cannot_eat can't_have",
}
# A question on the left also asks about the topics on the right.
IMPLIED_TOPICS = {"food": {"diet"}}
_TOPIC_RE = {
    name: re.compile(
        r"\b(?:"
        + "|".join(
            re.escape(w[:-1]) + r"\w*"
            if w.endswith("*")
            else re.escape(w).replace("_", r"\s+") + r"(?:s|es|ed|ing|d|'s)?\b"
            for w in words.split()
        )
        + r")",
        re.I,
    )
    for name, words in TOPICS.items()
}
_ABOUT_USER = re.compile(r"\b(?:I|I'm|I've|I'd|me|my|mine|myself|we|our|ours)\b", re.I)


@cache
def topics(text: str) -> frozenset[str]:
    """The everyday topics a fact or a question touches ("User coaches ... on Saturdays" -> weekend, sport)."""
    text = undated(text)
    return frozenset(name for name, pattern in _TOPIC_RE.items() if pattern.search(text))


def asked_topics(question: str) -> frozenset[str]:
    """The topics a question asks about: its own and those they imply ("cook" -> food -> diet)."""
    own = topics(question)
    return own.union(*(IMPLIED_TOPICS.get(t, set()) for t in own))


def about_user(question: str) -> bool:
    """Whether a question speaks of the user (I, my, we, ...): only those may recall a fact on topic alone."""
    return bool(_ABOUT_USER.search(question))
