"""The embedded demo corpus: English -> Portuguese phrases about quantities, dates, times and
prices, generated from a small grammar, seeded (no download).

The pairs are chosen to need what a translation model must learn beyond word lookup:

* reordering: adjectives follow the noun ("three red cars" -> "três carros vermelhos"), a
  possessor follows it ("her two books" -> "os dois livros dela"), the day precedes the month
  ("March 5, 1998" -> "5 de março de 1998");
* agreement: numbers, articles, possessives, adjectives and contractions take the noun's gender
  and number ("twenty-one red houses" -> "vinte e uma casas vermelhas", "in the box" -> "na
  caixa", "they need the cars" -> "eles precisam dos carros");
* numbers written out in both languages, whose structure differs ("two thousand one hundred and
  five" -> "dois mil cento e cinco"; "one hundred" -> "cem");
* varying length, from two words to about thirty.

Brazilian Portuguese spelling. Pairs are unique by source sentence.
"""

from __future__ import annotations

import random

# -- numbers ---------------------------------------------------------------------------------
_EN_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_ORD = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}

_PT_ONES = ["zero", "um", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove", "dez", "onze", "doze",
            "treze", "catorze", "quinze", "dezesseis", "dezessete", "dezoito", "dezenove"]
_PT_TENS = ["", "", "vinte", "trinta", "quarenta", "cinquenta", "sessenta", "setenta", "oitenta", "noventa"]
_PT_HUNDREDS = ["", "cento", "duzent", "trezent", "quatrocent", "quinhent", "seiscent", "setecent", "oitocent", "novecent"]


def english_number(n: int) -> str:
    """0 <= n < 10000 in English words, British style ("one hundred and five")."""
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_EN_ONES[hundreds]} hundred" + (f" and {english_number(rest)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = f"{english_number(thousands)} thousand"
    if not rest:
        return head
    return head + (f" {english_number(rest)}" if rest >= 100 else f" and {english_number(rest)}")


def english_ordinal(n: int) -> str:
    """1 <= n <= 31 as an English ordinal word ("twenty-first")."""
    if n in _EN_ORD:
        return _EN_ORD[n]
    if n < 20:
        return _EN_ONES[n] + "th"
    tens, ones = divmod(n, 10)
    if not ones:
        return _EN_TENS[tens][:-1] + "ieth"
    return f"{_EN_TENS[tens]}-{english_ordinal(ones)}"


def portuguese_number(n: int, feminine: bool = False) -> str:
    """0 <= n < 10000 in Portuguese words, agreeing in gender ("duzentas e uma")."""
    if n < 20:
        word = _PT_ONES[n]
        if feminine and n in (1, 2):
            word = ("uma", "duas")[n - 1]
        return word
    if n < 100:
        tens, ones = divmod(n, 10)
        return _PT_TENS[tens] + (f" e {portuguese_number(ones, feminine)}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        if hundreds == 1:
            head = "cem" if not rest else "cento"
        else:
            head = _PT_HUNDREDS[hundreds] + ("as" if feminine else "os")
        return head + (f" e {portuguese_number(rest, feminine)}" if rest else "")
    thousands, rest = divmod(n, 1000)
    head = "mil" if thousands == 1 else f"{portuguese_number(thousands, feminine)} mil"
    if not rest:
        return head
    # "mil e cem", "mil e cinco", but "mil trezentos e cinco": "e" only before a round hundred or < 100
    joiner = " e " if rest < 100 or rest % 100 == 0 else " "
    return head + joiner + portuguese_number(rest, feminine)


# -- words -----------------------------------------------------------------------------------
# English singular, English plural, Portuguese singular, Portuguese plural, gender
NOUNS = [
    ("book", "books", "livro", "livros", "m"), ("house", "houses", "casa", "casas", "f"),
    ("car", "cars", "carro", "carros", "m"), ("cat", "cats", "gato", "gatos", "m"),
    ("dog", "dogs", "cão", "cães", "m"), ("table", "tables", "mesa", "mesas", "f"),
    ("chair", "chairs", "cadeira", "cadeiras", "f"), ("apple", "apples", "maçã", "maçãs", "f"),
    ("bird", "birds", "pássaro", "pássaros", "m"), ("flower", "flowers", "flor", "flores", "f"),
    ("window", "windows", "janela", "janelas", "f"), ("pen", "pens", "caneta", "canetas", "f"),
    ("letter", "letters", "carta", "cartas", "f"), ("key", "keys", "chave", "chaves", "f"),
    ("boat", "boats", "barco", "barcos", "m"), ("train", "trains", "trem", "trens", "m"),
    ("bottle", "bottles", "garrafa", "garrafas", "f"), ("egg", "eggs", "ovo", "ovos", "m"),
    ("shirt", "shirts", "camisa", "camisas", "f"), ("horse", "horses", "cavalo", "cavalos", "m"),
    ("song", "songs", "canção", "canções", "f"), ("lemon", "lemons", "limão", "limões", "m"),
    ("hotel", "hotels", "hotel", "hotéis", "m"), ("bag", "bags", "bolsa", "bolsas", "f"),
    ("ticket", "tickets", "bilhete", "bilhetes", "m"), ("glass", "glasses", "copo", "copos", "m"),
]
# English, Portuguese masculine singular, feminine singular, masculine plural, feminine plural
ADJECTIVES = [
    ("red", "vermelho", "vermelha", "vermelhos", "vermelhas"), ("white", "branco", "branca", "brancos", "brancas"),
    ("black", "preto", "preta", "pretos", "pretas"), ("yellow", "amarelo", "amarela", "amarelos", "amarelas"),
    ("green", "verde", "verde", "verdes", "verdes"), ("blue", "azul", "azul", "azuis", "azuis"),
    ("new", "novo", "nova", "novos", "novas"), ("old", "velho", "velha", "velhos", "velhas"),
    ("small", "pequeno", "pequena", "pequenos", "pequenas"), ("big", "grande", "grande", "grandes", "grandes"),
    ("cheap", "barato", "barata", "baratos", "baratas"), ("expensive", "caro", "cara", "caros", "caras"),
    ("empty", "vazio", "vazia", "vazios", "vazias"), ("beautiful", "bonito", "bonita", "bonitos", "bonitas"),
]
# English determiner -> Portuguese forms (m sg, f sg, m pl, f pl); "after" possessors follow the noun
DETERMINERS = [
    ("the", ("o", "a", "os", "as"), None), ("these", (None, None, "estes", "estas"), None),
    ("those", (None, None, "aqueles", "aquelas"), None), ("my", ("o meu", "a minha", "os meus", "as minhas"), None),
    ("our", ("o nosso", "a nossa", "os nossos", "as nossas"), None), ("her", ("o", "a", "os", "as"), "dela"),
    ("his", ("o", "a", "os", "as"), "dele"), ("their", ("o", "a", "os", "as"), "deles"),
]
# English preposition, Portuguese preposition it contracts with, place nouns (from NOUNS)
PLACES = [("in the", "em"), ("on the", "em"), ("near the", "perto de"), ("next to the", "ao lado de"),
          ("behind the", "atrás de"), ("under the", "debaixo de")]
PLACE_NOUNS = ["house", "car", "table", "box", "bag", "hotel", "train", "boat", "window", "chair"]
_EXTRA_PLACES = {"box": ("caixa", "f")}
# subject + verb: English, Portuguese, preposition the Portuguese verb takes (None: direct object)
CLAUSES = [
    ("I have", "eu tenho", None), ("we bought", "nós compramos", None), ("she sold", "ela vendeu", None),
    ("they need", "eles precisam", "de"), ("he found", "ele encontrou", None), ("you want", "você quer", None),
    ("we saw", "nós vimos", None), ("I like", "eu gosto", "de"), ("she is thinking about", "ela está pensando", "em"),
    ("they talked about", "eles falaram", "sobre"),
]
MONTHS = [("January", "janeiro"), ("February", "fevereiro"), ("March", "março"), ("April", "abril"), ("May", "maio"),
          ("June", "junho"), ("July", "julho"), ("August", "agosto"), ("September", "setembro"),
          ("October", "outubro"), ("November", "novembro"), ("December", "dezembro")]
WEEKDAYS = [("Monday", "segunda-feira", "f"), ("Tuesday", "terça-feira", "f"), ("Wednesday", "quarta-feira", "f"),
            ("Thursday", "quinta-feira", "f"), ("Friday", "sexta-feira", "f"), ("Saturday", "sábado", "m"),
            ("Sunday", "domingo", "m")]
PERIODS = [("in the morning", "da manhã"), ("in the afternoon", "da tarde"), ("in the evening", "da noite")]
CURRENCIES = [("dollar", "dollars", "dólar", "dólares"), ("euro", "euros", "euro", "euros"),
              ("pound", "pounds", "libra", "libras")]
_CURRENCY_GENDER = {"dólar": "m", "euro": "m", "libra": "f"}


def _contract(prep: str, word: str) -> str:
    """Portuguese preposition + article or demonstrative contractions: em + o = no, de + a = da,
    a + as = às, de + estes = destes, em + aquela = naquela."""
    table = {"em": {"o": "no", "a": "na", "os": "nos", "as": "nas"}, "de": {"o": "do", "a": "da", "os": "dos", "as": "das"},
             "a": {"o": "ao", "a": "à", "os": "aos", "as": "às"}}
    if word in table.get(prep, {}):
        return table[prep][word]
    if prep in ("de", "em") and word.startswith(("est", "aquel")):
        return {"de": "d", "em": "n"}[prep] + word
    return f"{prep} {word}"


def _gender_index(gender: str, plural: bool) -> int:
    return (2 if plural else 0) + (1 if gender == "f" else 0)


class _Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def noun_phrase(self, allow_det: bool = True, max_adjectives: int = 2) -> tuple[str, str, str, bool]:
        """(english, portuguese, gender, plural) of a counted and/or determined noun phrase."""
        r = self.rng
        en_sg, en_pl, pt_sg, pt_pl, g = r.choice(NOUNS)
        count = r.choice([1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, r.randint(2, 99), r.randint(2, 999), r.randint(2, 9999)])
        det = r.choice(DETERMINERS) if allow_det and r.random() < 0.5 else None
        plural_only = det is not None and det[1][0] is None  # "these", "those"
        if det is None:
            counted = True  # a bare noun needs a number
        else:
            counted = r.random() < 0.5 and count != 1  # "my one car" is not English: drop the number
        if counted:
            plural = count != 1
        else:
            plural = plural_only or r.random() < 0.5
        if plural_only and counted and not plural:
            count, plural = r.randint(2, 12), True
        idx = _gender_index(g, plural)
        adjs = r.sample(ADJECTIVES, min(max_adjectives, r.choice([0, 1, 1, 2])))
        en_words, pt_words = [], []
        if det is not None:
            en_words.append(det[0])
            pt_words.append(det[1][idx])
        if counted:
            en_words.append(english_number(count))
            pt_words.append(portuguese_number(count, g == "f"))
        en_words += [a[0] for a in adjs]
        en_words.append(en_pl if plural else en_sg)
        pt_words.append(pt_pl if plural else pt_sg)
        if adjs:
            pt_words.append(" e ".join(a[1 + idx] for a in adjs))
        if det is not None and det[2]:
            pt_words.append(det[2])  # "her books" -> "os livros dela"
        return " ".join(en_words), " ".join(pt_words), g, plural

    def place(self) -> tuple[str, str]:
        r = self.rng
        en_prep, pt_prep = r.choice(PLACES)
        name = r.choice(PLACE_NOUNS)
        if name in _EXTRA_PLACES:
            pt_noun, g = _EXTRA_PLACES[name]
        else:
            _, _, pt_noun, _, g = next(n for n in NOUNS if n[0] == name)
        article = "a" if g == "f" else "o"
        if " " in pt_prep:  # "perto de" + "a" -> "perto da"
            first, last = pt_prep.rsplit(" ", 1)
            pt = f"{first} {_contract(last, article)} {pt_noun}"
        else:
            pt = f"{_contract(pt_prep, article)} {pt_noun}"
        return f"{en_prep} {name}", pt

    def date(self) -> tuple[str, str]:
        r = self.rng
        m_en, m_pt = r.choice(MONTHS)
        day = r.randint(1, 28)
        style = r.randrange(4)
        if style == 0:  # "on March 5, 1998" -> "em 5 de março de 1998"
            year = r.randint(1950, 2030)
            return f"on {m_en} {day}, {year}", f"em {day} de {m_pt} de {year}"
        if style == 1:  # "on the fifth of March" -> "em cinco de março" ("primeiro" for the 1st)
            pt_day = "primeiro" if day == 1 else portuguese_number(day)
            return f"on the {english_ordinal(day)} of {m_en}", f"em {pt_day} de {m_pt}"
        if style == 2:  # "on Monday, March 5" -> "na segunda-feira, 5 de março"
            w_en, w_pt, g = r.choice(WEEKDAYS)
            return f"on {w_en}, {m_en} {day}", f"{_contract('em', 'a' if g == 'f' else 'o')} {w_pt}, {day} de {m_pt}"
        year = r.randint(1950, 2030)  # "in March nineteen ninety-eight" -> "em março de mil novecentos e noventa e oito"
        century, rest = divmod(year, 100)
        if year % 1000 < 10:  # "two thousand and five"
            en_year = english_number(year)
        elif rest < 10:  # "nineteen hundred", "nineteen oh five"
            en_year = f"{english_number(century)} {'hundred' if not rest else 'oh ' + english_number(rest)}"
        else:  # "nineteen ninety-eight"
            en_year = f"{english_number(century)} {english_number(rest)}"
        return f"in {m_en} {en_year}", f"em {m_pt} de {portuguese_number(year)}"

    def time(self) -> tuple[str, str]:
        r = self.rng
        hour = r.randint(1, 12)
        minute = r.choice([0, 0, 15, 30, 45, r.randint(1, 59)])
        en = f"at {english_number(hour)}" + (" o'clock" if minute == 0 else f" {english_number(minute) if minute >= 10 else 'oh ' + english_number(minute)}")
        article = "a" if hour == 1 else "as"
        pt_hour = portuguese_number(hour, feminine=True)
        if minute == 0:
            pt = f"{_contract('a', article)} {pt_hour} {'hora' if hour == 1 else 'horas'}"
        else:
            pt_min = "meia" if minute == 30 else portuguese_number(minute)
            pt = f"{_contract('a', article)} {pt_hour} e {pt_min}"
        if r.random() < 0.6:
            p_en, p_pt = r.choice(PERIODS)
            en, pt = f"{en} {p_en}", f"{pt} {p_pt}"
        return en, pt

    def price(self) -> tuple[str, str]:
        r = self.rng
        sg_en, pl_en, sg_pt, pl_pt = r.choice(CURRENCIES)
        amount = r.choice([1, r.randint(2, 99), r.randint(2, 999), r.randint(2, 9999)])
        fem = _CURRENCY_GENDER[sg_pt] == "f"
        en = f"{english_number(amount)} {sg_en if amount == 1 else pl_en}"
        pt = f"{portuguese_number(amount, fem)} {sg_pt if amount == 1 else pl_pt}"
        if r.random() < 0.4:
            cents = r.randint(1, 99)
            en += f" and {english_number(cents)} {'cent' if cents == 1 else 'cents'}"
            pt += f" e {portuguese_number(cents)} {'centavo' if cents == 1 else 'centavos'}"
        return en, pt

    def sentence(self) -> tuple[str, str]:
        r = self.rng
        kind = r.random()
        if kind < 0.15:
            return self.noun_phrase()[:2]
        if kind < 0.25:
            return r.choice([self.date, self.time, self.price])()
        if kind < 0.35:  # "there are three red cars in the box" -> "há três carros vermelhos na caixa"
            en, pt, _, _ = self.noun_phrase(allow_det=False)
            pl_en, pl_pt = self.place()
            return f"there {'are' if not en.startswith('one ') else 'is'} {en} {pl_en}", f"há {pt} {pl_pt}"
        en_c, pt_c, prep = r.choice(CLAUSES)
        en_np, pt_np, _, _ = self.noun_phrase()
        if prep is None:
            pt_obj = pt_np
        else:
            first, *rest = pt_np.split(" ", 1)
            glued = _contract(prep, first)
            pt_obj = " ".join([glued, *rest])
        en, pt = f"{en_c} {en_np}", f"{pt_c} {pt_obj}"
        extras = r.sample(["place", "date", "time", "price"], r.choice([0, 1, 1, 2]))
        if "place" in extras:
            a, b = self.place()
            en, pt = f"{en} {a}", f"{pt} {b}"
        if "price" in extras:
            a, b = self.price()
            en, pt = f"{en} for {a}", f"{pt} por {b}"
        if "date" in extras:
            a, b = self.date()
            en, pt = f"{en} {a}", f"{pt} {b}"
        if "time" in extras:
            a, b = self.time()
            en, pt = f"{en} {a}", f"{pt} {b}"
        return en, pt


def generate_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` unique (English, Portuguese) pairs, the same for the same ``seed``."""
    gen = _Generator(random.Random(seed))
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    tries = 0
    while len(pairs) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"the phrase grammar could not produce {n} distinct sentences")
        en, pt = gen.sentence()
        en, pt = en[0].upper() + en[1:], pt[0].upper() + pt[1:]
        if en in seen:
            continue
        seen.add(en)
        pairs.append((en, pt))
    return pairs
