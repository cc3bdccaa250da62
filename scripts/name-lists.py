"""Writes the name lists Warden's PII detector embeds (src/pii/lists/):

    given-names.txt   given names of 33 locales, Latin script (romanized where the
                      locale writes another)
    word-names.txt    the given names that are also English words ("Amber", "May", "Per"):
                      alone, they are as often the word as the name
    surnames.txt      surnames of the same locales, less those that are also English words
                      ("Baker", "Bush", "Green"), which after a given name are as often a
                      product, a colour or a place as a family

Sources: the person providers of PyPI `Faker` and of npm `@faker-js/faker` (both MIT; the
versions pinned below; the npm package is read by scripts/faker-js-names.cjs) and, for the
English words, Debian's hunspell-en-us and hunspell-en-gb dictionaries (a word listed in
lower case there is a common word). The lists are sorted, one name per line.

    apt-get install hunspell-en-us hunspell-en-gb
    python3 -m venv /tmp/faker && /tmp/faker/bin/pip install faker==40.63.0
    npm install --prefix /tmp/faker-js @faker-js/faker@9.9.0
    NODE_PATH=/tmp/faker-js/node_modules /tmp/faker/bin/python scripts/name-lists.py
"""

import importlib
import json
import os
import subprocess

import faker

FAKER_VERSION = "40.63.0"
FAKER_JS_VERSION = "9.9.0"
LOCALES = (
    "en_US en_GB en_IE en_IN de_DE fr_FR fr_CA es_ES es_MX it_IT nl_NL pt_BR pt_PT sv_SE "
    "da_DK no_NO fi_FI pl_PL cs_CZ hu_HU ro_RO tr_TR yo_NG zu_ZA tw_GH ja_JP zh_CN zh_TW "
    "vi_VN id_ID en_NG en_PK en_KE"
).split()
# Where a provider writes names in another script, the romanized lists it also has.
GIVEN_LISTS = (
    "first_names first_names_male first_names_female first_romanized_names "
    "first_romanized_names_male first_romanized_names_female"
).split()
SURNAME_LISTS = "last_names last_names_male last_names_female last_romanized_names".split()
DICTIONARIES = ("/usr/share/hunspell/en_US.dic", "/usr/share/hunspell/en_GB.dic")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "pii", "lists")


def names(provider, attributes):
    found = set()
    for attribute in attributes:
        found |= set(getattr(provider, attribute, None) or ())
    return found


def latin_word(name):
    """One word of Latin script with a capital first letter ("Zoë", "O'Brien", "Jean-Luc")."""
    return (
        len(name) >= 2
        and name[0].isupper()
        and all(c.isalpha() or c in "'-" for c in name)
        and all(ord(c) < 0x250 for c in name)
    )


def english_words():
    words = set()
    for path in DICTIONARIES:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f.read().split("\n")[1:]:
                word = line.split("/")[0].strip()
                if word[:1].islower():
                    words.add(word)
    return words


def main():
    if faker.VERSION != FAKER_VERSION:
        raise SystemExit(f"Faker {FAKER_VERSION} is pinned; this is {faker.VERSION}")
    given, surnames = set(), set()
    for locale in LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        given |= names(provider, GIVEN_LISTS)
        surnames |= names(provider, SURNAME_LISTS)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "faker-js-names.cjs")
    js = json.loads(subprocess.run(["node", script], check=True, capture_output=True).stdout)
    if js["version"] != FAKER_JS_VERSION:
        raise SystemExit(f"@faker-js/faker {FAKER_JS_VERSION} is pinned; this is {js['version']}")
    given |= set(js["given"])
    surnames |= set(js["surnames"])
    english = english_words()
    given = sorted(n for n in given if latin_word(n))
    surnames = sorted(n for n in surnames if latin_word(n) and n.lower() not in english)
    word_names = [n for n in given if n.lower() in english]
    lists = (("given-names.txt", given), ("word-names.txt", word_names), ("surnames.txt", surnames))
    for name, chosen in lists:
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as out:
            out.write("\n".join(chosen) + "\n")
        print(f"{name}: {len(chosen)} names")


if __name__ == "__main__":
    main()
