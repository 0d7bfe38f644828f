# ruff: noqa: SIM905  (word lists are written as text: lines of words, split)
"""Person names: after greetings, honorifics and labels in the main languages, before Japanese, Korean and
Chinese honorific suffixes, after "for"/"by"/"from" when a known given name follows, and (optional, in no
shipped pack) any known given name.

Latin, Greek and Cyrillic names must be capitalized ("Dear customer", "Hi there" and "by default" are not
names), and a stoplist turns down the capitalized words that follow these labels without being names
("Dear Team", "name: String", "user: Anonymous"). Where a label is ambiguous ("name:", "user:", "for") the
first word must also be a known given name (given_names.txt, built from Faker's locale providers by
bench/tools/make_given_names.py). Only the name is replaced: the label stays.

Every pattern begins with a literal character or a small class, and checks what precedes it by a lookbehind
placed after that character: the regex engine then skips in C to the few places where a match can begin.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources

from .base import Detector, Trigger, keyword_trigger

_Tree = dict[str, "_Tree"]


def _trie(words: Iterable[str]) -> str:
    """A regex matching exactly `words` (literals), as a prefix tree: one step per character, not per word."""
    tree: _Tree = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Tree) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = "|".join(branches)
        if "" in node:
            return f"(?:{body})?"
        return body if len(branches) == 1 else f"(?:{body})"

    return emit(tree)


def anchored(groups: dict[str, Iterable[str]], not_after: str, fold: bool = False) -> str:
    """Literal words, each followed by its group's tail regex (`groups`: tail -> words), none right after a
    character of the class `not_after`; with `fold`, words are given in lower case and match in any case.

    The pattern begins with a class of the words' first characters, checks what precedes by a lookbehind
    after it, and then takes the branch of the character it consumed (a lookbehind again): the regex engine
    skips in C to those first characters, and the words of a branch are one prefix tree.
    """
    firsts: set[str] = set()
    alternatives = []
    for tail, words in groups.items():
        rests: defaultdict[str, list[str]] = defaultdict(list)
        for word in words:
            rests[word[0]].append(word[1:])
        branches = []
        for first, tails in sorted(rests.items()):
            chars = {first}
            rest = _trie(tails)
            if fold:
                chars |= {c for c in (first.upper(), first.title()) if len(c) == 1}
                rest = f"(?i:{rest})" if rest else ""
            firsts |= chars
            branches.append(f"(?<={_class(chars)}){rest}")
        alternatives.append(f"(?:{'|'.join(branches)}){tail}")  # the tail once per group: regexes compile slowly
    first_class = _class(firsts)
    return f"{first_class}(?<!{not_after}{first_class})(?:{'|'.join(alternatives)})"


def _class(chars: set[str]) -> str:
    return re.escape(next(iter(chars))) if len(chars) == 1 else f"[{''.join(re.escape(c) for c in sorted(chars))}]"


# Where the capital letters of the cased scripts are (`re` has no \p{Lu}): Latin, Greek, Cyrillic, Armenian,
# Georgian. Blocks that mix capitals and small letters are taken whole (an exact class of every capital takes
# many times longer to compile, in every pattern that has it), and the validators check the case.
UPPER_CHARS = "A-ZÀ-ÖØ-ÞĀ-ɏͰ-ϿЀ-ЯѠ-ԯԱ-ՖႠ-ჅḀ-ỿἈ-ῼ"
UPPER = f"[{UPPER_CHARS}]"
LETTER = r"[^\W\d_]"
_LOWER = "[a-zß-öø-ÿĀ-ɏͰ-Ͽа-џѠ-ԯա-ֆḀ-ỿἀ-ῼ]"  # the same for small letters
# One capitalized word ("O'Brien", "Müller-Lüdenscheidt") or an initial ("J."); each part bounded.
WORD = rf"{UPPER}(?:\.|{LETTER}{{0,30}}(?:['’-]{LETTER}{{1,30}}){{0,3}})"
_PARTICLE = r"(?:van|von|de|der|den|del|della|di|da|do|dos|das|du|la|le|ter|ten|bin|ibn|al|el|zu|y)"
# 1-3 capitalized words, lowercase particles between them ("José María", "Ludwig van Beethoven").
WORD_END = r"(?![\w-]|['’]\w)"  # the end of a word (a quote right after it may close a string)
NAME = rf"{WORD}(?:[ ](?:{_PARTICLE}[ ]){{0,2}}{WORD}){{0,2}}{WORD_END}"
_NAME_AFTER_TITLE = rf"(?:{_PARTICLE}[ ]){{0,2}}{NAME}"  # "Herr von Goethe", "mevrouw de Vries"
_BOUNDARY = r"[\w'’-]"  # what may not come right before a greeting, honorific or label
# A name in a script without capitals, in a sentence of Latin script ("assigned to 은지 배", "Hello 丽丽 彭,",
# "भरत नायर cancelled"): one or two words of Han, kana or Hangul (1-4 characters each), or of Devanagari.
_CJK_WORD = "[\u3400-\u4dbf\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7a3]"
_DEVANAGARI_WORD = "[\u0900-\u0963\u0966-\u097f]{2,20}(?:['’][\u0900-\u097f]{1,20})?"
UNCASED_NAME = (
    rf"(?:{_CJK_WORD}{{1,4}}(?:[ ]{_CJK_WORD}{{1,4}})?|{_DEVANAGARI_WORD}(?:[ ]{_DEVANAGARI_WORD}){{0,2}})"
    r"(?![\w'’]|\.\w)"
)


def uncased(name: str) -> bool:
    """A name written in a script without capitals (what UNCASED_NAME matches)."""
    return bool(name) and not name[0].isascii() and name[0].lower() == name[0].upper()


# Capitalized words that follow greetings and labels without being names. Compared case-folded.
STOP = frozenset(
    """
    the a an this that these those there their they them it its he she his her we our us you your i me my mine
    all any each every everyone everybody anyone someone somebody nobody none no not yes ok okay please thanks
    thank welcome hello hi hey dear greetings good morning afternoon evening night day there here world again
    team teams staff support sales billing service services customer customers client clients user users member
    members guest guests visitor visitors friend friends colleague colleagues partner partners people folks guys
    sir sirs madam madame mister miss ladies gentlemen valued admin administrator administrators root system
    sysadmin operator developer developers dev devs engineer engineers manager owner owners author reviewer
    anonymous unknown undefined null nil none true false nan infinity default example sample test tests testing
    demo dummy placeholder foo bar baz qux string str int integer float double bool boolean char byte bytes
    object any optional union list dict tuple set map array number type types class self value values key keys
    field fields name names id ids uuid error errors exception warning info debug trace fatal critical notice
    message messages item items product products order orders invoice payment account accounts profile settings
    data content request response model form record records entry file files document documents report reports
    new old first last next previous other same main primary secondary final full mr mrs ms mx dr prof herr frau
    mme mlle monsieur sr sra srta sig pan pani heer mevrouw señor señora signor signora dott ing monday tuesday
    wednesday thursday friday saturday sunday january february march april may june july august september
    october november december python java javascript typescript node ruby rails django flask react vue angular
    go rust php perl swift kotlin linux windows mac macos ios android chrome firefox safari edge google apple
    microsoft amazon aws azure github gitlab slack stripe sentry docker kubernetes postgres postgresql mysql
    redis mongo sqlite celery http https api url json xml html css sql o k re fw fwd cc bcc software senior
    junior lead principal chief head regards wishes happy merry birthday year holidays christmas grüße grüsse
    gruß welt mundo monde liebe lieber hallo hola bonjour cher chère caro cara estimado estimada prezado prezada
    gentile geachte beste kunde kunden kundin herren damen leute alle zusammen mesdames messieurs tous señores
    todos tutti signori klant klanten pozdrawiam wszyscy ltd llc inc plc gmbh ag kg sa sas sarl spa srl bv nv ab
    oy ohg gbr kgaa mbh ug group corp corporation company holdings associates industries solutions systems
    technologies labs studio studios consulting bank foundation institute university college school hospital
    clinic hotel restaurant
    """.split()
)


@cache
def given_names() -> frozenset[str]:
    """The shipped list of common given names (given_names.txt)."""
    text = resources.files(__package__).joinpath("given_names.txt").read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


_APOSTROPHES = "'’"


def _initial(word: str) -> bool:
    """A capital and a period ("J.")."""
    return len(word) == 2 and word[0].isupper() and word[1] == "."


def _titled(word: str) -> bool:
    """A capitalized word: a capital, then small letters; parts after ' or - begin with any letter
    ("O'Brien", "Müller-Lüdenscheidt", "d'Angelo"), and "Mc" may come before the capital ("McDonald")."""
    if word.startswith("Mc") and len(word) > 2:
        word = word[2:]
    parts = word.replace("’", "'").replace("-", "'").split("'")
    head, rest = parts[0], parts[1:]
    if len(head) == 1 and rest and head in "ODod":  # O'Brien, D'Angelo: the capital comes after
        head, rest = rest[0], rest[1:]
    return (
        len(head) >= 2
        and head[0].isupper()
        and head[1:].islower()
        and all(part[:1].isalpha() and (len(part) < 2 or part[1:].islower()) for part in rest)
    )


def _capitals(word: str) -> bool:
    """A word in capitals ("DUPONT", "O'BRIEN")."""
    letters = word.replace("'", "").replace("’", "").replace("-", "")
    return len(letters) >= 2 and letters.isalpha() and letters.isupper()


def plausible(words: list[str], known_first: bool = False, at_least: int = 1) -> bool:
    """Whether capitalized `words` (after a label) are a name: no stopword, the first one not in capitals."""
    if len(words) < at_least:
        return False
    for index, word in enumerate(words):
        if word.casefold().rstrip(".") in STOP:
            return False
        if _initial(word):
            if index == len(words) - 1 and index == 0:
                return False  # a lone initial
            continue
        if not _titled(word) and (index == 0 or not _capitals(word)):
            return False  # "UserService", "HTTP"; a surname in capitals ("Jean DUPONT") is fine
    return not known_first or words[0] in given_names()


def _name_words(secret: str) -> list[str]:
    """The capitalized words of a name (particles dropped)."""
    return [w for w in secret.split(" ") if w and not w[0].islower()]


def _validator(pattern: re.Pattern[str], rule: Callable[[re.Match[str]], bool]) -> Callable[[str], bool]:
    """A validator that re-matches the candidate with the detector's own pattern and asks `rule`."""

    def validate(text: str) -> bool:
        match = pattern.match(text)
        return match is not None and rule(match)

    return validate


# --- greetings and honorifics -------------------------------------------------------------------------------

# Greetings: written capitalized, and in lower case where that is no part of common words ("hey": "they").
_GREETINGS = ("Dear", "Hi", "Hello", "Hey", "Hallo", "Liebe", "Lieber", "Liebes", "Sehr geehrte", "Sehr geehrter",
              "Bonjour", "Bonsoir", "Cher", "Chère", "Chers", "Estimado", "Estimada", "Hola", "Caro", "Cara",
              "Gentile", "Gentilissimo", "Gentilissima", "Beste", "Geachte", "Szanowny", "Szanowna", "Prezado",
              "Prezada", "Olá", "Oi", "Sayın", "Hej", "Moin", "Servus", "Ciao", "Salut", "Уважаемый",
              "Уважаемая", "Здравствуйте")  # fmt: skip
_LOWER_OK = {"dear", "hi", "hello"}
# Honorifics before a name, followed by a period or a space ("M." only by a period and a space).
_HONORIFICS = ("Mr", "Mrs", "Ms", "Mx", "Miss", "Dr", "Prof", "Herr", "Frau", "Mme", "Mlle", "Madame",
               "Monsieur", "Sr", "Sra", "Srta", "Señor", "Señora", "Señorita", "Don", "Doña", "Sig", "Sig.ra",
               "Signor", "Signora", "Dott", "Dott.ssa", "Ing", "Pan", "Pani", "Panie", "Heer", "Mevrouw", "Dhr",
               "Mevr", "Господин", "Госпожа", "heer", "mevrouw")  # fmt: skip
_greeting_forms = [*_GREETINGS, *(g.lower() for g in _GREETINGS if g.lower() in _LOWER_OK)]
# The trigger's keywords: few, and short where a longer word begins with them ("Liebe" for "Lieber").
_GREETING_KEYWORDS = (
    "Dear", "dear", "Hi ", "Hi,", "hi ", "Hello", "hello", "Hey", "Hallo", "Liebe", "Sehr geehrte", "Bonjour",
    "Bonsoir", "Cher", "Chère", "Estimad", "Hola", "Caro", "Cara", "Gentil", "Beste", "Geachte", "Szanown",
    "Prezad", "Olá", "Oi ", "Oi,", "Sayın", "Hej", "Moin", "Servus", "Ciao", "Salut", "Уважаем", "Здравствуйте",
    *(f"{h}{end}" for h in _HONORIFICS for end in (".", " ")), "M. ",
)  # fmt: skip
_HONORIFIC = rf"(?:{_trie(_HONORIFICS)}(?:\.[ ]?|[ ])|M\.[ ])"
_GREETING_NAME = re.compile(
    anchored({rf",?[ ]{_HONORIFIC}?": _greeting_forms, r"(?:\.[ ]?|[ ])": _HONORIFICS, r"\.[ ]": ["M"]}, _BOUNDARY)
    + rf"(?P<secret>{_NAME_AFTER_TITLE}|{UNCASED_NAME})"
)


def _greeting_rule(match: re.Match[str]) -> bool:
    secret = match.group("secret")
    return uncased(secret) or plausible(_name_words(secret))


# --- labels: "name:", "customer:", "Kunde:", "prénom:" ... ---------------------------------------------------


def joined(*parts: str) -> list[str]:
    """`first name` written with a space, "_", "-" or nothing between its words."""
    return [sep.join(parts) for sep in (" ", "_", "-", "")]


_ENGLISH_NAMES = ("full first last given family middle maiden birth sur customer contact holder cardholder patient "
                  "recipient guest passenger employee applicant billing shipping").split()  # fmt: skip
_STRONG_LABELS = frozenset(
    [
        *(label for prefix in _ENGLISH_NAMES for label in joined(prefix, "name")),
        *joined("card", "holder", "name"), *joined("account", "holder", "name"),
        "vorname", "nachname", "familienname", "geburtsname", "prénom", "prenom", "nom de famille",
        "nombre completo", "apellido", "apellidos", "cognome", "nome completo", "sobrenome", "voornaam",
        "achternaam", "nazwisko", "imię", "imię i nazwisko", "förnamn", "efternamn", "fornavn", "efternavn",
        "etternavn", "soyad", "soyadı", "soyadi", "ad soyad", "adı soyadı", "customer", "patient", "patientin",
        "recipient", "kunde", "kundin", "empfänger", "destinataire", "destinatario", "paciente", "paziente",
        "klant", "pacjent",
    ]
)  # fmt: skip
# Labels that often name other things ("name: Redis", "user: Anonymous"): the first word must be a known name.
_SEP_WORDS = ("name", "nom", "nome", "user", "client", "cliente", "from", "author", "owner")
# Labels written with their separator in the trigger's keywords: "/api/customers/42" is no label.
_KEYWORD_SEP_WORDS = (*_SEP_WORDS, "customer", "patient")
_WEAK_LABELS = frozenset(
    [
        *_SEP_WORDS, "nombre", "naam", "namn", "navn",
        *(label for prefix in ("user", "display", "account", "real") for label in joined(prefix, "name")),
    ]
)  # fmt: skip
# `name:`, `name=`, `Nom :`, JSON's `"name": "..."` and Python's `'name': '...'`.
_SEP = r"(?:[:=]|[ \"']:)[ ]?[\"']?"
# After a label that can only name a person (`full name`, `[full_name]`), a space or a bracket will do, and the
# name may be in a script without capitals: 中村 拓真, 심준영, जगन्नाथ बनर्जी.
_STRONG_SEP = r"(?:\]?[ ][\"']?|\]?[ ]?[:=][ ]?[\"']?)"
_UNCASED_NAME = (
    r"[\u4e00-\u9fff]{1,3}(?:[ ][\u4e00-\u9fff]{1,3})?(?![\u4e00-\u9fff])|[가-힣]{2,4}(?![가-힣])"
    r"|[\u0900-\u097f]{2,}(?:[ ][\u0900-\u097f]{2,}){0,2}"
)
_LABELS = anchored({"": _STRONG_LABELS | _WEAK_LABELS}, r"[^\W_]", fold=True)
_STRONG_ONLY = anchored({"": frozenset(label for label in _STRONG_LABELS if len(label) > 8)}, r"[^\W_]", fold=True)
_LABEL_NAME = re.compile(rf"(?P<label>{_LABELS}){_SEP}(?P<secret>{NAME})")
_STRONG_LABEL_NAME = re.compile(rf"(?P<label>{_STRONG_ONLY}){_STRONG_SEP}(?P<secret>{NAME}|{_UNCASED_NAME})")
# Each label holds one of these (a word followed by its separator, or a rare part of a longer label; a part
# that begins with a rarer pair of letters costs the trigger's scan less: "cipient" for "recipient").
_LABEL_KEYWORDS = (
    *(f"{word}{sep}" for word in _KEYWORD_SEP_WORDS for sep in (":", "=", " :", '":', "':")),
    "famille", "mbre", "pellid", "gnome", "mpleto", "naam", "zwisk", "imię", "namn", "navn", "oyad", "cipient",
    "patientin", "kund", "pfäng", "stinata", "paciente", "azient", "klant", "cjent",
    # `full name '…'`, `[full_name] …` (the spellings with a space or "_"; `fullname` and `full-name` take a colon)
    *(label for label in _STRONG_LABELS if len(label) > 8 and label.isascii() and label.endswith((" name", "_name"))),
)  # fmt: skip


def _strong_label_rule(match: re.Match[str]) -> bool:
    """After `full name` and the like: capitalized words that pass as a name, or a name in an uncased script."""
    name = match.group("secret")
    uncased = not name[0].isupper() and not name[0].islower()
    return uncased or plausible(_name_words(name))


def _label_rule(match: re.Match[str]) -> bool:
    weak = match.group("label").lower() not in _STRONG_LABELS
    return plausible(_name_words(match.group("secret")), known_first=weak)


# --- Japanese, Korean and Chinese honorific suffixes ----------------------------------------------------------

_HAN = "\u3005\u4e00-\u9fff"
_KATAKANA = "\u30a0-\u30ff"
# The name right before 様/さん (Japanese; 様 followed by punctuation or a particle, so that 様々
# "various" is not one), 님 (Korean) or 先生/女士/小姐 (Chinese). The match is the name alone.
# Hiragana inside a name ("林くみ子"), but not the particles that join words ("会員の皆様": members, all).
_HIRAGANA = "ぁ-おき-てど-なぬ-ねば-ぷべ-めゃゅ-ゑん-ゖ"  # ぁ-ゖ but の は を が に へ と で も や か
_SAMA_AFTER = "、。，, \nへのはにがと"
_NIM_AFTER = "께의이은을, .\n"
_CJK_NAME = re.compile(
    rf"[{_HAN}{_KATAKANA}](?<![{_HAN}{_KATAKANA}][{_HAN}{_KATAKANA}])[{_HAN}{_KATAKANA}{_HIRAGANA}]{{0,5}}?"
    rf"(?=様[{_SAMA_AFTER}]|さん)"
    rf"|[가-힣](?<![가-힣][가-힣])[가-힣]{{1,3}}(?=[ ]?님[{_NIM_AFTER}])"
    rf"|[{_HAN}](?:(?<=[的和与及、，,：:][{_HAN}])|(?<![{_HAN}][{_HAN}]))[{_HAN}]{{0,2}}?(?=先生|女士|小姐)"
)
_CJK_KEYWORDS = (
    *(f"様{ch}" for ch in _SAMA_AFTER),
    "さん",
    *(f"님{ch}" for ch in _NIM_AFTER),
    " 님",
    "先生",
    "女士",
    "小姐",
)
# Words before these suffixes that are roles or kinship, not names.
_CJK_STOP = frozenset(
    "客 お客 皆 皆さん 各位 神 王様 奥 嬢 お嬢 父 母 お父 お母 兄 姉 息子 娘 先生 社長 部長 課長 "
    "担当 担当者 利用者 管理者 会員 購入者 申込者 ご担当者 顧客 ユーザー 고객 회원 선생 사장 부장 "
    "과장 팀장 교수 관리자 사용자 여러분 어머 아버 할머 할아버 선배 작가 대표 원장 의사 담당자 운영자 "
    "구매자 판매자 주문자 신청자 수신자 작성자 보호자 예약자 당첨자 환자 학생 女士们 先生们 老 小 "
    "大家 医生 老师 用户 客户 会员".split()
)


def _cjk_ok(name: str) -> bool:
    """A name before the suffix, not a role ("お客様", "고객님") or kin."""
    return name not in _CJK_STOP and not name.endswith(("者", "们", "們"))


# --- "for / by / from / to / with <Given-name Surname>" -------------------------------------------------------

_PREPOSITIONS = ("for", "For", "by", "By", "from", "From", "to", "To", "with", "With")
_PREPOSITION_NAME = re.compile(
    anchored({"[ ]": _PREPOSITIONS}, _BOUNDARY)
    + rf"(?P<secret>{WORD}(?:[ ](?:{_PARTICLE}[ ]){{0,2}}{WORD}){{1,2}}{WORD_END}|{UNCASED_NAME})"
)


def _preposition_rule(match: re.Match[str]) -> bool:
    secret = match.group("secret")
    return uncased(secret) or plausible(_name_words(secret), known_first=True, at_least=2)


# --- "<Given-name Surname> <verb>" at the start of a message or sentence ------------------------------------

# The subject of a message ("Damian Gmurczyk cancelled the subscription"): a known given name and a surname
# (1-2 capitalized words, particles between), then a word in small letters (its first letter is part of the
# match, not of the name), at the start of the text (name_subject) or of a sentence or clause (name_clause:
# after ". ", "; ", "! ", "? ", ": "). Two detectors, each with a pattern the regex engine can skip ahead on:
# anchored at the start, or beginning with the punctuation.
_SUBJECT = rf"(?P<secret>{WORD}(?:[ ](?:{_PARTICLE}[ ]){{0,2}}{WORD}){{1,2}}|{UNCASED_NAME})[ ][a-z]"
_SUBJECT_NAME = re.compile(rf"\A{_SUBJECT}")
_CLAUSE_NAME = re.compile(rf"[.;!?:][ ]{_SUBJECT}")


def _subject_rule(match: re.Match[str]) -> bool:
    secret = match.group("secret")
    return uncased(secret) or plausible(_name_words(secret), known_first=True, at_least=2)


# --- any known given name (optional) ------------------------------------------------------------------------

# In no shipped pack: a team that wants names without labels adds a rule with `detector: given_name`. The
# trade-off: it finds "Anna Kowalska logged in" and "sent to Jonas", but also a name that is a word of some
# other kind ("Kelvin", "Pauli", "Cosine Sine"); names that are common English words or software are not in
# the list ("Max retries", "Mark as read", "Julia 1.10"), so such people are missed.

# A known given name, with the capitalized word after it (a surname) if there is one; alone only mid-sentence
# (after a lowercase word, a digit or a comma): at the start of a sentence a capital says nothing.
_GIVEN_REST = rf"{LETTER}{{1,30}}(?:-{UPPER}{LETTER}{{1,30}})?"
# The initials of the known names and of A-Z: a surname after a name at the start of the text begins with one.
_INITIALS = sorted({name[0] for name in given_names()} | set(string.ascii_uppercase))
_INITIAL_CLASS = f"[{''.join(_INITIALS)}]"
_GIVEN_NAME = re.compile(
    rf"{UPPER}(?<![\w'’.-]{UPPER})"
    rf"(?:(?:(?<=[\d,;][ ]{UPPER})|(?<={_LOWER}[ ]{UPPER})){_GIVEN_REST}(?:[ ]{WORD})?"
    rf"|{_GIVEN_REST}[ ](?={_INITIAL_CLASS}){WORD})" + WORD_END
)


def _given_ok(text: str) -> bool:
    """A known given name (and a surname): the match is the name alone."""
    words = text.split(" ")
    return words[0] in given_names() and _titled(words[0]) and plausible(words)  # most fail the first test


TRIGGERS: dict[str, Trigger] = {
    # Case-sensitive: greetings and honorifics are capitalized, and "they"/"items"/"span" hold "hey"/"ms"/"pan".
    "name_greeting": Trigger(keywords=_GREETING_KEYWORDS, fold=False),
    "name_label": Trigger(keywords=tuple(dict.fromkeys(_LABEL_KEYWORDS))),
    "name_cjk": Trigger(keywords=_CJK_KEYWORDS),
    "name_preposition": Trigger(keywords=tuple(f"{word} " for word in _PREPOSITIONS), fold=False),
    # A space and an initial, as for given_name: the surname is one.
    # A space and a small letter: the verb after the name, which every match ends with.
    "name_subject": Trigger(keywords=tuple(f" {ch}" for ch in string.ascii_lowercase), fold=False),
    "name_clause": Trigger(keywords=(". ", "; ", ": ", "! ", "? "), fold=False),
    # A space and an initial: every match has one (before the name, or before the surname of a name at the
    # start). The names themselves, a few thousand keywords, would slow the scan of every string for all,
    # and this family (in no shipped pack) need not be cheap to wake.
    "given_name": Trigger(keywords=tuple(f" {ch}" for ch in _INITIALS), fold=False),
}
# A case-insensitive label can match where its folded keyword is not found ("ALICI" is "alıcı" to `re`, and
# "ſ" is "s"): such a candidate is turned down, so that every match makes the family's trigger fire.
_label_fires = keyword_trigger(TRIGGERS["name_label"])

DETECTORS: tuple[Detector, ...] = (
    Detector("name_greeting", "[name]", _GREETING_NAME, lambda t: True,
             _validator(_GREETING_NAME, _greeting_rule), "name_greeting"),
    Detector("name_label", "[name]", _LABEL_NAME, lambda t: True,
             _validator(_LABEL_NAME, lambda m: _label_fires(m.group()) and _label_rule(m)), "name_label"),
    Detector("name_label_strong", "[name]", _STRONG_LABEL_NAME, lambda t: True,
             _validator(_STRONG_LABEL_NAME, lambda m: _label_fires(m.group()) and _strong_label_rule(m)),
             "name_label"),
    Detector("name_cjk", "[name]", _CJK_NAME, lambda t: True, _cjk_ok, "name_cjk"),
    Detector("name_preposition", "[name]", _PREPOSITION_NAME, lambda t: True,
             _validator(_PREPOSITION_NAME, _preposition_rule), "name_preposition"),
    Detector("name_subject", "[name]", _SUBJECT_NAME, lambda t: True,
             _validator(_SUBJECT_NAME, _subject_rule), "name_subject"),
    Detector("name_clause", "[name]", _CLAUSE_NAME, lambda t: True,
             _validator(_CLAUSE_NAME, _subject_rule), "name_clause"),
    Detector("given_name", "[name]", _GIVEN_NAME, lambda t: True, _given_ok, "given_name"),
)  # fmt: skip
